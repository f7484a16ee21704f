//! `lanyard aws-credentials` and `lanyard gcp-credential`: cloud credentials from the same
//! sign-in, in the shapes the AWS CLI's `credential_process` and Google's
//! executable-sourced credentials read.

use std::time::Duration;

use serde_json::json;

use super::{Opener, output};
use crate::Error;

#[derive(Debug, clap::Args)]
pub struct AwsArgs {
    /// The account whose ID token is exchanged; without it, the one [[match]] picks
    #[arg(long)]
    account: Option<String>,
    /// The IAM role to assume (its trust policy names the provider as a web identity)
    #[arg(long, value_name = "ARN")]
    role_arn: String,
    /// The role session's name [default: lanyard-ACCOUNT]
    #[arg(long, value_name = "NAME")]
    session_name: Option<String>,
    /// How long the credentials last (STS's default: one hour)
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
}

/// AWS `credential_process` output: `{"Version": 1, "AccessKeyId": …, "Expiration": …}`.
/// Credentials come from STS `AssumeRoleWithWebIdentity` with the account's ID token (from
/// the agent when one runs, which asks for the ID-token grant), and are reused from the
/// keychain until five minutes before they expire.
pub async fn aws(open: &Opener, args: AwsArgs) -> Result<(), Error> {
    let (name, _) = open.account(args.account.as_deref())?;
    let session = args
        .session_name
        .unwrap_or_else(|| format!("lanyard-{name}"));
    // The ID token comes the way every credential does: from the agent when one runs,
    // under the account's ID-token grant and in its audit log.
    let (id_token, _) = open.id_token(&name, 60).await?;
    let credentials = open
        .lanyard()?
        .aws_credentials(
            &name,
            &args.role_arn,
            &session,
            args.duration.map(Duration::from_secs),
            &id_token,
        )
        .await?;
    output::print_json(&json!({
        "Version": 1,
        "AccessKeyId": credentials.access_key_id,
        "SecretAccessKey": credentials.secret_access_key.expose(),
        "SessionToken": credentials.session_token.expose(),
        "Expiration": output::rfc3339(credentials.expires_at),
    }));
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct GcpArgs {
    /// The account whose ID token is handed over; without it, the one [[match]] picks
    #[arg(long)]
    account: Option<String>,
}

/// The response Google's external-account credentials expect of an executable source
/// (workload identity federation): the account's fresh ID token, and when it expires. A
/// failure is answered in the same shape (`success: false`), and the exit code says so.
pub async fn gcp(open: &Opener, args: GcpArgs) -> Result<(), Error> {
    let answer = async {
        let (name, _) = open.account(args.account.as_deref())?;
        open.id_token(&name, 300).await
    }
    .await;
    match answer {
        Ok((id_token, expires_at)) => {
            output::print_json(&json!({
                "version": 1,
                "success": true,
                "token_type": "urn:ietf:params:oauth:token-type:id_token",
                "id_token": id_token.expose(),
                "expiration_time": expires_at,
            }));
            Ok(())
        }
        Err(e) => {
            output::print_json(&json!({
                "version": 1,
                "success": false,
                "code": format!("{:?}", e.kind()).to_lowercase(),
                "message": e.to_string(),
            }));
            Err(e)
        }
    }
}
