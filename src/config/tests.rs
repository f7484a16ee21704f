//! The accounts file's tests: parsing, errors that name the place, kiosk tables, edits.

use super::edit::without_section;
use super::parse::check_issuer;
use super::*;

/// Each preset's issuer is one the accounts file accepts.
#[test]
fn every_preset_issuer_passes_the_issuer_check() {
    for p in crate::preset::PRESETS {
        assert!(check_issuer(p.issuer).is_ok(), "{}", p.id);
    }
}

fn parse(text: &str) -> Result<Config, Error> {
    Config::parse(Path::new("/etc/lanyard.toml"), text)
}

fn check_err(text: &str, expected: &str) {
    let err = parse(text)
        .expect_err("config should be rejected")
        .to_string();
    assert_eq!(err, expected);
}

#[test]
fn minimal_account_gets_defaults() {
    let c =
        parse("[accounts.work]\nissuer = \"https://id.example.com/tenant\"\nclient_id = \"x\"\n")
            .unwrap();
    let a = c.account("work").unwrap();
    assert_eq!(a.scopes, ["openid", "profile", "email", "offline_access"]);
    assert_eq!(a.redirect, Redirect::Loopback { port: 0 });
    assert_eq!(a.store, StoreKind::Keychain);
    assert_eq!(a.issuer, "https://id.example.com/tenant");
}

#[test]
fn private_use_scheme_redirects() {
    let redirect = |r: &str| {
        parse(&format!(
            "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nredirect = \"{r}\"\n"
        ))
        .map(|c| c.account("a").unwrap().redirect.clone())
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        redirect("dev.lanyard:/callback"),
        Ok(Redirect::Scheme {
            uri: "dev.lanyard:/callback".into()
        })
    );
    for bad in [
        "dev.lanyard://host/callback",
        "dev.lanyard:/callback?x=1",
        "myapp:/callback",
        "https://example.com/cb",
    ] {
        assert!(redirect(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn removing_an_account_keeps_the_others_and_their_comments() {
    let text = "# mine\n[accounts.a]\nissuer = \"https://a.test\"\nclient_id = \"x\"\n\n\
                [accounts.b]\nissuer = \"https://b.test\"\nclient_id = \"y\"\n\
                [accounts.b.extra_params]\nfoo = \"1\"\n\
                [accounts.bb]  # keep\nissuer = \"https://bb.test\"\nclient_id = \"z\"\n";
    let left = without_section(text, "b");
    assert_eq!(
        left,
        "# mine\n[accounts.a]\nissuer = \"https://a.test\"\nclient_id = \"x\"\n\n\
         [accounts.bb]  # keep\nissuer = \"https://bb.test\"\nclient_id = \"z\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::remove_account(&path, "b").unwrap();
    assert_eq!(config.accounts.keys().collect::<Vec<_>>(), ["a", "bb"]);
    assert!(matches!(
        Config::remove_account(&path, "b"),
        Err(Error::UnknownAccount { .. })
    ));
}

#[test]
fn kiosk_table_with_durations_and_defaults() {
    // An absolute path on this platform.
    let game = if cfg!(windows) {
        r"C:\\Games\\game.exe"
    } else {
        "/opt/game"
    };
    let config = parse(&format!(
        "[kiosk]\nidle_timeout = \"90s\"\nidle_warning = 30\nmax_session = \"4h\"\nallowed_apps = [\"{game}\"]\nbrowser = \"/usr/bin/firefox-esr\"\n",
    ))
    .unwrap();
    let kiosk = config.kiosk.unwrap();
    assert_eq!(kiosk.idle_timeout, Some(std::time::Duration::from_secs(90)));
    assert_eq!(kiosk.idle_warning, std::time::Duration::from_secs(30));
    assert_eq!(
        kiosk.max_session,
        Some(std::time::Duration::from_secs(4 * 3600))
    );
    assert_eq!(kiosk.allowed_apps, [game.replace(r"\\", r"\")]);
    assert!(matches!(kiosk.browser, SeatBrowser::Firefox { .. }));
    assert!(kiosk.device_flow);
    let never = parse("[kiosk]\nidle_timeout = 0\nmax_session = \"0\"\n").unwrap();
    let never = never.kiosk.unwrap();
    assert_eq!((never.idle_timeout, never.max_session), (None, None));
    for (text, expected) in [
        (
            "[kiosk]\nidle_timeout = \"ten minutes\"\n",
            ":2:1: kiosk.idle_timeout: `ten minutes` is not a duration",
        ),
        (
            "[kiosk]\nidle_timeout = 60\nidle_warning = 60\n",
            ":3:1: kiosk.idle_warning: must be shorter than idle_timeout",
        ),
        (
            "[kiosk]\nallowed_apps = [\"game\"]\n",
            ":2:1: kiosk.allowed_apps: `game` is not an absolute path",
        ),
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn a_players_accounts_file_cannot_hold_kiosk_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[kiosk]\nidle_timeout = 0\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(
        err.contains(":1:2: kiosk: kiosk settings are read only from the managed kiosk file"),
        "{err}"
    );
}

#[test]
fn full_account() {
    let c = parse(
        r#"
[accounts.seat]
issuer = "http://127.0.0.1:8080"
client_id = "kiosk"
scopes = ["openid", "group"]
redirect = "loopback:53682"
extra_params = { center_uuid = "c-1" }
prompt = "login"
max_age = 0
store = "memory"
client_auth = "client_secret_post"
"#,
    )
    .unwrap();
    let a = c.account("seat").unwrap();
    assert_eq!(a.scopes, ["openid", "group"]);
    assert_eq!(a.redirect, Redirect::Loopback { port: 53682 });
    assert_eq!(a.extra_params["center_uuid"], "c-1");
    assert_eq!(a.max_age, Some(0));
    assert_eq!(a.store, StoreKind::Memory);
    assert_eq!(a.client_auth, Some(ClientAuth::ClientSecretPost));
}

#[test]
fn errors_name_file_line_and_key() {
    check_err(
        "[accounts.a]\nissuer = \"http://id.example.com\"\nclient_id = \"x\"\n",
        "/etc/lanyard.toml:2:10: accounts.a.issuer: http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https",
    );
    check_err(
        "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nredirect = \"loopback:99999\"\n",
        "/etc/lanyard.toml:4:12: accounts.a.redirect: `99999` is not a port number (1-65535); expected `loopback` or `loopback:PORT`",
    );
    check_err(
        "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nscopes = \"profile\"\n",
        "/etc/lanyard.toml:4:10: accounts.a.scopes: must include `openid`",
    );
    check_err(
        "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nextra_params = { state = \"s\" }\n",
        "/etc/lanyard.toml:4:18: accounts.a.extra_params.state: Lanyard sets this parameter itself; use the account's own key where there is one",
    );
}

#[test]
fn parser_errors_name_the_key_too() {
    let err =
        parse("[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nmax_age = \"soon\"\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.starts_with("/etc/lanyard.toml:4:11: accounts.a.max_age: "),
        "{err}"
    );
    let err =
        parse("[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nscope = \"openid\"\n")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains(":4:1: accounts.a.scope: unknown field `scope`"),
        "{err}"
    );
    let err = parse("[accounts.a]\nissuer = \"https://i\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `client_id`"), "{err}");
    let err = parse("[accounts.a\nissuer = 1").unwrap_err().to_string();
    assert!(err.starts_with("/etc/lanyard.toml:1:"), "{err}");
}

#[test]
fn added_accounts_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/config.toml");
    let new = NewAccount {
        name: "seat".into(),
        preset: Some("ggleap".into()),
        issuer: "https://api.ggleap.com/production/oidc".into(),
        client_id: "c \"quoted\"".into(),
        scopes: Some("openid group".into()),
        port: Some(47615),
        client_auth: Some(ClientAuth::ClientSecretBasic),
        response_type: Some(ResponseType::IdToken),
        response_mode: Some(ResponseMode::Fragment),
        extra_params: [("center_uuid".to_owned(), "c-1".to_owned())].into(),
        scheme: None,
        dpop: None,
    };
    let config = Config::add_account(&path, &new).unwrap();
    let a = config.account("seat").unwrap();
    assert_eq!(a.client_id, "c \"quoted\"");
    assert_eq!(a.redirect, Redirect::Loopback { port: 47615 });
    assert_eq!(a.response_mode, ResponseMode::Fragment);
    assert_eq!(a.extra_params["center_uuid"], "c-1");
    assert_eq!(a.preset.as_deref(), Some("ggleap"));
    assert!(
        Config::add_account(&path, &new)
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
    let bad = NewAccount {
        name: "bad".into(),
        issuer: "http://x.example".into(),
        client_id: "c".into(),
        ..NewAccount::default()
    };
    assert!(Config::add_account(&path, &bad).is_err());
    assert!(
        Config::load(&path).unwrap().accounts.len() == 1,
        "a rejected account is not written"
    );
}

#[test]
fn missing_file_is_empty_and_unknown_account_says_what_to_add() {
    let c = Config::load(Path::new("/nonexistent/lanyard/config.toml")).unwrap();
    assert!(c.accounts.is_empty());
    assert_eq!(
        c.account("work").unwrap_err().to_string(),
        "no account named `work` in /nonexistent/lanyard/config.toml; add a section [accounts.work] with `issuer` and `client_id`"
    );
}

/// The registry's policy (Windows) over the kiosk file: each of its values wins, each of
/// its accounts replaces the file's whole, and either source alone turns kiosk mode on.
#[test]
fn the_registry_policy_wins_over_the_kiosk_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiosk.toml");
    let policy = |text: &str| -> toml::Table { toml::from_str(text).unwrap() };
    assert!(Kiosk::load_with(&path, None).unwrap().is_none());

    let only_policy = Kiosk::load_with(
        &path,
        Some(policy(
            "[kiosk]\nidle_timeout = \"5m\"\n[accounts.seat]\nissuer = \"https://id.example.com\"\nclient_id = \"seat\"\n",
        )),
    )
    .unwrap()
    .unwrap();
    let kiosk = only_policy.kiosk.as_ref().unwrap();
    assert_eq!(
        kiosk.idle_timeout,
        Some(std::time::Duration::from_secs(300))
    );
    assert_eq!(only_policy.accounts["seat"].store, StoreKind::Memory);

    let app = if cfg!(windows) {
        r"C:\Partner\a.exe"
    } else {
        "/opt/partner/a"
    };
    std::fs::write(
        &path,
        format!("[kiosk]\nidle_timeout = \"10m\"\nmax_session = \"4h\"\nallowed_apps = ['{app}']\n\
         [accounts.seat]\nissuer = \"https://old.example.com\"\nclient_id = \"old\"\nscopes = \"openid email\"\n\
         [accounts.other]\nissuer = \"https://other.example.com\"\nclient_id = \"other\"\n"),
    )
    .unwrap();
    let merged = Kiosk::load_with(
        &path,
        Some(policy(
            "[kiosk]\nidle_timeout = 120\ndevice_flow = false\n[accounts.seat]\nissuer = \"https://id.example.com\"\nclient_id = \"seat\"\n",
        )),
    )
    .unwrap()
    .unwrap();
    let kiosk = merged.kiosk.as_ref().unwrap();
    assert_eq!(
        kiosk.idle_timeout,
        Some(std::time::Duration::from_secs(120))
    );
    assert_eq!(
        kiosk.max_session,
        Some(std::time::Duration::from_secs(4 * 3600))
    );
    assert_eq!(kiosk.allowed_apps, [app]);
    assert!(!kiosk.device_flow);
    let seat = &merged.accounts["seat"];
    assert_eq!(
        (seat.issuer.as_str(), seat.client_id.as_str()),
        ("https://id.example.com", "seat")
    );
    assert_eq!(
        seat.scopes.join(" "),
        DEFAULT_SCOPES,
        "replaced whole, not merged"
    );
    assert_eq!(merged.accounts["other"].client_id, "other");
    assert_eq!(merged.path, path);

    // A bad policy value is named by its place in the registry, not by a line.
    let err = Kiosk::load_with(
        &path,
        Some(policy(
            "[kiosk]\nidle_timeout = \"soon\"\n[accounts.seat]\nissuer = \"http://id.example.com\"\nclient_id = \"s\"\n",
        )),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(r"\Accounts\seat\issuer: ") || err.contains(r"\idle_timeout: "),
        "{err}"
    );
    assert!(err.contains("Group Policy"), "{err}");
    // A bad file is still named by its line.
    std::fs::write(&path, "[kiosk]\nidle_timeout = \"soon\"\n").unwrap();
    let err = Kiosk::load_with(&path, Some(toml::Table::new()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("kiosk.toml:2:"), "{err}");
}

#[cfg(unix)]
#[test]
fn seat_browsers_by_name() {
    let browser = |name: &str| {
        parse(&format!("[kiosk]\nbrowser = \"{name}\"\n"))
            .unwrap()
            .kiosk
            .unwrap()
            .browser
    };
    let chromium = |c: &[&str]| SeatBrowser::Chromium {
        commands: c.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        browser("edge"),
        chromium(&["microsoft-edge", "microsoft-edge-stable"])
    );
    assert_eq!(
        browser("chromium"),
        chromium(&["chromium", "chromium-browser"])
    );
    assert_eq!(
        browser("firefox"),
        SeatBrowser::Firefox {
            commands: vec!["firefox".into(), "firefox-esr".into()]
        }
    );
    assert_eq!(browser("system"), SeatBrowser::System);
    assert_eq!(browser("/opt/brave/brave"), chromium(&["/opt/brave/brave"]));
}
