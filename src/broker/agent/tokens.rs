//! Access tokens through the agent: served from the cache while fresh, else one refresh
//! per account and target however many ask (`broker::flight`), refreshed again ahead of
//! expiry, and a failure shared with everyone who waited on it.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Agent, MAX_NARROWER, REFRESH_AHEAD, body};
use crate::broker::flight::{Cached, JUST_REFRESHED, Served, Slot, backoff, refresh_delay};
use crate::broker::peer::Peer;
use crate::broker::policy::Decision;
use crate::broker::protocol::{Code, ErrorBody, Event, ProofReply, ProofRequest, TokenReply};
use crate::flow::Target;
use crate::secret::Secret;
use crate::{Kind, session};

impl Agent {
    /// A token for `target`: the sign-in's own, or a narrower one (down-scoping).
    pub async fn token(
        &self,
        account: &str,
        min_valid: u64,
        target: &Target,
        peer: &Peer,
    ) -> Result<TokenReply, ErrorBody> {
        self.known(account, peer)?;
        self.authorize(account, peer).await?;
        let served = self
            .fetch(account, min_valid, &target.normalized(), Some(&peer.app))
            .await?;
        Ok(TokenReply {
            access_token: served.cached.token.expose().to_owned(),
            token_type: token_type(served.cached.dpop).into(),
            expires_at: served.cached.expires_at,
            warning: served.warning,
        })
    }

    /// [`Agent::token`] for a tool that can wait for a sign-in: when the account needs
    /// one, the person is brought back (`bring_back`: one sign-in in the browser however
    /// many wait, `progress` told while this one waits), and the token served after.
    /// From a remote host or on a kiosk seat it is `token`: no sign-in starts for them.
    pub async fn token_signing_in(
        &self,
        account: &str,
        min_valid: u64,
        target: &Target,
        peer: &Peer,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<TokenReply, ErrorBody> {
        match self.token(account, min_valid, target, peer).await {
            Err(e)
                if e.code == Code::SignInNeeded && !peer.remote && self.inner.kiosk.is_none() =>
            {
                self.bring_back(account, peer, progress).await?;
                self.token(account, min_valid, target, peer).await
            }
            answer => answer,
        }
    }

    /// The account's own token with a DPoP proof for one request (`method` at `url`, with
    /// the resource server's `nonce` if it gave one): the key stays here, and the tool
    /// gets what it sends. For an app allowed the account's tokens.
    pub async fn proof(
        &self,
        account: &str,
        request: &ProofRequest,
        peer: &Peer,
    ) -> Result<ProofReply, ErrorBody> {
        self.known(account, peer)?;
        let url = url::Url::parse(&request.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| ErrorBody {
                code: Code::BadRequest,
                message: format!("`{}` is not an http(s) URL", request.url),
                hint: None,
            })?;
        let method = request.method.to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ErrorBody {
                code: Code::BadRequest,
                message: format!("`{}` is not an HTTP method", request.method),
                hint: None,
            });
        }
        self.authorize(account, peer).await?;
        let served = self
            .fetch(
                account,
                request.min_valid,
                &Target::default(),
                Some(&peer.app),
            )
            .await?;
        if !served.cached.dpop {
            return Err(ErrorBody {
                code: Code::NotSupported,
                message: format!(
                    "{account}'s tokens are not DPoP-bound: send the token as a Bearer token, with no proof"
                ),
                hint: None,
            });
        }
        let proof = self
            .lanyard()
            .dpop_proof(
                account,
                &method,
                &url,
                &served.cached.token,
                request.nonce.as_deref(),
            )
            .await
            .map_err(|e| body(&e))?
            .ok_or_else(|| ErrorBody {
                code: Code::SignInNeeded,
                message: format!("{account}'s DPoP key is gone from the keychain; sign in again"),
                hint: Some(format!("lanyard login {account}")),
            })?;
        Ok(ProofReply {
            access_token: served.cached.token.expose().to_owned(),
            token_type: token_type(true).into(),
            expires_at: served.cached.expires_at,
            proof,
            warning: served.warning,
        })
    }

    /// The account's own access token for the person at the desktop app ("Copy access
    /// token"): no app asks, so no policy applies; the audit log still records it.
    pub async fn owner_token(&self, account: &str) -> Result<(Secret, Option<u64>), ErrorBody> {
        let owner = Peer {
            user: crate::platform::own_user(),
            pid: Some(std::process::id() as i32),
            app: "(copied in the Lanyard app)".into(),
            through: None,
            process: None,
            parent: None,
            remote: false,
        };
        self.known(account, &owner)?;
        let cached = self
            .fetch(account, 60, &Target::default(), None)
            .await?
            .cached;
        self.audit(account, &owner, Decision::AllowOnce);
        Ok((cached.token, cached.expires_at))
    }

    fn slot(&self, account: &str, target: &Target) -> Arc<Slot> {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(account).and_then(|t| t.get(target)) {
            return slot.clone();
        }
        let targets = slots.entry(account.to_owned()).or_default();
        if !target.is_default() && targets.len() > MAX_NARROWER {
            // Apps that ask for ever new scope sets do not grow the cache without bound:
            // the narrower tokens are dropped (and asked for again when needed); the
            // sign-in's own stays.
            targets.retain(|t, _| t.is_default());
        }
        targets.entry(target.clone()).or_default().clone()
    }

    /// Drops the account's cached tokens and refresher (after sign-in or sign-out).
    pub(super) fn forget(&self, account: &str) {
        let slots = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
        for slot in slots.into_iter().flat_map(HashMap::into_values) {
            *slot.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
            if let Some(task) = slot
                .refresher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                task.abort();
            }
        }
    }

    /// A token valid for `min_valid` more seconds: from memory, or through one flight.
    /// Everyone who waited on the flight gets its outcome; after a failure, later requests
    /// get it too until the back-off ends (see [`super::flight`]). `who` is the app that
    /// asks, named when the account is found to need a sign-in.
    pub(super) async fn fetch(
        &self,
        account: &str,
        min_valid: u64,
        target: &Target,
        who: Option<&str>,
    ) -> Result<Served, ErrorBody> {
        let slot = self.slot(account, target);
        if let Some(cached) = slot.fresh(min_valid) {
            return Ok(Served::plain(cached));
        }
        let arrived = tokio::time::Instant::now();
        if let Some(answer) = slot.shared_failure(arrived) {
            return answer;
        }
        let _flight = slot.flight.lock().await;
        if let Some(cached) = slot.fresh(min_valid) {
            return Ok(Served::plain(cached));
        }
        if let Some(answer) = slot.shared_failure(arrived) {
            return answer;
        }
        if slot
            .cached()
            .as_ref()
            .and_then(|c| c.refreshed_at)
            .is_some_and(|t| t.elapsed() < JUST_REFRESHED)
        {
            // Refreshed a moment ago, and run out already: asking again now would only
            // hammer the provider for another such token.
            return Err(ErrorBody {
                code: Code::ProviderError,
                message: format!(
                    "the provider issued {account} a token that expired at once; Lanyard asks it again after {} s",
                    JUST_REFRESHED.as_secs()
                ),
                hint: None,
            });
        }
        match self.lanyard().token_for(account, min_valid, target).await {
            Ok(token) => {
                let cached = Cached {
                    token: token.token,
                    expires_at: token.expires_at,
                    refreshed_at: token.refreshed.then(tokio::time::Instant::now),
                    dpop: token.dpop,
                };
                *slot.cached() = Some(cached.clone());
                if let Some(message) = token.refresh_failed {
                    // The refresh failed and the current token still lasts a while.
                    let error = ErrorBody {
                        code: Code::ProviderError,
                        message,
                        hint: None,
                    };
                    return slot.failed(error, true);
                }
                slot.succeeded();
                let served = Served {
                    cached,
                    warning: token.warning,
                };
                if !target.is_default() {
                    // Narrower tokens are asked for again when they run out.
                    return Ok(served);
                }
                if token.refreshed {
                    let _ = self.inner.events.send(Event::Refreshed {
                        account: account.to_owned(),
                        expires_at: token.expires_at,
                    });
                }
                self.schedule_refresh(account, &slot, token.expires_at);
                Ok(served)
            }
            Err(e) => {
                let error = body(&e);
                let transient = error.code == Code::ProviderError;
                let reason = error.message.clone();
                let answer = slot.failed(error, transient);
                if e.kind() == Kind::SignInNeeded {
                    // The tokens held here go with the sign-in: no tool gets them now.
                    // Until a sign-in, `session` answers so without asking the provider.
                    self.forget(account);
                    self.lapsed(account, who, reason);
                }
                answer
            }
        }
    }

    /// Tells subscribers that `account` needs a sign-in, and which app found it (`who`).
    /// The desktop app notifies the person once per lapse (`desktop::start`).
    fn lapsed(&self, account: &str, who: Option<&str>, reason: String) {
        let _ = self.inner.events.send(Event::SignInNeeded {
            account: account.to_owned(),
            reason,
            app: who.map(str::to_owned),
        });
    }

    /// Refreshes ahead of expiry; after a failure, tries again when the slot's back-off
    /// ends, while the current token lasts.
    fn schedule_refresh(&self, account: &str, slot: &Slot, expires_at: Option<u64>) {
        let Some(expires_at) = expires_at else { return };
        let agent = self.clone();
        let account = account.to_owned();
        let task = tokio::spawn(async move {
            let lifetime = expires_at.saturating_sub(session::now());
            // Short-lived tokens refresh at half-life rather than in a tight loop, and
            // never sooner than the floor (a token that expires at once).
            let ahead = REFRESH_AHEAD.min(lifetime / 2);
            tokio::time::sleep(refresh_delay(lifetime, ahead)).await;
            let own = Target::default();
            loop {
                let slot = agent.slot(&account, &own);
                let failed = match agent.fetch(&account, ahead + 1, &own, None).await {
                    // A new token: fetch scheduled the next refresh.
                    Ok(_) if slot.retry_at().is_none() => return,
                    Ok(served) => served.warning.unwrap_or_default(),
                    Err(e) if e.code == Code::SignInNeeded => return,
                    Err(e) => e.message,
                };
                tracing::warn!(account = %account, error = %failed, "refresh ahead of expiry failed; retrying");
                if session::now() >= expires_at {
                    return;
                }
                let retry_at = slot
                    .retry_at()
                    .unwrap_or_else(|| tokio::time::Instant::now() + backoff(1));
                tokio::time::sleep_until(retry_at).await;
            }
        });
        if let Some(old) = slot
            .refresher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(task)
        {
            old.abort();
        }
    }
}

/// How a token is sent: `DPoP` when it is bound to the account's key, else `Bearer`.
fn token_type(dpop: bool) -> &'static str {
    if dpop { "DPoP" } else { "Bearer" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        let config = crate::config::Config::parse(std::path::Path::new("/c.toml"), "").unwrap();
        let lanyard =
            crate::session::Lanyard::new(config, crate::store::Records::new(None)).unwrap();
        Agent::new(lanyard, None, None)
    }

    /// However many scope sets apps ask for, an account keeps a bounded number of slots,
    /// and its own token's slot is never the one dropped.
    #[test]
    fn narrower_tokens_per_account_are_bounded() {
        let agent = agent();
        let own = agent.slot("work", &Target::default());
        for i in 0..1000 {
            let target = Target {
                scope: Some(format!("scope-{i}")),
                audience: None,
                exchange: false,
            };
            agent.slot("work", &target);
            let slots = agent.inner.slots.lock().unwrap();
            assert!(slots["work"].len() <= MAX_NARROWER + 2, "{i}");
        }
        assert!(Arc::ptr_eq(&own, &agent.slot("work", &Target::default())));
    }
}
