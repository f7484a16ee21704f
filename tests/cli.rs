//! The command line's contract: errors that say what to do, exit codes, JSON output.

use crate::support::fake_idp::{self, Behaviour, FakeIdp};
use crate::support::{Env, root};

#[tokio::test]
async fn malformed_config_names_file_line_and_key() {
    let env = Env::new();
    std::fs::write(
        &env.config,
        "[accounts.work]\nissuer = \"http://id.example.com\"\nclient_id = \"x\"\n",
    )
    .unwrap();
    let run = env.lanyard(&["status"]).await;
    let expected = format!(
        "{}:2:10: accounts.work.issuer: http is allowed only for loopback hosts",
        env.config.display()
    );
    run.assert_fails(2, &expected);

    std::fs::write(&env.config, "[accounts.work]\nissuer = \"https://id.example.com\"\nclient_id = \"x\"\nmax_age = \"soon\"\n")
        .unwrap();
    env.lanyard(&["accounts"])
        .await
        .assert_fails(2, "config.toml:4:11: accounts.work.max_age: invalid type");
}

#[tokio::test]
async fn unknown_account_and_not_signed_in() {
    let env = Env::new();
    env.account(
        "cli-known",
        "issuer = \"https://id.example.com\"\nclient_id = \"x\"",
    );
    env.lanyard(&["login", "nobody"])
        .await
        .assert_fails(2, "no account named `nobody`");
    env.lanyard(&["token", "cli-known"])
        .await
        .assert_fails(3, "run `lanyard login cli-known`");
    env.lanyard(&["whoami", "cli-known", "--json"])
        .await
        .assert_fails(3, "not signed in");
    env.lanyard(&["login"])
        .await
        .assert_fails(2, "Usage: lanyard login");
}

#[tokio::test]
async fn json_listings() {
    let env = Env::new();
    env.account(
        "cli-a",
        "issuer = \"https://id.example.com\"\nclient_id = \"x\"\nredirect = \"loopback:8400\"",
    );
    let accounts = env.lanyard(&["accounts", "--json"]).await;
    let accounts = accounts.assert_ok().json();
    assert_eq!(accounts[0]["name"], "cli-a");
    assert_eq!(accounts[0]["redirect"], "loopback:8400");
    assert_eq!(accounts[0]["scopes"][3], "offline_access");
    let status = env.lanyard(&["status", "--json"]).await;
    assert_eq!(status.assert_ok().json()[0]["status"], "signed_out");
}

/// Without a usable keychain: a clear error that says what to do, and no fallback file;
/// with `--store memory` the sign-in works and leaves nothing behind.
#[tokio::test]
async fn no_keychain() {
    let idp = FakeIdp::start(Behaviour::default()).await;
    let mut env = Env::new();
    env.set(
        "BROWSER",
        &format!("node {}", root().join("tests/support/follow.mjs").display()),
    );
    env.set(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/lanyard-test-bus",
    );
    env.account(
        "cli-nokeychain",
        &format!(
            "issuer = \"{}\"\nclient_id = \"{}\"",
            idp.issuer,
            fake_idp::CLIENT_ID
        ),
    );

    let run = env.lanyard(&["login", "cli-nokeychain"]).await;
    run.assert_fails(6, "the OS keychain is not available");
    assert!(run.stderr.contains("store = \"memory\""), "{run:?}");
    assert!(
        idp.redeemed().is_empty(),
        "the browser is not sent before the keychain works"
    );
    env.lanyard_with_stdin(&["accounts", "set-secret", "cli-nokeychain"], "s3cret")
        .await
        .assert_fails(6, "the OS keychain is not available");

    let run = env
        .lanyard(&["--store", "memory", "login", "cli-nokeychain", "--json"])
        .await;
    assert_eq!(run.assert_ok().json()["store"], "memory");
    assert!(env.data_files().is_empty(), "{:?}", env.data_paths());
}

#[tokio::test]
async fn no_browser_prints_the_link() {
    let idp = FakeIdp::start(Behaviour::default()).await;
    let env = Env::new();
    env.account(
        "cli-nobrowser",
        &format!(
            "issuer = \"{}\"\nclient_id = \"{}\"",
            idp.issuer,
            fake_idp::CLIENT_ID
        ),
    );
    let run = env
        .lanyard(&["login", "cli-nobrowser", "--no-browser", "--timeout", "1"])
        .await;
    run.assert_fails(7, "Open this link in your browser:");
    // The link is Lanyard's one-time page on 127.0.0.1, which sends the browser on to the
    // provider: what it prints (or puts on a browser's command line) carries no state,
    // nonce or PKCE challenge.
    let link = run
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no link: {run:?}"));
    assert!(!link.contains('?'), "{run:?}");
    assert!(!run.stderr.contains(&idp.issuer), "{run:?}");
    assert!(env.browser_runs().is_empty());
}

/// A keychain that is locked is found before the browser opens, not after the person
/// signed in: the real gnome-keyring of a session of its own, unlocked, then locked over
/// D-Bus (no prompter can unlock it here). `lanyard login` fails with exit 6, says the
/// keychain is locked, and the provider saw no sign-in.
#[tokio::test]
async fn a_locked_keychain_is_found_before_the_browser_opens() {
    let idp = crate::support::Idp::start(false);
    let env = Env::new();
    env.public_account("cli-locked", &idp);
    let lock = "dbus-send --session --dest=org.freedesktop.secrets --print-reply \
                /org/freedesktop/secrets org.freedesktop.Secret.Service.Lock \
                array:objpath:/org/freedesktop/secrets/collection/login >/dev/null && exec \"$@\"";
    let mut cmd = env.command(&[]);
    let lanyard = env!("CARGO_BIN_EXE_lanyard");
    let cmd = {
        let std = cmd.as_std_mut();
        let mut wrapped = tokio::process::Command::new("dbus-run-session");
        wrapped
            .arg("--")
            .arg(root().join("target/debug/xtask"))
            .args(["keyring-session", "--", "sh", "-c", lock, "sh"])
            .args([lanyard, "login", "cli-locked"])
            .envs(std.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        wrapped
    };
    let run = crate::support::run_with_stdin(cmd, "").await;
    run.assert_fails(6, "the keychain is locked");
    let events = idp.events().await;
    assert!(
        !events
            .iter()
            .any(|e| e == "grant.success" || e == "access_token.saved"),
        "the provider saw a sign-in: {events:?}"
    );
    assert!(env.browser_runs().is_empty(), "{:?}", env.browser_runs());
}
