//! Linux and macOS: the broker on a Unix socket, peers by their credentials.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
#[cfg(feature = "desktop")]
pub mod linux_idle;
#[cfg(target_os = "linux")]
mod linux_memory;
#[cfg(target_os = "macos")]
mod macos;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// Makes `name`, a new directory of the user's own (0700), for the sockets of one remote
/// host (`lanyard ssh`): under `$XDG_RUNTIME_DIR`, else the temporary directory. It must
/// not exist yet, so nobody can have made it first.
pub fn forward_dir(name: &str) -> std::io::Result<PathBuf> {
    let base = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::temp_dir(),
    };
    let dir = base.join(name);
    private_dir_builder().create(&dir)?;
    Ok(dir)
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

/// Runs `command` in this process's place (`execvp`): its exit status is this process's,
/// and signals reach it directly. Returns only when it cannot be run.
pub fn exec(command: &mut std::process::Command) -> std::io::Error {
    std::os::unix::process::CommandExt::exec(command)
}

/// Puts `from` in the place of `to`, atomically.
pub fn replace_file(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::rename(from, to)
}

/// Open options whose new files only the user may read (0600).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Opens `path` for reading without waiting on it (a FIFO in its place does not block).
pub fn open_for_reading(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// Whether the user owns what `meta` describes.
pub fn owned_by_user(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::MetadataExt::uid(meta) == own_user().0
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

/// Opens `url` with the platform's opener, detached: the opener's process, for the caller
/// to learn whether it failed (and to reap).
pub fn open_url(url: &str) -> std::io::Result<Option<std::process::Child>> {
    std::process::Command::new(OPENER)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Some)
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
    Ok((User(cred.uid()), cred.pid(), cred.pid().and_then(os::exe)))
}

/// The process at the other end of an accepted connection. On Linux every process read is
/// pinned with a pidfd (the socket's own, `SO_PEERPIDFD`, where the kernel has it) and
/// checked to be alive after its executable was read; on macOS each read is checked
/// against the process's start time. Either way a client that exits mid-way is refused,
/// never named after whatever took its pid.
pub fn peer_of(stream: &Connection) -> std::io::Result<PeerProcess> {
    os::peer_of(stream)
}

#[cfg(target_os = "linux")]
use linux as os;
#[cfg(target_os = "macos")]
use macos as os;

/// Where the kiosk policy is read from besides the kiosk file: nowhere on Unix.
pub const POLICY: Option<&str> = None;

/// The kiosk policy besides the kiosk file: none on Unix (the file is the policy).
pub fn kiosk_policy() -> std::io::Result<Option<toml::Table>> {
    Ok(None)
}

/// The XDG autostart entry that starts the app at login (Linux).
fn autostart_entry() -> Option<PathBuf> {
    let base = directories::BaseDirs::new()?;
    Some(base.config_dir().join("autostart/lanyard.desktop"))
}

/// Whether the app starts at login.
pub fn autostart_enabled() -> bool {
    autostart_entry().is_some_and(|p| p.exists())
}

/// Adds or removes the entry that starts `exe` (hidden in the tray) at login: an XDG
/// autostart entry on Linux; macOS is not supported yet.
pub fn set_autostart(enabled: bool, exe: &Path) -> std::io::Result<()> {
    if !cfg!(target_os = "linux") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "start at login is not supported on this system yet",
        ));
    }
    let path = autostart_entry()
        .ok_or_else(|| std::io::Error::other("this system has no config directory"))?;
    let within =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if !enabled {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(within(e)),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(within)?;
    }
    let exe = exe.display().to_string().replace('"', "\\\"");
    let text = format!(
        "[Desktop Entry]\nType=Application\nName=Lanyard\nComment=Sign-in helper and token broker\n\
         Exec=\"{exe}\" --hidden\nIcon=lanyard-desktop\nX-GNOME-Autostart-enabled=true\n"
    );
    std::fs::write(&path, text).map_err(within)
}

/// The commands a kiosk seat tries for the browser named `name` (`None`: the default,
/// Chromium), in order; `None` for a name that is not a known browser (it is a command
/// itself). Distributions spell the same browser differently.
pub fn seat_browser_commands(name: Option<&str>) -> Option<Vec<String>> {
    let names: &[&str] = match name {
        None | Some("chromium") => &["chromium", "chromium-browser"],
        Some("chrome") => &["google-chrome", "google-chrome-stable"],
        Some("edge") => &["microsoft-edge", "microsoft-edge-stable"],
        Some("firefox") => &["firefox", "firefox-esr"],
        Some(_) => return None,
    };
    Some(names.iter().map(|n| (*n).to_owned()).collect())
}

/// Hands back memory a long-running process used once: unmaps the pages of code and
/// read-only data mapped from files (they stay in the page cache) and trims the heap;
/// returns how many bytes of file pages were resident (Linux: see `linux_memory`;
/// nothing on macOS yet).
pub fn release_memory() -> std::io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        linux_memory::release_memory()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(0)
    }
}

/// Ends the webview's helper processes that outlive the last webview (Linux: WebKitGTK's
/// network process; see `linux_memory`); returns how many. Nothing elsewhere.
pub fn end_webview_helpers() -> usize {
    #[cfg(target_os = "linux")]
    {
        linux_memory::end_webview_helpers()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The seat's idle probe on this desktop, if any (Linux: see [`linux_idle`]; macOS has
/// none yet).
#[cfg(feature = "desktop")]
pub fn idle_probe() -> Option<Arc<dyn super::IdleProbe>> {
    #[cfg(target_os = "linux")]
    {
        linux_idle::idle_probe()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A process started at the head of its own process group, so that stopping it stops
/// whatever it started too (a browser's helpers).
pub struct Group(std::process::Child);

impl Group {
    pub fn spawn(cmd: &mut std::process::Command) -> std::io::Result<Group> {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        cmd.spawn().map(Group)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Asks the group to quit (SIGTERM), waits for its head `patience` at most, then kills
    /// whatever of the group is left (SIGKILL).
    pub fn stop(self, patience: Duration) {
        let mut child = self.0;
        let group = child.id() as i32;
        if !matches!(child.try_wait(), Ok(None)) {
            // The head is gone and reaped; its group id may be anyone's by now.
            return;
        }
        // SAFETY: signals the process group this process started; no memory is involved.
        unsafe { libc::killpg(group, libc::SIGTERM) };
        let (exited, wait) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = child.wait();
            let _ = exited.send(());
        });
        let _ = wait.recv_timeout(patience);
        // SAFETY: as above. The head may be reaped by now, but a group id is not reused
        // while any member of the group lives, so this reaches only its helpers.
        unsafe { libc::killpg(group, libc::SIGKILL) };
        let _ = waiter.join();
    }
}

/// Resolves when the person or the system asks this process to stop: SIGTERM or Ctrl-C.
#[cfg(feature = "broker")]
pub async fn shutdown_requested() {
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

/// A command line as macOS's `KERN_PROCARGS2` lays it out: argc, the executable's path,
/// NUL padding, then the arguments, each NUL-terminated (here so that Linux tests it too).
#[cfg(any(target_os = "macos", test))]
fn parse_procargs(buf: &[u8]) -> Vec<String> {
    let Some((argc, rest)) = buf.split_first_chunk::<4>() else {
        return Vec::new();
    };
    let argc = i32::from_ne_bytes(*argc).max(0) as usize;
    // The executable's path, then NUL padding.
    let Some(end) = rest.iter().position(|b| *b == 0) else {
        return Vec::new();
    };
    let mut rest = &rest[end..];
    while let [0, tail @ ..] = rest {
        rest = tail;
    }
    let mut args = Vec::with_capacity(argc);
    while args.len() < argc {
        let Ok(arg) = std::ffi::CStr::from_bytes_until_nul(rest) else {
            break;
        };
        rest = &rest[arg.to_bytes_with_nul().len()..];
        args.push(arg.to_string_lossy().into_owned());
    }
    args
}

/// The environment the desktop app's webview should start with (Linux: accelerated
/// compositing off where there is no GPU; see `linux_memory`). Nothing on macOS.
pub fn webview_environment() -> Vec<(&'static str, &'static str)> {
    #[cfg(target_os = "linux")]
    {
        linux_memory::webview_environment()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
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

    #[test]
    fn procargs_are_read_as_the_kernel_lays_them_out() {
        let mut buf = 2i32.to_ne_bytes().to_vec();
        buf.extend_from_slice(b"/usr/bin/python3\0\0\0\0python3\0script.py\0PATH=/usr/bin\0");
        assert_eq!(parse_procargs(&buf), ["python3", "script.py"]);
        assert!(parse_procargs(b"\x01\0").is_empty());
        assert!(parse_procargs(&5i32.to_ne_bytes()).is_empty());
    }

    /// A group's head and what it started are all gone once the group is stopped, even
    /// when they ignore the polite signal: the shell and its `sleep` ignore SIGTERM.
    #[cfg(target_os = "linux")]
    #[test]
    fn stopping_a_group_ends_what_its_head_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("helper.pid");
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(r#"trap "" TERM; sleep 600 & echo $! > "$0.tmp"; mv "$0.tmp" "$0"; wait"#)
            .arg(&pid_file);
        let group = Group::spawn(&mut cmd).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let helper: i32 = loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                break text.trim().parse().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "the shell never ran");
            std::thread::yield_now();
        };
        let running = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit_once(')')
                    .unwrap()
                    .1
                    .trim_start()
                    .starts_with('Z')
            })
        };
        assert!(running(helper));
        // SIGKILL is delivered, not awaited: the helper is dying when `stop` returns, and
        // the test waits for its exit on a pidfd rather than looking at once.
        let pin = linux::Pidfd::open(helper).expect("a pidfd for the helper");
        let head = group.id() as i32;
        group.stop(Duration::from_millis(200));
        assert!(pin.wait(30_000), "the helper outlived its group");
        assert!(!running(helper), "the helper outlived its group");
        assert!(!running(head), "the head outlived its group");
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
