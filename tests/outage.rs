//! The provider down, hanging or answering garbage while tools ask at once, and processes
//! that refresh together without the agent: every tool is answered within one flight, the
//! provider is asked once per back-off window, and a rotating provider sees one refresh.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::broker::{me, signed_in};
use crate::support::{AgentProc, Env, Idp, Run, stored_tokens};

/// Lanyard's HTTP timeout (`http::TOTAL_TIMEOUT`): the longest one flight can take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `n` tools started together, each asking for a token valid longer than any is: each
/// needs a refresh. Each run comes with how long it took from the first start.
async fn tools_at_once(env: &Env, account: &str, n: usize) -> Vec<(Run, Duration)> {
    let start = Instant::now();
    join_all((0..n).map(|_| async move {
        let run = env
            .lanyard(&["token", account, "--min-valid", "99999"])
            .await;
        (run, start.elapsed())
    }))
    .await
}

/// An account signed in, this test allowed it, the agent running, and the token it hands
/// out.
async fn agent_with_token(idp: &Idp, account: &str) -> (Env, AgentProc, String) {
    let env = signed_in(idp, account).await;
    env.lanyard(&["allow", account, &me()]).await.assert_ok();
    let agent = env.start_agent().await;
    let token = env.lanyard(&["token", account]).await;
    let token = token.assert_ok().stdout.trim().to_owned();
    (env, agent, token)
}

/// The seconds in "Lanyard asks the provider again in N s", if said.
fn asks_again_in(stderr: &str) -> Option<u64> {
    let (_, rest) = stderr.split_once("Lanyard asks the provider again in ")?;
    rest.split(' ').next()?.parse().ok()
}

/// Every run printed `token` and warned that the refresh failed and the token is still
/// valid. Returns the longest back-off announced.
#[track_caller]
fn all_got_the_current_token(runs: &[(Run, Duration)], token: &str) -> u64 {
    let mut longest = 0;
    for (run, _) in runs {
        run.assert_ok();
        assert_eq!(run.stdout.trim(), token, "{run:?}");
        assert!(
            run.stderr.contains("refreshing the access token failed")
                && run.stderr.contains("the current token is still valid for"),
            "{run:?}"
        );
        longest = longest.max(asks_again_in(&run.stderr).unwrap_or(0));
    }
    longest
}

/// The first case: 20 tools ask the agent at once while the token endpoint
/// accepts connections and never answers. Each used to wait for the flights of all who
/// came before it (20 × 30 s); now each gets the one flight's outcome.
#[tokio::test]
async fn a_hung_provider_answers_every_waiting_tool_within_one_timeout() {
    let idp = Idp::start(false);
    let (env, _agent, token) = agent_with_token(&idp, "o-hang").await;

    idp.fault("/token", "hang").await;
    let before = idp.hits("/token").await;
    let runs = tools_at_once(&env, "o-hang", 20).await;
    all_got_the_current_token(&runs, &token);
    let slowest = runs.iter().map(|(_, took)| *took).max().unwrap();
    assert!(
        slowest <= HTTP_TIMEOUT + Duration::from_secs(1),
        "the last tool waited {slowest:?}"
    );
    assert_eq!(idp.hits("/token").await, before + 1, "one flight");

    // A tool that comes after the flight, within the back-off, is told at once and the
    // provider is not asked.
    let run = env
        .lanyard(&["token", "o-hang", "--min-valid", "99999", "--json"])
        .await;
    assert_eq!(run.assert_ok().json()["access_token"], token.as_str());
    assert!(asks_again_in(&run.stderr).is_some(), "{run:?}");
    assert_eq!(idp.hits("/token").await, before + 1);
    idp.fault("/token", "off").await;
}

/// The most attempts the provider may see in `elapsed` after a first failure, one per
/// back-off window: at 0, then after 4 s, 8 s more, 16 s more …
fn windows(elapsed: Duration) -> u64 {
    let (mut at, mut backoff, mut n) = (Duration::ZERO, Duration::from_secs(4), 0);
    while at <= elapsed {
        n += 1;
        at += backoff;
        backoff *= 2;
    }
    n
}

/// The second case: the provider answering 500 (then resetting connections, then
/// answering garbage) sees one refresh attempt per back-off window, not one per request;
/// the tools meanwhile get the still-valid token at once, with the failure as a warning.
#[tokio::test]
async fn a_failing_provider_is_asked_once_per_backoff_window() {
    let idp = Idp::start(false);
    let (env, _agent, token) = agent_with_token(&idp, "o-500").await;

    idp.fault("/token", "500").await;
    let before = idp.hits("/token").await;
    let first_failure = Instant::now();
    let runs = tools_at_once(&env, "o-500", 20).await;
    let backoff = all_got_the_current_token(&runs, &token);
    assert!((1..=4).contains(&backoff), "{backoff}");
    // Another burst right away: at most the windows that have passed since.
    let runs = tools_at_once(&env, "o-500", 20).await;
    all_got_the_current_token(&runs, &token);
    let attempts = idp.hits("/token").await - before;
    let bound = windows(first_failure.elapsed());
    assert!(
        (1..=bound).contains(&attempts),
        "{attempts} attempts for 40 requests in {:?} ({bound} windows)",
        first_failure.elapsed()
    );

    // Once a window is over, the next burst makes one attempt, and the back-off grows.
    // (Waiting out the back-off is what this tests, not a way to synchronise.)
    let mut backoff = backoff;
    for mode in ["reset", "garbage"] {
        idp.fault("/token", mode).await;
        tokio::time::sleep(Duration::from_secs(backoff) + Duration::from_millis(200)).await;
        let before = idp.hits("/token").await;
        let runs = tools_at_once(&env, "o-500", 20).await;
        let announced = all_got_the_current_token(&runs, &token);
        assert_eq!(idp.hits("/token").await, before + 1, "{mode}: one attempt");
        assert!(
            announced > backoff,
            "{mode}: the back-off grows ({announced} s)"
        );
        backoff = announced;
    }
    idp.fault("/token", "off").await;
}

/// The third case: eight `lanyard token` processes without an agent, started
/// together against a provider that rotates refresh tokens and revokes the grant when one
/// is used twice. The first to take the account's lock refreshes; the provider holds that
/// refresh until the other seven wait on the lock, so the test sees them all contend.
#[tokio::test]
async fn processes_started_together_refresh_once() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "o-direct").await;
    let consumed = |events: &[String], name: &str| events.iter().filter(|e| *e == name).count();
    assert_eq!(consumed(&idp.events().await, "refresh_token.consumed"), 0);

    let before = idp.hits("/token").await;
    let runs = eight_at_once(&idp, &env, "o-direct", "off").await;

    let events = idp.events().await;
    assert_eq!(consumed(&events, "refresh_token.consumed"), 1, "{events:?}");
    assert_eq!(consumed(&events, "grant.revoked"), 0, "{events:?}");
    assert_eq!(idp.hits("/token").await, before + 1);
    let token = runs[0].stdout.trim().to_owned();
    for run in &runs {
        run.assert_ok();
        assert_eq!(
            run.stdout.trim(),
            token,
            "every process has the one new token"
        );
    }
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
    // Still signed in: the rotated refresh token is the one stored, and works.
    let run = env
        .lanyard(&["token", "o-direct", "--min-valid", "99999"])
        .await;
    assert_ne!(run.assert_ok().stdout.trim(), token);
    assert_eq!(idp.hits("/token").await, before + 2);
    let events = idp.events().await;
    assert_eq!(consumed(&events, "grant.revoked"), 0, "{events:?}");
}

/// Eight `lanyard token` processes without an agent, each needing a refresh. The
/// provider holds the first refresh until the seven others wait on the account's lock,
/// then switches to `then` (`off`: the refresh goes through; `500`: it fails).
async fn eight_at_once(idp: &Idp, env: &Env, account: &str, then: &str) -> Vec<Run> {
    let lock = Path::new(&env.path("data")).join(format!("lanyard/locks/{account}.lock"));
    idp.fault("/token", "hold").await;
    let before = idp.hits("/token").await;
    let release = async {
        let waited =
            wait_for(|| async { idp.hits("/token").await > before && blocked_on(&lock) == 7 })
                .await;
        let hits = idp.hits("/token").await - before;
        idp.fault("/token", then).await;
        assert!(
            waited,
            "not 7 processes waiting on the lock ({} waiting; {hits} refreshes at the provider)",
            blocked_on(&lock)
        );
        assert_eq!(hits, 1, "one process asks the provider while seven wait");
    };
    let tools = join_all((0..8).map(|_| async move {
        env.lanyard(&["token", account, "--min-valid", "99999"])
            .await
    }));
    let (runs, ()) = tokio::join!(tools, release);
    runs
}

/// Processes that waited on another's refresh, which failed, get that failure (here, the
/// still-valid token with the warning) without asking the provider again one by one.
#[tokio::test]
async fn processes_that_waited_share_a_failed_refresh() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "o-direct-500").await;
    let token = env.lanyard(&["token", "o-direct-500"]).await;
    let token = token.assert_ok().stdout.trim().to_owned();
    let before = idp.hits("/token").await;
    let runs = eight_at_once(&idp, &env, "o-direct-500", "500").await;
    assert_eq!(
        idp.hits("/token").await,
        before + 1,
        "one attempt for eight"
    );
    let runs: Vec<_> = runs.into_iter().map(|r| (r, Duration::ZERO)).collect();
    all_got_the_current_token(&runs, &token);
    idp.fault("/token", "off").await;
    // The failure is not remembered past the wait: the next process tries again.
    env.lanyard(&["token", "o-direct-500", "--min-valid", "99999"])
        .await
        .assert_ok();
    assert_eq!(idp.hits("/token").await, before + 2);
}

/// `invalid_grant` is shared like any outcome, and final until a sign-in: after the
/// provider revokes the grant, twenty tools at once cost it one refresh attempt, the
/// agent stops handing out the token it still holds, and later tools cost nothing.
#[tokio::test]
async fn a_revoked_sign_in_is_told_to_everyone_at_once() {
    let idp = Idp::start(false);
    let (env, _agent, _token) = agent_with_token(&idp, "o-revoked").await;
    // Someone uses the stored refresh token first: the provider rotates it, so Lanyard's
    // is spent, and using it again revokes the grant.
    let stored = stored_tokens("o-revoked").unwrap();
    let spent = stored["refresh_token"].as_str().unwrap();
    let stolen = idp.try_refresh("lanyard-public", spent).await;
    assert!(stolen["access_token"].is_string(), "{stolen}");
    let before = idp.hits("/token").await;
    let runs = tools_at_once(&env, "o-revoked", 20).await;
    for (run, _) in &runs {
        run.assert_fails(3, "sign-in needed");
    }
    assert_eq!(
        idp.hits("/token").await,
        before + 1,
        "one attempt for twenty"
    );
    env.lanyard(&["token", "o-revoked"])
        .await
        .assert_fails(3, "sign-in needed");
    assert_eq!(idp.hits("/token").await, before + 1);
    // A sign-in ends it.
    env.lanyard(&["login", "o-revoked"]).await.assert_ok();
    env.lanyard(&["token", "o-revoked", "--min-valid", "99999"])
        .await
        .assert_ok();
}

/// A process killed while it holds the lock does not leave the account locked.
#[tokio::test]
async fn a_killed_process_leaves_no_lock_behind() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "o-kill").await;
    idp.fault("/token", "hang").await;
    let before = idp.hits("/token").await;
    let mut holder = env
        .command(&["token", "o-kill", "--min-valid", "99999"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let asked = wait_for(|| async { idp.hits("/token").await > before }).await;
    assert!(asked, "the process never asked the provider");
    holder.kill().await.unwrap(); // SIGKILL: no destructor runs
    idp.fault("/token", "off").await;
    let run = env
        .lanyard(&["token", "o-kill", "--min-valid", "99999"])
        .await;
    run.assert_ok();
    assert_eq!(
        idp.hits("/token").await,
        before + 2,
        "the next process refreshed"
    );
}

/// Polls `ready` until it holds, for at most a minute; whether it did.
async fn wait_for<F: std::future::Future<Output = bool>>(ready: impl Fn() -> F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ready().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// How many processes wait for the lock on `path` (/proc/locks marks them `->`).
fn blocked_on(path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(inode) = std::fs::metadata(path).map(|m| m.ino()) else {
        return 0;
    };
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"->")
                && fields
                    .iter()
                    .any(|f| f.rsplit(':').next() == Some(&inode.to_string()) && f.contains(':'))
        })
        .count()
}
