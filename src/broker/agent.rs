//! The agent's state: accounts, cached access tokens, the approval policy, subscribers.
//!
//! [`Agent`] is a cheap `Clone` handle. A token request is served from memory when the
//! cached token is fresh enough; otherwise it takes the account's single-flight lock, looks
//! at the cache again (another request may just have refreshed it) and only then asks
//! `session` — so any number of concurrent requests cause at most one refresh at the
//! provider. After each new token a task refreshes it ahead of expiry. Refresh tokens
//! never leave this module's callee, `session`; responses carry access tokens only.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::flight::{Cached, JUST_REFRESHED, Served, Slot, backoff, refresh_delay};
use super::policy::{Decision, PolicyFile};
use super::protocol::{AccountState, Code, ErrorBody, Event, Identity, TokenReply};
use crate::flow::Target;
use crate::secret::Secret;
use crate::session::{self, Lanyard, LoginOptions};
use crate::store::Status;
use crate::{Error, Kind};

/// Narrower tokens (down-scoping) cached per account; more, and they are dropped.
const MAX_NARROWER: usize = 16;
/// Refresh this long before the access token expires.
const REFRESH_AHEAD: u64 = 120;
/// How long the desktop app's prompt may take before the request is denied.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(60);

use super::peer::Clis;
pub use super::peer::Peer;

/// What the desktop app is asked when an unknown app wants an account's token.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    pub account: String,
    pub app: String,
    pub pid: Option<i32>,
    /// The `lanyard` command line the app asked through, if it did.
    pub through: Option<String>,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The hook through which the desktop app asks the person. Returns `Allow` (always),
/// `AllowOnce`, `Deny`, or `Unknown` when nobody answered.
pub type Approver = Arc<dyn Fn(ApprovalRequest) -> BoxFuture<Decision> + Send + Sync>;

/// A kiosk seat's rules, from the managed kiosk file: which apps get tokens (no one is
/// asked), which may end the seat session, and what ending it does.
#[derive(Clone)]
pub struct KioskRules {
    /// The kiosk file, named in refusals.
    pub file: PathBuf,
    pub allowed_apps: Vec<String>,
    pub session_apps: Vec<String>,
    /// Ends the seat session; answers whether anyone was signed in.
    pub end_session: Arc<dyn Fn() -> BoxFuture<bool> + Send + Sync>,
}

#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced whole when the accounts file changes (the desktop app adds an account).
    // A std lock: held only to clone the `Arc`, never across an await.
    lanyard: std::sync::RwLock<Arc<Lanyard>>,
    policy: PolicyFile,
    /// The policy as last read, with the file's modification time: the file is read again
    /// only when it changes (`lanyard allow` writes it), not on every request.
    policy_cache: Mutex<Option<(Option<std::time::SystemTime>, Arc<super::policy::Policy>)>>,
    /// When each (account, app, decision) was last written to the audit log: the log
    /// records grants over time, not every one of thousands of requests a second.
    /// Keyed by account, then app; only allowances are deduplicated.
    audited: Mutex<HashMap<String, HashMap<String, tokio::time::Instant>>>,
    audit: Option<PathBuf>,
    events: broadcast::Sender<Event>,
    approver: Option<Approver>,
    approval_timeout: Duration,
    kiosk: Option<KioskRules>,
    /// The `lanyard` command lines, which are named by whoever ran them.
    clis: Clis,
    /// Accounts with a sign-in under way (one at a time each).
    signing_in: Mutex<std::collections::HashSet<String>>,
    /// Per account, one slot per target: the sign-in's own token and any narrower ones.
    // A std mutex: held only to look up or insert a slot, never across an await.
    slots: Mutex<HashMap<String, HashMap<Target, Arc<Slot>>>>,
}

impl Agent {
    pub fn new(lanyard: Lanyard, data_dir: Option<PathBuf>, approver: Option<Approver>) -> Agent {
        let (events, _) = broadcast::channel(256);
        let dir = data_dir.unwrap_or_else(std::env::temp_dir);
        Agent {
            inner: Arc::new(Inner {
                lanyard: std::sync::RwLock::new(Arc::new(lanyard)),
                policy: PolicyFile::new(&dir),
                policy_cache: Mutex::new(None),
                audited: Mutex::new(HashMap::new()),
                audit: Some(dir.join("audit.log")),
                events,
                approver,
                approval_timeout: APPROVAL_TIMEOUT,
                kiosk: None,
                clis: Clis::detect(),
                signing_in: Mutex::new(std::collections::HashSet::new()),
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A kiosk seat's agent: the kiosk file's rules replace the policy file and the
    /// prompts, and nothing is audited to disk. For a new agent, before it is cloned.
    pub fn with_kiosk(mut self, rules: KioskRules) -> Agent {
        let inner =
            Arc::get_mut(&mut self.inner).expect("set kiosk rules before sharing the agent");
        inner.kiosk = Some(rules);
        inner.audit = None;
        self
    }

    /// Kiosk only: ends the seat session for an app the kiosk file lets do so.
    pub async fn end_session(&self, peer: &Peer) -> Result<Value, ErrorBody> {
        let Some(kiosk) = &self.inner.kiosk else {
            return Err(ErrorBody {
                code: Code::NotSupported,
                message: "end_session ends a kiosk seat's session; this Lanyard is not a kiosk"
                    .into(),
                hint: Some("to sign out of an account, use `logout`".into()),
            });
        };
        if !kiosk.session_apps.contains(&peer.app) && !kiosk.allowed_apps.contains(&peer.app) {
            return Err(ErrorBody {
                code: Code::Denied,
                message: format!(
                    "{} may not end the seat session: it is in neither session_apps nor allowed_apps of {}",
                    peer.app,
                    kiosk.file.display()
                ),
                hint: None,
            });
        }
        tracing::info!(app = %peer.app, "end_session requested");
        let ended = (kiosk.end_session)().await;
        Ok(json!({ "ended": ended }))
    }

    /// On a kiosk, sign-in and sign-out belong to the seat's screen.
    fn not_on_a_kiosk(&self, what: &str) -> Result<(), ErrorBody> {
        match &self.inner.kiosk {
            Some(_) => Err(ErrorBody {
                code: Code::NotSupported,
                message: format!("on a kiosk seat, {what} happens at the seat's screen"),
                hint: Some("end the seat session with `end_session`".into()),
            }),
            None => Ok(()),
        }
    }

    /// How long the approver may take before the request is denied [default:
    /// [`APPROVAL_TIMEOUT`]]. For a new agent, before it is cloned.
    pub fn with_approval_timeout(mut self, timeout: Duration) -> Agent {
        Arc::get_mut(&mut self.inner)
            .expect("set the approval timeout before sharing the agent")
            .approval_timeout = timeout;
        self
    }

    /// Recognise these `lanyard` command lines too (an embedder's own copy), besides the
    /// ones installed with this program. For a new agent, before it is cloned.
    pub fn with_clis(mut self, paths: impl IntoIterator<Item = PathBuf>) -> Agent {
        let inner = Arc::get_mut(&mut self.inner).expect("set the CLIs before sharing the agent");
        inner.clis = inner.clis.clone().with(paths);
        self
    }

    /// The `lanyard` command lines this agent looks through to name their callers.
    pub fn clis(&self) -> &Clis {
        &self.inner.clis
    }

    pub fn approval_timeout(&self) -> Duration {
        self.inner.approval_timeout
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The session the agent serves from.
    pub fn lanyard(&self) -> Arc<Lanyard> {
        self.inner
            .lanyard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves from `lanyard` from now on: after the accounts file changed. Cached tokens
    /// of accounts that are gone or whose settings changed are dropped.
    pub fn reload(&self, lanyard: Lanyard) {
        let old = std::mem::replace(
            &mut *self
                .inner
                .lanyard
                .write()
                .unwrap_or_else(|e| e.into_inner()),
            Arc::new(lanyard),
        );
        let new = self.lanyard();
        for (name, account) in &old.config().accounts {
            if new.config().accounts.get(name) != Some(account) {
                self.forget(name);
            }
        }
    }

    /// The directory holding the policy and the audit log.
    pub fn policy_file(&self) -> &PolicyFile {
        &self.inner.policy
    }

    /// The audit log's path, if there is one.
    pub fn audit_path(&self) -> Option<&std::path::Path> {
        self.inner.audit.as_deref()
    }

    /// Loads every signed-in account's token (from the keychain) and schedules its refresh,
    /// so that the first request after a restart is served from memory.
    pub async fn warm(&self) {
        let names: Vec<String> = self
            .lanyard()
            .status()
            .into_iter()
            .filter(|(_, r)| r.as_ref().is_some_and(|r| r.status == Status::SignedIn))
            .map(|(a, _)| a.name.clone())
            .collect();
        for name in names {
            if let Err(e) = self.fetch(&name, 0, &Target::default()).await {
                tracing::info!(account = %name, error = %e.message, "not loaded at start");
            }
        }
    }

    pub fn accounts(&self) -> Vec<AccountState> {
        self.lanyard()
            .status()
            .into_iter()
            .map(|(account, record)| {
                let (status, subject, expires_at) = match &record {
                    None => ("signed_out", None, None),
                    Some(r) => (
                        match r.status {
                            Status::SignedIn => "signed_in",
                            Status::SignInNeeded { .. } => "sign_in_needed",
                        },
                        Some(r.subject.clone()),
                        r.access_token_expires_at,
                    ),
                };
                AccountState {
                    account: account.name.clone(),
                    issuer: account.issuer.clone(),
                    status: status.into(),
                    subject,
                    expires_at,
                }
            })
            .collect()
    }

    /// A token for `target`: the sign-in's own, or a narrower one (down-scoping).
    pub async fn token(
        &self,
        account: &str,
        min_valid: u64,
        target: &Target,
        peer: &Peer,
    ) -> Result<TokenReply, ErrorBody> {
        self.known(account)?;
        self.authorize(account, peer).await?;
        let served = self.fetch(account, min_valid, &target.normalized()).await?;
        Ok(TokenReply {
            access_token: served.cached.token.expose().to_owned(),
            token_type: "Bearer".into(),
            expires_at: served.cached.expires_at,
            warning: served.warning,
        })
    }

    /// The account's own access token for the person at the desktop app ("Copy access
    /// token"): no app asks, so no policy applies; the audit log still records it.
    pub async fn owner_token(&self, account: &str) -> Result<(Secret, Option<u64>), ErrorBody> {
        self.known(account)?;
        let cached = self.fetch(account, 60, &Target::default()).await?.cached;
        let owner = Peer {
            user: crate::platform::own_user(),
            pid: Some(std::process::id() as i32),
            app: "(copied in the Lanyard app)".into(),
            through: None,
        };
        self.audit(account, &owner, Decision::AllowOnce);
        Ok((cached.token, cached.expires_at))
    }

    /// The account's issuer, for oidc-agent's answers.
    pub fn issuer(&self, account: &str) -> Option<String> {
        self.lanyard()
            .config()
            .account(account)
            .ok()
            .map(|a| a.issuer.clone())
    }

    /// The ID token, only to an app allowed it explicitly (`lanyard allow NAME APP
    /// --id-token`): an ID token is the person's identity, not an API credential.
    pub async fn id_token(&self, account: &str, peer: &Peer) -> Result<String, ErrorBody> {
        self.known(account)?;
        self.authorize(&id_token_grant(account), peer).await?;
        let token = self
            .lanyard()
            .id_token(account)
            .await
            .map_err(|e| body(&e))?;
        Ok(token.expose().to_owned())
    }

    pub async fn identity(&self, account: &str, peer: &Peer) -> Result<Identity, ErrorBody> {
        self.known(account)?;
        self.authorize(account, peer).await?;
        let record = self.lanyard().whoami(account).map_err(|e| body(&e))?;
        let mut identity = record.claims();
        identity.insert("account".into(), json!(record.account));
        identity.insert("issuer".into(), json!(record.issuer));
        Ok(identity)
    }

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
        self.known(account)?;
        let outcome = if request.device {
            tokio::time::timeout(request.timeout, self.login_device_with(account, progress))
                .await
                .unwrap_or_else(|_| Err(crate::flow::Error::DeviceExpired.into()))
        } else {
            let options = LoginOptions {
                open_browser: request.open_browser,
                timeout: request.timeout,
                prompt: request.prompt.clone(),
            };
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
        let options = LoginOptions {
            open_browser: true,
            timeout: Duration::from_secs(300),
            prompt: None,
        };
        self.login_with_options(account, &options, progress).await
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
        let _one = self.one_sign_in(account)?;
        let record = self.lanyard().login_device(account, progress).await?;
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
        let end_session = match report.end_session {
            session::EndSession::Skipped => "skipped",
            session::EndSession::NotOffered => "not_offered",
            session::EndSession::Ended => "ended",
            session::EndSession::NoAnswer => "no_answer",
        };
        Ok(json!({
            "was_signed_in": report.was_signed_in,
            "revoked": report.revoked,
            "end_session": end_session,
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

    fn known(&self, account: &str) -> Result<(), ErrorBody> {
        self.lanyard()
            .config()
            .account(account)
            .map(|_| ())
            .map_err(|e| ErrorBody {
                code: Code::UnknownAccount,
                message: e.to_string(),
                hint: None,
            })
    }

    /// The policy's answer for this app and account, asking the desktop app when there is
    /// one and the app is unknown. Every decision goes to the audit log.
    async fn authorize(&self, account: &str, peer: &Peer) -> Result<(), ErrorBody> {
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
                    let mut policy = (*policy).clone();
                    policy.set(account, &peer.app, decision);
                    self.inner.policy.save(&policy).map_err(policy_error)?;
                }
            }
        }
        self.audit(account, peer, decision);
        match decision {
            Decision::Allow => Ok(()),
            Decision::AllowOnce => {
                let mut policy = (*policy).clone();
                policy.consume_once(account, &peer.app);
                self.inner.policy.save(&policy).map_err(policy_error)
            }
            Decision::Deny if unanswered => Err(ErrorBody {
                code: Code::Denied,
                message: format!(
                    "nobody answered Lanyard's prompt to let {} use {account}'s tokens within {} s",
                    peer.app,
                    self.inner.approval_timeout.as_secs()
                ),
                hint: Some(format!(
                    "try again and answer in the Lanyard window, or run `lanyard allow {account} {}`",
                    peer.app
                )),
            }),
            Decision::Deny => Err(ErrorBody {
                code: Code::Denied,
                message: format!("{} may not use {account}'s tokens", peer.app),
                hint: Some(format!("lanyard allow {account} {}", peer.app)),
            }),
            Decision::Unknown => Err(ErrorBody {
                code: Code::ApprovalRequired,
                message: format!(
                    "{} (pid {}) has not been allowed to use {account}'s tokens",
                    peer.app,
                    peer.pid.unwrap_or(0)
                ),
                hint: Some(format!("lanyard allow {account} {}", peer.app)),
            }),
        }
    }

    /// The policy, read again only when its file has changed.
    fn policy(&self) -> Result<Arc<super::policy::Policy>, String> {
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
    fn audit(&self, account: &str, peer: &Peer, decision: Decision) {
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
    fn note(&self, account: &str, peer: &Peer, decision: &str) {
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
    fn forget(&self, account: &str) {
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
    /// get it too until the back-off ends (see [`super::flight`]).
    async fn fetch(
        &self,
        account: &str,
        min_valid: u64,
        target: &Target,
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
                let answer = slot.failed(error, transient);
                if e.kind() == Kind::SignInNeeded {
                    // The tokens held here go with the sign-in: no tool gets them now.
                    // Until a sign-in, `session` answers so without asking the provider.
                    self.forget(account);
                    let _ = self.inner.events.send(Event::SignInNeeded {
                        account: account.to_owned(),
                        reason: e.to_string(),
                    });
                }
                answer
            }
        }
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
                let failed = match agent.fetch(&account, ahead + 1, &own).await {
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

/// What a `login` request asks for.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub open_browser: bool,
    pub prompt: Option<String>,
    /// The device flow instead of the browser.
    pub device: bool,
    pub timeout: Duration,
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

/// The policy entry under which ID tokens are granted, apart from access tokens.
pub fn id_token_grant(account: &str) -> String {
    format!("{account}#id_token")
}

/// The wire error for a library error.
pub fn body(e: &Error) -> ErrorBody {
    let code = match (e, e.kind()) {
        (Error::NoAccessToken { .. }, _) => Code::NoAccessToken,
        (Error::SignInUnderWay { .. }, _) => Code::Busy,
        (Error::Config(crate::config::Error::UnknownAccount { .. }), _) => Code::UnknownAccount,
        (_, Kind::SignInNeeded) => Code::SignInNeeded,
        (_, Kind::Provider | Kind::Incomplete) => Code::ProviderError,
        (_, Kind::Rejected) => Code::Rejected,
        (_, Kind::Keychain) => Code::KeychainUnavailable,
        (_, Kind::Config) => Code::BadRequest,
        (_, Kind::Denied) => Code::Denied,
        (_, Kind::Other) => Code::Internal,
    };
    let hint = match code {
        Code::SignInNeeded => e.to_string().split('`').nth(1).map(str::to_owned),
        _ => None,
    };
    ErrorBody {
        code,
        message: e.to_string(),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> Agent {
        let config = crate::config::Config::parse(std::path::Path::new("/c.toml"), "").unwrap();
        let lanyard = Lanyard::new(config, crate::store::Records::new(None)).unwrap();
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
            };
            agent.slot("work", &target);
            let slots = agent.inner.slots.lock().unwrap();
            assert!(slots["work"].len() <= MAX_NARROWER + 2, "{i}");
        }
        assert!(Arc::ptr_eq(&own, &agent.slot("work", &Target::default())));
    }
}
