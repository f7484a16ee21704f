//! One refresh per account across processes.
//!
//! A provider that rotates refresh tokens and detects reuse (RFC 9700's advice for public
//! clients) revokes the whole grant when it sees one refresh token twice. Two processes
//! that refresh an account at once would do just that, and sign the person out. So every
//! process holds the account's lock file, `locks/NAME.lock` in the data directory, from
//! reading the refresh token to storing the rotated one; a process that waited reads what
//! the first one stored.
//!
//! The lock is the OS's own advisory lock on an open file (`flock` on Unix, `LockFileEx`
//! on Windows): the OS drops it with the process, killed or not, so it never outlives its
//! holder. The files themselves stay (deleting one while another process waits on it
//! would let a third lock a new file beside it).
//!
//! The file also holds the outcome of the last failed refresh, so that processes that
//! waited on a refresh that failed get that failure at once rather than asking a provider
//! that is down again, one after another.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::records::create_private_dir;

/// An account's lock, held until dropped.
#[derive(Debug)]
pub struct AccountLock {
    file: File,
    /// When this process started waiting (Unix nanoseconds), if another held the lock.
    waited_since: Option<u128>,
}

/// What the lock file says about the last refresh that failed.
#[derive(Serialize, Deserialize)]
struct LastFailure {
    failed_at_ns: u128,
    message: String,
}

impl AccountLock {
    /// Takes the lock at `path`, waiting for another process that holds it. Blocks: async
    /// callers run it on a blocking thread.
    pub fn acquire(path: &Path) -> std::io::Result<AccountLock> {
        AccountLock::acquire_then(path, || {})
    }

    /// [`AccountLock::acquire`], calling `waiting` when another process holds the lock,
    /// before waiting for it.
    pub fn acquire_then(path: &Path, waiting: impl FnOnce()) -> std::io::Result<AccountLock> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let file = crate::platform::private_file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let waited_since = match file.try_lock() {
            Ok(()) => None,
            Err(std::fs::TryLockError::WouldBlock) => {
                let since = now_ns();
                tracing::info!(lock = %path.display(), "another process is refreshing this account; waiting for it");
                waiting();
                file.lock()?;
                Some(since)
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        };
        Ok(AccountLock { file, waited_since })
    }

    /// Whether this process waited for another that held the lock.
    pub fn waited(&self) -> bool {
        self.waited_since.is_some()
    }

    /// The error of a refresh that failed in another process while this one waited for
    /// it: the outcome this process would have had, known without asking again.
    pub fn failed_while_waiting(&mut self) -> Option<String> {
        let since = self.waited_since?;
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0)).ok()?;
        self.file.read_to_string(&mut text).ok()?;
        let last: LastFailure = serde_json::from_str(&text).ok()?;
        (last.failed_at_ns > since).then_some(last.message)
    }

    /// The last failure noted, if it was less than `within` ago: how long ago, and what.
    pub fn failed_within(
        &mut self,
        within: std::time::Duration,
    ) -> Option<(std::time::Duration, String)> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0)).ok()?;
        self.file.read_to_string(&mut text).ok()?;
        let last: LastFailure = serde_json::from_str(&text).ok()?;
        let ago = std::time::Duration::from_nanos(
            u64::try_from(now_ns().saturating_sub(last.failed_at_ns)).unwrap_or(u64::MAX),
        );
        (ago < within).then_some((ago, last.message))
    }

    /// Leaves word of a failed refresh for the processes waiting.
    pub fn note_failure(&mut self, message: &str) {
        let last = LastFailure {
            failed_at_ns: now_ns(),
            message: message.to_owned(),
        };
        let json = serde_json::to_vec(&last).expect("failures serialise to JSON");
        if let Err(e) = self.rewrite(&json) {
            tracing::warn!(error = %e, "cannot note the failed refresh in the lock file");
        }
    }

    /// Clears word of an earlier failure after a refresh that worked.
    pub fn note_success(&mut self) {
        if let Err(e) = self.rewrite(b"") {
            tracing::warn!(error = %e, "cannot clear the lock file");
        }
    }

    fn rewrite(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(bytes)
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_learns_the_first_ones_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks/work.lock");
        let mut first = AccountLock::acquire(&path).unwrap();
        assert!(!first.waited());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let second = std::thread::spawn({
            let path = path.clone();
            move || {
                // A file of its own, as another process has: the lock is per open file.
                let mut lock = AccountLock::acquire_then(&path, || tx.send(()).unwrap()).unwrap();
                (lock.waited(), lock.failed_while_waiting())
            }
        });
        rx.recv().unwrap(); // the second found the lock held and waits
        first.note_failure("the provider answered 500");
        assert!(!second.is_finished(), "the lock was taken twice");
        drop(first);
        let (waited, failure) = second.join().unwrap();
        assert!(waited);
        assert_eq!(failure.as_deref(), Some("the provider answered 500"));

        // A refresh that works clears the word; one that comes later without waiting
        // never hears of a failure.
        let mut third = AccountLock::acquire(&path).unwrap();
        assert!(!third.waited());
        assert_eq!(third.failed_while_waiting(), None);
        third.note_success();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_failure_from_before_the_wait_is_not_this_waits_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("work.lock");
        let mut earlier = AccountLock::acquire(&path).unwrap();
        earlier.note_failure("an old failure");
        drop(earlier);
        let first = AccountLock::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let second = std::thread::spawn(move || {
            let mut lock = AccountLock::acquire_then(&path, || tx.send(()).unwrap()).unwrap();
            (lock.waited(), lock.failed_while_waiting())
        });
        rx.recv().unwrap();
        drop(first); // ends without a failure of its own (a success not noted, say)
        assert_eq!(second.join().unwrap(), (true, None));
    }
}
