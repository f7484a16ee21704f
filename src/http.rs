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
    #[error("the provider refused: {error}{}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(), advice(error))]
    Provider {
        status: u16,
        error: String,
        description: Option<String>,
        /// The `DPoP-Nonce` it sent with the error (RFC 9449 section 8: `use_dpop_nonce`).
        dpop_nonce: Option<String>,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent a response Lanyard cannot read: {message}")]
    Decode { url: String, message: String },
}

/// What to do about an OAuth error that trying again will not mend.
fn advice(error: &str) -> &'static str {
    match error {
        "invalid_client" | "unauthorized_client" => {
            ": check the client id (and its secret, if it has one) and that the provider has this client registered, with this redirect URI"
        }
        _ => "",
    }
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
    /// The server's next DPoP nonce (RFC 9449 section 8), when it sent one.
    pub dpop_nonce: Option<String>,
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
        Client::build(reqwest::Client::builder())
    }

    /// A client for URLs that a provider's claims name rather than its metadata (a
    /// profile picture): it connects only to public addresses. Names are resolved by a
    /// resolver that drops loopback, private, link-local and other internal addresses,
    /// at every connection, so a name that resolves (or rebinds) inside gets nothing; an
    /// address written in the URL is checked by [`Client::get_public`]. It never uses a
    /// proxy (`HTTPS_PROXY`): the proxy would resolve and connect where this cannot check.
    pub fn public_only() -> Result<Client, Error> {
        Client::build(
            reqwest::Client::builder()
                .dns_resolver(std::sync::Arc::new(PublicOnly))
                .no_proxy(),
        )
    }

    fn build(builder: reqwest::ClientBuilder) -> Result<Client, Error> {
        let inner = builder
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

    /// A plain GET, bounded like every response.
    pub async fn get(&self, url: &Url) -> Result<Response, Error> {
        self.send(url, self.inner.get(url.clone())).await
    }

    /// A GET of a URL named by a provider's claims, with a [`Client::public_only`]
    /// client: https, and a host that is no internal address.
    pub async fn get_public(&self, url: &Url) -> Result<Response, Error> {
        if url.scheme() != "https" {
            return Err(Error::Insecure(format!(
                "{}: only https is fetched from here",
                display_url(url)
            )));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !is_public(ip)) {
            return Err(Error::Insecure(format!(
                "{}: an internal address is not fetched",
                display_url(url)
            )));
        }
        self.get(url).await
    }

    /// A GET with a bearer token (RFC 6750 section 2.1), for userinfo.
    pub async fn get_bearer(&self, url: &Url, token: &Secret) -> Result<Response, Error> {
        self.get_with_token(url, token, None).await
    }

    /// A GET with an access token: a bearer token, or with `proof` a DPoP-bound one (RFC
    /// 9449 section 7.1: `Authorization: DPoP`, and the proof in the `DPoP` header).
    pub async fn get_with_token(
        &self,
        url: &Url,
        token: &Secret,
        proof: Option<&str>,
    ) -> Result<Response, Error> {
        let request = self.inner.get(url.clone());
        let request = match proof {
            None => request.bearer_auth(token.expose()),
            Some(proof) => request
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("DPoP {}", token.expose()),
                )
                .header("DPoP", proof),
        };
        self.send(url, request).await
    }

    /// A form POST with no client authentication (AWS STS's `AssumeRoleWithWebIdentity`,
    /// whose token is its proof).
    pub async fn post_plain_form(
        &self,
        url: &Url,
        params: &[(&str, &str)],
    ) -> Result<Response, Error> {
        let request = self.inner.post(url.clone()).form(params);
        self.send(url, request).await
    }

    /// A form POST to a token, revocation or introspection endpoint.
    pub async fn post_form(
        &self,
        url: &Url,
        auth: &ClientAuth<'_>,
        params: &[(&str, &str)],
    ) -> Result<Response, Error> {
        self.post_form_proved(url, auth, params, None).await
    }

    /// [`Client::post_form`] with a DPoP proof (RFC 9449 section 5), when one is given.
    pub async fn post_form_proved(
        &self,
        url: &Url,
        auth: &ClientAuth<'_>,
        params: &[(&str, &str)],
        proof: Option<&str>,
    ) -> Result<Response, Error> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut request = self.inner.post(url.clone());
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
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
        let dpop_nonce = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
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
                dpop_nonce,
            });
        }
        #[derive(serde::Deserialize)]
        struct OAuthError {
            error: String,
            error_description: Option<String>,
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) => Err(Error::Provider {
                status,
                error: e.error,
                description: e.error_description,
                dpop_nonce,
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

/// Resolves names to their public addresses only (see [`Client::public_only`]).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<std::net::SocketAddr> =
                all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// An address on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unique-local, multicast, documentation, benchmarking, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64, maps IPv4 inside
        }
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
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn public_fetches_refuse_internal_places() {
        let client = Client::public_only().unwrap();
        for url in [
            "http://127.0.0.1:1/a.png",
            "https://127.0.0.1:1/a.png",
            "https://[::1]:1/a.png",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost:1/a.png",
        ] {
            let got = client.get_public(&Url::parse(url).unwrap()).await;
            assert!(got.is_err(), "{url} was fetched");
        }
        let resolved = client
            .get_public(&Url::parse("https://localhost:1/a.png").unwrap())
            .await
            .err()
            .unwrap();
        assert!(
            resolved.to_string().contains("no public address"),
            "{resolved}"
        );
    }

    /// Run in a process of its own by `pictures_never_go_through_a_proxy`, with the proxy
    /// variables set (they are read when a client is built, and would reach every other
    /// test of this process).
    #[tokio::test]
    #[ignore = "run by pictures_never_go_through_a_proxy"]
    async fn fetch_a_picture_through_the_environment() {
        let url = std::env::var("LANYARD_TEST_PICTURE").expect("run by the test below");
        let client = Client::public_only().unwrap();
        let _ = client.get_public(&Url::parse(&url).unwrap()).await;
    }

    /// A picture's fetch does not go through `HTTPS_PROXY`, where the public-address
    /// check would not hold: the proxy sees no connection.
    #[cfg(unix)]
    #[test]
    fn pictures_never_go_through_a_proxy() {
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = format!("http://{}", proxy.local_addr().unwrap());
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact"])
            .arg("http::tests::fetch_a_picture_through_the_environment")
            .env("HTTPS_PROXY", &at)
            .env("HTTP_PROXY", &at)
            .env("ALL_PROXY", &at)
            .env_remove("NO_PROXY")
            .env(
                "LANYARD_TEST_PICTURE",
                "https://pictures.example.com/alice.png",
            )
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        proxy.set_nonblocking(true).unwrap();
        let connected = proxy.accept();
        assert!(
            connected
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
            "the picture's fetch went through the proxy: {connected:?}"
        );
    }

    #[test]
    fn display_url_drops_the_query() {
        let url = Url::parse("https://id.example.com/cb?code=secret#x").unwrap();
        assert_eq!(display_url(&url), "https://id.example.com/cb");
    }
}
