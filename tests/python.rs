//! clients/python, the pure-Python client of the agent, built from its pyproject.toml as
//! pip would publish it, against the real agent: a token for a script, and the same
//! token through the auth class in requests and in httpx (both from PyPI).

use std::path::PathBuf;

use serde_json::Value;

use crate::broker::signed_in;
use crate::support::{Idp, root};

/// The Python of the client's test environment (`cargo xtask deps` makes it).
fn python() -> PathBuf {
    let python = root().join("target/python/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `cargo xtask deps` makes it",
        python.display()
    );
    python
}

const SCRIPT: &str = r#"
import json, sys
import httpx, requests
import lanyard_client

account, userinfo = sys.argv[1], sys.argv[2]
out = {}
agent = lanyard_client.Agent()
try:
    out["token"] = agent.token(account, min_valid=30)
except lanyard_client.Error as e:
    out["error"] = e.code
    print(json.dumps(out))
    sys.exit(0)
auth = lanyard_client.BearerAuth(account)
out["requests"] = requests.get(userinfo, auth=auth, verify=False).json()
out["httpx"] = httpx.get(userinfo, auth=auth, verify=False).json()
try:
    agent.token("no-such-account")
except lanyard_client.Error as e:
    out["unknown"] = e.code
out["accounts"] = [a["account"] for a in agent.accounts()]
print(json.dumps(out))
"#;

#[tokio::test]
async fn a_python_script_gets_tokens_from_the_agent() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "py").await;
    let _agent = env.start_agent().await;
    let python = python();

    // The package, built and installed from its pyproject.toml, as published; from a
    // copy, since the build writes beside the sources.
    let source = std::path::PathBuf::from(env.path("lanyard-client"));
    for file in [
        "pyproject.toml",
        "README.md",
        "src/lanyard_client/__init__.py",
    ] {
        let to = source.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join("clients/python").join(file), &to).unwrap();
    }
    let site = env.path("site-packages");
    let installed = tokio::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-build-isolation", "--no-deps", "--target", &site])
        .arg(&source)
        .output()
        .await
        .unwrap();
    assert!(installed.status.success(), "{installed:?}");

    let userinfo = idp.url_of("userinfo_endpoint").await;
    let run = || {
        let mut cmd = tokio::process::Command::new(&python);
        cmd.args(["-c", SCRIPT, "py", &userinfo])
            .envs(env.vars())
            .env("PYTHONPATH", &site)
            .env("PYTHONWARNINGS", "ignore")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        async move {
            let run = crate::support::run_with_stdin(cmd, "").await;
            let out: Value = serde_json::from_str(run.assert_ok().stdout.trim())
                .unwrap_or_else(|e| panic!("{e}: {run:?}"));
            out
        }
    };
    // Python asks first: the agent names it and wants the person's word.
    assert_eq!(run().await["error"], "approval_required");
    let program = std::fs::canonicalize(&python).unwrap();
    env.lanyard(&["allow", "py", &program.display().to_string()])
        .await
        .assert_ok();

    let out = run().await;
    let token = out["token"].as_str().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(idp.userinfo(token).await["sub"], "alice");
    assert_eq!(out["requests"]["sub"], "alice", "{out}");
    assert_eq!(out["httpx"]["sub"], "alice", "{out}");
    assert_eq!(out["unknown"], "unknown_account", "{out}");
    assert_eq!(out["accounts"], serde_json::json!(["py"]), "{out}");
}
