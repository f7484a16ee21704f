//! The desktop app on Windows, without its window (Wine has no WebView2): `app.exe` runs
//! the app's model in a fresh Wine prefix. It hosts the broker, so an app asking for a
//! token waits on the person's answer in the window; the test gives that answer.

use serde_json::Value;

use super::app::App;
use super::{Prefix, Wine};
use crate::support::{Env, Idp};

/// The tool starts asking the app's broker for `account`'s token. The tools are copies
/// of `pipeclient.exe` in `C:\Tools`.
fn tool_asks(prefix: &Prefix, app: &App, tool: &str, account: &str) -> tokio::process::Child {
    prefix
        .command(
            &prefix.drive_c().join("Tools").join(tool),
            &[&app.pipe, account],
        )
        .spawn()
        .unwrap()
}

/// What the tool was answered (its second line: the `token` op's).
async fn answered(tool: tokio::process::Child) -> Value {
    let out = tool.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .nth(1)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("the tool got no answer: {out:?}"))
}

/// The app's approval prompt for `tool`, as the window would show it; its id.
async fn prompt(app: &mut App, tool: &str) -> u64 {
    let prompt = app.event("approval", |_| true).await;
    assert_eq!(prompt["account"], "work", "{prompt}");
    assert_eq!(
        prompt["app"],
        format!(r"C:\Tools\{tool}"),
        "the prompt names the tool by its path: {prompt}"
    );
    prompt["id"].as_u64().unwrap()
}

/// Sign-in from the app, tokens in Credential Manager, Windows tools that ask through the
/// app's broker held until the person answers (one denied, one allowed, each answer
/// remembered), and sign-out that leaves nothing in Credential Manager.
#[tokio::test(flavor = "multi_thread")]
async fn the_app_signs_in_asks_before_a_tool_gets_a_token_and_signs_out() {
    let wine = Wine::new();
    let prefix = tokio::task::block_in_place(Prefix::new);
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "work",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"",
            idp.issuer
        ),
    );
    let tools = prefix.drive_c().join("Tools");
    std::fs::create_dir_all(&tools).unwrap();
    for tool in ["deploy.exe", "build.exe"] {
        std::fs::copy(wine.bin.join("pipeclient.exe"), tools.join(tool)).unwrap();
    }

    let var = |name: &'static str| {
        let value = env
            .vars()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
            .unwrap();
        (name, value)
    };
    let mut app = App::start(
        &prefix,
        &[
            ("LANYARD_CONFIG", env.config.display().to_string()),
            var("BROWSER"),
            var("LANYARD_TEST_BROWSER_LOG"),
            var("LANYARD_TEST_BROWSER_PROFILE"),
        ],
    )
    .await;
    // Named by the user's SID, which no other account shares.
    assert!(
        app.pipe.starts_with(r"\\.\pipe\lanyard-S-1-5-"),
        "{}",
        app.pipe
    );
    app.sign_in("work").await;
    let credread = wine.bin.join("credread.exe");
    let stored = prefix.run(&credread, &["work.lanyard"]).await;
    assert_eq!(
        stored.code, 0,
        "the tokens are in Credential Manager: {stored:?}"
    );

    // A tool waits on the window; the person says no, and that is remembered.
    let tool = tool_asks(&prefix, &app, "deploy.exe", "work");
    let id = prompt(&mut app, "deploy.exe").await;
    assert_eq!(app.call(&format!("answer {id} deny")).await, true);
    let refused = answered(tool).await;
    assert_eq!(refused["error"]["code"], "denied", "{refused}");
    // Refused at once, by the remembered answer (not for want of one: nobody answers).
    let again = answered(tool_asks(&prefix, &app, "deploy.exe", "work")).await;
    assert_eq!(again["error"]["code"], "denied", "{again}");
    let message = again["error"]["message"].as_str().unwrap();
    assert!(message.contains("may not use work's tokens"), "{message}");

    // Another tool: the person allows it for good; its token works at the provider, and
    // the next time it is served without a prompt.
    let tool = tool_asks(&prefix, &app, "build.exe", "work");
    let id = prompt(&mut app, "build.exe").await;
    assert_eq!(app.call(&format!("answer {id} allow")).await, true);
    let served = answered(tool).await;
    let token = served["ok"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("allowed, yet refused: {served}"))
        .to_owned();
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
    // Served with nobody answering anything: no prompt.
    let again = answered(tool_asks(&prefix, &app, "build.exe", "work")).await;
    assert_eq!(again["ok"]["access_token"], token.as_str(), "{again}");

    // Sign out: revoked at the provider, nothing left in Credential Manager, and the tool
    // is told to sign in.
    let warnings = app.call("sign_out work").await;
    assert_eq!(warnings, serde_json::json!([]));
    let events = idp.events().await;
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
    let stored = prefix.run(&credread, &["work.lanyard"]).await;
    assert_eq!(
        stored.code, 1,
        "Credential Manager still holds work: {stored:?}"
    );
    let after = answered(tool_asks(&prefix, &app, "build.exe", "work")).await;
    assert_eq!(after["error"]["code"], "sign_in_needed", "{after}");
    app.quit().await;
}
