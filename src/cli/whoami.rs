//! `lanyard whoami NAME`: the signed-in person, with every claim the provider sent.

use serde_json::Value;

use super::output;
use crate::Error;
use crate::config::ResponseType;
use crate::session::Lanyard;
use crate::store::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file; without it, the one the file's
    /// [[match]] rules pick for this directory (or its only account)
    name: Option<String>,
    /// Print the identity and all claims as JSON
    #[arg(long)]
    json: bool,
}

/// Claims shown in the summary, so not repeated under "claims".
const SUMMARY: &[&str] = &[
    "name", "email", "picture", "groups", "group", "roles", "sub", "iss",
];

pub fn run(lanyard: &Lanyard, args: Args) -> Result<(), Error> {
    let (name, picked) = match args.name {
        Some(name) => (name, None),
        None => {
            let (name, why) = lanyard
                .config()
                .pick(&crate::config::matching::Place::here())?;
            (name.to_owned(), Some(why))
        }
    };
    let record = lanyard.whoami(&name)?;
    if args.json {
        let mut json = output::record_json(&record);
        if let (Some(picked), Some(object)) = (&picked, json.as_object_mut()) {
            object.insert("picked_by".into(), Value::String(picked.to_string()));
        }
        output::print_json(&json);
        return Ok(());
    }
    let claims = record.claims();
    let list = |v: &Value| match v {
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => plain(other),
    };
    let mut lines = vec![output::who(&record)];
    let mut row = |label: &str, value: String| lines.push(format!("  {label:<10} {value}"));
    row(
        "account",
        match &picked {
            Some(picked) => format!("{} (picked by {picked})", record.account),
            None => record.account.clone(),
        },
    );
    row("issuer", record.issuer.clone());
    row("subject", record.subject.clone());
    if let Some(picture) = claims.get("picture") {
        row("picture", plain(picture));
    }
    let groups = output::groups(&claims);
    if groups.as_array().is_some_and(|g| !g.is_empty()) {
        row("groups", list(&groups));
    }
    if let Some(roles) = claims.get("roles") {
        row("roles", list(roles));
    }
    row("scopes", record.scopes.join(" "));
    row("signed in", output::rfc3339(record.signed_in_at));
    let token = match &record.status {
        Status::SignedIn if record.response_type == ResponseType::IdToken => format!(
            "none: this account signs in with an ID token only (valid until {})",
            record
                .id_token_expires_at
                .map(output::rfc3339)
                .unwrap_or_default()
        ),
        Status::SignedIn => format!(
            "{}{}",
            output::validity(record.access_token_expires_at),
            if record.refreshable {
                ", refreshable"
            } else {
                ""
            }
        ),
        Status::SignInNeeded { reason } => format!("sign-in needed: {reason}"),
    };
    row("token", token);
    lines.push("claims".into());
    for (k, v) in claims
        .iter()
        .filter(|(k, _)| !SUMMARY.contains(&k.as_str()))
    {
        lines.push(format!("  {k:<20} {}", list(v)));
    }
    if let Some(at) = &record.access_token_claims {
        lines.push("access token claims".into());
        for (k, v) in at {
            lines.push(format!("  {k:<20} {}", list(v)));
        }
    }
    output::print_line(&lines.join("\n"));
    Ok(())
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
