//! `lanyard exec`: a command run with fresh tokens in its environment, never on its
//! command line, exiting with the command's status. The command is a real program that
//! uses the token at the real provider.

use crate::broker::signed_in;
use crate::support::Idp;

/// The child finds the token in its environment and uses it at the provider's userinfo;
/// its own command line (read from /proc while it runs) holds no token; its exit status
/// is `lanyard exec`'s. A token put on the command line is refused, and nothing runs.
#[tokio::test]
async fn a_command_gets_tokens_in_its_environment_only() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "x-exec").await;
    let userinfo = idp.url_of("userinfo_endpoint").await;
    // What the child does: print its own command line as /proc has it, then ask the
    // provider who the token in $API_AUTH (an Authorization value) belongs to.
    let child = format!(
        "tr '\\0' ' ' < /proc/$$/cmdline; echo; \
         node -e \"fetch('{userinfo}', {{ headers: {{ authorization: process.env.API_AUTH }} }}).then((r) => r.json()).then((j) => console.log('sub=' + j.sub))\"; \
         echo \"raw=${{#TOKEN}}\"; exit 7"
    );
    let run = env
        .lanyard(&[
            "exec",
            "--env",
            "API_AUTH=x-exec:bearer",
            "--env",
            "TOKEN=x-exec",
            "--",
            "sh",
            "-c",
            &child,
        ])
        .await;
    assert_eq!(run.code, 7, "the command's exit status: {run:?}");
    let mut lines = run.stdout.lines();
    let cmdline = lines.next().unwrap_or_default();
    let token = env
        .lanyard(&["token", "x-exec"])
        .await
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    assert!(
        !cmdline.contains(&token),
        "a token on the command line: {cmdline}"
    );
    assert!(cmdline.starts_with("sh -c "), "{cmdline}");
    let rest: Vec<&str> = lines.collect();
    assert!(rest.contains(&"sub=alice"), "{run:?}");
    assert!(
        rest.contains(&format!("raw={}", token.len()).as_str()),
        "{run:?}"
    );

    // A token on the command line: refused, and the command never runs.
    let marker = env.path("ran");
    let run = env
        .lanyard(&[
            "exec",
            "--env",
            "TOKEN=x-exec",
            "--",
            "sh",
            "-c",
            &format!("touch {marker}"),
            &token,
        ])
        .await;
    run.assert_fails(2, "is on the command line");
    assert!(!std::path::Path::new(&marker).exists(), "it ran");

    // A bad --env says how to write it.
    env.lanyard(&["exec", "--env", "NOPE", "--", "true"])
        .await
        .assert_fails(2, "VAR=ACCOUNT");
}
