//! Credential helpers that other tools run: kubectl's exec plugin and git's credential
//! helper. Both get their token the way `lanyard token` does: from the agent when one
//! runs, else directly.

use std::io::Read as _;

use serde_json::{Value, json};

use super::{Opener, output};
use crate::Error;

#[derive(Debug, clap::Args)]
pub struct KubectlArgs {
    /// The account
    name: String,
    /// Refresh unless the token stays valid this many more seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    min_valid: u64,
}

/// Answers kubectl's exec credential plugin call: an ExecCredential in the API version
/// kubectl asked for in `KUBERNETES_EXEC_INFO` (v1, or v1beta1 for older kubectl). When
/// kubectl says the call is interactive (`spec.interactive`: `interactiveMode:
/// IfAvailable` and a terminal) and the account needs a sign-in, the person is brought
/// back to sign in first; otherwise kubectl is told at once.
pub async fn kubectl(open: &Opener, args: KubectlArgs) -> Result<(), Error> {
    let info = std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|info| serde_json::from_str::<Value>(&info).ok())
        .unwrap_or_default();
    let api_version = info
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("client.authentication.k8s.io/v1")
        .to_owned();
    let interactive =
        info["spec"]["interactive"] == json!(true) && crate::browser::unreachable_here().is_none();
    let own = Default::default();
    let token = open
        .token_or_sign_in(&args.name, args.min_valid, &own, interactive)
        .await?;
    bearer_only(&args.name, "kubectl", &token);
    let mut status = json!({ "token": token.token.expose() });
    if let Some(e) = token.expires_at {
        status["expirationTimestamp"] = json!(output::rfc3339(e));
    }
    output::print_json(
        &json!({ "apiVersion": api_version, "kind": "ExecCredential", "status": status }),
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct GitArgs {
    /// The account whose access token is the password; without it, the one the
    /// accounts file's [[match]] rules pick for the repository (or its only account)
    #[arg(long)]
    account: Option<String>,
    /// The username to give git (hosts that take a token as password accept any)
    #[arg(long, default_value = "oauth2")]
    username: String,
    /// git's operation: get, store or erase
    operation: String,
}

/// git's credential helper protocol: `get` answers username, password (the access token)
/// and password_expiry_utc; `store` and `erase` have nothing to do (Lanyard keeps the
/// sign-in, not git's copy).
///
/// The token goes only where the account says: an https remote whose host is in its
/// `git_hosts`. For anything else the helper answers nothing (git then asks its next
/// helper, or the person) and says why on stderr, which git shows.
pub async fn git(open: &Opener, args: GitArgs) -> Result<(), Error> {
    // git sends key=value lines and a blank line; read them all so git never blocks.
    let mut request = String::new();
    let _ = std::io::stdin().read_to_string(&mut request);
    if args.operation != "get" {
        return Ok(());
    }
    let lanyard = open.lanyard()?;
    let name = match &args.account {
        Some(name) => name.clone(),
        None => {
            // The repository git runs in, and the remote it asks about when it says
            // (credential.useHttpPath).
            let mut place = crate::config::matching::Place::here();
            let (host, path) = (field(&request, "host"), field(&request, "path"));
            if !host.is_empty() && !path.is_empty() {
                place.remotes.insert(
                    0,
                    format!(
                        "{}/{}",
                        host.to_ascii_lowercase(),
                        path.trim_end_matches(".git")
                    ),
                );
            }
            lanyard.config().pick(&place)?.0.to_owned()
        }
    };
    let account = lanyard.config().account(&name)?;
    if let Err(why) = git_may_have(&request, &account.git_hosts) {
        eprintln!("lanyard: not giving {name}'s token to git: {why}");
        return Ok(());
    }
    let token = open
        .token_or_sign_in(&name, 60, &Default::default(), git_may_prompt())
        .await?;
    bearer_only(&name, "git", &token);
    let mut answer = format!(
        "username={}\npassword={}\n",
        args.username,
        token.token.expose()
    );
    if let Some(e) = token.expires_at {
        answer += &format!("password_expiry_utc={e}\n");
    }
    output::print_line(&answer);
    Ok(())
}

/// Whether git would prompt the person here, by git's own rules: not with
/// `GIT_TERMINAL_PROMPT=0`, and only with a terminal (git's stderr, which the helper
/// shares); and a browser started here must be able to come back.
fn git_may_prompt() -> bool {
    use std::io::IsTerminal as _;
    std::env::var("GIT_TERMINAL_PROMPT").map_or(true, |v| v != "0")
        && std::io::stderr().is_terminal()
        && crate::browser::unreachable_here().is_none()
}

/// A `name=value` line of git's request, or "".
fn field<'a>(request: &'a str, name: &str) -> &'a str {
    request
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_default()
}

/// Whether git's request (`protocol=…`, `host=…` lines) is for a host the account names,
/// over https.
fn git_may_have(request: &str, hosts: &[String]) -> Result<(), String> {
    let (protocol, host) = (
        field(request, "protocol"),
        field(request, "host").to_ascii_lowercase(),
    );
    if protocol != "https" {
        return Err(format!(
            "the remote is {}, and tokens go over https only",
            if protocol.is_empty() {
                "of no protocol"
            } else {
                protocol
            }
        ));
    }
    if !hosts.contains(&host) {
        return Err(format!(
            "{host} is not in the account's git_hosts; add it there if it should have the token"
        ));
    }
    Ok(())
}

/// Says so when a tool that sends tokens as Bearer tokens gets a DPoP-bound one: a server
/// that checks the binding refuses it without a proof.
fn bearer_only(name: &str, tool: &str, token: &crate::session::AccessToken) {
    if token.dpop {
        eprintln!(
            "lanyard: warning: {name}'s token is DPoP-bound, and {tool} sends it as a Bearer token, which a server that checks the binding refuses; set `dpop = false` for {name} and sign in again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::git_may_have;

    #[test]
    fn git_gets_a_token_only_for_listed_hosts_over_https() {
        let hosts = vec!["git.example.com".to_owned(), "127.0.0.1:8443".to_owned()];
        let ask = |r: &str| git_may_have(r, &hosts);
        assert!(ask("protocol=https\nhost=git.example.com\npath=a.git\n").is_ok());
        assert!(ask("protocol=https\nhost=GIT.example.com\n").is_ok());
        assert!(ask("protocol=https\nhost=127.0.0.1:8443\n").is_ok());
        for refused in [
            "protocol=http\nhost=git.example.com\n",
            "protocol=https\nhost=evil.example\n",
            "protocol=https\nhost=git.example.com.evil.example\n",
            "protocol=https\nhost=127.0.0.1\n",
            "host=git.example.com\n",
            "",
        ] {
            assert!(ask(refused).is_err(), "{refused:?}");
        }
        assert!(git_may_have("protocol=https\nhost=git.example.com\n", &[]).is_err());
    }
}
