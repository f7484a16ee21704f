//! `lanyard token NAME`: print an access token valid for at least `--min-valid` seconds,
//! from the agent when one runs (the fast path), else directly.

use serde_json::json;

use super::{Opener, output};
use crate::Error;
use crate::session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file; without it, the one the file's
    /// [[match]] rules pick for this directory (or its only account)
    name: Option<String>,
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
    /// A narrower token with only these scopes (space-separated, among those granted at
    /// sign-in); with --client-credentials, the scopes to ask for
    #[arg(long, value_name = "SCOPES")]
    scope: Option<String>,
    /// A token for this audience: one of the account's `resources` (RFC 8707), or with
    /// --exchange any audience the provider exchanges tokens for
    #[arg(long, conflicts_with = "client_credentials", value_name = "RESOURCE")]
    audience: Option<String>,
    /// Exchange the account's token at the provider (RFC 8693 token exchange) for one
    /// aimed at --audience; kept by the agent per audience and scope
    #[arg(long, requires = "audience", conflicts_with = "client_credentials")]
    exchange: bool,
    /// For a DPoP-bound token (RFC 9449): the HTTP method of the request it is for; with
    /// --dpop-url, a proof is printed too (--format header: the `DPoP:` header)
    #[arg(
        long,
        value_name = "METHOD",
        requires = "dpop_url",
        conflicts_with_all = ["client_credentials", "scope", "audience"]
    )]
    dpop_method: Option<String>,
    /// The URL of the request the DPoP proof is for
    #[arg(long, value_name = "URL", requires = "dpop_method")]
    dpop_url: Option<String>,
    /// The nonce the resource server asked for (its `DPoP-Nonce` header)
    #[arg(long, value_name = "NONCE", requires = "dpop_url")]
    dpop_nonce: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// The token alone
    Raw,
    /// The token, its type and expiry as JSON
    Json,
    /// An HTTP header: `Authorization: Bearer …` (for a DPoP-bound token, `Authorization:
    /// DPoP …` and, with --dpop-url, the `DPoP:` header)
    Header,
    /// Shell assignments: `export LANYARD_ACCESS_TOKEN=…` (for `eval`)
    Env,
}

pub async fn run(open: &Opener, args: Args) -> Result<(), Error> {
    let (name, _) = open.account(args.name.as_deref())?;
    let format = if args.json { Format::Json } else { args.format };
    let interactive = super::person_at_terminal();
    if let (Some(method), Some(url)) = (&args.dpop_method, &args.dpop_url) {
        if interactive {
            // A lapsed sign-in is brought back first; the proof is made after.
            let own = crate::flow::Target::default();
            open.token_or_sign_in(&name, args.min_valid, &own, true)
                .await?;
        }
        let request = crate::broker::protocol::ProofRequest {
            method: method.clone(),
            url: url.clone(),
            nonce: args.dpop_nonce.clone(),
            min_valid: args.min_valid,
        };
        let (token, proof) = open.proof(&name, request).await?;
        print(&name, format, &token, proof.as_deref());
        return Ok(());
    }
    let token = if args.client_credentials {
        open.client_credentials(&name, args.scope.as_deref())
            .await?
    } else {
        let target = crate::flow::Target {
            scope: args.scope.clone(),
            audience: args.audience.clone(),
            exchange: args.exchange,
        };
        open.token_or_sign_in(&name, args.min_valid, &target, interactive)
            .await?
    };
    print(&name, format, &token, None);
    Ok(())
}

/// `lanyard token NAME [--min-valid N] [--format F | --json]` answered by a running agent
/// before clap, logging or a runtime start: a process that only wants a token should cost
/// little more than the round trip. `None` when the arguments are anything else or no
/// agent answers; then the full command runs (and falls back to direct mode).
pub fn fast(args: &[std::ffi::OsString]) -> Option<i32> {
    let mut args = args.iter().map(|a| a.to_str());
    if args.next()? != Some("token") {
        return None;
    }
    let (mut name, mut min_valid, mut format) = (None, 60, Format::Raw);
    while let Some(arg) = args.next() {
        let arg = arg?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (arg, None),
        };
        let mut value = || inline.or_else(|| args.next().flatten());
        match flag {
            "--json" if inline.is_none() => format = Format::Json,
            "--min-valid" => min_valid = value()?.parse().ok()?,
            "--format" => format = clap::ValueEnum::from_str(value()?, false).ok()?,
            _ if !arg.starts_with('-') && name.is_none() => name = Some(arg),
            _ => return None,
        }
    }
    let name = name?;
    let reply =
        match crate::broker::client::token_blocking(&crate::broker::socket_path(), name, min_valid)
        {
            Ok(reply) => reply,
            // A person at a terminal is brought back to sign in: the full command does it.
            Err(crate::broker::client::Error::Agent(body))
                if body.code == crate::broker::protocol::Code::SignInNeeded
                    && super::person_at_terminal() =>
            {
                return None;
            }
            Err(e @ crate::broker::client::Error::Agent(_)) => {
                let e = Error::from(e);
                eprintln!("lanyard: {e}");
                return Some(e.kind().exit_code());
            }
            // Not running, or anything odd: the full command tries again and explains.
            Err(_) => return None,
        };
    let token = session::AccessToken::from(reply);
    print(name, format, &token, None);
    Some(0)
}

/// Prints the token in `format` on stdout (with its DPoP `proof`, when asked for), and
/// what it comes with (a short lifetime, a failed refresh) on stderr.
fn print(name: &str, format: Format, token: &session::AccessToken, proof: Option<&str>) {
    if let Some(warning) = &token.warning {
        eprintln!("lanyard: warning: {warning}");
    }
    if token.dpop && proof.is_none() && format != Format::Json {
        eprintln!(
            "lanyard: note: {name}'s token is DPoP-bound: each request needs a proof too (--dpop-method and --dpop-url)"
        );
    }
    let expires_at = token.expires_at;
    let token_type = if token.dpop { "DPoP" } else { "Bearer" };
    // Printing the token is this command's purpose.
    let value = token.token.expose();
    match format {
        Format::Raw => output::print_line(value),
        Format::Header => {
            output::print_line(&format!("Authorization: {token_type} {value}"));
            if let Some(proof) = proof {
                output::print_line(&format!("DPoP: {proof}"));
            }
        }
        Format::Env => {
            output::print_line(&format!("export LANYARD_ACCESS_TOKEN={value}"));
            if let Some(e) = expires_at {
                output::print_line(&format!("export LANYARD_ACCESS_TOKEN_EXPIRES_AT={e}"));
            }
        }
        Format::Json => {
            let mut out = json!({
                "account": name,
                "token_type": token_type,
                "access_token": value,
                "expires_at": expires_at.map(output::rfc3339),
                "expires_in": expires_at.map(|e| e.saturating_sub(session::now())),
                "refreshed": token.refreshed,
            });
            if let Some(proof) = proof {
                out["dpop_proof"] = json!(proof);
            }
            output::print_json(&out);
        }
    }
}
