//! The crate as other apps use it (`lanyard::client`): `examples/sign_in.rs`, run as an
//! app would run, against the real test provider, with the test's browser driver.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{self, Env, Idp, Run};

/// The example program, which `cargo test` builds beside the tests.
fn example(name: &str) -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lanyard"));
    let example = bin.with_file_name("examples").join(name);
    assert!(
        example.exists(),
        "{} is missing: `cargo test` builds the examples",
        example.display()
    );
    example
}

/// The example `name` with `args` in `env`'s world, its stdin and stdout piped.
fn example_command(env: &Env, name: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(example(name));
    cmd.args(args)
        .envs(env.vars())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs the example `name` with `args` in `env`'s world.
async fn run_example(env: &Env, name: &str, args: &[&str]) -> Run {
    let mut cmd = example_command(env, name, args);
    cmd.stderr(std::process::Stdio::piped());
    support::run_with_stdin(cmd, "").await
}

/// Runs the sign_in example with `args` in `env`'s world; its JSON lines by step.
async fn sign_in(env: &Env, args: &[&str]) -> (Run, Vec<Value>) {
    let run = run_example(env, "sign_in", args).await;
    let steps = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (run, steps)
}

fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no {name} step: {steps:?}"))
}

/// In memory: sign in in the browser, a token that works at the provider, sign-out that
/// revokes it and ends the provider's session. Nothing reaches the keychain.
#[tokio::test]
async fn an_app_signs_in_gets_a_token_and_signs_out() {
    let idp = Idp::start(false);
    let env = Env::new();
    let (run, steps) = sign_in(&env, &[&idp.issuer, "lanyard-public"]).await;
    run.assert_ok();
    let me = step(&steps, "signed_in");
    assert_eq!(me["name"], "Alice Example");
    assert_eq!(me["email"], "alice@example.test");
    let token = step(&steps, "token")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = step(&steps, "signed_out");
    assert_eq!(out["provider_session_ended"], true, "{out}");
    assert_eq!(out["warnings"], serde_json::json!([]));
    // The browser's page speaks to the app's person, not of Lanyard's accounts.
    let page = env.browser_run(0).await;
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("You are signed in as Alice Example."),
        "{page}"
    );
    let userinfo = idp.userinfo(&token).await;
    assert!(
        userinfo.get("sub").is_none(),
        "revoked, yet it works: {userinfo}"
    );
    let events = idp.events().await;
    assert!(
        events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
    assert_eq!(support::keychain("lanyard", "default"), None);
}

/// In the keychain under the app's own service name: the app's next run finds the
/// person signed in, without the browser; signing out there empties the keychain item.
#[tokio::test]
async fn an_app_keeps_its_sign_in_under_its_own_keychain_name() {
    let idp = Idp::start(false);
    let env = Env::new();
    let service = format!("com.example.notes-{}", std::process::id());
    let dir = env.path("notes-data");
    let args = [
        idp.issuer.as_str(),
        "lanyard-public",
        "--keychain",
        &service,
        &dir,
        "--stay",
    ];
    let (run, steps) = sign_in(&env, &args).await;
    run.assert_ok();
    step(&steps, "signed_in");
    let first = step(&steps, "token")["access_token"].clone();
    let stored = support::keychain(&service, "default").expect("kept under the app's name");
    assert!(stored.contains(first.as_str().unwrap()));
    assert_eq!(
        support::keychain("lanyard", "default"),
        None,
        "not Lanyard's"
    );
    let signed_in = env.browser_run(0).await;
    assert!(
        signed_in["seen"]
            .as_array()
            .unwrap()
            .contains(&Value::from("login"))
    );

    // The next run: still signed in, the same token, no browser.
    let (run, steps) = sign_in(&env, &args[..5]).await;
    run.assert_ok();
    assert_eq!(step(&steps, "still_signed_in")["name"], "Alice Example");
    let token = step(&steps, "token")["access_token"].as_str().unwrap();
    assert_eq!(token, first.as_str().unwrap());
    step(&steps, "signed_out");
    // The browser opened only for the provider's sign-out page.
    let logout = env.browser_run(1).await;
    let seen = logout["seen"].as_array().cloned().unwrap_or_default();
    assert!(seen.contains(&Value::from("logout")), "{logout}");
    assert!(
        !seen.contains(&Value::from("login")),
        "signed in again: {logout}"
    );
    assert_eq!(support::keychain(&service, "default"), None);
    let events = idp.events().await;
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
}

/// The device flow: the example shows a code and a link, the person signs in on their
/// phone (the test's browser, on the provider's device pages), and the example is
/// signed in with a token that works.
#[tokio::test]
async fn an_app_signs_in_on_another_device() {
    use tokio::io::AsyncBufReadExt as _;
    let idp = Idp::start(false);
    let env = Env::new();
    let mut child = tokio::process::Command::new(example("device"))
        .args([idp.issuer.as_str(), "lanyard-public"])
        .envs(env.vars())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line())
            .await
            .expect("the example said nothing for two minutes")
            .unwrap()
            .expect("the example exited");
        serde_json::from_str(&line).unwrap()
    };
    let code = next().await;
    assert_eq!(code["step"], "code", "{code}");
    let link = code["verification_uri_complete"].as_str().unwrap();
    assert!(link.contains(code["user_code"].as_str().unwrap()), "{code}");
    env.phone(link).await;
    let me = next().await;
    assert_eq!(me["step"], "signed_in", "{me}");
    assert_eq!(me["name"], "Alice Example");
    let token = next().await;
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(idp.userinfo(token).await["sub"], "alice");
    assert!(child.wait().await.unwrap().success());
}

/// A private-use URI scheme (`dev.lanyard:/callback`): the provider sends the browser
/// there, the desktop (gio) starts the handler registered for the scheme, and the handler
/// passes the URL to the running app, which gives it to `Client::redirected`. The
/// handler here passes it through a FIFO, as a single-instance plugin would through its
/// socket. Sign-out comes back the same way. The provider takes pushed authorization
/// requests only.
#[tokio::test]
async fn an_app_gets_the_redirect_through_its_own_uri_scheme() {
    use tokio::io::AsyncWriteExt as _;
    // Pushed authorization requests only (RFC 9126): they work with a scheme redirect too.
    let idp = Idp::start_with(false, &["--require-par"]);
    let env = Env::new();
    let fifo = PathBuf::from(env.path("redirects"));
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let handler = PathBuf::from(env.path("notes-handler"));
    std::fs::write(
        &handler,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" > '{}'\n", fifo.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&handler, std::fs::Permissions::from_mode(0o755)).unwrap();
    let apps = PathBuf::from(env.path("data")).join("applications");
    std::fs::create_dir_all(&apps).unwrap();
    std::fs::write(
        apps.join("notes-handler.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Notes\nNoDisplay=true\nExec={} %u\nMimeType=x-scheme-handler/dev.lanyard;\n",
            handler.display()
        ),
    )
    .unwrap();
    let config_home = PathBuf::from(env.path("config-home"));
    std::fs::create_dir_all(&config_home).unwrap();
    std::fs::write(
        config_home.join("mimeapps.list"),
        "[Default Applications]\nx-scheme-handler/dev.lanyard=notes-handler.desktop\n",
    )
    .unwrap();

    let args = [
        &idp.issuer,
        "lanyard-native",
        "--scheme",
        "dev.lanyard:/callback",
    ];
    let mut app = example_command(&env, "sign_in", &args).spawn().unwrap();
    let mut stdin = app.stdin.take().unwrap();
    let reading = fifo.clone();
    let forward = tokio::spawn(async move {
        loop {
            let path = reading.clone();
            let urls = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
                .await
                .unwrap()
                .unwrap();
            if urls.is_empty() {
                return;
            }
            if stdin.write_all(urls.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), app.wait_with_output())
        .await
        .expect("the app finished within two minutes")
        .unwrap();
    // Release the forwarder's read (an empty write ends it).
    std::fs::write(&fifo, "").unwrap();
    forward.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let steps: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(step(&steps, "signed_in")["name"], "Alice Example");
    let token = step(&steps, "token")["access_token"].as_str().unwrap();
    assert!(!token.is_empty());
    assert_eq!(
        step(&steps, "signed_out")["provider_session_ended"],
        true,
        "{steps:?}"
    );
    let run = env.browser_run(0).await;
    assert_eq!(run["handed_over"], true, "{run}");
    assert_eq!(run["url"], "dev.lanyard:/callback", "{run}");
    assert_eq!(
        run["named"],
        serde_json::json!(["client_id", "request_uri"]),
        "{run}"
    );
}

/// examples/greet.rs, written from docs/embedding.md alone: it signs in on its first run,
/// greets the same person from the keychain on the second (no browser), and signs out.
#[tokio::test]
async fn the_example_written_from_the_guide_alone_signs_in() {
    let idp = Idp::start(false);
    let env = Env::new();
    let dir = env.path("greet-data");
    let greet = |extra: &'static [&'static str]| {
        let mut args = vec![idp.issuer.as_str(), "lanyard-public", dir.as_str()];
        args.extend_from_slice(extra);
        let env = &env;
        async move { run_example(env, "greet", &args).await }
    };
    let first = greet(&[]).await;
    first.assert_ok();
    assert!(
        first.stdout.starts_with("Hello, Alice Example\n"),
        "{first:?}"
    );
    assert!(first.stdout.contains("Your token is"), "{first:?}");
    let service = "dev.lanyard.example.greet";
    assert!(support::keychain(service, "default").is_some());

    env.browser_run(0).await;

    let second = greet(&[]).await;
    second.assert_ok();
    assert!(
        second.stdout.starts_with("Hello, Alice Example\n"),
        "{second:?}"
    );
    let runs = env.browser_runs();
    assert_eq!(runs.len(), 1, "the second run opened the browser: {runs:?}");

    let out = greet(&["--sign-out"]).await;
    out.assert_ok();
    assert!(out.stdout.contains("was signed in: true"), "{out:?}");
    assert_eq!(support::keychain(service, "default"), None);
}

/// An app on a machine without a browser (over ssh, in a container) whose provider has
/// no device flow: the person opens the provider's link on another machine, whose browser
/// ends on a 127.0.0.1 page that cannot load there, and pastes that address into the app
/// (`Client::sign_in_elsewhere`). The sign-in is checked and works; a token is usable.
#[tokio::test]
async fn an_app_signs_in_through_a_browser_elsewhere() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let idp = Idp::start(false);
    let mut env = Env::new();
    env.set("LANYARD_TEST_BROWSER_ACTION", "elsewhere");
    let args = [&idp.issuer, "lanyard-public", "--paste", "--stay"];
    let mut app = example_command(&env, "sign_in", &args).spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(app.stdout.take().unwrap()).lines();
    let mut next_step = async || -> Value {
        let line = lines.next_line().await.unwrap().expect("the app said more");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    };
    let link = next_step().await;
    assert_eq!(link["step"], "open_this_link", "{link}");
    let link = link["url"].as_str().unwrap().to_owned();
    // The provider's own page: a browser elsewhere cannot reach this machine's 127.0.0.1.
    assert!(link.starts_with(&idp.issuer), "{link}");
    let paste_back = next_step().await;
    assert_eq!(paste_back["step"], "paste_back", "{paste_back}");
    let redirect = paste_back["redirect_uri"].as_str().unwrap().to_owned();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");

    // The person at the other machine's browser.
    let ended_on = env.sign_in_elsewhere(&link).await;
    assert!(ended_on.starts_with(&redirect), "{ended_on}");
    let mut stdin = app.stdin.take().unwrap();
    stdin
        .write_all(format!("{ended_on}\n").as_bytes())
        .await
        .unwrap();

    let me = next_step().await;
    assert_eq!(me["step"], "signed_in", "{me}");
    assert_eq!(me["name"], "Alice Example");
    let token = next_step().await;
    let token = token["access_token"].as_str().unwrap();
    assert!(app.wait().await.unwrap().success());
    assert_eq!(idp.userinfo(token).await["sub"], "alice");
}

/// An app calls an API that enforces DPoP and wants its own nonce (here the provider's
/// userinfo, RFC 9449 sections 7 and 9), the way docs/embedding.md says: the headers of
/// `Client::authorization`, and once more with the `DPoP-Nonce` the 401 carried.
#[tokio::test]
async fn an_app_calls_an_api_that_wants_a_dpop_nonce() {
    let idp = Idp::start_with(false, &["--dpop", "--dpop-nonce"]);
    let env = Env::new();
    let userinfo = idp.url_of("userinfo_endpoint").await;
    let (run, steps) = sign_in(&env, &[&idp.issuer, "lanyard-public", "--api", &userinfo]).await;
    run.assert_ok();
    let api = step(&steps, "api");
    assert_eq!(api["status"], 200, "{api}");
    assert_eq!(api["asked_nonce"], true, "{api}");
    let body: Value = serde_json::from_str(api["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["sub"], "alice", "{api}");
}

/// After an API refused its token, an app refreshes at once (`Client::refresh`): a new
/// token, which works.
#[tokio::test]
async fn an_app_refreshes_when_its_api_refuses_the_token() {
    let idp = Idp::start(false);
    let env = Env::new();
    let (run, steps) = sign_in(
        &env,
        &[&idp.issuer, "lanyard-public", "--refresh", "--stay"],
    )
    .await;
    run.assert_ok();
    let first = step(&steps, "token")["access_token"].as_str().unwrap();
    let second = step(&steps, "refreshed")["access_token"].as_str().unwrap();
    assert_ne!(first, second, "not refreshed");
    assert_eq!(idp.userinfo(second).await["sub"], "alice");
}

/// A sign-out whose browser cannot start returns at once: revoked, forgotten, and the
/// provider's sign-out link for the person to open, instead of two minutes' wait for a
/// browser that is not there.
#[tokio::test]
async fn a_sign_out_whose_browser_cannot_start_returns_the_link() {
    let idp = Idp::start(false);
    let mut env = Env::new();
    let dir = env.path("greet-data");
    let args = [idp.issuer.as_str(), "lanyard-public", dir.as_str()];
    let first = run_example(&env, "greet", &args).await;
    first.assert_ok();
    let service = "dev.lanyard.example.greet";
    assert!(support::keychain(service, "default").is_some(), "signed in");

    env.set("BROWSER", "/bin/false");
    let out = run_example(&env, "greet", &[args.as_slice(), &["--sign-out"]].concat()).await;
    out.assert_ok();
    assert!(out.stdout.contains("was signed in: true"), "{out:?}");
    let link = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("To sign out at the provider too, open "))
        .unwrap_or_else(|| panic!("no sign-out link: {out:?}"));
    let link = url::Url::parse(link).unwrap();
    assert!(link.as_str().starts_with(&idp.issuer), "{link}");
    assert!(
        link.query_pairs()
            .any(|(k, v)| k == "client_id" && v == "lanyard-public"),
        "{link}"
    );
    assert!(out.stderr.contains("cannot open a browser"), "{out:?}");
    assert_eq!(support::keychain(service, "default"), None);
    let events = idp.events().await;
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
    assert!(
        !events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
}

/// A browser that cannot start ends an app's sign-in at once with the reason, instead
/// of a silent wait for a browser that never came: a command that fails (`/bin/false`),
/// and one that does not exist.
#[tokio::test]
async fn a_browser_that_cannot_start_is_an_error_at_once() {
    let idp = Idp::start(false);
    for browser in ["/bin/false", "/nonexistent/browser"] {
        let mut env = Env::new();
        env.set("BROWSER", browser);
        let (run, steps) = sign_in(&env, &[&idp.issuer, "lanyard-public"]).await;
        run.assert_fails(1, "cannot open a browser");
        assert!(run.stderr.contains(browser), "{run:#?}");
        // (What ended it is the browser's error, not the sign-in's five-minute timeout.)
        assert!(steps.iter().all(|s| s["step"] != "signed_in"), "{steps:?}");
    }
}
