//! Each preset signs in end to end against a node-oidc-provider profile that reproduces
//! the provider's documented shape (tests/idp/server.mjs), and each quirk has a test that
//! fails without the code that handles it.

use serde_json::{Value, json};

use crate::support::{Env, Idp, Run, free_port, stored_tokens};

/// `accounts add NAME --preset PRESET --issuer EMULATION …`, then the client secret.
async fn add(
    env: &Env,
    idp: &Idp,
    name: &str,
    preset: &str,
    client_id: &str,
    extra: &[&str],
    secret: Option<&str>,
) {
    let mut args = vec![
        "accounts",
        "add",
        name,
        "--preset",
        preset,
        "--client-id",
        client_id,
        "--issuer",
        &idp.issuer,
    ];
    args.extend_from_slice(extra);
    env.lanyard(&args).await.assert_ok();
    if let Some(secret) = secret {
        env.lanyard_with_stdin(&["accounts", "set-secret", name], secret)
            .await
            .assert_ok();
    }
}

async fn whoami(env: &Env, name: &str) -> Value {
    env.lanyard(&["whoami", name, "--json"])
        .await
        .assert_ok()
        .json()
}

fn seen(run: &Value) -> Vec<String> {
    assert!(run.get("error").is_none(), "the browser failed: {run}");
    serde_json::from_value(run["seen"].clone()).unwrap()
}

#[tokio::test]
async fn presets_are_listed() {
    let env = Env::new();
    let list = env.lanyard(&["presets", "--json"]).await;
    let list = list.assert_ok().json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "hepgg",
            "hackclub",
            "propper",
            "hello",
            "ggleap",
            "ggleap-beta"
        ]
    );
    let hello = &list[3];
    assert_eq!(
        hello["branding"],
        json!({"label": "Continue with Hellō", "background": "#303030", "foreground": "#ffffff", "mark": "ō"})
    );
    assert_eq!(list[4]["issuer"], "https://api.ggleap.com/production/oidc");
    assert_eq!(list[5]["issuer"], "https://api.ggleap.com/beta/oidc");
    let human = env.lanyard(&["presets"]).await;
    assert!(
        human
            .assert_ok()
            .stdout
            .contains("slack_id             your Hack Club Slack ID"),
        "{human:?}"
    );
    env.lanyard(&[
        "accounts",
        "add",
        "x",
        "--preset",
        "nope",
        "--client-id",
        "c",
    ])
    .await
    .assert_fails(
        2,
        "unknown preset `nope`; known: hepgg, hackclub, propper, hello, ggleap, ggleap-beta",
    );
}

/// Hep.gg: groups, RS256 JWT access tokens whose claims are shown, refresh, and a logout
/// that revokes and ends the session; the client secret comes from the keychain.
#[tokio::test]
async fn hepgg() {
    let idp = Idp::profile("hepgg", &[]);
    let env = Env::new();
    add(
        &env,
        &idp,
        "hep",
        "hepgg",
        "hepgg-app",
        &[],
        Some("hepgg-secret-0123456789"),
    )
    .await;
    env.lanyard(&["login", "hep"]).await.assert_ok();
    let who = whoami(&env, "hep").await;
    assert_eq!(who["groups"], json!(["staff", "developers"]));
    assert_eq!(who["access_token_claims"]["aud"], "https://api.hep.gg");
    assert_eq!(who["access_token_claims"]["sub"], "alice");
    let human = env.lanyard(&["whoami", "hep"]).await;
    assert!(
        human.assert_ok().stdout.contains("access token claims"),
        "{human:?}"
    );
    let token = env.lanyard(&["token", "hep"]).await;
    assert_eq!(
        token.assert_ok().stdout.trim().split('.').count(),
        3,
        "a JWT access token"
    );
    env.lanyard(&["token", "hep", "--min-valid", "7200"])
        .await
        .assert_ok();
    let out = env.lanyard(&["logout", "hep"]).await;
    // Its JWT access tokens cannot be revoked (RFC 7009 unsupported_token_type): said, not fatal.
    assert_eq!(
        out.assert_ok().stdout.trim(),
        "Signed out of hep; revoked the refresh_token; the provider session has ended."
    );
    assert!(
        out.stderr
            .contains("the provider cannot revoke its access_tokens"),
        "{out:?}"
    );
    let events = idp.events().await;
    assert!(
        events.contains(&"end_session.success".into()) && events.contains(&"grant.revoked".into()),
        "{events:?}"
    );
}

/// Hack Club Auth: a confidential client (client_secret_post), custom scopes and claims,
/// a structured address, opaque `idntk.` tokens, no refresh token, `--reauth`, max_age.
#[tokio::test]
async fn hackclub() {
    let idp = Idp::profile("hackclub", &[]);
    let mut env = Env::new();
    env.set("LANYARD_TEST_LOGIN", "ident!alice");
    let scopes = "openid profile email phone address birthdate slack_id verification_status";
    add(
        &env,
        &idp,
        "hca",
        "hackclub",
        "hackclub-app",
        &["--scopes", scopes],
        Some("hackclub-secret-0123456789"),
    )
    .await;
    env.lanyard(&["login", "hca"]).await.assert_ok();
    let who = whoami(&env, "hca").await;
    assert_eq!(who["subject"], "ident!alice");
    assert_eq!(who["claims"]["slack_id"], "U0123ALICE");
    assert_eq!(who["claims"]["verification_status"], "verified");
    assert_eq!(who["claims"]["ysws_eligible"], true);
    assert_eq!(who["claims"]["address"]["locality"], "Shelburne");
    assert_eq!(who["claims"]["phone_number"], "+1 802 555 0100");
    assert_eq!(who["claims"]["birthdate"], "2001-04-05");
    let token = env.lanyard(&["token", "hca"]).await;
    assert!(token.assert_ok().stdout.starts_with("idntk."), "{token:?}");
    env.lanyard(&["token", "hca", "--min-valid", "7200"])
        .await
        .assert_fails(3, "the provider gave no refresh token");

    // A second sign-in reuses the provider session; --reauth asks for credentials again.
    env.lanyard(&["login", "hca"]).await.assert_ok();
    assert!(!seen(&env.browser_run(1).await).contains(&"login".into()));
    env.lanyard(&["login", "hca", "--reauth"]).await.assert_ok();
    assert!(
        seen(&env.browser_run(2).await).contains(&"login".into()),
        "--reauth sends prompt=login"
    );

    // max_age = 0: every sign-in is a fresh one, and auth_time is checked.
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str("max_age = 0\n");
    std::fs::write(&env.config, config).unwrap();
    env.lanyard(&["login", "hca"]).await.assert_ok();
    assert!(
        seen(&env.browser_run(3).await).contains(&"login".into()),
        "max_age=0 forces a new login"
    );
    assert!(whoami(&env, "hca").await["claims"]["auth_time"].is_u64());

    let out = env.lanyard(&["logout", "hca"]).await;
    assert_eq!(
        out.assert_ok().stdout.trim(),
        "Signed out of hca; the provider offers no sign-out page."
    );
}

/// Propper: nonce, roles from userinfo, custom scopes, client credentials, refresh token
/// revoked on logout.
#[tokio::test]
async fn propper() {
    let idp = Idp::profile("propper", &[]);
    let env = Env::new();
    add(
        &env,
        &idp,
        "prop",
        "propper",
        "propper-app",
        &[],
        Some("propper-secret-0123456789"),
    )
    .await;
    env.lanyard(&["login", "prop"]).await.assert_ok();
    let who = whoami(&env, "prop").await;
    assert_eq!(who["roles"], json!(["admin", "user"]));
    let human = env.lanyard(&["whoami", "prop"]).await;
    assert!(
        human.assert_ok().stdout.contains("roles      admin, user"),
        "{human:?}"
    );
    let service = env
        .lanyard(&[
            "token",
            "prop",
            "--client-credentials",
            "--scope",
            "sign:read",
            "--json",
        ])
        .await;
    let service = service.assert_ok().json();
    assert!(service["access_token"].as_str().unwrap().len() > 20);
    assert_ne!(
        service["access_token"],
        stored_tokens("prop").unwrap()["access_token"]
    );
    env.lanyard(&["token", "prop", "--min-valid", "7200"])
        .await
        .assert_ok();
    let refresh = stored_tokens("prop").unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env.lanyard(&["logout", "prop"]).await;
    assert!(
        out.assert_ok().stdout.contains("revoked the refresh_token"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("the provider offers no sign-out page"),
        "{out:?}"
    );
    let basic = format!("Basic {}", b64("propper-app:propper-secret-0123456789"));
    assert_eq!(
        idp.try_refresh_with(&basic, &refresh).await["error"],
        "invalid_grant"
    );
}

/// Hellō: response_type=id_token with form_post and with fragment, nonce, a `scope` claim
/// that is an array, no access token (and `token` says why), optional introspection, and
/// the code flow as an alternative.
#[tokio::test]
async fn hello() {
    let idp = Idp::profile("hello", &[]);
    let env = Env::new();
    add(&env, &idp, "hello", "hello", "hello-app", &[], None).await;
    let login = env.lanyard(&["login", "hello"]).await;
    login.assert_ok();
    let who = whoami(&env, "hello").await;
    assert_eq!(who["name"], "Alice Example");
    assert_eq!(who["claims"]["nickname"], "Ali");
    assert!(who["claims"]["scope"].is_array(), "{who}");
    assert_eq!(who["response_type"], "id_token");
    assert!(stored_tokens("hello").unwrap()["access_token"].is_null());
    env.lanyard(&["token", "hello"])
        .await
        .assert_fails(2, "no access token to call APIs with");
    let human = env.lanyard(&["whoami", "hello"]).await;
    assert!(
        human
            .assert_ok()
            .stdout
            .contains("none: this account signs in with an ID token only"),
        "{human:?}"
    );

    // The fragment response mode, with the ID token checked at the introspection endpoint.
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(&format!(
        "\n[accounts.hello-fragment]\npreset = \"hello\"\nissuer = \"{}\"\nclient_id = \"hello-app\"\n\
         scopes = \"openid name email\"\nresponse_type = \"id_token\"\nresponse_mode = \"fragment\"\nintrospect = true\n",
        idp.issuer
    ));
    std::fs::write(&env.config, config).unwrap();
    env.lanyard(&["login", "hello-fragment"]).await.assert_ok();
    assert_eq!(
        whoami(&env, "hello-fragment").await["email"],
        "alice@example.test"
    );
    assert!(
        idp.events()
            .await
            .contains(&"introspection.id_token".into())
    );

    // The code flow works too, with an access token.
    env.lanyard(&[
        "accounts",
        "add",
        "hello-code",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "hello-app",
        "--scopes",
        "openid name email",
    ])
    .await
    .assert_ok();
    env.lanyard(&["login", "hello-code"]).await.assert_ok();
    env.lanyard(&["token", "hello-code"]).await.assert_ok();
}

/// ggLeap (production and beta): an issuer with a path, /connect/* routes, center_uuid,
/// the group scope, an exactly matched redirect URI, logout with id_token_hint.
#[tokio::test]
async fn ggleap() {
    for (preset, path) in [
        ("ggleap", "/production/oidc"),
        ("ggleap-beta", "/beta/oidc"),
    ] {
        let port = free_port();
        let idp = Idp::profile(preset, &["--exact-port", &port.to_string()]);
        assert!(idp.issuer.ends_with(path));
        let env = Env::new();
        let name = format!("{preset}-seat");
        add(
            &env,
            &idp,
            &name,
            preset,
            "ggleap-app",
            &["--center", "c-123", "--port", &port.to_string()],
            Some("ggleap-secret-0123456789"),
        )
        .await;
        let login: Run = env.lanyard(&["login", &name]).await;
        login.assert_ok();
        assert!(idp.events().await.contains(&"center_uuid:c-123".into()));
        let who = whoami(&env, &name).await;
        assert_eq!(who["groups"], json!(["Gold members"]));
        assert_eq!(who["issuer"], idp.issuer.as_str());
        let out = env.lanyard(&["logout", &name]).await;
        assert!(
            out.assert_ok()
                .stdout
                .contains("the provider session has ended"),
            "{out:?}"
        );
        assert!(idp.events().await.contains(&"end_session.success".into()));
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
