//! `[[match]]`: the right account per directory, or per git remote, for `lanyard token`,
//! `lanyard whoami` and git's credential helper when they name none.

use std::path::Path;

use crate::support::{Env, Idp, Run};

/// `lanyard ARGS` run in `dir`.
async fn lanyard_in(env: &Env, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = env.command(args);
    cmd.current_dir(dir);
    crate::support::run_with_stdin(cmd, "").await
}

/// Two accounts signed in as two people; a repository whose remote is under
/// git.acme.test/acme picks one, a work directory the other, and elsewhere nothing is
/// picked (exit 2, with what to add). whoami says which rule picked, and git's helper,
/// run by the real git in the repository, gets the repository's account.
#[tokio::test]
async fn the_directory_or_the_git_remote_picks_the_account() {
    let idp = Idp::start(false);
    let mut env = Env::new();
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("src/api");
    let work = root.path().join("work");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(work.join("deep/down")).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    git(&["remote", "add", "origin", "git@git.acme.test:Acme/api.git"]);
    let issuer = &idp.issuer;
    env.account(
        "m-acme",
        &format!(
            "issuer = \"{issuer}\"\nclient_id = \"lanyard-public\"\ngit_hosts = [\"git.acme.test\"]"
        ),
    );
    env.account(
        "m-work",
        &format!("issuer = \"{issuer}\"\nclient_id = \"lanyard-public\""),
    );
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "[[match]]\nremote = \"git.acme.test/acme\"\naccount = \"m-acme\"\n\n\
             [[match]]\ndirectory = \"{}\"\naccount = \"m-work\"\n\n{config}",
            work.display()
        ),
    )
    .unwrap();
    // Bob at Acme, Alice at work (each in a browser of their own).
    env.set("LANYARD_TEST_LOGIN", "bob");
    env.lanyard(&["login", "m-acme"]).await.assert_ok();
    env.set("LANYARD_TEST_LOGIN", "alice");
    env.set("LANYARD_TEST_BROWSER_PROFILE", &env.path("alice-profile"));
    env.lanyard(&["login", "m-work"]).await.assert_ok();

    let who = |run: Run| {
        let token = run.assert_ok().stdout.trim().to_owned();
        let idp = &idp;
        async move { idp.userinfo(&token).await["sub"].clone() }
    };
    assert_eq!(who(lanyard_in(&env, &repo, &["token"]).await).await, "bob");
    assert_eq!(
        who(lanyard_in(&env, &work.join("deep/down"), &["token"]).await).await,
        "alice"
    );
    // A name given wins over the rules.
    assert_eq!(
        who(lanyard_in(&env, &repo, &["token", "m-work"]).await).await,
        "alice"
    );
    lanyard_in(&env, root.path(), &["token"])
        .await
        .assert_fails(2, "no [[match]] rule");

    let whoami = lanyard_in(&env, &repo, &["whoami"]).await;
    assert!(
        whoami
            .assert_ok()
            .stdout
            .contains("m-acme (picked by [[match]] #1: remote git.acme.test/acme)"),
        "{whoami:?}"
    );
    let json = lanyard_in(&env, &work, &["whoami", "--json"]).await;
    let json = json.assert_ok().json();
    assert_eq!(json["account"], "m-work");
    assert!(
        json["picked_by"].as_str().unwrap().contains("directory"),
        "{json}"
    );

    // The real git, in the repository, with the helper naming no account.
    let mut fill = tokio::process::Command::new("git");
    fill.args(["-c", "credential.helper="])
        .arg("-c")
        .arg(format!(
            "credential.helper=!{} git-credential",
            env!("CARGO_BIN_EXE_lanyard")
        ))
        .args(["credential", "fill"])
        .current_dir(&repo)
        .envs(env.vars())
        .env("LANYARD_CONFIG", &env.config)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let filled =
        crate::support::run_with_stdin(fill, "protocol=https\nhost=git.acme.test\n\n").await;
    let password = filled
        .assert_ok()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap_or_else(|| panic!("{filled:?}"))
        .to_owned();
    assert_eq!(idp.userinfo(&password).await["sub"], "bob");
}
