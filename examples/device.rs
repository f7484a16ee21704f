//! Sign in on another device (RFC 8628's device flow): for a TV, a kiosk or a terminal
//! without a browser. The program shows a code and a link; the person opens the link on
//! their phone, signs in there, and the program is signed in.
//!
//! ```text
//! cargo run --example device -- ISSUER CLIENT_ID
//! ```
//!
//! It prints one JSON line per step, so that a script (or this crate's tests) can follow.

use std::time::Duration;

use lanyard::client::{Client, Provider, Storage};
use serde_json::json;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, client_id] = args.as_slice() else {
        eprintln!("usage: device ISSUER CLIENT_ID");
        std::process::exit(2);
    };
    if let Err(e) = run(issuer, client_id).await {
        eprintln!("device: {e}");
        std::process::exit(e.kind().exit_code());
    }
}

async fn run(issuer: &str, client_id: &str) -> Result<(), lanyard::Error> {
    let client = Client::new(Provider::new(issuer, client_id), Storage::memory())?;
    if !client.offers_device_flow().await? {
        eprintln!("device: {issuer} does not offer the device flow; sign in with the browser");
        std::process::exit(2);
    }
    let me = client
        .sign_in_with_device(|code| {
            // A real app shows the code big, and a QR code of the complete link.
            println!(
                "{}",
                json!({
                    "step": "code",
                    "user_code": code.user_code,
                    "verification_uri": code.verification_uri,
                    "verification_uri_complete": code.verification_uri_complete,
                    "expires_in": code.expires_in.as_secs(),
                })
            );
        })
        .await?;
    println!(
        "{}",
        json!({ "step": "signed_in", "subject": me.subject, "name": me.name })
    );
    let token = client.access_token(Duration::from_secs(60)).await?;
    println!(
        "{}",
        json!({ "step": "token", "access_token": token.expose() })
    );
    Ok(())
}
