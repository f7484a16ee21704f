//! Sign-in and sign-out through the agent: one sign-in at a time per account, and the
//! cached tokens forgotten when the account changes hands.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Agent, body};
use crate::Error;
use crate::broker::peer::Peer;
use crate::broker::protocol::{ErrorBody, Event};
use crate::session::{self, LoginOptions};

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
        let _one = self.one_sign_in(account)?;
        let record = self.lanyard().login(account, options, progress).await?;
        self.signed_in(account);
        Ok(record)
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
        let _one = self.one_sign_in(account)?;
        let record = self
            .lanyard()
            .login_device(account, options, progress)
            .await?;
        self.signed_in(account);
        Ok(record)
    }

    /// One sign-in of an account at a time, however it was asked for.
    fn one_sign_in(&self, account: &str) -> Result<SignInUnderWay, Error> {
        let mut under_way = self
            .inner
            .signing_in
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !under_way.insert(account.to_owned()) {
            return Err(Error::SignInUnderWay {
                account: account.to_owned(),
            });
        }
        Ok(SignInUnderWay {
            agent: self.clone(),
            account: account.to_owned(),
        })
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
