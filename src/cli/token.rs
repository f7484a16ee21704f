//! `lanyard token NAME`: print an access token valid for at least `--min-valid` seconds.

use serde_json::json;

use super::output;
use crate::Error;
use crate::session::{self, Lanyard};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file
    name: String,
    /// Refresh unless the token stays valid this many more seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    min_valid: u64,
    /// Print the token with its expiry as JSON
    #[arg(long)]
    json: bool,
    /// A token for the account's confidential client itself (client credentials grant),
    /// not for the signed-in person
    #[arg(long)]
    client_credentials: bool,
    /// With --client-credentials: the scopes to ask for, space-separated
    #[arg(long, requires = "client_credentials", value_name = "SCOPES")]
    scope: Option<String>,
}

pub async fn run(lanyard: &Lanyard, args: Args) -> Result<(), Error> {
    let token = if args.client_credentials {
        lanyard
            .client_credentials(&args.name, args.scope.as_deref())
            .await?
    } else {
        lanyard.token(&args.name, args.min_valid).await?
    };
    if let Some(warning) = &token.warning {
        eprintln!("lanyard: warning: {warning}");
    }
    if args.json {
        output::print_json(&json!({
            "account": args.name,
            "token_type": "Bearer",
            // Printing the token is this command's purpose.
            "access_token": token.token.expose(),
            "expires_at": token.expires_at.map(output::rfc3339),
            "expires_in": token.expires_at.map(|e| e.saturating_sub(session::now())),
            "refreshed": token.refreshed,
        }));
    } else {
        output::print_line(token.token.expose());
    }
    Ok(())
}
