//! The broker's named pipe: made with a DACL for the user alone, as the first instance, and
//! refusing remote clients; both ends identify the other's process.

use std::ffi::{OsStr, OsString};
use std::os::windows::io::AsRawHandle as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::windows::named_pipe::{
    ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
};
use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_PIPE_BUSY, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};
use windows_sys::Win32::System::Pipes::{
    GetNamedPipeClientProcessId, GetNamedPipeServerProcessId, WaitNamedPipeW,
};
use windows_sys::Win32::System::Threading::{
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
};

use super::process::{Pinned, alive, exe, open_process, token_user};
use super::{User, own_user, wide};
use crate::platform::{BindError, PeerProcess};

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
        processes: Box::new(Pinned::new(pid, process)),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::windows::tests::under_wine;

    /// Both ends of the pipe name each other: the server sees this process (its user, pid
    /// and executable), the client sees a server of its own user; a second server on the
    /// name is refused.
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
}
