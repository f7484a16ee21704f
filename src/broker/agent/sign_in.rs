//! Sign-in and sign-out through the agent: one sign-in at a time per account, and the
//! cached tokens forgotten when the account changes hands.
//!
//! A tool that can wait for a sign-in (`token` with `sign_in`) and finds the account
//! needing one brings the person back: the first such request starts a sign-in in the
//! browser, detached from it, and every request for the account waits on that one, or
//! on a person's `lanyard login` under way. A sign-in that fails is everyone's outcome,
//! and for `session::TOOL_SIGN_IN_BACKOFF` after it tools get `sign_in_needed` at once.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Agent, body};
use crate::Error;
use crate::broker::peer::Peer;
use crate::broker::protocol::{Code, ErrorBody, Event};
use crate::session::{self, LoginOptions, TOOL_SIGN_IN_BACKOFF};

/// How long a sign-in started for tools waits for the browser.
const TOOL_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// A sign-in under way, watched: `None` until it ends, then what it came to. The
/// sender's end going away without a value means it was dropped (cancelled).
pub(super) type Outcome = watch::Receiver<Option<Result<(), ErrorBody>>>;

/// What a `login` request asks for.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub open_browser: bool,
    pub prompt: Option<String>,
    /// The device flow instead of the browser.
    pub device: bool,
    pub timeout: Duration,
    /// The sign-in may come back as another person than the account's.
    pub as_new_user: bool,
}

/// An account's sign-in under way; the next may start once this is dropped.
struct SignInUnderWay {
    agent: Agent,
    account: String,
    /// Tells those waiting on it what it came to.
    outcome: watch::Sender<Option<Result<(), ErrorBody>>>,
}

impl SignInUnderWay {
    fn ended(&self, outcome: &Result<crate::store::Record, Error>) {
        self.outcome
            .send_replace(Some(outcome.as_ref().map(drop).map_err(body)));
    }
}

impl Drop for SignInUnderWay {
    fn drop(&mut self) {
        self.agent
            .inner
            .signing_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.account);
    }
}

impl Agent {
    /// `login` over the socket: any app of the user's may start a sign-in, since the
    /// person must finish it; the answer names the subject only to an app allowed the
    /// account. The sign-in is audited under the app that asked.
    pub async fn login(
        &self,
        account: &str,
        request: &LoginRequest,
        peer: &Peer,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<Value, ErrorBody> {
        self.not_on_a_kiosk("sign-in")?;
        self.known(account, peer)?;
        let options = LoginOptions {
            open_browser: request.open_browser,
            timeout: request.timeout,
            prompt: request.prompt.clone(),
            as_new_user: request.as_new_user,
            link_shown: true,
        };
        let outcome = if request.device {
            let device = self.login_device_with_options(account, &options, progress);
            tokio::time::timeout(request.timeout, device)
                .await
                .unwrap_or_else(|_| Err(crate::flow::Error::DeviceExpired.into()))
        } else {
            self.login_with_options(account, &options, progress).await
        };
        let record = outcome.map_err(|e| body(&e))?;
        self.note(account, peer, "signed_in");
        let subject = self.allowed(account, peer).then_some(record.subject);
        Ok(json!({ "account": record.account, "subject": subject }))
    }

    /// Signs in through the browser, reporting progress; the agent's cached tokens for the
    /// account are replaced and subscribers told. Dropping the future cancels the sign-in
    /// and stores nothing.
    pub async fn login_with(
        &self,
        account: &str,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<crate::store::Record, Error> {
        self.login_with_options(account, &LoginOptions::default(), progress)
            .await
    }

    async fn login_with_options(
        &self,
        account: &str,
        options: &LoginOptions,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<crate::store::Record, Error> {
        let one = self.one_sign_in(account)?;
        // A person signing in ends the tools' back-off.
        self.failed_sign_ins().remove(account);
        let outcome = self.lanyard().login(account, options, progress).await;
        one.ended(&outcome);
        let record = outcome?;
        self.signed_in(account);
        Ok(record)
    }

    /// Waits for the account to be signed in again, for a tool that can wait
    /// (`token` with `sign_in`): joins the sign-in under way, or starts one in the
    /// browser, detached from the tool (it goes on if the tool goes away, for the others
    /// waiting). Fails at once with `sign_in_needed` while the back-off after a failed
    /// one lasts.
    pub(super) async fn bring_back(
        &self,
        account: &str,
        peer: &Peer,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<(), ErrorBody> {
        let mut outcome = self.join_or_start(account, peer)?;
        progress(session::Progress::Waiting);
        loop {
            if let Some(ended) = outcome.borrow_and_update().clone() {
                return ended;
            }
            if outcome.changed().await.is_err() {
                return outcome.borrow().clone().unwrap_or_else(|| {
                    Err(ErrorBody {
                        code: Code::SignInNeeded,
                        message: format!("{account}: sign-in needed: the sign-in was cancelled"),
                        hint: Some(format!("lanyard login {account}")),
                    })
                });
            }
        }
    }

    fn join_or_start(&self, account: &str, peer: &Peer) -> Result<Outcome, ErrorBody> {
        let mut under_way = self.under_way();
        if let Some(watching) = under_way.get(account) {
            return Ok(watching.clone());
        }
        if let Some((at, why)) = self.failed_sign_ins().get(account)
            && at.elapsed() < TOOL_SIGN_IN_BACKOFF
        {
            return Err(ErrorBody {
                code: Code::SignInNeeded,
                message: format!(
                    "{account}: sign-in needed; the sign-in started {} s ago did not finish ({why}), and no other starts for a tool until {} s have passed",
                    at.elapsed().as_secs(),
                    TOOL_SIGN_IN_BACKOFF.as_secs()
                ),
                hint: Some(format!("lanyard login {account}")),
            });
        }
        let one = self.new_sign_in(&mut under_way, account);
        drop(under_way);
        let watching = one.outcome.subscribe();
        let (agent, account, peer) = (self.clone(), account.to_owned(), peer.clone());
        tokio::spawn(async move {
            let options = LoginOptions {
                timeout: TOOL_SIGN_IN_TIMEOUT,
                // Nobody is shown a link: a browser that cannot start ends it at once.
                link_shown: false,
                ..LoginOptions::default()
            };
            tracing::info!(account = %account, app = %peer.app, "signing in again for a tool that waits");
            let outcome = agent.lanyard().login(&account, &options, &|_| {}).await;
            match &outcome {
                Ok(_) => {
                    agent.signed_in(&account);
                    agent.note(&account, &peer, "signed_in");
                }
                Err(e) => {
                    let now = tokio::time::Instant::now();
                    agent
                        .failed_sign_ins()
                        .insert(account.clone(), (now, e.to_string()));
                }
            }
            one.ended(&outcome);
        });
        Ok(watching)
    }

    fn under_way(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Outcome>> {
        self.inner
            .signing_in
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn failed_sign_ins(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (tokio::time::Instant, String)>>
    {
        self.inner
            .failed_sign_ins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Signs in with the device flow (scan-to-sign-in), reporting the code to show.
    pub async fn login_device_with(
        &self,
        account: &str,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<crate::store::Record, Error> {
        self.login_device_with_options(account, &LoginOptions::default(), progress)
            .await
    }

    async fn login_device_with_options(
        &self,
        account: &str,
        options: &LoginOptions,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<crate::store::Record, Error> {
        let one = self.one_sign_in(account)?;
        self.failed_sign_ins().remove(account);
        let outcome = self
            .lanyard()
            .login_device(account, options, progress)
            .await;
        one.ended(&outcome);
        let record = outcome?;
        self.signed_in(account);
        Ok(record)
    }

    /// One sign-in of an account at a time, however it was asked for.
    fn one_sign_in(&self, account: &str) -> Result<SignInUnderWay, Error> {
        let mut under_way = self.under_way();
        if under_way.contains_key(account) {
            return Err(Error::SignInUnderWay {
                account: account.to_owned(),
            });
        }
        Ok(self.new_sign_in(&mut under_way, account))
    }

    /// Marks a sign-in of `account` under way (`under_way` is the locked map, which has
    /// none for it).
    fn new_sign_in(
        &self,
        under_way: &mut std::collections::HashMap<String, Outcome>,
        account: &str,
    ) -> SignInUnderWay {
        let (outcome, watching) = watch::channel(None);
        under_way.insert(account.to_owned(), watching);
        SignInUnderWay {
            agent: self.clone(),
            account: account.to_owned(),
            outcome,
        }
    }

    fn signed_in(&self, account: &str) {
        self.forget(account);
        let _ = self.inner.events.send(Event::SignedIn {
            account: account.to_owned(),
        });
    }

    /// `logout` over the socket: any app of the user's may sign an account out (any
    /// program running as the user can delete the keychain item as well); it is audited
    /// under the app that asked.
    pub async fn logout(
        &self,
        account: &str,
        (local, open_browser): (bool, bool),
        peer: &Peer,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<Value, ErrorBody> {
        self.not_on_a_kiosk("sign-out")?;
        let report = self
            .logout_with_options(account, local, open_browser, progress)
            .await
            .map_err(|e| body(&e))?;
        self.note(account, peer, "signed_out");
        let link = match &report.end_session {
            session::EndSession::Link(url) => Some(url.clone()),
            _ => None,
        };
        Ok(json!({
            "was_signed_in": report.was_signed_in,
            "revoked": report.revoked,
            "end_session": report.end_session.as_str(),
            "end_session_url": link,
            "warnings": report.warnings,
        }))
    }

    /// Signs out (revoke, forget, end the provider session unless `local`), reporting the
    /// browser's progress for the provider's sign-out page.
    pub async fn logout_with(
        &self,
        account: &str,
        local: bool,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<session::Logout, Error> {
        self.logout_with_options(account, local, true, progress)
            .await
    }

    async fn logout_with_options(
        &self,
        account: &str,
        local: bool,
        open_browser: bool,
        progress: &(dyn Fn(session::Progress<'_>) + Sync),
    ) -> Result<session::Logout, Error> {
        let lanyard = self.lanyard();
        lanyard.config().account(account)?;
        // Forget first: no app gets the token once the person has asked to sign out.
        self.forget(account);
        let report = lanyard.logout(account, local, open_browser, progress).await;
        self.forget(account);
        let _ = self.inner.events.send(Event::SignedOut {
            account: account.to_owned(),
        });
        report
    }
}
