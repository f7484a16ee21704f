//! Starting the app: the broker bound (taking the socket over from a headless agent), the
//! accounts loaded, a kiosk seat set up where the managed file says so, and the broker's
//! events turned into the window's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use super::accounts::{load_or_empty, modified};
use super::approvals::Approvals;
use super::{ActivityEntry, Desktop, Failure, Inner, Options, UiEvent};
use crate::broker::protocol::Event;
use crate::broker::{self, Agent, BindError};
use crate::config::{Config, StoreKind};
use crate::flow::scheme::Inbox;
use crate::kiosk::{Seat, Trigger};
use crate::session::Lanyard;
use crate::store::Records;
use crate::{Error, http, platform};

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
        tokio::spawn(broker::run(listener, agent, std::future::pending()));
        tracing::info!(socket = %desktop.inner.socket.display(), "broker listening");
    }

    /// Turns the broker's events into the window's. The person is told that an account
    /// needs a sign-in once (one notification), however many tools find it so, until it
    /// is signed in or out again; the window redraws each time.
    async fn forward(self, mut events: broadcast::Receiver<Event>) {
        let mut told = std::collections::HashSet::new();
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
                Event::SignedIn { account } | Event::SignedOut { account } => {
                    told.remove(&account);
                    self.changed();
                }
                Event::Refreshed { .. } => {
                    self.changed();
                }
                Event::SignInNeeded {
                    account,
                    reason,
                    app,
                } => {
                    self.changed();
                    if told.insert(account.clone()) {
                        send(UiEvent::SignInNeeded {
                            account,
                            reason,
                            app,
                        });
                    }
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
