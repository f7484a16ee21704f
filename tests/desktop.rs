//! The desktop app, driven in its real webview (WebKitGTK through tauri-driver, on Xvfb):
//! a person signs in with the real test provider (Chromium as the system browser), sees
//! their identity card, approves a command-line tool's token request and signs out.
//!
//! With `LANYARD_SCREENSHOTS=DIR` (`cargo xtask screenshots`) the walk-through also saves
//! a PNG of every screen it passes.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncBufReadExt as _;

use lanyard::desktop::{Desktop, Failure, Options, UiEvent};

use crate::support::webdriver::{Display, Driver, ONE_APP, Session, desktop_app};
use crate::support::{self, Env, Idp, tray};

/// Saves what the window shows, when screenshots were asked for (`LANYARD_SCREENSHOTS`).
pub(crate) struct Shots {
    dir: Option<PathBuf>,
}

impl Shots {
    pub(crate) fn asked() -> Shots {
        Shots {
            dir: std::env::var_os("LANYARD_SCREENSHOTS").map(PathBuf::from),
        }
    }

    pub(crate) async fn take(&self, session: &Session, name: &str) {
        let Some(dir) = &self.dir else { return };
        std::fs::create_dir_all(dir).unwrap();
        let png = session.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// The app on a display of its own, in this test's world, once its window is ready.
pub(crate) async fn open_app(env: &Env) -> (Display, Driver, Session) {
    let display = Display::start();
    let (driver, app) = Driver::launch(&display, &vars(env)).await;
    app.wait_for("body[data-ready]", "").await;
    (display, driver, app)
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
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "demo",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\nscopes = \"openid profile email groups offline_access\"",
            idp.issuer
        ),
    );
    let shots = Shots::asked();
    let (_display, _driver, app) = open_app(&env).await;
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
    // Her picture is on a host this machine cannot reach: her initials stand in.
    let avatar = app
        .run(
            "return document.querySelector('.avatar').textContent",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(avatar, "AE");
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

    // "Copy access token" asks first, and the activity records it (never the token).
    app.click("#copy-token").await;
    app.wait_for("#confirm[open]", "Copy demo's access token?")
        .await;
    app.click("#confirm-ok").await;
    app.wait_for("#toast", "Access token copied").await;

    // A tool (this test program) asks the broker through the `lanyard` command line,
    // three times at once: the window asks the person once about the tool, not about
    // the command line, and says that three requests wait on the answer.
    let me = std::env::current_exe().unwrap().display().to_string();
    let clis = [(); 3].map(|()| token_cli(&env, &[]));
    app.wait_for("#approval[open] #approval-app", &me).await;
    app.wait_for("#approval-waiting", "3, answered together")
        .await;
    assert!(app.text("#approval-account").await.contains("demo"));
    assert!(
        app.text("#approval-through")
            .await
            .contains(env!("CARGO_BIN_EXE_lanyard")),
        "the prompt says which command line the tool asked through"
    );
    // Another program running the same command line is another app: its prompt waits
    // behind this one, and the window says so. (`timeout` runs the CLI as its child.)
    let other = token_cli(&env, &["timeout", "60"]);
    app.wait_for("#approval-queue", "1 more app is waiting to be asked")
        .await;
    shots.take(&app, "3-approval").await;
    app.click("#approve-always").await;
    let mut tokens = Vec::new();
    for cli in clis {
        let out = cli.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "lanyard token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokens.push(String::from_utf8(out.stdout).unwrap());
    }
    let token = tokens[0].trim();
    let userinfo = idp.userinfo(token).await;
    assert_eq!(
        userinfo["sub"], "alice",
        "the token does not work: {userinfo}"
    );
    // The other app is asked about anew, and refused when the person says no.
    app.wait_for("#approval[open] #approval-app", "/usr/bin/timeout")
        .await;
    app.click("#deny").await;
    let out = other.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());

    // The allowed app is listed, and the activity shows the grant (never the token).
    app.click("#nav-apps").await;
    app.wait_for("#apps-table td.path", &me).await;
    let apps = app.text("#apps-table").await;
    assert!(apps.contains("Always"), "{apps}");
    assert!(!apps.contains(env!("CARGO_BIN_EXE_lanyard")), "{apps}");
    shots.take(&app, "4-apps").await;
    app.click("#nav-activity").await;
    app.wait_for("#activity-table", "Got a token").await;
    app.wait_for("#activity-table", "(copied in the Lanyard app)")
        .await;
    let page = app
        .run("return document.body.innerText", serde_json::json!([]))
        .await;
    assert!(
        !page.as_str().unwrap().contains(token),
        "the token is shown"
    );
    shots.take(&app, "5-activity").await;

    // Start at login: an XDG autostart entry that starts the app in the tray.
    app.click("#autostart").await;
    let entry = PathBuf::from(env.path("config-home")).join("autostart/lanyard.desktop");
    app.wait_for("#autostart[data-enabled='true']", "").await;
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("lanyard-desktop\" --hidden"), "{text}");
    app.click("#autostart").await;
    app.wait_for("#autostart[data-enabled='false']", "").await;
    assert!(!entry.exists());

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

/// `lanyard token demo` started by this test, through `wrapper` (a program that runs it as
/// its child) when one is given.
fn token_cli(env: &Env, wrapper: &[&str]) -> tokio::process::Child {
    let (program, args) = match wrapper.split_first() {
        Some((program, args)) => (*program, args.to_vec()),
        None => (env!("CARGO_BIN_EXE_lanyard"), vec![]),
    };
    let mut cli = tokio::process::Command::new(program);
    cli.args(args);
    if !wrapper.is_empty() {
        cli.arg(env!("CARGO_BIN_EXE_lanyard"));
    }
    cli.args(["token", "demo"])
        .env("LANYARD_CONFIG", &env.config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env.vars() {
        cli.env(k, v);
    }
    cli.spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_use_scheme_redirect_reaches_the_running_app() {
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let mut env = Env::new();
    // Bob's picture is served by the provider: the card shows it, fetched once.
    env.set("LANYARD_TEST_LOGIN", "bob");
    env.account(
        "native",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-native\"\nredirect = \"dev.lanyard:/callback\"",
            idp.issuer
        ),
    );
    let (display, _driver, app) = open_app(&env).await;
    // The app registered itself for the scheme, with the URL as its argument.
    let handler =
        PathBuf::from(env.path("data")).join("applications/lanyard-desktop-handler.desktop");
    let entry = std::fs::read_to_string(&handler)
        .unwrap_or_else(|e| panic!("no handler at {}: {e}", handler.display()));
    assert!(
        entry.contains("x-scheme-handler/dev.lanyard") && entry.contains("%u"),
        "{entry}"
    );

    // The provider sends the browser to dev.lanyard:/callback; the desktop (gio) starts the
    // app with that URL, the running app receives it and finishes the sign-in.
    app.click("#sign-in").await;
    app.wait_for("#who", "Bob Builder").await;
    app.wait_for(".avatar img[src^='data:image/png;base64,']", "")
        .await;
    let cached = PathBuf::from(env.path("data")).join("lanyard/pictures");
    assert_eq!(std::fs::read_dir(&cached).unwrap().count(), 1);
    let run = env.browser_run(0).await;
    assert_eq!(run["handed_over"], true, "{run}");
    assert_eq!(run["url"], "dev.lanyard:/callback", "{run}");

    // A link no sign-in waits for (stale, forged) is refused, and nothing changes.
    let stale = std::process::Command::new(desktop_app())
        .arg("dev.lanyard:/callback?code=forged&state=forged")
        .env("DISPLAY", &display.name)
        .envs(vars(&env))
        .status()
        .unwrap();
    assert!(stale.success());
    app.wait_for("#toast", "Lanyard ignored a link").await;
    assert!(app.text("#who").await.contains("Bob Builder"));

    // Sign-out comes back the same way, to dev.lanyard:/logged-out.
    app.click("#sign-out").await;
    app.wait_for("[data-screen='signed-out']", "").await;
    let events = idp.events().await;
    assert!(
        events.iter().any(|e| e.contains("end_session.success")),
        "{events:?}"
    );
    assert_eq!(env.browser_run(1).await["url"], "dev.lanyard:/logged-out");
    app.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_sign_in_and_stores_nothing() {
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let mut env = Env::new();
    // The browser opens the page and then does nothing, like a person who walked away.
    env.set("LANYARD_TEST_BROWSER_ACTION", "ignore");
    env.public_account("walkaway", &idp);
    let (_display, _driver, app) = open_app(&env).await;
    app.click("#sign-in").await;
    app.wait_for("[data-screen='progress'] #cancel-sign-in:enabled", "")
        .await;
    app.click("#cancel-sign-in").await;
    app.wait_for("[data-screen='signed-out'] #sign-in", "")
        .await;
    let page = app
        .run(
            "return document.querySelector('main').innerText",
            serde_json::json!([]),
        )
        .await;
    assert!(!page.as_str().unwrap().contains("failed"), "{page}");
    assert_eq!(support::stored_tokens("walkaway"), None);
    assert!(
        std::fs::read_dir(PathBuf::from(env.path("data")).join("lanyard"))
            .map(|d| d
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().contains("walkaway")))
            .unwrap_or(true),
        "a record was written"
    );
    // Signing in again works: the cancelled sign-in left no port or lock behind.
    app.click("#sign-in").await;
    app.wait_for("[data-screen='progress'] #cancel-sign-in:enabled", "")
        .await;
    app.click("#cancel-sign-in").await;
    app.wait_for("[data-screen='signed-out']", "").await;
    app.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tray_signs_in_and_out_notifies_and_outlives_the_window() {
    let _one = ONE_APP.lock().await;
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "desk",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\nscopes = \"openid profile offline_access\"",
            idp.issuer
        ),
    );
    // The test is the panel the tray icon registers with, and the notification daemon.
    let mut desktop = tray::Desktop::start().await;
    let (display, _driver, app) = open_app(&env).await;
    let tray = desktop.tray().await;
    let signed_out = tray::decode(include_bytes!("../icons/tray-signed-out.png"));
    let ok = tray::decode(include_bytes!("../icons/tray.png"));
    let attention = tray::decode(include_bytes!("../icons/tray-attention.png"));
    tray.wait_for_icon(&signed_out, "signed out").await;
    tray.wait_for_item("Sign in to desk (127.0.0.1)").await;
    let labels: Vec<String> = tray.menu().await.into_iter().map(|(_, l)| l).collect();
    assert!(
        labels.iter().any(|l| l == "Open Lanyard") && labels.iter().any(|l| l == "Quit Lanyard"),
        "{labels:?}"
    );

    // Closing the window leaves the app in the tray with its webview released: the page's
    // web process ends (WebDriver needs the network process kept; the test below sees it
    // end too). "Open Lanyard" opens the window again, with a new page.
    let app_pid = broker_pid(&env);
    close_window(&display, &app).await;
    until_none_left(app_pid, "WebKitWeb").await;
    tray.click("Open Lanyard").await;
    app.wait_for_window().await;
    assert!(
        descendants(app_pid)
            .iter()
            .any(|n| n.starts_with("WebKitWeb")),
        "{:?}",
        descendants(app_pid)
    );

    // Sign in from the tray, with the window closed: it comes forward when it is done.
    close_window(&display, &app).await;
    tray.click("Sign in to desk").await;
    app.wait_for_window().await;
    app.wait_for(
        "[data-account='desk'] .status-text",
        "Signed in as Alice Example",
    )
    .await;
    tray.wait_for_item("Sign out of desk (Alice Example)").await;
    tray.wait_for_icon(&ok, "signed in").await;

    // The broker lives on with the window closed; a tool's request opens the window to
    // ask (the page asks for the prompts waiting when it opens).
    close_window(&display, &app).await;
    let ask = env.lanyard(&["token", "desk"]);
    let answer = async {
        app.wait_for_window().await;
        app.wait_for("#approval[open]", "").await;
        app.click("#approve-always").await;
    };
    let (run, ()) = tokio::join!(ask, answer);
    run.assert_ok();

    // The keychain loses the account's tokens (another program, a reset keyring): the
    // next refresh finds none, and the desktop hears that the account needs sign-in:
    // one notification for the ten tools that asked, naming the app that waits, with a
    // "Sign in" action.
    assert!(desktop.sent().is_none(), "a notification came too early");
    let cleared = std::process::Command::new("secret-tool")
        .args(["clear", "service", "lanyard", "username", "desk"])
        .status()
        .unwrap();
    assert!(cleared.success());
    let asks = (0..10).map(|_| env.lanyard(&["token", "desk", "--min-valid", "86400"]));
    for run in futures_util::future::join_all(asks).await {
        assert_ne!(run.code, 0, "{run:?}");
    }
    // And the tools that ask after them, one by one.
    for _ in 0..3 {
        let run = env
            .lanyard(&["token", "desk", "--min-valid", "86400"])
            .await;
        assert_ne!(run.code, 0, "{run:?}");
    }
    let note = desktop.notification().await;
    assert_eq!(note.summary, "Sign in to desk again", "{note:?}");
    let me = std::env::current_exe().unwrap();
    let me = me.file_name().unwrap().to_string_lossy();
    assert!(
        note.body.starts_with(&format!("{me} is waiting")),
        "{note:?}"
    );
    assert!(
        note.actions.chunks(2).any(|a| a == ["sign-in", "Sign in"]),
        "{note:?}"
    );
    tray.wait_for_icon(&attention, "sign-in needed").await;
    tray.wait_for_item("Sign in to desk (127.0.0.1)").await;

    // "Sign in" on the notification signs the account in, in the browser.
    desktop.click(note.id, "sign-in").await;
    tray.wait_for_item("Sign out of desk").await;
    assert!(
        desktop.sent().is_none(),
        "more than one notification for one lapse"
    );

    // Sign out from the tray: the tokens are revoked and nothing is kept.
    assert!(support::stored_tokens("desk").is_some());
    tray.click("Sign out of desk").await;
    tray.wait_for_item("Sign in to desk").await;
    tray.wait_for_icon(&signed_out, "signed out").await;
    assert_eq!(support::stored_tokens("desk"), None);
    let events = idp.events().await;
    assert!(
        events.contains(&"grant.revoked".to_owned())
            && events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );

    // Quit: the app exits and its broker with it.
    let pid = broker_pid(&env);
    tray.click("Quit Lanyard").await;
    exited(pid).await;
    assert!(
        std::os::unix::net::UnixStream::connect(env.socket()).is_err(),
        "the broker still answers after Quit"
    );
}

/// Closes the app's window with its close button (the window manager's message), and
/// waits until it is gone: webview and page with it.
async fn close_window(display: &Display, app: &Session) {
    assert_eq!(
        display.close_window("Lanyard"),
        1,
        "one window titled Lanyard"
    );
    app.wait_until_closed().await;
}

/// Waits until no process below `pid` has a name starting with `prefix` (all, for ""):
/// for each one left, until it exits.
async fn until_none_left(pid: i32, prefix: &str) {
    let wait = async {
        while let Some((left, _)) = descendant_processes(pid)
            .into_iter()
            .find(|(_, name)| name.starts_with(prefix))
        {
            exited(left).await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .is_err()
    {
        panic!(
            "still running 30 s after the window closed: {:?}",
            descendants(pid)
        );
    }
}

/// Closed to the tray, the app (as people run it: no WebDriver) ends every helper process
/// its window had, WebKit's network process too; a second launch, as the desktop's
/// launcher does it, opens the window again and it paints.
#[tokio::test(flavor = "multi_thread")]
async fn closed_to_the_tray_the_app_ends_its_webview_processes_and_opens_again() {
    let _one = ONE_APP.lock().await;
    let env = Env::new();
    env.account("work", "issuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"");
    let display = Display::start();
    let launch = || {
        let mut app = tokio::process::Command::new(desktop_app());
        app.envs(vars(&env))
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("WEBKIT_DISABLE_COMPOSITING_MODE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        app
    };
    let mut app = launch().stderr(Stdio::piped()).spawn().unwrap();
    let pid = app.id().unwrap() as i32;
    let mut log = tokio::io::BufReader::new(app.stderr.take().unwrap()).lines();
    let mut painted = async || {
        let wait = async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.contains("painted ") {
                    return;
                }
            }
            panic!("the app exited before its window painted");
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .expect("the window painted within 60 s");
    };
    painted().await;
    assert_network_process(pid);
    // No GPU to composite on (this VM): the page was drawn without WebKit's compositing.
    let gpu = std::fs::read_dir("/dev/dri").is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    let (web, _) = descendant_processes(pid)
        .into_iter()
        .find(|(_, name)| name.starts_with("WebKitWebProces"))
        .expect("a web process below the app");
    let environ = std::fs::read(format!("/proc/{web}/environ")).unwrap();
    let compositing_off = environ
        .split(|b| *b == 0)
        .any(|v| v == b"WEBKIT_DISABLE_COMPOSITING_MODE=1");
    assert_eq!(
        compositing_off, !gpu,
        "compositing off exactly when there is no GPU"
    );

    assert_eq!(display.close_window("Lanyard"), 1);
    until_none_left(pid, "").await;
    assert!(
        std::os::unix::net::UnixStream::connect(env.socket()).is_ok(),
        "the broker lives on in the tray"
    );

    let second = launch().stderr(Stdio::null()).status().await.unwrap();
    assert!(
        second.success(),
        "the second launch hands over and exits: {second}"
    );
    painted().await;
    assert_network_process(pid);
    let _ = app.start_kill();
    let _ = app.wait().await;
}

/// Asserts that WebKit's network process runs below `pid`: the window is open.
fn assert_network_process(pid: i32) {
    let below = descendants(pid);
    assert!(
        below.iter().any(|n| n.starts_with("WebKitNetwork")),
        "no WebKit network process below the app: {below:?}"
    );
}

/// The names (`comm`) of the processes below `pid`, but for zombies.
fn descendants(pid: i32) -> Vec<String> {
    descendant_processes(pid)
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

/// The pids and names (`comm`) of the processes below `pid`, but for zombies.
fn descendant_processes(pid: i32) -> Vec<(i32, String)> {
    let mut table = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
        else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(state), Some(Ok(parent))) =
            (fields.first(), fields.get(1).map(|p| p.parse::<i32>()))
        {
            table.push((child, parent, name.to_owned(), *state == "Z"));
        }
    }
    let mut below = vec![pid];
    let mut names = Vec::new();
    while let Some(p) = below.pop() {
        for (child, parent, name, zombie) in &table {
            if *parent == p {
                below.push(*child);
                if !zombie {
                    names.push((*child, name.clone()));
                }
            }
        }
    }
    names
}

/// The pid of the process serving this test's broker socket (its peer credentials).
pub(crate) fn broker_pid(env: &Env) -> i32 {
    let sock = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let sock = tokio::net::UnixStream::from_std(sock).unwrap();
    let (_, pid, _) = lanyard::platform::server_of(&sock).unwrap();
    pid.expect("the broker's pid")
}

/// Waits for process `pid` to exit: its pidfd becomes readable.
pub(crate) async fn exited(pid: i32) {
    let waited = tokio::task::spawn_blocking(move || {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd < 0 {
            return 1; // already gone
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, then the descriptor this function opened is closed.
        unsafe {
            let n = libc::poll(&mut poll, 1, 30_000);
            libc::close(fd);
            n
        }
    })
    .await
    .unwrap();
    assert!(waited > 0, "process {pid} did not exit");
}

/// The desktop model (`lanyard::desktop`), as the app runs it, over this test's world.
async fn start_model(env: &Env, timeout: std::time::Duration) -> Result<Desktop, Failure> {
    Desktop::start(Options {
        config: Some(env.config.clone()),
        socket: Some(env.socket().into()),
        data_dir: Some(PathBuf::from(env.path("data")).join("lanyard")),
        approval_timeout: Some(timeout),
        // The app runs in this test program: name the command line it ships beside.
        clis: vec![env!("CARGO_BIN_EXE_lanyard").into()],
        ..Options::default()
    })
    .await
}

/// The next event of the kind `pick` accepts.
async fn next<T>(
    events: &mut tokio::sync::broadcast::Receiver<UiEvent>,
    pick: impl Fn(UiEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            if let Some(found) = pick(events.recv().await.unwrap()) {
                return found;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .expect("the event never came")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_takes_the_socket_over_from_a_headless_agent() {
    let env = Env::new();
    env.account("work", "issuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"");
    let agent = env.start_agent().await;
    let desktop = start_model(&env, std::time::Duration::from_secs(60))
        .await
        .expect("the app starts");
    // The headless agent was asked to stop, and stopped cleanly.
    assert!(agent.wait().await.success());
    // The app serves the socket now: tools still find their broker where it was.
    let run = env.lanyard(&["status", "--json"]).await;
    run.assert_ok();
    // A second app (or anything that is not the headless agent) is not pushed aside.
    let second = start_model(&env, std::time::Duration::from_secs(60)).await;
    let failure = second.err().expect("a second app is refused");
    assert!(
        failure.message.contains("another Lanyard app"),
        "{failure:?}"
    );
    // And a headless agent started now finds the app there.
    let late = env.lanyard(&["agent"]).await;
    late.assert_fails(late.code, "already running");
    assert_ne!(late.code, 0);
    drop(desktop);
}

/// Ten requests of one app for one account wait on one prompt, which says how many wait;
/// one answer serves all ten.
#[tokio::test(flavor = "multi_thread")]
async fn requests_of_one_app_share_one_prompt() {
    const REQUESTS: usize = 10;
    let env = Env::new();
    env.account("work", "issuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"");
    let desktop = start_model(&env, std::time::Duration::from_secs(60))
        .await
        .expect("the app starts");
    let mut events = desktop.subscribe();
    let asks = (0..REQUESTS).map(|_| env.lanyard(&["token", "work"]));
    let prompts = std::sync::atomic::AtomicUsize::new(0);
    let (runs, ()) = tokio::join!(futures_util::future::join_all(asks), async {
        let id = next(&mut events, |e| match e {
            UiEvent::Approval { .. } => {
                prompts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                None
            }
            UiEvent::ApprovalWaiting { id, waiting } if waiting == REQUESTS => Some(id),
            _ => None,
        })
        .await;
        // A window opened now shows the one prompt, for all ten.
        let waiting = desktop.pending_approvals();
        assert!(
            matches!(&waiting[..], [UiEvent::Approval { id: w, waiting: REQUESTS, .. }] if *w == id),
            "{waiting:?}"
        );
        assert!(desktop.answer(id, "once").unwrap());
    });
    assert_eq!(
        prompts.into_inner(),
        1,
        "one prompt for {REQUESTS} requests"
    );
    // Allowed, every one: then told that nobody is signed in (not that it was denied).
    for run in runs {
        run.assert_fails(3, "sign-in needed");
    }
    assert_eq!(desktop.pending_approvals(), vec![]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_not_answered_denies_once_and_deny_is_remembered() {
    let env = Env::new();
    env.account("work", "issuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"");
    let desktop = start_model(&env, std::time::Duration::from_secs(2))
        .await
        .expect("the app starts");
    let mut events = desktop.subscribe();
    // The tool is this test program, which runs `lanyard token`.
    let me = std::env::current_exe().unwrap().display().to_string();
    let lanyard = me.as_str();

    // Nobody answers: the prompt closes as denied, the tool is told, nothing is kept.
    let ask = env.lanyard(&["token", "work"]);
    let (run, id) = tokio::join!(ask, async {
        next(&mut events, |e| match e {
            UiEvent::Approval {
                id,
                app,
                account,
                timeout_secs,
                ..
            } => {
                assert_eq!(
                    (app.as_str(), account.as_str(), timeout_secs),
                    (lanyard, "work", 2)
                );
                // A window opened now asks for the prompts waiting: this one.
                let waiting = desktop.pending_approvals();
                assert!(
                    matches!(&waiting[..], [UiEvent::Approval { id: w, .. }] if *w == id),
                    "{waiting:?}"
                );
                Some(id)
            }
            _ => None,
        })
        .await
    });
    run.assert_fails(8, "nobody answered Lanyard's prompt");
    let closed = next(&mut events, |e| match e {
        UiEvent::ApprovalClosed {
            id: closed,
            decision,
        } if closed == id => Some(decision),
        _ => None,
    })
    .await;
    assert_eq!(closed, "denied");
    assert_eq!(desktop.apps().unwrap(), vec![]);
    assert_eq!(
        desktop.pending_approvals(),
        vec![],
        "an answered prompt is gone"
    );

    // Asked again; this time the person says Deny: remembered, and not asked again.
    let ask = env.lanyard(&["token", "work"]);
    let desktop2 = desktop.clone();
    let (run, _) = tokio::join!(ask, async {
        let id = next(&mut events, |e| match e {
            UiEvent::Approval { id, .. } => Some(id),
            _ => None,
        })
        .await;
        assert!(desktop2.answer(id, "deny").unwrap());
    });
    run.assert_fails(8, "may not use work's tokens");
    let rules = desktop.apps().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        (rules[0].app.as_str(), rules[0].decision),
        (lanyard, "denied")
    );
    env.lanyard(&["token", "work"])
        .await
        .assert_fails(8, "may not use work's tokens");
    // The activity view has each decision, newest first.
    let activity: Vec<String> = desktop
        .activity(10)
        .into_iter()
        .map(|e| e.decision)
        .collect();
    assert_eq!(activity, ["denied", "denied", "denied"]);

    // Revoked, the app is asked about again.
    desktop.revoke("work", lanyard).unwrap();
    assert_eq!(desktop.apps().unwrap(), vec![]);
}

/// The identity card's picture is the provider's claim: a URL aimed at this machine (or
/// its network) is never fetched, the provider's own is, and the cached copy goes at
/// sign-out.
#[tokio::test(flavor = "multi_thread")]
async fn pictures_come_from_public_places_or_the_provider_and_go_at_sign_out() {
    // Something internal the hostile claim points at: it must see no connection.
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe = format!(
        "http://127.0.0.1:{}/admin/export.png",
        internal.local_addr().unwrap().port()
    );
    let idp = Idp::start_with(false, &["--mallory-picture", &probe]);
    let mut env = Env::new();
    for (name, login) in [("mallory", "mallory"), ("bob", "bob")] {
        env.public_account(name, &idp);
        env.set("LANYARD_TEST_LOGIN", login);
        // Each sign-in in a browser of its own: the provider's session is per person.
        env.set(
            "LANYARD_TEST_BROWSER_PROFILE",
            &env.path(&format!("{login}-profile")),
        );
        env.lanyard(&["login", name]).await.assert_ok();
    }
    let desktop = start_model(&env, std::time::Duration::from_secs(60))
        .await
        .expect("the app starts");
    assert_eq!(
        desktop.identity("mallory").unwrap().picture.as_deref(),
        Some(probe.as_str())
    );
    assert_eq!(desktop.picture("mallory").await, None);
    let connected = tokio::time::timeout(std::time::Duration::ZERO, internal.accept()).await;
    assert!(connected.is_err(), "the internal address was reached");

    let bob = desktop
        .picture("bob")
        .await
        .expect("the provider's own picture");
    assert!(bob.starts_with("data:image/png;base64,"), "{bob:.40}");
    let pictures = PathBuf::from(env.path("data")).join("lanyard/pictures");
    assert_eq!(
        std::fs::read_dir(&pictures).map(|d| d.count()).unwrap_or(0),
        1,
        "bob's picture is cached"
    );
    env.lanyard(&["logout", "bob", "--local"]).await.assert_ok();
    assert_eq!(
        std::fs::read_dir(&pictures).map(|d| d.count()).unwrap_or(0),
        0,
        "the cached picture outlived the sign-out"
    );
    drop(desktop);
}
