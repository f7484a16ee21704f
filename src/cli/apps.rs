//! `lanyard allow`, `lanyard deny`, `lanyard apps`: the agent's approval policy.

use std::path::PathBuf;

use serde_json::json;

use super::output;
use crate::Error;
use crate::broker::policy::{Decision, PolicyFile};
use crate::store::Records;

#[derive(Debug, clap::Args)]
pub struct AllowArgs {
    /// The account
    account: String,
    /// The app's executable, as the agent names it (e.g. /usr/bin/kubectl), or ssh:HOST for
    /// what a host reached with `lanyard ssh HOST` asks
    app: PathBuf,
    /// Allow one token request only
    #[arg(long)]
    once: bool,
    /// Allow the account's ID token (its identity), not its access token
    #[arg(long)]
    id_token: bool,
}

#[derive(Debug, clap::Args)]
pub struct DenyArgs {
    /// The account
    account: String,
    /// The app's executable, or ssh:HOST
    app: PathBuf,
    /// Deny the account's ID token (its identity), not its access token
    #[arg(long)]
    id_token: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print the policy as JSON
    #[arg(long)]
    json: bool,
}

fn file() -> Result<PolicyFile, Error> {
    let dir = Records::default_dir().ok_or_else(|| crate::store::Error::State {
        path: "(no data directory)".into(),
        message: "this system has no data directory for the user; set XDG_DATA_HOME".into(),
    })?;
    Ok(PolicyFile::new(&dir))
}

fn set(account: &str, app: &std::path::Path, decision: Decision) -> Result<(), Error> {
    let file = file()?;
    let fail = |message: String| crate::store::Error::State {
        path: file.path.display().to_string(),
        message,
    };
    let mut policy = file.load().map_err(fail)?;
    policy.set(account, &app.display().to_string(), decision);
    file.save(&policy).map_err(fail)?;
    Ok(())
}

pub fn allow(args: AllowArgs) -> Result<(), Error> {
    let decision = if args.once {
        Decision::AllowOnce
    } else {
        Decision::Allow
    };
    let (grant, what) = grant(&args.account, args.id_token);
    set(&grant, &args.app, decision)?;
    let how = if args.once { "once" } else { "from now on" };
    eprintln!(
        "Allowed {} to get {}'s {what} {how}.",
        args.app.display(),
        args.account
    );
    Ok(())
}

pub fn deny(args: DenyArgs) -> Result<(), Error> {
    let (grant, what) = grant(&args.account, args.id_token);
    set(&grant, &args.app, Decision::Deny)?;
    eprintln!("Denied {} {}'s {what}.", args.app.display(), args.account);
    Ok(())
}

/// The policy entry an allowance or denial is for, and what it grants in words.
fn grant(account: &str, id_token: bool) -> (String, &'static str) {
    if id_token {
        (crate::broker::agent::id_token_grant(account), "ID token")
    } else {
        (account.to_owned(), "tokens")
    }
}

pub fn list(args: ListArgs) -> Result<(), Error> {
    let file = file()?;
    let policy = file.load().map_err(|message| crate::store::Error::State {
        path: file.path.display().to_string(),
        message,
    })?;
    if args.json {
        output::print_json(&json!(policy.accounts));
        return Ok(());
    }
    for (account, rules) in &policy.accounts {
        output::print_line(&account.to_string());
        for (label, apps) in [
            ("allowed", &rules.always),
            ("once", &rules.once),
            ("denied", &rules.denied),
        ] {
            for app in apps {
                output::print_line(&format!("  {label:<8} {app}"));
            }
        }
    }
    Ok(())
}
