//! examples/tauri-signin, a minimal Tauri app using tauri-plugin-lanyard, in its real
//! webview (tauri-driver, WebKitWebDriver, Xvfb) against the real test provider.

use std::path::PathBuf;

use serde_json::json;

use crate::support::webdriver::{Display, Driver, ONE_APP, Session};
use crate::support::{self, Env, Idp};

/// The example app's binary, beside the `lanyard` binary the tests run.
fn example_app() -> PathBuf {
    let app = PathBuf::from(env!("CARGO_BIN_EXE_lanyard")).with_file_name("tauri-signin");
    assert!(
        app.exists(),
        "{} is missing: build it with `cargo build -p tauri-signin` (cargo xtask test does)",
        app.display()
    );
    app
}

/// The example app in `env`'s world, signing in at `idp`, with `settings` (`SIGNIN_…`).
async fn launch(
    display: &Display,
    env: &Env,
    idp: &Idp,
    settings: &[(&str, &str)],
) -> (Driver, Session) {
    let mut vars: Vec<(String, String)> = env
        .vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    vars.push(("SIGNIN_ISSUER".into(), idp.issuer.clone()));
    vars.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Driver::launch_app(display, &vars, &example_app()).await
}

/// Sign in with the button; the identity card shows who; the web code gets a token
/// (granted `lanyard:allow-access-token`) that works at userinfo; sign out
/// revokes it, ends the provider's session and empties the app's keychain item.
#[tokio::test(flavor = "multi_thread")]
async fn the_example_app_signs_in_shows_who_uses_a_token_and_signs_out() {
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let env = Env::new();
    // Its web code may get tokens (web-tokens.json, granted at start).
    let display = Display::start();
    let (_driver, app) = launch(
        &display,
        &env,
        &idp,
        &[
            ("SIGNIN_CLIENT_ID", "lanyard-public"),
            ("SIGNIN_WEB_TOKENS", "1"),
        ],
    )
    .await;

    app.wait_for("#sign-in", "Sign in").await;
    // What the change event carries, as any of the app's webviews may listen to it.
    app.run_async(
        "const done = arguments[0]; window.__lanyardSeen = []; \
         window.__TAURI__.event.listen('lanyard://changed', (e) => window.__lanyardSeen.push(e.payload)) \
           .then(() => done(true));",
        json!([]),
    )
    .await;
    app.click("#sign-in").await;
    app.wait_for("#who", "Alice Example").await;
    assert!(app.text("#email").await.contains("alice@example.test"));
    // The card came from `identity()` (which needs `lanyard:allow-identity`); the event
    // carried no identity.
    let seen = app
        .run_async("arguments[0](window.__lanyardSeen);", json!([]))
        .await;
    assert_eq!(seen, json!([null]), "the change event carried {seen}");
    // Kept in the keychain under the app's own identifier, not Lanyard's.
    let service = "dev.lanyard.example.signin";
    assert!(support::keychain(service, "default").is_some());

    let token = app
        .run_async(
            "const done = arguments[0]; \
             window.__TAURI__.lanyard.accessToken({ minValid: 30 }).then(done, (e) => done({ error: e }));",
            json!([]),
        )
        .await;
    let token = token
        .as_str()
        .unwrap_or_else(|| panic!("no token: {token}"))
        .to_owned();
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");

    app.click("#sign-out").await;
    // Signed out once the sign-in section shows again (it is only hidden meanwhile).
    app.wait_for("#signed-out:not([hidden]) #sign-in", "Sign in")
        .await;
    assert!(idp.userinfo(&token).await.get("sub").is_none(), "revoked");
    let events = idp.events().await;
    assert!(
        events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
    assert_eq!(support::keychain(service, "default"), None);
}

/// The example signs in through its own URI scheme: it registered itself for
/// `dev.lanyard.example.signin` when it started; the provider sends the browser there;
/// the desktop (gio) starts a second `tauri-signin` with the link, the single-instance
/// plugin brings it to the running app, the deep-link plugin to Lanyard's, and the
/// sign-in finishes. Its web code, not granted `lanyard:allow-access-token`, is refused
/// a token. Sign-out comes back the same way, and the token is revoked.
#[tokio::test(flavor = "multi_thread")]
async fn the_example_app_signs_in_through_its_own_scheme_and_its_webview_gets_no_token() {
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let env = Env::new();
    let scheme = "dev.lanyard.example.signin";
    let display = Display::start();
    let (_driver, app) = launch(
        &display,
        &env,
        &idp,
        &[
            ("SIGNIN_CLIENT_ID", "example-native"),
            ("SIGNIN_REDIRECT", "dev.lanyard.example.signin:/callback"),
        ],
    )
    .await;
    app.wait_for("#sign-in", "Sign in").await;
    let handler = PathBuf::from(env.path("data")).join("applications/tauri-signin-handler.desktop");
    let entry = std::fs::read_to_string(&handler)
        .unwrap_or_else(|e| panic!("no handler at {}: {e}", handler.display()));
    assert!(
        entry.contains(&format!("x-scheme-handler/{scheme}")) && entry.contains("%u"),
        "{entry}"
    );

    app.click("#sign-in").await;
    app.wait_for("#who", "Alice Example").await;
    let run = env.browser_run(0).await;
    assert_eq!(run["handed_over"], true, "{run}");
    assert_eq!(run["url"], format!("{scheme}:/callback"), "{run}");

    let asked = app
        .run_async(
            "const done = arguments[0]; \
             window.__TAURI__.lanyard.accessToken({ minValid: 30 }) \
               .then((token) => done({ token }), (e) => done({ error: String(e.message ?? e) }));",
            json!([]),
        )
        .await;
    assert!(
        asked.get("token").is_none(),
        "the webview got a token: {asked}"
    );
    let error = asked["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not allowed") && error.contains("allow-access-token"),
        "{asked}"
    );
    let stored = support::keychain("dev.lanyard.example.signin", "default")
        .expect("the sign-in is in the keychain");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let token = stored["access_token"].as_str().unwrap().to_owned();
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");

    app.click("#sign-out").await;
    app.wait_for("#signed-out:not([hidden]) #sign-in", "Sign in")
        .await;
    assert_eq!(
        env.browser_run(1).await["url"],
        format!("{scheme}:/logged-out")
    );
    assert!(idp.userinfo(&token).await.get("sub").is_none(), "revoked");
    let events = idp.events().await;
    assert!(
        events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
    assert_eq!(
        support::keychain("dev.lanyard.example.signin", "default"),
        None
    );
}
