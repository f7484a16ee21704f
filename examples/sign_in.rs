//! Sign in with the system browser, show who signed in, call an API with the token, and
//! sign out: the whole life of a sign-in in an app that embeds Lanyard.
//!
//! ```text
//! cargo run --example sign_in -- ISSUER CLIENT_ID [--keychain SERVICE DIR] [--scheme URI] [--stay]
//! ```
//!
//! With `--scheme`, the browser comes back to that private-use URI (registered with the
//! provider and with the OS for this program); the URLs the OS hands over are read one
//! per line from standard input, the way an app's single-instance handler passes them on.
//!
//! With `--keychain`, the sign-in is kept in the OS keychain under `SERVICE` (its record
//! in `DIR`), and a second run finds the person still signed in; without it, it lives in
//! memory. With `--stay`, it does not sign out at the end.
//!
//! It prints one JSON line per step, so that a script (or this crate's tests) can follow.

use std::time::Duration;

use lanyard::client::{Client, Identity, Provider, Storage};
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
            "usage: sign_in ISSUER CLIENT_ID [--keychain SERVICE DIR] [--scheme URI] [--stay]"
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
        Some(me) => {
            say("still_signed_in", &me);
            me
        }
        None => {
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

fn say(step: &str, me: &Identity) {
    println!(
        "{}",
        json!({ "step": step, "subject": me.subject, "name": me.name, "email": me.email })
    );
}
