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
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::protocol::{
    self, AccountState, ErrorBody, Identity, Op, Outcome, Request, Response, TokenReply,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No agent listens at the path: callers may fall back to direct mode.
    #[error("no agent is running at {0}")]
    NotRunning(String),
    #[error("the agent's connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the agent sent something this client cannot read: {0}")]
    Protocol(String),
    #[error("{}{}", .0.message, .0.hint.as_deref().map(|h| format!("; run `{h}`")).unwrap_or_default())]
    Agent(ErrorBody),
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    /// Connects and says hello.
    pub async fn connect(path: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    Error::NotRunning(path.display().to_string())
                }
                _ => Error::Io(e),
            })?;
        let (read, writer) = stream.into_split();
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
        self.call(Op::Token {
            account: account.to_owned(),
            min_valid,
            scope: None,
            audience: None,
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

    /// Sends one request and reads its response.
    pub async fn call<T: DeserializeOwned>(&mut self, op: Op) -> Result<T, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer
            .write_all(&protocol::encode(&Request { id, op }))
            .await?;
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(Error::Protocol("the agent closed the connection".into()));
        }
        let response: Response =
            serde_json::from_str(&line).map_err(|e| Error::Protocol(e.to_string()))?;
        match response.outcome {
            Outcome::Ok(value) => {
                serde_json::from_value(value).map_err(|e| Error::Protocol(e.to_string()))
            }
            Outcome::Error(body) => Err(Error::Agent(body)),
        }
    }
}
