//! oidc-agent's IPC, so that oidc-agent's clients (`oidc-token`, liboidc-agent) work
//! unchanged against Lanyard with `OIDC_SOCK` pointing at this socket.
//!
//! Its protocol has no framing: one request per connection, one write each way. A request
//! is either a JSON object (plain) or, as liboidc-agent sends it, a base64 X25519 public
//! key; the agent answers with its own, both derive `crypto_box_beforenm`, and the request
//! and answer travel as `"<plaintext length>:<base64 nonce>:<base64 secretbox>"`. Requests
//! `access_token`, `loaded_accounts` and `id_token` are served by the same [`Agent`] and
//! the same approval policy; account names are Lanyard's.

use std::future::Future;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_box::aead::{Aead, AeadCore, OsRng};
use crypto_box::{PublicKey, SalsaBox, SecretKey};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::accept::{self, Limits};
use super::agent::Agent;
use super::peer::Peer;
use super::server::{self, FRAME_TIMEOUT};
use crate::platform::{self, Connection, Listener, User};

const MAX_MESSAGE: usize = 64 * 1024;

/// Serves oidc-agent clients until `shutdown` completes.
pub async fn run(listener: Listener, agent: Agent, shutdown: impl Future<Output = ()>) {
    let user = platform::own_user();
    let clis = agent.clis().clone();
    accept::accept(listener, &clis, limits(), shutdown, move |stream, peer| {
        serve(stream, peer, agent.clone(), user.clone())
    })
    .await;
}

/// As many connections as the agent's own socket serves at once.
pub(super) fn limits() -> Limits {
    Limits {
        max: server::MAX_CONNECTIONS,
        busy: failure("the agent is serving as many connections as it will; try again")
            .to_string()
            .into_bytes(),
        parent: false,
    }
}

/// One oidc-agent request from `peer`, and its answer.
pub(super) async fn serve(
    mut stream: Connection,
    peer: std::io::Result<Peer>,
    agent: Agent,
    user: User,
) {
    let peer = match peer {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot identify a client; closing");
            return;
        }
    };
    let Some(first) = read_message(&mut stream, |m| is_json(m) || public_key(m).is_some()).await
    else {
        return;
    };
    if peer.user != user {
        let _ = stream
            .write_all(
                failure("this agent serves its own user only")
                    .to_string()
                    .as_bytes(),
            )
            .await;
        return;
    }
    if is_json(&first) {
        let request: Value = serde_json::from_slice(&first).unwrap_or_default();
        let answer = handle(&agent, &request, &peer).await;
        let _ = stream.write_all(answer.to_string().as_bytes()).await;
        return;
    }
    // The encrypted variant: exchange keys, then one sealed request and one sealed answer.
    let Some(client_key) = public_key(&first) else {
        return;
    };
    let secret = SecretKey::generate(&mut OsRng);
    let own_key = B64.encode(secret.public_key().as_bytes());
    if stream.write_all(own_key.as_bytes()).await.is_err() {
        return;
    }
    let sealed = SalsaBox::new(&client_key, &secret);
    let Some(message) = read_message(&mut stream, |m| open(&sealed, m).is_some()).await else {
        return;
    };
    let Some(plain) = open(&sealed, &message) else {
        return;
    };
    let request: Value = serde_json::from_slice(&plain).unwrap_or_default();
    let answer = handle(&agent, &request, &peer).await.to_string();
    let nonce = SalsaBox::generate_nonce(&mut OsRng);
    let Ok(cipher) = sealed.encrypt(&nonce, answer.as_bytes()) else {
        return;
    };
    let reply = format!(
        "{}:{}:{}",
        answer.len(),
        B64.encode(nonce),
        B64.encode(cipher)
    );
    let _ = stream.write_all(reply.as_bytes()).await;
}

pub(super) async fn handle(agent: &Agent, request: &Value, peer: &Peer) -> Value {
    let field = |k: &str| request.get(k).and_then(Value::as_str);
    match field("request") {
        // Which accounts are signed in is the desktop's to know, not a remote host's.
        Some("loaded_accounts") if peer.remote => {
            failure(&server::not_allowed_from_host(peer).message)
        }
        Some("loaded_accounts") => {
            let names: Vec<String> = agent
                .accounts()
                .into_iter()
                .filter(|a| a.status == "signed_in")
                .map(|a| a.account)
                .collect();
            json!({ "status": "success", "info": names })
        }
        Some(kind @ ("access_token" | "id_token")) => {
            // oidc-token sends an issuer URL as the account when given one; Lanyard's
            // account names never contain "://".
            let named = field("account").filter(|a| !a.contains("://"));
            let issuer = field("issuer").or(field("account").filter(|a| a.contains("://")));
            let account = match (named, issuer) {
                (Some(account), _) => Some(account.to_owned()),
                // Which account is signed in at an issuer is the desktop's to know: a
                // remote host names the account.
                (None, Some(_)) if peer.remote => None,
                (None, Some(issuer)) => agent
                    .accounts()
                    .into_iter()
                    .find(|a| {
                        a.issuer.trim_end_matches('/') == issuer.trim_end_matches('/')
                            && a.status == "signed_in"
                    })
                    .map(|a| a.account),
                (None, None) => None,
            };
            let Some(account) = account else {
                return failure(if peer.remote {
                    "name the account (`account`): a remote host is not told which accounts are signed in"
                } else {
                    "name an account (`account`) or an issuer (`issuer`)"
                });
            };
            let min_valid = request
                .get("min_valid_period")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let issuer = agent.issuer(&account).unwrap_or_default();
            if kind == "id_token" {
                return match agent.id_token(&account, peer).await {
                    Ok(id_token) => {
                        json!({ "status": "success", "id_token": id_token, "issuer": issuer })
                    }
                    Err(e) => failure_with(&e.message, e.hint.as_deref()),
                };
            }
            // oidc-token's --scope and --aud (empty means none).
            let narrow = |k: &str| field(k).filter(|v| !v.is_empty()).map(str::to_owned);
            let target = crate::flow::Target {
                scope: narrow("scope"),
                audience: narrow("audience"),
                exchange: false,
            };
            match agent.token(&account, min_valid, &target, peer).await {
                Ok(t) => json!({
                    "status": "success", "access_token": t.access_token,
                    "issuer": issuer, "expires_at": t.expires_at.unwrap_or(0),
                }),
                Err(e) => failure_with(&e.message, e.hint.as_deref()),
            }
        }
        Some(other) => failure(&format!(
            "Lanyard does not serve the request `{other}` on its oidc-agent socket"
        )),
        None => failure("not an oidc-agent request"),
    }
}

fn failure(error: &str) -> Value {
    json!({ "status": "failure", "error": error })
}

fn failure_with(error: &str, hint: Option<&str>) -> Value {
    match hint {
        Some(hint) => {
            json!({ "status": "failure", "error": error, "info": format!("run `{hint}`") })
        }
        None => failure(error),
    }
}

/// Reads until `complete` says the bytes so far are a whole message (oidc-agent's IPC has
/// no framing), within the frame time limit and the size limit.
async fn read_message(
    stream: &mut Connection,
    complete: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
    loop {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > MAX_MESSAGE {
            return None;
        }
        let trimmed = trim(&buf);
        if complete(trimmed) {
            return Some(trimmed.to_vec());
        }
    }
}

/// oidc-agent's messages may end in a NUL or a newline.
fn trim(buf: &[u8]) -> &[u8] {
    let end = buf
        .iter()
        .rposition(|b| !matches!(b, 0 | b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    &buf[..end]
}

fn is_json(message: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, Value>>(message).is_ok()
}

fn public_key(message: &[u8]) -> Option<PublicKey> {
    let bytes: [u8; 32] = B64.decode(message).ok()?.try_into().ok()?;
    Some(PublicKey::from(bytes))
}

/// `"<len>:<nonce>:<box>"` opened with the shared key, if it is whole and authentic.
fn open(sealed: &SalsaBox, message: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(message).ok()?;
    let mut parts = text.splitn(3, ':');
    let len: usize = parts.next()?.parse().ok()?;
    let nonce = B64.decode(parts.next()?).ok()?;
    let cipher = B64.decode(parts.next()?).ok()?;
    // (A length near usize::MAX must not overflow: it is what the client says.)
    if nonce.len() != 24 || len.checked_add(16) != Some(cipher.len()) {
        return None;
    }
    sealed
        .decrypt(nonce.as_slice().into(), cipher.as_slice())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_messages_round_trip_and_refuse_tampering() {
        let client = SecretKey::generate(&mut OsRng);
        let agent = SecretKey::generate(&mut OsRng);
        let at_agent = SalsaBox::new(&client.public_key(), &agent);
        let at_client = SalsaBox::new(&agent.public_key(), &client);
        let nonce = SalsaBox::generate_nonce(&mut OsRng);
        let plain = br#"{"request":"access_token","account":"work"}"#;
        let cipher = at_client.encrypt(&nonce, plain.as_slice()).unwrap();
        let wire = format!(
            "{}:{}:{}",
            plain.len(),
            B64.encode(nonce),
            B64.encode(&cipher)
        );
        assert_eq!(
            open(&at_agent, wire.as_bytes()).as_deref(),
            Some(plain.as_slice())
        );
        let mut bad = cipher.clone();
        bad[0] ^= 1;
        let tampered = format!("{}:{}:{}", plain.len(), B64.encode(nonce), B64.encode(&bad));
        assert_eq!(open(&at_agent, tampered.as_bytes()), None);
        assert_eq!(open(&at_agent, b"12:short"), None);
        // A length that would overflow is refused, not a panic.
        let huge = format!(
            "{}:{}:{}",
            usize::MAX,
            B64.encode(nonce),
            B64.encode(&cipher)
        );
        assert_eq!(open(&at_agent, huge.as_bytes()), None);
        assert!(public_key(B64.encode([7u8; 32]).as_bytes()).is_some());
        assert!(public_key(b"not a key").is_none());
        assert_eq!(trim(b"{}\0\n"), b"{}");
    }
}
