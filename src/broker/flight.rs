//! One slot of the agent's token cache: the cached token, the single flight that renews
//! it, and the outcome of the last flight that failed.
//!
//! Every request that waited on a flight gets that flight's outcome the moment it is
//! known: the new token, or the failure. After a transient failure (the provider down,
//! slow or answering garbage) no new flight starts until a back-off has passed, a few
//! seconds at first and growing with each failure in a row; until then requests get at
//! once the current token while it is still valid, with a warning, or else the failure.
//! So a burst of tools asking a struggling provider costs it one request per back-off
//! window, and none of them waits longer than one flight. `invalid_grant` needs no rule
//! here: `session` marks the account as needing a sign-in, and from then on answers so
//! without asking the provider.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::protocol::{Code, ErrorBody};
use crate::secret::Secret;
use crate::session;

/// A token refreshed this recently is as fresh as the provider makes them: requests that
/// waited on that refresh take it even if it lives shorter than they asked for, rather
/// than each refreshing again. It is also the floor between two refreshes of one slot:
/// a provider whose tokens expire at once (`expires_in` 0) is not asked again sooner.
pub const JUST_REFRESHED: Duration = Duration::from_secs(10);
/// The back-off after the first transient failure; it doubles with each one in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(4);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Slot {
    pub cached: Mutex<Option<Cached>>,
    /// Held while asking `session` for a token: the single flight.
    pub flight: tokio::sync::Mutex<()>,
    /// The task that refreshes ahead of expiry; replaced (and aborted) on each new token.
    pub refresher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    failure: Mutex<Option<Failure>>,
}

#[derive(Clone)]
pub struct Cached {
    pub token: Secret,
    pub expires_at: Option<u64>,
    /// When the provider issued it to this agent (a refresh), if it did.
    pub refreshed_at: Option<Instant>,
    /// DPoP-bound: it goes with a proof of the account's key (`proof`).
    pub dpop: bool,
}

/// A token as handed out, with what the caller should be told about it.
pub struct Served {
    pub cached: Cached,
    pub warning: Option<String>,
}

impl Served {
    pub fn plain(cached: Cached) -> Served {
        Served {
            cached,
            warning: None,
        }
    }
}

/// The last flight of a slot that failed.
#[derive(Clone)]
struct Failure {
    error: ErrorBody,
    /// When the flight ended.
    at: Instant,
    /// When the next flight may start: after the back-off for a transient failure; at
    /// once for others (only requests that waited on the flight share them).
    retry_at: Instant,
    /// Transient failures in a row: the back-off grows with them.
    in_a_row: u32,
}

impl Slot {
    /// The cached token if it is valid for `min_valid` more seconds, or was refreshed
    /// just now and is valid at all.
    pub fn fresh(&self, min_valid: u64) -> Option<Cached> {
        let cached = self.cached().clone()?;
        let remaining = cached.expires_at.map(|e| e.saturating_sub(session::now()));
        let just_refreshed = cached
            .refreshed_at
            .is_some_and(|t| t.elapsed() < JUST_REFRESHED);
        let ok = remaining.is_none_or(|r| r >= min_valid || (just_refreshed && r > 0));
        ok.then_some(cached)
    }

    pub fn cached(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The answer of the last failed flight, if it still stands for a request that
    /// started waiting at `arrived`: it waited on that flight, or the back-off is not over.
    pub fn shared_failure(&self, arrived: Instant) -> Option<Result<Served, ErrorBody>> {
        let failure = self.failure().clone()?;
        let now = Instant::now();
        (failure.at >= arrived || now < failure.retry_at).then(|| self.answer(&failure, now))
    }

    /// When the next flight may start after the last failure, if one is pending.
    pub fn retry_at(&self) -> Option<Instant> {
        self.failure()
            .as_ref()
            .map(|f| f.retry_at)
            .filter(|at| *at > Instant::now())
    }

    /// Records a failed flight, and answers it. `transient` failures (the provider, not
    /// the request) start the back-off.
    pub fn failed(&self, error: ErrorBody, transient: bool) -> Result<Served, ErrorBody> {
        let now = Instant::now();
        let mut last = self.failure();
        let in_a_row = match (&*last, transient) {
            (_, false) => 0,
            (Some(f), true) => f.in_a_row + 1,
            (None, true) => 1,
        };
        let failure = Failure {
            error,
            at: now,
            retry_at: now + backoff(in_a_row),
            in_a_row,
        };
        *last = Some(failure.clone());
        drop(last);
        self.answer(&failure, now)
    }

    /// Forgets the last failure after a flight that worked.
    pub fn succeeded(&self) {
        *self.failure() = None;
    }

    /// The current token while it is valid, with the failure as a warning; else the
    /// failure, with when Lanyard asks the provider again.
    fn answer(&self, failure: &Failure, now: Instant) -> Result<Served, ErrorBody> {
        let again = match failure.retry_at.checked_duration_since(now) {
            Some(wait) if !wait.is_zero() => format!(
                "; Lanyard asks the provider again in {} s",
                wait.as_secs_f64().ceil() as u64
            ),
            _ => String::new(),
        };
        let cached = self.cached().clone();
        let remaining = cached
            .as_ref()
            .and_then(|c| c.expires_at)
            .map(|e| e.saturating_sub(session::now()));
        match (cached, remaining) {
            (Some(cached), Some(r)) if r > 0 && failure.error.code == Code::ProviderError => {
                Ok(Served {
                    cached,
                    warning: Some(format!(
                        "{}; the current token is still valid for {r} s{again}",
                        failure.error.message
                    )),
                })
            }
            _ => Err(ErrorBody {
                message: format!("{}{again}", failure.error.message),
                ..failure.error.clone()
            }),
        }
    }

    fn failure(&self) -> std::sync::MutexGuard<'_, Option<Failure>> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long after the `in_a_row`th transient failure in a row the provider is asked
/// again: [`FIRST_BACKOFF`], doubling, at most [`MAX_BACKOFF`]; none after other failures.
pub fn backoff(in_a_row: u32) -> Duration {
    match in_a_row {
        0 => Duration::ZERO,
        n => FIRST_BACKOFF
            .saturating_mul(1 << (n - 1).min(16))
            .min(MAX_BACKOFF),
    }
}

/// How long until a token with `lifetime` seconds left is refreshed, `ahead` seconds
/// before it runs out: never sooner than [`JUST_REFRESHED`].
pub fn refresh_delay(lifetime: u64, ahead: u64) -> Duration {
    Duration::from_secs(lifetime.saturating_sub(ahead)).max(JUST_REFRESHED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider_down() -> ErrorBody {
        ErrorBody {
            code: Code::ProviderError,
            message: "work: refreshing the access token failed (HTTP 500)".into(),
            hint: None,
        }
    }

    fn token(valid_for: u64) -> Cached {
        Cached {
            token: Secret::new("t"),
            expires_at: Some(session::now() + valid_for),
            refreshed_at: None,
            dpop: false,
        }
    }

    #[test]
    fn backoff_starts_at_a_few_seconds_and_grows_to_five_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(4));
        assert_eq!(backoff(2), Duration::from_secs(8));
        assert_eq!(backoff(3), Duration::from_secs(16));
        assert_eq!(backoff(7), Duration::from_secs(256));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_shared_with_waiters_and_until_the_backoff_ends() {
        let slot = Slot::default();
        let waiting = Instant::now();
        // The flight ends in a failure; no token to fall back on.
        let e = slot.failed(provider_down(), true).err().unwrap();
        assert!(
            e.message
                .ends_with("Lanyard asks the provider again in 4 s"),
            "{}",
            e.message
        );
        // A request that waited on the flight gets its outcome.
        assert!(slot.shared_failure(waiting).unwrap().is_err());
        // One that comes later gets it too while the back-off lasts…
        tokio::time::advance(Duration::from_secs(3)).await;
        let later = Instant::now();
        let e = slot.shared_failure(later).unwrap().err().unwrap();
        assert!(e.message.ends_with("again in 1 s"), "{}", e.message);
        assert_eq!(slot.retry_at(), Some(waiting + Duration::from_secs(4)));
        // …and once it is over, starts a flight of its own.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(slot.shared_failure(Instant::now()).is_none());
        assert_eq!(slot.retry_at(), None);
        // A second failure in a row backs off longer; a success forgets them.
        slot.failed(provider_down(), true).err().unwrap();
        assert_eq!(
            slot.retry_at(),
            Some(Instant::now() + Duration::from_secs(8))
        );
        slot.succeeded();
        assert!(slot.shared_failure(Instant::now()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_still_valid_token_is_served_with_the_failure_as_a_warning() {
        let slot = Slot::default();
        *slot.cached() = Some(token(600));
        let served = slot.failed(provider_down(), true).unwrap();
        let warning = served.warning.unwrap();
        assert!(warning.starts_with("work: refreshing the access token failed (HTTP 500); the current token is still valid for "), "{warning}");
        assert!(
            warning.ends_with("Lanyard asks the provider again in 4 s"),
            "{warning}"
        );
        assert_eq!(served.cached.token.expose(), "t");
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_go_only_to_the_requests_that_waited() {
        let slot = Slot::default();
        *slot.cached() = Some(token(600));
        let waiting = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        let locked = ErrorBody {
            code: Code::KeychainUnavailable,
            message: "the keychain is locked".into(),
            hint: None,
        };
        let e = slot.failed(locked, false).err().unwrap();
        assert_eq!(e.message, "the keychain is locked");
        assert!(slot.shared_failure(waiting).unwrap().is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(slot.shared_failure(Instant::now()).is_none());
    }

    #[test]
    fn refresh_waits_at_least_the_floor() {
        assert_eq!(refresh_delay(0, 0), JUST_REFRESHED);
        assert_eq!(refresh_delay(3600, 120), Duration::from_secs(3480));
    }
}
