//! Bringing a lapsed sign-in back for a tool that can wait, without an agent: one
//! process at a time signs the account in (its sign-in lock, `locks/NAME.sign-in.lock`),
//! and the processes that waited on it take its outcome instead of opening a browser
//! each. The agent does the same for the tools it serves (`broker::agent::sign_in`).

use std::time::Duration;

use super::{Lanyard, LoginOptions, Progress};
use crate::error::Error;
use crate::store::{AccountLock, Status};

/// How long after a sign-in for tools failed (cancelled, timed out, refused) tools get
/// "sign-in needed" at once rather than a browser tab each. `lanyard login` is not held
/// back.
pub const TOOL_SIGN_IN_BACKOFF: Duration = Duration::from_secs(30);

impl Lanyard {
    /// Signs `name` in again for a tool that waits for it (a person at a terminal): in
    /// the browser, as [`Lanyard::login`] does, unless another process is signing it in
    /// already, in which case this waits for that one (`progress` gets
    /// [`Progress::Waiting`]) and takes its outcome. Within [`TOOL_SIGN_IN_BACKOFF`] of a
    /// failed one it fails at once. On return the account is signed in, or the error
    /// says why not.
    pub async fn bring_back(
        &self,
        name: &str,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<(), Error> {
        let needed = |reason: String| Error::SignInNeeded {
            account: name.to_owned(),
            reason,
        };
        let Some(path) = self.records.sign_in_lock_path(name) else {
            // Memory only: nothing to share with another process.
            return self
                .login(name, &LoginOptions::default(), progress)
                .await
                .map(drop);
        };
        let (tell, mut told) = tokio::sync::oneshot::channel();
        let acquire = tokio::task::spawn_blocking(move || {
            AccountLock::acquire_then(&path, || {
                let _ = tell.send(());
            })
        });
        tokio::pin!(acquire);
        let mut waiting = false;
        let locked = loop {
            tokio::select! {
                locked = &mut acquire => break locked,
                // Told when another process holds the lock, before this one waits for it.
                Ok(()) = &mut told, if !waiting => {
                    waiting = true;
                    progress(Progress::Waiting);
                }
            }
        };
        let mut lock = locked
            .map_err(|e| needed(format!("cannot wait for the sign-in under way: {e}")))?
            .map_err(|e| needed(format!("cannot take the account's sign-in lock: {e}")))?;
        if lock.waited() {
            return match lock.failed_while_waiting() {
                Some(why) => Err(needed(format!(
                    "the sign-in another process started did not finish ({why})"
                ))),
                None => Ok(()),
            };
        }
        // Signed in by someone else since this tool looked (`lanyard login`)?
        if self
            .whoami(name)
            .is_ok_and(|record| record.status == Status::SignedIn)
        {
            return Ok(());
        }
        if let Some((ago, why)) = lock.failed_within(TOOL_SIGN_IN_BACKOFF) {
            return Err(needed(format!(
                "the sign-in started {} s ago did not finish ({why}), and no other starts for a tool until {} s have passed",
                ago.as_secs(),
                TOOL_SIGN_IN_BACKOFF.as_secs()
            )));
        }
        match self.login(name, &LoginOptions::default(), progress).await {
            Ok(_) => {
                lock.note_success();
                Ok(())
            }
            Err(e) => {
                lock.note_failure(&e.to_string());
                Err(e)
            }
        }
    }
}
