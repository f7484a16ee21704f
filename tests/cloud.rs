//! Cloud credentials from the same sign-in: the AWS CLI (PyPI's awscli) running
//! `lanyard aws-credentials` as its `credential_process` against moto's STS server, and
//! the executable-sourced response Google's workload identity federation reads.

use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

use crate::broker::signed_in;
use crate::support::{self, Env, Idp, root};

/// A program of the Python test environment (`cargo xtask deps` makes it).
fn venv(program: &str) -> PathBuf {
    let path = root().join("target/python/bin").join(program);
    assert!(
        path.exists(),
        "{} is missing: `cargo xtask deps` makes it",
        path.display()
    );
    path
}

/// moto's server (AWS services, STS among them) on a free port; gone when dropped.
struct Moto {
    _child: tokio::process::Child,
    url: String,
}

impl Moto {
    async fn start() -> Moto {
        let mut child = tokio::process::Command::new(venv("python"))
            .args([
                "-c",
                "import sys\n\
                 from moto.server import ThreadedMotoServer\n\
                 s = ThreadedMotoServer(ip_address='127.0.0.1', port=0)\n\
                 s.start()\n\
                 print('%s:%d' % s.get_host_and_port(), flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // It says it starts (on port 0) first; then where it listens.
        let listening = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if !line.contains(' ')
                    && line
                        .rsplit(':')
                        .next()
                        .is_some_and(|p| p.parse::<u16>().is_ok())
                {
                    return line;
                }
            }
            panic!("moto exited before it listened");
        };
        let at = tokio::time::timeout(std::time::Duration::from_secs(60), listening)
            .await
            .expect("moto started within a minute");
        Moto {
            _child: child,
            url: format!("http://{at}"),
        }
    }
}

/// `lanyard aws-credentials` for `account` and `role`, against moto's STS.
async fn aws_credentials(env: &Env, moto: &Moto, account: &str, role: &str) -> support::Run {
    let mut cmd = env.command(&["aws-credentials", "--account", account, "--role-arn", role]);
    cmd.env("AWS_ENDPOINT_URL", &moto.url);
    support::run_with_stdin(cmd, "").await
}

/// The AWS CLI, through a profile whose `credential_process` is Lanyard, asks STS who it
/// is: the role assumed with the account's ID token. Lanyard's answer is
/// `credential_process`'s format, a second call is served from the keychain, and
/// sign-out takes the credentials away.
#[tokio::test]
async fn the_aws_cli_gets_role_credentials_from_the_sign_in() {
    let idp = Idp::start(false);
    let mut env = signed_in(&idp, "aws-dev").await;
    let moto = Moto::start().await;
    let role = "arn:aws:iam::123456789012:role/dev";
    let config = env.path("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile lanyard]\nregion = us-east-1\ncredential_process = {} aws-credentials --account aws-dev --role-arn {role}\n",
            env!("CARGO_BIN_EXE_lanyard")
        ),
    )
    .unwrap();
    let mut aws = tokio::process::Command::new(venv("aws"));
    aws.args([
        "sts",
        "get-caller-identity",
        "--profile",
        "lanyard",
        "--output",
        "json",
    ])
    .envs(env.vars())
    .env("LANYARD_CONFIG", &env.config)
    .env("AWS_CONFIG_FILE", &config)
    .env("AWS_SHARED_CREDENTIALS_FILE", env.path("no-credentials"))
    .env("AWS_ENDPOINT_URL", &moto.url)
    .env_remove("AWS_ACCESS_KEY_ID")
    .env_remove("AWS_PROFILE")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let who = support::run_with_stdin(aws, "").await;
    let who = who.assert_ok().json();
    let arn = who["Arn"].as_str().unwrap_or_default();
    assert!(arn.ends_with(":assumed-role/dev/lanyard-aws-dev"), "{who}");

    let first = aws_credentials(&env, &moto, "aws-dev", role)
        .await
        .assert_ok()
        .json();
    assert_eq!(first["Version"], 1);
    assert!(
        first["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{first}"
    );
    assert!(
        first["SessionToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        first["Expiration"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    // From the keychain: the same credentials, not new ones.
    assert_eq!(
        aws_credentials(&env, &moto, "aws-dev", role)
            .await
            .assert_ok()
            .json()["AccessKeyId"],
        first["AccessKeyId"]
    );
    let cached = support::keychain("lanyard aws", "aws-dev").expect("kept in the keychain");
    assert!(cached.contains(role), "{cached}");

    // The cache belongs to the sign-in that made it: another sign-in to the account
    // (Bob's, on purpose) gets credentials of its own, never Alice's.
    env.set("LANYARD_TEST_LOGIN", "bob");
    env.set("LANYARD_TEST_BROWSER_PROFILE", &env.path("bob-profile"));
    env.lanyard(&["login", "aws-dev", "--as-new-user"])
        .await
        .assert_ok();
    let bobs = aws_credentials(&env, &moto, "aws-dev", role)
        .await
        .assert_ok()
        .json();
    assert_ne!(bobs["AccessKeyId"], first["AccessKeyId"], "{bobs}");

    // Sign-out takes them away with the tokens: none is handed out, none is kept.
    env.lanyard(&["logout", "aws-dev", "--local"])
        .await
        .assert_ok();
    assert_eq!(support::keychain("lanyard aws", "aws-dev"), None);
    let after = aws_credentials(&env, &moto, "aws-dev", role).await;
    assert_eq!(after.code, 3, "{after:?}");
    assert!(after.stdout.is_empty(), "{after:?}");
}

/// `lanyard gcp-credential` answers in the format Google documents for executable-sourced
/// credentials: version 1, success, the ID token type, the token and its expiry (the
/// token's own `exp`); a failure in the same shape, with a failing exit code. The
/// provider's ID tokens last two minutes here, less than Lanyard hands out, so the
/// answer's is a new one from a refresh.
#[tokio::test]
async fn the_gcp_executable_source_gets_a_fresh_id_token() {
    let idp = Idp::start_with(false, &["--id-token-ttl", "120"]);
    let env = signed_in(&idp, "gcp-dev").await;
    let at_sign_in = support::stored_tokens("gcp-dev").unwrap();
    let run = env
        .lanyard(&["gcp-credential", "--account", "gcp-dev"])
        .await;
    let answer = run.assert_ok().json();
    assert_eq!(answer["version"], 1, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(
        answer["token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );
    let token = answer["id_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], idp.issuer.as_str());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(answer["expiration_time"], claims["exp"], "{answer}");
    // A refresh happened: the access token is new. (The ID token itself may be the same
    // bytes: node-oidc-provider's carries no `jti`, RS256 is deterministic, and a refresh
    // in the sign-in's second gives the same `iat` and `exp`.)
    let stored = support::stored_tokens("gcp-dev").unwrap();
    assert_ne!(
        stored["access_token"], at_sign_in["access_token"],
        "refreshed"
    );
    assert_eq!(
        stored["id_token"], answer["id_token"],
        "the refresh's ID token is the one kept"
    );

    env.lanyard(&["logout", "gcp-dev", "--local"])
        .await
        .assert_ok();
    let run = env
        .lanyard(&["gcp-credential", "--account", "gcp-dev"])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    let answer: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["code"], "signinneeded", "{answer}");
}

/// While an agent runs, the cloud commands ask it for the ID token, under the account's
/// ID-token grant: an app allowed nothing, or only the account's access tokens, gets no
/// credentials (exit 8, with the command that allows it), and each refusal and allowance
/// is in the agent's audit log; allowed, both commands are served.
#[tokio::test]
async fn the_cloud_commands_ask_the_running_agent() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "cloud-ask").await;
    let _agent = env.start_agent().await;
    let moto = Moto::start().await;
    let role = "arn:aws:iam::123456789012:role/dev";
    let aws = || aws_credentials(&env, &moto, "cloud-ask", role);
    let gcp = || env.lanyard(&["gcp-credential", "--account", "cloud-ask"]);
    let me = crate::broker::me();
    let allow = format!("lanyard allow cloud-ask {me} --id-token");

    for grant in [None, Some(&[][..])] {
        if let Some(extra) = grant {
            let mut args = vec!["allow", "cloud-ask", me.as_str()];
            args.extend_from_slice(extra);
            env.lanyard(&args).await.assert_ok();
        }
        let refused = aws().await;
        refused.assert_fails(8, &allow);
        assert!(refused.stdout.is_empty(), "{refused:#?}");
        let refused = gcp().await;
        assert_eq!(refused.code, 8, "{refused:#?}");
        assert_eq!(refused.json()["success"], false, "{refused:#?}");
    }
    assert_eq!(
        support::keychain("lanyard aws", "cloud-ask"),
        None,
        "nothing was asked of STS"
    );

    env.lanyard(&["allow", "cloud-ask", &me, "--id-token"])
        .await
        .assert_ok();
    let served = aws().await.assert_ok().json();
    assert!(
        served["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
        "{served}"
    );
    let answer = gcp().await.assert_ok().json();
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(
        answer["id_token"],
        support::stored_tokens("cloud-ask").unwrap()["id_token"]
    );

    // Denied the ID token (and only it): the cloud commands are refused again, the
    // account's access tokens are not.
    env.lanyard(&["deny", "cloud-ask", &me, "--id-token"])
        .await
        .assert_ok();
    gcp()
        .await
        .assert_fails(8, &format!("{me} may not use cloud-ask's ID token"));
    env.lanyard(&["token", "cloud-ask"]).await.assert_ok();

    // The audit log names the app, refused and then allowed the ID token.
    let audit =
        std::fs::read_to_string(std::path::Path::new(&env.path("data")).join("lanyard/audit.log"))
            .expect("the agent keeps an audit log");
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["account"] == "cloud-ask#id_token" && l["app"] == me.as_str())
        .collect();
    let decisions: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["decision"].as_str())
        .collect();
    assert!(
        decisions.contains(&"approval_required")
            && decisions.contains(&"allowed")
            && decisions.last() == Some(&"denied"),
        "{audit}"
    );
}
