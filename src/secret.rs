//! Secret values: tokens, codes, verifiers and client secrets.
//!
//! A [`Secret`] never shows its value through `Debug` or `Display`, so it cannot reach a
//! log line or an error message by accident; the value is read only through
//! [`Secret::expose`], which makes every read easy to find. Comparison is constant-time.
//! This module does not zero memory on drop: the values also live in HTTP buffers and the
//! keychain's own client, so a partial wipe would promise more than it gives.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// A string that must not be logged, printed or compared in variable time.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value` (a client secret read from the app's configuration, say).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Call it only where the value leaves the process on purpose:
    /// an HTTP request to the provider, the keychain, or stdout of `lanyard token`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time equality, for values an attacker may have chosen (state, nonce).
    pub fn matches(&self, other: &str) -> bool {
        self.0.len() == other.len() && bool::from(self.0.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Random URL-safe text with `bytes` bytes of entropy, for state, nonce and PKCE verifiers.
pub fn random(bytes: usize) -> Result<Secret, ring::error::Unspecified> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new().fill(&mut buf)?;
    Ok(Secret(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn matches_compares_whole_values() {
        let s = Secret::new("abc");
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        assert!(!s.matches("ab"));
        assert!(!s.matches("abcd"));
    }

    #[test]
    fn random_values_differ_and_have_the_asked_entropy() {
        let a = random(32).unwrap();
        let b = random(32).unwrap();
        assert_eq!(a.expose().len(), 43);
        assert!(!a.matches(b.expose()));
    }
}
