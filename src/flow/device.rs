//! The device authorization grant (RFC 8628): the kiosk shows a code and a QR code of the
//! verification URL, the person signs in on their own phone, and the kiosk asks the token
//! endpoint until they have. The kiosk never sees their password.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::token::token_request;
use super::{Error, TokenResponse};
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
/// The longest a code is waited on, whatever the provider says (RFC 8628's example is
/// 30 minutes).
const MAX_EXPIRES_IN: u64 = 3600;
/// The polling interval stays within these, whatever the provider says or `slow_down`s
/// add up to.
const MIN_INTERVAL: u64 = 1;
const MAX_INTERVAL: u64 = 60;

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
    authorization(raw)
}

/// The provider's answer, checked and bounded: https URLs, a lifetime of at most
/// [`MAX_EXPIRES_IN`], an interval within [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
fn authorization(raw: Raw) -> Result<Authorization, Error> {
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
        expires_in: Duration::from_secs(raw.expires_in.min(MAX_EXPIRES_IN)),
        interval: Duration::from_secs(
            raw.interval
                .unwrap_or(DEFAULT_INTERVAL)
                .clamp(MIN_INTERVAL, MAX_INTERVAL),
        ),
    })
}

/// How many transport failures in a row the polling rides out before it reports the
/// last one (a kiosk's network may blip; a dead provider must not read as "expired").
const TRANSPORT_RETRIES: u32 = 3;

/// Asks the token endpoint until the person has signed in (section 3.4 and 3.5): waits
/// `interval` between requests, five seconds more after each `slow_down`. With `dpop`,
/// the tokens are bound to that key.
pub async fn wait(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    authorization: &Authorization,
    dpop: Option<&crate::dpop::Key>,
) -> Result<TokenResponse, Error> {
    let now = tokio::time::Instant::now();
    let deadline = now.checked_add(authorization.expires_in).unwrap_or(now);
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
        match token_request(http, provider, auth, &params, dpop).await {
            Ok(tokens) => return Ok(tokens),
            Err(Error::Http(e)) => match e.oauth_error() {
                Some("authorization_pending") => failures = 0,
                Some("slow_down") => {
                    failures = 0;
                    interval = slower(interval);
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

/// RFC 8628 section 3.5: `slow_down` adds five seconds, here up to [`MAX_INTERVAL`].
fn slower(interval: Duration) -> Duration {
    interval
        .saturating_add(Duration::from_secs(5))
        .min(Duration::from_secs(MAX_INTERVAL))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(expires_in: u64, interval: Option<u64>) -> Raw {
        Raw {
            device_code: Secret::new("d"),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://id.example.com/device".into(),
            verification_uri_complete: None,
            expires_in,
            interval,
        }
    }

    /// A provider's absurd numbers are bounded: no overflow when the deadline is computed,
    /// no polling in a tight loop, no waiting for ever.
    #[tokio::test]
    async fn the_providers_numbers_are_bounded() {
        let a = authorization(raw(u64::MAX, Some(u64::MAX))).unwrap();
        assert_eq!(a.expires_in, Duration::from_secs(MAX_EXPIRES_IN));
        assert_eq!(a.interval, Duration::from_secs(MAX_INTERVAL));
        let a = authorization(raw(0, Some(0))).unwrap();
        assert_eq!(a.interval, Duration::from_secs(MIN_INTERVAL));
        assert_eq!(
            authorization(raw(600, None)).unwrap().interval,
            Duration::from_secs(DEFAULT_INTERVAL)
        );
        assert_eq!(
            slower(Duration::from_secs(58)),
            Duration::from_secs(MAX_INTERVAL)
        );
        assert_eq!(slower(Duration::MAX), Duration::from_secs(MAX_INTERVAL));
        let plain = authorization(Raw {
            verification_uri: "http://id.example.com/device".into(),
            ..raw(600, None)
        });
        assert!(plain.is_err(), "a verification URL over http is refused");
    }
}
