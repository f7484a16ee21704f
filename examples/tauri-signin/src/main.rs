//! A minimal Tauri 2 app with "Sign in with …", through tauri-plugin-lanyard.
//!
//! The provider comes from the environment, so that one build signs in anywhere:
//! `SIGNIN_ISSUER` and `SIGNIN_CLIENT_ID` (a native, public client registered with the
//! redirect `http://127.0.0.1/callback`), or `SIGNIN_PRESET` (`hepgg`, `hello`, …) with
//! `SIGNIN_CLIENT_ID`.

use lanyard::client::Provider;

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
    Ok(provider.scopes("openid profile email offline_access"))
}

fn main() {
    let provider = match provider() {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("tauri-signin: {e}");
            std::process::exit(2);
        }
    };
    tauri::Builder::default()
        .plugin(tauri_plugin_lanyard::init(provider))
        .run(tauri::generate_context!())
        .expect("the app runs");
}
