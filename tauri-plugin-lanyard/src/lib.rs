//! "Sign in with X" for a Tauri 2 app, with Lanyard doing the OpenID Connect work: the
//! system browser, PKCE, every ID token validated, refresh with rotation, the keychain.
//!
//! ```ignore
//! // In the app's main.rs (`generate_context!` reads the app's tauri.conf.json):
//! use lanyard::client::Provider;
//!
//! tauri::Builder::default()
//!     .plugin(tauri_plugin_lanyard::init(
//!         Provider::new("https://id.example.com", "my-app").scopes("openid profile email"),
//!     ))
//!     .run(tauri::generate_context!())
//!     .expect("the app runs");
//! ```
//!
//! The web code then calls `signIn()`, `identity()`, `accessToken({ minValid })`,
//! `signOut()` and `onChange(callback)` (guest-js). The `lanyard:default` permission
//! allows all but `accessToken`: tokens enter the webview only where the app grants
//! `lanyard:allow-access-token`.
//!
//! ## A private-use scheme instead of the loopback
//!
//! With [`Provider::redirect_scheme`] (`com.example.app:/callback`), the provider sends
//! the browser back to the app's own scheme, and the OS hands that URL to the app: on
//! Windows and Linux by starting a second process with it, on macOS as an event. The
//! plugin takes those links from Tauri's deep-link plugin; the single-instance plugin
//! brings the second process's URL to the running one. So the app registers, in this
//! order:
//!
//! ```ignore
//! tauri::Builder::default()
//!     // First: a second process (the OS handing over a link) reaches this one instead.
//!     .plugin(tauri_plugin_single_instance::init(|_app, _argv, _cwd| {})) // feature "deep-link"
//!     .plugin(tauri_plugin_deep_link::init())
//!     .plugin(tauri_plugin_lanyard::init(
//!         Provider::new("https://id.example.com", "my-app")
//!             .redirect_scheme("com.example.app:/callback"),
//!     ))
//! ```
//!
//! and lists the scheme in its tauri.conf.json, under
//! `plugins.deep-link.desktop.schemes` (the installers register it from there; on
//! Linux, and on Windows in debug builds, the plugin registers it when the app starts).
//! A link no sign-in waits for is refused.

#![deny(missing_docs)]

use std::time::Duration;

use lanyard::client::{Client, Identity, Provider, Storage};
use serde::Serialize;
use tauri::plugin::{Builder, TauriPlugin};
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime, State};
use tauri_plugin_deep_link::{DeepLink, DeepLinkExt as _};

/// The event the web code's `onChange` listens to, after each sign-in and sign-out. It
/// carries nothing (every webview of the app may listen to events): `onChange` then asks
/// `identity()`, which only a webview granted `lanyard:allow-identity` gets.
pub const CHANGED: &str = "lanyard://changed";

/// The plugin, keeping its sign-in in the OS keychain under the app's identifier, with
/// its record in the app's data directory.
pub fn init<R: Runtime>(provider: Provider) -> TauriPlugin<R> {
    build(provider, None)
}

/// The plugin, keeping its sign-in in `storage`.
pub fn init_with<R: Runtime>(provider: Provider, storage: Storage) -> TauriPlugin<R> {
    build(provider, Some(storage))
}

fn build<R: Runtime>(provider: Provider, storage: Option<Storage>) -> TauriPlugin<R> {
    Builder::new("lanyard")
        .invoke_handler(tauri::generate_handler![
            sign_in,
            identity,
            access_token,
            sign_out
        ])
        .setup(move |app, _api| {
            let storage = match storage {
                Some(storage) => storage,
                None => Storage::keychain(&app.config().identifier, app.path().app_data_dir()?),
            };
            let client = Client::new(provider, storage)?;
            let links = match client.redirect_scheme() {
                Some(scheme) => take_links(app, scheme)?,
                None => Ok(()),
            };
            app.manage(Lanyard { client, links });
            Ok(())
        })
        .build()
}

/// Hands the app's deep links of `scheme` to the sign-in waiting for them. `Err` when
/// the app is not set up for them (a sign-in could never finish), `Ok(Err)` when the
/// scheme could not be registered with the desktop (sign-ins then say so).
fn take_links<R: Runtime>(
    app: &AppHandle<R>,
    scheme: &str,
) -> Result<Result<(), String>, Box<dyn std::error::Error>> {
    let setup = "register tauri_plugin_deep_link::init() before tauri_plugin_lanyard, \
                 after tauri_plugin_single_instance::init with its \"deep-link\" feature";
    if app.try_state::<DeepLink<R>>().is_none() {
        return Err(format!(
            "the sign-in comes back to the app's {scheme}: scheme, as a deep link: {setup}"
        )
        .into());
    }
    if !configured(&app.config().plugins.0, scheme) {
        return Err(format!(
            "the sign-in comes back to the app's {scheme}: scheme: list \"{scheme}\" in \
             tauri.conf.json under plugins.deep-link.desktop.schemes"
        )
        .into());
    }
    let handle = app.clone();
    let ours = scheme.to_ascii_lowercase();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            if url.scheme() != ours {
                continue;
            }
            if let Err(e) = handle.state::<Lanyard>().redirected(url.as_str()) {
                // Stale or forged: nothing waits for it, and nothing changes.
                log::info!("tauri-plugin-lanyard: {}", e.message);
            }
        }
    });
    // Installers register the scheme (NSIS, .deb, the macOS bundle); a run from the build
    // directory registers it itself.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if let Err(e) = app.deep_link().register(scheme) {
        log::warn!("tauri-plugin-lanyard: cannot register the {scheme}: scheme: {e}");
        return Ok(Err(format!(
            "the app could not register its {scheme}: links with the desktop ({e}), so \
             the sign-in could not come back: reinstall the app"
        )));
    }
    Ok(Ok(()))
}

/// Whether the deep-link plugin's configuration lists `scheme`.
fn configured(
    plugins: &std::collections::HashMap<String, serde_json::Value>,
    scheme: &str,
) -> bool {
    fn lists(value: &serde_json::Value, scheme: &str) -> bool {
        match value {
            serde_json::Value::String(s) => s.eq_ignore_ascii_case(scheme),
            serde_json::Value::Array(items) => items.iter().any(|v| lists(v, scheme)),
            serde_json::Value::Object(fields) => fields.values().any(|v| lists(v, scheme)),
            _ => false,
        }
    }
    plugins
        .get("deep-link")
        .and_then(|config| config.get("desktop"))
        .is_some_and(|desktop| lists(desktop, scheme))
}

/// The plugin's state: the app's one [`Client`]. From Rust, `app.state::<Lanyard>()`.
pub struct Lanyard {
    client: Client,
    /// Whether the redirect's deep links can reach the app (why not, if they cannot).
    links: Result<(), String>,
}

impl Lanyard {
    /// The client, for the app's own Rust code (its API calls want the token too).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Hands a link of the app's private-use scheme to the sign-in (or sign-out) waiting
    /// for it. The plugin does this itself for the links the deep-link plugin reports;
    /// call it for a link that reaches the app some other way.
    pub fn redirected(&self, url: &str) -> Result<(), Failure> {
        self.client.redirected(url).map_err(Failure::from)
    }
}

/// An error as the web code gets it: what happened, and what kind of failure
/// (`sign_in_needed`, `provider`, `rejected`, `incomplete`, `keychain`, `config`, …).
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// What happened, and what to do.
    pub message: String,
    /// The kind, for the app's code to act on.
    pub kind: &'static str,
}

impl From<lanyard::Error> for Failure {
    fn from(e: lanyard::Error) -> Failure {
        use lanyard::Kind;
        Failure {
            message: e.to_string(),
            kind: match e.kind() {
                Kind::Config => "config",
                Kind::SignInNeeded => "sign_in_needed",
                Kind::Provider => "provider",
                Kind::Rejected => "rejected",
                Kind::Keychain => "keychain",
                Kind::Incomplete => "incomplete",
                Kind::Denied => "denied",
                Kind::Other => "other",
            },
        }
    }
}

#[tauri::command]
async fn sign_in<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lanyard>,
) -> Result<Identity, Failure> {
    if let Err(message) = &state.links {
        return Err(Failure {
            message: message.clone(),
            kind: "config",
        });
    }
    let person = state.client.sign_in().await?;
    let _ = app.emit(CHANGED, ());
    Ok(person)
}

#[tauri::command]
fn identity(state: State<'_, Lanyard>) -> Option<Identity> {
    state.client.identity()
}

/// A token valid for at least `min_valid` seconds (default 60).
#[tauri::command]
async fn access_token(
    state: State<'_, Lanyard>,
    min_valid: Option<u64>,
) -> Result<String, Failure> {
    let min_valid = Duration::from_secs(min_valid.unwrap_or(60));
    Ok(state
        .client
        .access_token(min_valid)
        .await?
        .expose()
        .to_owned())
}

#[tauri::command]
async fn sign_out<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, Lanyard>,
) -> Result<Vec<String>, Failure> {
    let out = state.client.sign_out().await?;
    let _ = app.emit(CHANGED, ());
    Ok(out.warnings)
}

#[cfg(test)]
mod tests {
    use super::configured;

    /// The deep-link plugin's configuration takes one scheme list or several entries;
    /// the scheme is found in either, in any case, and only under `desktop`.
    #[test]
    fn the_scheme_is_found_where_the_deep_link_plugin_reads_it() {
        let config = |json: &str| -> std::collections::HashMap<String, serde_json::Value> {
            serde_json::from_str(json).unwrap()
        };
        let one = config(r#"{"deep-link": {"desktop": {"schemes": ["com.example.app"]}}}"#);
        assert!(configured(&one, "com.example.app"));
        assert!(configured(&one, "COM.example.app"));
        assert!(!configured(&one, "com.example"));
        let several = config(
            r#"{"deep-link": {"desktop": [{"schemes": ["other"]}, {"schemes": ["com.example.app"]}]}}"#,
        );
        assert!(configured(&several, "com.example.app"));
        let mobile_only = config(r#"{"deep-link": {"mobile": [{"scheme": ["com.example.app"]}]}}"#);
        assert!(!configured(&mobile_only, "com.example.app"));
        assert!(!configured(&config("{}"), "com.example.app"));
    }
}
