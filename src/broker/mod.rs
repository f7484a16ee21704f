//! The broker: a local socket through which other programs get tokens.
//!
//! - [`protocol`]: the wire format (pure types, no I/O), documented in docs/protocol.md;
//! - [`server`]: accepts connections, checks peer credentials, reads frames with limits;
//! - [`agent`]: the state behind it — cached tokens, single-flight refresh, approvals;
//! - [`policy`]: which app may have which account's tokens (a pure decision);
//! - [`client`]: the Rust client other programs (and `lanyard token`) use;
//! - [`oidc_agent`]: oidc-agent's IPC on a second socket, for its existing clients.

pub mod agent;
pub mod client;
pub mod oidc_agent;
pub mod policy;
pub mod protocol;
pub mod server;

pub use agent::Agent;
pub use client::Client;

use std::path::{Path, PathBuf};

/// `$LANYARD_SOCK`, else `$XDG_RUNTIME_DIR/lanyard/agent.sock`, else a per-user directory
/// under the system's temporary directory.
pub fn socket_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LANYARD_SOCK") {
        return PathBuf::from(path);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("lanyard/agent.sock"),
        _ => std::env::temp_dir()
            .join(format!("lanyard-{}", server::own_uid()))
            .join("agent.sock"),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("an agent is already running at {0}")]
    Running(String),
    #[error("cannot listen at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the agent's socket: the directory private to the user (0700), the socket 0600.
/// A live agent at the path is an error; a stale socket file is replaced.
pub async fn bind(path: &Path) -> Result<tokio::net::UnixListener, BindError> {
    let io = |source| BindError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io)?;
    }
    if path.exists() {
        if Client::connect(path).await.is_ok() {
            return Err(BindError::Running(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(listener)
}
