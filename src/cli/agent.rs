//! `lanyard agent`: run the token broker until SIGTERM or SIGINT.

use std::path::PathBuf;

use crate::Error;
use crate::broker::{self, Agent};
use crate::config::StoreKind;
use crate::store::Records;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The socket [default: $LANYARD_SOCK, else $XDG_RUNTIME_DIR/lanyard/agent.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also serve oidc-agent's clients (oidc-token, liboidc-agent) on this socket; point
    /// them at it with OIDC_SOCK=PATH
    #[arg(long, value_name = "PATH")]
    oidc_agent_socket: Option<PathBuf>,
}

pub async fn run(
    config: Option<PathBuf>,
    store: Option<StoreKind>,
    args: Args,
) -> Result<(), Error> {
    let lanyard = super::Opener { config, store }.lanyard()?;
    let path = args.socket.unwrap_or_else(broker::socket_path);
    let listener = broker::bind(&path).await?;
    // Both sockets are bound before the agent says it listens: clients (and tests) take
    // that line to mean ready.
    let compat_listener = match &args.oidc_agent_socket {
        Some(compat_path) => Some(broker::bind(compat_path).await?),
        None => None,
    };
    let agent = Agent::new(lanyard, Records::default_dir(), None);
    eprintln!("lanyard agent: listening at {}", path.display());
    // Serve at once; load the signed-in accounts' tokens meanwhile. Then hand back the
    // code that starting ran, and that of each refresh after it.
    tokio::spawn({
        let agent = agent.clone();
        async move {
            agent.warm().await;
            agent.release_memory_when_quiet().await
        }
    });
    // Both sockets stop on the same signal.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let compat = match (&args.oidc_agent_socket, compat_listener) {
        (Some(compat_path), Some(listener)) => {
            eprintln!(
                "lanyard agent: oidc-agent clients: OIDC_SOCK={}",
                compat_path.display()
            );
            let (agent, mut stopped) = (agent.clone(), stopped.clone());
            Some(tokio::spawn(broker::oidc_agent::run(
                listener,
                agent,
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )))
        }
        _ => None,
    };
    let mut main_stopped = stopped;
    tokio::spawn(async move {
        crate::platform::shutdown_requested().await;
        let _ = stop.send(true);
    });
    broker::run(listener, agent, async move {
        let _ = main_stopped.wait_for(|s| *s).await;
    })
    .await;
    if let Some(compat) = compat {
        let _ = compat.await;
    }
    let _ = std::fs::remove_file(&path);
    if let Some(compat_path) = &args.oidc_agent_socket {
        let _ = std::fs::remove_file(compat_path);
    }
    Ok(())
}
