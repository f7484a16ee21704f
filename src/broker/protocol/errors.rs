//! The errors on the wire: a stable [`Code`], a message, and the command that resolves it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: Code,
    pub message: String,
    /// A command that resolves the error, where there is one (`lanyard allow …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Stable error codes. New codes may be added; clients treat unknown ones as `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    BadRequest,
    FrameTooLarge,
    UnsupportedVersion,
    HelloFirst,
    WrongUser,
    UnknownAccount,
    ApprovalRequired,
    Denied,
    SignInNeeded,
    NoAccessToken,
    ProviderError,
    Rejected,
    KeychainUnavailable,
    NotSupported,
    /// The agent serves as many connections as it will; try again.
    Busy,
    /// A remote host (`lanyard ssh`) asked for what only the desktop itself may do.
    NotAllowedFromHost,
    /// A sign-in came back as another person (or from another issuer) than the account's.
    SubjectChanged,
    Internal,
    #[serde(other)]
    Unknown,
}
