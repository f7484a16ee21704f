//! The broker: a local socket through which other programs get tokens.
//!
//! - [`protocol`]: the wire format (pure types, no I/O), documented in docs/protocol.md;
//! - [`server`]: accepts connections, checks peer credentials, reads frames with limits;
//! - [`peer`]: who is asking: the program behind a connection, looking through the CLI;
//! - [`agent`]: the state behind it — cached tokens, single-flight refresh, approvals;
//! - `flight`: one cached token, its single flight, and the last failure shared;
//! - [`policy`]: which app may have which account's tokens (a pure decision);
//! - [`client`]: the Rust client other programs (and `lanyard token`) use;
//! - [`oidc_agent`]: oidc-agent's IPC on a second socket, for its existing clients;
//! - [`forward`]: both sockets again for one remote host (`lanyard ssh`), its requests
//!   named `ssh:HOST`.

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

use std::path::{Path, PathBuf};

use crate::platform;

pub use crate::platform::BindError;

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
