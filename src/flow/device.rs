//! The device authorization grant (RFC 8628): the kiosk shows a code and a QR code of the
//! verification URL, the person signs in on their own phone, and the kiosk asks the token
//! endpoint until they have. The kiosk never sees their password.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{Error, TokenResponse, token_request};
use crate::discovery::Provider;
use crate::http;
use crate::secret::Secret;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the person is shown, and what the kiosk keeps to ask for the tokens.
#[derive(Debug)]
pub struct Authorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: Url,
    /// The URL with the code in it: what the QR code holds.
    pub verification_uri_complete: Option<Url>,
    pub expires_in: Duration,
    pub interval: Duration,
}

#[derive(Deserialize)]
struct Raw {
    device_code: Secret,
    user_code: String,
    // Some providers predate the RFC's name.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

/// RFC 8628 section 3.2: without an `interval`, clients wait 5 seconds between requests.
const DEFAULT_INTERVAL: u64 = 5;

/// Starts a device flow at `endpoint` (section 3.1). `params` are the scope and any
/// extra parameters (`max_age`, a center's `center_uuid`).
pub async fn start(
    http: &http::Client,
    endpoint: &Url,
    auth: &http::ClientAuth<'_>,
    params: &[(&str, &str)],
) -> Result<Authorization, Error> {
    let response = http.post_form(endpoint, auth, params).await?;
    let raw: Raw = http::decode(endpoint, &response)?;
    let url = |what: &str, value: &str| -> Result<Url, Error> {
        let url = Url::parse(value).map_err(|e| {
            Error::Device(format!("the provider's {what} `{value}` is not a URL: {e}"))
        })?;
        http::check_secure(&url).map_err(|m| Error::Device(format!("{what}: {m}")))?;
        Ok(url)
    };
    Ok(Authorization {
        verification_uri: url("verification_uri", &raw.verification_uri)?,
        verification_uri_complete: raw
            .verification_uri_complete
            .as_deref()
            .map(|v| url("verification_uri_complete", v))
            .transpose()?,
        device_code: raw.device_code,
        user_code: raw.user_code,
        expires_in: Duration::from_secs(raw.expires_in),
        interval: Duration::from_secs(raw.interval.unwrap_or(DEFAULT_INTERVAL).max(1)),
    })
}

/// How many transport failures in a row the polling rides out before it reports the
/// last one (a kiosk's network may blip; a dead provider must not read as "expired").
const TRANSPORT_RETRIES: u32 = 3;

/// Asks the token endpoint until the person has signed in (section 3.4 and 3.5): waits
/// `interval` between requests, five seconds more after each `slow_down`.
pub async fn wait(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    authorization: &Authorization,
) -> Result<TokenResponse, Error> {
    let deadline = tokio::time::Instant::now() + authorization.expires_in;
    let mut interval = authorization.interval;
    let mut failures = 0;
    loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::DeviceExpired);
        }
        let params = [
            ("grant_type", GRANT_TYPE),
            ("device_code", authorization.device_code.expose()),
        ];
        match token_request(http, provider, auth, &params).await {
            Ok(tokens) => return Ok(tokens),
            Err(Error::Http(e)) => match e.oauth_error() {
                Some("authorization_pending") => failures = 0,
                Some("slow_down") => {
                    failures = 0;
                    interval += Duration::from_secs(5);
                }
                Some("expired_token") => return Err(Error::DeviceExpired),
                Some(_) => return Err(Error::Http(e)),
                None if failures < TRANSPORT_RETRIES
                    && matches!(e, http::Error::Connect { .. } | http::Error::Timeout { .. }) =>
                {
                    failures += 1;
                }
                None => return Err(Error::Http(e)),
            },
            Err(e) => return Err(e),
        }
    }
}
