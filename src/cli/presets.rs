//! `lanyard presets`: the providers Lanyard knows out of the box.

use serde_json::json;

use super::output;
use crate::Error;
use crate::preset::PRESETS;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the presets, with scopes, claims and branding, as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<(), Error> {
    if args.json {
        output::print_json(&json!(PRESETS));
        return Ok(());
    }
    let mut lines = vec![];
    for p in PRESETS {
        lines.push(format!("{:<12} {:<16} {}", p.id, p.name, p.issuer));
        for s in p.scopes {
            let default = if p.default_scopes.split(' ').any(|d| d == s.name) {
                "*"
            } else {
                " "
            };
            lines.push(format!("  {default} {:<20} {}", s.name, s.description));
        }
        let mut notes = vec![];
        if p.client_auth != crate::config::ClientAuth::None {
            notes.push("needs a client secret".to_owned());
        }
        if let Some(port) = p.fixed_port {
            notes.push(format!("register http://127.0.0.1:{port}/callback exactly"));
        }
        if let Some(param) = p.center_param {
            notes.push(format!("--center sets {param}"));
        }
        if p.response_type == crate::config::ResponseType::IdToken {
            notes.push("ID token only (no access token)".into());
        }
        if !notes.is_empty() {
            lines.push(format!("    {}", notes.join("; ")));
        }
    }
    lines.push("(* = asked for by default)".into());
    output::print_line(&lines.join("\n"));
    Ok(())
}
