//! `lanyard logout NAME`: revoke, forget, and end the provider session.

use serde_json::Value;

use super::login::Waiting;
use super::{Opener, output};
use crate::Error;
use crate::broker::client;
use crate::broker::protocol::Op;
use crate::session::EndSession;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file
    name: String,
    /// Only forget the tokens here; do not contact the provider
    #[arg(long)]
    local: bool,
    /// Open no browser: revoke and forget at once, and print the provider's sign-out
    /// link (to end the provider's session too, open it anywhere)
    #[arg(long)]
    no_browser: bool,
    /// Print what was done as JSON
    #[arg(long)]
    json: bool,
}

/// Signs out through the agent when one runs (so that it stops serving the tokens at
/// once), else in this process.
pub async fn run(open: &Opener, args: Args) -> Result<(), Error> {
    let waiting = Waiting::start();
    let agent = match open.agent().await {
        Ok(agent) => agent,
        Err(e) => {
            waiting.stop();
            return Err(e);
        }
    };
    let done = match agent {
        Some(mut agent) => {
            let op = Op::Logout {
                account: args.name.clone(),
                local: args.local,
                open_browser: !args.no_browser,
            };
            let answer: Result<Value, client::Error> = agent
                .call_with_progress(op, &mut |p| waiting.progress(p.as_session()))
                .await;
            waiting.stop();
            let answer = answer?;
            let strings = |key: &str| -> Vec<String> {
                answer[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            Done {
                was_signed_in: answer["was_signed_in"].as_bool().unwrap_or(true),
                revoked: strings("revoked"),
                end_session: answer["end_session"]
                    .as_str()
                    .unwrap_or("skipped")
                    .to_owned(),
                link: answer["end_session_url"].as_str().map(str::to_owned),
                warnings: strings("warnings"),
            }
        }
        None => {
            let lanyard = open.lanyard()?;
            let report = lanyard
                .logout(&args.name, args.local, !args.no_browser, &|p| {
                    waiting.progress(p)
                })
                .await;
            waiting.stop();
            let report = report?;
            Done {
                was_signed_in: report.was_signed_in,
                revoked: report.revoked.iter().map(|r| r.to_string()).collect(),
                end_session: report.end_session.as_str().to_owned(),
                link: match report.end_session {
                    EndSession::Link(url) => Some(url),
                    _ => None,
                },
                warnings: report.warnings,
            }
        }
    };
    if args.json {
        output::print_json(&serde_json::json!({
            "account": args.name,
            "was_signed_in": done.was_signed_in,
            "revoked": done.revoked,
            "end_session": done.end_session,
            "end_session_url": done.link,
            "warnings": done.warnings,
        }));
    } else {
        done.print(&args.name);
    }
    Ok(())
}

/// What a sign-out did, however it ran.
struct Done {
    was_signed_in: bool,
    revoked: Vec<String>,
    /// `ended`, `not_offered`, `no_answer`, `link` or `skipped`.
    end_session: String,
    /// With `link`: the provider's sign-out page, for the person to open.
    link: Option<String>,
    warnings: Vec<String>,
}

impl Done {
    fn print(&self, name: &str) {
        for warning in &self.warnings {
            eprintln!("lanyard: warning: {warning}");
        }
        let mut line = if self.was_signed_in {
            format!("Signed out of {name}")
        } else {
            format!("{name} was not signed in")
        };
        if !self.revoked.is_empty() {
            line += &format!("; revoked the {}", self.revoked.join(" and the "));
        }
        line += match self.end_session.as_str() {
            "ended" => "; the provider session has ended.",
            "not_offered" => "; the provider offers no sign-out page.",
            "no_answer" => "; the provider session may still be active.",
            _ => ".",
        };
        output::print_line(&line);
        if let Some(link) = &self.link {
            output::print_line(&format!(
                "To sign out at the provider too, open this page in a browser:\n  {link}"
            ));
        }
    }
}
