//! Where sign-ins are kept.
//!
//! Secrets (refresh, access and ID tokens; client secrets) go to a [`Secrets`] store: the
//! OS keychain ([`Keychain`]) or, for kiosks and CI, process memory ([`Memory`]). Never a
//! file: there is no plaintext fallback, and a keychain that cannot be used is an error
//! that says what to install or unlock. Non-secret state about a sign-in (who, until when,
//! which claims) is a [`Record`], kept by [`Records`] in the data directory, or in memory
//! for memory accounts, so that a kiosk leaves nothing behind. An [`AccountLock`] lets one
//! process at a time refresh an account.

mod chunked;
mod keychain;
mod lock;
mod memory;
mod records;

pub use keychain::Keychain;
pub use lock::AccountLock;
pub use memory::Memory;
pub use records::{Record, Records, Status, write_private};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The keychain service under which an account's tokens are kept (one item per account).
pub const TOKENS: &str = "lanyard";
/// The keychain service under which an account's client secret is kept.
pub const CLIENT_SECRET: &str = "lanyard client secret";

#[derive(Debug, Clone, thiserror::Error)]
/// A failure of the keychain or of the record files.
pub enum Error {
    #[error("the OS keychain is not available: {message}\n{hint}")]
    /// There is no keychain, or it is locked.
    Unavailable {
        /// What the keychain said.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    #[error("the OS keychain failed: {0}")]
    /// The keychain refused or failed an operation.
    Failed(String),
    #[error("cannot write sign-in state to {path}: {message}")]
    /// A record file could not be written.
    State {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// A store of secrets keyed by service and account name. Calls may block (D-Bus, XPC):
/// async callers run them on a blocking thread.
pub trait Secrets: Send + Sync {
    /// The secret kept under `service` and `account`, if any.
    fn get(&self, service: &str, account: &str) -> Result<Option<Secret>, Error>;
    /// Keeps `value` under `service` and `account`, replacing what was there.
    fn set(&self, service: &str, account: &str, value: &Secret) -> Result<(), Error>;
    /// Returns whether there was anything to delete.
    fn delete(&self, service: &str, account: &str) -> Result<bool, Error>;
}

/// A keychain under an embedding app's own service names: its tokens under `SERVICE`
/// and its client secrets under `SERVICE client secret`, where Lanyard's own are under
/// [`TOKENS`] and [`CLIENT_SECRET`].
pub struct Renamed {
    inner: std::sync::Arc<dyn Secrets>,
    tokens: String,
    client_secret: String,
}

impl Renamed {
    /// The keychain `inner`, with Lanyard's services renamed to `service`'s.
    pub fn new(inner: std::sync::Arc<dyn Secrets>, service: &str) -> Renamed {
        Renamed {
            inner,
            tokens: service.to_owned(),
            client_secret: format!("{service} client secret"),
        }
    }

    fn service<'a>(&'a self, service: &'a str) -> &'a str {
        match service {
            TOKENS => &self.tokens,
            CLIENT_SECRET => &self.client_secret,
            other => other,
        }
    }
}

impl Secrets for Renamed {
    fn get(&self, service: &str, account: &str) -> Result<Option<Secret>, Error> {
        self.inner.get(self.service(service), account)
    }

    fn set(&self, service: &str, account: &str, value: &Secret) -> Result<(), Error> {
        self.inner.set(self.service(service), account, value)
    }

    fn delete(&self, service: &str, account: &str) -> Result<bool, Error> {
        self.inner.delete(self.service(service), account)
    }
}

/// One account's tokens, kept together in one keychain item so that a rotated refresh
/// token and the access token that came with it are replaced in one write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// `None` for ID-token-only sign-ins (`response_type = "id_token"`).
    pub access_token: Option<Secret>,
    /// Unix seconds; `None` when the provider did not say.
    pub expires_at: Option<u64>,
    /// The refresh token, if the provider issued one.
    pub refresh_token: Option<Secret>,
    /// Kept for `id_token_hint` at sign-out.
    pub id_token: Option<Secret>,
    /// The provider and client the tokens were issued by and to: they are never sent to
    /// another (an account re-pointed at a new issuer signs in again). Items written by
    /// earlier versions lack them; the record says the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The client the tokens were issued to (see `issuer`).
    pub client_id: Option<String>,
    /// The DPoP key (RFC 9449; PKCS#8) the tokens are bound to, kept with them: a
    /// bound refresh token is useless without it, and the key is never in a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<Secret>,
}

impl Tokens {
    /// Whether these tokens were issued by `issuer` to `client_id`. `record_*` stand in
    /// for what an item from before Lanyard stored them lacks.
    pub fn issued_to(
        &self,
        issuer: &str,
        client_id: &str,
        (record_issuer, record_client): (&str, &str),
    ) -> bool {
        self.issuer.as_deref().unwrap_or(record_issuer) == issuer
            && self.client_id.as_deref().unwrap_or(record_client) == client_id
    }

    /// The tokens as one keychain value (JSON).
    pub fn to_secret(&self) -> Secret {
        Secret::new(serde_json::to_string(self).expect("Tokens serialise to JSON"))
    }

    /// The tokens from a keychain value [`Tokens::to_secret`] made.
    pub fn from_secret(secret: &Secret) -> Result<Tokens, Error> {
        serde_json::from_str(secret.expose())
            .map_err(|_| Error::Failed("the stored tokens are not in Lanyard's format".into()))
    }
}
