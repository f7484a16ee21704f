//! Access tokens: the stored one while it lasts, else a refresh, one at a time.
//!
//! A rotated refresh token is in the store before the access token that came with it is
//! handed out, and a failed refresh keeps the old tokens.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::dpop::dpop_key;
use super::{
    Lanyard, check_id_token, held, identity_claims, load_tokens, now, run_blocking, save_tokens,
};
use crate::config::{Account, ResponseType, StoreKind};
use crate::error::Error;
use crate::flow::{self, Target};
use crate::secret::Secret;
use crate::store::{AccountLock, Record, Secrets, Status, Tokens};
use crate::validate;

/// Why a token that runs short cannot be refreshed.
const NO_REFRESH_TOKEN: &str =
    "the access token is about to expire and the provider gave no refresh token";

/// An access token handed out by [`Lanyard::token`].
#[derive(Debug)]
pub struct AccessToken {
    /// The token.
    pub token: Secret,
    /// When it expires, in Unix seconds, if the provider said.
    pub expires_at: Option<u64>,
    /// It was refreshed for this call.
    pub refreshed: bool,
    /// Something the caller should show: a short lifetime, a failed refresh.
    pub warning: Option<String>,
    /// Why a refresh failed, when the token is the stored one handed out because it is
    /// still valid; `warning` says so too.
    pub refresh_failed: Option<String>,
    /// The token is DPoP-bound (RFC 9449): it goes with a proof of the account's key
    /// ([`Lanyard::dpop_proof`]), as `Authorization: DPoP`.
    pub dpop: bool,
}

impl Lanyard {
    /// An access token valid for at least `min_valid` seconds, refreshed if need be.
    pub async fn token(&self, name: &str, min_valid: u64) -> Result<AccessToken, Error> {
        self.token_for(name, min_valid, &Target::default()).await
    }

    /// A token for `target`. The sign-in's own token is stored and refreshed when it runs
    /// short; a narrower one (down-scoping) comes from a refresh each time and is not
    /// stored: the agent keeps it in memory. Either way the refresh token may rotate.
    pub async fn token_for(
        &self,
        name: &str,
        min_valid: u64,
        target: &Target,
    ) -> Result<AccessToken, Error> {
        if target.exchange {
            return self.exchanged(name, min_valid, target).await;
        }
        let account = self.config.account(name)?;
        if let Some(audience) = &target.audience
            && !account.resources.contains(audience)
        {
            return Err(Error::UnknownAudience {
                account: name.to_owned(),
                audience: audience.clone(),
            });
        }
        let lock = self.account_lock(name);
        let _one_at_a_time = lock.lock().await;
        let kind = self.store_kind(account);
        let need = |reason: &str| Error::SignInNeeded {
            account: name.to_owned(),
            reason: reason.to_owned(),
        };
        let looked = self.signed_in(account, kind, target, false).await?;
        if let Some(token) = stored_if_fresh(&looked.tokens, target, min_valid) {
            return Ok(token);
        }
        // The refresh token is needed. One process at a time holds it, from reading it to
        // storing the one that replaces it; what was read before the lock may be stale.
        let looked_at = looked.tokens.access_token.clone();
        let mut held = self.lock_refresh(kind, name).await;
        // Tokens held in memory are checked against the keychain while the refresh is
        // under way (below), not before it: the stamp already says no Lanyard process
        // wrote them since, and the keychain's answer only decides whether the refresh's
        // outcome is used.
        let SignedIn {
            mut record,
            mut tokens,
            secrets,
            held: from_memory,
        } = if held.is_some() || looked.held {
            self.signed_in(account, kind, target, false).await?
        } else {
            looked
        };
        let current = tokens
            .access_token
            .clone()
            .ok_or_else(|| need("no access token is stored"))?;
        let remaining = tokens.expires_at.map(|e| e.saturating_sub(now()));
        if target.is_default() {
            if let Some(token) = stored_if_fresh(&tokens, target, min_valid) {
                return Ok(token);
            }
            if looked_at.as_ref().map(Secret::expose) != Some(current.expose())
                && let Some(r) = remaining.filter(|r| *r > 0)
            {
                // Another process refreshed while this one waited: the provider gave it
                // what it gives, and asking again would not give more.
                return Ok(AccessToken {
                    token: current,
                    expires_at: tokens.expires_at,
                    refreshed: false,
                    warning: Some(short_lifetime(r, min_valid)),
                    refresh_failed: None,
                    dpop: tokens.dpop_key.is_some(),
                });
            }
        }
        if let Some(message) = held.as_mut().and_then(AccountLock::failed_while_waiting) {
            // Another process's refresh failed while this one waited for it: that is this
            // one's outcome too, known without asking a provider that is down again.
            let error = Error::RefreshFailedMeanwhile {
                account: name.to_owned(),
                message,
            };
            let bound = tokens.dpop_key.is_some();
            return still_valid(error, (current, bound), tokens.expires_at, remaining);
        }
        let Some(mut refresh_token) = tokens.refresh_token.clone() else {
            return Err(need(NO_REFRESH_TOKEN));
        };

        let mut refreshed = if from_memory {
            let (refreshed, stored) = tokio::join!(
                self.refresh(account, kind, &record, (&refresh_token, &tokens), target),
                load_tokens(secrets.clone(), name)
            );
            match stored {
                Ok(Some(stored))
                    if stored.refresh_token.as_ref().map(Secret::expose)
                        == Some(refresh_token.expose()) =>
                {
                    refreshed
                }
                Ok(_) => {
                    // The keychain no longer has the refresh token held here (deleted, or
                    // written by something that left no stamp): what the refresh gave is
                    // not used. What the keychain has decides, as for a process that
                    // holds nothing.
                    let (stored_record, stored_tokens, Some(other)) =
                        self.reread_keychain(account, kind, target).await?
                    else {
                        return Err(need(NO_REFRESH_TOKEN));
                    };
                    (record, tokens, refresh_token) = (stored_record, stored_tokens, other);
                    self.refresh(account, kind, &record, (&refresh_token, &tokens), target)
                        .await
                }
                // The keychain cannot be read: the refresh (checked by the stamp) stands,
                // and storing what it gave will say whether the keychain is back.
                Err(e) => {
                    tracing::warn!(account = %name, error = %e, "cannot read the keychain before storing a refresh");
                    refreshed
                }
            }
        } else {
            self.refresh(account, kind, &record, (&refresh_token, &tokens), target)
                .await
        };
        if from_memory && matches!(refreshed, Err(RefreshError::InvalidGrant)) {
            // What this process held may be older than the keychain, if a write of the
            // tokens lost its record's new stamp (a crash between the two): ask again
            // with the keychain's refresh token, if it is another.
            let (stored_record, stored_tokens, other) =
                self.reread_keychain(account, kind, target).await?;
            if let Some(other) = other
                && other.expose() != refresh_token.expose()
            {
                (record, tokens, refresh_token) = (stored_record, stored_tokens, other);
                refreshed = self
                    .refresh(account, kind, &record, (&refresh_token, &tokens), target)
                    .await;
            }
        }
        let (response, claims) = match refreshed {
            Ok(ok) => ok,
            Err(RefreshError::InvalidGrant) => {
                let reason =
                    "the provider no longer accepts the refresh token (invalid_grant)".to_owned();
                record.status = Status::SignInNeeded {
                    reason: reason.clone(),
                };
                self.held.forget(name);
                self.records.save(kind, &record)?;
                return Err(need(&reason));
            }
            Err(RefreshError::Other(e)) if e.kind() == crate::Kind::Rejected => return Err(e),
            // A narrower token the provider will not give (invalid_scope, invalid_target):
            // its own words say why, and the stored tokens are untouched.
            Err(RefreshError::Other(e)) if !target.is_default() => return Err(e),
            Err(RefreshError::Other(e)) => {
                let error = Error::RefreshFailed {
                    account: name.to_owned(),
                    source: Box::new(e),
                };
                if let Some(held) = &mut held
                    && error.kind() == crate::Kind::Provider
                {
                    held.note_failure(&error.to_string());
                }
                let bound = tokens.dpop_key.is_some();
                return still_valid(error, (current, bound), tokens.expires_at, remaining);
            }
        };
        if let Some(held) = &mut held {
            held.note_success();
        }
        let now = self::now();
        let expires_at = response.expires_at(now);
        // Rotation: a new refresh token replaces the old one; else the old one stays.
        let rotated = response
            .refresh_token
            .as_ref()
            .is_some_and(|new| new.expose() != refresh_token.expose());
        let refresh_token = response.refresh_token.clone().or(tokens.refresh_token);
        let new = if target.is_default() {
            Tokens {
                access_token: Some(response.access_token.clone()),
                expires_at,
                refresh_token,
                id_token: response.id_token.clone().or(tokens.id_token),
                issuer: Some(account.issuer.clone()),
                client_id: Some(account.client_id.clone()),
                // The key stays with the refresh token bound to it.
                dpop_key: tokens.dpop_key,
            }
        } else {
            // A narrower token is not the sign-in's: the stored tokens stay but for the
            // refresh token.
            Tokens {
                refresh_token,
                ..tokens
            }
        };
        record.refreshable = new.refresh_token.is_some();
        if target.is_default() {
            record.access_token_expires_at = new.expires_at;
            record.dpop = response.is_dpop();
            if let Some(claims) = claims {
                // The refresh's new ID token (Core 12.2) is the one kept now.
                if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
                    record.id_token_expires_at = Some(exp);
                }
                record.id_token_claims = identity_claims(claims);
            }
        }
        if rotated || (target.is_default() && !self.held.is_on()) || record.tokens_stamp.is_none() {
            // The keychain and the record file are written at once, off the async threads
            // (the record is synced to disk): the token waits for both, and nobody else
            // does. The record's new stamp tells holders to read the keychain again.
            record.tokens_stamp = Some(held::new_stamp());
            self.held.put(&record, &new);
            let records = self.records.clone();
            let (saved, recorded) = tokio::join!(
                save_tokens(secrets, name, &new),
                run_blocking(move || records.save(kind, &record))
            );
            saved?;
            recorded?;
        } else if target.is_default() {
            // The stored refresh token is still good: this long-running process keeps the
            // new tokens in memory, and the keychain is not written.
            self.held.put(&record, &new);
        }
        // (A narrower token without a rotation changes nothing stored.)
        tracing::info!(account = %name, rotated, "refreshed the access token");
        let warning = expires_at
            .map(|e| e.saturating_sub(now))
            .filter(|r| *r < min_valid)
            .map(|r| short_lifetime(r, min_valid));
        Ok(AccessToken {
            dpop: response.is_dpop(),
            token: response.access_token,
            expires_at,
            refreshed: true,
            warning,
            refresh_failed: None,
        })
    }

    /// Token exchange (RFC 8693): the sign-in's own token, refreshed if need be, exchanged
    /// at the provider for one aimed at `target`'s audience. Not stored: the agent keeps
    /// it in memory per target, as it keeps narrower tokens.
    async fn exchanged(
        &self,
        name: &str,
        min_valid: u64,
        target: &Target,
    ) -> Result<AccessToken, Error> {
        let account = self.config.account(name)?;
        let own = Box::pin(self.token_for(name, 60, &Target::default())).await?;
        let kind = self.store_kind(account);
        let client_secret = self.client_secret(account, kind).await?;
        let provider = self.discover(account).await?;
        let auth = flow::client_auth(account, &provider, client_secret.as_ref())?;
        // A bound token is exchanged with a proof of its key.
        let key = if own.dpop {
            self.dpop_key(account, kind).await?
        } else {
            None
        };
        let response = flow::token_exchange(
            &self.http,
            &provider,
            &auth,
            &own.token,
            target,
            key.as_ref(),
        )
        .await?;
        let at = now();
        let expires_at = response.expires_at(at);
        let lifetime = expires_at.map(|e| e - at);
        Ok(AccessToken {
            dpop: response.is_dpop(),
            token: response.access_token,
            expires_at,
            refreshed: true,
            warning: lifetime
                .filter(|l| *l < min_valid)
                .map(|l| short_lifetime(l, min_valid)),
            refresh_failed: None,
        })
    }

    async fn refresh(
        &self,
        account: &Account,
        kind: StoreKind,
        record: &Record,
        (refresh_token, tokens): (&Secret, &Tokens),
        target: &Target,
    ) -> Result<(flow::TokenResponse, Option<Map<String, Value>>), RefreshError> {
        let client_secret = self.client_secret(account, kind).await?;
        let provider = self.discover(account).await?;
        let auth =
            flow::client_auth(account, &provider, client_secret.as_ref()).map_err(Error::from)?;
        // A bound refresh token goes with a proof of its key (RFC 9449 section 5).
        let key = tokens.dpop_key.as_ref().map(dpop_key).transpose()?;
        let response = flow::refresh(
            &self.http,
            &provider,
            &auth,
            refresh_token,
            target,
            key.as_ref(),
        )
        .await
        .map_err(|e| match e {
            flow::Error::Http(h) if h.oauth_error() == Some("invalid_grant") => {
                RefreshError::InvalidGrant
            }
            other => RefreshError::Other(other.into()),
        })?;
        // Core 12.2: a new ID token must be valid and keep the sign-in's iss and sub.
        let claims = match &response.id_token {
            Some(id_token) => {
                let claims = check_id_token(
                    &provider,
                    account,
                    id_token,
                    None,
                    None,
                    Some(&response.access_token),
                )
                .await?;
                validate::refreshed(&record.issuer, &record.subject, &claims)
                    .map_err(Error::from)?;
                Some(claims.claims)
            }
            None => None,
        };
        Ok((response, claims))
    }

    /// A service token for the account's confidential client itself (client credentials
    /// grant). It is not stored: each call asks the provider.
    pub async fn client_credentials(
        &self,
        name: &str,
        scope: Option<&str>,
    ) -> Result<AccessToken, Error> {
        let account = self.config.account(name)?;
        let client_secret = self.client_secret(account, StoreKind::Keychain).await?;
        let Some(client_secret) = client_secret else {
            return Err(flow::Error::NoSecret {
                account: name.to_owned(),
                method: "the client credentials grant",
            }
            .into());
        };
        let provider = self.discover(account).await?;
        let auth = flow::client_auth(account, &provider, Some(&client_secret))?;
        let response = flow::client_credentials(&self.http, &provider, &auth, scope).await?;
        tracing::info!(account = %name, "issued a client credentials token");
        Ok(AccessToken {
            dpop: false,
            expires_at: response.expires_at(now()),
            token: response.access_token,
            refreshed: false,
            warning: None,
            refresh_failed: None,
        })
    }

    /// What the keychain has now for an account whose held tokens are not to be used
    /// (the keychain no longer backs them, or the provider refused them): the record,
    /// the tokens and their refresh token, checked as [`Lanyard::signed_in`] checks them.
    /// Nothing is held for the account after it but what it read.
    async fn reread_keychain(
        &self,
        account: &Account,
        kind: StoreKind,
        target: &Target,
    ) -> Result<(Record, Tokens, Option<Secret>), Error> {
        self.held.forget(&account.name);
        let stored = self.signed_in(account, kind, target, true).await?;
        let refresh_token = stored.tokens.refresh_token.clone();
        Ok((stored.record, stored.tokens, refresh_token))
    }

    /// The account's record and stored tokens, checked: signed in, for this client, with
    /// access tokens and the scopes `target` asks for. What this process holds stands in
    /// for them; with `read`, only once the keychain was read and still has the refresh
    /// token held (a token about to be refreshed: the keychain may have lost it since).
    async fn signed_in(
        &self,
        account: &Account,
        kind: StoreKind,
        target: &Target,
        read: bool,
    ) -> Result<SignedIn, Error> {
        let name = account.name.as_str();
        let need = |reason: &str| Error::SignInNeeded {
            account: name.to_owned(),
            reason: reason.to_owned(),
        };
        let mut record = self
            .records
            .load(kind, name)
            .ok_or_else(|| need("not signed in"))?;
        if let Status::SignInNeeded { reason } = &record.status {
            return Err(need(reason));
        }
        if record.response_type == ResponseType::IdToken {
            return Err(Error::NoAccessToken {
                account: name.to_owned(),
            });
        }
        // RFC 6749 section 6: a refresh may narrow the scope, never widen it.
        let ungranted = target.ungranted(&record.scopes);
        if !ungranted.is_empty() {
            return Err(Error::ScopeNotGranted {
                account: name.to_owned(),
                scopes: ungranted.join(" "),
                granted: record.scopes.join(" "),
            });
        }
        let secrets = self.secrets(kind).await?;
        // Held tokens go only to the provider and client they were issued by (the
        // keychain's are checked below).
        let held = self.held.get(&record).filter(|(_, held)| {
            held.issued_to(
                &account.issuer,
                &account.client_id,
                (&record.issuer, &record.client_id),
            )
        });
        if !read && let Some((record, tokens)) = held {
            return Ok(SignedIn {
                record,
                tokens,
                secrets,
                held: true,
            });
        }
        let Some(tokens) = load_tokens(secrets.clone(), name).await? else {
            self.held.forget(name);
            // The keychain answers but has nothing: the sign-in is gone for good (the
            // keychain was reset, or was a session's only), and the record says so.
            let reason = "no tokens are stored for this account (the keychain no longer has them)";
            record.status = Status::SignInNeeded {
                reason: reason.to_owned(),
            };
            self.records.save(kind, &record)?;
            return Err(need(reason));
        };
        if !tokens.issued_to(
            &account.issuer,
            &account.client_id,
            (&record.issuer, &record.client_id),
        ) {
            // The account was pointed at another provider or client since: its refresh
            // token must not travel there, nor its access token be handed out for it.
            // The sign-in itself is kept as it is: settings pointed back (a typo fixed)
            // find it whole; a sign-in with these settings replaces it.
            let reason = format!(
                "the settings name issuer {} and client {}, not the ones it signed in with ({} and {})",
                account.issuer, account.client_id, record.issuer, record.client_id
            );
            return Err(need(&reason));
        }
        if tokens.access_token.is_none() {
            return Err(need("no access token is stored"));
        }
        // The keychain's refresh token is still the one held: what is held is newer (a
        // refresh that did not rotate was not written).
        if let Some((record, held)) = held
            && held.refresh_token.as_ref().map(Secret::expose)
                == tokens.refresh_token.as_ref().map(Secret::expose)
        {
            return Ok(SignedIn {
                record,
                tokens: held,
                secrets,
                held: true,
            });
        }
        self.held.put(&record, &tokens);
        Ok(SignedIn {
            record,
            tokens,
            secrets,
            held: false,
        })
    }

    /// The account's refresh lock, for accounts kept on disk; `None` for memory accounts
    /// (one process has them) or when the lock cannot be had, which is logged: the
    /// refresh goes ahead, as it did before there were locks.
    async fn lock_refresh(&self, kind: StoreKind, name: &str) -> Option<AccountLock> {
        if kind == StoreKind::Memory {
            return None;
        }
        let path = self.records.lock_path(name)?;
        let locked = tokio::task::spawn_blocking(move || AccountLock::acquire(&path)).await;
        match locked {
            Ok(Ok(lock)) => Some(lock),
            Ok(Err(e)) => {
                tracing::warn!(account = %name, error = %e, "cannot take the account's refresh lock; refreshing without it");
                None
            }
            Err(e) => {
                tracing::warn!(account = %name, error = %e, "cannot take the account's refresh lock; refreshing without it");
                None
            }
        }
    }
}

/// What [`Lanyard::signed_in`] found.
struct SignedIn {
    record: Record,
    tokens: Tokens,
    secrets: Arc<dyn Secrets>,
    /// The tokens are the ones this process holds, not read from the keychain now.
    held: bool,
}

/// The stored token, if it is the one asked for and valid for `min_valid` more seconds.
fn stored_if_fresh(tokens: &Tokens, target: &Target, min_valid: u64) -> Option<AccessToken> {
    let remaining = tokens.expires_at.map(|e| e.saturating_sub(now()));
    if !target.is_default() || remaining.is_some_and(|r| r < min_valid) {
        return None;
    }
    Some(AccessToken {
        token: tokens.access_token.clone()?,
        expires_at: tokens.expires_at,
        refreshed: false,
        warning: None,
        refresh_failed: None,
        dpop: tokens.dpop_key.is_some(),
    })
}

/// The outcome of a failed refresh: the current token while it lasts, with the failure
/// as a warning; else the failure.
fn still_valid(
    error: Error,
    (current, dpop): (Secret, bool),
    expires_at: Option<u64>,
    remaining: Option<u64>,
) -> Result<AccessToken, Error> {
    match remaining {
        Some(r) if r > 0 => Ok(AccessToken {
            dpop,
            token: current,
            expires_at,
            refreshed: false,
            warning: Some(format!(
                "{error}; the current token is still valid for {r} s"
            )),
            refresh_failed: Some(error.to_string()),
        }),
        _ => Err(error),
    }
}

fn short_lifetime(remaining: u64, min_valid: u64) -> String {
    format!(
        "the provider issued a token valid for {remaining} s, less than the {min_valid} s asked for"
    )
}

enum RefreshError {
    InvalidGrant,
    Other(Error),
}

impl From<Error> for RefreshError {
    fn from(e: Error) -> RefreshError {
        RefreshError::Other(e)
    }
}
