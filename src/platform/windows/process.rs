//! Processes: naming the broker's callers (each read held by a handle), stopping an agent,
//! and the groups a kiosk seat's browser runs in (a job object).

use std::cell::RefCell;
use std::ffi::{OsString, c_void};
use std::os::windows::ffi::OsStringExt as _;
use std::os::windows::io::{AsRawHandle as _, FromRawHandle as _, OwnedHandle};
use std::path::PathBuf;
use std::time::Duration;

use windows_sys::Win32::Foundation::{FILETIME, HANDLE, LocalFree, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{GetTokenInformation, TOKEN_QUERY, TOKEN_USER, TokenUser};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JobObjectBasicAccountingInformation, JobObjectExtendedLimitInformation,
    QueryInformationJobObject, SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, GetProcessTimes, OpenProcess, OpenProcessToken, OpenThread,
    PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
    QueryFullProcessImageNameW, ResumeThread, THREAD_SUSPEND_RESUME, TerminateProcess,
    WaitForSingleObject,
};

use super::User;
use crate::platform::Processes;

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
pub(super) struct Pinned {
    held: RefCell<Vec<(i32, OwnedHandle)>>,
}

impl Pinned {
    pub(super) fn new(pid: i32, process: OwnedHandle) -> Pinned {
        Pinned {
            held: RefCell::new(vec![(pid, process)]),
        }
    }

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

pub(super) fn open_process(pid: u32, access: u32) -> std::io::Result<OwnedHandle> {
    // SAFETY: OpenProcess returns a new handle or null.
    let handle = unsafe { OpenProcess(access, 0, pid) };
    if handle.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a handle this process now owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

pub(super) fn alive(process: &OwnedHandle) -> bool {
    // SAFETY: a process handle; no waiting.
    unsafe { WaitForSingleObject(process.as_raw_handle(), 0) == WAIT_TIMEOUT }
}

pub(super) fn exe(process: &OwnedHandle) -> Option<PathBuf> {
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
pub(super) fn created(process: &OwnedHandle) -> Option<u64> {
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

pub(super) fn parent_pid(pid: u32) -> Option<u32> {
    processes()
        .into_iter()
        .find(|(p, _)| *p == pid)
        .and_then(|(_, parent)| Some(parent).filter(|p| *p != 0))
}

/// Every process as (pid, parent pid), from a Toolhelp snapshot.
fn processes() -> Vec<(u32, u32)> {
    let Some(snapshot) = snapshot(TH32CS_SNAPPROCESS) else {
        return Vec::new();
    };
    // SAFETY: PROCESSENTRY32W is plain data; dwSize says which version it is.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
    let mut all = Vec::new();
    // SAFETY: a snapshot handle and an entry with its size set.
    let mut more = unsafe { Process32FirstW(snapshot.as_raw_handle(), &mut entry) } != 0;
    while more {
        all.push((entry.th32ProcessID, entry.th32ParentProcessID));
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot.as_raw_handle(), &mut entry) } != 0;
    }
    all
}

/// The ids of `pid`'s threads, from a Toolhelp snapshot.
fn threads(pid: u32) -> Vec<u32> {
    let Some(snapshot) = snapshot(TH32CS_SNAPTHREAD) else {
        return Vec::new();
    };
    // SAFETY: THREADENTRY32 is plain data; dwSize says which version it is.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    let mut ids = Vec::new();
    // SAFETY: a snapshot handle and an entry with its size set.
    let mut more = unsafe { Thread32First(snapshot.as_raw_handle(), &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            ids.push(entry.th32ThreadID);
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snapshot.as_raw_handle(), &mut entry) } != 0;
    }
    ids
}

fn snapshot(what: u32) -> Option<OwnedHandle> {
    // SAFETY: a snapshot handle or INVALID_HANDLE_VALUE.
    let snapshot = unsafe { CreateToolhelp32Snapshot(what, 0) };
    if snapshot.is_null() || snapshot as isize == -1 {
        return None;
    }
    // SAFETY: a handle this process now owns.
    Some(unsafe { OwnedHandle::from_raw_handle(snapshot) })
}

/// A process started in a job object of its own, so that stopping it stops whatever it
/// started too (a browser's helpers), and closing Lanyard, even by a crash, ends them all
/// (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`). It starts suspended and runs only once it is in
/// the job, so nothing it starts escapes.
pub struct Group {
    child: std::process::Child,
    job: OwnedHandle,
}

impl Group {
    pub fn spawn(cmd: &mut std::process::Command) -> std::io::Result<Group> {
        use std::os::windows::process::CommandExt as _;
        let job = job()?;
        let mut child = cmd.creation_flags(CREATE_SUSPENDED).spawn()?;
        // SAFETY: a job handle and the child's process handle.
        let assigned =
            unsafe { AssignProcessToJobObject(job.as_raw_handle(), child.as_raw_handle()) } != 0;
        let started = assigned && resume(child.id());
        if !started {
            let e = std::io::Error::last_os_error();
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "cannot start the process in a job of its own: {e}"
            )));
        }
        Ok(Group { child, job })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Ends every process of the job at once (a Windows program without a console has no
    /// polite signal), then waits `patience` at most for them to be gone, so that their
    /// files can be deleted.
    pub fn stop(mut self, patience: Duration) {
        // SAFETY: a job handle this Group owns.
        unsafe { TerminateJobObject(self.job.as_raw_handle(), 1) };
        let _ = self.child.wait();
        let deadline = std::time::Instant::now() + patience;
        while active(&self.job) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn job() -> std::io::Result<OwnedHandle> {
    // SAFETY: an unnamed job with default security.
    let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if job.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a handle this process now owns.
    let job = unsafe { OwnedHandle::from_raw_handle(job) };
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    // SAFETY: the structure the information class names, with its size.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&raw const limits).cast(),
            std::mem::size_of_val(&limits) as u32,
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(job)
}

/// Resumes the threads of a process started suspended; whether there was one to resume.
fn resume(pid: u32) -> bool {
    let mut resumed = false;
    for id in threads(pid) {
        // SAFETY: OpenThread returns a new handle or null.
        let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, id) };
        if thread.is_null() {
            continue;
        }
        // SAFETY: a handle this process now owns.
        let thread = unsafe { OwnedHandle::from_raw_handle(thread) };
        // SAFETY: a thread handle with THREAD_SUSPEND_RESUME.
        resumed |= unsafe { ResumeThread(thread.as_raw_handle()) } != u32::MAX;
    }
    resumed
}

/// How many processes of `job` are still running.
fn active(job: &OwnedHandle) -> u32 {
    let mut info = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
    // SAFETY: the structure the information class names, with its size.
    let ok = unsafe {
        QueryInformationJobObject(
            job.as_raw_handle(),
            JobObjectBasicAccountingInformation,
            (&raw mut info).cast(),
            std::mem::size_of_val(&info) as u32,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 { 0 } else { info.ActiveProcesses }
}

/// The user of `process`'s token, as a SID string.
pub(super) fn token_user(process: HANDLE) -> std::io::Result<User> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A group's head and what it started are all gone once the group is stopped: `cmd.exe`
    /// runs `find.exe`, which waits for input that never comes.
    #[test]
    fn stopping_a_group_ends_what_its_head_started() {
        let (input, _keep_open) = std::io::pipe().unwrap();
        let mut cmd = std::process::Command::new("cmd.exe");
        cmd.args(["/c", "find", "x"]).stdin(input);
        let group = Group::spawn(&mut cmd).unwrap();
        let head = group.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let helper = loop {
            let started = processes().into_iter().find(|(_, parent)| *parent == head);
            if let Some((pid, _)) = started {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cmd.exe never started find.exe: it did not run"
            );
            std::thread::yield_now();
        };
        let held = open_process(helper, PROCESS_SYNCHRONIZE).unwrap();
        assert!(alive(&held));
        group.stop(Duration::from_secs(10));
        assert!(!alive(&held), "the helper outlived its group");
        assert!(!processes().iter().any(|(pid, _)| *pid == head));
    }
}
