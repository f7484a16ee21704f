//! The OAuth 2.0 / OpenID Connect exchanges with a provider.
//!
//! Read top to bottom, a sign-in is: [`AuthRequest::new`] (PKCE S256 per RFC 7636, `state`,
//! `nonce`) → the browser → [`loopback`] receives the redirect → [`AuthRequest::check_response`]
//! (state, RFC 9207 `iss`, provider errors) → [`exchange`] the code with the verifier →
//! `validate` the ID token → [`userinfo`]. [`refresh`], [`revoke`] (RFC 7009) and
//! [`end_session_url`] (RP-Initiated Logout 1.0) complete the life of a session.
//! Where the provider takes pushed authorization requests (RFC 9126), `par` sends the
//! request to it first ([`AuthRequest::push`]), and the browser carries only a reference.
//! These functions neither store anything nor decide policy; `session` does. The token
//! endpoint's exchanges are in `token`.

pub mod device;
pub mod handoff;
pub mod loopback;
mod par;
pub mod scheme;
mod token;

pub use token::{
    MAX_LIFETIME, Target, TokenResponse, client_auth, client_credentials, exchange, refresh,
    token_exchange,
};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use url::Url;

use crate::config::{Account, ResponseMode, ResponseType};
use crate::discovery::Provider;
use crate::http;
use crate::secret::{self, Secret};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the provider refused the sign-in: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error(
        "iss: the authorization response names issuer {got}, not `{expected}` (RFC 9207); the sign-in may have been sent to the wrong provider"
    )]
    IssuerMismatch { expected: String, got: String },
    #[error("the authorization response has no `{0}`")]
    NoCode(&'static str),
    #[error("introspection: {0}")]
    Introspection(String),
    #[error("the token response has no ID token; is `openid` among the scopes?")]
    NoIdToken,
    #[error(
        "the provider issued a `{0}` token, which this request did not ask for (Bearer, or DPoP with a proof)"
    )]
    TokenType(String),
    #[error(transparent)]
    Dpop(#[from] crate::dpop::Error),
    #[error(
        "the account uses {method} but has no client secret; store one with `lanyard accounts set-secret {account}`"
    )]
    NoSecret {
        account: String,
        method: &'static str,
    },
    #[error(
        "the provider accepts none of the client authentication methods Lanyard has ({offered}); set `client_auth` for the account"
    )]
    NoAuthMethod { offered: String },
    #[error("scan-to-sign-in: {0}")]
    Device(String),
    #[error("the code expired before anyone signed in with it; start again for a new one")]
    DeviceExpired,
    #[error("cannot make random values: the OS random source failed")]
    Random,
    #[error(
        "the one-time sign-in page was opened twice, perhaps by another program on this computer that read the browser's command line; Lanyard stopped the sign-in: start it again"
    )]
    HandoffStolen,
    #[error(
        "that is not the address the browser ended on: it starts with {expected}? (the page that could not load); copy the whole address from the browser's address bar and paste it"
    )]
    NotTheRedirect { expected: String },
    #[error(
        "the pasted address belongs to another sign-in (its state does not match this one's); Lanyard stopped: start again and paste the address this sign-in ends on"
    )]
    PastedStateMismatch,
    #[error("the provider's answer to the pushed authorization request has no usable request_uri")]
    NoRequestUri,
    #[error(transparent)]
    Http(#[from] http::Error),
}

/// One authorization request: the URL for the browser and what must come back. Its
/// `Debug` shows neither the URL's query (state, nonce, challenge) nor the secrets.
pub struct AuthRequest {
    pub url: Url,
    pub response_type: ResponseType,
    pub redirect_uri: String,
    pub state: Secret,
    pub nonce: Secret,
    pub verifier: Secret,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthRequest")
            .field("url", &http::display_url(&self.url))
            .field("response_type", &self.response_type)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// What Lanyard adds to an account's own settings for one sign-in.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Replaces the account's `prompt` (e.g. `login` for `--reauth`).
    pub prompt: Option<String>,
    /// The JWK thumbprint of the DPoP key the code will be redeemed with (RFC 9449
    /// section 10): the provider binds the code to it, so a code that got out cannot be
    /// redeemed with another key.
    pub dpop_jkt: Option<String>,
}

impl AuthRequest {
    pub fn new(
        provider: &Provider,
        account: &Account,
        redirect_uri: &str,
        overrides: &Overrides,
    ) -> Result<AuthRequest, Error> {
        let state = secret::random(32).map_err(|_| Error::Random)?;
        let nonce = secret::random(32).map_err(|_| Error::Random)?;
        let verifier = secret::random(32).map_err(|_| Error::Random)?;
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            verifier.expose().as_bytes(),
        ));
        let mut url = provider.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", account.response_type.as_str())
                .append_pair("client_id", &account.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &account.scopes.join(" "))
                .append_pair("state", state.expose())
                .append_pair("nonce", nonce.expose());
            // PKCE protects a code; an ID token alone is bound by the nonce instead.
            if account.response_type == ResponseType::Code {
                q.append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if account.response_mode != ResponseMode::Query {
                q.append_pair("response_mode", account.response_mode.as_str());
            }
            if let Some(prompt) = overrides.prompt.as_ref().or(account.prompt.as_ref()) {
                q.append_pair("prompt", prompt);
            }
            if let Some(max_age) = account.max_age {
                q.append_pair("max_age", &max_age.to_string());
            }
            for (k, v) in &account.extra_params {
                q.append_pair(k, v);
            }
            for resource in &account.resources {
                q.append_pair("resource", resource);
            }
            if let Some(jkt) = &overrides.dpop_jkt {
                q.append_pair("dpop_jkt", jkt);
            }
        }
        Ok(AuthRequest {
            url,
            response_type: account.response_type,
            redirect_uri: redirect_uri.to_owned(),
            state,
            nonce,
            verifier,
        })
    }

    /// The parameters of the address a browser on another machine ended on, pasted by
    /// the person (the loopback redirect, which could not load there): the address must
    /// be this request's redirect URI, and its `state` this request's. Then
    /// [`AuthRequest::check_response`] checks the rest, as for a redirect that came back.
    pub fn pasted(&self, pasted: &str) -> Result<Params, Error> {
        let not_it = || Error::NotTheRedirect {
            expected: self.redirect_uri.clone(),
        };
        let url = Url::parse(pasted.trim()).map_err(|_| not_it())?;
        let expected = Url::parse(&self.redirect_uri).map_err(|_| not_it())?;
        if url.scheme() != expected.scheme()
            || url.host() != expected.host()
            || url.port_or_known_default() != expected.port_or_known_default()
            || url.path() != expected.path()
        {
            return Err(not_it());
        }
        let params = Params::from_url(&url);
        match params.get("state") {
            Some(state) if self.state.matches(state) => Ok(params),
            Some(_) => Err(Error::PastedStateMismatch),
            None => Err(not_it()),
        }
    }

    /// Checks an authorization response whose `state` already matched: the provider's
    /// error, the RFC 9207 issuer, and the artifact. Returns the code, or the ID token
    /// for `response_type=id_token`.
    pub fn check_response(&self, provider: &Provider, params: &Params) -> Result<Secret, Error> {
        // RFC 9207 section 2.4: an `iss` that is present is compared, whatever the
        // metadata says; one the metadata promises must be present.
        let promised = provider
            .metadata
            .authorization_response_iss_parameter_supported;
        match params.get("iss") {
            Some(iss) if iss == provider.issuer() => {}
            // A response that is itself an ID token names its issuer inside, where
            // validation checks it; providers (node-oidc-provider among them) leave the
            // parameter off such responses.
            None if !promised || self.response_type == ResponseType::IdToken => {}
            other => {
                return Err(Error::IssuerMismatch {
                    expected: provider.issuer().to_owned(),
                    got: other.map_or("nothing".into(), |s| format!("`{s}`")),
                });
            }
        }
        if let Some(error) = params.get("error") {
            return Err(Error::Refused {
                error: error.to_owned(),
                description: params.get("error_description").map(str::to_owned),
            });
        }
        let artifact = match self.response_type {
            ResponseType::Code => "code",
            ResponseType::IdToken => "id_token",
        };
        params
            .get(artifact)
            .map(Secret::new)
            .ok_or(Error::NoCode(artifact))
    }
}

/// Query or form parameters of a request to the loopback listener. Its `Debug` names the
/// parameters and hides their values (a code, a state, a token).
#[derive(Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, _)| (k, "[redacted]")))
            .finish()
    }
}

impl Params {
    /// The parameters of a redirect's URL: its query, else its fragment (a response in
    /// `response_mode=fragment`).
    pub fn from_url(url: &Url) -> Params {
        let pairs = |text: &str| -> Vec<(String, String)> {
            url::form_urlencoded::parse(text.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        };
        let mut found = pairs(url.query().unwrap_or_default());
        if found.is_empty() {
            found = pairs(url.fragment().unwrap_or_default());
        }
        Params(found)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The userinfo response as JSON. Signed userinfo (`application/jwt`) is verified with
/// the provider's keys first, and must name the provider as `iss` and this client in
/// `aud` (Core 5.3.2): a signed response meant for another client is not taken.
pub async fn userinfo(
    http: &http::Client,
    provider: &Provider,
    url: &Url,
    access_token: &Secret,
    client_id: &str,
    dpop: Option<&crate::dpop::Key>,
) -> Result<Map<String, Value>, UserinfoError> {
    let response: http::Response = crate::dpop::proved::<UserinfoError, _, _>(
        dpop,
        ("GET", url, Some(access_token)),
        |proof| async move {
            http.get_with_token(url, access_token, proof.as_deref())
                .await
        },
    )
    .await?;
    if response.content_type.starts_with("application/jwt") {
        let text = String::from_utf8_lossy(&response.body);
        let (_, payload) = provider.verify(text.trim()).await?;
        let claims = crate::validate::claims(&payload).map_err(UserinfoError::Claims)?;
        signed_userinfo(&claims, provider.issuer(), client_id)?;
        return Ok(claims);
    }
    http::decode(url, &response).map_err(UserinfoError::from)
}

/// The `iss` and `aud` of signed userinfo.
fn signed_userinfo(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
) -> Result<(), UserinfoError> {
    let shown = |v: Option<&Value>| v.map_or("nothing".to_owned(), Value::to_string);
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(UserinfoError::Issuer {
            got: shown(claims.get("iss")),
        });
    }
    let audience = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience {
        return Err(UserinfoError::Audience {
            got: shown(claims.get("aud")),
        });
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(transparent)]
    Dpop(#[from] crate::dpop::Error),
    #[error("signed userinfo: {0}")]
    Signature(#[from] crate::discovery::VerifyError),
    #[error("signed userinfo: {0}")]
    Claims(crate::validate::Error),
    #[error("signed userinfo: iss is {got}, not the provider")]
    Issuer { got: String },
    #[error("signed userinfo: aud is {got}, which does not name this client")]
    Audience { got: String },
}

/// Asks the provider's introspection endpoint (RFC 7662) whether an ID token is active,
/// the way Hellō offers it: `token`, `client_id` and `nonce`, no client authentication.
pub async fn introspect_id_token(
    http: &http::Client,
    url: &Url,
    client_id: &str,
    id_token: &Secret,
    nonce: &Secret,
    subject: &str,
) -> Result<(), Error> {
    let auth = http::ClientAuth::None { client_id };
    let response = http
        .post_form(
            url,
            &auth,
            &[("token", id_token.expose()), ("nonce", nonce.expose())],
        )
        .await?;
    let answer: Map<String, Value> = http::decode(url, &response)?;
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(Error::Introspection(
            "the provider says the ID token is not active".into(),
        ));
    }
    match answer.get("sub").and_then(Value::as_str) {
        Some(sub) if sub == subject => Ok(()),
        _ => Err(Error::Introspection(
            "the provider's answer names another subject".into(),
        )),
    }
}

/// Revokes a token (RFC 7009). Over http too, for loopback providers; a token the
/// provider no longer knows counts as revoked (section 2.2).
pub async fn revoke(
    http: &http::Client,
    url: &Url,
    auth: &http::ClientAuth<'_>,
    token: &Secret,
    hint: &str,
) -> Result<(), Error> {
    let params = [("token", token.expose()), ("token_type_hint", hint)];
    match http.post_form(url, auth, &params).await {
        // Revoking twice is harmless (RFC 7009 section 2.2), and a token left valid at the
        // provider is not: a connection lost on the way gets a second try.
        Err(http::Error::Connect { .. }) => {
            http.post_form(url, auth, &params).await?;
        }
        answer => {
            answer?;
        }
    }
    Ok(())
}

/// The RP-initiated logout URL: `id_token_hint`, `client_id`, `post_logout_redirect_uri`
/// and a `state` that the landing page must echo. Handed to the browser through a
/// [`handoff::Handoff`], never on its command line.
pub fn end_session_url(
    endpoint: &Url,
    id_token: Option<&Secret>,
    client_id: &str,
    post_logout_redirect_uri: &str,
    state: &Secret,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(id_token) = id_token {
            q.append_pair("id_token_hint", id_token.expose());
        }
        q.append_pair("client_id", client_id)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("state", state.expose());
    }
    url
}

/// The provider's sign-out page (RP-Initiated Logout 1.0) as a link to give the person:
/// the client's id alone, no `id_token_hint` (a token on a terminal) and no redirect
/// (nothing waits for it); the provider asks the person to confirm.
pub fn end_session_link(endpoint: &Url, client_id: &str) -> Url {
    let mut url = endpoint.clone();
    url.query_pairs_mut().append_pair("client_id", client_id);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(promises_iss: bool) -> Provider {
        let metadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://id.example.com",
            "authorization_endpoint": "https://id.example.com/authorize",
            "token_endpoint": "https://id.example.com/token",
            "jwks_uri": "https://id.example.com/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            "authorization_response_iss_parameter_supported": promises_iss,
        }))
        .unwrap();
        Provider::from_metadata(
            http::Client::new().unwrap(),
            "https://id.example.com",
            metadata,
        )
        .unwrap()
    }

    fn request(response_type: ResponseType) -> AuthRequest {
        AuthRequest {
            url: Url::parse("https://id.example.com/authorize").unwrap(),
            response_type,
            redirect_uri: "http://127.0.0.1:1/callback".into(),
            state: Secret::new("s"),
            nonce: Secret::new("n"),
            verifier: Secret::new("v"),
        }
    }

    /// An accounts file with one account, `a`, at the provider above.
    fn config() -> crate::config::Config {
        crate::config::Config::parse(
            std::path::Path::new("/c.toml"),
            "[accounts.a]\nissuer = \"https://id.example.com\"\nclient_id = \"c\"\n",
        )
        .unwrap()
    }

    #[test]
    fn debug_output_keeps_state_nonce_and_code_out() {
        let config = config();
        let account = config.account("a").unwrap();
        let request = AuthRequest::new(
            &provider(true),
            account,
            "http://127.0.0.1:1/callback",
            &Overrides::default(),
        )
        .unwrap();
        let shown = format!("{request:?}");
        for secret in [&request.state, &request.nonce, &request.verifier] {
            assert!(!shown.contains(secret.expose()), "{shown}");
        }
        assert!(!shown.contains("code_challenge"), "{shown}");
        let params = Params(vec![
            ("code".into(), "the-code".into()),
            ("state".into(), "the-state".into()),
        ]);
        let shown = format!("{params:?}");
        assert!(
            !shown.contains("the-code") && !shown.contains("the-state"),
            "{shown}"
        );
        assert!(shown.contains("code"), "{shown}");
    }

    /// With a DPoP key, the request names its thumbprint (RFC 9449 section 10).
    #[test]
    fn the_dpop_key_is_named_in_the_request() {
        let config = config();
        let account = config.account("a").unwrap();
        let with = |dpop_jkt: Option<&str>| {
            let overrides = Overrides {
                dpop_jkt: dpop_jkt.map(str::to_owned),
                ..Overrides::default()
            };
            let request = AuthRequest::new(
                &provider(true),
                account,
                "http://127.0.0.1:1/cb",
                &overrides,
            )
            .unwrap();
            request
                .url
                .query_pairs()
                .find(|(k, _)| k == "dpop_jkt")
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(
            with(Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")).as_deref(),
            Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
        );
        assert_eq!(with(None), None);
    }

    #[test]
    fn signed_userinfo_names_the_provider_and_this_client() {
        let check = |claims: serde_json::Value| {
            signed_userinfo(claims.as_object().unwrap(), "https://id.example.com", "app")
        };
        let iss = "https://id.example.com";
        assert!(check(serde_json::json!({"sub": "a", "iss": iss, "aud": "app"})).is_ok());
        assert!(check(serde_json::json!({"sub": "a", "iss": iss, "aud": ["x", "app"]})).is_ok());
        for wrong in [
            serde_json::json!({"sub": "a", "aud": "app"}),
            serde_json::json!({"sub": "a", "iss": "https://evil.example", "aud": "app"}),
            serde_json::json!({"sub": "a", "iss": iss}),
            serde_json::json!({"sub": "a", "iss": iss, "aud": "other-client"}),
            serde_json::json!({"sub": "a", "iss": iss, "aud": ["other-client"]}),
        ] {
            assert!(check(wrong.clone()).is_err(), "{wrong}");
        }
    }

    /// RFC 9207: a present `iss` is always compared; a promised one must be there.
    #[test]
    fn the_issuer_of_the_response_is_checked_whenever_it_is_there() {
        let params = |iss: Option<&str>, artifact: &str| {
            let mut p = vec![(artifact.to_owned(), "x".to_owned())];
            if let Some(iss) = iss {
                p.push(("iss".into(), iss.into()));
            }
            Params(p)
        };
        let right = Some("https://id.example.com");
        let wrong = Some("https://evil.example");
        let cases = [
            // promised, iss, response type, accepted
            (true, right, ResponseType::Code, true),
            (true, None, ResponseType::Code, false),
            (true, wrong, ResponseType::Code, false),
            (true, None, ResponseType::IdToken, true),
            (true, wrong, ResponseType::IdToken, false),
            (false, None, ResponseType::Code, true),
            (false, right, ResponseType::Code, true),
            // Not promised, yet present and wrong: a mix-up all the same.
            (false, wrong, ResponseType::Code, false),
            (false, wrong, ResponseType::IdToken, false),
        ];
        for (promised, iss, response_type, accepted) in cases {
            let artifact = match response_type {
                ResponseType::Code => "code",
                ResponseType::IdToken => "id_token",
            };
            let got =
                request(response_type).check_response(&provider(promised), &params(iss, artifact));
            assert_eq!(
                got.is_ok(),
                accepted,
                "promised {promised}, iss {iss:?}, {artifact}: {got:?}"
            );
            if !accepted {
                assert!(matches!(got, Err(Error::IssuerMismatch { .. })), "{got:?}");
            }
        }
    }
}
