//! `lanyard logout NAME`: revoke, forget, and end the provider session.

use super::login::Waiting;
use super::output;
use crate::Error;
use crate::session::{EndSession, Lanyard};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file
    name: String,
    /// Only forget the tokens here; do not contact the provider
    #[arg(long)]
    local: bool,
    /// Print the provider's sign-out link instead of opening a browser
    #[arg(long)]
    no_browser: bool,
}

pub async fn run(lanyard: &Lanyard, args: Args) -> Result<(), Error> {
    let waiting = Waiting::start();
    let report = lanyard
        .logout(&args.name, args.local, !args.no_browser, &|p| {
            waiting.progress(p)
        })
        .await;
    waiting.stop();
    let report = report?;
    for warning in &report.warnings {
        eprintln!("lanyard: warning: {warning}");
    }
    let mut line = if report.was_signed_in {
        format!("Signed out of {}", args.name)
    } else {
        format!("{} was not signed in", args.name)
    };
    if !report.revoked.is_empty() {
        line += &format!("; revoked the {}", report.revoked.join(" and the "));
    }
    line += match report.end_session {
        EndSession::Ended => "; the provider session has ended.",
        EndSession::NotOffered => "; the provider offers no sign-out page.",
        EndSession::NoAnswer => "; the provider session may still be active.",
        EndSession::Skipped => ".",
    };
    output::print_line(&line);
    Ok(())
}
