//! The approval prompts the window shows when an app asks for a token, and the Apps page:
//! what the policy remembers and the activity log.
//!
//! Requests from one app for one account that wait on the same answer share one prompt:
//! ten `kubectl`s started together are asked about once, and the answer serves all ten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::{ActivityEntry, AppRule, Desktop, Failure, UiEvent};
use crate::broker::agent::{ApprovalRequest, Approver, BoxFuture};
use crate::broker::policy::Decision;

/// Prompts waiting for the person, by id.
pub(super) struct Approvals {
    pending: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
    pub(super) events: broadcast::Sender<UiEvent>,
    pub(super) timeout: Duration,
    /// Provider names by account, for the prompt (kept current by `reload`).
    pub(super) providers: Mutex<HashMap<String, String>>,
}

/// A prompt waiting: where its answer goes, what it asks (for a window opened after it
/// was asked), and how many requests wait on it.
struct Pending {
    answer: watch::Sender<Option<Decision>>,
    asked: UiEvent,
    at: std::time::Instant,
    waiting: usize,
}

impl Pending {
    /// Whether this prompt asks about `app` using `account`'s tokens.
    fn asks(&self, account: &str, app: &str) -> bool {
        matches!(&self.asked, UiEvent::Approval { account: a, app: p, .. } if a == account && p == app)
    }
}

/// One request's share of a prompt: the prompt goes when its last request ends however it
/// ends (answered, timed out: the agent drops the future, or the client went away).
struct PromptGuard {
    approvals: Arc<Approvals>,
    id: u64,
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        let mut pending = self
            .approvals
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let last = match pending.get_mut(&self.id) {
            Some(prompt) => {
                prompt.waiting -= 1;
                prompt.waiting == 0
            }
            None => false,
        };
        if last {
            pending.remove(&self.id);
            drop(pending);
            let _ = self.approvals.events.send(UiEvent::ApprovalClosed {
                id: self.id,
                decision: "denied",
            });
        }
    }
}

impl Approvals {
    pub(super) fn new(events: broadcast::Sender<UiEvent>, timeout: Duration) -> Arc<Approvals> {
        Arc::new(Approvals {
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            events,
            timeout,
            providers: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn approver(self: &Arc<Approvals>) -> Approver {
        let approvals = self.clone();
        Arc::new(move |request: ApprovalRequest| -> BoxFuture<Decision> {
            let approvals = approvals.clone();
            Box::pin(async move {
                let (id, mut answer) = approvals.ask(request);
                let _guard = PromptGuard {
                    approvals: approvals.clone(),
                    id,
                };
                loop {
                    if let Some(decision) = *answer.borrow_and_update() {
                        return decision;
                    }
                    // A dropped sender (the app is closing) denies.
                    if answer.changed().await.is_err() {
                        return answer.borrow().unwrap_or(Decision::Deny);
                    }
                }
            })
        })
    }

    /// Puts `request` to the person: joins the prompt already asking about its app and
    /// account (and says how many now wait on it), or shows a new one. Its id, and where
    /// its answer comes.
    fn ask(&self, request: ApprovalRequest) -> (u64, watch::Receiver<Option<Decision>>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, prompt)) = pending
            .iter_mut()
            .find(|(_, p)| p.asks(&request.account, &request.app))
        {
            prompt.waiting += 1;
            let _ = self.events.send(UiEvent::ApprovalWaiting {
                id: *id,
                waiting: prompt.waiting,
            });
            return (*id, prompt.answer.subscribe());
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = watch::channel(None);
        let provider = self
            .providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&request.account)
            .cloned()
            .unwrap_or_else(|| request.account.clone());
        let asked = UiEvent::Approval {
            id,
            account: request.account,
            provider,
            app: request.app,
            pid: request.pid,
            through: request.through,
            timeout_secs: self.timeout.as_secs(),
            waiting: 1,
        };
        let prompt = Pending {
            answer: tx,
            asked: asked.clone(),
            at: std::time::Instant::now(),
            waiting: 1,
        };
        pending.insert(id, prompt);
        let _ = self.events.send(asked);
        (id, rx)
    }
}

impl Desktop {
    /// Answers prompt `id`: `allow` (always), `once` or `deny`. False if it is gone.
    pub fn answer(&self, id: u64, decision: &str) -> Result<bool, Failure> {
        let (decision, shown) = match decision {
            "allow" => (Decision::Allow, "allowed"),
            "once" => (Decision::AllowOnce, "allowed_once"),
            "deny" => (Decision::Deny, "denied"),
            other => {
                return Err(Failure::new(format!(
                    "unknown answer `{other}`: allow, once or deny"
                )));
            }
        };
        let Some(pending) = self
            .inner
            .approvals
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
        else {
            return Ok(false);
        };
        let _ = self.inner.approvals.events.send(UiEvent::ApprovalClosed {
            id,
            decision: shown,
        });
        // Every request waiting on the prompt gets the answer.
        Ok(pending.answer.send(Some(decision)).is_ok())
    }

    /// The prompts still waiting, oldest first, each with the seconds it has left: what a
    /// window opened after they were asked shows.
    pub fn pending_approvals(&self) -> Vec<UiEvent> {
        let pending = self
            .inner
            .approvals
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut prompts: Vec<(u64, UiEvent)> = pending
            .iter()
            .map(|(id, p)| {
                let mut asked = p.asked.clone();
                if let UiEvent::Approval {
                    timeout_secs,
                    waiting,
                    ..
                } = &mut asked
                {
                    *timeout_secs = timeout_secs.saturating_sub(p.at.elapsed().as_secs());
                    *waiting = p.waiting;
                }
                (*id, asked)
            })
            .collect();
        prompts.sort_by_key(|(id, _)| *id);
        prompts.into_iter().map(|(_, asked)| asked).collect()
    }

    /// Every app the policy names.
    pub fn apps(&self) -> Result<Vec<AppRule>, Failure> {
        let policy = self
            .inner
            .agent
            .policy_file()
            .load()
            .map_err(Failure::new)?;
        let mut rules = Vec::new();
        for (account, r) in &policy.accounts {
            for (decision, apps) in [
                ("allowed", &r.always),
                ("allowed_once", &r.once),
                ("denied", &r.denied),
            ] {
                rules.extend(apps.iter().map(|app| AppRule {
                    account: account.clone(),
                    app: app.clone(),
                    decision,
                }));
            }
        }
        Ok(rules)
    }

    /// Forgets what the policy says of `app` for `account`: it will be asked again.
    pub fn revoke(&self, account: &str, app: &str) -> Result<Vec<AppRule>, Failure> {
        self.inner
            .agent
            .update_policy(|policy| policy.set(account, app, Decision::Unknown))
            .map_err(Failure::new)?;
        self.apps()
    }

    /// The newest `limit` lines of the audit log, newest first.
    pub fn activity(&self, limit: usize) -> Vec<ActivityEntry> {
        let Some(path) = self.inner.agent.audit_path() else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|line| serde_json::from_str(line).ok())
            .take(limit)
            .collect()
    }
}
