//! `lanyard status`: every account's sign-in state at a glance.

use serde_json::json;

use super::output;
use crate::Error;
use crate::session::Lanyard;
use crate::store::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the states as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(lanyard: &Lanyard, args: Args) -> Result<(), Error> {
    let states = lanyard.status();
    if args.json {
        let list: Vec<_> = states
            .iter()
            .map(|(account, record)| match record {
                Some(r) => output::record_json(r),
                None => json!({ "account": account.name, "status": "signed_out", "issuer": account.issuer }),
            })
            .collect();
        output::print_json(&json!(list));
        return Ok(());
    }
    if states.is_empty() {
        eprintln!("No accounts in {}.", lanyard.config().path.display());
    }
    for (account, record) in states {
        let state = match record {
            None => "not signed in".to_owned(),
            Some(r) => match &r.status {
                Status::SignedIn => format!(
                    "signed in as {}; token {}",
                    output::who(&r),
                    output::validity(r.access_token_expires_at)
                ),
                Status::SignInNeeded { reason } => format!("sign-in needed: {reason}"),
            },
        };
        output::print_line(&format!("{:<16} {state}", account.name));
    }
    Ok(())
}
