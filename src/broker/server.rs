//! The agent's socket server: accepts connections, checks who is calling, reads frames
//! with limits, and answers requests through [`Agent`].
//!
//! `run` is handed a bound listener and a shutdown future, so tests bind in a temporary
//! directory. Each connection is its own task: a client that stalls, trickles bytes, sends
//! garbage or oversize frames is answered or dropped without delaying anyone else. Every
//! connection's peer is checked before its first request: another user is refused.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::sync::broadcast;

use super::accept::Limits;
use super::agent::Agent;
use super::peer::Peer;
use super::protocol::{self, Code, ErrorBody, EventFrame, Op, ProgressFrame, Response};
use crate::flow::Target;
use crate::platform::{Connection, User};

type OwnedReadHalf = ReadHalf<Connection>;
type OwnedWriteHalf = WriteHalf<Connection>;

/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Once a frame has begun, the rest must arrive within this.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not read its answer within this is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// At most `max` connections of this protocol at once.
pub(super) fn limits(max: usize) -> Limits {
    let busy = protocol::encode(&Response::error(
        0,
        Code::Busy,
        format!("the agent is serving {max} connections already; try again"),
    ));
    Limits {
        max,
        busy,
        parent: false,
    }
}

/// Opens a remote host's own sockets for the connection that asked (`forward`), served
/// until what it returns is dropped. The forwarder stands above this module
/// (`broker::forward`), so it is handed in.
pub type Forwarder = fn(&Agent, &str, &Peer) -> Result<Box<dyn Forwarded>, ErrorBody>;

/// A remote host's sockets, open while this lives.
pub trait Forwarded: Send {
    /// What `forward` answers: where the sockets are.
    fn reply(&self) -> Value;
}

/// What a remote host may ask through its forwarded socket: what an app that holds a
/// token needs, each under `ssh:HOST`'s approval. Signing in or out, listing the accounts,
/// watching events, opening more forwards and ending a kiosk session are the desktop's;
/// so is a token exchange, which the client authenticates for (the host could not make
/// one at the provider with the token alone).
pub fn allowed_from_host(op: &Op) -> bool {
    matches!(
        op,
        Op::Hello { .. }
            | Op::Token {
                exchange: false,
                ..
            }
            | Op::Identity { .. }
            | Op::Proof { .. }
            | Op::IdToken { .. }
    )
}

/// One connection of the agent's protocol, from `peer`, until it closes. `forwarder`
/// serves `forward`; without one, `forward` is not offered.
pub(super) async fn serve(
    stream: Connection,
    peer: std::io::Result<Peer>,
    agent: Agent,
    user: User,
    forwarder: Option<Forwarder>,
) {
    let peer = match peer {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot identify a client; closing");
            return;
        }
    };
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(8 * 1024, read);
    if peer.user != user {
        tracing::warn!(user = %peer.user, pid = ?peer.pid, "refused a client of another user");
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
        if peer.remote && !allowed_from_host(&request.op) {
            let refusal = Response {
                id,
                outcome: protocol::Outcome::Error(not_allowed_from_host(&peer)),
            };
            if send(&mut write, &refusal).await.is_err() {
                return;
            }
            continue;
        }
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
            (
                true,
                op @ (Op::Login { .. } | Op::Logout { .. } | Op::Token { sign_in: true, .. }),
            ) => {
                match with_progress(&agent, id, op, &peer, &mut reader, &mut write).await {
                    Some(response) => response,
                    // The client went away: its sign-in (or the wait for the provider's
                    // sign-out page) went with it.
                    None => return,
                }
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
            (true, Op::Forward { host }) => match forwarder
                .ok_or_else(|| ErrorBody {
                    code: Code::NotSupported,
                    message: "this socket opens no sockets for remote hosts".into(),
                    hint: None,
                })
                .and_then(|open| open(&agent, &host, &peer))
            {
                Ok(forward) => {
                    if send(&mut write, &Response::ok(id, forward.reply()))
                        .await
                        .is_ok()
                    {
                        held(&mut reader).await;
                    }
                    // Dropping it closes and removes the host's sockets.
                    drop(forward);
                    return;
                }
                Err(body) => respond(id, Err(body)),
            },
            (true, op) => handle(&agent, id, op, &peer).await,
        };
        if send(&mut write, &response).await.is_err() {
            return;
        }
    }
}

async fn handle(agent: &Agent, id: u64, op: Op, peer: &Peer) -> Response {
    let result = match op {
        Op::Accounts => Ok(serde_json::to_value(agent.accounts_for(peer)).expect("serialisable")),
        Op::Identity { account } => agent
            .identity(&account, peer)
            .await
            .map(serde_json::Value::Object),
        op @ Op::Token { .. } => token(agent, op, peer, &|_| {}).await,
        Op::IdToken { account, min_valid } => agent
            .fresh_id_token(&account, min_valid, peer)
            .await
            .map(|t| serde_json::to_value(t).expect("serialisable")),
        Op::ClientCredentials { account, scope } => agent
            .client_credentials(&account, scope.as_deref(), peer)
            .await
            .map(|t| serde_json::to_value(t).expect("serialisable")),
        Op::EndSession => agent.end_session(peer).await,
        Op::Proof {
            account,
            method,
            url,
            nonce,
            min_valid,
        } => {
            let request = protocol::ProofRequest {
                method,
                url,
                nonce,
                min_valid,
            };
            agent
                .proof(&account, &request, peer)
                .await
                .map(|p| serde_json::to_value(p).expect("serialisable"))
        }
        Op::Hello { .. }
        | Op::Subscribe
        | Op::Login { .. }
        | Op::Logout { .. }
        | Op::Forward { .. } => {
            unreachable!("handled by the connection loop")
        }
    };
    respond(id, result)
}

/// A `token` request: one that can wait for a sign-in (`sign_in`) brings the person back
/// when the account needs it, telling `progress` while it waits.
async fn token(
    agent: &Agent,
    op: Op,
    peer: &Peer,
    progress: &(dyn Fn(crate::session::Progress<'_>) + Sync),
) -> Result<serde_json::Value, ErrorBody> {
    let Op::Token {
        account,
        min_valid,
        scope,
        audience,
        exchange,
        sign_in,
    } = op
    else {
        unreachable!("called for token requests only")
    };
    let target = Target {
        scope,
        audience,
        exchange,
    };
    let answer = if sign_in {
        agent
            .token_signing_in(&account, min_valid, &target, peer, progress)
            .await
    } else {
        agent.token(&account, min_valid, &target, peer).await
    };
    answer.map(|t| serde_json::to_value(t).expect("serialisable"))
}

/// The refusal of what a remote host may not ask.
pub fn not_allowed_from_host(peer: &Peer) -> ErrorBody {
    ErrorBody {
        code: Code::NotAllowedFromHost,
        message: format!(
            "{} may ask for tokens and identity only: signing in or out, listing accounts, watching events, opening sockets and token exchange are done on the desktop itself",
            peer.app
        ),
        hint: None,
    }
}

fn respond(id: u64, result: Result<serde_json::Value, protocol::ErrorBody>) -> Response {
    match result {
        Ok(value) => Response::ok(id, value),
        Err(body) => Response {
            id,
            outcome: protocol::Outcome::Error(body),
        },
    }
}

/// Runs a `login`, a `logout` or a `token` that may wait for a sign-in, sending its
/// progress as frames before the answer. Returns
/// `None` when the client goes away meanwhile: the work is dropped with it (a sign-in
/// cancelled stores nothing).
async fn with_progress(
    agent: &Agent,
    id: u64,
    op: Op,
    peer: &Peer,
    reader: &mut BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
) -> Option<Response> {
    let (tell, mut told) = tokio::sync::mpsc::unbounded_channel();
    let progress = move |p: crate::session::Progress<'_>| {
        let _ = tell.send(stage(p));
    };
    let work = async {
        match op {
            Op::Login {
                account,
                open_browser,
                prompt,
                device,
                timeout,
                as_new_user,
            } => {
                let request = super::agent::LoginRequest {
                    open_browser,
                    prompt,
                    device,
                    timeout: Duration::from_secs(timeout.unwrap_or(300)),
                    as_new_user,
                };
                agent.login(&account, &request, peer, &progress).await
            }
            Op::Logout {
                account,
                local,
                open_browser,
            } => {
                agent
                    .logout(&account, (local, open_browser), peer, &progress)
                    .await
            }
            op @ Op::Token { .. } => token(agent, op, peer, &progress).await,
            _ => unreachable!("only login, logout and token with sign_in report progress"),
        }
    };
    tokio::pin!(work);
    // Watch for the client hanging up while the work runs; anything it sends meanwhile
    // waits for the next turn of the connection loop.
    let mut watching = true;
    loop {
        tokio::select! {
            result = &mut work => {
                while let Ok(progress) = told.try_recv() {
                    send(write, &ProgressFrame { id, progress }).await.ok()?;
                }
                return Some(respond(id, result));
            }
            Some(progress) = told.recv() => {
                send(write, &ProgressFrame { id, progress }).await.ok()?;
            }
            read = reader.fill_buf(), if watching => match read {
                Ok([]) | Err(_) => return None,
                Ok(_) => watching = false,
            },
        }
    }
}

/// A sign-in's progress as the wire has it.
fn stage(p: crate::session::Progress<'_>) -> protocol::Progress {
    use crate::session::Progress as P;
    match p {
        P::BrowserOpened { url } => protocol::Progress::BrowserOpened {
            url: url.to_owned(),
        },
        P::OpenYourself { url, reason } => protocol::Progress::OpenYourself {
            url: url.to_owned(),
            reason,
        },
        // (A pasted sign-in runs in the command line's own process, never in the agent.)
        P::Waiting | P::PasteBack { .. } => protocol::Progress::Waiting,
        P::DeviceCode {
            user_code,
            verification_uri,
            verification_uri_complete,
            expires_in,
        } => protocol::Progress::DeviceCode {
            user_code: user_code.to_owned(),
            verification_uri: verification_uri.to_owned(),
            verification_uri_complete: verification_uri_complete.map(str::to_owned),
            expires_in: expires_in.as_secs(),
        },
        P::Finishing => protocol::Progress::Finishing,
    }
}

/// Waits until the client closes the connection (whatever it sends meanwhile is
/// dropped): a `forward` lasts as long as its connection.
async fn held(reader: &mut BufReader<OwnedReadHalf>) {
    loop {
        match reader.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(buf) => {
                let n = buf.len();
                reader.consume(n);
            }
        }
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
