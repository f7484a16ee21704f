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
}

pub async fn run(
    config: Option<PathBuf>,
    store: Option<StoreKind>,
    args: Args,
) -> Result<(), Error> {
    let lanyard = super::Opener { config, store }.lanyard()?;
    let path = args.socket.unwrap_or_else(broker::socket_path);
    let listener = broker::bind(&path).await?;
    let agent = Agent::new(lanyard, Records::default_dir(), None);
    eprintln!("lanyard agent: listening at {}", path.display());
    // Serve at once; load the signed-in accounts' tokens meanwhile.
    tokio::spawn({
        let agent = agent.clone();
        async move { agent.warm().await }
    });
    broker::server::run(listener, agent, shutdown()).await;
    let _ = std::fs::remove_file(&path);
    Ok(())
}

async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
