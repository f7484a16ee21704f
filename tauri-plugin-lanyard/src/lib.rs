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

#![deny(missing_docs)]

use std::time::Duration;

use lanyard::client::{Client, Identity, Provider, Storage};
use serde::Serialize;
use tauri::plugin::{Builder, TauriPlugin};
use tauri::{AppHandle, Emitter as _, Manager as _, Runtime, State};

/// The event the web code's `onChange` listens to: the identity, or `null` once signed
/// out.
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
            app.manage(Lanyard {
                client: Client::new(provider, storage)?,
            });
            Ok(())
        })
        .build()
}

/// The plugin's state: the app's one [`Client`]. From Rust, `app.state::<Lanyard>()`.
pub struct Lanyard {
    client: Client,
}

impl Lanyard {
    /// The client, for the app's own Rust code (its API calls want the token too).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Hands a deep link (the app's private-use scheme) to the sign-in waiting for it.
    /// Call it from the deep-link plugin's `on_open_url`, and from the single-instance
    /// plugin's callback, which gets the URL when the OS starts a second process.
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
    let person = state.client.sign_in().await?;
    let _ = app.emit(CHANGED, Some(&person));
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
    let _ = app.emit(CHANGED, None::<Identity>);
    Ok(out.warnings)
}
