//! The agent's state: accounts, cached access tokens, the approval policy, subscribers.
//!
//! [`Agent`] is a cheap `Clone` handle. A token request is served from memory when the
//! cached token is fresh enough; otherwise it takes the account's single-flight lock, looks
//! at the cache again (another request may just have refreshed it) and only then asks
//! `session` — so any number of concurrent requests cause at most one refresh at the
//! provider. After each new token a task refreshes it ahead of expiry. Refresh tokens
//! never leave this module's callee, `session`; responses carry access tokens only.
//!
//! `tokens` serves and refreshes tokens, `authorize` decides who gets them (kiosk list,
//! policy, prompt, audit), `sign_in` runs sign-in and sign-out through the agent.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::flight::Slot;
use super::policy::{Decision, PolicyFile};
use super::protocol::{AccountState, Code, ErrorBody, Event, IdTokenReply, Identity, TokenReply};
use crate::flow::Target;
use crate::session::Lanyard;
use crate::store::Status;
use crate::{Error, Kind};

/// Narrower tokens (down-scoping) cached per account; more, and they are dropped.
const MAX_NARROWER: usize = 16;
/// Refresh this long before the access token expires.
const REFRESH_AHEAD: u64 = 120;
/// How long the agent waits after the last of its rare work (a refresh, a sign-in, a
/// first grant) before it hands back the pages of code that work ran.
const QUIET: Duration = Duration::from_secs(2);
/// How long the desktop app's prompt may take before the request is denied.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(60);

use super::peer::Clis;
pub use super::peer::Peer;

mod authorize;
mod sign_in;
mod tokens;

pub use sign_in::LoginRequest;

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
    /// Held while the policy file is read, changed and written (`update_policy`).
    policy_writer: Mutex<()>,
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
    /// Accounts with a sign-in under way (one at a time each), and what it came to, for
    /// the tools that wait on it (`sign_in::SignInUnderWay`).
    signing_in: Mutex<HashMap<String, sign_in::Outcome>>,
    /// When each account's last sign-in for tools failed, and why: none starts again for
    /// tools until `session::TOOL_SIGN_IN_BACKOFF` has passed (a person's
    /// `lanyard login` may).
    failed_sign_ins: Mutex<HashMap<String, (tokio::time::Instant, String)>>,
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
                // The agent lives long: it keeps tokens in memory between refreshes.
                lanyard: std::sync::RwLock::new(Arc::new(lanyard.long_running())),
                policy: PolicyFile::new(&dir),
                policy_cache: Mutex::new(None),
                policy_writer: Mutex::new(()),
                audited: Mutex::new(HashMap::new()),
                audit: Some(dir.join("audit.log")),
                events,
                approver,
                approval_timeout: APPROVAL_TIMEOUT,
                kiosk: None,
                clis: Clis::detect(),
                signing_in: Mutex::new(HashMap::new()),
                failed_sign_ins: Mutex::new(HashMap::new()),
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
            Arc::new(lanyard.long_running()),
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
            if let Err(e) = self.fetch(&name, 0, &Target::default(), None).await {
                tracing::info!(account = %name, error = %e.message, "not loaded at start");
            }
        }
    }

    /// Runs for the agent's life: each time the agent has been quiet for [`QUIET`] after
    /// its start or after rare work (every [`Event`] marks some), hands back the pages of
    /// code it ran and free heap ([`platform::release_memory`](crate::platform::release_memory)).
    /// Serving a cached token runs little code; starting, the keychain and a refresh run
    /// much, once an hour or less. Call it once start-up is done.
    pub async fn release_memory_when_quiet(&self) {
        use broadcast::error::RecvError;
        let mut events = self.subscribe();
        loop {
            // Quiet: no event for `QUIET`.
            loop {
                match tokio::time::timeout(QUIET, events.recv()).await {
                    Err(_) => break,
                    Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                    Ok(Err(RecvError::Closed)) => return,
                }
            }
            match crate::platform::release_memory() {
                Ok(bytes) => tracing::debug!(kib = bytes / 1024, "memory released"),
                Err(e) => {
                    tracing::debug!(error = %e, "memory cannot be released");
                    return;
                }
            }
            // Until the next rare work.
            if let Err(RecvError::Closed) = events.recv().await {
                return;
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
        self.known(account, peer)?;
        self.authorize(&id_token_grant(account), peer).await?;
        let token = self
            .lanyard()
            .id_token(account)
            .await
            .map_err(|e| body(&e))?;
        Ok(token.expose().to_owned())
    }

    /// The ID token valid for at least `min_valid` more seconds (`id_token`), under the
    /// same grant as [`Agent::id_token`].
    pub async fn fresh_id_token(
        &self,
        account: &str,
        min_valid: u64,
        peer: &Peer,
    ) -> Result<IdTokenReply, ErrorBody> {
        self.known(account, peer)?;
        self.authorize(&id_token_grant(account), peer).await?;
        let (token, expires_at) = self
            .lanyard()
            .fresh_id_token(account, min_valid)
            .await
            .map_err(|e| body(&e))?;
        Ok(IdTokenReply {
            id_token: token.expose().to_owned(),
            expires_at,
        })
    }

    /// A token for the account's client itself (`client_credentials`), to an app allowed
    /// the account.
    pub async fn client_credentials(
        &self,
        account: &str,
        scope: Option<&str>,
        peer: &Peer,
    ) -> Result<TokenReply, ErrorBody> {
        self.known(account, peer)?;
        self.authorize(account, peer).await?;
        let token = self
            .lanyard()
            .client_credentials(account, scope)
            .await
            .map_err(|e| body(&e))?;
        Ok(TokenReply {
            access_token: token.token.expose().to_owned(),
            token_type: if token.dpop { "DPoP" } else { "Bearer" }.into(),
            expires_at: token.expires_at,
            warning: token.warning,
        })
    }

    pub async fn identity(&self, account: &str, peer: &Peer) -> Result<Identity, ErrorBody> {
        self.known(account, peer)?;
        self.authorize(account, peer).await?;
        let record = self.lanyard().whoami(account).map_err(|e| body(&e))?;
        let mut identity = record.claims();
        identity.insert("account".into(), json!(record.account));
        identity.insert("issuer".into(), json!(record.issuer));
        Ok(identity)
    }

    /// Whether `account` is one of the agent's, as `peer` may learn it: a remote host
    /// hears of an account that does not exist what it hears of one it is not allowed,
    /// so it cannot tell which accounts there are.
    pub(super) fn known(&self, account: &str, peer: &Peer) -> Result<(), ErrorBody> {
        match self.lanyard().config().account(account) {
            Ok(_) => Ok(()),
            Err(_) if peer.remote => Err(ErrorBody {
                code: Code::ApprovalRequired,
                message: format!(
                    "{} (pid {}) has not been allowed to use {account}'s tokens",
                    peer.app,
                    peer.pid.unwrap_or(0)
                ),
                hint: Some(format!("lanyard allow {account} {}", peer.app)),
            }),
            Err(e) => Err(ErrorBody {
                code: Code::UnknownAccount,
                message: e.to_string(),
                hint: None,
            }),
        }
    }
}

/// The policy entry under which ID tokens are granted, apart from access tokens.
pub fn id_token_grant(account: &str) -> String {
    format!("{account}{ID_TOKEN_GRANT}")
}

/// What an ID-token grant's policy entry ends with.
pub(super) const ID_TOKEN_GRANT: &str = "#id_token";

/// The wire error for a library error.
pub fn body(e: &Error) -> ErrorBody {
    let code = match (e, e.kind()) {
        (Error::NoAccessToken { .. }, _) => Code::NoAccessToken,
        (Error::SignInUnderWay { .. }, _) => Code::Busy,
        (Error::SubjectChanged { .. }, _) => Code::SubjectChanged,
        (Error::Config(crate::config::Error::UnknownAccount { .. }), _) => Code::UnknownAccount,
        (_, Kind::SignInNeeded) => Code::SignInNeeded,
        (_, Kind::Provider | Kind::Incomplete) => Code::ProviderError,
        (_, Kind::Rejected) => Code::Rejected,
        (_, Kind::Keychain) => Code::KeychainUnavailable,
        (_, Kind::Config) => Code::BadRequest,
        (_, Kind::Denied) => Code::Denied,
        (_, Kind::Other) => Code::Internal,
    };
    let mut message = e.to_string();
    let hint = match code {
        Code::SignInNeeded => message.split('`').nth(1).map(str::to_owned),
        _ => None,
    };
    // The command goes in `hint` alone: a client adds "; run `…`" once.
    if let Some(hint) = &hint
        && let Some(without) = message.strip_suffix(&format!("; run `{hint}`"))
    {
        message = without.to_owned();
    }
    ErrorBody {
        code,
        message,
        hint,
    }
}
