//! Tokens a long-running process (the agent, the desktop app) keeps in memory between
//! refreshes, so that a refresh that did not rotate the refresh token writes nothing, and
//! the client secret is not read each time.
//!
//! The keychain stays the truth. Every write of an account's tokens (or of its client
//! secret, which is held too) gives its record a new random `tokens_stamp`, written beside
//! them; what a process holds is used only while the record on disk still carries the
//! stamp it was held under. So a sign-in, a rotation, a new client secret or a sign-out
//! by any other process makes the next request read the keychain again. For a refresh
//! the keychain is read all the same, while the provider answers (`token.rs`): the
//! refresh's outcome is used only if the keychain still has the refresh token held, so
//! tokens deleted from the keychain (by the person, or a reset keyring) mean sign-in
//! needed, as they do without holding.
//!
//! A refresh that does not rotate leaves the keychain's refresh token good: the holder
//! keeps the new access and ID tokens, and the record they go with, in memory only. Other
//! processes still find the older ones stored and refresh for themselves when they need
//! to, with the same refresh token.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::secret::Secret;
use crate::store::{Record, Tokens};

/// An account's tokens as this process last read or wrote them, with its record; and its
/// client secret (or that it has none), once read.
struct Held {
    record: Record,
    tokens: Tokens,
    client_secret: Option<Option<Secret>>,
}

/// What a long-running process holds, per account. Empty, and never filled, in a
/// process that is not long-running.
#[derive(Default)]
pub(super) struct HeldTokens {
    on: bool,
    accounts: Mutex<HashMap<String, Held>>,
}

impl HeldTokens {
    /// Holding, for a long-running process.
    pub(super) fn on() -> HeldTokens {
        HeldTokens {
            on: true,
            ..HeldTokens::default()
        }
    }

    /// Whether this process holds tokens (and so may leave a refresh unwritten).
    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// What is held for the account whose stored record is `stored`, if it was held
    /// under the stamp that record carries: the record as this process knows it, and the
    /// tokens.
    pub(super) fn get(&self, stored: &Record) -> Option<(Record, Tokens)> {
        self.under_stamp(stored, |held| {
            Some((held.record.clone(), held.tokens.clone()))
        })
    }

    /// `read` of what is held for the account whose stored record is `stored`, if it was
    /// held under the stamp that record carries.
    fn under_stamp<T>(&self, stored: &Record, read: impl FnOnce(&Held) -> Option<T>) -> Option<T> {
        stored.tokens_stamp?;
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let held = accounts.get(&stored.account)?;
        if held.record.tokens_stamp != stored.tokens_stamp {
            return None;
        }
        read(held)
    }

    /// Holds `tokens` with `record`, which must carry the stamp of the stored tokens they
    /// belong to. A record without a stamp (written before stamps) is not held. The client
    /// secret held stays while the stamp does.
    pub(super) fn put(&self, record: &Record, tokens: &Tokens) {
        if !self.on || record.tokens_stamp.is_none() {
            return;
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let client_secret = accounts
            .remove(&record.account)
            .filter(|held| held.record.tokens_stamp == record.tokens_stamp)
            .and_then(|held| held.client_secret);
        accounts.insert(
            record.account.clone(),
            Held {
                record: record.clone(),
                tokens: tokens.clone(),
                client_secret,
            },
        );
    }

    /// The client secret held for the account whose stored record is `stored` (`Some(None)`:
    /// it has none), under the same rule as [`HeldTokens::get`].
    pub(super) fn client_secret(&self, stored: &Record) -> Option<Option<Secret>> {
        self.under_stamp(stored, |held| held.client_secret.clone())
    }

    /// Holds the client secret read for the account whose stored record is `stored`,
    /// beside its tokens (held under the same stamp); else nothing.
    pub(super) fn put_client_secret(&self, stored: &Record, secret: &Option<Secret>) {
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = accounts.get_mut(&stored.account)
            && stored.tokens_stamp.is_some()
            && held.record.tokens_stamp == stored.tokens_stamp
        {
            held.client_secret = Some(secret.clone());
        }
    }

    /// Forgets the account's tokens (sign-out, or a refresh token the provider refused).
    pub(super) fn forget(&self, name: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

/// A new stamp for a write of an account's tokens.
pub(super) fn new_stamp() -> u64 {
    let bytes: [u8; 8] = ring::rand::generate(&ring::rand::SystemRandom::new())
        .map(|random: ring::rand::Random<[u8; 8]>| random.expose())
        // Without randomness a stamp from the clock still differs from the last one.
        .unwrap_or_else(|_| {
            (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()) as u64)
                .to_le_bytes()
        });
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(stamp: Option<u64>) -> Record {
        serde_json::from_value(serde_json::json!({
            "account": "work", "issuer": "https://id.example.com", "client_id": "app",
            "subject": "alice", "signed_in_at": 1, "access_token_expires_at": 2,
            "refreshable": true, "scopes": ["openid"], "store": "keychain",
            "id_token_claims": {}, "userinfo": null, "status": {"state": "signed_in"},
            "tokens_stamp": stamp,
        }))
        .unwrap()
    }

    fn tokens(access: &str) -> Tokens {
        Tokens {
            access_token: Some(Secret::new(access.to_owned())),
            expires_at: None,
            refresh_token: None,
            id_token: None,
            issuer: None,
            client_id: None,
            dpop_key: None,
        }
    }

    #[test]
    fn held_tokens_are_used_only_under_the_stored_stamp() {
        let held = HeldTokens::on();
        held.put(&record(Some(1)), &tokens("a1"));
        let (_, got) = held.get(&record(Some(1))).expect("same stamp");
        assert_eq!(got.access_token.unwrap().expose(), "a1");
        assert!(held.get(&record(Some(2))).is_none(), "another write since");
        assert!(
            held.get(&record(None)).is_none(),
            "a record without a stamp"
        );
        held.forget("work");
        assert!(held.get(&record(Some(1))).is_none(), "forgotten");
    }

    #[test]
    fn a_client_secret_is_held_beside_the_tokens_under_their_stamp() {
        let held = HeldTokens::on();
        let secret = Some(Secret::new("s1".to_owned()));
        held.put_client_secret(&record(Some(1)), &secret);
        assert!(
            held.client_secret(&record(Some(1))).is_none(),
            "no tokens held yet"
        );
        held.put(&record(Some(1)), &tokens("a1"));
        assert!(
            held.client_secret(&record(Some(1))).is_none(),
            "not read yet"
        );
        held.put_client_secret(&record(Some(1)), &secret);
        let got = held.client_secret(&record(Some(1))).unwrap().unwrap();
        assert_eq!(got.expose(), "s1");
        assert!(
            held.client_secret(&record(Some(2))).is_none(),
            "a new secret since"
        );
        held.put(&record(Some(1)), &tokens("a2"));
        assert!(
            held.client_secret(&record(Some(1))).is_some(),
            "kept over a refresh that wrote nothing"
        );
        held.put(&record(Some(3)), &tokens("a3"));
        assert!(
            held.client_secret(&record(Some(3))).is_none(),
            "read again after a write"
        );
    }

    #[test]
    fn nothing_is_held_without_a_stamp_or_outside_a_long_running_process() {
        let held = HeldTokens::on();
        held.put(&record(None), &tokens("a1"));
        assert!(held.accounts.lock().unwrap().is_empty());
        let off = HeldTokens::default();
        off.put(&record(Some(1)), &tokens("a1"));
        assert!(off.get(&record(Some(1))).is_none());
    }

    #[test]
    fn stamps_differ() {
        assert_ne!(new_stamp(), new_stamp());
    }
}
