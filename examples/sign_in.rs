//! Sign in with the system browser, show who signed in, call an API with the token, and
//! sign out: the whole life of a sign-in in an app that embeds Lanyard.
//!
//! ```text
//! cargo run --example sign_in -- ISSUER CLIENT_ID [--keychain SERVICE DIR] [--scheme URI | --paste] [--api URL] [--refresh] [--stay]
//! ```
//!
//! With `--scheme`, the browser comes back to that private-use URI (registered with the
//! provider and with the OS for this program); the URLs the OS hands over are read one
//! per line from standard input, the way an app's single-instance handler passes them on.
//!
//! With `--paste`, the browser is on another machine (this one is reached over ssh, or
//! is a container): the link to open there is printed, and the address that browser
//! ends on is read from standard input.
//!
//! With `--api`, it calls that URL with the sign-in's token (`GET`), the way an app calls
//! its API: with the headers `Client::authorization` gives (DPoP-bound or Bearer), asking
//! again once with the server's `DPoP-Nonce` if it wants one.
//!
//! With `--refresh`, it refreshes the token at once (`Client::refresh`), as an app does
//! when its API refused the token.
//!
//! With `--keychain`, the sign-in is kept in the OS keychain under `SERVICE` (its record
//! in `DIR`), and a second run finds the person still signed in; without it, it lives in
//! memory. With `--stay`, it does not sign out at the end.
//!
//! It prints one JSON line per step, so that a script (or this crate's tests) can follow.

use std::time::Duration;

use lanyard::client::{Client, Identity, Provider, SignInOptions, SignInProgress, Storage};
use serde_json::json;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("sign_in: {e}");
        std::process::exit(e.kind().exit_code());
    }
}

async fn run() -> Result<(), lanyard::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, client_id, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: sign_in ISSUER CLIENT_ID [--keychain SERVICE DIR] [--scheme URI | --paste] [--api URL] [--refresh] [--stay]"
        );
        std::process::exit(2);
    };
    let storage = match rest.iter().position(|a| a == "--keychain") {
        Some(i) if rest.len() > i + 2 => Storage::keychain(&rest[i + 1], &rest[i + 2]),
        Some(_) => {
            eprintln!("--keychain takes a service name and a directory");
            std::process::exit(2);
        }
        None => Storage::memory(),
    };
    let stay = rest.iter().any(|a| a == "--stay");
    let paste = rest.iter().any(|a| a == "--paste");
    let api = rest
        .iter()
        .position(|a| a == "--api")
        .and_then(|i| rest.get(i + 1));
    let scheme = rest
        .iter()
        .position(|a| a == "--scheme")
        .and_then(|i| rest.get(i + 1));

    // The provider, and this app's registration there.
    let mut provider =
        Provider::new(issuer, client_id).scopes("openid profile email offline_access");
    if let Some(uri) = scheme {
        provider = provider.redirect_scheme(uri);
    }
    let client = std::sync::Arc::new(Client::new(provider, storage)?);
    if scheme.is_some() {
        // Each URL the OS hands the app goes to the sign-in (or sign-out) waiting for it.
        let client = client.clone();
        std::thread::spawn(move || {
            for url in std::io::stdin().lines().map_while(Result::ok) {
                if let Err(e) = client.redirected(url.trim()) {
                    eprintln!("sign_in: {e}");
                }
            }
        });
    }

    // Signed in from an earlier run (keychain storage), or sign in now in the browser.
    let me = match client.identity() {
        Some(me) if me.sign_in_needed.is_none() => {
            say("still_signed_in", &me);
            me
        }
        _ if paste => {
            let me = client
                .sign_in_elsewhere(
                    &SignInOptions {
                        progress: Some(&show),
                        ..SignInOptions::default()
                    },
                    read_line(),
                )
                .await?;
            say("signed_in", &me);
            me
        }
        _ => {
            let me = client.sign_in().await?;
            say("signed_in", &me);
            me
        }
    };

    // A token for the next minute at least: refreshed first if it would expire sooner.
    let token = client.access_token(Duration::from_secs(60)).await?;
    println!(
        "{}",
        json!({ "step": "token", "subject": me.subject, "access_token": token.expose() })
    );

    // After an API refused the token: a new one, refreshed now.
    if rest.iter().any(|a| a == "--refresh") {
        let token = client.refresh().await?;
        println!(
            "{}",
            json!({ "step": "refreshed", "access_token": token.expose() })
        );
    }

    if let Some(url) = api {
        let (status, body, asked_nonce) = call_api(&client, url).await?;
        println!(
            "{}",
            json!({ "step": "api", "status": status, "body": body, "asked_nonce": asked_nonce })
        );
    }

    if !stay {
        let out = client.sign_out().await?;
        println!(
            "{}",
            json!({
                "step": "signed_out",
                "provider_session_ended": out.provider_session_ended,
                "warnings": out.warnings,
            })
        );
    }
    Ok(())
}

/// `GET url` with the sign-in's token: its status, its body, and whether the server
/// asked for a DPoP nonce first (RFC 9449 section 9: a 401 with a `DPoP-Nonce` header,
/// answered by asking once more with that nonce).
async fn call_api(client: &Client, url: &str) -> Result<(u16, String, bool), lanyard::Error> {
    fn failed<T>(url: &str, e: reqwest::Error) -> T {
        eprintln!("sign_in: calling {url}: {e}");
        std::process::exit(1)
    }
    let http = reqwest::Client::new();
    let mut nonce: Option<String> = None;
    loop {
        let headers = client
            .authorization("GET", url, nonce.as_deref(), Duration::from_secs(60))
            .await?;
        let mut request = http.get(url);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap_or_else(|e| failed(url, e));
        let status = response.status().as_u16();
        let asked = response
            .headers()
            .get("DPoP-Nonce")
            .and_then(|n| n.to_str().ok())
            .map(str::to_owned);
        match asked {
            // Once: a server that keeps refusing with new nonces is answered as it is.
            Some(asked) if status == 401 && nonce.is_none() => nonce = Some(asked),
            _ => {
                let body = response.text().await.unwrap_or_else(|e| failed(url, e));
                return Ok((status, body, nonce.is_some()));
            }
        }
    }
}

/// What the person is told while signing in elsewhere.
fn show(progress: &SignInProgress) {
    let step = match progress {
        SignInProgress::OpenThisLink { url, .. } => json!({ "step": "open_this_link", "url": url }),
        SignInProgress::PasteBack { redirect_uri } => {
            json!({ "step": "paste_back", "redirect_uri": redirect_uri })
        }
        _ => return,
    };
    println!("{step}");
}

/// The address pasted on standard input; `None` if nothing was.
async fn read_line() -> Option<String> {
    let line = tokio::task::spawn_blocking(|| std::io::stdin().lines().next()?.ok()).await;
    line.ok().flatten().filter(|l| !l.trim().is_empty())
}

fn say(step: &str, me: &Identity) {
    println!(
        "{}",
        json!({ "step": step, "subject": me.subject, "name": me.name, "email": me.email })
    );
}
