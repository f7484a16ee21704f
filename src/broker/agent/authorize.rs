//! Who gets an account's token: the kiosk's list, the policy file, or the person, asked
//! through the desktop app; every decision in the audit log.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Agent, ApprovalRequest, ID_TOKEN_GRANT};
use crate::broker::peer::Peer;
use crate::broker::policy::{Decision, Policy};
use crate::broker::protocol::{AccountState, Code, ErrorBody, Event};
use crate::session;

impl Agent {
    /// The policy's answer for this app and account, asking the desktop app when there is
    /// one and the app is unknown. Every decision goes to the audit log.
    pub(super) async fn authorize(&self, account: &str, peer: &Peer) -> Result<(), ErrorBody> {
        let policy_error = |message: String| ErrorBody {
            code: Code::Internal,
            message,
            hint: None,
        };
        if let Some(kiosk) = &self.inner.kiosk {
            let allowed = kiosk.allowed_apps.contains(&peer.app);
            let decision = if allowed {
                Decision::Allow
            } else {
                Decision::Deny
            };
            let _ = self.inner.events.send(Event::Access {
                account: account.to_owned(),
                app: peer.app.clone(),
                decision: if allowed { "allowed" } else { "denied" }.into(),
                time: crate::session::now(),
            });
            return match decision {
                Decision::Allow => Ok(()),
                _ => Err(ErrorBody {
                    code: Code::Denied,
                    message: format!(
                        "{} may not use {account}'s tokens on this seat: it is not in allowed_apps of {}",
                        peer.app,
                        kiosk.file.display()
                    ),
                    hint: Some("ask the center to add the app to the kiosk file".into()),
                }),
            };
        }
        let policy = self.policy().map_err(policy_error)?;
        let mut decision = policy.decide(account, &peer.app);
        let mut unanswered = false;
        if decision == Decision::Unknown {
            let _ = self.inner.events.send(Event::ApprovalNeeded {
                account: account.to_owned(),
                app: peer.app.clone(),
                pid: peer.pid.unwrap_or(0),
            });
            if let Some(approver) = &self.inner.approver {
                let request = ApprovalRequest {
                    account: account.to_owned(),
                    app: peer.app.clone(),
                    pid: peer.pid,
                    through: peer.through.clone(),
                };
                // No answer in time denies this request only: the app will be asked about
                // again, since the person never said no.
                let answered = tokio::time::timeout(self.inner.approval_timeout, approver(request))
                    .await
                    .ok();
                unanswered = answered.is_none();
                decision = answered.unwrap_or(Decision::Deny);
                if answered == Some(Decision::Allow) || answered == Some(Decision::Deny) {
                    self.update_policy(|policy| policy.set(account, &peer.app, decision))
                        .map_err(policy_error)?;
                }
            }
        }
        self.audit(account, peer, decision);
        // An ID-token grant (`NAME#id_token`) is said as such, with the command that gives it.
        let (named, what, flag) = match account.strip_suffix(ID_TOKEN_GRANT) {
            Some(named) => (named, "ID token", " --id-token"),
            None => (account, "tokens", ""),
        };
        let allow = format!("lanyard allow {named} {}{flag}", peer.app);
        match decision {
            Decision::Allow => Ok(()),
            Decision::AllowOnce => self
                .update_policy(|policy| policy.consume_once(account, &peer.app))
                .map_err(policy_error),
            Decision::Deny if unanswered => Err(ErrorBody {
                code: Code::Denied,
                message: format!(
                    "nobody answered Lanyard's prompt to let {} use {named}'s {what} within {} s",
                    peer.app,
                    self.inner.approval_timeout.as_secs()
                ),
                hint: Some(format!(
                    "try again and answer in the Lanyard window, or run `{allow}`"
                )),
            }),
            Decision::Deny => Err(ErrorBody {
                code: Code::Denied,
                message: format!("{} may not use {named}'s {what}", peer.app),
                hint: Some(allow),
            }),
            Decision::Unknown => Err(ErrorBody {
                code: Code::ApprovalRequired,
                message: format!(
                    "{} (pid {}) has not been allowed to use {named}'s {what}",
                    peer.app,
                    peer.pid.unwrap_or(0)
                ),
                hint: Some(allow),
            }),
        }
    }

    /// The policy, read again only when its file has changed.
    /// Changes the policy file: read afresh, changed and written under one lock, so that
    /// answers given at once (a prompt answered while another waited) never write over
    /// each other with what they read before they waited.
    pub fn update_policy(&self, change: impl FnOnce(&mut Policy)) -> Result<(), String> {
        let _one_writer = self
            .inner
            .policy_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut policy = self.inner.policy.load()?;
        change(&mut policy);
        self.inner.policy.save(&policy)
    }

    fn policy(&self) -> Result<Arc<Policy>, String> {
        let modified = std::fs::metadata(&self.inner.policy.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self
            .inner
            .policy_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((when, policy)) = cache.as_ref()
            && *when == modified
            && modified.is_some()
        {
            return Ok(policy.clone());
        }
        let policy = Arc::new(self.inner.policy.load()?);
        *cache = Some((modified, policy.clone()));
        Ok(policy)
    }

    /// One audit line per decision: time, account, app, pid, decision. Never a token.
    pub(super) fn audit(&self, account: &str, peer: &Peer, decision: Decision) {
        let decision = match decision {
            Decision::Allow => "allowed",
            Decision::AllowOnce => "allowed_once",
            Decision::Deny => "denied",
            Decision::Unknown => "approval_required",
        };
        self.note(account, peer, decision);
    }

    /// An audit line and an `access` event: a decision, or `signed_in` / `signed_out`
    /// by the app that asked for it.
    pub(super) fn note(&self, account: &str, peer: &Peer, decision: &str) {
        let Some(path) = &self.inner.audit else {
            return;
        };
        // A repeated allowance is written at most once a minute; other decisions always.
        if decision == "allowed" {
            let mut audited = self.inner.audited.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            if audited
                .get(account)
                .and_then(|apps| apps.get(&peer.app))
                .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60))
            {
                return;
            }
            audited
                .entry(account.to_owned())
                .or_default()
                .insert(peer.app.clone(), now);
        }
        let time = session::now();
        let line = json!({
            "time": time, "account": account, "app": peer.app, "pid": peer.pid, "decision": decision,
        });
        let _ = self.inner.events.send(Event::Access {
            account: account.to_owned(),
            app: peer.app.clone(),
            decision: decision.to_owned(),
            time,
        });
        let mut options = crate::platform::private_file_options();
        options.create(true).append(true);
        // The data directory may not exist yet: the first decision of a fresh install.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = options.open(path).and_then(|mut f| writeln!(f, "{line}")) {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }

    /// Whether `peer` may have `account`'s tokens without asking anyone: what decides
    /// whether answers that are not tokens (the subject) name the person.
    pub fn allowed(&self, account: &str, peer: &Peer) -> bool {
        match &self.inner.kiosk {
            Some(kiosk) => kiosk.allowed_apps.contains(&peer.app),
            None => self
                .policy()
                .is_ok_and(|p| p.decide(account, &peer.app) == Decision::Allow),
        }
    }

    /// `accounts` for `peer`: every account's state, with the subject only where the app
    /// is allowed the account.
    pub fn accounts_for(&self, peer: &Peer) -> Vec<AccountState> {
        let mut accounts = self.accounts();
        for state in &mut accounts {
            if !self.allowed(&state.account, peer) {
                state.subject = None;
            }
        }
        accounts
    }
}
