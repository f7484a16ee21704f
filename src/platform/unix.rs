//! Linux and macOS: the broker on a Unix socket, peers by their credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(target_os = "linux"))]
use super::Processes;
use super::{BindError, PeerProcess};

/// A user: the uid. Shown as `uid 1000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub u32);

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uid {}", self.0)
    }
}

/// The user this process runs as (its effective uid).
pub fn own_user() -> User {
    // SAFETY: geteuid has no preconditions and cannot fail.
    User(unsafe { libc::geteuid() })
}

/// The most UTF-16 units one keychain item holds, where there is a limit that tokens reach.
pub const KEYCHAIN_ITEM_MAX: Option<usize> = None;

/// The command line's file name.
pub const CLI: &str = "lanyard";

/// `$XDG_RUNTIME_DIR/lanyard/agent.sock`, else `agent.sock` in a per-user directory under
/// the system's temporary directory.
pub fn default_endpoint() -> PathBuf {
    default_dir().join("agent.sock")
}

/// The directory Lanyard makes for its socket by default.
fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("lanyard"),
        _ => std::env::temp_dir().join(format!("lanyard-{}", own_user().0)),
    }
}

/// Where the administrator's files (the managed kiosk file) live.
pub fn managed_dir() -> PathBuf {
    if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/Lanyard")
    } else {
        PathBuf::from("/etc/lanyard")
    }
}

/// The OS keychain: the Secret Service on Linux, Keychain Services on macOS.
pub fn keychain_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    #[cfg(target_os = "linux")]
    {
        Ok(zbus_secret_service_keyring_store::Store::new()?)
    }
    #[cfg(target_os = "macos")]
    {
        Ok(apple_native_keyring_store::keychain::Store::new()?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        Err(keyring_core::Error::NotSupportedByStore(
            "no keychain support on this platform".into(),
        ))
    }
}

/// A directory builder whose directories only the user may enter (0700).
pub fn private_dir_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
}

/// Open options whose new files only the user may read (0600).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// A canonical path as the OS names a process's executable (/proc/PID/exe): as it is.
pub fn as_named(path: PathBuf) -> PathBuf {
    path
}

/// Paths are case-sensitive here.
pub const PATHS_IGNORE_CASE: bool = false;

/// Whether two such paths name the same file: paths are case-sensitive.
pub fn same_path(a: &Path, b: &Path) -> bool {
    a == b
}

/// What separates the commands in `$BROWSER`.
pub const BROWSER_SEPARATOR: char = ':';

/// The platform's own way of opening a URL, for messages.
pub const OPENER: &str = if cfg!(target_os = "macos") {
    "open"
} else {
    "xdg-open"
};

/// A `$BROWSER` command as words, split the way a shell would.
pub fn split_command(command: &str) -> Option<Vec<String>> {
    shell_words::split(command).ok()
}

/// Opens `url` with the platform's opener, detached.
pub fn open_url(url: &str) -> std::io::Result<()> {
    let mut child = std::process::Command::new(OPENER)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // Reaped when it exits, so that a long-lived process keeps no zombie.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// A connection the broker accepted.
pub type Connection = tokio::net::UnixStream;
/// A connection to the broker.
pub type ClientConnection = tokio::net::UnixStream;
/// A connection to the broker, for blocking callers.
pub type BlockingConnection = std::os::unix::net::UnixStream;

/// The broker's listening socket.
pub struct Listener(tokio::net::UnixListener);

impl Listener {
    /// Listens at `path` (0600), made ready by [`prepare`] and cleared of a stale socket.
    pub fn bind(path: &Path) -> std::io::Result<Listener> {
        use std::os::unix::fs::PermissionsExt as _;
        let listener = tokio::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Listener(listener))
    }

    pub async fn accept(&mut self) -> std::io::Result<Connection> {
        self.0.accept().await.map(|(stream, _)| stream)
    }
}

/// Makes the socket's directory: private to the user (0700). It must be the user's own
/// real directory that no one else may write to; the one Lanyard makes by default
/// (`$XDG_RUNTIME_DIR/lanyard`, else `/tmp/lanyard-UID`) must be 0700 too: in a shared
/// directory such as /tmp another user may have made it first.
pub fn prepare(path: &Path) -> Result<(), BindError> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    private_dir_builder()
        .recursive(true)
        .create(dir)
        .map_err(|source| BindError::Io {
            path: path.display().to_string(),
            source,
        })?;
    private_dir(dir, dir == default_dir())
}

/// Whether something is at the endpoint already (a live broker, or a stale socket file).
pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Removes a stale socket file that no broker serves.
pub fn clear_stale(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)
}

/// The socket's directory is a real directory of this user's that nobody else may write
/// to; with `strict`, that nobody else may enter either (mode 0700).
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
    let own = own_user().0;
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

pub async fn connect(path: &Path) -> std::io::Result<ClientConnection> {
    tokio::net::UnixStream::connect(path).await
}

pub fn connect_blocking(path: &Path) -> std::io::Result<BlockingConnection> {
    std::os::unix::net::UnixStream::connect(path)
}

/// The user serving the broker at the other end.
pub fn server_user(stream: &ClientConnection) -> std::io::Result<User> {
    Ok(User(stream.peer_cred()?.uid()))
}

/// [`server_user`], for blocking callers.
pub fn blocking_server_user(stream: &BlockingConnection) -> std::io::Result<User> {
    Ok(User(credentials(stream)?.0))
}

/// The user and process at the other end of a connected socket, for blocking callers
/// (std's `peer_cred` is not stable yet).
fn credentials(stream: &std::os::unix::net::UnixStream) -> std::io::Result<(u32, Option<i32>)> {
    use std::os::fd::AsRawFd as _;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `cred`.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((cred.uid, Some(cred.pid).filter(|p| *p > 0)))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: getpeereid writes the two ids.
        if unsafe { libc::getpeereid(stream.as_raw_fd(), &mut uid, &mut gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((uid, None))
    }
}

/// The process serving the broker at the other end: its user, pid and executable.
pub fn server_of(
    stream: &ClientConnection,
) -> std::io::Result<(User, Option<i32>, Option<PathBuf>)> {
    let cred = stream.peer_cred()?;
    #[cfg(target_os = "linux")]
    let exe = cred.pid().and_then(linux::exe);
    #[cfg(not(target_os = "linux"))]
    let exe = None;
    Ok((User(cred.uid()), cred.pid(), exe))
}

/// The process at the other end of an accepted connection. On Linux every process read is
/// pinned with a pidfd (the socket's own, `SO_PEERPIDFD`, where the kernel has it) and
/// checked to be alive after its executable was read: a client that exits mid-way is
/// refused, never named after whatever took its pid.
pub fn peer_of(stream: &Connection) -> std::io::Result<PeerProcess> {
    #[cfg(target_os = "linux")]
    {
        linux::peer_of(stream)
    }
    #[cfg(not(target_os = "linux"))]
    {
        // macOS: the user; naming the process (LOCAL_PEERPID, proc_pidpath) is not done yet.
        Ok(PeerProcess {
            user: User(stream.peer_cred()?.uid()),
            pid: None,
            exe: None,
            processes: Box::new(NoProcesses),
        })
    }
}

#[cfg(not(target_os = "linux"))]
struct NoProcesses;

#[cfg(not(target_os = "linux"))]
impl Processes for NoProcesses {
    fn exe(&self, _: i32) -> Option<PathBuf> {
        None
    }
    fn parent(&self, _: i32) -> Option<i32> {
        None
    }
    fn args(&self, _: i32) -> Vec<String> {
        Vec::new()
    }
}

/// The command a person runs to stop process `pid`.
pub fn stop_command(pid: i32) -> String {
    format!("kill {pid}")
}

/// Asks process `pid` (a headless agent) to stop.
pub fn terminate(pid: i32) {
    // SAFETY: kill with a pid and a valid signal; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// Resolves when process `pid` has exited, or `patience` has passed: its pidfd becomes
/// readable (Linux), else it no longer answers signal 0.
pub async fn exited(pid: i32, patience: Duration) -> bool {
    #[cfg(target_os = "linux")]
    if let Some(pin) = linux::Pidfd::open(pid) {
        let ms = patience.as_millis().min(i32::MAX as u128) as i32;
        return tokio::task::spawn_blocking(move || pin.wait(ms))
            .await
            .unwrap_or(false);
    }
    let deadline = tokio::time::Instant::now() + patience;
    // SAFETY: signal 0 only checks that the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
    use std::path::PathBuf;

    use tokio::net::UnixStream;

    use super::super::{PeerProcess, Processes};
    use super::User;

    pub fn peer_of(stream: &UnixStream) -> std::io::Result<PeerProcess> {
        let cred = stream.peer_cred()?;
        let Some(pid) = cred.pid().filter(|p| *p > 0) else {
            return Ok(PeerProcess {
                user: User(cred.uid()),
                pid: None,
                exe: None,
                processes: Box::new(Proc),
            });
        };
        let gone = || {
            std::io::Error::other(format!(
                "client pid {pid}: the client exited before it could be identified"
            ))
        };
        let pin = Pidfd::of_peer(stream)
            .or_else(|| Pidfd::open(pid))
            .ok_or_else(gone)?;
        let exe = Proc.exe(pid);
        if !pin.alive() {
            return Err(gone());
        }
        Ok(PeerProcess {
            user: User(cred.uid()),
            pid: Some(pid),
            exe,
            processes: Box::new(Pinned {
                child: (pid, pin),
                parents: std::cell::RefCell::new(Vec::new()),
            }),
        })
    }

    pub fn exe(pid: i32) -> Option<PathBuf> {
        Proc.exe(pid)
    }

    /// /proc as it is: no pinning.
    struct Proc;

    impl Processes for Proc {
        fn exe(&self, pid: i32) -> Option<PathBuf> {
            std::fs::read_link(format!("/proc/{pid}/exe")).ok()
        }

        fn parent(&self, pid: i32) -> Option<i32> {
            // The field after the parenthesised name, which may itself hold spaces and ')'.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            stat.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        }

        fn args(&self, pid: i32) -> Vec<String> {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect()
                })
                .unwrap_or_default()
        }
    }

    /// /proc read under pidfds: every process the walk reads is alive, and each parent
    /// still the parent of the process below it, after the read. A read that cannot be
    /// vouched for answers `None`, and the walk refuses.
    struct Pinned {
        child: (i32, Pidfd),
        /// Pidfds of the ancestors read so far, by pid.
        parents: std::cell::RefCell<Vec<(i32, Pidfd)>>,
    }

    impl Pinned {
        fn alive(&self, pid: i32) -> bool {
            if pid == self.child.0 {
                return self.child.1.alive();
            }
            self.parents
                .borrow()
                .iter()
                .any(|(p, fd)| *p == pid && fd.alive())
        }
    }

    impl Processes for Pinned {
        fn exe(&self, pid: i32) -> Option<PathBuf> {
            let exe = Proc.exe(pid)?;
            self.alive(pid).then_some(exe)
        }

        fn parent(&self, pid: i32) -> Option<i32> {
            let parent = Proc.parent(pid)?;
            if parent <= 0 {
                // No parent visible (another pid namespace): nothing to name.
                return None;
            }
            let pin = Pidfd::open(parent)?;
            // Pinned after it was read: still `pid`'s parent, with `pid` alive, means the
            // pidfd holds that parent and not a process that took its pid since.
            if Proc.parent(pid) != Some(parent) || !self.alive(pid) {
                return None;
            }
            self.parents.borrow_mut().push((parent, pin));
            Some(parent)
        }

        fn args(&self, pid: i32) -> Vec<String> {
            let args = Proc.args(pid);
            if self.alive(pid) { args } else { Vec::new() }
        }
    }

    pub struct Pidfd(OwnedFd);

    impl Pidfd {
        /// The socket peer's own pidfd (Linux 6.5 and later): no race at all.
        fn of_peer(stream: &UnixStream) -> Option<Pidfd> {
            let mut fd: libc::c_int = -1;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into `fd`.
            let rc = unsafe {
                libc::getsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_PEERPIDFD,
                    (&mut fd as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            // SAFETY: a descriptor the kernel just gave this process.
            (rc == 0 && fd >= 0).then(|| Pidfd(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        pub fn open(pid: i32) -> Option<Pidfd> {
            // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
            // SAFETY: a non-negative result is a descriptor this process now owns.
            (fd >= 0).then(|| Pidfd(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// The process has not exited: its pidfd is not readable yet.
        fn alive(&self) -> bool {
            self.poll(0) == 0
        }

        /// Waits up to `ms` milliseconds for the process to exit; whether it did.
        pub fn wait(&self, ms: i32) -> bool {
            self.poll(ms) > 0
        }

        fn poll(&self, ms: i32) -> i32 {
            let mut poll = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; readable means the process has exited.
            unsafe { libc::poll(&mut poll, 1, ms) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// What `broker::bind` does with a path no agent serves.
    async fn bind(path: &Path) -> Result<Listener, BindError> {
        prepare(path)?;
        Listener::bind(path).map_err(|source| BindError::Io {
            path: path.display().to_string(),
            source,
        })
    }

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
        if own_user().0 != 0 {
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
        tmp.join(format!("lanyard-{}", own_user().0))
    }
}
