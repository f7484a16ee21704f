//! Kiosk mode (a gaming center's seat), against the real provider and the real browser:
//! a player signs in (in the seat's own browser profile, or on their phone with the
//! device flow), a partner app gets a token through the broker, and a trigger ends the
//! seat session. After each, the residue scan: no keychain item, no token in any of
//! Lanyard's directories, the seat's browser profile gone, the grant revoked and the
//! provider session ended, and the next sign-in shows the login form again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lanyard::desktop::{Desktop, Options, UiEvent};
use lanyard::kiosk::{SeatView, Trigger};

use crate::support::{self, Env, Idp};

/// The seat's browser: the test's player at Chromium (browser.mjs), or at Firefox
/// (firefox.mjs) on an X display.
enum Browser<'a> {
    Chromium,
    Firefox { display: &'a str },
}

/// The managed kiosk file for this test's seat, with `extra` lines in `[kiosk]`; the seat
/// browser is Chromium.
fn kiosk_file(env: &Env, idp: &Idp, extra: &str) -> PathBuf {
    kiosk_file_with(env, idp, extra, Browser::Chromium)
}

fn kiosk_file_with(env: &Env, idp: &Idp, extra: &str, browser: Browser) -> PathBuf {
    let path = PathBuf::from(env.path("kiosk.toml"));
    // The partner app is this test program, which asks through the `lanyard` CLI.
    let partner = std::env::current_exe().unwrap();
    let partner = partner.display();
    // The seat's browser is the test's, with the test's log: the kiosk runs in this
    // process, whose environment the test does not change. Its name says which switches
    // Lanyard passes it.
    let idp_dir = support::root().join("tests/idp");
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in env.vars() {
        script += &format!("export {k}='{v}'\n");
    }
    let wrapper = match browser {
        Browser::Chromium => {
            script += &format!("exec '{}' \"$@\"\n", idp_dir.join("browser.mjs").display());
            "seat-chromium"
        }
        Browser::Firefox { display } => {
            script += &format!(
                "export DISPLAY='{display}'\nexec node --experimental-websocket --no-warnings '{}' \"$@\"\n",
                idp_dir.join("firefox.mjs").display()
            );
            "seat-firefox"
        }
    };
    let browser = PathBuf::from(env.path(wrapper));
    std::fs::write(&browser, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        &path,
        format!(
            "[kiosk]\nallowed_apps = [\"{partner}\"]\nsession_apps = [\"{partner}\"]\nbrowser = \"{}\"\n{extra}\n\n\
             [accounts.center]\nissuer = \"{}\"\nclient_id = \"lanyard-public\"\nscopes = \"openid profile email offline_access\"\n",
            browser.display(),
            idp.issuer
        ),
    )
    .unwrap();
    path
}

async fn start_seat(env: &Env, kiosk: PathBuf) -> Desktop {
    start_seat_with(env, kiosk, None).await
}

/// A seat whose idle time comes from `idle_probe` (else the desktop's, if any).
async fn start_seat_with(
    env: &Env,
    kiosk: PathBuf,
    idle_probe: Option<Arc<dyn lanyard::kiosk::IdleProbe>>,
) -> Desktop {
    Desktop::start(Options {
        config: Some(env.config.clone()),
        socket: Some(env.socket().into()),
        data_dir: Some(PathBuf::from(env.path("data")).join("lanyard")),
        kiosk: Some(kiosk),
        idle_probe,
        // The seat runs in this test program: name the command line it ships beside.
        clis: vec![env!("CARGO_BIN_EXE_lanyard").into()],
        ..Options::default()
    })
    .await
    .expect("the kiosk starts")
}

/// A partner app on the seat asks the broker for the player's token; it works at the
/// provider.
async fn tool_gets_a_token(env: &Env, idp: &Idp) -> String {
    let run = env.lanyard(&["token", "center"]).await;
    run.assert_ok();
    let token = run.stdout.trim().to_owned();
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
    token
}

/// Runs `program ARGS` on the seat, which must be refused (exit 8, nothing printed), and
/// returns what it said.
async fn refused(env: &Env, program: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .envs(env.vars())
        .env("LANYARD_CONFIG", &env.config)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    stderr
}

/// The next seat event that `pick` accepts.
async fn seat_event(
    events: &mut tokio::sync::broadcast::Receiver<UiEvent>,
    pick: impl Fn(&SeatView) -> bool,
) -> SeatView {
    let wait = async {
        loop {
            if let UiEvent::Seat { seat } = events.recv().await.unwrap()
                && pick(&seat)
            {
                return seat;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the seat event never came")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// No file under `roots` holds `token`.
fn no_file_holds(roots: &[PathBuf], token: &str) {
    for file in roots.iter().flat_map(|r| files(r)) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(token),
            "{} holds the player's token",
            file.display()
        );
    }
}

/// Nothing of the player remains: no keychain item, no file holding the token anywhere
/// in the test's world (data, config and runtime directories, the kiosk's own), the
/// seat's browser profile deleted, the provider's grant revoked and session ended.
async fn residue_scan(env: &Env, idp: &Idp, token: &str, profile: &Path) {
    assert_eq!(
        support::keychain("lanyard", "center"),
        None,
        "a keychain item is left"
    );
    let roots = [
        PathBuf::from(env.path("")),
        std::env::temp_dir().join("tray-icon"),
    ];
    no_file_holds(&roots, token);
    assert!(
        !profile.exists(),
        "the seat's browser profile {} is left",
        profile.display()
    );
    let events = idp.events().await;
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
    assert!(
        events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
    let after = env.lanyard(&["token", "center"]).await;
    assert_ne!(after.code, 0, "a token is still handed out: {after:?}");
}

/// The browser's run `n`, with the seat profile it ran in.
async fn browser_profile(env: &Env, n: usize) -> (Vec<String>, PathBuf) {
    let run = env.browser_run(n).await;
    assert!(run.get("error").is_none(), "the browser failed: {run}");
    let seen = serde_json::from_value(run["seen"].clone()).unwrap();
    let profile = run["profile"]
        .as_str()
        .unwrap_or_else(|| panic!("the kiosk did not give the browser a profile: {run}"));
    (seen, PathBuf::from(profile))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_request_ends_the_seat_session_and_nothing_remains() {
    let idp = Idp::start(false);
    let env = Env::new();
    let seat = start_seat(&env, kiosk_file(&env, &idp, "idle_timeout = 0")).await;
    let mut events = seat.subscribe();
    assert_eq!(seat.seat().map(|s| s.active), Some(false));

    // The player signs in, in the seat's own browser profile, and must type a password.
    seat.sign_in("center").await.expect("signed in");
    let (seen, profile) = browser_profile(&env, 0).await;
    assert!(seen.contains(&"login".to_owned()), "{seen:?}");
    assert!(profile.is_dir(), "{}", profile.display());
    assert_eq!(seat.seat_profile().as_deref(), Some(profile.as_path()));
    assert!(seat.seat().unwrap().active);
    // In memory only: the keychain never sees it.
    assert_eq!(support::keychain("lanyard", "center"), None);
    let token = tool_gets_a_token(&env, &idp).await;

    // Another program on the seat running the same command line is not the partner app:
    // refused, and nobody is asked. (`timeout` runs the CLI as its child.)
    let stderr = refused(
        &env,
        "timeout",
        &["60", env!("CARGO_BIN_EXE_lanyard"), "token", "center"],
    )
    .await;
    assert!(
        stderr.contains("/usr/bin/timeout may not use center's tokens on this seat"),
        "{stderr}"
    );

    // An app the kiosk file does not name gets nothing, and nobody is asked. (A hard
    // link of the CLI under another name: another executable to the broker.)
    let stranger = PathBuf::from(env.path("partner-game"));
    std::fs::hard_link(env!("CARGO_BIN_EXE_lanyard"), &stranger).unwrap();
    let stderr = refused(&env, stranger.to_str().unwrap(), &["token", "center"]).await;
    assert!(stderr.contains("is not in allowed_apps"), "{stderr}");
    // Nor may it end the player's session.
    let out = tokio::process::Command::new(&stranger)
        .arg("end-session")
        .envs(env.vars())
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seat.seat().unwrap().active);

    // The center's seat software: `lanyard end-session`.
    let end = env.lanyard(&["end-session", "--json"]).await;
    end.assert_ok();
    assert!(end.stdout.contains("\"ended\": true"), "{}", end.stdout);
    let ended = seat_event(&mut events, |s| !s.active).await;
    assert!(ended.warnings.is_empty(), "{:?}", ended.warnings);
    assert_eq!(ended.last_ended, Some(Trigger::Broker));
    residue_scan(&env, &idp, &token, &profile).await;

    // The next player starts from nothing: a new profile, and the login form again.
    seat.sign_in("center").await.expect("signed in again");
    let (seen, next_profile) = browser_profile(&env, 2).await;
    assert!(seen.contains(&"login".to_owned()), "{seen:?}");
    assert_ne!(next_profile, profile);
    assert!(seat.end_session(Trigger::Quit).await.unwrap());
    assert!(!next_profile.exists());
    // Nobody left: ending again says so.
    let again = env.lanyard(&["end-session"]).await;
    again.assert_ok();
    assert!(
        again.stdout.contains("Nobody was signed in"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_to_sign_in_then_the_idle_timeout_ends_the_session() {
    let idp = Idp::start(false);
    let env = Env::new();
    let kiosk = kiosk_file(&env, &idp, "idle_timeout = \"4s\"\nidle_warning = \"2s\"");
    let seat = start_seat(&env, kiosk).await;
    let mut events = seat.subscribe();
    assert!(seat.offers_device_flow("center").await.unwrap());

    // The kiosk shows a code and a QR code; the player signs in on their phone.
    let signing_in = {
        let seat = seat.clone();
        tokio::spawn(async move { seat.sign_in_device("center").await })
    };
    let (url, svg) = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let UiEvent::DeviceCode {
                verification_uri_complete: Some(url),
                qr_svg,
                ..
            } = events.recv().await.unwrap()
            {
                return (url, qr_svg);
            }
        }
    })
    .await
    .expect("the kiosk showed a code");
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{svg:.80}"
    );
    env.phone(&url).await;
    signing_in.await.unwrap().expect("signed in on the phone");
    let token = tool_gets_a_token(&env, &idp).await;

    // Nobody touches the seat: a warning with a countdown, then the end.
    let warned = seat_event(&mut events, |s| s.idle_ends_at.is_some()).await;
    assert!(warned.active);
    // "I'm still here" puts the warning away…
    seat.still_here();
    let back = seat_event(&mut events, |s| s.idle_ends_at.is_none()).await;
    assert!(back.active);
    // …until the player really has gone.
    seat_event(&mut events, |s| s.idle_ends_at.is_some()).await;
    let ended = seat_event(&mut events, |s| !s.active).await;
    assert!(ended.warnings.is_empty(), "{:?}", ended.warnings);
    assert_eq!(ended.last_ended, Some(Trigger::Idle));
    // The sign-in used the phone's browser, not the seat's: the seat's opened only for
    // the provider's logout, in a profile of its own that is gone now.
    assert_eq!(support::keychain("lanyard", "center"), None);
    // (Lanyard stops that browser as soon as the provider sends it back, which may be
    // before the test's browser has logged a clean run.)
    let logout = env.browser_run(1).await;
    let profile = PathBuf::from(logout["profile"].as_str().expect("a seat profile"));
    assert!(!profile.exists(), "the seat's browser profile is left");
    let events = idp.events().await;
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
    assert!(
        events.contains(&"end_session.success".to_owned()),
        "{events:?}"
    );
    no_file_holds(&[PathBuf::from(env.path(""))], &token);
    assert_ne!(env.lanyard(&["token", "center"]).await.code, 0);
}

/// The last player showed a QR code and walked away; the seat session ends (here by the
/// center's software). The sign-in is cancelled with it: the code, used afterwards, signs
/// nobody in on the next player's seat.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_code_signs_nobody_in_after_the_session_ends() {
    let idp = Idp::start(false);
    let env = Env::new();
    let seat = start_seat(&env, kiosk_file(&env, &idp, "")).await;
    let mut events = seat.subscribe();
    let signing_in = {
        let seat = seat.clone();
        tokio::spawn(async move { seat.sign_in_device("center").await })
    };
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let UiEvent::DeviceCode {
                verification_uri_complete: Some(url),
                ..
            } = events.recv().await.unwrap()
            {
                return url;
            }
        }
    })
    .await
    .expect("the kiosk showed a code");

    assert!(!seat.end_session(Trigger::Broker).await.unwrap());
    let cancelled = tokio::time::timeout(Duration::from_secs(30), signing_in)
        .await
        .expect("the end of the session stops the sign-in at once")
        .unwrap()
        .unwrap_err();
    assert!(
        cancelled.message.contains("seat session ended"),
        "{cancelled:?}"
    );

    // The player's code still works at the provider; nothing on the seat waits for it.
    env.phone(&url).await;
    assert_eq!(seat.seat().map(|s| s.active), Some(false));
    let run = env.lanyard(&["token", "center"]).await;
    run.assert_fails(3, "sign-in needed");
    // And the next player signs in as usual.
    seat.sign_in("center")
        .await
        .expect("the next player signs in");
    assert!(seat.end_session(Trigger::Quit).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_maximum_session_length_ends_the_session() {
    let idp = Idp::start(false);
    let env = Env::new();
    let kiosk = kiosk_file(&env, &idp, "idle_timeout = 0\nmax_session = \"3s\"");
    let seat = start_seat(&env, kiosk).await;
    let mut events = seat.subscribe();
    seat.sign_in("center").await.expect("signed in");
    let (_, profile) = browser_profile(&env, 0).await;
    let token = tool_gets_a_token(&env, &idp).await;
    let view = seat.seat().unwrap();
    assert_eq!(view.ends_at, view.started_at.map(|s| s + 3));
    let ended = seat_event(&mut events, |s| !s.active).await;
    assert!(ended.warnings.is_empty(), "{:?}", ended.warnings);
    assert_eq!(ended.last_ended, Some(Trigger::MaxSession));
    residue_scan(&env, &idp, &token, &profile).await;
}

/// The kiosk app itself, full screen in its real webview: the player signs in with the
/// big button, a tool gets a token, the End session button ends it all; then the next
/// player signs in and the app quits, which ends that session too.
#[tokio::test(flavor = "multi_thread")]
async fn the_kiosk_screen_signs_in_and_its_button_and_quit_end_the_session() {
    use crate::desktop::{Shots, broker_pid, exited, open_app};
    let _one = crate::support::webdriver::ONE_APP.lock().await;
    let shots = Shots::asked();
    let idp = Idp::start(false);
    let mut env = Env::new();
    let kiosk = kiosk_file(&env, &idp, "idle_timeout = 0\nmax_session = \"2h\"");
    env.set("LANYARD_KIOSK_CONFIG", &kiosk.display().to_string());
    let (_display, _driver, app) = open_app(&env).await;
    app.wait_for("[data-screen='kiosk-welcome'] #sign-in", "Sign in with")
        .await;
    // The provider offers the device flow: the scan button appears.
    app.wait_for("#scan-center", "Scan with your phone").await;
    shots.take(&app, "kiosk-1-welcome").await;

    app.click("#sign-in").await;
    app.wait_for("#kiosk-who", "Alice Example").await;
    app.wait_for("#seat-remaining", "h").await;
    shots.take(&app, "kiosk-3-signed-in").await;
    let (seen, profile) = browser_profile(&env, 0).await;
    assert!(seen.contains(&"login".to_owned()), "{seen:?}");
    let token = tool_gets_a_token(&env, &idp).await;
    assert_eq!(support::keychain("lanyard", "center"), None);

    app.click("#end-session").await;
    app.wait_for("#kiosk-ended", "You ended your session").await;
    shots.take(&app, "kiosk-5-ended").await;
    residue_scan(&env, &idp, &token, &profile).await;

    // The next player presses Sign in just as the window redraws (a tool asking for the
    // signed-out account's token makes it redraw): the press still counts. Then the
    // center closes the app: that ends their session too.
    app.count_events("accounts").await;
    app.press("#sign-in").await;
    let refused = env.lanyard(&["token", "center"]).await;
    assert_ne!(refused.code, 0, "{refused:?}");
    app.events_seen("accounts", 1).await;
    app.release().await;
    app.wait_for("#kiosk-who", "Alice Example").await;
    let (seen, profile) = browser_profile(&env, 2).await;
    assert!(seen.contains(&"login".to_owned()), "{seen:?}");
    let token = tool_gets_a_token(&env, &idp).await;
    let revoked_before = idp
        .events()
        .await
        .iter()
        .filter(|e| *e == "grant.revoked")
        .count();
    let pid = broker_pid(&env);
    app.run_last("window.__TAURI__.core.invoke('quit')").await;
    exited(pid).await;
    let revoked_after = idp
        .events()
        .await
        .iter()
        .filter(|e| *e == "grant.revoked")
        .count();
    assert!(revoked_after > revoked_before, "quitting revoked nothing");
    assert!(
        !profile.exists(),
        "quitting left the seat's browser profile"
    );
    no_file_holds(&[PathBuf::from(env.path(""))], &token);
}

/// The kiosk screen's scan-to-sign-in and idle warning: the QR code and the user code
/// are shown, the player signs in on their phone with that code, then walks away; the
/// screen asks "Are you still there?", "I'm still here" puts it away, and the next time
/// nobody answers the session ends.
#[tokio::test(flavor = "multi_thread")]
async fn the_kiosk_screen_shows_the_code_to_scan_and_warns_before_idling_out() {
    use crate::desktop::{Shots, open_app};
    let _one = crate::support::webdriver::ONE_APP.lock().await;
    let shots = Shots::asked();
    let idp = Idp::start(false);
    let mut env = Env::new();
    let kiosk = kiosk_file(&env, &idp, "idle_timeout = \"8s\"\nidle_warning = \"6s\"");
    env.set("LANYARD_KIOSK_CONFIG", &kiosk.display().to_string());
    let (_display, _driver, app) = open_app(&env).await;
    app.click("#scan-center").await;
    app.wait_for(
        "[data-screen='kiosk-scan'] img#qr[src^='data:image/svg+xml']",
        "",
    )
    .await;
    shots.take(&app, "kiosk-2-scan").await;
    let code = app.text("#user-code").await;
    let uri = app.text("#verification-uri").await;
    assert!(
        !code.is_empty() && uri.starts_with(&idp.issuer),
        "{uri} {code}"
    );
    // The player's phone, with the code the screen shows.
    let mut url = url::Url::parse(&uri).unwrap();
    url.query_pairs_mut().append_pair("user_code", &code);
    env.phone(url.as_str()).await;
    app.wait_for("#kiosk-who", "Alice Example").await;
    let token = tool_gets_a_token(&env, &idp).await;

    app.wait_for("#idle-warning[open] #idle-left", "s").await;
    shots.take(&app, "kiosk-4-still-there").await;
    app.click("#still-here").await;
    app.wait_for("#idle-warning:not([open])", "").await;
    app.wait_for("#kiosk-who", "Alice Example").await;
    app.wait_for("#idle-warning[open]", "").await;
    app.wait_for("#kiosk-ended", "nobody was here").await;
    assert_eq!(support::keychain("lanyard", "center"), None);
    no_file_holds(&[PathBuf::from(env.path(""))], &token);
    assert_ne!(env.lanyard(&["token", "center"]).await.code, 0);
}

/// A Firefox seat: Debian's Firefox ESR in a real window (Xvfb), started by Lanyard with
/// the profile it made and a private window. The player signs in there; the provider's
/// session cookie stays in the window's memory, never in the profile's cookie jar. The End
/// session button's sign-out sends the provider's logout page to that same Firefox, then
/// stops it and deletes the profile; the next player sees the login form again.
#[tokio::test(flavor = "multi_thread")]
async fn a_firefox_seat_signs_in_in_a_private_window_and_the_end_stops_it() {
    use crate::desktop::exited;
    let display = support::xvfb::Display::start();
    let idp = Idp::start(false);
    let env = Env::new();
    let firefox = Browser::Firefox {
        display: &display.name,
    };
    let seat = start_seat(
        &env,
        kiosk_file_with(&env, &idp, "idle_timeout = 0", firefox),
    )
    .await;

    seat.sign_in("center")
        .await
        .expect("signed in with Firefox");
    let run = env.browser_run(0).await;
    assert_eq!(run["browser"], "firefox", "{run}");
    assert!(run.get("error").is_none(), "Firefox failed: {run}");
    assert!(
        run["seen"].as_array().unwrap().contains(&"login".into()),
        "{run}"
    );
    let profile = PathBuf::from(run["profile"].as_str().unwrap());
    assert_eq!(seat.seat_profile().as_deref(), Some(profile.as_path()));
    assert!(
        profile.join("prefs.js").exists(),
        "Firefox did not use the seat's profile"
    );
    // A private window: the provider's session cookie is in the window's memory, not in
    // the profile's cookie jar, where a normal window would have put it.
    assert_eq!(run["jar"], serde_json::json!([]), "{run}");
    let token = tool_gets_a_token(&env, &idp).await;

    assert!(seat.end_session(Trigger::Button).await.unwrap());
    // Firefox itself, not just the script that started it, is gone.
    exited(run["pid"].as_i64().unwrap() as i32).await;
    assert!(
        seat.seat().unwrap().warnings.is_empty(),
        "{:?}",
        seat.seat().unwrap().warnings
    );
    residue_scan(&env, &idp, &token, &profile).await;

    // The next player: a new Firefox on a new profile, and the login form again. (The
    // logout page's run may or may not have been logged before Lanyard stopped Firefox.)
    seat.sign_in("center").await.expect("signed in again");
    let next = env.browser_run(1).await;
    let next = if next["pid"] == run["pid"] {
        env.browser_run(2).await
    } else {
        next
    };
    assert!(next.get("error").is_none(), "Firefox failed: {next}");
    assert!(
        next["seen"].as_array().unwrap().contains(&"login".into()),
        "{next}"
    );
    assert_ne!(next["profile"], run["profile"]);
    assert!(seat.end_session(Trigger::Quit).await.unwrap());
    exited(next["pid"].as_i64().unwrap() as i32).await;
}

/// A D-Bus daemon of the test's own, so that its idle monitor is seen by its seat alone.
struct PrivateBus {
    daemon: std::process::Child,
    address: String,
}

impl PrivateBus {
    fn start() -> PrivateBus {
        use std::io::BufRead as _;
        let mut daemon = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dbus-daemon (run `cargo xtask deps`)");
        // It prints its address once it listens.
        let mut address = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        PrivateBus {
            daemon,
            address: address.trim().to_owned(),
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// GNOME's idle monitor, as Mutter serves it: the idle time the test sets, and a word to
/// the test each time the seat asks.
struct IdleMonitor {
    idle_ms: Arc<AtomicU64>,
    asked: tokio::sync::mpsc::UnboundedSender<u64>,
}

#[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
impl IdleMonitor {
    fn get_idletime(&self) -> u64 {
        let idle = self.idle_ms.load(Ordering::SeqCst);
        let _ = self.asked.send(idle);
        idle
    }
}

/// A player busy in a game gives Lanyard's screen no input, but the desktop's idle
/// monitor (GNOME's, on D-Bus: what a Wayland seat has instead of X11's screen saver)
/// sees it: the seat does not warn. Once the monitor says nobody is there, the session
/// ends.
#[tokio::test(flavor = "multi_thread")]
async fn the_desktops_idle_monitor_keeps_a_busy_player_signed_in() {
    let bus = PrivateBus::start();
    let idle_ms = Arc::new(AtomicU64::new(0));
    let (asked_tx, mut asked) = tokio::sync::mpsc::unbounded_channel();
    let _mutter = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.gnome.Mutter.IdleMonitor")
        .unwrap()
        .serve_at(
            "/org/gnome/Mutter/IdleMonitor/Core",
            IdleMonitor {
                idle_ms: idle_ms.clone(),
                asked: asked_tx,
            },
        )
        .unwrap()
        .build()
        .await
        .unwrap();
    let address = bus.address.clone();
    let probe = tokio::task::spawn_blocking(move || {
        let connection = zbus::blocking::connection::Builder::address(address.as_str())
            .unwrap()
            .build()
            .unwrap();
        lanyard::platform::linux_idle::dbus::DbusIdle::on(connection).expect("the monitor answers")
    })
    .await
    .unwrap();
    asked.recv().await.unwrap(); // the probe's own question, when it looked for a monitor

    let idp = Idp::start(false);
    let env = Env::new();
    let kiosk = kiosk_file(&env, &idp, "idle_timeout = \"4s\"\nidle_warning = \"2s\"");
    let seat = start_seat_with(&env, kiosk, Some(Arc::new(probe))).await;
    let mut events = seat.subscribe();
    seat.sign_in("center").await.expect("signed in");

    // Input a moment ago, says the monitor, each time the seat asks: when the session
    // starts, at the warning's deadline (two seconds in), and for the next deadline.
    for _ in 0..3 {
        tokio::time::timeout(Duration::from_secs(30), asked.recv())
            .await
            .expect("the seat never asked the idle monitor")
            .unwrap();
    }
    // The deadline passed with no warning.
    while let Ok(event) = events.try_recv() {
        if let UiEvent::Seat { seat } = event {
            assert!(seat.active, "{seat:?}");
            assert_eq!(seat.idle_ends_at, None, "a busy player was warned");
        }
    }
    // The player leaves (an hour without input): the next deadline ends the session.
    idle_ms.store(3_600_000, Ordering::SeqCst);
    let ended = seat_event(&mut events, |s| !s.active).await;
    assert_eq!(ended.last_ended, Some(Trigger::Idle));
    assert!(ended.warnings.is_empty(), "{:?}", ended.warnings);
}
