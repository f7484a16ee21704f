//! Secrets larger than one keychain item holds, kept in several.
//!
//! Windows' Credential Manager caps an item at 2,560 bytes (1,280 UTF-16 units), and an
//! account's tokens (a JWT access token, an ID token and the refresh token, in one item so
//! that rotation is one write) are often larger. Git Credential Manager and kubelogin broke
//! on this; Lanyard splits instead, and never drops a token to make room.
//!
//! A value that fits is stored as it is. A larger one is cut into parts stored under
//! `ACCOUNT#GEN.I` in the same service, and the account's own item then holds only a small
//! header naming the generation and the number of parts. Parts of a new generation are all
//! written before the header that points at them, and the old generation's are deleted
//! after: a crash at any point leaves the header pointing at a complete value, old or new,
//! and at worst parts that nothing points at.

use super::{Error, Secrets};
use crate::secret::Secret;

/// Starts a header; a NUL never begins a token or a client secret.
const HEADER: &str = "\u{0}lanyard-parts:";

pub struct Chunked<S> {
    inner: S,
    /// The most UTF-16 units one item holds.
    max: usize,
}

/// Where a value is kept: generation and number of parts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Parts {
    generation: u64,
    count: usize,
}

impl<S: Secrets> Chunked<S> {
    pub fn new(inner: S, max: usize) -> Chunked<S> {
        assert!(max >= HEADER.len() + 41, "items too small to hold a header");
        Chunked { inner, max }
    }

    fn parts(&self, service: &str, account: &str) -> Result<Option<Parts>, Error> {
        Ok(match self.inner.get(service, account)? {
            Some(value) => header(value.expose()),
            None => None,
        })
    }

    fn delete_parts(&self, service: &str, account: &str, parts: Parts) -> Result<(), Error> {
        for i in 0..parts.count {
            self.inner
                .delete(service, &part(account, parts.generation, i))?;
        }
        Ok(())
    }
}

impl<S: Secrets> Secrets for Chunked<S> {
    fn get(&self, service: &str, account: &str) -> Result<Option<Secret>, Error> {
        let Some(value) = self.inner.get(service, account)? else {
            return Ok(None);
        };
        let Some(parts) = header(value.expose()) else {
            return Ok(Some(value));
        };
        let mut whole = String::new();
        for i in 0..parts.count {
            let piece = self
                .inner
                .get(service, &part(account, parts.generation, i))?
                .ok_or_else(|| {
                    Error::Failed(format!(
                        "part {} of {} of the item {service}/{account} is missing from the keychain",
                        i + 1,
                        parts.count
                    ))
                })?;
            whole.push_str(piece.expose());
        }
        Ok(Some(Secret::new(whole)))
    }

    fn set(&self, service: &str, account: &str, value: &Secret) -> Result<(), Error> {
        let old = self.parts(service, account)?;
        let text = value.expose();
        if units(text) <= self.max && !text.starts_with(HEADER) {
            self.inner.set(service, account, value)?;
        } else {
            let generation = old.map_or(1, |p| p.generation.wrapping_add(1));
            let pieces = split(text, self.max);
            for (i, piece) in pieces.iter().enumerate() {
                self.inner
                    .set(service, &part(account, generation, i), &Secret::new(*piece))?;
            }
            let header = format!("{HEADER}{generation}:{}", pieces.len());
            self.inner.set(service, account, &Secret::new(header))?;
        }
        // The value is in place: the old parts are garbage now. Failing to delete them
        // loses nothing.
        if let Some(old) = old
            && let Err(e) = self.delete_parts(service, account, old)
        {
            tracing::warn!(service, account, error = %e, "cannot delete a keychain item's old parts");
        }
        Ok(())
    }

    fn delete(&self, service: &str, account: &str) -> Result<bool, Error> {
        if let Some(old) = self.parts(service, account)? {
            self.delete_parts(service, account, old)?;
        }
        self.inner.delete(service, account)
    }
}

fn part(account: &str, generation: u64, i: usize) -> String {
    format!("{account}#{generation}.{i}")
}

fn header(value: &str) -> Option<Parts> {
    let (generation, count) = value.strip_prefix(HEADER)?.split_once(':')?;
    Some(Parts {
        generation: generation.parse().ok()?,
        count: count.parse().ok()?,
    })
}

fn units(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// `text` in pieces of at most `max` UTF-16 units, cut between characters.
fn split(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (at, c) in text.char_indices() {
        if size + c.len_utf16() > max {
            pieces.push(&text[start..at]);
            (start, size) = (at, 0);
        }
        size += c.len_utf16();
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::{Memory, Tokens};

    /// Credential Manager's cap, in UTF-16 units.
    const CAP: usize = 1280;

    /// A store that refuses items over the cap, as Credential Manager does, and can be made
    /// to fail after some writes (a crash mid-way).
    struct Capped {
        inner: Memory,
        writes_left: AtomicUsize,
    }

    impl Capped {
        fn new() -> Capped {
            Capped {
                inner: Memory::default(),
                writes_left: AtomicUsize::new(usize::MAX),
            }
        }
    }

    impl Secrets for Capped {
        fn get(&self, service: &str, account: &str) -> Result<Option<Secret>, Error> {
            self.inner.get(service, account)
        }
        fn set(&self, service: &str, account: &str, value: &Secret) -> Result<(), Error> {
            if units(value.expose()) > CAP {
                return Err(Error::Failed("too long for Credential Manager".into()));
            }
            let left = self.writes_left.load(Ordering::SeqCst);
            if left == 0 {
                return Err(Error::Failed("the process died".into()));
            }
            self.writes_left.store(left - 1, Ordering::SeqCst);
            self.inner.set(service, account, value)
        }
        fn delete(&self, service: &str, account: &str) -> Result<bool, Error> {
            self.inner.delete(service, account)
        }
    }

    fn tokens(access_len: usize, tag: &str) -> Secret {
        Tokens {
            access_token: Some(Secret::new(format!("{tag}{}", "a".repeat(access_len)))),
            expires_at: Some(1),
            refresh_token: Some(Secret::new(format!("refresh-{tag}"))),
            id_token: Some(Secret::new(format!("eyJ{}", "é".repeat(900)))),
            issuer: Some("https://idp".into()),
            client_id: Some("app".into()),
            dpop_key: None,
        }
        .to_secret()
    }

    #[test]
    fn a_6_kb_token_is_stored_whole_and_comes_back_intact() {
        let store = Chunked::new(Capped::new(), CAP);
        let big = tokens(6 * 1024, "one");
        assert!(units(big.expose()) > 4 * CAP);
        store.set("lanyard", "work", &big).unwrap();
        assert_eq!(
            store.get("lanyard", "work").unwrap().unwrap().expose(),
            big.expose()
        );
        let back = Tokens::from_secret(&store.get("lanyard", "work").unwrap().unwrap()).unwrap();
        assert_eq!(back.refresh_token.unwrap().expose(), "refresh-one");

        // Rotation to another large value, then to a small one: the old parts go.
        let next = tokens(7 * 1024, "two");
        store.set("lanyard", "work", &next).unwrap();
        assert_eq!(
            store.get("lanyard", "work").unwrap().unwrap().expose(),
            next.expose()
        );
        assert!(store.inner.get("lanyard", "work#1.0").unwrap().is_none());
        store.set("lanyard", "work", &Secret::new("small")).unwrap();
        assert_eq!(
            store.get("lanyard", "work").unwrap().unwrap().expose(),
            "small"
        );
        assert!(store.inner.get("lanyard", "work#2.0").unwrap().is_none());

        store.set("lanyard", "work", &big).unwrap();
        assert!(store.delete("lanyard", "work").unwrap());
        assert!(store.get("lanyard", "work").unwrap().is_none());
        assert!(store.inner.get("lanyard", "work#3.0").unwrap().is_none());
    }

    #[test]
    fn a_crash_mid_write_leaves_the_old_value() {
        let store = Chunked::new(Capped::new(), CAP);
        let old = tokens(3 * 1024, "old");
        store.set("lanyard", "work", &old).unwrap();
        for crash_after in 0..8 {
            store.inner.writes_left.store(crash_after, Ordering::SeqCst);
            let new = tokens(6 * 1024, "new");
            let result = store.set("lanyard", "work", &new);
            store.inner.writes_left.store(usize::MAX, Ordering::SeqCst);
            let now = store.get("lanyard", "work").unwrap().unwrap();
            match result {
                Ok(()) => assert_eq!(now.expose(), new.expose()),
                Err(_) => assert_eq!(now.expose(), old.expose(), "after {crash_after} writes"),
            }
            store.set("lanyard", "work", &old).unwrap();
        }
    }

    #[test]
    fn pieces_fit_and_join_back() {
        let text = "ab😀cd😀😀e";
        for max in 2..12 {
            let pieces = split(text, max);
            assert!(pieces.iter().all(|p| units(p) <= max), "{max}: {pieces:?}");
            assert_eq!(pieces.concat(), text);
        }
    }
}
