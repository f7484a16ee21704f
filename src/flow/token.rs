//! The token endpoint: redeeming a code, refreshing, client credentials, and how the
//! client authenticates there.

use serde::Deserialize;

use super::{AuthRequest, Error};
use crate::config::{Account, ClientAuth};
use crate::discovery::Provider;
use crate::dpop;
use crate::http;
use crate::secret::Secret;

/// The longest token lifetime Lanyard believes: a provider that says more (or sends an
/// absurd number) gets this, and the token is refreshed within a year all the same.
pub const MAX_LIFETIME: u64 = 365 * 24 * 3600;

/// A token endpoint response (RFC 6749 section 5.1, OpenID Connect Core 3.1.3.3).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: Option<f64>,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub scope: Option<String>,
}

impl TokenResponse {
    /// Whether the access token is bound to the DPoP key (RFC 9449 section 5).
    pub fn is_dpop(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("dpop")
    }

    /// When the access token expires, in Unix seconds, from `expires_in` as the provider
    /// sent it: bounded to [0, [`MAX_LIFETIME`]] (zero, negative or not a number is
    /// "expired already"), and added without overflow.
    pub fn expires_at(&self, now: u64) -> Option<u64> {
        self.expires_in.map(|s| now.saturating_add(lifetime(s)))
    }
}

/// `expires_in` in whole seconds, within [0, [`MAX_LIFETIME`]].
fn lifetime(expires_in: f64) -> u64 {
    if expires_in.is_nan() || expires_in <= 0.0 {
        0
    } else {
        (expires_in as u64).min(MAX_LIFETIME)
    }
}

/// Chooses how to authenticate at the token endpoint: the account's explicit choice,
/// else what discovery offers for a client that has a secret (basic first), else none.
pub fn client_auth<'a>(
    account: &'a Account,
    provider: &Provider,
    secret: Option<&'a Secret>,
) -> Result<http::ClientAuth<'a>, Error> {
    let client_id = account.client_id.as_str();
    let need = |method: &'static str| {
        secret.ok_or_else(|| Error::NoSecret {
            account: account.name.clone(),
            method,
        })
    };
    Ok(match (account.client_auth, secret) {
        (Some(ClientAuth::None), _) | (None, None) => http::ClientAuth::None { client_id },
        (Some(ClientAuth::ClientSecretBasic), _) => http::ClientAuth::Basic {
            client_id,
            secret: need("client_secret_basic")?,
        },
        (Some(ClientAuth::ClientSecretPost), _) => http::ClientAuth::Post {
            client_id,
            secret: need("client_secret_post")?,
        },
        (None, Some(secret)) => {
            // Discovery: the default, when the provider says nothing, is client_secret_basic.
            let offered = provider
                .metadata
                .token_endpoint_auth_methods_supported
                .clone()
                .unwrap_or_else(|| vec!["client_secret_basic".into()]);
            if offered.iter().any(|m| m == "client_secret_basic") {
                http::ClientAuth::Basic { client_id, secret }
            } else if offered.iter().any(|m| m == "client_secret_post") {
                http::ClientAuth::Post { client_id, secret }
            } else {
                return Err(Error::NoAuthMethod {
                    offered: offered.join(", "),
                });
            }
        }
    })
}

/// Redeems an authorization code with its PKCE verifier; with `dpop`, the tokens are
/// bound to that key.
pub async fn exchange(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    code: &Secret,
    request: &AuthRequest,
    dpop: Option<&dpop::Key>,
) -> Result<TokenResponse, Error> {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code.expose()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("code_verifier", request.verifier.expose()),
    ];
    token_request(http, provider, auth, &params, dpop).await
}

/// Trades a refresh token for new tokens (RFC 6749 section 6).
pub async fn refresh(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    refresh_token: &Secret,
    target: &Target,
    dpop: Option<&dpop::Key>,
) -> Result<TokenResponse, Error> {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    // RFC 6749 section 6: a narrower scope; RFC 8707: one of the granted resources.
    if let Some(scope) = &target.scope {
        params.push(("scope", scope));
    }
    if let Some(audience) = &target.audience {
        params.push(("resource", audience));
    }
    token_request(http, provider, auth, &params, dpop).await
}

/// RFC 8693: the grant, and the type of the token exchanged and asked for.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Token exchange (RFC 8693): the sign-in's access token for one aimed at
/// `target.audience`, with `target.scope` if given.
pub async fn token_exchange(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    subject: &Secret,
    target: &Target,
    dpop: Option<&dpop::Key>,
) -> Result<TokenResponse, Error> {
    let mut params = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.expose()),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
    ];
    if let Some(audience) = &target.audience {
        params.push(("audience", audience));
    }
    if let Some(scope) = &target.scope {
        params.push(("scope", scope));
    }
    token_request(http, provider, auth, &params, dpop).await
}

/// What an access token is for: the sign-in's own scopes and audience (the default), or
/// a narrower token (down-scoping) that a refresh asks for, or one the provider exchanges
/// the sign-in's token for (RFC 8693).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Target {
    /// Space-separated; at most the scopes granted at sign-in.
    pub scope: Option<String>,
    /// An RFC 8707 resource indicator the account asked for at sign-in (`resources`); with
    /// `exchange`, the audience asked of the provider (any it accepts).
    pub audience: Option<String>,
    /// Token exchange (RFC 8693) rather than a refresh.
    pub exchange: bool,
}

impl Target {
    /// The sign-in's own token.
    pub fn is_default(&self) -> bool {
        self.scope.is_none() && self.audience.is_none() && !self.exchange
    }

    /// The same target written one way: scopes sorted, each once, none empty; so that
    /// `"a b"` and `"b  a"` share one cached token.
    pub fn normalized(&self) -> Target {
        let scope = self.scope.as_deref().map(|s| {
            let mut scopes: Vec<&str> = s.split_whitespace().collect();
            scopes.sort_unstable();
            scopes.dedup();
            scopes.join(" ")
        });
        Target {
            scope: scope.filter(|s| !s.is_empty()),
            audience: self.audience.clone().filter(|a| !a.is_empty()),
            exchange: self.exchange,
        }
    }

    /// The scopes asked for that are not among `granted`.
    pub fn ungranted<'a>(&'a self, granted: &[String]) -> Vec<&'a str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| !granted.iter().any(|g| g == s))
            .collect()
    }
}

/// A token for the client itself (RFC 6749 section 4.4): no person, no ID token.
pub async fn client_credentials(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    scope: Option<&str>,
) -> Result<TokenResponse, Error> {
    let mut params = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    token_request(http, provider, auth, &params, None).await
}

/// A request to the token endpoint. With `dpop`, it carries a proof of the key; a
/// provider that answers `use_dpop_nonce` (RFC 9449 section 8) with a new nonce is asked
/// once more with it, and its nonce is kept for the next request either way.
pub(super) async fn token_request(
    http: &http::Client,
    provider: &Provider,
    auth: &http::ClientAuth<'_>,
    params: &[(&str, &str)],
    dpop: Option<&dpop::Key>,
) -> Result<TokenResponse, Error> {
    let url = &provider.token_endpoint;
    let response: http::Response =
        dpop::proved::<Error, _, _>(dpop, ("POST", url, None), |proof| async move {
            http.post_form_proved(url, auth, params, proof.as_deref())
                .await
        })
        .await?;
    let tokens: TokenResponse = http::decode(url, &response)?;
    // A DPoP token only when a proof was sent; a provider may still issue a bearer token
    // to a client that sent one (RFC 9449 section 5), which is then used as one.
    let bearer = tokens.token_type.eq_ignore_ascii_case("bearer");
    if !(bearer || (dpop.is_some() && tokens.is_dpop())) {
        return Err(Error::TokenType(tokens.token_type));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_lifetimes_are_bounded() {
        let at = |expires_in: Option<f64>| {
            TokenResponse {
                access_token: Secret::new("a"),
                token_type: "Bearer".into(),
                expires_in,
                refresh_token: None,
                id_token: None,
                scope: None,
            }
            .expires_at(u64::MAX - 10)
        };
        let now = u64::MAX - 10;
        assert_eq!(at(None), None);
        assert_eq!(at(Some(0.0)), Some(now));
        assert_eq!(at(Some(-5.0)), Some(now));
        assert_eq!(at(Some(f64::NAN)), Some(now));
        // Huge, and added to a clock near its end: no overflow, no panic.
        assert_eq!(at(Some(1e300)), Some(u64::MAX));
        assert_eq!(lifetime(1e300), MAX_LIFETIME);
        assert_eq!(lifetime(3600.9), 3600);
    }
}
