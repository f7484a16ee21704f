//! The broker: a local socket through which other programs get tokens.
//!
//! - [`protocol`]: the wire format (pure types, no I/O), documented in docs/protocol.md;
//! - `accept`: the accept loop every socket shares; each peer named in its own task;
//! - [`server`]: one connection of the agent's protocol: frames with limits, what a remote
//!   host may not ask; [`run`] serves the agent's own socket with it;
//! - [`peer`]: who is asking: the program behind a connection, looking through the CLI;
//! - [`agent`]: the state behind it — cached tokens, single-flight refresh, approvals;
//! - `flight`: one cached token, its single flight, and the last failure shared;
//! - [`policy`]: which app may have which account's tokens (a pure decision);
//! - [`client`]: the Rust client other programs (and `lanyard token`) use;
//! - [`oidc_agent`]: oidc-agent's IPC on a second socket, for its existing clients;
//! - [`forward`]: both sockets again for one remote host (`lanyard ssh`), its requests
//!   named `ssh:HOST`; it stands above `server` and `oidc_agent`.

mod accept;
pub mod agent;
pub mod client;
mod flight;
pub mod forward;
pub mod oidc_agent;
pub mod peer;
pub mod policy;
pub mod protocol;
pub mod server;

pub use agent::Agent;
pub use client::Client;

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::platform;

pub use crate::platform::BindError;

/// Serves the agent's own socket until `shutdown` completes, then stops accepting and
/// ends every connection. Each connection is its own task: a client that stalls, trickles
/// bytes, sends garbage or oversize frames is answered or dropped without delaying anyone
/// else.
pub async fn run(listener: platform::Listener, agent: Agent, shutdown: impl Future<Output = ()>) {
    run_with(listener, agent, server::MAX_CONNECTIONS, shutdown).await;
}

/// [`run`], serving at most `limit` connections at once.
pub async fn run_with(
    listener: platform::Listener,
    agent: Agent,
    limit: usize,
    shutdown: impl Future<Output = ()>,
) {
    let clis = agent.clis().clone();
    let user = platform::own_user();
    accept::accept(
        listener,
        &clis,
        server::limits(limit),
        shutdown,
        move |stream, peer| {
            server::serve(
                stream,
                peer,
                agent.clone(),
                user.clone(),
                Some(forward::open),
            )
        },
    )
    .await;
}

/// `$LANYARD_SOCK`, else the platform's default: `$XDG_RUNTIME_DIR/lanyard/agent.sock` or a
/// per-user directory under the system's temporary directory on Unix,
/// `\\.\pipe\lanyard-USER` on Windows.
pub fn socket_path() -> PathBuf {
    match std::env::var_os("LANYARD_SOCK") {
        Some(path) => PathBuf::from(path),
        None => platform::default_endpoint(),
    }
}

/// Binds the agent's endpoint (see [`platform::prepare`] for what is checked first). A
/// live agent there is an error; a stale socket file is replaced.
pub async fn bind(path: &Path) -> Result<platform::Listener, BindError> {
    let io = |source| BindError::Io {
        path: path.display().to_string(),
        source,
    };
    platform::prepare(path)?;
    if platform::exists(path) {
        if Client::connect(path).await.is_ok() {
            return Err(BindError::Running(path.display().to_string()));
        }
        platform::clear_stale(path).map_err(io)?;
    }
    platform::Listener::bind(path).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt as _, BufReader};

    use super::*;
    use crate::config::Config;
    use crate::platform::{self, Listener};
    use crate::session::Lanyard;
    use crate::store::Records;

    fn agent(dir: &Path) -> Agent {
        let config = Config::parse(Path::new("/config.toml"), "").unwrap();
        let lanyard = Lanyard::new(config, Records::new(None)).unwrap();
        Agent::new(lanyard, Some(dir.to_owned()), None)
    }

    /// Clients that hold every slot and say nothing: the next client is told at once that
    /// the agent is busy, and shutdown does not wait for them.
    #[tokio::test]
    async fn a_client_holding_every_slot_blocks_neither_others_nor_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let path = if cfg!(windows) {
            format!(r"\\.\pipe\lanyard-test-{}", std::process::id()).into()
        } else {
            dir.path().join("agent.sock")
        };
        let listener = Listener::bind(&path).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run_with(listener, agent(dir.path()), 2, async {
            let _ = stopped.await;
        }));
        let _first = platform::connect(&path).await.unwrap();
        let _second = platform::connect(&path).await.unwrap();
        let third = platform::connect(&path).await.unwrap();
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(third).read_line(&mut line),
        )
        .await
        .expect("the third client is answered at once")
        .unwrap();
        let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["error"]["code"], "busy", "{answer}");
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("shutdown does not wait for the silent clients")
            .unwrap();
    }

    /// A peer of `app`, from a remote host's socket or not.
    fn peer(app: &str, remote: bool) -> peer::Peer {
        peer::Peer {
            user: platform::own_user(),
            pid: Some(1),
            app: app.into(),
            through: None,
            process: Some(1),
            parent: None,
            remote,
        }
    }

    /// A remote host cannot tell which accounts exist: an unknown account is answered
    /// as one it is not allowed; nor find the one signed in at an issuer, nor exchange
    /// tokens. The desktop's own programs are told plainly.
    #[tokio::test]
    async fn a_remote_host_learns_nothing_of_the_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let agent = agent(dir.path());
        let own = agent
            .token(
                "nobody",
                60,
                &Default::default(),
                &peer("/usr/bin/curl", false),
            )
            .await
            .unwrap_err();
        assert_eq!(own.code, protocol::Code::UnknownAccount, "{own:?}");
        let host = peer("ssh:build-box", true);
        let remote = agent
            .token("nobody", 60, &Default::default(), &host)
            .await
            .unwrap_err();
        assert_eq!(remote.code, protocol::Code::ApprovalRequired, "{remote:?}");
        assert!(!remote.message.contains("config.toml"), "{remote:?}");
        let by_issuer =
            serde_json::json!({"request": "access_token", "issuer": "https://id.example.com"});
        let answer = oidc_agent::handle(&agent, &by_issuer, &host).await;
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("name the account"),
            "{answer}"
        );
        let exchange = protocol::Op::Token {
            account: "work".into(),
            min_valid: 60,
            scope: None,
            audience: Some("https://api.example.com".into()),
            exchange: true,
            sign_in: false,
        };
        assert!(!server::allowed_from_host(&exchange));
    }
}
