//! Cargo's credential provider (the credential-provider protocol, version 1): cargo runs
//! `lanyard --cargo-plugin`, and each JSON request names in `args` what the
//! configuration's `credential-provider = ["lanyard", "cargo-credential", …]` says after
//! the program. The token is the account's access token, as `lanyard token` gives it
//! (through the agent, under cargo's approval), and only for a registry whose host the
//! account lists in `registry_hosts`, over https.

use std::io::{BufRead as _, Write as _};

use serde_json::{Value, json};

use super::Opener;
use crate::Error;

/// Serves cargo's requests on stdin/stdout until cargo closes stdin. Returns the exit
/// code.
pub async fn plugin(open: &Opener) -> i32 {
    let mut out = std::io::stdout();
    if writeln!(out, "{}", json!({ "v": [1] })).is_err() {
        return 1;
    }
    let _ = out.flush();
    // Each request is answered as it comes: cargo waits for the answer before it sends
    // more, or closes stdin.
    let (tell, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tell.send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(request) => answer(open, &request).await,
            Err(e) => failure("other", format!("lanyard cannot read cargo's request: {e}")),
        };
        if writeln!(out, "{answer}").is_err() {
            return 1;
        }
        let _ = out.flush();
    }
    0
}

async fn answer(open: &Opener, request: &Value) -> Value {
    if request["v"] != json!(1) {
        return failure(
            "other",
            "lanyard speaks version 1 of cargo's credential protocol",
        );
    }
    let args: Vec<&str> = request["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let account = match args.as_slice() {
        ["cargo-credential"] => None,
        ["cargo-credential", "--account", name] => Some(*name),
        _ => {
            return failure(
                "other",
                "lanyard's credential-provider is [\"lanyard\", \"cargo-credential\"] or [\"lanyard\", \"cargo-credential\", \"--account\", \"NAME\"]",
            );
        }
    };
    let index = request["registry"]["index-url"]
        .as_str()
        .unwrap_or_default();
    match request["kind"].as_str() {
        Some("get") => match token(open, account, index).await {
            Ok(Some((token, expires_at))) => {
                let mut ok = json!({
                    "kind": "get",
                    "token": token,
                    "cache": "session",
                    "operation_independent": true,
                });
                // Cargo keeps the token no longer than the access token lives.
                if let Some(expiration) = expires_at {
                    ok["cache"] = json!("expires");
                    ok["expiration"] = json!(expiration);
                }
                json!({ "Ok": ok })
            }
            Ok(None) => json!({ "Err": { "kind": "url-not-supported" } }),
            Err(e) => failure("other", format!("lanyard: {e}")),
        },
        Some("login") => match token(open, account, index).await {
            // Signed in (brought back at a terminal if need be): nothing to store.
            Ok(Some(_)) => json!({ "Ok": { "kind": "login" } }),
            Ok(None) => json!({ "Err": { "kind": "url-not-supported" } }),
            Err(e) => failure("other", format!("lanyard: {e}")),
        },
        Some("logout") => failure(
            "operation-not-supported",
            "Lanyard keeps the sign-in for every tool: sign out with `lanyard logout NAME`",
        ),
        _ => failure(
            "operation-not-supported",
            "lanyard answers get, login and logout",
        ),
    }
}

/// The account's token for the registry at `index` (`sparse+https://host/…`), and when
/// it expires; `None` when the account does not list the registry's host.
async fn token(
    open: &Opener,
    account: Option<&str>,
    index: &str,
) -> Result<Option<(String, Option<u64>)>, Error> {
    let (name, _) = open.account(account)?;
    let config = open.config()?;
    let hosts = &config.account(&name)?.registry_hosts;
    let url = url::Url::parse(index.trim_start_matches("sparse+")).ok();
    let host = url
        .as_ref()
        .filter(|u| u.scheme() == "https")
        .and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        });
    match host {
        Some(host) if hosts.contains(&host) => {}
        _ => {
            eprintln!(
                "lanyard: not giving {name}'s token to the registry {index}: its host is not in the account's registry_hosts (https only)"
            );
            return Ok(None);
        }
    }
    let interactive = super::person_at_terminal();
    let own = crate::flow::Target::default();
    let token = open.token_or_sign_in(&name, 60, &own, interactive).await?;
    Ok(Some((token.token.expose().to_owned(), token.expires_at)))
}

fn failure(kind: &str, message: impl Into<String>) -> Value {
    json!({ "Err": { "kind": kind, "message": message.into() } })
}
