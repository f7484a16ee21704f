//! The library's top-level error and the exit codes scripts can rely on.
//!
//! Each module has its own error enum; [`Error`] takes them in and sorts them into a
//! [`Kind`], which is what the CLI turns into an exit code and what the broker (later) will
//! turn into a wire error code. Messages are lowercase, name what failed, say what to do
//! next where there is something to do, and never contain a secret.

use crate::{browser, config, discovery, flow, store, validate};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("discovery of {issuer}: {source}")]
    Discovery {
        issuer: String,
        #[source]
        source: discovery::Error,
    },
    #[error(transparent)]
    Loopback(#[from] flow::loopback::Error),
    #[error(transparent)]
    Flow(#[from] flow::Error),
    #[error("the ID token was rejected, {0}")]
    Rejected(validate::Error),
    #[error("cannot fetch the provider's keys: {0}")]
    Keys(crate::http::Error),
    #[error("userinfo: {0}")]
    Userinfo(#[from] flow::UserinfoError),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Browser(#[from] browser::Error),
    #[error(
        "{account} signs in with response_type = \"id_token\": the provider hands out an ID token (who you are) and no access token to call APIs with; to get access tokens, set response_type = \"code\" for the account"
    )]
    NoAccessToken { account: String },
    #[error(
        "{account} comes back from the browser through the private-use scheme {uri}, which only the Lanyard desktop app receives: sign in from the app, or set redirect = \"loopback\" for the account"
    )]
    SchemeNeedsApp { account: String, uri: String },
    #[error(
        "{account}: `{audience}` is not among the account's resources; add it to `resources` in the accounts file and sign in again"
    )]
    UnknownAudience { account: String, audience: String },
    #[error(
        "{account}: the sign-in was not granted {scopes}; a narrower token can have only scopes granted at sign-in ({granted})"
    )]
    ScopeNotGranted {
        account: String,
        scopes: String,
        granted: String,
    },
    #[error("{account} is signing in already; finish that sign-in in the browser, or cancel it")]
    SignInUnderWay { account: String },
    #[error("{account}: sign-in needed: {reason}; run `lanyard login {account}`")]
    SignInNeeded { account: String, reason: String },
    /// An app's sign-in ([`crate::client`]) is gone: the person must sign in again.
    #[error("sign-in needed: {reason}; sign in again")]
    SignInAgain { reason: String },
    /// A failure talking to the agent, or the agent's own answer; `kind` is what it means
    /// here (see `broker::client::Error::kind`).
    #[error("the agent: {source}")]
    Agent {
        kind: Kind,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Bind(#[from] crate::platform::BindError),
    #[error(
        "{account}: refreshing the access token failed ({source}); the refresh token is kept, try again later"
    )]
    RefreshFailed {
        account: String,
        #[source]
        source: Box<Error>,
    },
    /// Another process's refresh of the account failed while this one waited for it.
    #[error("{message}")]
    RefreshFailedMeanwhile { account: String, message: String },
    #[error("there is no preset `{preset}`; known: {known}")]
    UnknownPreset { preset: String, known: String },
    #[error(
        "a client secret is kept in the keychain: use keychain storage (Storage::keychain) to set one"
    )]
    SecretNeedsKeychain,
    /// A URL handed to the app (its private-use scheme) that no sign-in waits for.
    #[error("ignored a link: {0}")]
    LinkRefused(String),
}

/// What kind of failure, for exit codes and wire error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad configuration or arguments. Exit 2.
    Config,
    /// No usable sign-in; the person must sign in again. Exit 3.
    SignInNeeded,
    /// The provider or the network failed; trying again may work. Exit 4.
    Provider,
    /// A token or response failed a security check. Exit 5.
    Rejected,
    /// The OS keychain is missing, locked or failing. Exit 6.
    Keychain,
    /// The sign-in did not complete: timed out, cancelled, or refused at the provider. Exit 7.
    Incomplete,
    /// The agent refused this app (approval required, or denied). Exit 8.
    Denied,
    /// Anything else. Exit 1.
    Other,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Other => 1,
            Kind::Config => 2,
            Kind::SignInNeeded => 3,
            Kind::Provider => 4,
            Kind::Rejected => 5,
            Kind::Keychain => 6,
            Kind::Incomplete => 7,
            Kind::Denied => 8,
        }
    }
}

impl Error {
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config(_) => Kind::Config,
            Error::Discovery { source, .. } => match source {
                discovery::Error::IssuerMismatch { .. } => Kind::Rejected,
                _ => Kind::Provider,
            },
            Error::Loopback(flow::loopback::Error::Timeout(_)) => Kind::Incomplete,
            Error::Loopback(_) => Kind::Other,
            Error::Flow(e) => match e {
                flow::Error::Refused { .. } | flow::Error::DeviceExpired => Kind::Incomplete,
                flow::Error::Device(_) => Kind::Provider,
                flow::Error::IssuerMismatch { .. }
                | flow::Error::Introspection(_)
                | flow::Error::HandoffStolen => Kind::Rejected,
                flow::Error::NoSecret { .. } | flow::Error::NoAuthMethod { .. } => Kind::Config,
                flow::Error::Random => Kind::Other,
                flow::Error::NoCode(_)
                | flow::Error::NoIdToken
                | flow::Error::TokenType(_)
                | flow::Error::Http(_) => Kind::Provider,
            },
            Error::Rejected(_) => Kind::Rejected,
            Error::Keys(_) => Kind::Provider,
            Error::Userinfo(
                flow::UserinfoError::Signature(crate::discovery::VerifyError::Invalid(_))
                | flow::UserinfoError::Claims(_)
                | flow::UserinfoError::Issuer { .. }
                | flow::UserinfoError::Audience { .. },
            ) => Kind::Rejected,
            Error::Userinfo(_) => Kind::Provider,
            Error::Store(store::Error::Unavailable { .. } | store::Error::Failed(_)) => {
                Kind::Keychain
            }
            Error::Store(store::Error::State { .. }) => Kind::Other,
            Error::Browser(_) | Error::SignInUnderWay { .. } => Kind::Other,
            Error::SignInNeeded { .. } | Error::SignInAgain { .. } => Kind::SignInNeeded,
            Error::NoAccessToken { .. }
            | Error::UnknownAudience { .. }
            | Error::ScopeNotGranted { .. }
            | Error::SchemeNeedsApp { .. } => Kind::Config,
            Error::RefreshFailed { source, .. } => source.kind(),
            Error::RefreshFailedMeanwhile { .. } => Kind::Provider,
            Error::Agent { kind, .. } => *kind,
            Error::Bind(_) => Kind::Other,
            Error::UnknownPreset { .. } | Error::SecretNeedsKeychain => Kind::Config,
            Error::LinkRefused(_) => Kind::Rejected,
        }
    }
}

impl From<discovery::VerifyError> for Error {
    fn from(e: discovery::VerifyError) -> Error {
        match e {
            discovery::VerifyError::Invalid(e) => Error::Rejected(e),
            discovery::VerifyError::Keys(e) => Error::Keys(e),
        }
    }
}

impl From<validate::Error> for Error {
    fn from(e: validate::Error) -> Error {
        Error::Rejected(e)
    }
}
