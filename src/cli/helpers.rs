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
/// kubectl asked for in `KUBERNETES_EXEC_INFO` (v1, or v1beta1 for older kubectl).
pub async fn kubectl(open: &Opener, args: KubectlArgs) -> Result<(), Error> {
    let api_version = std::env::var("KUBERNETES_EXEC_INFO")
        .ok()
        .and_then(|info| serde_json::from_str::<Value>(&info).ok())
        .and_then(|info| {
            info.get("apiVersion")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "client.authentication.k8s.io/v1".to_owned());
    let token = open
        .token(&args.name, args.min_valid, &Default::default())
        .await?;
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
    /// The account whose access token is the password
    #[arg(long)]
    account: String,
    /// The username to give git (hosts that take a token as password accept any)
    #[arg(long, default_value = "oauth2")]
    username: String,
    /// git's operation: get, store or erase
    operation: String,
}

/// git's credential helper protocol: `get` answers username, password (the access token)
/// and password_expiry_utc; `store` and `erase` have nothing to do (Lanyard keeps the
/// sign-in, not git's copy).
pub async fn git(open: &Opener, args: GitArgs) -> Result<(), Error> {
    // git sends key=value lines and a blank line; read them all so git never blocks.
    let mut request = String::new();
    let _ = std::io::stdin().read_to_string(&mut request);
    if args.operation != "get" {
        return Ok(());
    }
    let token = open.token(&args.account, 60, &Default::default()).await?;
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
