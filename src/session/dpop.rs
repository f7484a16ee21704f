//! The account's DPoP key (RFC 9449): whether its tokens are bound to one, making it at
//! sign-in, reading it back from the keychain item it shares with the tokens, and proofs
//! of it for a tool's requests.

use super::{Lanyard, load_tokens};
use crate::config::{Account, ClientAuth, StoreKind};
use crate::discovery::Provider;
use crate::dpop;
use crate::error::Error;
use crate::flow;
use crate::secret::Secret;

/// Whether an account's tokens are bound to a DPoP key (RFC 9449): as the account says,
/// else for a public client where the provider offers DPoP with ES256 (a confidential
/// client's secret already keeps its refresh token from being used by anyone else).
fn uses_dpop(account: &Account, provider: &Provider, client_secret: Option<&Secret>) -> bool {
    account.dpop.unwrap_or_else(|| {
        let public =
            client_secret.is_none() && matches!(account.client_auth, None | Some(ClientAuth::None));
        let offered = provider
            .metadata
            .dpop_signing_alg_values_supported
            .as_deref();
        public && offered.unwrap_or_default().iter().any(|a| a == dpop::ALG)
    })
}

/// A new DPoP key for a sign-in, where the account's tokens are to be bound.
pub(super) fn new_dpop_key(
    account: &Account,
    provider: &Provider,
    client_secret: Option<&Secret>,
) -> Result<Option<(dpop::Key, Secret)>, Error> {
    if !uses_dpop(account, provider, client_secret) {
        return Ok(None);
    }
    Ok(Some(dpop::Key::generate().map_err(flow::Error::from)?))
}

/// The DPoP key kept with an account's tokens.
pub(super) fn dpop_key(kept: &Secret) -> Result<dpop::Key, Error> {
    dpop::Key::from_pkcs8(kept).map_err(|e| Error::from(flow::Error::from(e)))
}

impl Lanyard {
    /// The account's DPoP key, when its tokens are bound to one.
    pub(super) async fn dpop_key(
        &self,
        account: &Account,
        kind: StoreKind,
    ) -> Result<Option<dpop::Key>, Error> {
        let secrets = self.secrets(kind).await?;
        let tokens = load_tokens(secrets, &account.name).await?;
        tokens
            .and_then(|t| t.dpop_key)
            .as_ref()
            .map(dpop_key)
            .transpose()
    }

    /// A DPoP proof (RFC 9449 section 7) of account `name`'s key for a request: `method`
    /// at `url`, carrying `access_token`, with the resource server's `nonce` if it gave
    /// one. `None` when the account's tokens are not bound to a key.
    pub async fn dpop_proof(
        &self,
        name: &str,
        method: &str,
        url: &url::Url,
        access_token: &Secret,
        nonce: Option<&str>,
    ) -> Result<Option<String>, Error> {
        let account = self.config.account(name)?;
        let Some(key) = self.dpop_key(account, self.store_kind(account)).await? else {
            return Ok(None);
        };
        if let Some(nonce) = nonce {
            key.remember_nonce(url, nonce);
        }
        let proof = key
            .proof(method, url, Some(access_token))
            .map_err(flow::Error::from)?;
        Ok(Some(proof))
    }
}
