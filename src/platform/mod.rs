//! Everything that differs by operating system, behind one surface: one file per OS
//! (`unix/` for Linux and macOS, `windows/`), each defining the same items. Code
//! above this module is one copy for every OS.
//!
//! | | Unix | Windows |
//! |---|---|---|
//! | the broker's transport ([`Listener`], [`Connection`], [`connect`]) | a Unix socket, 0600, in a directory of the user's own that nobody else may write | a named pipe whose DACL grants the user only, created as the first instance so no other process can squat the name, refusing remote clients |
//! | who is at the other end ([`peer_of`], [`server_user`]) | `SO_PEERCRED` and /proc, each read pinned by a pidfd (Linux); `LOCAL_PEERPID` and libproc, each read checked against the process's start time (macOS) | `GetNamedPipeClientProcessId`, `QueryFullProcessImageNameW`, the process token's user SID, each process held by a handle |
//! | the default endpoint ([`default_endpoint`]) | `$XDG_RUNTIME_DIR/lanyard/agent.sock`, else `/tmp/lanyard-UID/agent.sock` | `\\.\pipe\lanyard-SID`, by the user's SID |
//! | a remote host's sockets for `lanyard ssh` ([`forward_dir`]) | a new 0700 directory under `$XDG_RUNTIME_DIR`, else `/tmp` | none: ssh cannot forward a named pipe |
//! | a headless agent making way for the app ([`terminate`], [`exited`]) | SIGTERM, then a pidfd | `TerminateProcess`, then the process handle |
//! | a kiosk browser and its helpers ([`Group`]) | a process group: SIGTERM, then SIGKILL | a job object (killed when Lanyard exits), started suspended until it is in the job |
//! | a request to stop (`shutdown_requested`, with the `broker` feature) | SIGTERM, Ctrl-C | Ctrl-C, Ctrl-Break, the console closing, log-off, shutdown |
//! | managed files ([`managed_dir`]) | `/etc/lanyard`; macOS `/Library/Application Support/Lanyard` | `%ProgramData%\Lanyard` |
//! | the seat's idle time (`idle_probe`, with the `desktop` feature) | the compositor's idle monitor on D-Bus, or X11's screen-saver extension (Linux); none on macOS yet | `GetLastInputInfo` |
//! | memory used once ([`release_memory`]: the agent after start-up and refreshes, the app after its window closes) | file-mapped code and read-only data unmapped (kept in the page cache), `malloc_trim` (Linux); nothing on macOS yet | nothing: Windows trims working sets itself |
//! | a webview's helpers once the last webview is gone ([`end_webview_helpers`]) | WebKitGTK's network process ended (Linux); nothing on macOS | nothing: WebView2 ends its own |
//! | the webview's start-up environment ([`webview_environment`]) | accelerated compositing off where there is no GPU (Linux); nothing on macOS | nothing: WebView2 chooses |
//! | a command run in place of this process ([`exec`]: `lanyard exec`) | `execvp` | the command as a child, its exit status this process's |
//! | a file replaced whole ([`replace_file`]) | `rename` | `MoveFileEx`, tried again while another writer's replacement of the same file holds it (access denied) |
//! | the keychain ([`keychain_store`], [`KEYCHAIN_ITEM_MAX`]) | the Secret Service; macOS Keychain Services | Credential Manager, whose items hold 2,560 bytes: larger values are kept in parts |
//!
//! A user is a [`User`]: a uid on Unix, a SID string on Windows.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

use std::path::PathBuf;
use std::time::Duration;

/// Reads a small text file that something else may have put in the way: only a regular
/// file (a FIFO, a device or a directory in its place is an error at once, never a hang or
/// an endless read), at most `cap` bytes, and with `own` only one the user owns (as git's
/// `safe.directory` trusts only the user's own repositories).
pub fn read_small_file(path: &std::path::Path, cap: u64, own: bool) -> std::io::Result<String> {
    use std::io::Read as _;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let file = open_for_reading(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse(format!("{} is not a regular file", path.display())));
    }
    if own && !owned_by_user(&meta) {
        return Err(refuse(format!(
            "{} belongs to another user",
            path.display()
        )));
    }
    if meta.len() > cap {
        return Err(refuse(format!(
            "{} is larger than {cap} bytes",
            path.display()
        )));
    }
    let mut text = String::new();
    file.take(cap).read_to_string(&mut text)?;
    Ok(text)
}

/// Why the broker's endpoint cannot be served.
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

/// The process at the other end of a broker connection, with a view of the process table
/// in which it and every ancestor read are pinned (see [`Processes`]).
pub struct PeerProcess {
    pub user: User,
    pub pid: Option<i32>,
    /// `None` when it cannot be read (another user's process, say).
    pub exe: Option<PathBuf>,
    pub processes: Box<dyn Processes>,
}

/// The process table, as far as naming a caller needs it. Each answer is about the process
/// that had the pid when the connection was identified, or `None`.
pub trait Processes {
    fn exe(&self, pid: i32) -> Option<PathBuf>;
    fn parent(&self, pid: i32) -> Option<i32>;
    /// The command line; empty when it cannot be read.
    fn args(&self, pid: i32) -> Vec<String>;
}

/// How long since the seat last saw input from anyone (keyboard, mouse, gamepad), if the
/// platform can tell. `idle_probe` (the `desktop` feature) gives this desktop's: the compositor's idle monitor on
/// D-Bus or X11's screen-saver extension on Linux, `GetLastInputInfo` on Windows; macOS has
/// none yet.
pub trait IdleProbe: Send + Sync {
    fn idle(&self) -> Option<Duration>;
}

impl std::fmt::Debug for dyn IdleProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdleProbe")
    }
}
