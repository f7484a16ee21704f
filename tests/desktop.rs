//! The desktop app, driven in its real webview (WebKitGTK through tauri-driver, on Xvfb):
//! a person signs in with the real test provider (Chromium as the system browser), sees
//! their identity card, approves a command-line tool's token request and signs out.
//!
//! With `LANYARD_SCREENSHOTS=DIR` (`cargo xtask screenshots`) the walk-through also saves
//! a PNG of every screen it passes.

use std::path::PathBuf;
use std::process::Stdio;

use crate::support::webdriver::{Display, Driver, Session, desktop_app};
use crate::support::{self, Env, Idp};

/// Saves what the window shows, when screenshots were asked for.
struct Shots {
    dir: Option<PathBuf>,
}

impl Shots {
    async fn take(&self, session: &Session, name: &str) {
        let Some(dir) = &self.dir else { return };
        std::fs::create_dir_all(dir).unwrap();
        let png = session.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

fn vars(env: &Env) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = env
        .vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    vars.push(("LANYARD_CONFIG".into(), env.config.display().to_string()));
    vars
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_see_yourself_approve_a_tool_and_sign_out() {
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "demo",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\nscopes = \"openid profile email groups offline_access\"",
            idp.issuer
        ),
    );
    let shots = Shots {
        dir: std::env::var_os("LANYARD_SCREENSHOTS").map(PathBuf::from),
    };
    let display = Display::start();
    let driver = Driver::start(&display, &vars(&env)).await;
    let app = driver.session(&desktop_app()).await;
    app.wait_for("body[data-ready]", "").await;
    assert_eq!(
        app.run("return document.title", serde_json::json!([]))
            .await,
        "Lanyard"
    );

    // The account is listed, signed out, with its sign-in button.
    app.wait_for("[data-account='demo'] .status-text", "Signed out")
        .await;
    app.wait_for("#sign-in", "Sign in with 127.0.0.1").await;
    shots.take(&app, "1-signed-out").await;

    // Sign in: the system browser ($BROWSER, the test's Chromium) signs in as alice.
    app.click("#sign-in").await;
    app.wait_for("#who", "Alice Example").await;
    assert!(app.text("#email").await.contains("alice@example.test"));
    let groups = app.text("#groups").await;
    assert!(
        groups.contains("staff") && groups.contains("developers"),
        "{groups}"
    );
    assert!(app.text("#expiry").await.contains("Token valid for"));
    app.wait_for(
        "[data-account='demo'] .status-text",
        "Signed in as Alice Example",
    )
    .await;
    let sub = app
        .run(
            "return document.querySelector('#subject').textContent",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(sub, "alice");
    shots.take(&app, "2-identity").await;

    // A command-line tool asks the broker for the token: the window asks the person.
    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
    cli.args(["token", "demo"])
        .env("LANYARD_CONFIG", &env.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env.vars() {
        cli.env(k, v);
    }
    let cli = cli.spawn().unwrap();
    app.wait_for(
        "#approval[open] #approval-app",
        env!("CARGO_BIN_EXE_lanyard"),
    )
    .await;
    assert!(app.text("#approval-account").await.contains("demo"));
    shots.take(&app, "3-approval").await;
    app.click("#approve-always").await;
    let out = cli.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "lanyard token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let token = token.trim();
    let userinfo = idp.userinfo(token).await;
    assert_eq!(
        userinfo["sub"], "alice",
        "the token does not work: {userinfo}"
    );

    // The allowed app is listed, and the activity shows the grant (never the token).
    app.click("#nav-apps").await;
    app.wait_for("#apps-table td.path", env!("CARGO_BIN_EXE_lanyard"))
        .await;
    assert!(app.text("#apps-table").await.contains("Always"));
    shots.take(&app, "4-apps").await;
    app.click("#nav-activity").await;
    app.wait_for("#activity-table", "Got a token").await;
    let page = app
        .run("return document.body.innerText", serde_json::json!([]))
        .await;
    assert!(
        !page.as_str().unwrap().contains(token),
        "the token is shown"
    );
    shots.take(&app, "5-activity").await;

    // Add an account by issuer: discovery is checked live, with an error that says why.
    app.click("#add-account").await;
    app.wait_for("#add-form .preset-choice", "Hellō").await;
    app.click("input[name='preset'][value='']").await;
    app.fill("#name", "second").await;
    app.fill("#client_id", "lanyard-public").await;
    app.fill("#issuer", "http://127.0.0.1:9/nothing").await;
    app.click("#add-submit").await;
    app.wait_for("#add-error .error", "cannot reach").await;
    shots.take(&app, "6-add-account").await;
    app.fill("#issuer", &idp.issuer).await;
    app.click("#add-submit").await;
    app.wait_for("[data-account='second'] .status-text", "Signed out")
        .await;
    let config = std::fs::read_to_string(&env.config).unwrap();
    assert!(config.contains("[accounts.second]"), "{config}");
    // …and remove it again, after a confirmation.
    app.click("[data-account='second']").await;
    app.click("#remove-account").await;
    app.wait_for("#confirm[open]", "Remove second?").await;
    app.click("#confirm-ok").await;
    app.wait_for("#toast", "Removed second").await;
    let config = std::fs::read_to_string(&env.config).unwrap();
    assert!(!config.contains("second"), "{config}");
    assert!(config.contains("[accounts.demo]"), "{config}");

    // Sign out: the provider's session ends in the browser; nothing is left behind.
    app.click("[data-account='demo']").await;
    app.click("#sign-out").await;
    app.wait_for("[data-screen='signed-out']", "").await;
    app.wait_for("[data-account='demo'] .status-text", "Signed out")
        .await;
    assert_eq!(support::stored_tokens("demo"), None);
    let events = idp.events().await;
    assert!(
        events.iter().any(|e| e.contains("end_session.success")),
        "{events:?}"
    );
    app.close().await;
}
