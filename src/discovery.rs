//! Provider metadata (OpenID Connect Discovery 1.0) and the provider's signing keys.
//!
//! [`Provider::discover`] fetches `{issuer}/.well-known/openid-configuration`, insists that
//! the document's `issuer` equals the configured one byte for byte (section 4.3), and that
//! every endpoint is https (or http on loopback). Keys come only from `jwks_uri`; they are
//! cached and refetched when a token names a key the cache lacks, at most once per
//! [`REFETCH_INTERVAL`] so that a flood of bogus `kid`s cannot turn Lanyard into a
//! hammer on the provider. This module knows nothing of flows, storage or the CLI.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::http;
use crate::jose::{self, JwkSet};
use crate::validate;

/// The minimum time between two key refetches caused by unknown key ids. The first
/// refetch after the initial fetch is always allowed: keys may rotate between discovery
/// and the first token.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(
        "the discovery document says issuer `{got}`, but the account is configured with `{expected}`; they must be equal exactly (check for a trailing slash)"
    )]
    IssuerMismatch { expected: String, got: String },
    #[error("the discovery document of {issuer} lacks `{field}`")]
    Missing { issuer: String, field: &'static str },
    #[error("the discovery document of {issuer} has a bad `{field}`: {message}")]
    BadField {
        issuer: String,
        field: &'static str,
        message: String,
    },
}

/// The metadata Lanyard uses. Unknown members are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub introspection_endpoint: Option<Url>,
    pub end_session_endpoint: Option<Url>,
    /// RFC 8628: where a device flow starts (scan-to-sign-in on a kiosk).
    pub device_authorization_endpoint: Option<Url>,
    /// RFC 9126: where an authorization request is pushed before the browser goes.
    pub pushed_authorization_request_endpoint: Option<Url>,
    /// RFC 9126 section 5: the provider takes pushed authorization requests only.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// RFC 9449 section 5.1: the algorithms the provider takes DPoP proofs in.
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// A discovered provider: its metadata, its endpoints and a cache of its keys.
#[derive(Debug)]
pub struct Provider {
    pub metadata: Metadata,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    /// `id_token_signing_alg_values_supported` ∩ what `jose` can verify.
    pub allowed_algs: Vec<String>,
    http: http::Client,
    keys: Mutex<KeyCache>,
}

#[derive(Debug, Default)]
struct KeyCache {
    set: Option<JwkSet>,
    last_refetch: Option<Instant>,
}

impl Provider {
    pub async fn discover(http: &http::Client, issuer: &str) -> Result<Provider, Error> {
        let url = discovery_url(issuer).map_err(|message| Error::BadField {
            issuer: issuer.to_owned(),
            field: "issuer",
            message,
        })?;
        let metadata: Metadata = http.get_json(&url).await?;
        Provider::from_metadata(http.clone(), issuer, metadata)
    }

    pub fn from_metadata(
        http: http::Client,
        issuer: &str,
        metadata: Metadata,
    ) -> Result<Provider, Error> {
        if metadata.issuer != issuer {
            return Err(Error::IssuerMismatch {
                expected: issuer.to_owned(),
                got: metadata.issuer,
            });
        }
        let required = |value: &Option<Url>, field: &'static str| -> Result<Url, Error> {
            let url = value.clone().ok_or(Error::Missing {
                issuer: issuer.to_owned(),
                field,
            })?;
            http::check_secure(&url).map_err(|message| Error::BadField {
                issuer: issuer.to_owned(),
                field,
                message,
            })?;
            Ok(url)
        };
        let authorization_endpoint =
            required(&metadata.authorization_endpoint, "authorization_endpoint")?;
        let token_endpoint = required(&metadata.token_endpoint, "token_endpoint")?;
        let jwks_uri = required(&metadata.jwks_uri, "jwks_uri")?;
        for (value, field) in [
            (&metadata.userinfo_endpoint, "userinfo_endpoint"),
            (&metadata.revocation_endpoint, "revocation_endpoint"),
            (&metadata.introspection_endpoint, "introspection_endpoint"),
            (&metadata.end_session_endpoint, "end_session_endpoint"),
            (
                &metadata.pushed_authorization_request_endpoint,
                "pushed_authorization_request_endpoint",
            ),
        ] {
            if value.is_some() {
                required(value, field)?;
            }
        }
        if metadata.require_pushed_authorization_requests
            && metadata.pushed_authorization_request_endpoint.is_none()
        {
            return Err(Error::Missing {
                issuer: issuer.to_owned(),
                field: "pushed_authorization_request_endpoint",
            });
        }
        if let Some(methods) = &metadata.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(Error::BadField {
                issuer: issuer.to_owned(),
                field: "code_challenge_methods_supported",
                message:
                    "PKCE with S256 is not offered; Lanyard requires it (RFC 8252 section 8.1)"
                        .into(),
            });
        }
        let allowed_algs: Vec<String> = jose::SUPPORTED_ALGS
            .iter()
            .filter(|a| {
                metadata
                    .id_token_signing_alg_values_supported
                    .iter()
                    .any(|m| m == *a)
            })
            .map(|a| (*a).to_owned())
            .collect();
        if allowed_algs.is_empty() {
            return Err(Error::BadField {
                issuer: issuer.to_owned(),
                field: "id_token_signing_alg_values_supported",
                message: format!(
                    "none of {:?} is an algorithm Lanyard accepts ({})",
                    metadata.id_token_signing_alg_values_supported,
                    jose::SUPPORTED_ALGS.join(", ")
                ),
            });
        }
        Ok(Provider {
            metadata,
            authorization_endpoint,
            token_endpoint,
            jwks_uri,
            allowed_algs,
            http,
            keys: Mutex::new(KeyCache::default()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    /// Verifies a JWS signed by this provider and returns its header and payload. An
    /// unknown key id triggers one refetch of the key set (rate-limited).
    pub async fn verify(&self, token: &str) -> Result<(jose::Header, Vec<u8>), VerifyError> {
        let jws = jose::parse(token).map_err(validate::Error::from)?;
        let mut cache = self.keys.lock().await;
        if cache.set.is_none() {
            cache.set = Some(self.fetch_keys().await?);
        }
        let first = jws.verify(
            cache.set.as_ref().expect("filled above"),
            &self.allowed_algs,
        );
        match first {
            Err(jose::Error::NoKey { .. }) if cache.may_refetch() => {
                tracing::debug!(kid = ?jws.header.kid, "unknown key id; refetching the key set");
                cache.last_refetch = Some(Instant::now());
                cache.set = Some(self.fetch_keys().await?);
                jws.verify(
                    cache.set.as_ref().expect("filled above"),
                    &self.allowed_algs,
                )
                .map_err(validate::Error::from)?;
            }
            other => {
                other.map_err(validate::Error::from)?;
            }
        }
        Ok((jws.header, jws.payload))
    }

    async fn fetch_keys(&self) -> Result<JwkSet, http::Error> {
        let set: JwkSet = self.http.get_json(&self.jwks_uri).await?;
        tracing::debug!(keys = set.keys.len(), "fetched the provider's key set");
        Ok(set)
    }
}

impl KeyCache {
    fn may_refetch(&self) -> bool {
        self.last_refetch
            .is_none_or(|t| t.elapsed() >= REFETCH_INTERVAL)
    }
}

/// A signature check failed, or the keys could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Invalid(#[from] validate::Error),
    #[error("cannot fetch the provider's keys: {0}")]
    Keys(#[from] http::Error),
}

/// `{issuer}/.well-known/openid-configuration`, with a trailing slash of the issuer
/// removed first (Discovery section 4.1), so an issuer with a path keeps it.
pub fn discovery_url(issuer: &str) -> Result<Url, String> {
    crate::config::check_issuer(issuer)?;
    Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_keeps_the_issuer_path() {
        let u = |i| discovery_url(i).unwrap().to_string();
        assert_eq!(
            u("https://id.example.com"),
            "https://id.example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            u("https://api.ggleap.com/production/oidc"),
            "https://api.ggleap.com/production/oidc/.well-known/openid-configuration"
        );
        assert_eq!(
            u("https://id.example.com/t/"),
            "https://id.example.com/t/.well-known/openid-configuration"
        );
    }

    fn metadata(issuer: &str) -> Metadata {
        serde_json::from_value(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": "https://id.example.com/auth",
            "token_endpoint": "https://id.example.com/token",
            "jwks_uri": "https://id.example.com/jwks",
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
        }))
        .unwrap()
    }

    #[test]
    fn metadata_rules() {
        let http = http::Client::new().unwrap();
        let p = Provider::from_metadata(
            http.clone(),
            "https://id.example.com",
            metadata("https://id.example.com"),
        )
        .unwrap();
        assert_eq!(
            p.allowed_algs,
            ["RS256"],
            "HMAC and none never make the allow-list"
        );

        let err = Provider::from_metadata(
            http.clone(),
            "https://id.example.com",
            metadata("https://id.example.com/"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::IssuerMismatch { .. }), "{err}");
        // A trailing slash is the settings' to fix; another issuer is the provider's.
        let kind = |source| {
            let issuer = "https://id.example.com".into();
            crate::Error::Discovery { issuer, source }.kind()
        };
        assert_eq!(kind(err), crate::Kind::Config);
        let other = Provider::from_metadata(
            http.clone(),
            "https://id.example.com",
            metadata("https://evil.example.com"),
        )
        .unwrap_err();
        assert_eq!(kind(other), crate::Kind::Rejected);

        let mut m = metadata("https://id.example.com");
        m.token_endpoint = Some(Url::parse("http://id.example.com/token").unwrap());
        let err = Provider::from_metadata(http.clone(), "https://id.example.com", m).unwrap_err();
        assert!(
            err.to_string()
                .contains("`token_endpoint`: http is allowed only for loopback"),
            "{err}"
        );

        let mut m = metadata("https://id.example.com");
        m.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(Provider::from_metadata(http.clone(), "https://id.example.com", m).is_err());

        // RFC 9126: a provider that requires pushed requests must say where they go, and
        // that endpoint is held to the same rules as the others.
        let mut m = metadata("https://id.example.com");
        m.require_pushed_authorization_requests = true;
        let err = Provider::from_metadata(http.clone(), "https://id.example.com", m).unwrap_err();
        assert!(
            err.to_string()
                .contains("lacks `pushed_authorization_request_endpoint`"),
            "{err}"
        );
        let mut m = metadata("https://id.example.com");
        m.pushed_authorization_request_endpoint =
            Some(Url::parse("http://id.example.com/par").unwrap());
        assert!(Provider::from_metadata(http, "https://id.example.com", m).is_err());
    }
}
