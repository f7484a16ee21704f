//! A Windows kiosk seat under Wine, as a center runs one: the kiosk file in
//! `%ProgramData%\Lanyard`, policy in `HKLM\SOFTWARE\Policies\Lanyard`, the seat browser
//! found at Edge's own path, and every way a seat session ends. Wine has no WebView2, so
//! `app.exe` runs the app's model without its window and does what its buttons do; Edge
//! is `seatbrowser.exe`, which hands the page it is given to the test's Chromium.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::app::App;
use super::{Prefix, Wine};
use crate::support::{self, Env, Idp};

/// The seat: the app in kiosk mode, its browser the stand-in for Edge.
async fn start_seat(prefix: &Prefix, env: &Env) -> App {
    App::start(
        prefix,
        &[
            (
                "LANYARD_TEST_SEAT_BROWSER",
                support::root()
                    .join("tests/idp/browser.mjs")
                    .display()
                    .to_string(),
            ),
            ("LANYARD_TEST_BROWSER_LOG", env.path("browser.log")),
            // Chromium's own profile, on the host (see seatbrowser.c).
            ("LANYARD_TEST_BROWSER_PROFILE", env.path("chromium-profile")),
        ],
    )
    .await
}

/// Waits for the seat session to end, and checks why and that nothing failed.
async fn ended(seat: &mut App, trigger: &str) {
    let event = seat
        .event("seat", |e| {
            e["seat"]["active"] == false && !e["seat"]["last_ended"].is_null()
        })
        .await;
    let view = &event["seat"];
    assert_eq!(view["last_ended"], trigger, "{view}");
    assert_eq!(view["warnings"], serde_json::json!([]), "{view}");
}

/// The partner app on the seat, a Windows program, asks the seat's broker for the token.
async fn partner_token(prefix: &Prefix, seat: &App) -> Result<String, Value> {
    let run = prefix.run(&partner(prefix), &[&seat.pipe, "center"]).await;
    let answer: Value = run
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("{run:?}"));
    match answer["ok"]["access_token"].as_str() {
        Some(token) => Ok(token.to_owned()),
        None => Err(answer["error"].clone()),
    }
}

/// Where the test installs the partner app (`pipeclient.exe`) in the prefix.
fn partner(prefix: &Prefix) -> PathBuf {
    prefix.drive_c().join("Games/Partner/partner.exe")
}

/// Where a session began: the browser's runs and the provider's events so far.
struct Mark {
    runs: usize,
    revoked: usize,
    ended: usize,
}

impl Mark {
    async fn take(env: &Env, idp: &Idp) -> Mark {
        let events = idp.events().await;
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        Mark {
            runs: env.browser_runs().len(),
            revoked: count("grant.revoked"),
            ended: count("end_session.success"),
        }
    }

    /// The player's grant was revoked and their provider session ended since the mark.
    async fn signed_out_at_the_provider(&self, idp: &Idp) {
        let events = idp.events().await;
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        assert!(
            count("grant.revoked") > self.revoked,
            "not revoked: {events:?}"
        );
        assert!(
            count("end_session.success") > self.ended,
            "session not ended: {events:?}"
        );
    }
}

/// What each session must leave: the player's browser profile deleted (Edge got its
/// InPrivate switch and that profile), the token refused by the broker, nothing in
/// Credential Manager, the refresh token revoked and the provider's session ended in
/// the seat's browser.
async fn session_left_nothing(prefix: &Prefix, env: &Env, idp: &Idp, seat: &App, mark: &Mark) {
    let sign_in = env.browser_run(mark.runs).await;
    assert!(
        sign_in.get("error").is_none(),
        "the browser failed: {sign_in}"
    );
    let argv: Vec<&str> = sign_in["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(argv.contains(&"--inprivate"), "Edge's own switch: {argv:?}");
    let profile = PathBuf::from(sign_in["profile"].as_str().expect("a profile of its own"));
    assert!(
        profile.starts_with(prefix.dir.path().join("dosdevices/c:/users")),
        "{}",
        profile.display()
    );
    assert!(
        !profile.exists(),
        "the seat's browser profile {} is left",
        profile.display()
    );
    signed_out_in_the_browser(env, mark.runs + 1).await;
    let refused = partner_token(prefix, seat).await.unwrap_err();
    assert_eq!(refused["code"], "sign_in_needed", "{refused}");
    let stored = prefix
        .run(&Wine::new().bin.join("credread.exe"), &["center.lanyard"])
        .await;
    assert_eq!(
        stored.code, 1,
        "Credential Manager holds the player: {stored:?}"
    );
    mark.signed_out_at_the_provider(idp).await;
}

/// The browser's run `n` showed the provider's logout page, in the seat browser of the
/// sign-in before it.
async fn signed_out_in_the_browser(env: &Env, n: usize) {
    let run = env.browser_run(n).await;
    let seen = run["seen"].as_array().cloned().unwrap_or_default();
    assert!(
        seen.contains(&Value::from("logout")),
        "the provider's logout page was not shown: {run}"
    );
    // In the player's own seat browser: the profile they signed in with.
    let sign_in = env.browser_run(n - 1).await;
    assert_eq!(run["profile"], sign_in["profile"], "{run}");
}

/// Five players on one Windows seat, each session ended a different way: the End session
/// button, the center's seat software through the broker, quitting the app, the maximum
/// length and idling out (those two set by registry policy, over the file's "never").
/// After each, nothing of the player is left; at the end, nothing in the whole prefix
/// (its registry hives, its files, Credential Manager) holds any of their tokens.
#[tokio::test(flavor = "multi_thread")]
async fn windows_seat_sessions_end_by_every_trigger_and_leave_nothing() {
    let wine = Wine::new();
    let prefix = tokio::task::block_in_place(Prefix::new);
    let idp = Idp::start(false);
    let env = Env::new();

    // Edge where Edge installs, the partner app, and the kiosk file where IT puts it.
    let edge = prefix
        .drive_c()
        .join("Program Files (x86)/Microsoft/Edge/Application");
    std::fs::create_dir_all(&edge).unwrap();
    std::fs::copy(wine.bin.join("seatbrowser.exe"), edge.join("msedge.exe")).unwrap();
    std::fs::create_dir_all(partner(&prefix).parent().unwrap()).unwrap();
    std::fs::copy(wine.bin.join("pipeclient.exe"), partner(&prefix)).unwrap();
    let kiosk = prefix.drive_c().join("ProgramData/Lanyard");
    std::fs::create_dir_all(&kiosk).unwrap();
    let app = r"C:\\Games\\Partner\\partner.exe";
    std::fs::write(
        kiosk.join("kiosk.toml"),
        format!(
            "[kiosk]\nallowed_apps = [\"{app}\"]\nsession_apps = [\"{app}\"]\nidle_timeout = 0\nmax_session = 0\n\n\
             [accounts.center]\nissuer = \"{}\"\nclient_id = \"lanyard-public\"\nscopes = \"openid profile email offline_access\"\n",
            idp.issuer
        ),
    )
    .unwrap();
    let mut tokens = Vec::new();

    // 1. The End session button.
    let mut seat = start_seat(&prefix, &env).await;
    let mark = Mark::take(&env, &idp).await;
    seat.sign_in("center").await;
    let token = partner_token(&prefix, &seat)
        .await
        .expect("the partner app is served");
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
    tokens.push(token);
    assert_eq!(
        seat.call("end_session").await,
        true,
        "someone was signed in"
    );
    ended(&mut seat, "button").await;
    session_left_nothing(&prefix, &env, &idp, &seat, &mark).await;

    // 2. The center's seat software, through the broker.
    let mark = Mark::take(&env, &idp).await;
    seat.sign_in("center").await;
    tokens.push(partner_token(&prefix, &seat).await.unwrap());
    let run = prefix
        .run(&partner(&prefix), &[&seat.pipe, "--end-session"])
        .await;
    assert!(run.stdout.contains(r#""ok""#), "{run:?}");
    ended(&mut seat, "broker").await;
    session_left_nothing(&prefix, &env, &idp, &seat, &mark).await;

    // 3. Quitting the app.
    let mark = Mark::take(&env, &idp).await;
    seat.sign_in("center").await;
    tokens.push(partner_token(&prefix, &seat).await.unwrap());
    let pipe = seat.pipe.clone();
    seat.quit().await;
    signed_out_in_the_browser(&env, mark.runs + 1).await;
    mark.signed_out_at_the_provider(&idp).await;

    // 4. The maximum length, from policy: the registry's value beats the file's "never".
    let policy = r"HKLM\SOFTWARE\Policies\Lanyard";
    tokio::task::block_in_place(|| {
        prefix.reg_add(policy, "max_session", "REG_SZ", "4s");
    });
    let mut seat = start_seat(&prefix, &env).await;
    assert_eq!(seat.pipe, pipe, "the same pipe, the user's");
    let mark = Mark::take(&env, &idp).await;
    seat.sign_in("center").await;
    tokens.push(partner_token(&prefix, &seat).await.unwrap());
    ended(&mut seat, "max_session").await;
    session_left_nothing(&prefix, &env, &idp, &seat, &mark).await;
    seat.quit().await;

    // 5. Idling out: nobody touches the seat (Windows' GetLastInputInfo says so), the
    //    warning shows, then the session ends. (Long enough for the sign-in and the
    //    partner's token on a busy machine: at 6 s the session once ended before the
    //    partner asked.)
    tokio::task::block_in_place(|| {
        prefix.reg_delete(policy, "max_session");
        prefix.reg_add(policy, "idle_timeout", "REG_SZ", "20s");
        prefix.reg_add(policy, "idle_warning", "REG_SZ", "5s");
    });
    let mut seat = start_seat(&prefix, &env).await;
    let mark = Mark::take(&env, &idp).await;
    seat.sign_in("center").await;
    tokens.push(partner_token(&prefix, &seat).await.unwrap());
    let warned = seat
        .event("seat", |e| !e["seat"]["idle_ends_at"].is_null())
        .await;
    assert_eq!(warned["seat"]["active"], true, "{warned}");
    ended(&mut seat, "idle").await;
    session_left_nothing(&prefix, &env, &idp, &seat, &mark).await;
    seat.quit().await;

    // The residue scan: every process of the prefix gone and its registry written out,
    // then no file in it (hives included) holds a token, no seat profile or Lanyard data
    // directory is left, and Credential Manager's store names no Lanyard item.
    tokio::task::block_in_place(|| prefix.wait_for(&["cmd", "/c", "exit"]));
    let files = tokio::task::block_in_place(|| every_file(prefix.dir.path()));
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()),
                "{} holds a player's token",
                file.display()
            );
        }
        assert!(
            !text.contains("alice@example.test"),
            "{} names the player",
            file.display()
        );
        let name = file.to_string_lossy().to_lowercase();
        assert!(
            !name.contains("lanyard-seat-"),
            "a seat profile is left: {}",
            file.display()
        );
        assert!(
            !name.contains("appdata/roaming/lanyard") && !name.contains("appdata/local/lanyard"),
            "the seat wrote Lanyard data: {}",
            file.display()
        );
    }
    let user = std::fs::read_to_string(prefix.dir.path().join("user.reg")).unwrap();
    let credentials: Vec<&str> = user
        .lines()
        .filter(|l| l.to_lowercase().contains("lanyard"))
        .collect();
    assert!(
        credentials.is_empty(),
        "the user's hive names Lanyard: {credentials:#?}"
    );
}

/// Every file under `dir`, not following links (a prefix links to the host's root).
fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => out.extend(every_file(&entry.path())),
            Ok(t) if t.is_file() => out.push(entry.path()),
            _ => {}
        }
    }
    out
}
