//! Adding, checking and removing accounts from the window, reloading the accounts file
//! when a terminal changed it, and the signed-in person's picture.

use std::path::Path;

use super::{
    AccountView, AddAccount, Desktop, Failure, ProviderCheck, UiEvent, data_url, provider_name,
};
use crate::config::{Config, NewAccount};
use crate::session::Lanyard;
use crate::store::Records;
use crate::{Error, discovery, preset};

impl Desktop {
    /// Checks an issuer live: its discovery document, with the error that says why not.
    pub async fn check_provider(&self, issuer: &str) -> Result<ProviderCheck, Failure> {
        let issuer = issuer.trim();
        crate::config::check_issuer(issuer).map_err(|m| Failure::new(format!("the issuer {m}")))?;
        let provider = discovery::Provider::discover(&self.inner.http, issuer)
            .await
            .map_err(|source| {
                Failure::from(Error::Discovery {
                    issuer: issuer.to_owned(),
                    source,
                })
            })?;
        let m = &provider.metadata;
        Ok(ProviderCheck {
            issuer: provider.issuer().to_owned(),
            authorization_endpoint: m
                .authorization_endpoint
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            scopes_supported: m.scopes_supported.clone(),
            end_session: m.end_session_endpoint.is_some(),
            revocation: m.revocation_endpoint.is_some(),
        })
    }

    /// Adds an account after checking its provider live; stores a client secret given
    /// with it in the keychain.
    pub async fn add_account(&self, form: AddAccount) -> Result<Vec<AccountView>, Failure> {
        let name = form.name.trim().to_owned();
        let client_id = form.client_id.trim().to_owned();
        let (mut account, preset) = match form.preset.as_deref().filter(|p| !p.is_empty()) {
            Some(id) => {
                let preset = preset::find(id).ok_or_else(|| {
                    Failure::new(format!("unknown preset `{id}`; known: {}", preset::ids()))
                })?;
                let issuer = form
                    .issuer
                    .as_deref()
                    .map(str::trim)
                    .filter(|i| !i.is_empty());
                let center = form
                    .center
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty());
                (
                    NewAccount::from_preset(preset, &name, &client_id, issuer, center, None),
                    Some(preset),
                )
            }
            None => (
                NewAccount {
                    name: name.clone(),
                    issuer: form.issuer.unwrap_or_default().trim().to_owned(),
                    client_id: client_id.clone(),
                    ..NewAccount::default()
                },
                None,
            ),
        };
        if let Some(scopes) = form.scopes.filter(|s| !s.trim().is_empty()) {
            account.scopes = Some(scopes.trim().to_owned());
        }
        if client_id.is_empty() {
            return Err(Failure {
                message: "a client id is needed".into(),
                hint: Some(match preset {
                    Some(p) => format!("register an app with {} ({})", p.name, p.docs),
                    None => "register an app with the provider to get one".into(),
                }),
            });
        }
        self.check_provider(&account.issuer).await?;
        let config = Config::add_account(&self.inner.config_path, &account)?;
        self.replace(config)?;
        if let Some(secret) = form.client_secret.filter(|s| !s.is_empty()) {
            self.inner
                .agent
                .lanyard()
                .set_client_secret(&name, crate::secret::Secret::new(secret))
                .await?;
        }
        Ok(self.changed())
    }

    /// Signs the account out locally (no browser) and removes it from the accounts file.
    pub async fn remove_account(&self, account: &str) -> Result<Vec<AccountView>, Failure> {
        self.cancel(account);
        self.inner.agent.lanyard().config().account(account)?;
        if let Err(e) = self.inner.agent.logout_with(account, true, &|_| {}).await {
            tracing::warn!(account, error = %e, "could not sign out before removing");
        }
        let config = Config::remove_account(&self.inner.config_path, account)?;
        self.replace(config)?;
        Ok(self.changed())
    }

    /// The person's picture as a `data:` URL: fetched once, then read from the cache in
    /// the data directory (deleted at sign-out). `None` when there is none or it cannot be
    /// had (the window shows initials).
    ///
    /// The URL is the provider's claim, not its metadata: it is fetched over https from a
    /// public address only (never loopback or the local network, which a hostile claim
    /// could aim at), or from the provider's own origin, which Lanyard talks to anyway.
    pub async fn picture(&self, account: &str) -> Option<String> {
        let identity = self.identity(account).ok()?;
        let url = url::Url::parse(identity.picture.as_deref()?).ok()?;
        let lanyard = self.inner.agent.lanyard();
        let issuer = url::Url::parse(&lanyard.config().account(account).ok()?.issuer).ok()?;
        let records = Records::new(self.inner.records_dir.clone());
        let cache = records.picture_path(account, url.as_str());
        if let Some(path) = &cache
            && let Ok(bytes) = std::fs::read(path)
            && let Some(url) = data_url(&bytes)
        {
            return Some(url);
        }
        let fetched = if url.origin() == issuer.origin() {
            self.inner.http.get(&url).await
        } else {
            self.inner.pictures.get_public(&url).await
        };
        let response = match fetched {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(account, error = %e, "no picture");
                return None;
            }
        };
        let data = data_url(&response.body)?;
        if let Some(path) = &cache {
            let _ = crate::store::write_private(path, &response.body);
        }
        Some(data)
    }

    /// Tells the window the accounts changed, and returns them.
    pub(super) fn changed(&self) -> Vec<AccountView> {
        let accounts = self.accounts();
        let _ = self.inner.approvals.events.send(UiEvent::Accounts {
            accounts: accounts.clone(),
        });
        accounts
    }

    pub(super) fn replace(&self, config: Config) -> Result<(), Failure> {
        *self
            .inner
            .config_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = modified(&self.inner.config_path);
        let lanyard = Lanyard::new(config, Records::new(self.inner.records_dir.clone()))?
            .with_store(self.inner.store)
            .with_inbox(self.inner.inbox.clone());
        self.inner.agent.reload(lanyard);
        self.remember_providers();
        Ok(())
    }

    pub(super) fn reload_if_changed(&self) {
        if self.inner.seat.is_some() {
            // The kiosk file is read at start only; the center restarts the app to change it.
            return;
        }
        let now = modified(&self.inner.config_path);
        let seen = *self
            .inner
            .config_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if now == seen {
            return;
        }
        match load_or_empty(&self.inner.config_path) {
            Ok(config) => {
                if let Err(e) = self.replace(config) {
                    tracing::warn!(error = %e.message, "cannot reload the accounts file");
                }
            }
            // A half-edited file: keep serving what was valid; the CLI shows the error.
            Err(e) => {
                tracing::warn!(error = %e.message, "the accounts file is invalid; keeping the last good one")
            }
        }
    }

    pub(super) fn remember_providers(&self) {
        let lanyard = self.inner.agent.lanyard();
        let names = lanyard
            .config()
            .accounts
            .values()
            .map(|a| (a.name.clone(), provider_name(a)))
            .collect();
        *self
            .inner
            .approvals
            .providers
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = names;
    }
}

pub(super) fn load_or_empty(path: &Path) -> Result<Config, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Config::parse(path, &text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::parse(path, "")?),
        Err(source) => Err(crate::config::Error::Read {
            path: path.to_owned(),
            source,
        }
        .into()),
    }
}

pub(super) fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
