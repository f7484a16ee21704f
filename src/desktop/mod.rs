//! The desktop app's model: what the window shows and what its buttons do, headless.
//!
//! [`Desktop`] hosts the broker in-process (one broker per user: the app takes the socket
//! over from a headless `lanyard agent`, see [`Desktop::start`]) and turns the library's
//! state into views the web front end renders as they are: [`AccountView`],
//! [`IdentityView`], [`AppRule`], [`ActivityEntry`]. Changes reach the front end as
//! [`UiEvent`]s, pushed when they happen, so nothing polls. The Tauri shell only forwards
//! commands here and events to the window; everything here runs (and is tested) without one.
//!
//! `start` brings the app up (the broker, the take-over, a kiosk seat); `views` builds
//! what the window shows, with no state and no I/O; `accounts` adds, checks and removes
//! accounts; `approvals` holds the prompts and the Apps page. What is left here is the
//! model itself and its sign-in and sign-out actions, each with its progress, cancel and
//! events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::broker::protocol::ErrorBody;
use crate::broker::{self, Agent};
use crate::config::StoreKind;
use crate::flow::scheme::Inbox;
use crate::kiosk::{Seat, SeatView, Trigger};
use crate::preset;
use crate::session::Progress;
use crate::store::Record;
use crate::{Error, http};

mod accounts;
mod approvals;
pub mod autostart;
mod start;
mod views;

use approvals::Approvals;

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

impl Desktop {
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
                Progress::Waiting | Progress::PasteBack { .. } => ("waiting", None, None),
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
