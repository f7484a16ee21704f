//! When the browser cannot come back to Lanyard's 127.0.0.1: a browser on another machine
//! (WSL's Windows side, the host of a container, the laptop an ssh session comes from).
//! The person opens the link there and pastes back the address the browser ended on.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::support::{Env, Idp};

/// A world with the account `far`, a public client of `idp`.
fn far(idp: &Idp) -> Env {
    let env = Env::new();
    env.public_account("far", idp);
    env
}

/// `lanyard login --paste`, started: the process, the sign-in link it printed, the
/// redirect URI it says the pasted address starts with, and what it says on stderr after
/// that (once it exits).
async fn start_pasted(
    env: &Env,
    account: &str,
) -> (
    tokio::process::Child,
    String,
    String,
    tokio::task::JoinHandle<Vec<String>>,
) {
    let mut login = env.command(&["login", account, "--paste"]);
    login
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = login.spawn().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    let link = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), stderr.next_line())
            .await
            .expect("lanyard printed the link within a minute")
            .unwrap()
            .unwrap_or_else(|| panic!("lanyard exited having said {said:#?}"));
        if let Some(link) = line.strip_prefix("  http") {
            break format!("http{link}");
        }
        said.push(line);
    };
    // The link is the provider's own (a browser elsewhere cannot reach a page on this
    // machine), and the person is told what to paste.
    assert!(
        said.iter().any(|l| l.contains("on any device")),
        "{said:#?}"
    );
    let told = stderr.next_line().await.unwrap().unwrap_or_default();
    let redirect = told
        .split_once("starts with ")
        .and_then(|(_, r)| r.split_once(". Copy"))
        .map(|(r, _)| r.to_owned())
        .unwrap_or_else(|| panic!("lanyard did not say what to paste: {told}"));
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            rest.push(line);
        }
        rest
    });
    (child, link, redirect, rest)
}

/// The browser elsewhere signs in on the provider's real pages; its redirect to this
/// machine's 127.0.0.1 fails there; the person pastes the address it ended on, and the
/// sign-in finishes with every check a redirect gets. The token works at the provider.
#[tokio::test]
async fn a_browser_on_another_machine_signs_in_through_a_pasted_address() {
    let idp = Idp::start(false);
    let mut env = far(&idp);
    env.set("LANYARD_TEST_BROWSER_ACTION", "elsewhere");
    let (mut login, link, redirect, _) = start_pasted(&env, "far").await;
    assert!(link.starts_with(&idp.issuer), "{link}");
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    // The provider takes pushed authorization requests (RFC 9126): the link, which the
    // person carries to another machine, holds a reference to the request, not the
    // request.
    let named: Vec<String> = url::Url::parse(&link)
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(named, ["client_id", "request_uri"], "{link}");

    // The person at the other machine's browser.
    let ended_on = env.sign_in_elsewhere(&link).await;

    let mut stdin = login.stdin.take().unwrap();
    stdin
        .write_all(format!("{ended_on}\n").as_bytes())
        .await
        .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), login.wait())
        .await
        .expect("the sign-in finished within a minute")
        .unwrap();
    assert!(status.success(), "{status}");
    let token = env.lanyard(&["token", "far"]).await;
    let token = token.assert_ok().stdout.trim().to_owned();
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
}

/// A pasted address is taken only if it is this sign-in's redirect with this sign-in's
/// `state`: another address says what to paste; a forged state stops the sign-in (exit
/// 5), and nothing is stored.
#[tokio::test]
async fn a_pasted_address_of_another_sign_in_is_refused() {
    let idp = Idp::start(false);
    let env = far(&idp);
    for (paste, code, says) in [
        (
            "https://example.com/somewhere?code=x&state=y".to_owned(),
            7,
            "not the address the browser ended on",
        ),
        (String::new(), 5, "belongs to another sign-in"),
    ] {
        let (mut login, _, redirect, said) = start_pasted(&env, "far").await;
        let paste = if paste.is_empty() {
            format!("{redirect}?code=forged&state=forged&iss={}", idp.issuer)
        } else {
            paste
        };
        let mut stdin = login.stdin.take().unwrap();
        stdin
            .write_all(format!("{paste}\n").as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), login.wait())
            .await
            .expect("lanyard answered within a minute")
            .unwrap();
        let said = said.await.unwrap();
        assert_eq!(status.code(), Some(code), "{said:#?}");
        assert!(said.iter().any(|l| l.contains(says)), "{said:#?}");
    }
    let status = env.lanyard(&["status", "--json"]).await;
    assert_eq!(status.assert_ok().json()[0]["status"], "signed_out");
}

/// In an ssh session (and no `$BROWSER`), `login` starts no browser that could not come
/// back: it says why, names the device flow this provider offers, and (its input not a
/// terminal to paste into) prints the link and waits until it gives up.
#[tokio::test]
async fn login_in_an_ssh_session_says_what_works_instead() {
    let idp = Idp::start(false);
    let mut env = far(&idp);
    env.unset("BROWSER");
    env.set("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22");
    let mut login = env.command(&["login", "far", "--timeout", "3"]);
    login.env_remove("BROWSER");
    let run = crate::support::run_with_stdin(login, "").await;
    run.assert_fails(7, "This is an ssh session");
    assert!(run.stderr.contains("lanyard login far --device"), "{run:?}");
    assert!(run.stderr.contains("Open this link"), "{run:?}");
    assert!(env.browser_runs().is_empty(), "a browser was started");
}
