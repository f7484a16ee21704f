//! Signing out: revoke the tokens, end the provider session in the browser where the
//! provider offers it, and forget the account, keeping going past each failure and saying
//! what could not be done.

use std::time::Duration;

use super::{Lanyard, Progress, load_tokens, run_blocking};
use crate::config::{Account, Redirect, StoreKind};
use crate::discovery::Provider;
use crate::error::Error;
use crate::flow::loopback::{Listener, Page};
use crate::secret::{self, Secret};
use crate::store::{self, Tokens};
use crate::{flow, http};

/// The warning when the provider's sign-out page never sent the browser back.
const NO_END_SESSION_ANSWER: &str = "the browser did not come back from the provider's sign-out page; the provider session may still be active";

/// The warning when the one-time sign-out page was asked for twice.
const STOLEN: &str = "the provider session was not ended: the one-time sign-out page was opened twice, perhaps by another program on this computer; sign out at the provider yourself";

/// How long `logout` waits for the provider to send the browser back.
pub const END_SESSION_TIMEOUT: Duration = Duration::from_secs(120);

/// What [`Lanyard::logout`] did.
#[derive(Debug, Default)]
pub struct Logout {
    /// Someone was signed in.
    pub was_signed_in: bool,
    /// What was revoked at the provider (`refresh_token`, `access_token`).
    pub revoked: Vec<&'static str>,
    /// What became of the provider's own session.
    pub end_session: EndSession,
    /// What could not be done; the local sign-out happened all the same.
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
/// What became of the provider's session at sign-out.
pub enum EndSession {
    /// `--local`: the provider was not told.
    #[default]
    Skipped,
    /// The provider has no `end_session_endpoint`.
    NotOffered,
    /// The browser came back from the provider's logout.
    Ended,
    /// The browser did not come back in time; the provider session may remain.
    NoAnswer,
    /// No browser was asked for: the provider's sign-out page, for the person to open
    /// where they like to end the provider's session too. It names the client only,
    /// never a token, and leads nowhere afterwards (nothing waits for it).
    Link(String),
}

impl EndSession {
    /// The word for it on the wire and in `--json`: `skipped`, `not_offered`, `ended`,
    /// `no_answer` or `link`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EndSession::Skipped => "skipped",
            EndSession::NotOffered => "not_offered",
            EndSession::Ended => "ended",
            EndSession::NoAnswer => "no_answer",
            EndSession::Link(_) => "link",
        }
    }
}

impl Lanyard {
    /// Signs out: revokes the tokens where the provider offers it, deletes them and the
    /// record, and (unless `local`) ends the provider's session in the browser; without
    /// `open_browser`, returns at once with the provider's sign-out page as a link
    /// ([`EndSession::Link`]). Nobody signed in: nothing at the provider either.
    ///
    /// Forgetting is not conditional on anything else: a provider that cannot be reached,
    /// a client secret that cannot be read, a refused revocation each become a warning in
    /// the report, and the tokens and record are deleted all the same. Only a failure to
    /// delete them is an error.
    pub async fn logout(
        &self,
        name: &str,
        local: bool,
        open_browser: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Logout, Error> {
        let account = self.config.account(name)?;
        let kind = self.store_kind(account);
        // Not while a refresh runs: it would find the tokens gone and write the record
        // back as "sign-in needed" after this deletes it.
        let lock = self.account_lock(name);
        let one_at_a_time = lock.lock().await;
        let mut report = Logout::default();
        let secrets = self.secrets(kind).await;
        let tokens = match &secrets {
            Ok(secrets) => load_tokens(secrets.clone(), name)
                .await
                .unwrap_or_else(|e| {
                    report
                        .warnings
                        .push(format!("could not read the tokens to revoke them: {e}"));
                    None
                }),
            Err(_) => None,
        };
        let record = self.records.load(kind, name);
        report.was_signed_in = tokens.is_some() || record.is_some();
        // Tokens issued by another provider or to another client than the account names
        // now are not sent to this one, to revoke or as an `id_token_hint`.
        let tokens = tokens.filter(|t| {
            let (issuer, client) = record
                .as_ref()
                .map_or((account.issuer.as_str(), account.client_id.as_str()), |r| {
                    (r.issuer.as_str(), r.client_id.as_str())
                });
            let ours = t.issued_to(&account.issuer, &account.client_id, (issuer, client));
            if !ours {
                report.warnings.push(format!(
                    "the stored tokens belong to {} (client {}), not to the provider the account names now; they were forgotten without being sent to {}",
                    t.issuer.as_deref().unwrap_or(issuer),
                    t.client_id.as_deref().unwrap_or(client),
                    account.issuer
                ));
            }
            ours
        });
        let provider = if local {
            None
        } else {
            match self.discover(account).await {
                Ok(p) => Some(p),
                Err(e) => {
                    report.warnings.push(format!(
                        "could not reach the provider to revoke or end the session: {e}"
                    ));
                    None
                }
            }
        };
        if let (Some(provider), Some(tokens)) = (&provider, &tokens)
            && provider.metadata.revocation_endpoint.is_some()
        {
            self.revoke_all(account, kind, provider, tokens, &mut report)
                .await;
        }
        let id_token = tokens.as_ref().and_then(|t| t.id_token.clone());
        // The record first: without it no token is handed out, even if the keychain
        // should fail to delete the tokens below.
        let removed = self.records.remove(kind, name);
        self.held.forget(name);
        self.records.forget_pictures(name);
        let deleted = match secrets {
            Ok(secrets) => {
                let name = name.to_owned();
                // The tokens first, then what was made from them (the cloud credentials):
                // a failure to delete the second must not leave the first. Both are tried.
                run_blocking(move || {
                    let tokens = secrets.delete(store::TOKENS, &name);
                    let derived = secrets.delete(super::cloud::AWS_CACHE, &name);
                    tokens.and(derived)
                })
                .await
            }
            Err(e) => Err(match e {
                Error::Store(e) => e,
                other => store::Error::Failed(other.to_string()),
            }),
        };
        drop(one_at_a_time);
        deleted?;
        removed?;
        tracing::info!(account = %name, "signed out locally");
        // Nobody was signed in: no provider session of theirs to end, and no browser tab.
        let provider = provider.filter(|_| report.was_signed_in);
        if let Some(provider) = &provider {
            report.end_session = match &provider.metadata.end_session_endpoint {
                None => EndSession::NotOffered,
                // No browser: the link, and done at once (a script must not wait for a
                // browser nobody opened).
                Some(endpoint) if !open_browser => EndSession::Link(
                    flow::end_session_link(endpoint, &account.client_id).to_string(),
                ),
                Some(endpoint) if matches!(account.redirect, Redirect::Scheme { .. }) => {
                    self.end_session_by_scheme(
                        account,
                        endpoint,
                        id_token.as_ref(),
                        &mut report,
                        progress,
                    )
                    .await?
                }
                Some(endpoint) => {
                    // Providers that match redirect URIs exactly (ggLeap) match this one too.
                    let port = match account.redirect {
                        Redirect::Loopback { port } => port,
                        Redirect::Scheme { .. } => 0,
                    };
                    let listener = Listener::bind(port).await?;
                    let state = secret::random(16).map_err(|_| flow::Error::Random)?;
                    let landing = listener.uri("/logged-out");
                    let next = flow::end_session_url(
                        endpoint,
                        id_token.as_ref(),
                        &account.client_id,
                        &landing,
                        &state,
                    );
                    let waiting = async {
                        let waited =
                            listener.wait("/logged-out", &state, END_SESSION_TIMEOUT, false);
                        waited.await.ok()
                    };
                    match self
                        .end_in_browser(account, endpoint, next, waiting, &mut report, progress)
                        .await?
                    {
                        Ok(callback) => {
                            let message =
                                format!("You are signed out of {name}. You can close this tab.");
                            callback
                                .finish(&Page {
                                    ok: true,
                                    title: "Signed out",
                                    message: &message,
                                })
                                .await;
                            EndSession::Ended
                        }
                        Err(outcome) => outcome,
                    }
                }
            };
        }
        Ok(report)
    }

    /// Revokes the refresh and access tokens, best effort: each failure is a warning.
    async fn revoke_all(
        &self,
        account: &Account,
        kind: StoreKind,
        provider: &Provider,
        tokens: &Tokens,
        report: &mut Logout,
    ) {
        let client_secret = match self.client_secret(account, kind).await {
            Ok(secret) => secret,
            Err(e) => {
                report.warnings.push(format!(
                    "could not read the client secret to revoke the tokens: {e}"
                ));
                return;
            }
        };
        let pending = [
            ("refresh_token", tokens.refresh_token.as_ref()),
            ("access_token", tokens.access_token.as_ref()),
        ];
        let (revoked, warnings) = self
            .revoke_issued(account, provider, client_secret.as_ref(), &pending)
            .await;
        report.revoked.extend(revoked);
        report.warnings.extend(warnings);
    }

    /// Revokes each `(hint, token)` at the provider's revocation endpoint, best effort:
    /// what was revoked, and a warning for each that was not. A provider without the
    /// endpoint revokes nothing, and says so.
    pub(super) async fn revoke_issued(
        &self,
        account: &Account,
        provider: &Provider,
        client_secret: Option<&Secret>,
        tokens: &[(&'static str, Option<&Secret>)],
    ) -> (Vec<&'static str>, Vec<String>) {
        let (mut revoked, mut warnings) = (Vec::new(), Vec::new());
        let Some(url) = &provider.metadata.revocation_endpoint else {
            if tokens.iter().any(|(_, t)| t.is_some()) {
                warnings.push(
                    "the provider offers no revocation; the tokens lapse at their expiry".into(),
                );
            }
            return (revoked, warnings);
        };
        let auth = match flow::client_auth(account, provider, client_secret) {
            Ok(auth) => auth,
            Err(e) => {
                warnings.push(format!("could not revoke the tokens: {e}"));
                return (revoked, warnings);
            }
        };
        for (hint, token) in tokens {
            let Some(token) = token else { continue };
            match flow::revoke(&self.http, url, &auth, token, hint).await {
                Ok(()) => revoked.push(*hint),
                // RFC 7009 section 2.2.1: this provider cannot revoke such tokens
                // (self-contained JWT access tokens); this one lapses at its expiry.
                Err(flow::Error::Http(e)) if e.oauth_error() == Some("unsupported_token_type") => {
                    warnings.push(format!(
                        "the provider cannot revoke its {hint}s; this one stays valid until it expires"
                    ))
                }
                Err(e) => warnings.push(format!("revoking the {hint} failed: {e}")),
            }
        }
        (revoked, warnings)
    }

    /// Ends the provider's session for an account whose redirects come back by scheme:
    /// the provider sends the browser to `SCHEME:/logged-out`, which the app receives.
    async fn end_session_by_scheme(
        &self,
        account: &Account,
        endpoint: &url::Url,
        id_token: Option<&Secret>,
        report: &mut Logout,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<EndSession, Error> {
        let Redirect::Scheme { uri } = &account.redirect else {
            return Ok(EndSession::Skipped);
        };
        let Ok(inbox) = self.scheme_inbox(account, uri) else {
            report.warnings.push(
                "the provider session was not ended: its sign-out page returns to the desktop app; sign out there"
                    .into(),
            );
            return Ok(EndSession::Skipped);
        };
        let scheme = uri.split(':').next().unwrap_or_default();
        let landing = format!("{scheme}:/logged-out");
        let state = secret::random(16).map_err(|_| flow::Error::Random)?;
        let mut waiting = inbox.expect(state.expose());
        let next = flow::end_session_url(endpoint, id_token, &account.client_id, &landing, &state);
        let waiting = async {
            tokio::time::timeout(END_SESSION_TIMEOUT, waiting.recv())
                .await
                .ok()
                .flatten()
        };
        let ended = self
            .end_in_browser(account, endpoint, next, waiting, report, progress)
            .await?;
        Ok(ended.map_or_else(|outcome| outcome, |_| EndSession::Ended))
    }

    /// Opens `next`, the provider's sign-out page, in the browser and waits for the
    /// browser to come back (`waiting` resolves with what it brought, or with nothing when
    /// it timed out). Anything but a landing is the outcome to report, with its warning.
    /// A browser that cannot start, or whose command fails, ends the wait at once with
    /// the sign-out link to open instead: nothing waits for a browser that is not there.
    async fn end_in_browser<T>(
        &self,
        account: &Account,
        endpoint: &url::Url,
        next: url::Url,
        waiting: impl Future<Output = Option<T>>,
        report: &mut Logout,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Result<T, EndSession>, Error> {
        let no_browser = |e: &dyn std::fmt::Display, report: &mut Logout| {
            report
                .warnings
                .push(format!("the provider session was not ended: {e}"));
            Err(EndSession::Link(
                flow::end_session_link(endpoint, &account.client_id).to_string(),
            ))
        };
        // The link is not shown for the one-time page: a browser that fails is answered
        // with the provider's own sign-out link, which outlives this wait.
        let mut shown = match self
            .show(next, &http::display_url(endpoint), (true, false), progress)
            .await
        {
            Ok(shown) => shown,
            Err(Error::Browser(e)) => return Ok(no_browser(&e, report)),
            Err(e) => return Err(e),
        };
        progress(Progress::Waiting);
        Ok(tokio::select! {
            landed = waiting => landed.ok_or_else(|| {
                report.warnings.push(NO_END_SESSION_ANSWER.into());
                EndSession::NoAnswer
            }),
            e = shown.interrupted(false, progress) => match e {
                Error::Browser(e) => no_browser(&e, report),
                _ => {
                    report.warnings.push(STOLEN.into());
                    Err(EndSession::NoAnswer)
                }
            },
        })
    }
}
