//! The one HTTP client every provider request goes through.
//!
//! It follows no redirects (a redirect to an internal address is a classic SSRF), has a
//! connect and a total timeout on every request so that nothing hangs, caps the size of a
//! response body, and refuses plain http except to loopback hosts. Only `discovery` and
//! `flow` use it. Errors carry the URL and what the provider said, never a request body.

use std::net::IpAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;

use crate::secret::Secret;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle connection is kept for reuse: shorter than the keep-alive timeouts of
/// common servers (Node.js and Apache close idle connections after 5 s). A request sent on
/// a connection the server is closing at that moment fails with "connection closed before
/// message completed"; seen with the test provider when a kiosk's idle timeout revoked the
/// tokens about 5 s after its last request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Larger than any discovery document, key set or token response seen in the wild.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Insecure(String),
    #[error("{url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("cannot reach {url}: {message}")]
    Connect { url: String, message: String },
    /// The provider answered with an OAuth error object (RFC 6749 section 5.2).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider {
        url: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent a response Lanyard cannot read: {message}")]
    Decode { url: String, message: String },
}

impl Error {
    /// The OAuth error code when the provider sent one, e.g. `invalid_grant`.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Error::Provider { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A body and its content type.
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Client {
    inner: reqwest::Client,
}

/// How the client proves itself at the token endpoint (RFC 6749 section 2.3.1).
pub enum ClientAuth<'a> {
    None {
        client_id: &'a str,
    },
    Basic {
        client_id: &'a str,
        secret: &'a Secret,
    },
    Post {
        client_id: &'a str,
        secret: &'a Secret,
    },
}

impl Client {
    pub fn new() -> Result<Client, Error> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("lanyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Connect {
                url: String::new(),
                message: format!("cannot set up TLS: {e}"),
            })?;
        Ok(Client { inner })
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, Error> {
        let response = self.send(url, self.inner.get(url.clone())).await?;
        decode(url, &response)
    }

    /// A plain GET (a profile picture), bounded like every response.
    pub async fn get(&self, url: &Url) -> Result<Response, Error> {
        self.send(url, self.inner.get(url.clone())).await
    }

    /// A GET with a bearer token (RFC 6750 section 2.1), for userinfo.
    pub async fn get_bearer(&self, url: &Url, token: &Secret) -> Result<Response, Error> {
        let request = self.inner.get(url.clone()).bearer_auth(token.expose());
        self.send(url, request).await
    }

    /// A form POST to a token, revocation or introspection endpoint.
    pub async fn post_form(
        &self,
        url: &Url,
        auth: &ClientAuth<'_>,
        params: &[(&str, &str)],
    ) -> Result<Response, Error> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut request = self.inner.post(url.clone());
        match auth {
            ClientAuth::None { client_id } => form.push(("client_id", client_id)),
            ClientAuth::Basic { client_id, secret } => {
                // RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(enc(client_id), Some(enc(secret.expose())));
            }
            ClientAuth::Post { client_id, secret } => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret.expose()));
            }
        }
        self.send(url, request.form(&form)).await
    }

    async fn send(&self, url: &Url, request: reqwest::RequestBuilder) -> Result<Response, Error> {
        check_secure(url).map_err(Error::Insecure)?;
        let shown = display_url(url);
        let mut response = request.send().await.map_err(|e| transport(&shown, e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&shown, e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::Decode {
                    url: shown,
                    message: format!("the response is larger than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok(Response {
                status,
                content_type,
                body,
            });
        }
        #[derive(serde::Deserialize)]
        struct OAuthError {
            error: String,
            error_description: Option<String>,
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) => Err(Error::Provider {
                url: shown,
                status,
                error: e.error,
                description: e.error_description,
            }),
            Err(_) => Err(Error::Status { url: shown, status }),
        }
    }
}

pub fn decode<T: DeserializeOwned>(url: &Url, response: &Response) -> Result<T, Error> {
    serde_json::from_slice(&response.body).map_err(|e| Error::Decode {
        url: display_url(url),
        message: e.to_string(),
    })
}

fn transport(url: &str, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        let seconds = if e.is_connect() {
            CONNECT_TIMEOUT
        } else {
            TOTAL_TIMEOUT
        }
        .as_secs();
        return Error::Timeout {
            url: url.to_owned(),
            seconds,
        };
    }
    // The innermost cause says the useful thing (connection refused, unknown issuer …).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    Error::Connect {
        url: url.to_owned(),
        message,
    }
}

/// A URL without its query, for messages: queries may carry codes or hints.
pub fn display_url(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// https everywhere; plain http only to a loopback host (RFC 8252 section 8.3 for
/// redirects; here also for providers under development and tests).
pub fn check_secure(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(
            "http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https".into(),
        ),
        other => Err(format!("unsupported URL scheme `{other}`; use https")),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_use_http() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:1",
            "http://localhost",
        ] {
            assert_eq!(check_secure(&Url::parse(ok).unwrap()), Ok(()), "{ok}");
        }
        for bad in [
            "http://id.example.com",
            "http://10.0.0.1",
            "ftp://x",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(check_secure(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_url_drops_the_query() {
        let url = Url::parse("https://id.example.com/cb?code=secret#x").unwrap();
        assert_eq!(display_url(&url), "https://id.example.com/cb");
    }
}
