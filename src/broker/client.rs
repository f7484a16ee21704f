//! A client of the agent, for Rust programs (and `lanyard token`'s fast path).
//!
//! ```no_run
//! # async fn example() -> Result<(), lanyard::broker::client::Error> {
//! let mut agent = lanyard::broker::Client::connect(&lanyard::broker::socket_path()).await?;
//! let token = agent.token("work", 60).await?;
//! # let _ = token; Ok(()) }
//! ```

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};

use crate::flow::Target;
use crate::platform::{self, ClientConnection, User};

use super::protocol::{
    self, AccountState, Code, ErrorBody, Identity, Op, Outcome, ProgressFrame, Request, Response,
    TokenReply,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No agent listens at the path: callers may fall back to direct mode.
    #[error("no agent is running at {0}")]
    NotRunning(String),
    /// The socket is served by another user: nothing it says can be trusted.
    #[error(
        "the agent at {path} runs as {user}, not as you ({own}): it is not your agent, so Lanyard will not talk to it; remove that socket, or set LANYARD_SOCK to your own agent's"
    )]
    WrongServer {
        path: String,
        user: String,
        own: String,
    },
    #[error("the agent's connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the agent sent something this client cannot read: {0}")]
    Protocol(String),
    #[error("{}{}", .0.message, .0.hint.as_deref().map(|h| format!("; run `{h}`")).unwrap_or_default())]
    Agent(ErrorBody),
}

impl Error {
    /// What this failure means to a caller (the exit code of `lanyard token`).
    pub fn kind(&self) -> crate::Kind {
        use crate::Kind;
        match self {
            Error::Agent(body) => match body.code {
                Code::ApprovalRequired
                | Code::Denied
                | Code::WrongUser
                | Code::NotAllowedFromHost => Kind::Denied,
                Code::SignInNeeded => Kind::SignInNeeded,
                Code::ProviderError => Kind::Provider,
                Code::Rejected | Code::SubjectChanged => Kind::Rejected,
                Code::KeychainUnavailable => Kind::Keychain,
                Code::UnknownAccount
                | Code::BadRequest
                | Code::NoAccessToken
                | Code::NotSupported => Kind::Config,
                _ => Kind::Other,
            },
            Error::WrongServer { .. } => Kind::Rejected,
            _ => Kind::Other,
        }
    }
}

impl From<Error> for crate::Error {
    fn from(e: Error) -> crate::Error {
        crate::Error::Agent {
            kind: e.kind(),
            source: Box::new(e),
        }
    }
}

pub struct Client {
    reader: BufReader<ReadHalf<ClientConnection>>,
    writer: WriteHalf<ClientConnection>,
    next_id: u64,
}

impl Client {
    /// Connects and says hello.
    pub async fn connect(path: &Path) -> Result<Client, Error> {
        let stream = platform::connect(path)
            .await
            .map_err(|e| connect_error(e, path))?;
        ours(platform::server_user(&stream)?, path)?;
        let (read, writer) = tokio::io::split(stream);
        let mut client = Client {
            reader: BufReader::new(read),
            writer,
            next_id: 1,
        };
        client
            .call::<Value>(Op::Hello {
                version: protocol::VERSION,
            })
            .await?;
        Ok(client)
    }

    pub async fn token(&mut self, account: &str, min_valid: u64) -> Result<TokenReply, Error> {
        self.token_for(account, min_valid, &Target::default()).await
    }

    /// A narrower token: fewer scopes, or one of the account's resources as audience.
    pub async fn token_for(
        &mut self,
        account: &str,
        min_valid: u64,
        target: &Target,
    ) -> Result<TokenReply, Error> {
        self.call(token_op(account, min_valid, target, false)).await
    }

    /// [`Client::token_for`] for a caller that can wait for a sign-in: when the account
    /// needs one, the agent brings the person back (one sign-in however many wait),
    /// telling `progress` while it waits, and then answers.
    pub async fn token_signing_in(
        &mut self,
        account: &str,
        min_valid: u64,
        target: &Target,
        progress: &mut (dyn FnMut(protocol::Progress) + Send),
    ) -> Result<TokenReply, Error> {
        let op = token_op(account, min_valid, target, true);
        self.call_with_progress(op, progress).await
    }

    /// The account's token with a DPoP proof for `request` (`proof`).
    pub async fn proof(
        &mut self,
        account: &str,
        request: protocol::ProofRequest,
    ) -> Result<protocol::ProofReply, Error> {
        self.call(Op::Proof {
            account: account.to_owned(),
            method: request.method,
            url: request.url,
            nonce: request.nonce,
            min_valid: request.min_valid,
        })
        .await
    }

    /// The account's ID token, valid for at least `min_valid` more seconds (`id_token`;
    /// needs the account's ID-token grant).
    pub async fn id_token(
        &mut self,
        account: &str,
        min_valid: u64,
    ) -> Result<protocol::IdTokenReply, Error> {
        self.call(Op::IdToken {
            account: account.to_owned(),
            min_valid,
        })
        .await
    }

    /// A token for the account's client itself (`client_credentials`).
    pub async fn client_credentials(
        &mut self,
        account: &str,
        scope: Option<&str>,
    ) -> Result<TokenReply, Error> {
        self.call(Op::ClientCredentials {
            account: account.to_owned(),
            scope: scope.map(str::to_owned),
        })
        .await
    }

    pub async fn accounts(&mut self) -> Result<Vec<AccountState>, Error> {
        self.call(Op::Accounts).await
    }

    pub async fn identity(&mut self, account: &str) -> Result<Identity, Error> {
        self.call(Op::Identity {
            account: account.to_owned(),
        })
        .await
    }

    /// Ends the connection and waits for the agent to close its side: what the agent
    /// holds for this connection (a host's sockets, after `forward`) is gone on return.
    pub async fn close(mut self) -> Result<(), Error> {
        use tokio::io::AsyncReadExt as _;
        self.writer.shutdown().await?;
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).await?;
        Ok(())
    }

    /// Sends one request and reads its response.
    pub async fn call<T: DeserializeOwned>(&mut self, op: Op) -> Result<T, Error> {
        self.call_with_progress(op, &mut |_| {}).await
    }

    /// Sends one request and reads its response, handing the progress frames that come
    /// before it (`login`, `logout`) to `progress`.
    pub async fn call_with_progress<T: DeserializeOwned>(
        &mut self,
        op: Op,
        progress: &mut (dyn FnMut(protocol::Progress) + Send),
    ) -> Result<T, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer
            .write_all(&protocol::encode(&Request { id, op }))
            .await?;
        loop {
            let mut line = String::new();
            let read = self.reader.read_line(&mut line).await?;
            if read > 0
                && line.contains("\"progress\"")
                && let Ok(frame) = serde_json::from_str::<ProgressFrame>(&line)
                && frame.id == id
            {
                progress(frame.progress);
                continue;
            }
            return answer(read, &line);
        }
    }
}

fn token_op(account: &str, min_valid: u64, target: &Target, sign_in: bool) -> Op {
    Op::Token {
        account: account.to_owned(),
        min_valid,
        scope: target.scope.clone(),
        audience: target.audience.clone(),
        exchange: target.exchange,
        sign_in,
    }
}

/// One token from the agent, blocking, in a single round trip: `hello` and `token` are
/// written together. This is `lanyard token`'s fast path, which runs before any runtime
/// or logging is set up.
pub fn token_blocking(path: &Path, account: &str, min_valid: u64) -> Result<TokenReply, Error> {
    use std::io::{BufRead as _, Write as _};
    let stream = platform::connect_blocking(path).map_err(|e| connect_error(e, path))?;
    ours(platform::blocking_server_user(&stream)?, path)?;
    let mut frames = protocol::encode(&Request {
        id: 1,
        op: Op::Hello {
            version: protocol::VERSION,
        },
    });
    frames.extend(protocol::encode(&Request {
        id: 2,
        op: Op::Token {
            account: account.to_owned(),
            min_valid,
            scope: None,
            audience: None,
            exchange: false,
            sign_in: false,
        },
    }));
    (&stream).write_all(&frames)?;
    let mut reader = std::io::BufReader::new(&stream);
    let mut line = String::new();
    let read = reader.read_line(&mut line)?;
    answer::<Value>(read, &line)?;
    line.clear();
    let read = reader.read_line(&mut line)?;
    answer(read, &line)
}

impl protocol::Progress {
    /// The library's progress, for a front end that renders both the same way.
    pub fn as_session(&self) -> crate::session::Progress<'_> {
        use crate::session::Progress as P;
        match self {
            protocol::Progress::BrowserOpened { url } => P::BrowserOpened { url },
            protocol::Progress::OpenYourself { url, reason } => P::OpenYourself {
                url,
                reason: reason.clone(),
            },
            protocol::Progress::DeviceCode {
                user_code,
                verification_uri,
                verification_uri_complete,
                expires_in,
            } => P::DeviceCode {
                user_code,
                verification_uri,
                verification_uri_complete: verification_uri_complete.as_deref(),
                expires_in: std::time::Duration::from_secs(*expires_in),
            },
            protocol::Progress::Waiting => P::Waiting,
            protocol::Progress::Finishing => P::Finishing,
        }
    }
}

impl From<TokenReply> for crate::session::AccessToken {
    /// A token the agent handed out; it refreshes on its own side, and says why in
    /// `warning` when the token is not what was asked for.
    fn from(reply: TokenReply) -> crate::session::AccessToken {
        crate::session::AccessToken {
            token: crate::secret::Secret::new(reply.access_token),
            expires_at: reply.expires_at,
            refreshed: false,
            warning: reply.warning,
            refresh_failed: None,
            dpop: reply.token_type.eq_ignore_ascii_case("dpop"),
        }
    }
}

/// The agent must run as this user: a socket another user serves (one made first in a
/// shared directory) could hand out forged tokens or learn what is asked.
fn ours(user: User, path: &Path) -> Result<(), Error> {
    let own = platform::own_user();
    if user == own {
        return Ok(());
    }
    Err(Error::WrongServer {
        path: path.display().to_string(),
        user: user.to_string(),
        own: own.to_string(),
    })
}

fn connect_error(e: std::io::Error, path: &Path) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            Error::NotRunning(path.display().to_string())
        }
        _ => Error::Io(e),
    }
}

/// Reads one response line (`read` bytes long; 0 means the agent hung up).
fn answer<T: DeserializeOwned>(read: usize, line: &str) -> Result<T, Error> {
    if read == 0 {
        return Err(Error::Protocol("the agent closed the connection".into()));
    }
    let response: Response =
        serde_json::from_str(line).map_err(|e| Error::Protocol(e.to_string()))?;
    match response.outcome {
        Outcome::Ok(value) => {
            serde_json::from_value(value).map_err(|e| Error::Protocol(e.to_string()))
        }
        Outcome::Error(body) => Err(Error::Agent(body)),
    }
}
