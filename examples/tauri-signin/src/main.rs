//! A minimal Tauri 2 app with "Sign in with …", through tauri-plugin-lanyard.
//!
//! The provider comes from the environment, so that one build signs in anywhere:
//! `SIGNIN_ISSUER` and `SIGNIN_CLIENT_ID` (a native, public client registered with the
//! redirect `http://127.0.0.1/callback`), or `SIGNIN_PRESET` (`hepgg`, `hello`, …) with
//! `SIGNIN_CLIENT_ID`.
//!
//! `SIGNIN_REDIRECT=dev.lanyard.example.signin:/callback` signs in through the app's own
//! URI scheme instead of the loopback (the client must be registered with that redirect).
//! `SIGNIN_WEB_TOKENS=1` lets the web code get access tokens (web-tokens.json); without
//! it, `accessToken()` is refused, as in any app that does not grant it.

use lanyard::client::Provider;
use tauri::Manager as _;

fn provider() -> Result<Provider, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let client_id =
        var("SIGNIN_CLIENT_ID").ok_or("set SIGNIN_CLIENT_ID to your app's client id")?;
    let provider = match (var("SIGNIN_PRESET"), var("SIGNIN_ISSUER")) {
        (Some(preset), issuer) => {
            let provider = Provider::preset(&preset, &client_id).map_err(|e| e.to_string())?;
            match issuer {
                Some(issuer) => provider.issuer(&issuer),
                None => provider,
            }
        }
        (None, Some(issuer)) => Provider::new(&issuer, &client_id),
        (None, None) => return Err("set SIGNIN_ISSUER (or SIGNIN_PRESET)".into()),
    };
    let provider = provider.scopes("openid profile email offline_access");
    Ok(match var("SIGNIN_REDIRECT") {
        Some(uri) => provider.redirect_scheme(&uri),
        None => provider,
    })
}

fn main() {
    let provider = match provider() {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("tauri-signin: {e}");
            std::process::exit(2);
        }
    };
    let web_tokens = std::env::var("SIGNIN_WEB_TOKENS").is_ok_and(|v| v == "1");
    tauri::Builder::default()
        // In this order: a second process (the OS handing over a sign-in's link) reaches
        // this one, whose deep-link plugin hands the link to Lanyard's.
        .plugin(tauri_plugin_single_instance::init(|_app, _argv, _cwd| {}))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_lanyard::init(provider))
        .setup(move |app| {
            if web_tokens {
                app.add_capability(include_str!("../web-tokens.json"))?;
            }
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("the app runs");
}
