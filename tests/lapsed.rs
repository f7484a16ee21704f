//! A sign-in that lapsed (the provider revoked the grant) while tools need it: the
//! tools a person is waiting at bring them back to sign in, once however many ask; tools
//! that cannot wait are told at once, and no browser opens for them. Real kubectl, on a
//! real terminal (`script` gives it one), against the real provider.

use std::process::Stdio;

use serde_json::Value;

use crate::broker::signed_in;
use crate::support::{self, Api, Env, Idp};

/// How many kubectl processes ask at once.
const KUBECTLS: usize = 20;

/// Revokes `account`'s grant at the provider the way its reuse detection does: the
/// stored refresh token is used once from outside, so Lanyard's next refresh with it is a
/// replay, which revokes the whole grant.
async fn revoke_grant(idp: &Idp, account: &str) {
    let stored = support::keychain("lanyard", account).expect("signed in");
    let stored: Value = serde_json::from_str(&stored).unwrap();
    let refresh = stored["refresh_token"].as_str().expect("a refresh token");
    let rotated = idp.try_refresh("lanyard-public", refresh).await;
    assert!(rotated["access_token"].is_string(), "{rotated}");
}

/// A kubeconfig for `api` whose user is `lanyard kubectl-credential ACCOUNT`, in
/// kubectl's interactive mode `mode`; its path.
fn kubeconfig(env: &Env, api: &Api, account: &str, mode: &str) -> String {
    let args = format!("kubectl-credential, {account}, --min-valid, '7200'");
    support::kubeconfig(env, api, "v1", &args, mode, &format!("kubeconfig-{mode}"))
}

/// Runs `command` on a terminal of its own (util-linux's `script`), as a person at a
/// terminal would: its exit status and what it printed there.
async fn on_a_terminal(env: &Env, command: &str) -> (bool, String) {
    let mut script = tokio::process::Command::new("script");
    script
        .args(["--quiet", "--return", "--command", command, "/dev/null"])
        .env("LANYARD_CONFIG", &env.config)
        .envs(env.vars())
        .env_remove("RUST_LOG")
        // Held open until it exits: `script` ends the session at the end of its input.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = script.spawn().unwrap();
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `kubectl get --raw /version` with `kubeconfig`, `n` at once, each on its own terminal.
async fn kubectls(env: &Env, kubeconfig: &str, n: usize) -> Vec<(bool, String)> {
    let command = format!("kubectl --kubeconfig {kubeconfig} get --raw /version");
    let runs = (0..n).map(|_| on_a_terminal(env, &command));
    futures_util::future::join_all(runs).await
}

/// The API server the kubectls call: it takes any token the provider's userinfo takes,
/// so a token from a new sign-in works too. `challenge` is its `WWW-Authenticate`.
async fn api_with(idp: &Idp, challenge: &str) -> Api {
    let userinfo = idp.url_of("userinfo_endpoint").await;
    let version = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0-lanyard-test"}"#;
    Api::start(
        true,
        &format!("userinfo {userinfo}"),
        "application/json",
        version,
        challenge,
    )
}

async fn api(idp: &Idp) -> Api {
    api_with(idp, "Bearer").await
}

/// kubectl's executable, as the agent names the app that asks.
fn kubectl() -> String {
    let path = std::fs::canonicalize("/usr/bin/kubectl").unwrap();
    path.display().to_string()
}

/// How many authorization codes the provider has issued.
async fn codes_issued(idp: &Idp) -> usize {
    let events = idp.events().await;
    events
        .iter()
        .filter(|e| *e == "authorization.success")
        .count()
}

/// Twenty kubectls in interactive mode (`interactiveMode: IfAvailable`, each on a
/// terminal) find the grant revoked: the agent opens the browser once, the provider issues
/// one authorization code, and every kubectl gets a token that works.
#[tokio::test]
async fn interactive_kubectls_bring_the_person_back_once() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "l-kube").await;
    let _agent = env.start_agent().await;
    env.lanyard(&["allow", "l-kube", &kubectl()])
        .await
        .assert_ok();
    revoke_grant(&idp, "l-kube").await;
    let (api, codes) = (api(&idp).await, codes_issued(&idp).await);
    let kubeconfig = kubeconfig(&env, &api, "l-kube", "IfAvailable");

    let runs = kubectls(&env, &kubeconfig, KUBECTLS).await;
    for (ok, said) in &runs {
        assert!(*ok && said.contains("v1.32.0-lanyard-test"), "{said}");
    }
    // The sign-in at setup, and the one that brought the person back (the browser logs
    // its run after the tab was answered: waited for).
    env.browser_run(1).await;
    assert_eq!(env.browser_runs().len(), 2, "{:#?}", env.browser_runs());
    assert_eq!(codes_issued(&idp).await, codes + 1);
    let told = runs
        .iter()
        .filter(|(_, said)| said.contains("l-kube needs you to sign in again"))
        .count();
    assert!(told >= 1, "nobody was told why they waited: {runs:#?}");
    let events = idp.events().await;
    assert!(events.contains(&"grant.revoked".to_owned()), "{events:?}");
}

/// The same kubectls that cannot prompt (`interactiveMode: Never`) are told at once that
/// a sign-in is needed, and no browser opens.
#[tokio::test]
async fn kubectls_that_cannot_prompt_are_told_at_once() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "l-never").await;
    let _agent = env.start_agent().await;
    env.lanyard(&["allow", "l-never", &kubectl()])
        .await
        .assert_ok();
    revoke_grant(&idp, "l-never").await;
    let (api, codes) = (api(&idp).await, codes_issued(&idp).await);
    let kubeconfig = kubeconfig(&env, &api, "l-never", "Never");

    let runs = kubectls(&env, &kubeconfig, KUBECTLS).await;
    for (ok, said) in &runs {
        assert!(!*ok && said.contains("sign-in needed"), "{said}");
        // One command to run, said once (kubectl may run its plugin twice).
        for line in said.lines().filter(|l| l.contains("sign-in needed")) {
            assert_eq!(line.matches("lanyard login l-never").count(), 1, "{line}");
        }
    }
    assert_eq!(env.browser_runs().len(), 1, "{:#?}", env.browser_runs());
    assert_eq!(codes_issued(&idp).await, codes);
}

/// Ten `git ls-remote`s over https, each on a terminal (where git would prompt), find the
/// grant revoked: their credential helper joins one sign-in, and every one is served.
#[tokio::test]
async fn git_fetches_at_a_terminal_join_one_sign_in() {
    // Access tokens that live less than the helper's minute: each ask refreshes.
    let idp = Idp::start_with(false, &["--access-token-ttl", "30"]);
    let env = Env::new();
    env.public_account("l-git", &idp);
    env.lanyard(&["login", "l-git"]).await.assert_ok();
    // git sends credentials to a server that asks for Basic ones.
    let api = api_with(&idp, "Basic realm=\"lanyard-test\"").await;
    let codes = codes_issued(&idp).await;
    let host = api.url.trim_start_matches("https://").to_owned();
    let config = std::fs::read_to_string(&env.config).unwrap().replace(
        "[accounts.l-git]\n",
        &format!("[accounts.l-git]\ngit_hosts = [\"{host}\"]\n"),
    );
    std::fs::write(&env.config, config).unwrap();
    let _agent = env.start_agent().await;
    // git asks its helpers from git-remote-https: the app the person allows.
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap();
    let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
    let remote_https =
        std::fs::canonicalize(std::path::Path::new(&exec_path).join("git-remote-https")).unwrap();
    env.lanyard(&["allow", "l-git", &remote_https.display().to_string()])
        .await
        .assert_ok();
    revoke_grant(&idp, "l-git").await;

    let home = env.path("git-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        format!("{home}/.gitconfig"),
        format!(
            "[credential]\n\thelper = \"!{} git-credential --account l-git\"\n",
            env!("CARGO_BIN_EXE_lanyard"),
        ),
    )
    .unwrap();
    let command = format!(
        "env HOME={home} GIT_CONFIG_NOSYSTEM=1 GIT_SSL_CAINFO={} git ls-remote {}/repo.git \
         && echo listed",
        api.ca.display(),
        api.url
    );
    let runs = (0..10).map(|_| on_a_terminal(&env, &command));
    let runs = futures_util::future::join_all(runs).await;
    for (ok, said) in &runs {
        assert!(
            *ok && said.contains("listed"),
            "{said} {:?}",
            api.seen().await
        );
    }
    env.browser_run(1).await;
    assert_eq!(env.browser_runs().len(), 2, "{:#?}", env.browser_runs());
    assert_eq!(codes_issued(&idp).await, codes + 1);
}

/// Without an agent: `lanyard token` at a terminal signs the person in again (two at
/// once: one browser, the other waits for it); without a terminal it is told at once.
#[tokio::test]
async fn lanyard_token_at_a_terminal_signs_in_again() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "l-term").await;
    revoke_grant(&idp, "l-term").await;

    let piped = env
        .lanyard(&["token", "l-term", "--min-valid", "7200"])
        .await;
    piped.assert_fails(3, "sign-in needed");
    assert_eq!(env.browser_runs().len(), 1, "no browser without a terminal");

    let codes = codes_issued(&idp).await;
    let command = format!(
        "{} token l-term --min-valid 7200",
        env!("CARGO_BIN_EXE_lanyard")
    );
    let (first, second) =
        tokio::join!(on_a_terminal(&env, &command), on_a_terminal(&env, &command));
    for (ok, said) in [&first, &second] {
        assert!(*ok, "{said}");
    }
    env.browser_run(1).await;
    assert_eq!(env.browser_runs().len(), 2, "{:#?}", env.browser_runs());
    assert_eq!(codes_issued(&idp).await, codes + 1);
    let token = env
        .lanyard(&["token", "l-term"])
        .await
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
}
