//! Linux: naming a broker peer from /proc, every read pinned by a pidfd.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::PathBuf;

use tokio::net::UnixStream;

use super::User;
use crate::platform::{PeerProcess, Processes};

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

pub fn parent(pid: i32) -> Option<i32> {
    Proc.parent(pid)
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

    /// Sends `signal` to the process the pidfd holds (never to one that took its pid).
    pub fn signal(&self, signal: i32) -> bool {
        // SAFETY: pidfd_send_signal with a pidfd this value owns, a signal number, no
        // siginfo and no flags.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            ) == 0
        }
    }

    /// The process has not exited: its pidfd is not readable yet.
    pub fn alive(&self) -> bool {
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
