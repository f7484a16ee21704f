//! Greets whoever is signed in, signing them in first if nobody is; `--sign-out` signs
//! them out. Written from docs/embedding.md alone, as a newcomer would write it: the
//! check that the guide is enough.
//!
//! ```text
//! cargo run --example greet -- ISSUER CLIENT_ID DATA_DIR [--sign-out]
//! ```
//!
//! The sign-in is kept in the OS keychain (service `dev.lanyard.example.greet`), so a
//! second run greets the same person without a browser.

use std::time::Duration;

use lanyard::client::{Client, Provider, Storage};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [issuer, client_id, dir, rest @ ..] = args.as_slice() else {
        eprintln!("usage: greet ISSUER CLIENT_ID DATA_DIR [--sign-out]");
        std::process::exit(2);
    };
    let sign_out = rest.iter().any(|a| a == "--sign-out");
    if let Err(e) = run(issuer, client_id, dir, sign_out).await {
        eprintln!("greet: {e}");
        std::process::exit(e.kind().exit_code());
    }
}

async fn run(
    issuer: &str,
    client_id: &str,
    dir: &str,
    sign_out: bool,
) -> Result<(), lanyard::Error> {
    let provider = Provider::new(issuer, client_id).scopes("openid profile email offline_access");
    let client = Client::new(
        provider,
        Storage::keychain("dev.lanyard.example.greet", dir),
    )?;
    if sign_out {
        let out = client.sign_out().await?;
        println!("Signed out (was signed in: {})", out.was_signed_in);
        // No browser could open the provider's sign-out page: the person may open it.
        if let Some(link) = out.sign_out_link {
            println!("To sign out at the provider too, open {link}");
        }
        for warning in out.warnings {
            eprintln!("greet: {warning}");
        }
        return Ok(());
    }
    let me = match client.identity() {
        Some(me) if me.sign_in_needed.is_none() => me,
        _ => client.sign_in().await?,
    };
    println!("Hello, {}", me.name.as_deref().unwrap_or(&me.subject));
    // Proof the sign-in is usable: a token good for a minute more.
    let token = client.access_token(Duration::from_secs(60)).await?;
    println!("Your token is {} characters long", token.expose().len());
    Ok(())
}
