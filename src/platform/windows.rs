//! Windows: the broker on a named pipe, peers by their process and its token.
//!
//! The pipe `\\.\pipe\lanyard-USER` is created with a DACL that grants the current user
//! alone, as the first instance (`FILE_FLAG_FIRST_PIPE_INSTANCE`: if any process holds the
//! name already, Lanyard does not serve there), and refuses remote clients. A client
//! checks that the server runs as its own user before it sends anything, and connects at
//! the identification level, so a server cannot act as the client.
//!
//! Each process the broker reads while naming a caller is held by a handle, which keeps
//! its pid from being reused, and checked to be alive after its executable was read; a
//! parent is checked to be older than its child, so a process that took a dead parent's
//! pid is never named.

use std::cell::RefCell;
use std::ffi::{OsStr, OsString, c_void};
use std::os::windows::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::windows::io::{AsRawHandle as _, FromRawHandle as _, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::Foundation::{
    ERROR_FILE_NOT_FOUND, ERROR_PIPE_BUSY, FILETIME, HANDLE, LocalFree, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
    TokenUser,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeClientProcessId, GetNamedPipeServerProcessId, WaitNamedPipeW,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessTimes, OpenProcess, OpenProcessToken, PROCESS_NAME_WIN32,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
    QueryFullProcessImageNameW, TerminateProcess, WaitForSingleObject,
};

use super::{BindError, PeerProcess, Processes};

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

/// `\\.\pipe\lanyard-USER`: the user's name, in the characters a pipe name may hold.
pub fn default_endpoint() -> PathBuf {
    let name: String = std::env::var("USERNAME")
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() { own_user().0 } else { name };
    PathBuf::from(format!(r"\\.\pipe\lanyard-{name}"))
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

/// Open options for the user's own files: as [`private_dir_builder`], the ACL comes from
/// the user's profile directory.
pub fn private_file_options() -> std::fs::OpenOptions {
    std::fs::OpenOptions::new()
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

/// Opens `url` in the user's default browser (`ShellExecuteW` with the `open` verb).
pub fn open_url(url: &str) -> std::io::Result<()> {
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
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "ShellExecuteW failed with code {}",
            result as usize
        )))
    }
}

/// A connection the broker accepted.
pub type Connection = NamedPipeServer;
/// A connection to the broker.
pub type ClientConnection = NamedPipeClient;
/// A connection to the broker, for blocking callers.
pub type BlockingConnection = std::fs::File;

/// The broker's pipe: the instance the next client connects to, made ahead.
pub struct Listener {
    path: OsString,
    security: Security,
    next: NamedPipeServer,
}

impl Listener {
    pub fn bind(path: &Path) -> std::io::Result<Listener> {
        let security = Security::user_only()?;
        let next = create(path.as_os_str(), &security, true)?;
        Ok(Listener {
            path: path.as_os_str().to_owned(),
            security,
            next,
        })
    }

    pub async fn accept(&mut self) -> std::io::Result<Connection> {
        let connected = self.next.connect().await;
        // Connected or broken, this instance is done with: the next client gets a new one.
        let fresh = create(&self.path, &self.security, false)?;
        let instance = std::mem::replace(&mut self.next, fresh);
        connected.map(|()| instance)
    }
}

fn create(path: &OsStr, security: &Security, first: bool) -> std::io::Result<NamedPipeServer> {
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: security.0,
        bInheritHandle: 0,
    };
    // SAFETY: `attributes` points at a valid descriptor that outlives the call.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(path, (&raw mut attributes).cast())
    }
}

/// A security descriptor whose DACL grants the current user alone.
struct Security(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is immutable once made, and freed once, on drop.
unsafe impl Send for Security {}
// SAFETY: as above.
unsafe impl Sync for Security {}

impl Security {
    fn user_only() -> std::io::Result<Security> {
        let sddl = wide(OsStr::new(&format!("D:P(A;;GA;;;{})", own_user().0)));
        let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: a NUL-terminated string in, a descriptor out that LocalFree releases.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Security(descriptor))
    }
}

impl Drop for Security {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

/// Nothing to make ready: a pipe has no directory.
pub fn prepare(_path: &Path) -> Result<(), BindError> {
    Ok(())
}

/// Whether any process serves the pipe's name: asked without connecting, so no instance
/// of it is used up.
pub fn exists(path: &Path) -> bool {
    let name = wide(path.as_os_str());
    // SAFETY: a NUL-terminated pipe name; waits at most 1 ms.
    let free = unsafe { WaitNamedPipeW(name.as_ptr(), 1) } != 0;
    free || std::io::Error::last_os_error().raw_os_error() != Some(ERROR_FILE_NOT_FOUND as i32)
}

/// Nothing is left behind by a broker that died: the pipe goes with it.
pub fn clear_stale(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// How long a client waits for a free pipe instance while the broker makes the next.
const BUSY_WAIT: Duration = Duration::from_secs(5);

pub async fn connect(path: &Path) -> std::io::Result<ClientConnection> {
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    loop {
        match ClientOptions::new().open(path) {
            Err(e)
                if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

pub fn connect_blocking(path: &Path) -> std::io::Result<BlockingConnection> {
    use std::os::windows::fs::OpenOptionsExt as _;
    /// `SECURITY_IDENTIFICATION`: the server may learn who the client is, never act as it.
    const IDENTIFICATION: u32 = 1 << 16;
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .security_qos_flags(IDENTIFICATION)
            .open(path)
    };
    match open() {
        Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
            let name = wide(path.as_os_str());
            // SAFETY: a NUL-terminated pipe name; waits at most BUSY_WAIT.
            unsafe { WaitNamedPipeW(name.as_ptr(), BUSY_WAIT.as_millis() as u32) };
            open()
        }
        other => other,
    }
}

/// The user serving the broker at the other end.
pub fn server_user(pipe: &ClientConnection) -> std::io::Result<User> {
    Ok(server_of(pipe)?.0)
}

/// [`server_user`], for blocking callers.
pub fn blocking_server_user(pipe: &BlockingConnection) -> std::io::Result<User> {
    let pid = pipe_process(pipe.as_raw_handle(), GetNamedPipeServerProcessId)?;
    let process = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
    token_user(process.as_raw_handle())
}

/// The process serving the broker at the other end: its user, pid and executable.
pub fn server_of(pipe: &ClientConnection) -> std::io::Result<(User, Option<i32>, Option<PathBuf>)> {
    let pid = pipe_process(pipe.as_raw_handle(), GetNamedPipeServerProcessId)?;
    let process = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION)?;
    let user = token_user(process.as_raw_handle())?;
    Ok((user, Some(pid as i32), exe(&process)))
}

/// The process at the other end of an accepted connection, held by a handle.
pub fn peer_of(pipe: &Connection) -> std::io::Result<PeerProcess> {
    let pid = pipe_process(pipe.as_raw_handle(), GetNamedPipeClientProcessId)?;
    let gone = || {
        std::io::Error::other(format!(
            "client pid {pid}: the client exited before it could be identified"
        ))
    };
    let process = open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE)
        .map_err(|_| gone())?;
    let user = token_user(process.as_raw_handle())?;
    let exe = exe(&process);
    if !alive(&process) {
        return Err(gone());
    }
    let pid = pid as i32;
    Ok(PeerProcess {
        user,
        pid: Some(pid),
        exe,
        processes: Box::new(Pinned {
            held: RefCell::new(vec![(pid, process)]),
        }),
    })
}

/// Stops process `pid` (a headless agent). Windows has no polite signal for a process
/// without a window; the broker's pipe goes with it.
pub fn terminate(pid: i32) {
    if let Ok(process) = open_process(pid as u32, PROCESS_TERMINATE) {
        // SAFETY: a handle with PROCESS_TERMINATE.
        unsafe { TerminateProcess(process.as_raw_handle(), 1) };
    }
}

/// Whether process `pid` has exited within `patience`.
pub async fn exited(pid: i32, patience: Duration) -> bool {
    let Ok(process) = open_process(pid as u32, PROCESS_SYNCHRONIZE) else {
        return true; // gone already
    };
    let ms = patience.as_millis().min(u32::MAX as u128) as u32;
    tokio::task::spawn_blocking(move || {
        // SAFETY: a handle with SYNCHRONIZE; bounded wait.
        unsafe { WaitForSingleObject(process.as_raw_handle(), ms) == WAIT_OBJECT_0 }
    })
    .await
    .unwrap_or(false)
}

/// Processes held by handles: the caller and each ancestor read.
struct Pinned {
    held: RefCell<Vec<(i32, OwnedHandle)>>,
}

impl Pinned {
    fn with<T>(&self, pid: i32, f: impl FnOnce(&OwnedHandle) -> Option<T>) -> Option<T> {
        let held = self.held.borrow();
        let (_, process) = held.iter().find(|(p, _)| *p == pid)?;
        let answer = f(process)?;
        alive(process).then_some(answer)
    }
}

impl Processes for Pinned {
    fn exe(&self, pid: i32) -> Option<PathBuf> {
        self.with(pid, exe)
    }

    fn parent(&self, pid: i32) -> Option<i32> {
        let parent = parent_pid(pid as u32)?;
        let process = open_process(
            parent,
            PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
        )
        .ok()?;
        // A parent younger than its child is a process that took a dead parent's pid.
        let born = created(&process)?;
        let child_born = self.with(pid, created)?;
        if born > child_born {
            return None;
        }
        let parent = parent as i32;
        self.held.borrow_mut().push((parent, process));
        Some(parent)
    }

    fn args(&self, _pid: i32) -> Vec<String> {
        // Another process's command line is not read on Windows.
        Vec::new()
    }
}

type PipeProcessId = unsafe extern "system" fn(HANDLE, *mut u32) -> windows_sys::core::BOOL;

fn pipe_process(pipe: HANDLE, which: PipeProcessId) -> std::io::Result<u32> {
    let mut pid = 0;
    // SAFETY: a pipe handle and a place for the pid.
    if unsafe { which(pipe, &mut pid) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid)
}

fn open_process(pid: u32, access: u32) -> std::io::Result<OwnedHandle> {
    // SAFETY: OpenProcess returns a new handle or null.
    let handle = unsafe { OpenProcess(access, 0, pid) };
    if handle.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a handle this process now owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

fn alive(process: &OwnedHandle) -> bool {
    // SAFETY: a process handle; no waiting.
    unsafe { WaitForSingleObject(process.as_raw_handle(), 0) == WAIT_TIMEOUT }
}

fn exe(process: &OwnedHandle) -> Option<PathBuf> {
    let mut buf = vec![0u16; 32 * 1024];
    let mut len = buf.len() as u32;
    // SAFETY: the buffer holds `len` UTF-16 units.
    let ok = unsafe {
        QueryFullProcessImageNameW(
            process.as_raw_handle(),
            PROCESS_NAME_WIN32,
            buf.as_mut_ptr(),
            &mut len,
        )
    };
    (ok != 0).then(|| PathBuf::from(OsString::from_wide(&buf[..len as usize])))
}

/// When the process started, in FILETIME units.
fn created(process: &OwnedHandle) -> Option<u64> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: four FILETIMEs to write.
    let ok = unsafe {
        GetProcessTimes(
            process.as_raw_handle(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

fn parent_pid(pid: u32) -> Option<u32> {
    // SAFETY: a snapshot handle, owned from here on.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snapshot.is_null() || snapshot as isize == -1 {
        return None;
    }
    // SAFETY: as above.
    let snapshot = unsafe { OwnedHandle::from_raw_handle(snapshot) };
    // SAFETY: PROCESSENTRY32W is plain data; dwSize says which version it is.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
    // SAFETY: a snapshot handle and an entry with its size set.
    let mut more = unsafe { Process32FirstW(snapshot.as_raw_handle(), &mut entry) } != 0;
    while more {
        if entry.th32ProcessID == pid {
            return Some(entry.th32ParentProcessID).filter(|p| *p != 0);
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot.as_raw_handle(), &mut entry) } != 0;
    }
    None
}

/// The user of `process`'s token, as a SID string.
fn token_user(process: HANDLE) -> std::io::Result<User> {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: a process handle, and a place for the token's.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a handle this process now owns.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut len = 0u32;
    // SAFETY: asks for the size only.
    unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            std::ptr::null_mut(),
            0,
            &mut len,
        )
    };
    // u64s, for TOKEN_USER's alignment.
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    // SAFETY: the buffer holds `len` bytes.
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buf.as_mut_ptr().cast::<c_void>(),
            len,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: GetTokenInformation wrote a TOKEN_USER at the start of the buffer.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: a SID inside `buf`, alive for the call; the string is freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a NUL-terminated string from ConvertSidToStringSidW.
    let user = unsafe {
        let len = (0..).take_while(|i| *text.add(*i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
    };
    // SAFETY: allocated by ConvertSidToStringSidW.
    unsafe { LocalFree(text.cast()) };
    Ok(User(user))
}

/// `text` as a NUL-terminated UTF-16 string.
fn wide(text: &OsStr) -> Vec<u16> {
    text.encode_wide().chain(Some(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends of the pipe name each other: the server sees this process (its user, pid
    /// and executable), the client sees a server of its own user; a second server on the
    /// name is refused.
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

    #[tokio::test]
    async fn the_pipe_names_both_ends_and_cannot_be_squatted() {
        let path = PathBuf::from(format!(r"\\.\pipe\lanyard-unit-{}", std::process::id()));
        let mut listener = Listener::bind(&path).unwrap();
        if under_wine() {
            // Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE (and pipe DACLs): only Windows
            // itself can show the name cannot be squatted. docs/windows.md says so.
            eprintln!("under Wine: the first-instance check is not enforced, not checked");
        } else {
            assert!(Listener::bind(&path).is_err(), "a second first instance");
        }
        assert!(exists(&path));
        assert!(!exists(Path::new(r"\\.\pipe\lanyard-nobody-serves-this")));

        let client = connect(&path).await.unwrap();
        let server = listener.accept().await.unwrap();
        let me = own_user();
        assert!(me.0.starts_with("S-1-"), "{me}");
        assert_eq!(server_user(&client).unwrap(), me);
        let peer = peer_of(&server).unwrap();
        assert_eq!(peer.user, me);
        assert_eq!(peer.pid, Some(std::process::id() as i32));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            peer.exe.map(|p| p.display().to_string().to_lowercase()),
            Some(exe.display().to_string().to_lowercase())
        );
        let (user, pid, _) = server_of(&client).unwrap();
        assert_eq!((user, pid), (me.clone(), Some(std::process::id() as i32)));

        // The blocking client, as `lanyard token`'s fast path connects.
        let accepting = tokio::spawn(async move { listener.accept().await.map(drop) });
        let blocking = tokio::task::spawn_blocking(move || {
            let pipe = connect_blocking(&path)?;
            blocking_server_user(&pipe)
        });
        assert_eq!(blocking.await.unwrap().unwrap(), me);
        accepting.await.unwrap().unwrap();
    }

    /// Whether this runs under Wine: its ntdll exports `wine_get_version`.
    fn under_wine() -> bool {
        use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
        // SAFETY: NUL-terminated names; ntdll is always loaded.
        unsafe {
            let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
            !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
        }
    }
}
