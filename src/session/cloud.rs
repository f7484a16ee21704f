//! Cloud credentials from the same sign-in: the account's ID token, fresh, exchanged at
//! AWS STS (`AssumeRoleWithWebIdentity`) for role credentials, which are kept in the
//! keychain until they expire; or handed as is to Google's workload identity federation.

use std::time::Duration;

use url::Url;

use super::{Lanyard, now, run_blocking};
use crate::error::{Error, StsError};
use crate::secret::Secret;

/// STS's global endpoint, unless `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` names
/// another (the AWS CLI and SDKs read the same variables).
const STS: &str = "https://sts.amazonaws.com/";

/// The keychain service under which an account's role credentials are cached: one item
/// per account (a map from role ARN to credentials), deleted with its tokens at sign-out.
pub(super) const AWS_CACHE: &str = "lanyard aws";

/// An account's cached role credentials, by role ARN, session name and duration, and the
/// sign-in they were made under (who, where and when: a refresh keeps it, a new sign-in
/// does not).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct AwsCache {
    sign_in: Option<String>,
    roles: std::collections::BTreeMap<String, AwsCredentials>,
}

/// Role credentials from STS, as `credential_process` hands them to the AWS CLI.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AwsCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Secret,
    /// The session token.
    pub session_token: Secret,
    /// When they expire, in Unix seconds.
    pub expires_at: u64,
}

impl Lanyard {
    /// The account's ID token, and when it expires: the stored one while it lasts at
    /// least `min_valid` more seconds, else the one a refresh brings (Core 12.2), however
    /// long the provider lets that one last.
    pub async fn fresh_id_token(&self, name: &str, min_valid: u64) -> Result<(Secret, u64), Error> {
        let valid_for = |lanyard: &Lanyard, seconds: u64| {
            lanyard
                .whoami(name)
                .ok()
                .and_then(|r| r.id_token_expires_at)
                .filter(|exp| *exp > now().saturating_add(seconds))
        };
        let expires_at = match valid_for(self, min_valid) {
            Some(exp) => exp,
            None => {
                // Ask for a token no provider issues for this long: that forces a refresh.
                self.token(name, 10 * 365 * 24 * 3600).await?;
                valid_for(self, 0).ok_or_else(|| Error::SignInNeeded {
                    account: name.to_owned(),
                    reason: "the provider gave no new ID token on refresh".into(),
                })?
            }
        };
        Ok((self.id_token(name).await?, expires_at))
    }

    /// AWS credentials for `role_arn`, from the account's ID token `id_token` (STS
    /// `AssumeRoleWithWebIdentity`; [`Lanyard::fresh_id_token`], or the agent's). Kept in
    /// the keychain and handed out again until five minutes before they expire, while the
    /// sign-in stands; sign-out deletes them.
    pub async fn aws_credentials(
        &self,
        name: &str,
        role_arn: &str,
        session_name: &str,
        duration: Option<Duration>,
        id_token: &Secret,
    ) -> Result<AwsCredentials, Error> {
        let account = self.config.account(name)?;
        let record = self.whoami(name)?;
        // Only for a sign-in that still stands: a signed-out account's cache is gone, and
        // one that needs signing in again gets nothing either.
        if let crate::store::Status::SignInNeeded { reason } = record.status {
            return Err(Error::SignInNeeded {
                account: name.to_owned(),
                reason,
            });
        }
        // The ID token was fetched before: it must be of this sign-in, or another sign-in
        // came in between and its credentials would be kept under this one's.
        if token_subject(id_token) != Some((record.subject.clone(), record.issuer.clone())) {
            return Err(Error::Usage {
                kind: crate::Kind::Other,
                message: format!(
                    "{name} was signed in again while its AWS credentials were asked for; try again"
                ),
            });
        }
        let secrets = self.secrets(self.store_kind(account)).await?;
        // The sign-in the cache was made under: credentials of an earlier sign-in (of
        // another person, perhaps) are never handed out.
        let sign_in = |r: &crate::store::Record| {
            format!("{} at {} since {}", r.subject, r.issuer, r.signed_in_at)
        };
        let signed_in_as = Some(sign_in(&record));
        // Credentials are kept per role, session name and duration.
        let key = format!(
            "{role_arn} {session_name} {}",
            duration.map_or(0, |d| d.as_secs())
        );
        let mut cache: AwsCache = {
            let (secrets, name) = (secrets.clone(), name.to_owned());
            run_blocking(move || secrets.get(AWS_CACHE, &name))
                .await?
                .and_then(|c| serde_json::from_str(c.expose()).ok())
                .filter(|c: &AwsCache| c.sign_in.is_some() && c.sign_in == signed_in_as)
                .unwrap_or_default()
        };
        if let Some(cached) = cache.roles.get(&key).filter(|c| c.expires_at > now() + 300) {
            return Ok(cached.clone());
        }
        let endpoint = std::env::var("AWS_ENDPOINT_URL_STS")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|_| STS.to_owned());
        let endpoint = Url::parse(&endpoint)
            .map_err(|e| StsError::Garbled(format!("the STS endpoint {endpoint}: {e}")))
            .map_err(|e| Error::Sts(Box::new(e)))?;
        let credentials = assume_role(
            &self.http,
            &endpoint,
            role_arn,
            session_name,
            duration,
            id_token,
        )
        .await
        .map_err(|e| Error::Sts(Box::new(e)))?;
        // Expired ones are dropped as new ones are kept.
        cache.roles.retain(|_, c| c.expires_at > now());
        cache.roles.insert(key, credentials.clone());
        cache.sign_in = signed_in_as.clone();
        let value = Secret::new(serde_json::to_string(&cache).expect("credentials serialise"));
        {
            let (secrets, name) = (secrets.clone(), name.to_owned());
            run_blocking(move || secrets.set(AWS_CACHE, &name, &value)).await?;
        }
        // A sign-out (or another sign-in) while STS answered: what was just kept is not
        // the current sign-in's, and goes.
        let now_signed_in = self
            .records
            .load(self.store_kind(account), name)
            .map(|r| sign_in(&r));
        if now_signed_in != signed_in_as {
            let name = name.to_owned();
            run_blocking(move || secrets.delete(AWS_CACHE, &name)).await?;
            return Err(Error::SignInNeeded {
                account: account.name.clone(),
                reason: "the account signed out while AWS STS answered".into(),
            });
        }
        Ok(credentials)
    }
}

/// The `sub` and `iss` an ID token names (it came from this account's own store, or its
/// agent, so its signature was checked when it was kept).
fn token_subject(id_token: &Secret) -> Option<(String, String)> {
    use base64::Engine as _;
    let payload = id_token.expose().split('.').nth(1)?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    Some((
        claims.get("sub")?.as_str()?.to_owned(),
        claims.get("iss")?.as_str()?.to_owned(),
    ))
}

/// `AssumeRoleWithWebIdentity`: an unsigned form POST, answered in XML.
async fn assume_role(
    http: &crate::http::Client,
    endpoint: &Url,
    role_arn: &str,
    session_name: &str,
    duration: Option<Duration>,
    id_token: &Secret,
) -> Result<AwsCredentials, StsError> {
    let duration = duration.map(|d| d.as_secs().to_string());
    let mut form = vec![
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", id_token.expose()),
    ];
    if let Some(duration) = &duration {
        form.push(("DurationSeconds", duration));
    }
    let response = http.post_plain_form(endpoint, &form).await?;
    let body = String::from_utf8_lossy(&response.body);
    if response.status != 200 {
        return Err(StsError::Refused {
            code: element(&body, "Code").unwrap_or("an error").to_owned(),
            message: element(&body, "Message")
                .unwrap_or(&format!("HTTP {}", response.status))
                .to_owned(),
        });
    }
    let field = |name: &str| {
        element(&body, name)
            .map(xml_text)
            .ok_or_else(|| StsError::Garbled(format!("no {name} in the answer")))
    };
    let expiration = field("Expiration")?;
    let expires_at = chrono_free_rfc3339(&expiration)
        .ok_or_else(|| StsError::Garbled(format!("Expiration `{expiration}` is not a time")))?;
    Ok(AwsCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Secret::new(field("SessionToken")?),
        expires_at,
    })
}

/// The text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].trim())
}

/// XML's five escapes undone.
fn xml_text(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Unix seconds of an RFC 3339 UTC time as STS writes it (`2026-11-30T13:00:00Z`, with
/// optional fractions).
fn chrono_free_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    // (Years STS writes: a year of 19 digits must not overflow what follows.)
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&min)
        || !(0..=60).contains(&s)
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + min * 60 + s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_answers_are_read() {
        let ok = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>\
            <Credentials><SessionToken>tok&amp;en</SessionToken><SecretAccessKey>sec</SecretAccessKey>\
            <Expiration>2026-11-30T13:00:00.123Z</Expiration><AccessKeyId>ASIAX</AccessKeyId></Credentials>\
            </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        assert_eq!(element(ok, "AccessKeyId"), Some("ASIAX"));
        assert_eq!(xml_text(element(ok, "SessionToken").unwrap()), "tok&en");
        assert_eq!(
            chrono_free_rfc3339(element(ok, "Expiration").unwrap()),
            Some(1_796_043_600)
        );
        assert_eq!(chrono_free_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(chrono_free_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(chrono_free_rfc3339("yesterday"), None);
        // Numbers that would overflow are refused, not a panic.
        assert_eq!(
            chrono_free_rfc3339("999999999999999999-01-01T00:00:00Z"),
            None
        );
        assert_eq!(
            chrono_free_rfc3339("2026-01-01T-9223372036854775807:00:00Z"),
            None
        );
    }
}
