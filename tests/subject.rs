//! A sign-in never silently changes who an account is: one that comes back as another
//! person (another `sub`) is refused and stores nothing, in this process and through the
//! agent; `--as-new-user` is how a person does it on purpose.

use crate::broker::{me, signed_in};
use crate::support::{self, Env, Idp};

/// Bob signs in at the same provider, in a browser of his own.
fn as_bob(env: &mut Env) {
    env.set("LANYARD_TEST_LOGIN", "bob");
    env.set("LANYARD_TEST_BROWSER_PROFILE", &env.path("bob-profile"));
}

/// What the provider did to tokens: revocations and grants.
async fn revocations(idp: &Idp) -> usize {
    idp.events()
        .await
        .iter()
        .filter(|e| e.contains("revoked") || e.contains("destroyed"))
        .count()
}

#[tokio::test]
async fn a_sign_in_as_someone_else_is_refused_unless_asked_for() {
    let idp = Idp::start(false);
    let mut env = signed_in(&idp, "s-direct").await;
    let before = support::stored_tokens("s-direct").unwrap();
    let revoked = revocations(&idp).await;
    as_bob(&mut env);

    let run = env.lanyard(&["login", "s-direct"]).await;
    run.assert_fails(5, "lanyard login s-direct --as-new-user");
    assert!(
        run.stderr.contains("alice at") && run.stderr.contains("bob at"),
        "{run:#?}"
    );
    // Nothing kept: the same tokens, the same person; Bob's tokens revoked at once.
    assert_eq!(support::stored_tokens("s-direct").unwrap(), before);
    let who = env.lanyard(&["whoami", "s-direct", "--json"]).await;
    assert_eq!(who.assert_ok().json()["subject"], "alice");
    assert!(
        revocations(&idp).await > revoked,
        "what the refused sign-in was issued is revoked: {:?}",
        idp.events().await
    );
    let token = env.access_token("s-direct", &[]).await;
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");

    // On purpose, it is Bob's from now on.
    env.lanyard(&["login", "s-direct", "--as-new-user"])
        .await
        .assert_ok();
    let who = env.lanyard(&["whoami", "s-direct", "--json"]).await;
    assert_eq!(who.assert_ok().json()["subject"], "bob");
}

#[tokio::test]
async fn through_the_agent_a_sign_in_as_someone_else_is_refused_too() {
    let idp = Idp::start(false);
    let mut env = signed_in(&idp, "s-agent").await;
    // The agent opens the browser, where Bob signs in.
    as_bob(&mut env);
    let _agent = env.start_agent().await;
    env.lanyard(&["allow", "s-agent", &me()]).await.assert_ok();
    let before = support::stored_tokens("s-agent").unwrap();

    // `lanyard login` asks the running agent, which runs the sign-in.
    let run = env.lanyard(&["login", "s-agent"]).await;
    run.assert_fails(5, "--as-new-user");
    assert_eq!(support::stored_tokens("s-agent").unwrap(), before);
    // The agent still serves Alice's tokens.
    let token = env.access_token("s-agent", &["--min-valid", "0"]).await;
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");

    env.lanyard(&["login", "s-agent", "--as-new-user"])
        .await
        .assert_ok();
    let token = env.access_token("s-agent", &["--min-valid", "0"]).await;
    assert_eq!(idp.userinfo(&token).await["sub"], "bob");
}

/// A `LANYARD_SOCK` where no agent answers is an error that says so, not a quiet
/// fall-back to the keychain: a program cannot step around the agent's approval by
/// naming a socket that is not there.
#[tokio::test]
async fn a_lanyard_sock_that_names_nothing_is_an_error() {
    let idp = Idp::start(false);
    let mut env = signed_in(&idp, "s-sock").await;
    let _agent = env.start_agent().await;
    env.set("LANYARD_SOCK", &env.path("nothing-here.sock"));
    for args in [
        &["token", "s-sock"][..],
        &["token", "s-sock", "--json"],
        &["token", "s-sock", "--client-credentials"],
        &["gcp-credential", "--account", "s-sock"],
        &[
            "aws-credentials",
            "--account",
            "s-sock",
            "--role-arn",
            "arn:aws:iam::1:role/r",
        ],
        &["login", "s-sock", "--no-browser"],
        &["logout", "s-sock", "--no-browser"],
    ] {
        let run = env.lanyard(args).await;
        run.assert_fails(2, "no agent answers at LANYARD_SOCK=");
        assert!(!run.stdout.contains("eyJ"), "{args:?}: {run:#?}");
    }
    // Signed in all along.
    env.unset("LANYARD_SOCK");
    let who = env.lanyard(&["whoami", "s-sock", "--json"]).await;
    assert_eq!(who.assert_ok().json()["status"], "signed_in");
}
