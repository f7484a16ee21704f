//! Sign-in against the real provider, through the real browser, into the real keychain.

use serde_json::json;

use crate::support::{Env, Idp, free_port, keychain, stored_tokens};

async fn seen(env: &Env, run: usize) -> Vec<String> {
    let entry = env.browser_run(run).await;
    assert!(entry.get("error").is_none(), "the browser failed: {entry}");
    serde_json::from_value(entry["seen"].clone()).unwrap()
}

/// Scan-to-sign-in (RFC 8628): the CLI shows a code, the person signs in on their phone
/// (the test's browser, on the provider's device pages), and the CLI is signed in.
#[tokio::test]
async fn device_flow_signs_in_on_another_device() {
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "tv",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\nmax_age = 0",
            idp.issuer
        ),
    );
    let (cli, url) = env.login_device("tv").await;
    assert!(url.contains("user_code="), "{url}");
    env.phone(&url).await;
    let out = cli.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Signed in to tv as Alice Example <alice@example.test>."
    );
    let pages = seen(&env, 0).await;
    assert!(
        pages.contains(&"login".to_owned()) && pages.contains(&"success".to_owned()),
        "{pages:?}"
    );
    let whoami = env.lanyard(&["whoami", "tv", "--json"]).await;
    whoami.assert_ok();
    assert!(
        whoami.stdout.contains("\"sub\": \"alice\""),
        "{}",
        whoami.stdout
    );
    assert!(stored_tokens("tv").is_some());
    env.lanyard(&["logout", "tv", "--local"]).await.assert_ok();
}

/// The whole life of a sign-in over https: login, whoami, token, refresh with rotation,
/// logout with revocation and end-session, and a provider session that really ended.
#[tokio::test]
async fn lifecycle_over_tls() {
    let idp = Idp::start(true);
    let mut env = Env::new();
    env.trust(&idp);
    let name = "flow-tls";
    env.account(
        name,
        &format!("issuer = \"{}\"\nclient_id = \"lanyard-public\"\nscopes = \"openid profile email groups offline_access\"", idp.issuer),
    );

    let run = env.lanyard(&["login", name]).await;
    run.assert_ok();
    assert_eq!(
        run.stdout.trim(),
        format!("Signed in to {name} as Alice Example <alice@example.test>.")
    );
    assert!(
        run.stderr.contains("Waiting for you in the browser"),
        "{run:?}"
    );
    assert_eq!(seen(&env, 0).await, ["login", "consent"]);
    let page = env.browser_run(0).await;
    assert!(
        page["text"]
            .as_str()
            .unwrap()
            .contains("You are signed in to flow-tls as Alice Example"),
        "{page}"
    );

    let who = env.lanyard(&["whoami", name, "--json"]).await;
    let who = who.assert_ok().json();
    assert_eq!(who["name"], "Alice Example");
    assert_eq!(who["email"], "alice@example.test");
    assert_eq!(who["picture"], "https://example.test/alice.png");
    assert_eq!(who["groups"], json!(["staff", "developers"]));
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["issuer"], idp.issuer.as_str());
    assert_eq!(who["claims"]["email_verified"], true);
    assert!(who["claims"].get("nonce").is_none());
    let human = env.lanyard(&["whoami", name]).await;
    assert!(
        human
            .assert_ok()
            .stdout
            .contains("groups     staff, developers"),
        "{human:?}"
    );

    // The tokens are in the keychain and nowhere else.
    let stored = stored_tokens(name).expect("tokens in the keychain");
    let refresh_1 = stored["refresh_token"].as_str().unwrap().to_owned();
    let access_1 = stored["access_token"].as_str().unwrap().to_owned();
    for (path, text) in env.data_files() {
        for token in [
            refresh_1.as_str(),
            access_1.as_str(),
            stored["id_token"].as_str().unwrap(),
        ] {
            assert!(!text.contains(token), "a token is in {}", path.display());
        }
    }

    let token = env.lanyard(&["token", name, "--json"]).await;
    let token = token.assert_ok().json();
    assert_eq!(token["access_token"], access_1.as_str());
    assert_eq!(token["refreshed"], false);
    let raw = env.lanyard(&["token", name]).await;
    assert_eq!(raw.assert_ok().stdout, format!("{access_1}\n"));

    // More validity than the token has forces a refresh; the provider rotates the refresh
    // token. Logging at every level, of every crate, shows no token.
    env.set("RUST_LOG", "trace");
    let refreshed = env
        .lanyard(&["token", name, "--min-valid", "7200", "--json"])
        .await;
    env.unset("RUST_LOG");
    assert!(refreshed.stderr.contains("TRACE"), "trace logging was on");
    let log = refreshed.stderr.clone();
    assert!(
        refreshed.stderr.contains("less than the 7200 s asked for"),
        "{refreshed:?}"
    );
    let refreshed = refreshed.assert_ok().json();
    assert_eq!(refreshed["refreshed"], true);
    assert_ne!(refreshed["access_token"], access_1.as_str());
    let stored = stored_tokens(name).unwrap();
    assert_eq!(stored["access_token"], refreshed["access_token"]);
    let refresh_2 = stored["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(
        refresh_2, refresh_1,
        "the rotated refresh token replaced the old one"
    );
    for token in [&access_1, &refresh_1, &refresh_2] {
        assert!(!log.contains(token.as_str()), "a token reached the log");
    }
    assert!(
        !log.contains(stored["access_token"].as_str().unwrap()),
        "a token reached the log"
    );
    // The stored (rotated) one works: a second refresh succeeds and rotates again.
    env.lanyard(&["token", name, "--min-valid", "7200"])
        .await
        .assert_ok();
    assert_ne!(
        stored_tokens(name).unwrap()["refresh_token"],
        refresh_2.as_str()
    );

    // A replayed old refresh token makes the provider revoke the whole grant (reuse
    // detection); Lanyard then says a sign-in is needed, with the exit code for it.
    let reuse = idp.try_refresh("lanyard-public", &refresh_1).await;
    assert_eq!(
        reuse["error"], "invalid_grant",
        "the provider rejects the old refresh token"
    );
    env.lanyard(&["token", name, "--min-valid", "7200"])
        .await
        .assert_fails(
            3,
            "sign-in needed: the provider no longer accepts the refresh token (invalid_grant)",
        );
    let status = env.lanyard(&["status", "--json"]).await;
    assert_eq!(status.assert_ok().json()[0]["status"], "sign_in_needed");
    env.lanyard(&["token", name])
        .await
        .assert_fails(3, "invalid_grant");

    // Signing in again reuses the provider session: no login form.
    env.lanyard(&["login", name]).await.assert_ok();
    assert!(
        !seen(&env, 1).await.contains(&"login".to_owned()),
        "{:?}",
        env.browser_runs()
    );
    env.lanyard(&["token", name]).await.assert_ok();

    let refresh_3 = stored_tokens(name).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env.lanyard(&["logout", name]).await;
    assert_eq!(
        out.assert_ok().stdout.trim(),
        format!(
            "Signed out of {name}; revoked the refresh_token and the access_token; the provider session has ended."
        )
    );
    assert!(
        !out.stderr.contains("id_token_hint"),
        "the ID token must not be printed: {out:?}"
    );
    assert_eq!(seen(&env, 2).await, ["logout"]);
    let events = idp.events().await;
    assert!(
        events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
    assert_eq!(
        idp.try_refresh("lanyard-public", &refresh_3).await["error"],
        "invalid_grant"
    );
    assert!(stored_tokens(name).is_none());
    assert!(env.data_files().is_empty(), "{:?}", env.data_paths());
    env.lanyard(&["token", name]).await.assert_fails(
        3,
        "sign-in needed: not signed in; run `lanyard login flow-tls`",
    );

    // The provider session ended: the next sign-in asks for credentials again.
    env.lanyard(&["login", name]).await.assert_ok();
    assert!(
        seen(&env, 3).await.contains(&"login".to_owned()),
        "{:?}",
        env.browser_runs()
    );
}

/// Confidential clients: the secret comes from the keychain, sent as discovery and the
/// account say (client_secret_basic, client_secret_post), at the token endpoint and first
/// at the pushed authorization request endpoint, which this provider requires.
#[tokio::test]
async fn confidential_clients() {
    let idp = Idp::start_with(false, &["--require-par"]);
    let env = Env::new();
    env.account(
        "flow-basic",
        &format!("issuer = \"{}\"\nclient_id = \"lanyard-basic\"", idp.issuer),
    );
    env.account(
        "flow-post",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-post\"\nclient_auth = \"client_secret_post\"",
            idp.issuer
        ),
    );
    // Without its secret the provider refuses the client: a configuration error (exit
    // 2, not "the provider failed, try again"), which says what to check.
    env.lanyard(&["login", "flow-basic"])
        .await
        .assert_fails(2, "invalid_client")
        .assert_fails(2, "check the client id");
    assert!(stored_tokens("flow-basic").is_none());

    env.lanyard_with_stdin(
        &["accounts", "set-secret", "flow-basic"],
        "basic-secret-0123456789\n",
    )
    .await
    .assert_ok();
    assert_eq!(
        keychain("lanyard client secret", "flow-basic").as_deref(),
        Some("basic-secret-0123456789")
    );
    env.lanyard_with_stdin(
        &["accounts", "set-secret", "flow-post"],
        "post-secret-0123456789",
    )
    .await
    .assert_ok();
    env.lanyard(&["login", "flow-basic"]).await.assert_ok();
    env.lanyard(&["login", "flow-post"]).await.assert_ok();
    let pushed = idp.events().await;
    let pushed = pushed
        .iter()
        .filter(|e| *e == "pushed_authorization_request.success")
        .count();
    assert_eq!(pushed, 2, "both sign-ins were pushed requests");
    // Refresh and revocation authenticate the same way.
    env.lanyard(&["token", "flow-post", "--min-valid", "7200"])
        .await
        .assert_ok();
    let out = env.lanyard(&["logout", "flow-post"]).await;
    assert!(
        out.stdout
            .contains("revoked the refresh_token and the access_token"),
        "{out:?}"
    );
}

/// Pushed authorization requests (RFC 9126): where the provider takes them, the request
/// goes to it first, and the browser carries only the client's id and a reference to the
/// request. This provider takes no other kind.
#[tokio::test]
async fn pushed_authorization_requests() {
    let idp = Idp::start_with(false, &["--require-par"]);
    let env = Env::new();
    env.public_account("flow-par", &idp);
    env.lanyard(&["login", "flow-par"]).await.assert_ok();
    let run = env.browser_run(0).await;
    assert_eq!(run["named"], json!(["client_id", "request_uri"]), "{run}");
    let events = idp.events().await;
    assert!(
        events.contains(&"pushed_authorization_request.success".to_owned())
            && !events.contains(&"authorization.error".to_owned()),
        "{events:?}"
    );
    let token = env.access_token("flow-par", &[]).await;
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
}

/// A fixed loopback port, for providers that match redirect URIs exactly.
#[tokio::test]
async fn fixed_loopback_port() {
    let idp = Idp::start(false);
    let env = Env::new();
    let port = free_port();
    env.account(
        "flow-port",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\nredirect = \"loopback:{port}\"",
            idp.issuer
        ),
    );
    env.lanyard(&["login", "flow-port"]).await.assert_ok();
    assert_eq!(
        env.browser_run(0).await["url"],
        format!("http://127.0.0.1:{port}/callback")
    );

    // `logout --local` forgets here and tells the provider nothing.
    let refresh = stored_tokens("flow-port").unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env.lanyard(&["logout", "flow-port", "--local"]).await;
    assert_eq!(out.assert_ok().stdout.trim(), "Signed out of flow-port.");
    assert!(stored_tokens("flow-port").is_none());
    assert!(env.data_files().is_empty(), "{:?}", env.data_paths());
    let events = idp.events().await;
    assert!(
        !events
            .iter()
            .any(|e| e == "grant.revoked" || e == "end_session.success"),
        "{events:?}"
    );
    assert!(idp.try_refresh("lanyard-public", &refresh).await["access_token"].is_string());
}

/// The person says no at the provider: its error is reported as sent, nothing stored.
#[tokio::test]
async fn refused_at_the_provider() {
    let idp = Idp::start(false);
    let mut env = Env::new();
    env.set("LANYARD_TEST_BROWSER_ACTION", "deny");
    env.public_account("flow-deny", &idp);
    env.lanyard(&["login", "flow-deny"]).await.assert_fails(
        7,
        "the provider refused the sign-in: access_denied (End-User aborted interaction)",
    );
    assert!(stored_tokens("flow-deny").is_none());
    assert!(
        env.browser_run(0).await["text"]
            .as_str()
            .unwrap()
            .contains("access_denied")
    );
}

/// Nobody completes the sign-in: a clear message after the timeout.
#[tokio::test]
async fn times_out_waiting_for_the_browser() {
    let idp = Idp::start(false);
    let mut env = Env::new();
    env.set("LANYARD_TEST_BROWSER_ACTION", "ignore");
    env.public_account("flow-timeout", &idp);
    env.lanyard(&["login", "flow-timeout", "--timeout", "2"])
        .await
        .assert_fails(7, "no sign-in arrived from the browser within 2 s");
}

/// A keychain that lost the tokens (reset, or a session's only) makes the account say
/// "sign-in needed", in the record every front end reads, not only in one error.
#[tokio::test]
async fn a_keychain_without_the_tokens_means_sign_in_needed() {
    let idp = Idp::start(false);
    let env = Env::new();
    env.public_account("lost", &idp);
    env.lanyard(&["login", "lost"]).await.assert_ok();
    let cleared = std::process::Command::new("secret-tool")
        .args(["clear", "service", "lanyard", "username", "lost"])
        .status()
        .unwrap();
    assert!(cleared.success());
    env.lanyard(&["token", "lost"])
        .await
        .assert_fails(3, "no tokens are stored");
    let status = env.lanyard(&["status", "--json"]).await.assert_ok().json();
    assert_eq!(status[0]["status"], "sign_in_needed", "{status}");
}

/// `logout --no-browser`, as a script runs it: revoked and forgotten at once, with the
/// provider's sign-out page as a link that carries no token, and no browser; the same
/// through the agent. Nobody signed in: nothing to do at the provider, and no browser.
#[tokio::test]
async fn signing_out_without_a_browser_returns_at_once_with_the_link() {
    let idp = Idp::start(false);
    let env = crate::broker::signed_in(&idp, "flow-nb").await;
    // The sign-in's own browser run is logged before anything else is asked.
    env.browser_run(0).await;
    let check = |out: crate::support::Run, refresh: String| {
        let idp = &idp;
        async move {
            let done = out.assert_ok().json();
            assert_eq!(done["was_signed_in"], true, "{done}");
            assert_eq!(done["end_session"], "link", "{done}");
            let link = done["end_session_url"].as_str().unwrap_or_default();
            assert!(
                link.starts_with(&idp.issuer) && link.contains("client_id=lanyard-public"),
                "{done}"
            );
            assert!(
                !link.contains("id_token_hint") && !link.contains("eyJ"),
                "{done}"
            );
            assert!(
                done["revoked"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("refresh_token")),
                "{done}"
            );
            assert_eq!(
                idp.try_refresh("lanyard-public", &refresh).await["error"],
                "invalid_grant"
            );
        }
    };
    let refresh = |name: &str| {
        stored_tokens(name).unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = refresh("flow-nb");
    let out = env
        .lanyard(&["logout", "flow-nb", "--no-browser", "--json"])
        .await;
    check(out, before).await;
    assert_eq!(stored_tokens("flow-nb"), None);

    // Through the agent, the same.
    env.lanyard(&["login", "flow-nb"]).await.assert_ok();
    env.browser_run(1).await;
    let _agent = env.start_agent().await;
    let before = refresh("flow-nb");
    let out = env
        .lanyard(&["logout", "flow-nb", "--no-browser", "--json"])
        .await;
    check(out, before).await;

    // Nobody signed in now: a sign-out with the browser opens none.
    let out = env.lanyard(&["logout", "flow-nb", "--json"]).await;
    let done = out.assert_ok().json();
    assert_eq!(done["was_signed_in"], false, "{done}");
    assert_eq!(done["end_session"], "skipped", "{done}");
    assert_eq!(env.browser_runs().len(), 2, "{:?}", env.browser_runs());
}
