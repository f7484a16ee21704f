//! The accept loop every socket of the broker shares (the agent's own, oidc-agent's, and a
//! remote host's): each client is named from its peer credentials and served in a task
//! of its own, at most [`Limits::max`] at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::peer::{self, Clis, Peer};
use crate::platform::{Connection, Listener};

/// How many connections are served at once, and what the next one is told; and whether
/// peers are named with their parent process.
pub struct Limits {
    pub max: usize,
    /// Written (without waiting) to a connection over the limit before it is closed.
    pub busy: Vec<u8>,
    /// Name each peer's parent too: a host's forwarded sockets serve only the ssh that
    /// `lanyard ssh` runs. Reading it costs a connection two /proc reads and a pidfd.
    pub parent: bool,
}

/// The accept loop both sockets share (Lanyard's and the oidc-agent one): each client is
/// identified and served in a task of its own; one over
/// `limits.max` is told so and closed at once, so a client that holds every slot blocks
/// neither accepting nor shutdown. All connections end at shutdown.
pub async fn accept<F, Fut>(
    mut listener: Listener,
    clis: &Clis,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    handle: F,
) where
    F: Fn(Connection, std::io::Result<Peer>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handle = Arc::new(handle);
    let slots = Arc::new(Semaphore::new(limits.max));
    let mut connections = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            // Reap finished connection tasks as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok(stream) => {
                        backoff = ACCEPT_BACKOFF;
                        stream
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        // Out of file descriptors and the like: give the system a moment,
                        // longer each time it fails again, still listening for shutdown.
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(limit = limits.max, "too many connections; refusing one");
                    let _ = stream.try_write(&limits.busy);
                    continue;
                };
                // The peer is named in the connection's own task, so that clients
                // connecting once per request are named on every core, not one at a time
                // here. The socket keeps the peer's credentials and, where the kernel
                // has SO_PEERPIDFD, its pidfd from the moment it connected; a peer gone
                // by then cannot be named and is refused.
                let (handle, clis, parent) = (handle.clone(), clis.clone(), limits.parent);
                connections.spawn(async move {
                    let peer = peer::identify(&stream, &clis, parent);
                    handle(stream, peer).await;
                    drop(permit);
                });
            }
        }
    }
    connections.shutdown().await;
}

/// The first pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
