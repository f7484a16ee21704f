//! Lanyard: sign in with OpenID Connect providers in the system browser and keep the
//! sign-in safe — refresh tokens in the OS keychain, every ID token validated.
//!
//! This library is the whole product; the `lanyard` binary (and later the broker and the
//! desktop app) only parse input, call it, and render results.
//!
//! # Layout
//!
//! - [`config`]: the accounts file, parsed and validated once.
//! - [`discovery`]: provider metadata and its signing keys (cached, refetched on rotation).
//! - [`flow`]: the protocol exchanges — authorization request with PKCE, the loopback
//!   redirect listener, code exchange, refresh, userinfo, revocation, end-session.
//! - [`jose`] and [`validate`]: JWS signatures and the ID-token rules of OpenID Connect
//!   Core 3.1.3.7, as pure functions.
//! - [`store`]: the OS keychain (or memory) for secrets, private JSON records for the rest.
//! - [`session`]: [`session::Lanyard`], which composes the above into login, token,
//!   logout, whoami and status, and owns the policy of what is stored when.
//! - [`broker`]: the agent — a local socket through which other programs get tokens.
//! - [`desktop`]: the desktop app's model — views and actions the Tauri shell forwards.
//! - [`cli`]: the `lanyard` command line.
//!
//! # Getting started
//!
//! ```no_run
//! # async fn example() -> Result<(), lanyard::Error> {
//! use std::time::Duration;
//! use lanyard::config::Config;
//! use lanyard::session::{Lanyard, LoginOptions};
//! use lanyard::store::Records;
//!
//! // The accounts file names the provider (its issuer) and our client id.
//! let config = Config::load(&Config::default_path()?)?;
//! let lanyard = Lanyard::new(config, Records::new(Records::default_dir()))?;
//!
//! // Discovery, PKCE, state and nonce, the system browser, the loopback redirect, the
//! // code exchange, ID-token and userinfo validation; then the keychain.
//! let options = LoginOptions { open_browser: true, timeout: Duration::from_secs(300), prompt: None };
//! let record = lanyard.login("work", &options, &|_progress| {}).await?;
//! println!("signed in as {}", record.subject);
//!
//! // A token valid for at least a minute, refreshed (and rotated) if need be.
//! let token = lanyard.token("work", 60).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

pub mod broker;
pub mod browser;
pub mod cli;
pub mod client;
pub mod config;
pub mod desktop;
pub mod discovery;
mod error;
pub mod flow;
pub mod http;
pub mod jose;
pub mod kiosk;
pub mod platform;
pub mod preset;
pub mod secret;
pub mod session;
pub mod settings;
pub mod store;
pub mod validate;

pub use error::{Error, Kind};

/// docs/embedding.md, whose examples are compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
pub struct EmbeddingGuide;
