//! The desktop app's model: what the window shows and what its buttons do, headless.
//!
//! [`Desktop`] hosts the broker in-process (one broker per user: the app takes the socket
//! over from a headless `lanyard agent`, see [`Desktop::start`]) and turns the library's
//! state into views the web front end renders as they are: [`AccountView`],
//! [`IdentityView`], [`AppsView`], [`ActivityEntry`]. Changes reach the front end as
//! [`UiEvent`]s, pushed when they happen, so nothing polls. The Tauri shell only forwards
//! commands here and events to the window; everything here runs (and is tested) without one.
//!
//! The views and the functions that build them are in `views`; what is left here (about a
//! thousand lines) is `Desktop`'s actions, each with its progress, cancel and events, and
//! the approval prompts. Splitting the actions further (sign-in, accounts, approvals) is
//! the next step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::broker::agent::{ApprovalRequest, Approver, BoxFuture};
use crate::broker::policy::Decision;
use crate::broker::protocol::{ErrorBody, Event};
use crate::broker::{self, Agent, BindError};
use crate::config::{Config, NewAccount, StoreKind};
use crate::flow::scheme::Inbox;
use crate::kiosk::{Seat, SeatView, Trigger};
use crate::preset;
use crate::session::{Lanyard, Progress};
use crate::store::{Record, Records};
use crate::{Error, discovery, http, platform};

pub mod autostart;
mod views;

pub use views::*;

/// Where the app keeps its state; every field defaults as the CLI's does.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The accounts file [default: `$LANYARD_CONFIG`, else the platform's].
    pub config: Option<PathBuf>,
    /// The broker's socket [default: `$LANYARD_SOCK`, else the runtime directory's].
    pub socket: Option<PathBuf>,
    /// Keep every account's tokens here whatever the accounts file says (kiosks: memory).
    pub store: Option<StoreKind>,
    /// Records, policy, audit log and pictures [default: the platform's data directory].
    pub data_dir: Option<PathBuf>,
    /// How long a prompt waits before it denies [default: a minute].
    pub approval_timeout: Option<Duration>,
    /// The managed kiosk file [default: `$LANYARD_KIOSK_CONFIG`, else the system-wide
    /// one]. Kiosk mode is on when it exists: its accounts replace the accounts file.
    pub kiosk: Option<PathBuf>,
    /// Where a kiosk seat's idle time comes from [default: [`crate::kiosk::idle_probe`]].
    pub idle_probe: Option<Arc<dyn crate::kiosk::IdleProbe>>,
    /// `lanyard` command lines the broker names by their callers, besides the one
    /// installed beside this program and the one on `PATH` (an embedder's own copy).
    pub clis: Vec<PathBuf>,
}

/// An error as the window shows it: what happened and what to do next.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::from(broker::agent::body(&e))
    }
}

impl From<ErrorBody> for Failure {
    fn from(e: ErrorBody) -> Failure {
        Failure {
            message: e.message,
            hint: e.hint,
        }
    }
}

impl From<crate::config::Error> for Failure {
    fn from(e: crate::config::Error) -> Failure {
        Failure::from(Error::from(e))
    }
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            hint: None,
        }
    }
}

/// The app's state; a cheap `Clone` handle.
#[derive(Clone)]
pub struct Desktop {
    inner: Arc<Inner>,
}

struct Inner {
    agent: Agent,
    config_path: PathBuf,
    /// The accounts file's modification time when last read: `lanyard accounts add` in a
    /// terminal shows up in the window without a restart.
    config_seen: Mutex<Option<std::time::SystemTime>>,
    records_dir: Option<PathBuf>,
    store: Option<StoreKind>,
    socket: PathBuf,
    approvals: Arc<Approvals>,
    /// Cancels the sign-in or sign-out running for an account.
    running: Mutex<HashMap<String, oneshot::Sender<()>>>,
    http: http::Client,
    /// For pictures a provider's claims point at: public addresses only.
    pictures: http::Client,
    /// Where the OS's deep links (private-use scheme redirects) go.
    inbox: Arc<Inbox>,
    /// Kiosk mode's seat.
    seat: Option<Arc<Seat>>,
}

/// Prompts waiting for the person, by id.
struct Approvals {
    pending: Mutex<HashMap<u64, oneshot::Sender<Decision>>>,
    next: AtomicU64,
    events: broadcast::Sender<UiEvent>,
    timeout: Duration,
    /// Provider names by account, for the prompt (kept current by `reload`).
    providers: Mutex<HashMap<String, String>>,
}

/// Removes a prompt when its request ends however it ends: answered, timed out (the
/// agent drops the future), or the client went away.
struct PromptGuard {
    approvals: Arc<Approvals>,
    id: u64,
}

impl Drop for PromptGuard {
    fn drop(&mut self) {
        let was_pending = self
            .approvals
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id)
            .is_some();
        if was_pending {
            let _ = self.approvals.events.send(UiEvent::ApprovalClosed {
                id: self.id,
                decision: "denied",
            });
        }
    }
}

impl Approvals {
    fn new(events: broadcast::Sender<UiEvent>, timeout: Duration) -> Arc<Approvals> {
        Arc::new(Approvals {
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            events,
            timeout,
            providers: Mutex::new(HashMap::new()),
        })
    }

    fn approver(self: &Arc<Approvals>) -> Approver {
        let approvals = self.clone();
        Arc::new(move |request: ApprovalRequest| -> BoxFuture<Decision> {
            let approvals = approvals.clone();
            Box::pin(async move {
                let id = approvals.next.fetch_add(1, Ordering::Relaxed) + 1;
                let (tx, rx) = oneshot::channel();
                approvals
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, tx);
                let _guard = PromptGuard {
                    approvals: approvals.clone(),
                    id,
                };
                let provider = approvals
                    .providers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&request.account)
                    .cloned()
                    .unwrap_or_else(|| request.account.clone());
                let _ = approvals.events.send(UiEvent::Approval {
                    id,
                    account: request.account,
                    provider,
                    app: request.app,
                    pid: request.pid,
                    through: request.through,
                    timeout_secs: approvals.timeout.as_secs(),
                });
                // A dropped sender (the app is closing) denies.
                rx.await.unwrap_or(Decision::Deny)
            })
        })
    }
}

impl Desktop {
    /// Loads the accounts, binds the broker's socket and starts serving on the current
    /// tokio runtime.
    ///
    /// One broker per user: a headless `lanyard agent` already at the socket is asked to
    /// stop (SIGTERM; it finishes what it is doing and removes its socket), because only
    /// the app can ask the person about unknown apps. Another instance of the app there
    /// is an error. When the app quits, its broker stops with it.
    pub async fn start(options: Options) -> Result<Desktop, Failure> {
        let kiosk = match &options.kiosk {
            Some(path) => crate::config::Kiosk::load_from(path)?,
            None => crate::config::Kiosk::load()?,
        };
        if let Some(kiosk) = kiosk {
            return Desktop::start_kiosk(options, kiosk).await;
        }
        let config_path = match options.config {
            Some(path) => path,
            None => Config::default_path()?,
        };
        let config = load_or_empty(&config_path)?;
        let config_seen = modified(&config_path);
        let records_dir = options.data_dir.or_else(Records::default_dir);
        let inbox = Arc::new(Inbox::default());
        let lanyard = Lanyard::new(config, Records::new(records_dir.clone()))?
            .with_store(options.store)
            .with_inbox(inbox.clone());
        let (events, _) = broadcast::channel(256);
        let approvals = Approvals::new(
            events,
            options
                .approval_timeout
                .unwrap_or(broker::agent::APPROVAL_TIMEOUT),
        );
        let agent = Agent::new(lanyard, records_dir.clone(), Some(approvals.approver()))
            .with_approval_timeout(approvals.timeout)
            .with_clis(options.clis.clone());
        let socket = options.socket.unwrap_or_else(broker::socket_path);
        let listener = bind_or_take_over(&socket).await?;
        let desktop = Desktop {
            inner: Arc::new(Inner {
                agent: agent.clone(),
                config_path,
                config_seen: Mutex::new(config_seen),
                records_dir,
                store: options.store,
                socket,
                approvals,
                running: Mutex::new(HashMap::new()),
                http: http::Client::new().map_err(|e| Failure::new(e.to_string()))?,
                pictures: http::Client::public_only().map_err(|e| Failure::new(e.to_string()))?,
                inbox,
                seat: None,
            }),
        };
        desktop.serve(listener);
        Ok(desktop)
    }

    /// Kiosk mode: the kiosk file's accounts, tokens in memory only, no prompts (the file
    /// names the apps), nothing written to the data directory, and a [`Seat`] that ends
    /// the seat session on every trigger.
    async fn start_kiosk(options: Options, config: Config) -> Result<Desktop, Failure> {
        let kiosk = config
            .kiosk
            .clone()
            .expect("a kiosk file has a [kiosk] table");
        let config_path = config.path.clone();
        let probe = options.idle_probe.clone().or_else(crate::kiosk::idle_probe);
        let seat = Seat::new(kiosk.clone(), config_path.clone(), probe);
        let inbox = Arc::new(Inbox::default());
        let lanyard = Lanyard::new(config, Records::new(None))?
            .with_store(Some(StoreKind::Memory))
            .with_inbox(inbox.clone())
            .with_opener(seat.opener());
        let ender = Arc::downgrade(&seat);
        let rules = broker::agent::KioskRules {
            file: config_path.clone(),
            allowed_apps: kiosk.allowed_apps.clone(),
            session_apps: kiosk.session_apps.clone(),
            end_session: Arc::new(move || {
                let seat = ender.upgrade();
                Box::pin(async move {
                    match seat {
                        Some(seat) => seat.end(Trigger::Broker).await,
                        None => false,
                    }
                })
            }),
        };
        let agent = Agent::new(lanyard, None, None)
            .with_kiosk(rules)
            .with_clis(options.clis.clone());
        seat.attach(agent.clone());
        let (events, _) = broadcast::channel(256);
        // No prompts on a seat; the channel still carries the window's events.
        let approvals = Approvals::new(events, broker::agent::APPROVAL_TIMEOUT);
        let socket = options.socket.unwrap_or_else(broker::socket_path);
        let listener = bind_or_take_over(&socket).await?;
        let desktop = Desktop {
            inner: Arc::new(Inner {
                agent,
                config_path,
                config_seen: Mutex::new(None),
                records_dir: None,
                store: Some(StoreKind::Memory),
                socket,
                approvals,
                running: Mutex::new(HashMap::new()),
                http: http::Client::new().map_err(|e| Failure::new(e.to_string()))?,
                pictures: http::Client::public_only().map_err(|e| Failure::new(e.to_string()))?,
                inbox,
                seat: Some(seat.clone()),
            }),
        };
        tokio::spawn(seat.clone().run());
        tokio::spawn({
            let desktop = desktop.clone();
            let mut views = seat.subscribe();
            async move {
                while let Ok(seat) = views.recv().await {
                    let _ = desktop.inner.approvals.events.send(UiEvent::Seat { seat });
                    desktop.changed();
                }
            }
        });
        desktop.serve(listener);
        Ok(desktop)
    }

    /// Serves the broker on `listener` and keeps the views current.
    fn serve(&self, listener: crate::platform::Listener) {
        let desktop = self;
        let agent = self.inner.agent.clone();
        desktop.remember_providers();
        tokio::spawn(desktop.clone().forward(agent.subscribe()));
        tokio::spawn({
            let agent = agent.clone();
            async move { agent.warm().await }
        });
        tokio::spawn(broker::server::run(listener, agent, std::future::pending()));
        tracing::info!(socket = %desktop.inner.socket.display(), "broker listening");
    }

    /// The kiosk seat, in kiosk mode.
    pub fn seat(&self) -> Option<SeatView> {
        self.inner.seat.as_ref().map(|s| s.view())
    }

    /// The kiosk's End session button (and the app's quit): the complete sign-out.
    /// Returns whether anyone was signed in.
    pub async fn end_session(&self, trigger: Trigger) -> Result<bool, Failure> {
        let seat = self.inner.seat.as_ref().ok_or_else(|| {
            Failure::new("only a kiosk seat has a seat session to end; sign out instead")
        })?;
        Ok(seat.end(trigger).await)
    }

    /// "I'm still here": the player is at the seat; the idle clock starts again.
    pub fn still_here(&self) {
        if let Some(seat) = &self.inner.seat {
            seat.activity();
        }
    }

    /// The seat's browser profile for the current seat session, if a sign-in opened one.
    pub fn seat_profile(&self) -> Option<PathBuf> {
        self.inner.seat.as_ref().and_then(|s| s.profile())
    }

    /// Whether `account`'s provider offers scan-to-sign-in (and the kiosk file allows it).
    pub async fn offers_device_flow(&self, account: &str) -> Result<bool, Failure> {
        if self
            .inner
            .seat
            .as_ref()
            .is_some_and(|s| !s.kiosk().device_flow)
        {
            return Ok(false);
        }
        Ok(self
            .inner
            .agent
            .lanyard()
            .offers_device_flow(account)
            .await?)
    }

    /// Scan-to-sign-in (RFC 8628): a `DeviceCode` event carries the code and its QR code;
    /// resolves when the person has signed in on their phone, or with `cancelled`.
    pub async fn sign_in_device(&self, account: &str) -> Result<IdentityView, Failure> {
        let cancelled = self.begin(account)?;
        let mut hold = self.hold().await;
        let progress = self.progress(account, "sign_in");
        let outcome = tokio::select! {
            r = self.inner.agent.login_device_with(account, &progress) => r.map_err(Failure::from),
            _ = cancelled => Err(Failure::new("the sign-in was cancelled")),
            _ = seat_ended(&mut hold) => Err(Failure::new(SEAT_ENDED)),
        };
        self.end(account);
        self.signed_in(account, outcome)
    }

    /// On a seat, a sign-in's hold on the seat session.
    async fn hold(&self) -> Option<crate::kiosk::Hold> {
        match &self.inner.seat {
            Some(seat) => Some(seat.hold().await),
            None => None,
        }
    }

    /// Events for the window, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<UiEvent> {
        self.inner.approvals.events.subscribe()
    }

    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    pub fn config_path(&self) -> &Path {
        &self.inner.config_path
    }

    /// Every account with its state. Rereads the accounts file if it changed.
    pub fn accounts(&self) -> Vec<AccountView> {
        self.reload_if_changed();
        let lanyard = self.inner.agent.lanyard();
        lanyard
            .status()
            .into_iter()
            .map(|(account, record)| account_view(account, record.as_ref()))
            .collect()
    }

    pub fn presets(&self) -> Vec<PresetView> {
        preset::PRESETS.iter().map(preset_view).collect()
    }

    /// Who is signed in to `account`.
    pub fn identity(&self, account: &str) -> Result<IdentityView, Failure> {
        let lanyard = self.inner.agent.lanyard();
        let config = lanyard.config().account(account)?;
        let record = lanyard.whoami(account)?;
        Ok(identity_view(config, &record))
    }

    /// Signs in through the system browser, with progress as events; resolves when the
    /// browser comes back, or with `cancelled` after [`Desktop::cancel`].
    pub async fn sign_in(&self, account: &str) -> Result<IdentityView, Failure> {
        let cancelled = self.begin(account)?;
        let mut hold = self.hold().await;
        let progress = self.progress(account, "sign_in");
        let outcome = tokio::select! {
            r = self.inner.agent.login_with(account, &progress) => r.map_err(Failure::from),
            _ = cancelled => Err(Failure::new("the sign-in was cancelled")),
            _ = seat_ended(&mut hold) => Err(Failure::new(SEAT_ENDED)),
        };
        self.end(account);
        self.signed_in(account, outcome)
    }

    fn signed_in(
        &self,
        account: &str,
        outcome: Result<Record, Failure>,
    ) -> Result<IdentityView, Failure> {
        self.finish(account, "sign_in", &outcome);
        let record = outcome?;
        if let Some(seat) = &self.inner.seat {
            seat.signed_in();
        }
        let lanyard = self.inner.agent.lanyard();
        Ok(identity_view(lanyard.config().account(account)?, &record))
    }

    /// Signs out: revokes, forgets, and ends the provider's session in the browser.
    pub async fn sign_out(&self, account: &str) -> Result<Vec<String>, Failure> {
        if self.inner.seat.is_some() {
            // On a seat, signing out is ending the seat session: all of it.
            self.end_session(Trigger::Button).await?;
            return Ok(vec![]);
        }
        let cancelled = self.begin(account)?;
        let progress = self.progress(account, "sign_out");
        let outcome = tokio::select! {
            r = self.inner.agent.logout_with(account, false, &progress) => r.map_err(Failure::from),
            // The local part is done before the browser is involved: a cancel only stops
            // waiting for the provider's sign-out page.
            _ = cancelled => Err(Failure::new("stopped waiting for the provider's sign-out page")),
        };
        self.end(account);
        self.finish(account, "sign_out", &outcome);
        self.changed();
        Ok(outcome?.warnings)
    }

    /// A URL the OS handed the app (its private-use scheme): the redirect of a sign-in
    /// or sign-out in progress. Anything else is refused, and the window is told why.
    pub fn deep_link(&self, url: &str) -> Result<(), Failure> {
        self.inner.inbox.deliver(url).map_err(|refused| {
            let failure = Failure {
                message: format!("Lanyard ignored a link: {refused}"),
                hint: None,
            };
            let _ = self.inner.approvals.events.send(UiEvent::LinkRefused {
                message: failure.message.clone(),
            });
            failure
        })
    }

    /// Cancels the account's sign-in (or stops waiting on its sign-out page).
    pub fn cancel(&self, account: &str) -> bool {
        let sender = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
        sender.is_some_and(|tx| tx.send(()).is_ok())
    }

    /// The account's access token, for "Copy access token" (the window asks first).
    pub async fn access_token(&self, account: &str) -> Result<String, Failure> {
        let (token, _) = self.inner.agent.owner_token(account).await?;
        Ok(token.expose().to_owned())
    }

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
        let Some(tx) = self
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
        Ok(tx.send(decision).is_ok())
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
        let file = self.inner.agent.policy_file();
        let mut policy = file.load().map_err(Failure::new)?;
        policy.set(account, app, Decision::Unknown);
        file.save(&policy).map_err(Failure::new)?;
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

    fn begin(&self, account: &str) -> Result<oneshot::Receiver<()>, Failure> {
        self.inner.agent.lanyard().config().account(account)?;
        let (tx, rx) = oneshot::channel();
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.contains_key(account) {
            return Err(Failure {
                message: format!("{account} is already waiting on the browser"),
                hint: Some("finish in the browser, or cancel first".into()),
            });
        }
        running.insert(account.to_owned(), tx);
        Ok(rx)
    }

    fn end(&self, account: &str) {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(account);
    }

    fn progress(&self, account: &str, action: &'static str) -> impl Fn(Progress<'_>) + Sync {
        let events = self.inner.approvals.events.clone();
        let account = account.to_owned();
        move |p: Progress<'_>| {
            let (stage, url, message) = match p {
                Progress::BrowserOpened { .. } => ("browser_opened", None, None),
                Progress::OpenYourself { url, reason } => {
                    ("open_yourself", Some(url.to_owned()), reason)
                }
                Progress::Waiting => ("waiting", None, None),
                Progress::Finishing => ("finishing", None, None),
                Progress::DeviceCode {
                    user_code,
                    verification_uri,
                    verification_uri_complete,
                    expires_in,
                } => {
                    let scan = verification_uri_complete.unwrap_or(verification_uri);
                    let _ = events.send(UiEvent::DeviceCode {
                        account: account.clone(),
                        user_code: user_code.to_owned(),
                        verification_uri: verification_uri.to_owned(),
                        verification_uri_complete: verification_uri_complete.map(str::to_owned),
                        qr_svg: qr_svg(scan),
                        expires_in: expires_in.as_secs(),
                    });
                    return;
                }
            };
            let _ = events.send(UiEvent::Progress {
                account: account.clone(),
                action,
                stage,
                url,
                message,
            });
        }
    }

    fn finish<T>(&self, account: &str, action: &'static str, outcome: &Result<T, Failure>) {
        let (stage, message) = match outcome {
            Ok(_) => ("done", None),
            Err(f) if f.message.contains("cancelled") => ("cancelled", None),
            Err(f) => ("failed", Some(f.message.clone())),
        };
        let _ = self.inner.approvals.events.send(UiEvent::Progress {
            account: account.to_owned(),
            action,
            stage,
            url: None,
            message,
        });
    }

    /// Tells the window the accounts changed, and returns them.
    fn changed(&self) -> Vec<AccountView> {
        let accounts = self.accounts();
        let _ = self.inner.approvals.events.send(UiEvent::Accounts {
            accounts: accounts.clone(),
        });
        accounts
    }

    fn replace(&self, config: Config) -> Result<(), Failure> {
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

    fn reload_if_changed(&self) {
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

    fn remember_providers(&self) {
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

    /// Turns the broker's events into the window's.
    async fn forward(self, mut events: broadcast::Receiver<Event>) {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.changed();
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let send = |e| {
                let _ = self.inner.approvals.events.send(e);
            };
            match event {
                Event::SignedIn { .. } | Event::SignedOut { .. } | Event::Refreshed { .. } => {
                    self.changed();
                }
                Event::SignInNeeded { account, reason } => {
                    self.changed();
                    send(UiEvent::SignInNeeded { account, reason });
                }
                Event::ApprovalNeeded { .. } => {}
                Event::Access {
                    account,
                    app,
                    decision,
                    time,
                } => send(UiEvent::Access {
                    entry: ActivityEntry {
                        time,
                        account,
                        app,
                        decision,
                    },
                }),
            }
        }
    }
}

/// Why a seat's sign-in stopped.
const SEAT_ENDED: &str = "the seat session ended, and the sign-in was cancelled with it";

/// Resolves when the seat session ends; never, off a seat.
async fn seat_ended(hold: &mut Option<crate::kiosk::Hold>) {
    match hold {
        Some(hold) => hold.ended().await,
        None => std::future::pending().await,
    }
}

/// Binds the broker's socket, asking a headless agent there to make way.
async fn bind_or_take_over(socket: &Path) -> Result<crate::platform::Listener, Failure> {
    Ok(match broker::bind(socket).await {
        Err(BindError::Running(_)) => {
            take_over(socket).await?;
            broker::bind(socket).await.map_err(Error::from)?
        }
        other => other.map_err(Error::from)?,
    })
}

fn load_or_empty(path: &Path) -> Result<Config, Failure> {
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

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Asks the headless agent at `socket` to stop, and waits until it has let go.
async fn take_over(socket: &Path) -> Result<(), Failure> {
    let stream = platform::connect(socket).await.map_err(|e| {
        Failure::new(format!(
            "cannot reach the agent at {}: {e}",
            socket.display()
        ))
    })?;
    let (user, pid, exe) = platform::server_of(&stream).map_err(|e| {
        Failure::new(format!(
            "cannot identify the agent at {}: {e}",
            socket.display()
        ))
    })?;
    drop(stream);
    let busy = || Failure {
        message: format!("another Lanyard app is serving {}", socket.display()),
        hint: Some("use the window that is open already (see the tray)".into()),
    };
    let Some(pid) = pid.filter(|_| user == platform::own_user()) else {
        return Err(busy());
    };
    let is_cli = exe
        .as_deref()
        .and_then(Path::file_name)
        .is_some_and(|n| n == platform::CLI);
    if !is_cli {
        return Err(busy());
    }
    tracing::info!(pid, "taking over from the headless agent");
    platform::terminate(pid);
    // The agent finishes what it is doing, removes its socket and exits.
    if platform::exited(pid, TAKE_OVER).await {
        return Ok(());
    }
    Err(Failure {
        message: format!("the headless agent (pid {pid}) did not stop"),
        hint: Some(format!("stop it yourself: {}", platform::stop_command(pid))),
    })
}

/// How long a headless agent gets to finish its requests and exit.
const TAKE_OVER: Duration = Duration::from_secs(5);
