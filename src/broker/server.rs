//! The agent's socket server: accepts connections, checks who is calling, reads frames
//! with limits, and answers requests through [`Agent`].
//!
//! `run` is handed a bound listener and a shutdown future, so tests bind in a temporary
//! directory. Each connection is its own task: a client that stalls, trickles bytes, sends
//! garbage or oversize frames is answered or dropped without delaying anyone else. Every
//! connection's peer is checked before its first request: another user is refused.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;

use super::agent::{Agent, Peer};
use super::protocol::{self, Code, EventFrame, Op, Response};
use crate::flow::Target;

/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Once a frame has begun, the rest must arrive within this.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not read its answer within this is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// Serves until `shutdown` completes, then stops accepting and ends every connection.
pub async fn run(listener: UnixListener, agent: Agent, shutdown: impl Future<Output = ()>) {
    accept(listener, shutdown, move |stream| {
        serve(stream, agent.clone(), own_uid())
    })
    .await;
}

/// The accept loop both sockets share (Lanyard's and the oidc-agent one): one task per
/// connection, at most [`MAX_CONNECTIONS`] at once, all ended at shutdown.
pub async fn accept<F, Fut>(listener: UnixListener, shutdown: impl Future<Output = ()>, handle: F)
where
    F: Fn(UnixStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            // Reap finished connection tasks as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        // Out of file descriptors and the like: give the system a moment.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let permit = limit.clone().acquire_owned().await.expect("the semaphore is never closed");
                let connection = handle(stream);
                connections.spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
        }
    }
    connections.shutdown().await;
}

async fn serve(stream: UnixStream, agent: Agent, uid: u32) {
    let peer = match identify(&stream) {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot identify a client; closing");
            return;
        }
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::with_capacity(8 * 1024, read);
    if peer.uid != uid {
        tracing::warn!(uid = peer.uid, pid = ?peer.pid, "refused a client of another user");
        // Answer its first request (its hello), so that the refusal is what it reads.
        let first = tokio::time::timeout(Duration::from_secs(2), read_frame(&mut reader)).await;
        let id = match first {
            Ok(Ok(Some(frame))) => protocol::decode(&frame).map_or_else(|(id, _)| id, |r| r.id),
            _ => 0,
        };
        let refusal = Response::error(id, Code::WrongUser, "this agent serves its own user only");
        let _ = send(&mut write, &refusal).await;
        return;
    }
    let mut greeted = false;
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(FrameError::TooLarge) => {
                let error = Response::error(
                    0,
                    Code::FrameTooLarge,
                    format!("frames are at most {} bytes", protocol::MAX_FRAME),
                );
                let _ = send(&mut write, &error).await;
                return;
            }
            Err(FrameError::Closed) => return,
        };
        let request = match protocol::decode(&frame) {
            Ok(request) => request,
            Err((id, body)) => {
                let response = Response {
                    id,
                    outcome: protocol::Outcome::Error(body),
                };
                if send(&mut write, &response).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let id = request.id;
        let response = match (greeted, request.op) {
            (false, Op::Hello { version }) if version == protocol::VERSION => {
                greeted = true;
                Response::ok(
                    id,
                    serde_json::json!({ "version": protocol::VERSION, "agent": concat!("lanyard ", env!("CARGO_PKG_VERSION")) }),
                )
            }
            (_, Op::Hello { version }) if version != protocol::VERSION => Response::error(
                id,
                Code::UnsupportedVersion,
                format!(
                    "this agent speaks version {}, not {version}",
                    protocol::VERSION
                ),
            ),
            (false, _) => Response::error(id, Code::HelloFirst, "send `hello` first"),
            (true, Op::Hello { .. }) => {
                Response::ok(id, serde_json::json!({ "version": protocol::VERSION }))
            }
            (true, Op::Subscribe) => {
                let events = agent.subscribe();
                if send(&mut write, &Response::ok(id, serde_json::json!({})))
                    .await
                    .is_ok()
                {
                    stream_events(events, &mut write).await;
                }
                return;
            }
            (true, op) => handle(&agent, id, op, &peer).await,
        };
        if send(&mut write, &response).await.is_err() {
            return;
        }
    }
}

async fn handle(agent: &Agent, id: u64, op: Op, peer: &Peer) -> Response {
    let result = match op {
        Op::Accounts => Ok(serde_json::to_value(agent.accounts()).expect("serialisable")),
        Op::Identity { account } => agent
            .identity(&account, peer)
            .await
            .map(serde_json::Value::Object),
        Op::Token {
            account,
            min_valid,
            scope,
            audience,
        } => agent
            .token(&account, min_valid, &Target { scope, audience }, peer)
            .await
            .map(|t| serde_json::to_value(t).expect("serialisable")),
        Op::Login { account } => agent.login(&account).await,
        Op::Logout { account, local } => agent.logout(&account, local).await,
        Op::EndSession => agent.end_session(peer).await,
        Op::Hello { .. } | Op::Subscribe => unreachable!("handled by the connection loop"),
    };
    match result {
        Ok(value) => Response::ok(id, value),
        Err(body) => Response {
            id,
            outcome: protocol::Outcome::Error(body),
        },
    }
}

async fn stream_events(
    mut events: broadcast::Receiver<protocol::Event>,
    write: &mut OwnedWriteHalf,
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if send(write, &EventFrame { event }).await.is_err() {
                    return;
                }
            }
            // A subscriber too slow for the event rate misses events, and is told nothing
            // more than that it may resubscribe: the agent never blocks on it.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn send<T: serde::Serialize>(write: &mut OwnedWriteHalf, value: &T) -> Result<(), ()> {
    let frame = protocol::encode(value);
    match tokio::time::timeout(WRITE_TIMEOUT, write.write_all(&frame)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

enum FrameError {
    TooLarge,
    Closed,
}

/// One line, without its newline. `Ok(None)` at a clean end of stream. The first byte may
/// take up to [`IDLE_TIMEOUT`]; the rest of the frame must follow within [`FRAME_TIMEOUT`].
async fn read_frame(reader: &mut BufReader<OwnedReadHalf>) -> Result<Option<Vec<u8>>, FrameError> {
    let mut framer = protocol::Framer::default();
    let mut deadline = tokio::time::Instant::now() + IDLE_TIMEOUT;
    loop {
        let available = match tokio::time::timeout_at(deadline, reader.fill_buf()).await {
            Ok(Ok(buf)) => buf,
            _ => return Err(FrameError::Closed),
        };
        if available.is_empty() {
            return if framer.is_midframe() {
                Err(FrameError::Closed)
            } else {
                Ok(None)
            };
        }
        if !framer.is_midframe() {
            deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        }
        let (taken, found) = framer.push(available);
        reader.consume(taken);
        match found {
            Some(Ok(frame)) => return Ok(Some(frame)),
            Some(Err(protocol::TooLarge)) => return Err(FrameError::TooLarge),
            None => {}
        }
    }
}

/// The peer's user, process and executable. When the peer is Lanyard's own binary (the
/// `lanyard token` CLI, kubectl's or git's helper), the app is the process that ran it.
pub fn identify(stream: &UnixStream) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let pid = cred.pid();
    let app = pid.map(app_of).unwrap_or_else(|| "unknown".into());
    Ok(Peer {
        uid: cred.uid(),
        pid,
        app,
    })
}

fn app_of(pid: i32) -> String {
    let exe = |pid: i32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let ours = std::env::current_exe().ok();
    match exe(pid) {
        Some(path) if Some(&path) == ours.as_ref() => parent_of(pid)
            .and_then(exe)
            .map_or_else(|| path.display().to_string(), |p| p.display().to_string()),
        Some(path) => path.display().to_string(),
        None => format!("unknown (pid {pid})"),
    }
}

/// The parent pid, from `/proc/PID/stat` (the field after the parenthesised name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
