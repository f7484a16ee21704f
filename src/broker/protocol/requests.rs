//! What clients send: a [`Request`] is an `id` and an [`Op`].

use serde::{Deserialize, Serialize};

/// A request: `{"id": 1, "op": "token", "account": "work", "min_valid": 60}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Must come first on a connection.
    Hello { version: u32 },
    /// The accounts the agent holds, with their state. No approval needed.
    Accounts,
    /// Who is signed in to an account. Needs the caller's approval for the account.
    Identity { account: String },
    /// An access token valid for at least `min_valid` seconds. Needs approval.
    Token {
        account: String,
        #[serde(default = "default_min_valid")]
        min_valid: u64,
        /// Down-scoping: the token must carry only these scopes (space-separated).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
        /// Token exchange (RFC 8693): the account's token exchanged for one aimed at
        /// `audience`, rather than a narrower refresh.
        #[serde(default, skip_serializing_if = "is_false")]
        exchange: bool,
        /// The caller can wait for a sign-in (a person at a terminal, kubectl's
        /// interactive mode): when the account needs one, the agent runs it (one per
        /// account, however many wait), sending a `waiting` progress frame, and then
        /// answers. Ignored from a remote host. Without it, `sign_in_needed` at once.
        #[serde(default, skip_serializing_if = "is_false")]
        sign_in: bool,
    },
    /// The account's ID token, valid for at least `min_valid` more seconds (refreshed
    /// when it is not), for the cloud commands (`aws-credentials`, `gcp-credential`).
    /// Needs the account's ID-token grant (`lanyard allow ACCOUNT APP --id-token`): an ID
    /// token is the person's identity, not an API credential.
    IdToken {
        account: String,
        #[serde(default = "default_min_valid")]
        min_valid: u64,
    },
    /// A token for the account's confidential client itself (client credentials grant),
    /// with these scopes (space-separated) if given. Needs approval for the account.
    ClientCredentials {
        account: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
    /// Sign in, run by the agent (in the browser, or with the device flow). Progress
    /// frames for this `id` come before the answer. No approval needed: the person must
    /// finish the sign-in themselves, and the answer names the subject only to an app
    /// allowed the account.
    Login {
        account: String,
        /// Open the browser (the default), or only say which page to open.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        open_browser: bool,
        /// `login`: the provider must ask for credentials again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        /// The device authorization grant (RFC 8628) instead of the browser.
        #[serde(default, skip_serializing_if = "is_false")]
        device: bool,
        /// Give up after this many seconds [default: 300].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
        /// The sign-in may come back as another person than the account's; without it,
        /// such a sign-in is refused (`subject_changed`) and stores nothing.
        #[serde(default, skip_serializing_if = "is_false")]
        as_new_user: bool,
    },
    /// Sign out (revoke, forget, end the provider session unless `local`), run by the
    /// agent, with progress frames while the provider's sign-out page is open. No approval
    /// needed (any program of the user's can delete the keychain item); it is audited.
    Logout {
        account: String,
        #[serde(default)]
        local: bool,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        open_browser: bool,
    },
    /// From now on, this connection receives events.
    Subscribe,
    /// The account's own access token with a DPoP proof (RFC 9449) for one request:
    /// `method` at `url`, with the resource server's `nonce` if it sent one. Needs
    /// approval; only for accounts whose tokens are DPoP-bound.
    Proof {
        account: String,
        method: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// The token must stay valid this many more seconds.
        #[serde(default = "default_min_valid")]
        min_valid: u64,
    },
    /// Sockets of the remote host `host`'s own, for `lanyard ssh` to forward over ssh;
    /// answered with their paths (`socket`, `oidc_socket`). The connection then carries
    /// nothing more, and the sockets close with it. Requests through them are named
    /// `ssh:HOST`. Taken from the `lanyard` command line only.
    Forward { host: String },
    /// Kiosk only: end the seat session now (sign everyone out, completely). For the
    /// center's seat software, when the seat's time is up.
    EndSession,
}

fn default_min_valid() -> u64 {
    60
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The request a `proof` is for (the fields of [`Op::Proof`] but the account).
#[derive(Debug, Clone, PartialEq)]
pub struct ProofRequest {
    pub method: String,
    pub url: String,
    pub nonce: Option<String>,
    pub min_valid: u64,
}
