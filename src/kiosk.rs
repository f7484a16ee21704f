//! Kiosk mode: a gaming center's shared seat. A player signs in, partner apps on the seat
//! get tokens through the broker, the player leaves, and nothing of them remains.
//!
//! The managed kiosk file ([`crate::config::Kiosk`]) turns it on. Tokens live in memory
//! only (the accounts are forced to `store = "memory"`, `prompt=login`, `max_age=0`), the
//! broker answers only the apps the file lists, and a [`Seat`] owns the seat session:
//! its clock (idle timeout with a warning, maximum length), the browser profile made for
//! it, and the one complete sign-out every trigger runs ([`Seat::end`]): revoke the tokens,
//! end the provider session in the seat's browser, stop that browser and delete its
//! profile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;
use tokio::sync::{Notify, broadcast};

use crate::broker::agent::Agent;
use crate::browser::{self, Opener};
use crate::config::{Kiosk, SeatBrowser};

/// Why a seat session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The End session button.
    Button,
    /// The broker's `end_session` request (the center's seat software).
    Broker,
    /// Nobody touched the seat for `idle_timeout`.
    Idle,
    /// The session reached `max_session`.
    MaxSession,
    /// The app quit.
    Quit,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Button => "button",
            Trigger::Broker => "broker",
            Trigger::Idle => "idle",
            Trigger::MaxSession => "max_session",
            Trigger::Quit => "quit",
        }
    }
}

/// The seat as the kiosk screen shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeatView {
    /// Someone is signed in.
    pub active: bool,
    /// Unix seconds: when the seat session began, and when it ends at the latest.
    pub started_at: Option<u64>,
    pub ends_at: Option<u64>,
    /// Unix seconds: when the idle timeout ends the session, while the warning shows.
    pub idle_ends_at: Option<u64>,
    /// Why the last seat session ended.
    pub last_ended: Option<Trigger>,
    /// What the last complete sign-out could not do (a revocation the provider refused,
    /// a logout page that never answered): the center should know.
    pub warnings: Vec<String>,
    /// Scan-to-sign-in is offered (the kiosk file allows it).
    pub device_flow: bool,
}

pub use crate::platform::{IdleProbe, idle_probe};

/// What the seat reports: a new view whenever it changes.
pub type Changed = Arc<dyn Fn(SeatView) + Send + Sync>;

pub struct Seat {
    kiosk: Kiosk,
    file: PathBuf,
    opener: Arc<SeatOpener>,
    agent: OnceLock<Agent>,
    probe: Option<Arc<dyn IdleProbe>>,
    state: Mutex<State>,
    /// Wakes the clock when the session starts, ends or sees activity.
    wake: Notify,
    /// One complete sign-out at a time; a second trigger waits for the first.
    ending: tokio::sync::Mutex<()>,
    /// Sign-ins under way each hold a read guard ([`Seat::hold`]); the end of a seat
    /// session takes the write guard, so it waits until they are all gone, and a sign-in
    /// asked for meanwhile starts only after it.
    sign_ins: Arc<tokio::sync::RwLock<()>>,
    /// Bumped by every end: a sign-in under way is cancelled by it.
    ends: tokio::sync::watch::Sender<u64>,
    changed: broadcast::Sender<SeatView>,
}

#[derive(Default)]
struct State {
    /// The seat session: when it started (monotonic and Unix).
    started: Option<(tokio::time::Instant, u64)>,
    /// The last input the app itself saw ("I'm still here", a click on the kiosk screen).
    last_activity: Option<tokio::time::Instant>,
    warned: bool,
    last_ended: Option<Trigger>,
    warnings: Vec<String>,
}

impl Seat {
    /// A seat for the kiosk file at `file`. Attach the broker's agent with [`Seat::attach`]
    /// and run its clock with [`Seat::run`].
    pub fn new(kiosk: Kiosk, file: PathBuf, probe: Option<Arc<dyn IdleProbe>>) -> Arc<Seat> {
        let (changed, _) = broadcast::channel(64);
        Arc::new(Seat {
            opener: Arc::new(SeatOpener::new(kiosk.browser.clone())),
            kiosk,
            file,
            agent: OnceLock::new(),
            probe,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            ending: tokio::sync::Mutex::new(()),
            sign_ins: Arc::new(tokio::sync::RwLock::new(())),
            ends: tokio::sync::watch::Sender::new(0),
            changed,
        })
    }

    pub fn kiosk(&self) -> &Kiosk {
        &self.kiosk
    }

    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// Where the seat's sign-in pages open: its own browser profile.
    pub fn opener(&self) -> Arc<dyn Opener> {
        self.opener.clone()
    }

    pub fn attach(&self, agent: Agent) {
        let _ = self.agent.set(agent);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SeatView> {
        self.changed.subscribe()
    }

    /// The seat's browser profile for this session, once a sign-in has opened it.
    pub fn profile(&self) -> Option<PathBuf> {
        self.opener.profile()
    }

    pub fn view(&self) -> SeatView {
        let state = self.state();
        let started_at = state.started.map(|(_, unix)| unix);
        let idle_ends_at = match (state.warned, self.idle_deadline(&state)) {
            (true, Some(deadline)) => Some(unix_at(deadline)),
            _ => None,
        };
        SeatView {
            active: state.started.is_some(),
            started_at,
            ends_at: started_at
                .zip(self.kiosk.max_session)
                .map(|(s, max)| s + max.as_secs()),
            idle_ends_at,
            last_ended: state.last_ended,
            warnings: state.warnings.clone(),
            device_flow: self.kiosk.device_flow,
        }
    }

    /// A sign-in succeeded: the seat session starts (or goes on, for a second account).
    pub fn signed_in(&self) {
        {
            let mut state = self.state();
            let now = tokio::time::Instant::now();
            state.started.get_or_insert((now, crate::session::now()));
            state.last_activity = Some(now);
            state.warned = false;
        }
        self.wake.notify_one();
        self.report();
    }

    /// The player is there ("I'm still here", or input on the kiosk screen).
    pub fn activity(&self) {
        let was_warned = {
            let mut state = self.state();
            state.last_activity = Some(tokio::time::Instant::now());
            std::mem::take(&mut state.warned)
        };
        self.wake.notify_one();
        if was_warned {
            self.report();
        }
    }

    /// What a sign-in on this seat holds while it runs: [`Hold::ended`] resolves when the
    /// seat session ends, and the sign-in must then stop (a QR code the last player left
    /// on the screen must not sign them in on the next player's seat).
    pub async fn hold(&self) -> Hold {
        // Watching before the guard: an end that comes between the two is not missed.
        let ends = self.ends.subscribe();
        let guard = self.sign_ins.clone().read_owned().await;
        Hold {
            ends,
            _guard: guard,
        }
    }

    /// The complete sign-out, whatever triggered it: every sign-in under way cancelled,
    /// every account signed out at the provider (tokens revoked, provider session ended
    /// in the seat's browser), the broker's memory cleared, the seat's browser stopped
    /// and its profile deleted. Returns whether anyone was signed in.
    pub async fn end(&self, trigger: Trigger) -> bool {
        let _one = self.ending.lock().await;
        // Cancel the sign-ins under way, and wait until they are gone: one that finished
        // meanwhile is signed out below with everyone else.
        self.ends.send_modify(|n| *n += 1);
        let _no_sign_ins = self.sign_ins.write().await;
        let active = self.state().started.is_some();
        tracing::info!(
            trigger = trigger.as_str(),
            active,
            "ending the seat session"
        );
        let mut warnings = Vec::new();
        if let Some(agent) = self.agent.get() {
            let lanyard = agent.lanyard();
            let signed_in: Vec<String> = lanyard
                .status()
                .into_iter()
                .filter(|(_, record)| record.is_some())
                .map(|(account, _)| account.name.clone())
                .collect();
            for account in signed_in {
                match agent.logout_with(&account, false, &|_| {}).await {
                    Ok(report) => warnings.extend(
                        report
                            .warnings
                            .into_iter()
                            .map(|w| format!("{account}: {w}")),
                    ),
                    Err(e) => warnings.push(format!("{account}: {e}")),
                }
            }
        }
        if let Err(e) = self.opener.close() {
            warnings.push(format!(
                "the seat's browser profile could not be deleted: {e}"
            ));
        }
        for warning in &warnings {
            tracing::warn!(%warning, "seat sign-out");
        }
        {
            let mut state = self.state();
            *state = State {
                last_ended: Some(trigger),
                warnings,
                ..State::default()
            };
        }
        self.wake.notify_one();
        self.report();
        active
    }

    /// The seat's clock: ends the session at the idle timeout (after the warning) or at
    /// the maximum length. It sleeps until the next deadline; activity wakes it to
    /// compute the deadlines again. Runs for as long as the seat does.
    pub async fn run(self: Arc<Self>) {
        loop {
            let next = {
                let state = self.state();
                match state.started {
                    None => None,
                    Some((started, _)) => {
                        let max = self.kiosk.max_session.map(|m| started + m);
                        let idle = self.idle_deadline(&state).map(|deadline| {
                            if state.warned {
                                deadline
                            } else {
                                deadline - self.kiosk.idle_warning
                            }
                        });
                        [max, idle].into_iter().flatten().min()
                    }
                }
            };
            let Some(next) = next else {
                self.wake.notified().await;
                continue;
            };
            tokio::select! {
                _ = self.wake.notified() => continue,
                _ = tokio::time::sleep_until(next) => {}
            }
            self.tick().await;
        }
    }

    /// A deadline passed: end the session, warn, or (input since) carry on.
    async fn tick(&self) {
        let now = tokio::time::Instant::now();
        let (max_reached, idle_deadline, warned) = {
            let state = self.state();
            let Some((started, _)) = state.started else {
                return;
            };
            let max_reached = self.kiosk.max_session.is_some_and(|m| now >= started + m);
            (max_reached, self.idle_deadline(&state), state.warned)
        };
        if max_reached {
            self.end(Trigger::MaxSession).await;
            return;
        }
        let Some(deadline) = idle_deadline else {
            return;
        };
        if now >= deadline {
            self.end(Trigger::Idle).await;
        } else if now + self.kiosk.idle_warning >= deadline && !warned {
            self.state().warned = true;
            self.report();
        }
    }

    /// When the idle timeout ends the session: the later of the app's own last activity
    /// and the seat's last input.
    fn idle_deadline(&self, state: &State) -> Option<tokio::time::Instant> {
        let timeout = self.kiosk.idle_timeout?;
        let now = tokio::time::Instant::now();
        let mut last = state.last_activity.or(state.started.map(|(s, _)| s))?;
        if let Some(idle) = self.probe.as_ref().and_then(|p| p.idle()) {
            last = last.max(now.checked_sub(idle).unwrap_or(now));
        }
        Some(last + timeout)
    }

    fn report(&self) {
        let _ = self.changed.send(self.view());
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A sign-in's hold on the seat ([`Seat::hold`]).
pub struct Hold {
    ends: tokio::sync::watch::Receiver<u64>,
    _guard: tokio::sync::OwnedRwLockReadGuard<()>,
}

impl Hold {
    /// Resolves when the seat session ends.
    pub async fn ended(&mut self) {
        if self.ends.changed().await.is_err() {
            // The seat is gone: so is its session.
        }
    }
}

/// Unix seconds at a monotonic instant.
fn unix_at(at: tokio::time::Instant) -> u64 {
    let now = tokio::time::Instant::now();
    let unix = crate::session::now();
    if at >= now {
        unix + (at - now).as_secs()
    } else {
        unix.saturating_sub((now - at).as_secs())
    }
}

/// Opens sign-in pages in the seat's browser, making its profile on first use; `close`
/// stops it and deletes the profile, and the next seat session gets a new one.
struct SeatOpener {
    kind: SeatBrowser,
    current: Mutex<Option<Arc<browser::Seat>>>,
}

impl SeatOpener {
    fn new(kind: SeatBrowser) -> SeatOpener {
        SeatOpener {
            kind,
            current: Mutex::new(None),
        }
    }

    fn profile(&self) -> Option<PathBuf> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.profile().to_owned())
    }

    fn close(&self) -> std::io::Result<()> {
        let seat = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match seat {
            Some(seat) => seat.close(),
            None => Ok(()),
        }
    }
}

impl Opener for SeatOpener {
    fn open(&self, url: &str) -> Result<(), browser::Error> {
        if self.kind == SeatBrowser::System {
            return browser::open(url);
        }
        let seat = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            match &*current {
                Some(seat) => seat.clone(),
                None => {
                    let seat = Arc::new(browser::Seat::new(self.kind.clone()).map_err(|e| {
                        browser::Error::new(format!("the seat's browser profile: {e}"))
                    })?);
                    *current = Some(seat.clone());
                    seat
                }
            }
        };
        seat.open(url)
    }
}
