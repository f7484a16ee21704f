//! Lanyard: sign in with OpenID Connect providers in the system browser and keep the
//! sign-in safe — refresh tokens in the OS keychain, every ID token validated.
//!
//! This library is the whole product: the `lanyard` command line, its broker and the
//! desktop app only parse input, call it, and render results. It is also for your own
//! app that needs "Sign in with X" done right.
//!
//! # Getting started: sign in from your app
//!
//! [`client::Client`] is one sign-in with one provider. It opens the system browser
//! (RFC 8252), checks PKCE, `state`, `iss` and every ID token, refreshes with rotation,
//! and keeps the tokens in the OS keychain or in memory:
//!
//! ```no_run
//! # async fn example() -> Result<(), lanyard::Error> {
//! use std::time::Duration;
//! use lanyard::client::{Client, Provider, Storage};
//!
//! // Your app's registration with the provider: a native client, no secret.
//! let provider = Provider::new("https://id.example.com", "my-app")
//!     .scopes("openid profile email offline_access");
//! // Kept in the keychain under your app's name, so the next run is still signed in.
//! let storage = Storage::keychain("com.example.notes", "/home/me/.local/share/notes");
//! let client = Client::new(provider, storage)?;
//!
//! let me = match client.identity() {
//!     Some(me) if me.sign_in_needed.is_none() => me,
//!     _ => client.sign_in().await?,
//! };
//! println!("Hello, {}", me.name.as_deref().unwrap_or(&me.subject));
//!
//! // A token valid for at least a minute, refreshed first if need be.
//! let token = client.access_token(Duration::from_secs(60)).await?;
//! # let _ = token;
//! client.sign_out().await?;
//! # Ok(()) }
//! ```
//!
//! Each task has an example: `examples/sign_in.rs` (the loopback or your own URI scheme,
//! memory or keychain), `examples/device.rs` (the device flow, for a device without a
//! browser) and `examples/greet.rs`. docs/embedding.md tells how to register your app
//! with the provider and what is stored where; `tauri-plugin-lanyard` puts the same
//! client behind commands for a Tauri app's web code.
//!
//! # Many accounts
//!
//! Under [`client::Client`] is [`session::Lanyard`]: sign-ins for the many accounts of an
//! accounts file ([`config`]), with login, token, logout, whoami and status, keeping
//! tokens in the keychain ([`store`]). The command line, the broker and the desktop app
//! are built on it, as `Client` is:
//!
//! ```no_run
//! # async fn example() -> Result<(), lanyard::Error> {
//! use std::time::Duration;
//! use lanyard::config::Config;
//! use lanyard::session::{Lanyard, LoginOptions};
//! use lanyard::store::Records;
//!
//! let config = Config::load(&Config::default_path()?)?;
//! let lanyard = Lanyard::new(config, Records::new(Records::default_dir()))?;
//! let options = LoginOptions { timeout: Duration::from_secs(120), ..LoginOptions::default() };
//! let record = lanyard.login("work", &options, &|_progress| {}).await?;
//! println!("signed in as {}", record.subject);
//! let token = lanyard.token("work", 60).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! # What is public
//!
//! [`client`] is the small API an app wants, with [`Error`], [`Kind`] and
//! [`secret::Secret`]; [`session`], [`config`], [`store`] and [`preset`] are the layer
//! the command line, the broker and the desktop app use. Both are documented here. The
//! rooms under them (discovery, the protocol flows, JWS and ID-token validation, the
//! broker, the desktop app's model, the platform seam) are public only for Lanyard's own
//! programs and tests, and hidden from these docs; ARCHITECTURE.md maps them.

#![deny(missing_docs)]

pub mod client;
pub mod config;
mod error;
pub mod preset;
pub mod secret;
pub mod session;
pub mod store;

// Lanyard's own programs (the CLI, the desktop app, the Windows test programs) and its
// tests use these; they are not an API for others.
#[cfg(feature = "broker")]
#[doc(hidden)]
pub mod broker;
#[doc(hidden)]
pub mod browser;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "desktop")]
#[doc(hidden)]
pub mod desktop;
#[doc(hidden)]
pub mod discovery;
#[doc(hidden)]
pub mod dpop;
#[doc(hidden)]
pub mod flow;
#[doc(hidden)]
pub mod http;
#[doc(hidden)]
pub mod jose;
#[cfg(feature = "desktop")]
#[doc(hidden)]
pub mod kiosk;
#[doc(hidden)]
pub mod platform;
#[doc(hidden)]
pub mod settings;
#[doc(hidden)]
pub mod validate;

pub use error::{Error, Kind};

/// docs/embedding.md, whose examples are compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
pub struct EmbeddingGuide;

/// README.md, whose Rust example is compiled as a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;

#[cfg(test)]
mod docs_tests {
    /// The Rust in README.md and docs/embedding.md is shown as it compiles (their
    /// doctests): no line hidden with `#`, so what a reader copies is what was tested.
    #[test]
    fn the_rust_in_the_docs_is_shown_whole() {
        let docs = [
            ("README.md", include_str!("../README.md")),
            ("docs/embedding.md", include_str!("../docs/embedding.md")),
        ];
        for (name, text) in docs {
            let (mut in_block, mut rust) = (false, false);
            for (n, line) in text.lines().enumerate() {
                if let Some(info) = line.strip_prefix("```") {
                    rust = !in_block && info.starts_with("rust") && !info.contains("ignore");
                    in_block = !in_block;
                    continue;
                }
                assert!(
                    !(rust && (line == "#" || line.starts_with("# "))),
                    "{name}:{}: a line hidden from the reader: {line}",
                    n + 1
                );
            }
        }
    }
}
