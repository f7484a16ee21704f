//! `lanyard accounts`: list the configured accounts; `accounts set-secret NAME` stores a
//! client secret, read from stdin, in the keychain.

use std::io::{IsTerminal as _, Read as _};

use serde_json::json;

use super::output;
use crate::Error;
use crate::secret::Secret;
use crate::session::Lanyard;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print the accounts as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the configured accounts (the default)
    List {
        /// Print the accounts as JSON
        #[arg(long)]
        json: bool,
    },
    /// Store the account's client secret in the OS keychain, read from stdin
    SetSecret {
        /// The account, as named in the accounts file
        name: String,
    },
}

pub async fn run(lanyard: &Lanyard, args: Args) -> Result<(), Error> {
    match args.command {
        None => list(lanyard, args.json),
        Some(Command::List { json }) => list(lanyard, json || args.json),
        Some(Command::SetSecret { name }) => set_secret(lanyard, &name).await,
    }
}

fn list(lanyard: &Lanyard, as_json: bool) -> Result<(), Error> {
    let accounts = &lanyard.config().accounts;
    if as_json {
        let list: Vec<_> = accounts
            .values()
            .map(|a| {
                json!({
                    "name": a.name, "issuer": a.issuer, "client_id": a.client_id,
                    "scopes": a.scopes, "redirect": a.redirect.to_string(),
                    "store": lanyard.store_kind(a).to_string(),
                })
            })
            .collect();
        output::print_json(&json!(list));
        return Ok(());
    }
    if accounts.is_empty() {
        eprintln!(
            "No accounts in {}. Add one:\n\n  [accounts.NAME]\n  issuer = \"https://…\"\n  client_id = \"…\"",
            lanyard.config().path.display()
        );
        return Ok(());
    }
    for a in accounts.values() {
        output::print_line(&format!(
            "{:<16} {}  (client {})",
            a.name, a.issuer, a.client_id
        ));
    }
    Ok(())
}

async fn set_secret(lanyard: &Lanyard, name: &str) -> Result<(), Error> {
    if std::io::stdin().is_terminal() {
        eprintln!("Paste the client secret for {name}, then press Enter and Ctrl-D:");
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        crate::store::Error::Failed(format!("cannot read the secret from stdin: {e}"))
    })?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        return Err(crate::config::Error::Invalid {
            path: "<stdin>".into(),
            line: 1,
            column: 1,
            key: "client secret".into(),
            message: "empty; pipe the secret into `lanyard accounts set-secret NAME`".into(),
        }
        .into());
    }
    lanyard.set_client_secret(name, Secret::new(value)).await?;
    eprintln!("Stored the client secret for {name} in the keychain.");
    Ok(())
}
