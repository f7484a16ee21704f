//! `lanyard token NAME`: print an access token valid for at least `--min-valid` seconds,
//! from the agent when one runs (the fast path), else directly.

use serde_json::json;

use super::{Opener, output};
use crate::Error;
use crate::session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file
    name: String,
    /// Refresh unless the token stays valid this many more seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    min_valid: u64,
    /// How to print the token
    #[arg(long, value_enum, default_value_t = Format::Raw)]
    format: Format,
    /// The same as --format json
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// The token alone
    Raw,
    /// The token, its type and expiry as JSON
    Json,
    /// An HTTP header: `Authorization: Bearer …`
    Header,
    /// Shell assignments: `export LANYARD_ACCESS_TOKEN=…` (for `eval`)
    Env,
}

pub async fn run(open: &Opener, args: Args) -> Result<(), Error> {
    let token = if args.client_credentials {
        open.lanyard()?
            .client_credentials(&args.name, args.scope.as_deref())
            .await?
    } else {
        open.token(&args.name, args.min_valid).await?
    };
    if let Some(warning) = &token.warning {
        eprintln!("lanyard: warning: {warning}");
    }
    let expires_at = token.expires_at;
    // Printing the token is this command's purpose.
    let value = token.token.expose();
    let format = if args.json { Format::Json } else { args.format };
    match format {
        Format::Raw => output::print_line(value),
        Format::Header => output::print_line(&format!("Authorization: Bearer {value}")),
        Format::Env => {
            output::print_line(&format!("export LANYARD_ACCESS_TOKEN={value}"));
            if let Some(e) = expires_at {
                output::print_line(&format!("export LANYARD_ACCESS_TOKEN_EXPIRES_AT={e}"));
            }
        }
        Format::Json => output::print_json(&json!({
            "account": args.name,
            "token_type": "Bearer",
            "access_token": value,
            "expires_at": expires_at.map(output::rfc3339),
            "expires_in": expires_at.map(|e| e.saturating_sub(session::now())),
            "refreshed": token.refreshed,
        })),
    }
    Ok(())
}
