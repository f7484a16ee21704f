//! `lanyard accounts`: list the configured accounts; `accounts set-secret NAME` stores a
//! client secret, read from stdin, in the keychain.

use std::io::{IsTerminal as _, Read as _};

use serde_json::json;

use super::output;
use crate::Error;
use crate::config::{Config, NewAccount};
use crate::preset;
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
    /// Add an account, from a preset (`lanyard presets`) or an issuer
    Add(AddArgs),
    /// Store the account's client secret in the OS keychain, read from stdin
    SetSecret {
        /// The account, as named in the accounts file
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The name to give the account
    name: String,
    /// A provider Lanyard knows: see `lanyard presets`
    #[arg(long, required_unless_present = "issuer")]
    preset: Option<String>,
    /// The provider's issuer (with --preset: instead of the preset's, e.g. for staging)
    #[arg(long)]
    issuer: Option<String>,
    /// The client id the provider gave your app
    #[arg(long)]
    client_id: String,
    /// The center to sign in to (ggLeap's center_uuid)
    #[arg(long, value_name = "UUID")]
    center: Option<String>,
    /// A fixed loopback port, for providers that match redirect URIs exactly
    #[arg(long)]
    port: Option<u16>,
    /// The scopes to ask for, space-separated [default: the preset's]
    #[arg(long)]
    scopes: Option<String>,
}

pub async fn run(lanyard: &Lanyard, args: Args) -> Result<(), Error> {
    match args.command {
        Some(Command::Add(add)) => self::add(lanyard, add),
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

fn add(lanyard: &Lanyard, args: AddArgs) -> Result<(), Error> {
    let path = &lanyard.config().path;
    let usage = |key: &str, message: String| crate::config::Error::Invalid {
        path: "<command line>".into(),
        line: 1,
        column: 1,
        key: key.into(),
        message,
    };
    let (mut account, preset) = match &args.preset {
        Some(id) => {
            let preset = preset::find(id).ok_or_else(|| {
                usage(
                    "--preset",
                    format!("unknown preset `{id}`; known: {}", preset::ids()),
                )
            })?;
            let account = crate::config::NewAccount::from_preset(
                preset,
                &args.name,
                &args.client_id,
                args.issuer.as_deref(),
                args.center.as_deref(),
                args.port,
            );
            (account, Some(preset))
        }
        None => (
            NewAccount {
                name: args.name.clone(),
                issuer: args.issuer.clone().unwrap_or_default(),
                client_id: args.client_id.clone(),
                port: args.port,
                ..NewAccount::default()
            },
            None,
        ),
    };
    if let Some(scopes) = &args.scopes {
        account.scopes = Some(scopes.clone());
    }
    if args.center.is_some() && preset.is_none_or(|p| p.center_param.is_none()) {
        return Err(usage("--center", "only ggLeap accounts take a center".into()).into());
    }
    Config::add_account(path, &account)?;
    eprintln!("Added account {} to {}.", args.name, path.display());
    if let Some(p) = preset {
        if p.client_auth != crate::config::ClientAuth::None {
            eprintln!(
                "{} needs your app's client secret: lanyard accounts set-secret {} < secret.txt",
                p.name, args.name
            );
        }
        if let Some(port) = account.port {
            eprintln!(
                "Register this redirect URI with {}: http://127.0.0.1:{port}/callback",
                p.name
            );
        }
        if p.center_param.is_some() && args.center.is_none() {
            eprintln!(
                "If your app is tied to one center, add it: --center UUID (sets center_uuid)."
            );
        }
    }
    eprintln!("Sign in with: lanyard login {}", args.name);
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
