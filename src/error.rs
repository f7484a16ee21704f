//! The library's top-level error and the exit codes scripts can rely on.
//!
//! Each module has its own error enum; [`Error`] takes them in and sorts them into a
//! [`Kind`], which is what the CLI turns into an exit code and what the broker turns into
//! a wire error code; an app acts on it too. Messages are lowercase, name what failed, say what to do
//! next where there is something to do, and never contain a secret.

use crate::{browser, config, discovery, flow, store, validate};

/// Every failure of the library. Its message says what failed and what to do next;
/// [`Error::kind`] sorts it for code. New variants may come: match on the kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider's settings (or the accounts file) are not valid.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// The provider's discovery document could not be fetched, or failed its checks.
    #[error("discovery of {issuer}: {source}")]
    Discovery {
        /// The issuer whose discovery failed.
        issuer: String,
        /// What failed.
        #[source]
        source: discovery::Error,
    },
    /// The loopback redirect's listener failed, or the browser never came back.
    #[error(transparent)]
    Loopback(#[from] flow::loopback::Error),
    /// A protocol exchange with the provider failed (the authorization response, the
    /// code exchange, a refresh, revocation).
    #[error(transparent)]
    Flow(#[from] flow::Error),
    /// An ID token failed validation.
    #[error("the ID token was rejected, {0}")]
    Rejected(validate::Error),
    /// The provider's signing keys could not be fetched.
    #[error("cannot fetch the provider's keys: {0}")]
    Keys(crate::http::Error),
    /// The userinfo endpoint failed, or its answer failed a check.
    #[error("userinfo: {0}")]
    Userinfo(#[from] flow::UserinfoError),
    /// The keychain or the record files failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// No browser could be started.
    #[error(transparent)]
    Browser(#[from] browser::Error),
    #[error(
        "{account} signs in with response_type = \"id_token\": the provider hands out an ID token (who you are) and no access token to call APIs with; to get access tokens, set response_type = \"code\" for the account"
    )]
    /// The account's sign-in yields no access token (`response_type = "id_token"`).
    NoAccessToken {
        /// The account.
        account: String,
    },
    #[error(
        "{account} comes back from the browser through the private-use scheme {uri}, which only the Lanyard desktop app receives: sign in from the app, or set redirect = \"loopback\" for the account"
    )]
    /// The account's redirect is a private-use scheme that only the desktop app receives.
    SchemeNeedsApp {
        /// The account.
        account: String,
        /// Its redirect URI.
        uri: String,
    },
    #[error(
        "{account}: `{audience}` is not among the account's resources; add it to `resources` in the accounts file and sign in again"
    )]
    /// A token was asked for an audience the account does not list.
    UnknownAudience {
        /// The account.
        account: String,
        /// The audience asked for.
        audience: String,
    },
    /// AWS STS refused the account's ID token, or could not be reached.
    #[error(transparent)]
    Sts(Box<StsError>),
    /// A pasted sign-in (`lanyard login --paste`) was asked of an account whose redirect
    /// is a private-use scheme: only the loopback's address can be pasted.
    #[error(
        "{account} comes back from the browser through the private-use scheme {uri}, not the loopback, so there is no address to paste: use `lanyard login {account} --device` where the provider offers it, or set redirect = \"loopback\" for the account"
    )]
    PasteNeedsLoopback {
        /// The account.
        account: String,
        /// Its redirect URI.
        uri: String,
    },
    #[error(
        "{account}: the sign-in was not granted {scopes}; a narrower token can have only scopes granted at sign-in ({granted})"
    )]
    /// A narrower token was asked for scopes the sign-in was not granted.
    ScopeNotGranted {
        /// The account.
        account: String,
        /// The scopes asked for.
        scopes: String,
        /// The scopes granted at sign-in.
        granted: String,
    },
    /// A sign-in came back as another person than the one the account is signed in as
    /// (another `sub`, or another issuer). Nothing was stored, and what the provider
    /// issued was revoked.
    #[error(
        "{account} is {was}, but this sign-in came back as {now}: nothing was kept; to sign in to {account} as someone else on purpose, run `lanyard login {account} --as-new-user` (or `lanyard logout {account}` first)"
    )]
    SubjectChanged {
        /// The account.
        account: String,
        /// Who it is signed in as (subject at issuer).
        was: String,
        /// Who the sign-in came back as.
        now: String,
    },
    #[error("{account} is signing in already; finish that sign-in in the browser, or cancel it")]
    /// A sign-in of the account is already under way.
    SignInUnderWay {
        /// The account.
        account: String,
    },
    #[error("{account}: sign-in needed: {reason}; run `lanyard login {account}`")]
    /// The account has no usable sign-in: the person must sign in again.
    SignInNeeded {
        /// The account.
        account: String,
        /// Why (never signed in, refresh token revoked or expired, …).
        reason: String,
    },
    /// An app's sign-in ([`crate::client`]) is gone: the person must sign in again.
    #[error("sign-in needed: {reason}; sign in again")]
    SignInAgain {
        /// Why (never signed in, refresh token revoked or expired, …).
        reason: String,
    },
    /// A failure talking to the agent, or the agent's own answer; `kind` is what it means
    /// here (see `broker::client::Error::kind`).
    #[error("the agent: {source}")]
    Agent {
        /// What the failure means here.
        kind: Kind,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The broker's socket or pipe could not be made.
    #[error(transparent)]
    Bind(#[from] crate::platform::BindError),
    #[error(
        "{account}: refreshing the access token failed ({source}); the refresh token is kept, try again later"
    )]
    /// A refresh failed; the refresh token is kept.
    RefreshFailed {
        /// The account.
        account: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// Another process's refresh of the account failed while this one waited for it.
    #[error("{message}")]
    RefreshFailedMeanwhile {
        /// The account.
        account: String,
        /// The other process's failure, as it said it.
        message: String,
    },
    #[error("there is no preset `{preset}`; known: {known}")]
    /// [`crate::client::Provider::preset`] was given an unknown preset.
    UnknownPreset {
        /// The name given.
        preset: String,
        /// The presets there are.
        known: String,
    },
    #[error(
        "a client secret is kept in the keychain: use keychain storage (Storage::keychain) to set one"
    )]
    /// A client secret was set on a client that keeps its sign-in in memory.
    SecretNeedsKeychain,
    /// A URL handed to the app (its private-use scheme) that no sign-in waits for.
    #[error("ignored a link: {0}")]
    LinkRefused(String),
    /// A command was asked for something it cannot do (an argument that cannot work).
    #[error("{message}")]
    Usage {
        /// What the failure means here.
        kind: Kind,
        /// What failed, and what to do.
        message: String,
    },
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
    /// The exit code the `lanyard` command (and an app's command line) uses for it.
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
    /// What kind of failure this is: what the app's code acts on.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config(_) => Kind::Config,
            Error::Discovery { source, .. } => match source {
                // The settings' issuer differs by a trailing slash: the settings to fix.
                discovery::Error::IssuerMismatch { expected, got }
                    if expected.trim_end_matches('/') == got.trim_end_matches('/') =>
                {
                    Kind::Config
                }
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
                | flow::Error::HandoffStolen
                | flow::Error::PastedStateMismatch => Kind::Rejected,
                flow::Error::NotTheRedirect { .. } => Kind::Incomplete,
                flow::Error::NoSecret { .. } | flow::Error::NoAuthMethod { .. } => Kind::Config,
                flow::Error::Random | flow::Error::Dpop(_) => Kind::Other,
                // The provider does not know the client, or not as it authenticated: the
                // settings are wrong, and asking again will not help.
                flow::Error::Http(e)
                    if matches!(
                        e.oauth_error(),
                        Some("invalid_client" | "unauthorized_client")
                    ) =>
                {
                    Kind::Config
                }
                flow::Error::NoRequestUri
                | flow::Error::NoCode(_)
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
            Error::PasteNeedsLoopback { .. } => Kind::Config,
            Error::SubjectChanged { .. } => Kind::Rejected,
            Error::Sts(e) => match **e {
                StsError::Refused { .. } => Kind::Denied,
                _ => Kind::Provider,
            },
            Error::SignInNeeded { .. } | Error::SignInAgain { .. } => Kind::SignInNeeded,
            Error::NoAccessToken { .. }
            | Error::UnknownAudience { .. }
            | Error::ScopeNotGranted { .. }
            | Error::SchemeNeedsApp { .. } => Kind::Config,
            Error::RefreshFailed { source, .. } => source.kind(),
            Error::RefreshFailedMeanwhile { .. } => Kind::Provider,
            Error::Agent { kind, .. } | Error::Usage { kind, .. } => *kind,
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

/// A failure of STS, as it said it.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    /// STS refused (its error code and message).
    #[error("AWS STS refused AssumeRoleWithWebIdentity: {code}: {message}")]
    Refused {
        /// STS's code (`InvalidIdentityToken`, `AccessDenied`, …).
        code: String,
        /// Its message.
        message: String,
    },
    /// The answer was not what STS answers.
    #[error("AWS STS answered something unexpected: {0}")]
    Garbled(String),
    /// The request did not get through.
    #[error("AWS STS: {0}")]
    Http(#[from] crate::http::Error),
}
