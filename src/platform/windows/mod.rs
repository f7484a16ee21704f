//! Windows: the broker on a named pipe, peers by their process and its token.
//!
//! The pipe `\\.\pipe\lanyard-SID` (the user's SID) is created with a DACL that grants
//! the current user alone, as the first instance (`FILE_FLAG_FIRST_PIPE_INSTANCE`: if any process holds the
//! name already, Lanyard does not serve there), and refuses remote clients. A client
//! checks that the server runs as its own user before it sends anything, and connects at
//! the identification level, so a server cannot act as the client.
//!
//! Each process the broker reads while naming a caller is held by a handle, which keeps
//! its pid from being reused, and checked to be alive after its executable was read; a
//! parent is checked to be older than its child, so a process that took a dead parent's
//! pid is never named.

mod pipe;
mod process;
pub mod registry;

pub use pipe::*;
pub use process::{Group, exited, terminate};

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use windows_sys::Win32::System::Threading::GetCurrentProcess;

use process::token_user;

/// A user: the SID of the user's account, as a string (`S-1-5-21-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the user {}", self.0)
    }
}

/// The user this process runs as: its token's user. A token that cannot be read gives a
/// user no peer matches, so every check that compares users fails closed.
pub fn own_user() -> User {
    // SAFETY: the pseudo-handle of the current process needs no closing.
    token_user(unsafe { GetCurrentProcess() })
        .unwrap_or_else(|e| User(format!("(unreadable: {e})")))
}

/// The command line's file name.
pub const CLI: &str = "lanyard.exe";

/// `\\.\pipe\lanyard-SID`: named by the user's SID, which no other account has (a user
/// name is shared by a local and a domain account, and anyone can guess it).
pub fn default_endpoint() -> PathBuf {
    PathBuf::from(format!(r"\\.\pipe\lanyard-{}", pipe_word(&own_user().0)))
}

/// `text` in the characters a pipe name may hold (a SID needs none replaced).
fn pipe_word(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `%ProgramData%\Lanyard`: where the administrator's files (the managed kiosk file) live.
pub fn managed_dir() -> PathBuf {
    let base = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
    PathBuf::from(base).join("Lanyard")
}

/// Credential Manager holds 2,560 bytes per item: 1,280 UTF-16 units, as passwords are
/// stored (see `store::chunked`).
pub const KEYCHAIN_ITEM_MAX: Option<usize> = Some(1280);

/// Credential Manager.
pub fn keychain_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

/// Sockets for a remote host (`lanyard ssh`) are Unix sockets that ssh forwards; the
/// broker's endpoint here is a named pipe, which ssh cannot forward.
pub fn forward_dir(_name: &str) -> std::io::Result<PathBuf> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "forwarding the agent over ssh needs Unix sockets; on Windows the agent listens on a named pipe",
    ))
}

/// The command a person runs to stop process `pid`.
pub fn stop_command(pid: i32) -> String {
    format!("taskkill /PID {pid} /F")
}

/// A directory builder for the user's own directories. Under the user's profile
/// (`%LOCALAPPDATA%`, `%TEMP%`) a new directory inherits an ACL that grants the user,
/// SYSTEM and administrators only.
pub fn private_dir_builder() -> std::fs::DirBuilder {
    std::fs::DirBuilder::new()
}

/// Runs `command` and exits with its exit status (Windows has no `exec`). Returns only
/// when it cannot be run.
pub fn exec(command: &mut std::process::Command) -> std::io::Error {
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => e,
    }
}

/// Puts `from` in the place of `to`, atomically. While another writer is replacing the
/// same file, Windows refuses with access denied: this tries again, a few times over a
/// second at most, before it gives up.
pub fn replace_file(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let mut tries = 0u64;
    loop {
        match std::fs::rename(from, to) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5 * tries));
            }
            done => return done,
        }
    }
}

/// Open options for the user's own files: as [`private_dir_builder`], the ACL comes from
/// the user's profile directory.
pub fn private_file_options() -> std::fs::OpenOptions {
    std::fs::OpenOptions::new()
}

/// Opens `path` for reading (a named pipe's path is not a file here).
pub fn open_for_reading(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Whether the user owns what `meta` describes. Not read on Windows: a file's owner is in
/// its security descriptor, which std does not reach; the profile's ACLs keep other
/// users out of the user's own directories.
pub fn owned_by_user(_meta: &std::fs::Metadata) -> bool {
    true
}

/// A canonical path as the OS names a process's executable (`QueryFullProcessImageNameW`):
/// without the `\\?\` that `std::fs::canonicalize` puts before a drive letter.
pub fn as_named(path: PathBuf) -> PathBuf {
    match path.to_str().and_then(|p| p.strip_prefix(r"\\?\")) {
        Some(plain) if plain.as_bytes().get(1) == Some(&b':') => PathBuf::from(plain),
        _ => path,
    }
}

/// Windows paths are case-insensitive.
pub const PATHS_IGNORE_CASE: bool = true;

/// Whether two such paths name the same file: Windows paths are case-insensitive.
pub fn same_path(a: &Path, b: &Path) -> bool {
    a.as_os_str().eq_ignore_ascii_case(b.as_os_str())
}

/// What separates the commands in `$BROWSER`: paths hold `:`.
pub const BROWSER_SEPARATOR: char = ';';

/// The platform's own way of opening a URL, for messages.
pub const OPENER: &str = "ShellExecuteW";

/// A `$BROWSER` command as words: split at spaces outside double quotes. Backslashes are
/// path separators here, not escapes.
pub fn split_command(command: &str) -> Option<Vec<String>> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    for c in command.chars() {
        match c {
            '"' => (quoted, started) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if started {
        words.push(word);
    }
    Some(words)
}

/// Opens `url` in the user's default browser (`ShellExecuteW` with the `open` verb): it
/// answers whether it could, so there is no process to watch.
pub fn open_url(url: &str) -> std::io::Result<Option<std::process::Child>> {
    use windows_sys::Win32::UI::Shell::ShellExecuteW;
    use windows_sys::Win32::UI::WindowsAndMessaging::SW_SHOWNORMAL;
    let (verb, target) = (wide(OsStr::new("open")), wide(OsStr::new(url)));
    // SAFETY: NUL-terminated strings; no window handle, parameters or directory.
    let result = unsafe {
        ShellExecuteW(
            std::ptr::null_mut(),
            verb.as_ptr(),
            target.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            SW_SHOWNORMAL,
        )
    };
    // Values above 32 mean success; the rest are error codes.
    if result as usize > 32 {
        Ok(None)
    } else {
        Err(std::io::Error::other(format!(
            "ShellExecuteW failed with code {}",
            result as usize
        )))
    }
}

/// Where the kiosk policy is read from: what Group Policy and a center's tooling deploy.
pub const POLICY: Option<&str> = Some(r"HKLM\SOFTWARE\Policies\Lanyard");

/// The kiosk policy from the registry, as the TOML table a kiosk file would hold (see
/// [`registry::policy`]); `None` without the key.
pub fn kiosk_policy() -> std::io::Result<Option<toml::Table>> {
    registry::policy(registry::HKEY_LOCAL_MACHINE, r"SOFTWARE\Policies\Lanyard")
}

/// The value under the user's Run key that starts the app at sign-in.
const RUN_KEY: &str = r"Software\Microsoft\Windows\CurrentVersion\Run";

/// Whether the app starts at this user's sign-in (the user's Run key; the installer's
/// `/AUTOSTART` for every user is the machine's, and not changed from here).
pub fn autostart_enabled() -> bool {
    registry::text(registry::HKEY_CURRENT_USER, RUN_KEY, "Lanyard").is_some()
}

/// Starts `exe` (hidden in the tray) at this user's sign-in, or stops doing so.
pub fn set_autostart(enabled: bool, exe: &Path) -> std::io::Result<()> {
    if enabled {
        let command = format!("\"{}\" --hidden", as_named(exe.to_owned()).display());
        registry::set_text(registry::HKEY_CURRENT_USER, RUN_KEY, "Lanyard", &command)
    } else {
        registry::delete(registry::HKEY_CURRENT_USER, RUN_KEY, "Lanyard")
    }
}

/// The commands a kiosk seat tries for the browser named `name` (`None`: the default),
/// in order; `None` for a name that is not a known browser (it is a command itself).
/// The default is Edge, or Chrome where Edge is missing, at their installed paths.
pub fn seat_browser_commands(name: Option<&str>) -> Option<Vec<String>> {
    let under = |var: &str, default: &str, rest: &str| {
        let base = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        format!(r"{base}\{rest}")
    };
    let edge = || {
        let rest = r"Microsoft\Edge\Application\msedge.exe";
        vec![
            under("ProgramFiles(x86)", r"C:\Program Files (x86)", rest),
            under("ProgramFiles", r"C:\Program Files", rest),
        ]
    };
    let chrome = || {
        let rest = r"Google\Chrome\Application\chrome.exe";
        vec![
            under("ProgramFiles", r"C:\Program Files", rest),
            under("ProgramFiles(x86)", r"C:\Program Files (x86)", rest),
            under("LOCALAPPDATA", r"C:\Users\Default\AppData\Local", rest),
        ]
    };
    Some(match name {
        None | Some("chromium") => [edge(), chrome()].concat(),
        Some("edge") => edge(),
        Some("chrome") => chrome(),
        Some("firefox") => vec![
            under(
                "ProgramFiles",
                r"C:\Program Files",
                r"Mozilla Firefox\firefox.exe",
            ),
            under(
                "ProgramFiles(x86)",
                r"C:\Program Files (x86)",
                r"Mozilla Firefox\firefox.exe",
            ),
        ],
        Some(_) => return None,
    })
}

/// Handing back code pages and free heap: not done on Windows, which trims a process's
/// working set itself when memory is short.
pub fn release_memory() -> std::io::Result<u64> {
    Ok(0)
}

/// Webview helpers outliving the last webview: WebView2 ends its own.
pub fn end_webview_helpers() -> usize {
    0
}

/// The webview's start-up environment: WebView2 chooses its own rendering.
pub fn webview_environment() -> Vec<(&'static str, &'static str)> {
    Vec::new()
}

/// The seat's idle time: `GetLastInputInfo`, the last input in this session.
#[cfg(feature = "desktop")]
pub fn idle_probe() -> Option<Arc<dyn super::IdleProbe>> {
    Some(Arc::new(LastInput))
}

#[cfg(feature = "desktop")]
struct LastInput;

#[cfg(feature = "desktop")]
impl super::IdleProbe for LastInput {
    fn idle(&self) -> Option<Duration> {
        use windows_sys::Win32::System::SystemInformation::GetTickCount;
        use windows_sys::Win32::UI::Input::KeyboardAndMouse::{GetLastInputInfo, LASTINPUTINFO};
        let mut info = LASTINPUTINFO {
            cbSize: std::mem::size_of::<LASTINPUTINFO>() as u32,
            dwTime: 0,
        };
        // SAFETY: a LASTINPUTINFO with its size set.
        if unsafe { GetLastInputInfo(&mut info) } == 0 {
            return None;
        }
        // Both are milliseconds since boot in 32 bits, wrapping every 49.7 days.
        // SAFETY: no preconditions.
        let now = unsafe { GetTickCount() };
        Some(Duration::from_millis(now.wrapping_sub(info.dwTime).into()))
    }
}

/// Resolves when the person or the system asks this process to stop: Ctrl-C or Ctrl-Break,
/// its console closing, the user logging off or the system shutting down.
#[cfg(feature = "broker")]
pub async fn shutdown_requested() {
    use tokio::signal::windows;
    let (Ok(mut c), Ok(mut brk), Ok(mut close), Ok(mut logoff), Ok(mut shutdown)) = (
        windows::ctrl_c(),
        windows::ctrl_break(),
        windows::ctrl_close(),
        windows::ctrl_logoff(),
        windows::ctrl_shutdown(),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = c.recv() => {}
        _ = brk.recv() => {}
        _ = close.recv() => {}
        _ = logoff.recv() => {}
        _ = shutdown.recv() => {}
    }
}

/// `text` as a NUL-terminated UTF-16 string.
fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain(Some(0)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn executables_are_named_as_windows_names_them() {
        assert_eq!(
            as_named(PathBuf::from(r"\\?\C:\Tools\lanyard.exe")),
            PathBuf::from(r"C:\Tools\lanyard.exe")
        );
        let unc = PathBuf::from(r"\\?\UNC\server\share\lanyard.exe");
        assert_eq!(as_named(unc.clone()), unc);
        assert!(same_path(
            Path::new(r"C:\Tools\LANYARD.EXE"),
            Path::new(r"c:\tools\lanyard.exe")
        ));
        assert!(!same_path(
            Path::new(r"C:\Tools\lanyard.exe"),
            Path::new(r"C:\Tools\lanyard2.exe")
        ));
    }

    /// The seat's idle time is read, and is no longer than the time since boot.
    #[test]
    fn idle_time_comes_from_the_last_input() {
        use windows_sys::Win32::System::SystemInformation::GetTickCount64;
        let idle = idle_probe()
            .unwrap()
            .idle()
            .expect("GetLastInputInfo answers");
        // SAFETY: no preconditions.
        let up = Duration::from_millis(unsafe { GetTickCount64() });
        assert!(idle <= up, "idle {idle:?} since boot {up:?}");
    }

    /// A seat's browser is Edge, or Chrome where Edge is missing, at their installed paths.
    #[test]
    fn the_seat_browser_is_edge_then_chrome() {
        let commands = seat_browser_commands(None).unwrap();
        assert!(
            commands[0].ends_with(r"\Microsoft\Edge\Application\msedge.exe"),
            "{commands:?}"
        );
        let first_chrome = commands
            .iter()
            .position(|c| c.ends_with(r"\chrome.exe"))
            .unwrap();
        assert!(
            commands[..first_chrome]
                .iter()
                .all(|c| c.ends_with("msedge.exe"))
        );
        assert_eq!(seat_browser_commands(Some("system")), None);
        assert!(seat_browser_commands(Some("firefox")).unwrap()[0].ends_with("firefox.exe"));
    }

    /// Start at sign-in is the user's Run value, which names the app and starts it hidden.
    #[test]
    fn autostart_is_the_users_run_value() {
        let exe = Path::new(r"C:\Program Files\Lanyard\lanyard-desktop.exe");
        let before = registry::text(registry::HKEY_CURRENT_USER, RUN_KEY, "Lanyard");
        set_autostart(true, exe).unwrap();
        assert!(autostart_enabled());
        assert_eq!(
            registry::text(registry::HKEY_CURRENT_USER, RUN_KEY, "Lanyard").as_deref(),
            Some(r#""C:\Program Files\Lanyard\lanyard-desktop.exe" --hidden"#)
        );
        set_autostart(false, exe).unwrap();
        assert!(!autostart_enabled());
        set_autostart(false, exe).unwrap();
        if let Some(value) = before {
            registry::set_text(registry::HKEY_CURRENT_USER, RUN_KEY, "Lanyard", &value).unwrap();
        }
    }

    #[test]
    fn browser_commands_split_at_spaces_outside_quotes() {
        let words = split_command(r#""C:\Program Files\Firefox\firefox.exe" -private-window %s"#);
        assert_eq!(
            words.unwrap(),
            [
                r"C:\Program Files\Firefox\firefox.exe",
                "-private-window",
                "%s"
            ]
        );
        assert_eq!(split_command(r#""unclosed"#), None);
        assert_eq!(split_command(r#"a "" b"#).unwrap(), ["a", "", "b"]);
    }

    /// Whether this runs under Wine: its ntdll exports `wine_get_version`.
    pub(crate) fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: NUL-terminated names; ntdll is always loaded.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }
}
