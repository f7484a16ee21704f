//! The broker's wire format: the only definition of it (docs/protocol.md mirrors it).
//!
//! Newline-delimited JSON over a local stream socket: one JSON object per line, at most
//! [`MAX_FRAME`] bytes. A client opens with `hello` (the version handshake), then sends
//! any number of requests on the same connection; each carries an `id` that its response
//! echoes. `subscribe` turns the connection into a stream of events. Errors carry a
//! stable [`Code`]. This module does no I/O.
//!
//! - `requests`: what clients send;
//! - `answers`: responses, progress frames and events;
//! - `errors`: the error codes.

mod answers;
mod errors;
mod requests;

pub use answers::*;
pub use errors::*;
pub use requests::*;

use serde::Serialize;
use serde_json::Value;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// The largest frame either side accepts, newline included.
pub const MAX_FRAME: usize = 64 * 1024;

/// Splits a byte stream into frames: lines of at most [`MAX_FRAME`] bytes, newline
/// included. It holds the part of a frame that has arrived so far and does no I/O, so the
/// server feeds it what the socket has, and the fuzzer and property tests feed it anything.
#[derive(Debug, Default)]
pub struct Framer {
    partial: Vec<u8>,
}

/// A line longer than [`MAX_FRAME`]: the connection cannot be resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl Framer {
    /// Takes bytes from the front of `input`. Returns how many it took, and the frame
    /// (without its newline) once one is complete.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Result<Vec<u8>, TooLarge>>) {
        let (chunk, taken) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (&input[..i], i + 1),
            None => (input, input.len()),
        };
        let complete = taken > chunk.len();
        // The newline, once it comes, counts too.
        if self.partial.len() + chunk.len() + 1 > MAX_FRAME {
            self.partial = Vec::new();
            return (taken, Some(Err(TooLarge)));
        }
        self.partial.extend_from_slice(chunk);
        if complete {
            (taken, Some(Ok(std::mem::take(&mut self.partial))))
        } else {
            (taken, None)
        }
    }

    /// Whether a frame has begun: bytes that await their newline.
    pub fn is_midframe(&self) -> bool {
        !self.partial.is_empty()
    }
}

/// Parses one frame (without its newline). A frame that is not a request yields the
/// error to send back and, when it could be read, the id.
pub fn decode(line: &[u8]) -> Result<Request, (u64, ErrorBody)> {
    serde_json::from_slice(line).map_err(|e| {
        let id = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_u64))
            .unwrap_or(0);
        (
            id,
            ErrorBody {
                code: Code::BadRequest,
                message: format!("not a request: {e}"),
                hint: None,
            },
        )
    })
}

/// One frame: the JSON and its newline.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("protocol values serialise to JSON");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_on_the_wire() {
        let check = |wire: Value, op: Op| {
            let req = decode(wire.to_string().as_bytes()).unwrap();
            assert_eq!(
                req,
                Request {
                    id: 7,
                    op: op.clone()
                }
            );
            assert_eq!(serde_json::to_value(&req).unwrap(), wire, "round trip");
        };
        check(
            json!({"id": 7, "op": "hello", "version": 1}),
            Op::Hello { version: 1 },
        );
        check(json!({"id": 7, "op": "accounts"}), Op::Accounts);
        check(
            json!({"id": 7, "op": "token", "account": "w", "min_valid": 60}),
            Op::Token {
                account: "w".into(),
                min_valid: 60,
                scope: None,
                audience: None,
                exchange: false,
                sign_in: false,
            },
        );
        check(
            json!({"id": 7, "op": "logout", "account": "w", "local": true}),
            Op::Logout {
                account: "w".into(),
                local: true,
                open_browser: true,
            },
        );
        check(
            json!({"id": 7, "op": "login", "account": "w"}),
            Op::Login {
                account: "w".into(),
                open_browser: true,
                prompt: None,
                device: false,
                timeout: None,
                as_new_user: false,
            },
        );
        check(
            json!({"id": 7, "op": "login", "account": "w", "open_browser": false,
                   "prompt": "login", "device": true, "timeout": 30, "as_new_user": true}),
            Op::Login {
                account: "w".into(),
                open_browser: false,
                prompt: Some("login".into()),
                device: true,
                timeout: Some(30),
                as_new_user: true,
            },
        );
        let defaulted = decode(br#"{"id":7,"op":"token","account":"w"}"#).unwrap();
        assert!(matches!(defaulted.op, Op::Token { min_valid: 60, .. }));
    }

    proptest::proptest! {
        /// Whatever a client sends, decoding answers a request or an error, never panics.
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        /// Every request survives encoding and decoding unchanged.
        #[test]
        fn requests_round_trip(
            id in proptest::prelude::any::<u64>(),
            account in "[a-z0-9._-]{1,20}",
            min_valid in proptest::prelude::any::<u64>(),
            scope in proptest::option::of("[a-z: ]{0,30}"),
            local in proptest::prelude::any::<bool>(),
            which in 0u8..9,
        ) {
            let op = match which {
                0 => Op::Hello { version: min_valid as u32 },
                1 => Op::Accounts,
                2 => Op::Identity { account },
                3 => Op::Token { account, min_valid, scope, audience: None, exchange: false, sign_in: local },
                4 => Op::Logout { account, local, open_browser: !local },
                5 => Op::Login { account, open_browser: local, prompt: scope, device: !local, timeout: Some(min_valid), as_new_user: local },
                6 => Op::IdToken { account, min_valid },
                7 => Op::ClientCredentials { account, scope },
                _ => Op::Subscribe,
            };
            let request = Request { id, op };
            let frame = encode(&request);
            proptest::prop_assert_eq!(frame.last(), Some(&b'\n'));
            proptest::prop_assert_eq!(decode(&frame[..frame.len() - 1]).unwrap(), request);
        }
    }

    /// Feeds `input` to a framer in chunks of the given sizes, as reads would deliver it.
    fn frames(input: &[u8], chunks: &[usize]) -> Vec<Result<Vec<u8>, TooLarge>> {
        let mut framer = Framer::default();
        let (mut rest, mut out) = (input, Vec::new());
        for size in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let mut read = &rest[..(*size).clamp(1, rest.len())];
            rest = &rest[read.len()..];
            while !read.is_empty() {
                let (taken, found) = framer.push(read);
                assert!(taken > 0 && taken <= read.len());
                read = &read[taken..];
                if let Some(found) = found {
                    let stop = found.is_err();
                    out.push(found);
                    if stop {
                        return out;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn frames_end_at_newlines_and_at_the_size_limit() {
        assert_eq!(
            frames(b"a\nbc\n\nd", &[1, 2]),
            vec![Ok(b"a".to_vec()), Ok(b"bc".to_vec()), Ok(Vec::new())]
        );
        let mut just = vec![b'x'; MAX_FRAME - 1];
        just.push(b'\n');
        assert_eq!(frames(&just, &[4096]), vec![Ok(vec![b'x'; MAX_FRAME - 1])]);
        let over = vec![b'x'; MAX_FRAME + 1];
        assert_eq!(frames(&over, &[100_000]), vec![Err(TooLarge)]);
        just.insert(0, b'x');
        assert_eq!(frames(&just, &[7]), vec![Err(TooLarge)]);
    }

    proptest::proptest! {
        /// However reads split a stream, the framer finds the same lines: each without a
        /// newline, within the limit, and together the stream up to its last newline.
        #[test]
        fn framing_does_not_depend_on_how_reads_split(
            lines in proptest::collection::vec(proptest::collection::vec(0u8..255, 0..300), 0..20),
            tail in proptest::collection::vec(0u8..255, 0..50),
            chunks in proptest::collection::vec(1usize..700, 1..8),
        ) {
            let lines: Vec<Vec<u8>> = lines.into_iter().map(|l| l.into_iter().filter(|b| *b != b'\n').collect()).collect();
            let mut stream: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
            stream.extend(tail.iter().filter(|b| **b != b'\n'));
            let expected: Vec<_> = lines.into_iter().map(Ok).collect();
            proptest::prop_assert_eq!(frames(&stream, &chunks), expected);
        }
    }

    /// docs/protocol.md names every request, error code and event on the wire. The
    /// matches below have no wildcard: a new variant fails to compile until it is listed
    /// here, and then this test fails until the documentation names it.
    #[test]
    fn the_protocol_document_names_everything_on_the_wire() {
        let doc = include_str!("../../../docs/protocol.md");
        let a = || String::from("a");
        let ops = [
            Op::Hello { version: 1 },
            Op::Accounts,
            Op::Identity { account: a() },
            Op::Token {
                account: a(),
                min_valid: 1,
                scope: None,
                audience: None,
                exchange: true,
                sign_in: true,
            },
            Op::Login {
                account: a(),
                open_browser: true,
                prompt: None,
                device: false,
                timeout: None,
                as_new_user: false,
            },
            Op::Logout {
                account: a(),
                local: false,
                open_browser: true,
            },
            Op::Subscribe,
            Op::EndSession,
            Op::Forward { host: a() },
            Op::Proof {
                account: a(),
                method: "GET".into(),
                url: "https://api.example.com/".into(),
                nonce: None,
                min_valid: 60,
            },
            Op::IdToken {
                account: a(),
                min_valid: 60,
            },
            Op::ClientCredentials {
                account: a(),
                scope: None,
            },
        ];
        for op in &ops {
            match op {
                Op::Hello { .. }
                | Op::Accounts
                | Op::Identity { .. }
                | Op::Token { .. }
                | Op::Login { .. }
                | Op::Logout { .. }
                | Op::Subscribe
                | Op::EndSession
                | Op::Forward { .. }
                | Op::Proof { .. }
                | Op::IdToken { .. }
                | Op::ClientCredentials { .. } => {}
            }
        }
        let codes = [
            Code::BadRequest,
            Code::FrameTooLarge,
            Code::UnsupportedVersion,
            Code::HelloFirst,
            Code::WrongUser,
            Code::UnknownAccount,
            Code::ApprovalRequired,
            Code::Denied,
            Code::SignInNeeded,
            Code::NoAccessToken,
            Code::ProviderError,
            Code::Rejected,
            Code::KeychainUnavailable,
            Code::NotSupported,
            Code::Busy,
            Code::NotAllowedFromHost,
            Code::SubjectChanged,
            Code::Internal,
        ];
        for code in &codes {
            match code {
                Code::BadRequest
                | Code::FrameTooLarge
                | Code::UnsupportedVersion
                | Code::HelloFirst
                | Code::WrongUser
                | Code::UnknownAccount
                | Code::ApprovalRequired
                | Code::Denied
                | Code::SignInNeeded
                | Code::NoAccessToken
                | Code::ProviderError
                | Code::Rejected
                | Code::KeychainUnavailable
                | Code::NotSupported
                | Code::Busy
                | Code::NotAllowedFromHost
                | Code::SubjectChanged
                | Code::Internal
                | Code::Unknown => {}
            }
        }
        let events = [
            Event::SignedIn { account: a() },
            Event::SignedOut { account: a() },
            Event::Refreshed {
                account: a(),
                expires_at: None,
            },
            Event::SignInNeeded {
                account: a(),
                reason: a(),
                app: Some(a()),
            },
            Event::ApprovalNeeded {
                account: a(),
                app: a(),
                pid: 1,
            },
            Event::Access {
                account: a(),
                app: a(),
                decision: a(),
                time: 1,
            },
        ];
        for event in &events {
            match event {
                Event::SignedIn { .. }
                | Event::SignedOut { .. }
                | Event::Refreshed { .. }
                | Event::SignInNeeded { .. }
                | Event::ApprovalNeeded { .. }
                | Event::Access { .. } => {}
            }
        }
        let stages = [
            Progress::BrowserOpened { url: a() },
            Progress::OpenYourself {
                url: a(),
                reason: None,
            },
            Progress::DeviceCode {
                user_code: a(),
                verification_uri: a(),
                verification_uri_complete: None,
                expires_in: 1,
            },
            Progress::Waiting,
            Progress::Finishing,
        ];
        for stage in &stages {
            match stage {
                Progress::BrowserOpened { .. }
                | Progress::OpenYourself { .. }
                | Progress::DeviceCode { .. }
                | Progress::Waiting
                | Progress::Finishing => {}
            }
        }
        let mut names: Vec<String> = ops
            .iter()
            .map(|op| {
                serde_json::to_value(op).unwrap()["op"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        names.extend(codes.iter().map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }));
        names.extend(events.iter().map(|e| {
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
        names.extend(stages.iter().map(|p| {
            serde_json::to_value(p).unwrap()["stage"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !doc.contains(&format!("`{n}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/protocol.md does not name {missing:?}"
        );
    }

    #[test]
    fn garbage_is_a_bad_request_with_the_id_when_readable() {
        assert_eq!(decode(b"not json").unwrap_err().0, 0);
        let (id, body) = decode(br#"{"id": 9, "op": "fly"}"#).unwrap_err();
        assert_eq!((id, body.code), (9, Code::BadRequest));
    }

    #[test]
    fn responses_on_the_wire() {
        let ok = Response::ok(
            3,
            TokenReply {
                access_token: "t".into(),
                token_type: "Bearer".into(),
                expires_at: Some(5),
                warning: None,
            },
        );
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"id": 3, "ok": {"access_token": "t", "token_type": "Bearer", "expires_at": 5}})
        );
        let err = Response::error(3, Code::ApprovalRequired, "ask");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"id": 3, "error": {"code": "approval_required", "message": "ask"}})
        );
        let unknown: ErrorBody =
            serde_json::from_value(json!({"code": "from_the_future", "message": "m"})).unwrap();
        assert_eq!(unknown.code, Code::Unknown);
        let event = EventFrame {
            event: Event::Refreshed {
                account: "w".into(),
                expires_at: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"event": {"type": "refreshed", "account": "w", "expires_at": null}})
        );
    }
}
