//! What the agent sends back: a [`Response`] to each request (its value, or an error),
//! progress frames before a `login` or `logout` answers, and events to subscribers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Code, ErrorBody};

/// While a `login` or `logout` runs, before its answer:
/// `{"id": 3, "progress": {"stage": "open_yourself", "url": "http://127.0.0.1:…"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressFrame {
    pub id: u64,
    pub progress: Progress,
}

/// Where a sign-in or sign-out stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Progress {
    /// The browser has the page; `url` is safe to show (no query).
    BrowserOpened { url: String },
    /// The person must open `url` (Lanyard's one-time page on 127.0.0.1).
    OpenYourself {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The person signs in on another device with this code.
    DeviceCode {
        user_code: String,
        verification_uri: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verification_uri_complete: Option<String>,
        /// Seconds.
        expires_in: u64,
    },
    /// Waiting for the person.
    Waiting,
    /// The browser came back: checking and storing.
    Finishing,
}

/// A response: `{"id": 1, "ok": {...}}` or `{"id": 1, "error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id; 0 when the request could not be read at all.
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Value),
    Error(ErrorBody),
}

/// What `token` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenReply {
    pub access_token: String,
    pub token_type: String,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    /// Why the token is not what was asked for: it lives shorter than `min_valid`, or the
    /// refresh failed and this is the current token, still valid for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What `id_token` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenReply {
    pub id_token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// What `proof` answers: the token, and the proof to send with it in the `DPoP` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProofReply {
    pub access_token: String,
    pub token_type: String,
    pub expires_at: Option<u64>,
    pub proof: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What `accounts` answers, one per account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    pub account: String,
    pub issuer: String,
    /// `signed_in`, `sign_in_needed` or `signed_out`.
    pub status: String,
    pub subject: Option<String>,
    pub expires_at: Option<u64>,
}

/// An event, sent to subscribers as `{"event": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    SignedIn {
        account: String,
    },
    SignedOut {
        account: String,
    },
    Refreshed {
        account: String,
        expires_at: Option<u64>,
    },
    SignInNeeded {
        account: String,
        reason: String,
        /// The app whose request found it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app: Option<String>,
    },
    ApprovalNeeded {
        account: String,
        app: String,
        pid: i32,
    },
    /// A decision on an app's request, as the audit log records it (repeated allowances
    /// at most once a minute): `allowed`, `allowed_once`, `denied`, `approval_required`.
    Access {
        account: String,
        app: String,
        decision: String,
        time: u64,
    },
}

/// One line on the wire, for events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    pub event: Event,
}

/// Identity as `identity` answers it: the claims, never a token.
pub type Identity = Map<String, Value>;

impl Response {
    pub fn ok(id: u64, value: impl Serialize) -> Response {
        Response {
            id,
            outcome: Outcome::Ok(
                serde_json::to_value(value).expect("protocol values serialise to JSON"),
            ),
        }
    }

    pub fn error(id: u64, code: Code, message: impl Into<String>) -> Response {
        Response {
            id,
            outcome: Outcome::Error(ErrorBody {
                code,
                message: message.into(),
                hint: None,
            }),
        }
    }
}
