//! examples/tauri-signin, a minimal Tauri app using tauri-plugin-lanyard, in its real
//! webview (tauri-driver, WebKitWebDriver, Xvfb) against the real test provider.

use std::path::PathBuf;

use serde_json::json;

use crate::support::webdriver::{Display, Driver, ONE_APP};
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

/// Sign in with the button; the identity card shows who; the web code gets a token
/// (the example grants `lanyard:allow-access-token`) that works at userinfo; sign out
/// revokes it, ends the provider's session and empties the app's keychain item.
#[tokio::test(flavor = "multi_thread")]
async fn the_example_app_signs_in_shows_who_uses_a_token_and_signs_out() {
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let env = Env::new();
    let mut vars: Vec<(String, String)> = env
        .vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    vars.push(("SIGNIN_ISSUER".into(), idp.issuer.clone()));
    vars.push(("SIGNIN_CLIENT_ID".into(), "lanyard-public".into()));
    let display = Display::start();
    let (_driver, app) = Driver::launch_app(&display, &vars, &example_app()).await;

    app.wait_for("#sign-in", "Sign in").await;
    app.click("#sign-in").await;
    app.wait_for("#who", "Alice Example").await;
    assert!(app.text("#email").await.contains("alice@example.test"));
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
