//! The broker: a local socket through which other programs get tokens.
//!
//! - [`protocol`]: the wire format (pure types, no I/O), documented in docs/protocol.md;
//! - [`server`]: accepts connections, checks peer credentials, reads frames with limits;
//! - [`peer`]: who is asking: the program behind a connection, looking through the CLI;
//! - [`agent`]: the state behind it — cached tokens, single-flight refresh, approvals;
//! - `flight`: one cached token, its single flight, and the last failure shared;
//! - [`policy`]: which app may have which account's tokens (a pure decision);
//! - [`client`]: the Rust client other programs (and `lanyard token`) use;
//! - [`oidc_agent`]: oidc-agent's IPC on a second socket, for its existing clients.

pub mod agent;
pub mod client;
mod flight;
pub mod oidc_agent;
pub mod peer;
pub mod policy;
pub mod protocol;
pub mod server;

pub use agent::Agent;
pub use client::Client;

use std::path::{Path, PathBuf};

/// `$LANYARD_SOCK`, else `$XDG_RUNTIME_DIR/lanyard/agent.sock`, else a per-user directory
/// under the system's temporary directory.
pub fn socket_path() -> PathBuf {
    match std::env::var_os("LANYARD_SOCK") {
        Some(path) => PathBuf::from(path),
        None => default_dir().join("agent.sock"),
    }
}

/// The directory Lanyard makes for its socket when `$LANYARD_SOCK` names none.
fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("lanyard"),
        _ => std::env::temp_dir().join(format!("lanyard-{}", server::own_uid())),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("an agent is already running at {0}")]
    Running(String),
    #[error(
        "the socket's directory {path} {why}; another user could reach or replace the socket there: remove the directory (Lanyard makes it afresh), or set LANYARD_SOCK to a socket in a directory of your own with mode 0700"
    )]
    Unsafe { path: String, why: String },
    #[error("cannot listen at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the agent's socket: the directory private to the user (0700), the socket 0600.
/// A live agent at the path is an error; a stale socket file is replaced. The directory
/// must be the user's own real directory that no one else may write to; the one Lanyard
/// makes by default (`$XDG_RUNTIME_DIR/lanyard`, else `/tmp/lanyard-UID`) must be 0700
/// too: in a shared directory such as /tmp another user may have made it first.
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
        #[cfg(unix)]
        private_dir(dir, dir == default_dir())?;
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

/// The socket's directory is a real directory of this user's that nobody else may write
/// to; with `strict`, that nobody else may enter either (mode 0700).
#[cfg(unix)]
fn private_dir(dir: &Path, strict: bool) -> Result<(), BindError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let unsafe_because = |why: String| BindError::Unsafe {
        path: dir.display().to_string(),
        why,
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|source| BindError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_because("is a symbolic link".into()));
    }
    if !meta.is_dir() {
        return Err(unsafe_because("is not a directory".into()));
    }
    let own = server::own_uid();
    if meta.uid() != own {
        return Err(unsafe_because(format!(
            "belongs to uid {}, not to you (uid {own})",
            meta.uid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 || (strict && mode & 0o077 != 0) {
        return Err(unsafe_because(format!("has mode {mode:o}, not 700")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    async fn refusal(path: &Path) -> String {
        match bind(path).await {
            Err(e @ BindError::Unsafe { .. }) => e.to_string(),
            Err(e) => panic!("refused, but not as unsafe: {e}"),
            Ok(_) => panic!("bound in {}", path.display()),
        }
    }

    #[tokio::test]
    async fn the_socket_directory_must_be_private_and_ours() {
        let base = tempfile::tempdir().unwrap();
        // Made by Lanyard: 0700, and the socket binds.
        let fresh = base.path().join("fresh/agent.sock");
        bind(&fresh).await.unwrap();
        let mode = std::fs::metadata(fresh.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        // A directory of the user's that others may enter but not write (a home directory,
        // named with LANYARD_SOCK): the socket itself is 0600.
        let home = base.path().join("home");
        std::fs::create_dir(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        bind(&home.join("agent.sock")).await.unwrap();

        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            refusal(&open.join("agent.sock"))
                .await
                .contains("has mode 777, not 700")
        );

        let target = base.path().join("elsewhere");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(
            refusal(&link.join("agent.sock"))
                .await
                .contains("is a symbolic link")
        );
    }

    /// The default directory under /tmp, made first by another user (or left open):
    /// refused. Giving a directory away needs root, which `cargo xtask test` has on CI.
    #[tokio::test]
    async fn a_default_socket_directory_not_ours_and_0700_is_refused() {
        if server::own_uid() != 0 {
            eprintln!("not root: cannot make a directory of another user's to test with");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let theirs = base.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        assert!(
            refusal(&theirs.join("agent.sock"))
                .await
                .contains("belongs to uid 65534, not to you (uid 0)")
        );
        // The fallback directory itself, with no runtime directory: 0755 is refused there.
        let dir = default_dir_under(base.path());
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            private_dir(&dir, true)
                .unwrap_err()
                .to_string()
                .contains("has mode 755")
        );
        assert!(private_dir(&dir, false).is_ok());
    }

    fn default_dir_under(tmp: &Path) -> PathBuf {
        tmp.join(format!("lanyard-{}", server::own_uid()))
    }
}
