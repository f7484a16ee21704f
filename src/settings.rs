//! The vocabulary of an account's protocol settings: what the authorization response
//! carries, how it comes back, and how the client authenticates. The accounts file
//! (`config`), the presets (`preset`) and the flows share it; it depends on none of them.

use serde::Deserialize;

/// What the authorization response carries (OpenID Connect Core 3.1 and 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// An authorization code, redeemed with PKCE: access, refresh and ID tokens.
    Code,
    /// An ID token only: who the person is, and no token to call APIs with.
    IdToken,
}

/// How the browser brings the response back (OAuth 2.0 Multiple Response Types and
/// Form Post Response Mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
    Fragment,
}

impl ResponseType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::IdToken => "id_token",
        }
    }
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::FormPost => "form_post",
            ResponseMode::Fragment => "fragment",
        }
    }
}

/// How the client authenticates at the token endpoint (OpenID Connect Core 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    None,
    ClientSecretBasic,
    ClientSecretPost,
}
