//! macOS: naming a broker peer with libproc (`proc_pidpath`, `proc_pidinfo`) and the
//! `KERN_PROCARGS2` sysctl. macOS has no pidfd; instead every read is checked against the
//! process's start time, read before and after: a pid that a new process took meanwhile
//! has another start time, and the read is refused. A parent must be older than its
//! child, so a process that took a dead parent's pid is never named.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use tokio::net::UnixStream;

use super::User;
use crate::platform::{PeerProcess, Processes};

pub fn peer_of(stream: &UnixStream) -> std::io::Result<PeerProcess> {
    // tokio reads the pid with LOCAL_PEERPID, the uid with getpeereid.
    let cred = stream.peer_cred()?;
    let user = User(cred.uid());
    let Some(pid) = cred.pid().filter(|p| *p > 0) else {
        return Ok(PeerProcess {
            user,
            pid: None,
            exe: None,
            processes: Box::new(Checked::default()),
        });
    };
    let gone = || {
        std::io::Error::other(format!(
            "client pid {pid}: the client exited before it could be identified"
        ))
    };
    let born = info(pid).ok_or_else(gone)?.started;
    let processes = Checked {
        known: RefCell::new(vec![(pid, born)]),
    };
    let exe = path(pid);
    if !processes.same(pid) {
        return Err(gone());
    }
    Ok(PeerProcess {
        user,
        pid: Some(pid),
        exe,
        processes: Box::new(processes),
    })
}

/// The executable of process `pid`, unchecked (the broker's own server, for messages).
pub fn exe(pid: i32) -> Option<PathBuf> {
    path(pid)
}

/// The processes read so far, each with its start time.
#[derive(Default)]
struct Checked {
    known: RefCell<Vec<(i32, Started)>>,
}

impl Checked {
    /// `pid` is still the process first read under that pid.
    fn same(&self, pid: i32) -> bool {
        let born = self.born(pid);
        born.is_some() && info(pid).map(|i| i.started) == born
    }

    fn born(&self, pid: i32) -> Option<Started> {
        let known = self.known.borrow();
        known.iter().find(|(p, _)| *p == pid).map(|(_, s)| *s)
    }
}

impl Processes for Checked {
    fn exe(&self, pid: i32) -> Option<PathBuf> {
        self.born(pid)?;
        let exe = path(pid)?;
        self.same(pid).then_some(exe)
    }

    fn parent(&self, pid: i32) -> Option<i32> {
        let child_born = self.born(pid)?;
        let child = info(pid).filter(|i| i.started == child_born)?;
        let parent = child.parent;
        if parent <= 0 {
            return None;
        }
        let born = info(parent)?.started;
        // Still `pid`'s parent (a child whose parent died is handed to launchd), and older
        // than it: the process read is the parent, not one that took its pid since.
        if born > child_born || info(pid).map(|i| i.parent) != Some(parent) {
            return None;
        }
        self.known.borrow_mut().push((parent, born));
        Some(parent)
    }

    fn args(&self, pid: i32) -> Vec<String> {
        if self.born(pid).is_none() {
            return Vec::new();
        }
        let args = arguments(pid);
        if self.same(pid) { args } else { Vec::new() }
    }
}

/// A process's start time: seconds and microseconds since the epoch.
type Started = (u64, u64);

struct Info {
    parent: i32,
    started: Started,
}

fn info(pid: i32) -> Option<Info> {
    // SAFETY: proc_bsdinfo is plain data.
    let mut bsd: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: the buffer holds `size` bytes.
    let written =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, (&raw mut bsd).cast(), size) };
    (written == size).then(|| Info {
        parent: bsd.pbi_ppid as i32,
        started: (bsd.pbi_start_tvsec, bsd.pbi_start_tvusec),
    })
}

fn path(pid: i32) -> Option<PathBuf> {
    let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: the buffer holds `buf.len()` bytes.
    let len = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
    if len <= 0 {
        return None;
    }
    buf.truncate(len as usize);
    Some(PathBuf::from(OsStr::from_bytes(&buf)))
}

/// The command line, from `KERN_PROCARGS2`: argc, the executable's path, padding, then the
/// arguments, each NUL-terminated. Empty when it cannot be read.
fn arguments(pid: i32) -> Vec<String> {
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
    let mut size: libc::size_t = 0;
    // SAFETY: asks for the size only.
    let sized = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            std::ptr::null_mut(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if sized != 0 || size < 4 {
        return Vec::new();
    }
    let mut buf = vec![0u8; size];
    // SAFETY: the buffer holds `size` bytes; sysctl writes at most that and says how many.
    let read = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if read != 0 {
        return Vec::new();
    }
    buf.truncate(size);
    super::parse_procargs(&buf)
}
