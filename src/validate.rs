//! ID-token and userinfo policy: OpenID Connect Core 3.1.3.7 and 12.2, plus the OpenID
//! RP certification cases.
//!
//! Pure functions over already-verified JWS payloads: no I/O, no clock of its own (the
//! caller passes `now`), so every rule is a table-driven unit test. Signature checking is
//! `jose`'s; fetching keys is `discovery`'s. Each [`Error`] names the check that failed.

use serde_json::{Map, Value};

use crate::jose;
use crate::secret::Secret;

/// Tolerated clock difference between Lanyard and the provider.
pub const CLOCK_SKEW: u64 = 60;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("signature: {0}")]
    Signature(#[from] jose::Error),
    #[error("claims: the payload is not a JSON object")]
    NotAnObject,
    #[error("claims: the payload names `{0}` twice")]
    DuplicateClaim(String),
    #[error(
        "typ: the token is of type `{0}`, not an ID token (a JWT); another kind of token may be passed off as one"
    )]
    Type(String),
    #[error("nbf: the token is not valid until {ahead} s from now")]
    NotYetValid { ahead: u64 },
    #[error("nbf: the token's not-before time is not a number")]
    NotBeforeInvalid,
    #[error("iss: expected `{expected}`, the token says {got}")]
    Issuer { expected: String, got: String },
    #[error("aud: the token is not meant for client `{client_id}` (aud {got})")]
    Audience { client_id: String, got: String },
    #[error("aud: the token is also meant for {untrusted}, which Lanyard does not trust")]
    UntrustedAudience { untrusted: String },
    #[error("azp: the token was issued to `{got}`, not to client `{client_id}`")]
    AuthorizedParty { client_id: String, got: String },
    #[error("exp: the token expired {ago} s ago")]
    Expired { ago: u64 },
    #[error("exp: the token has no valid expiry")]
    ExpiryMissing,
    #[error("iat: the token has no valid issue time")]
    IssuedAtMissing,
    #[error("iat: the token claims to be issued {ahead} s in the future")]
    IssuedInFuture { ahead: u64 },
    #[error("sub: the token names no subject")]
    SubjectMissing,
    #[error("nonce: the token has no nonce, but Lanyard sent one")]
    NonceMissing,
    #[error("nonce: the token's nonce is not the one Lanyard sent")]
    NonceMismatch,
    #[error("at_hash: the token's at_hash does not match the access token")]
    AccessTokenHash,
    #[error("at_hash: the token has no at_hash, which this response type requires")]
    AccessTokenHashMissing,
    #[error("auth_time: max_age was requested, but the token has no auth_time")]
    AuthTimeMissing,
    #[error("auth_time: the sign-in happened {age} s ago, more than max_age {max_age} s allows")]
    AuthTooOld { age: u64, max_age: u64 },
    #[error("userinfo: its sub `{userinfo}` is not the ID token's `{id_token}`")]
    UserinfoSubject { id_token: String, userinfo: String },
    #[error("refresh: the new ID token's {claim} `{got}` differs from the sign-in's `{expected}`")]
    RefreshChanged {
        claim: &'static str,
        expected: String,
        got: String,
    },
}

/// What the ID token must say, from the request Lanyard made.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent in the authorization request; `None` for refreshes.
    pub nonce: Option<&'a Secret>,
    pub max_age: Option<u64>,
    /// The access token that came with the ID token, for `at_hash`.
    pub access_token: Option<&'a Secret>,
    /// `at_hash` is required (implicit and hybrid responses), not only checked if present.
    pub require_at_hash: bool,
    /// Unix seconds.
    pub now: u64,
}

/// Claims of an ID token that passed every check.
#[derive(Debug, Clone)]
pub struct IdClaims {
    pub claims: Map<String, Value>,
}

impl IdClaims {
    pub fn subject(&self) -> &str {
        self.claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn issuer(&self) -> &str {
        self.claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn expires_at(&self) -> u64 {
        number(&self.claims, "exp").unwrap_or(0)
    }
}

/// Validates the claims of an ID token whose signature `jose` has verified with `alg`.
pub fn id_token(payload: &[u8], alg: &str, expected: &Expected<'_>) -> Result<IdClaims, Error> {
    let claims = claims(payload)?;

    // 2. The issuer must match exactly.
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == expected.issuer => {}
        other => {
            return Err(Error::Issuer {
                expected: expected.issuer.to_owned(),
                got: other.map_or("nothing".into(), |s| format!("`{s}`")),
            });
        }
    }

    // 3-5. aud contains our client id and no one else; azp, when present, is us.
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !audiences.contains(&expected.client_id) {
        return Err(Error::Audience {
            client_id: expected.client_id.to_owned(),
            got: claims.get("aud").map_or("missing".into(), Value::to_string),
        });
    }
    let untrusted: Vec<&str> = audiences
        .iter()
        .copied()
        .filter(|a| *a != expected.client_id)
        .collect();
    if !untrusted.is_empty() {
        return Err(Error::UntrustedAudience {
            untrusted: untrusted
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if let Some(azp) = claims.get("azp")
        && azp.as_str() != Some(expected.client_id)
    {
        return Err(Error::AuthorizedParty {
            client_id: expected.client_id.to_owned(),
            got: azp.as_str().map_or_else(|| azp.to_string(), str::to_owned),
        });
    }

    // 9. Not expired (with skew).
    let exp = number(&claims, "exp").ok_or(Error::ExpiryMissing)?;
    if expected.now > exp + CLOCK_SKEW {
        return Err(Error::Expired {
            ago: expected.now - exp,
        });
    }

    // RFC 7519 section 4.1.5: not before `nbf`, when the token has one.
    if claims.contains_key("nbf") {
        let nbf = number(&claims, "nbf").ok_or(Error::NotBeforeInvalid)?;
        if nbf > expected.now + CLOCK_SKEW {
            return Err(Error::NotYetValid {
                ahead: nbf - expected.now,
            });
        }
    }

    // 10. iat present and not in the future.
    let iat = number(&claims, "iat").ok_or(Error::IssuedAtMissing)?;
    if iat > expected.now + CLOCK_SKEW {
        return Err(Error::IssuedInFuture {
            ahead: iat - expected.now,
        });
    }

    // sub is required (Core 2).
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(Error::SubjectMissing);
    }

    // 11. The nonce we sent comes back unchanged.
    if let Some(nonce) = expected.nonce {
        match claims.get("nonce").and_then(Value::as_str) {
            None => return Err(Error::NonceMissing),
            Some(got) if !nonce.matches(got) => return Err(Error::NonceMismatch),
            Some(_) => {}
        }
    }

    // 13. auth_time, when max_age was asked for.
    if let Some(max_age) = expected.max_age {
        let auth_time = number(&claims, "auth_time").ok_or(Error::AuthTimeMissing)?;
        let age = expected.now.saturating_sub(auth_time);
        if age > max_age + CLOCK_SKEW {
            return Err(Error::AuthTooOld { age, max_age });
        }
    }

    // 3.2.2.9 / 3.3.2.11: at_hash binds the access token to the ID token.
    match (claims.get("at_hash"), expected.access_token) {
        (Some(at_hash), Some(token))
            if jose::half_hash(alg, token.expose()).as_deref() != at_hash.as_str() =>
        {
            return Err(Error::AccessTokenHash);
        }
        (None, Some(_)) if expected.require_at_hash => return Err(Error::AccessTokenHashMissing),
        _ => {}
    }

    Ok(IdClaims { claims })
}

/// An ID token's `typ` header, if present, says JWT (RFC 7519 section 5.1; also
/// `application/jwt` and `application/jose`, which providers use): an access token
/// (`at+jwt`), a logout token or any other typed JWT is not an ID token (RFC 8725 3.11).
pub fn id_token_type(typ: Option<&str>) -> Result<(), Error> {
    let Some(typ) = typ else { return Ok(()) };
    let lower = typ.to_ascii_lowercase();
    let bare = lower.strip_prefix("application/").unwrap_or(&lower);
    match bare {
        "jwt" | "jose" => Ok(()),
        _ => Err(Error::Type(typ.to_owned())),
    }
}

/// A JWT payload as a JSON object, refused if it names a member twice (RFC 7519 section 4).
pub fn claims(payload: &[u8]) -> Result<Map<String, Value>, Error> {
    jose::object(payload).map_err(|e| match e {
        jose::ObjectError::Duplicate(name) => Error::DuplicateClaim(name),
        jose::ObjectError::Invalid => Error::NotAnObject,
    })
}

/// Core 5.3.2: the userinfo response's `sub` must equal the ID token's.
pub fn userinfo(id: &IdClaims, userinfo: &Map<String, Value>) -> Result<(), Error> {
    let got = userinfo
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got != id.subject() {
        return Err(Error::UserinfoSubject {
            id_token: id.subject().to_owned(),
            userinfo: got.to_owned(),
        });
    }
    Ok(())
}

/// Core 12.2: an ID token from a refresh keeps the sign-in's issuer and subject.
pub fn refreshed(
    original_issuer: &str,
    original_subject: &str,
    new: &IdClaims,
) -> Result<(), Error> {
    if new.issuer() != original_issuer {
        return Err(Error::RefreshChanged {
            claim: "iss",
            expected: original_issuer.to_owned(),
            got: new.issuer().to_owned(),
        });
    }
    if new.subject() != original_subject {
        return Err(Error::RefreshChanged {
            claim: "sub",
            expected: original_subject.to_owned(),
            got: new.subject().to_owned(),
        });
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 section 2) as whole seconds; fractions are allowed.
fn number(claims: &Map<String, Value>, name: &str) -> Option<u64> {
    let v = claims.get(name)?;
    v.as_u64()
        .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn base() -> Value {
        json!({
            "iss": "https://id.example.com", "aud": "app", "sub": "alice",
            "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-0S6_WzA2Mj",
            "auth_time": NOW - 30,
        })
    }

    /// Applies `edit` to a valid claim set and checks the outcome.
    fn check(edit: impl FnOnce(&mut Map<String, Value>), expected: Result<(), Error>) {
        let mut claims = base();
        edit(claims.as_object_mut().unwrap());
        let nonce = Secret::new("n-0S6_WzA2Mj");
        let access = Secret::new("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
        let want = Expected {
            issuer: "https://id.example.com",
            client_id: "app",
            nonce: Some(&nonce),
            max_age: Some(600),
            access_token: Some(&access),
            require_at_hash: false,
            now: NOW,
        };
        let got = id_token(claims.to_string().as_bytes(), "RS256", &want).map(|_| ());
        assert_eq!(got, expected);
    }

    #[test]
    fn accepts_a_valid_token() {
        check(|_| {}, Ok(()));
        check(|c| drop(c.insert("nbf".into(), json!(NOW + 60))), Ok(()));
        check(|c| drop(c.insert("aud".into(), json!(["app"]))), Ok(()));
        check(|c| drop(c.insert("azp".into(), json!("app"))), Ok(()));
        check(
            |c| drop(c.insert("at_hash".into(), json!("77QmUPtjPfzWtF2AnpK9RQ"))),
            Ok(()),
        );
        check(|c| drop(c.insert("exp".into(), json!(NOW - 59))), Ok(()));
        check(|c| drop(c.insert("iat".into(), json!(NOW + 59))), Ok(()));
        check(
            |c| drop(c.insert("iat".into(), json!(NOW as f64 + 0.5))),
            Ok(()),
        );
    }

    #[test]
    fn rejects_each_failed_check() {
        let iss = |e: &str, g: &str| Error::Issuer {
            expected: e.into(),
            got: g.into(),
        };
        check(
            |c| drop(c.insert("iss".into(), json!("https://evil.example"))),
            Err(iss("https://id.example.com", "`https://evil.example`")),
        );
        check(
            |c| drop(c.remove("iss")),
            Err(iss("https://id.example.com", "nothing")),
        );
        check(
            |c| drop(c.insert("aud".into(), json!("other"))),
            Err(Error::Audience {
                client_id: "app".into(),
                got: "\"other\"".into(),
            }),
        );
        check(
            |c| drop(c.remove("aud")),
            Err(Error::Audience {
                client_id: "app".into(),
                got: "missing".into(),
            }),
        );
        check(
            |c| drop(c.insert("aud".into(), json!(["app", "evil"]))),
            Err(Error::UntrustedAudience {
                untrusted: "`evil`".into(),
            }),
        );
        check(
            |c| drop(c.insert("azp".into(), json!("evil"))),
            Err(Error::AuthorizedParty {
                client_id: "app".into(),
                got: "evil".into(),
            }),
        );
        check(
            |c| drop(c.insert("exp".into(), json!(NOW - 61))),
            Err(Error::Expired { ago: 61 }),
        );
        check(|c| drop(c.remove("exp")), Err(Error::ExpiryMissing));
        check(|c| drop(c.remove("iat")), Err(Error::IssuedAtMissing));
        check(
            |c| drop(c.insert("iat".into(), json!("yesterday"))),
            Err(Error::IssuedAtMissing),
        );
        check(
            |c| drop(c.insert("iat".into(), json!(NOW + 61))),
            Err(Error::IssuedInFuture { ahead: 61 }),
        );
        check(|c| drop(c.remove("sub")), Err(Error::SubjectMissing));
        check(
            |c| drop(c.insert("nbf".into(), json!(NOW + 61))),
            Err(Error::NotYetValid { ahead: 61 }),
        );
        check(
            |c| drop(c.insert("nbf".into(), json!("soon"))),
            Err(Error::NotBeforeInvalid),
        );
        check(
            |c| drop(c.insert("sub".into(), json!(""))),
            Err(Error::SubjectMissing),
        );
        check(|c| drop(c.remove("nonce")), Err(Error::NonceMissing));
        check(
            |c| drop(c.insert("nonce".into(), json!("n-0S6_WzA2Mk"))),
            Err(Error::NonceMismatch),
        );
        check(
            |c| drop(c.insert("at_hash".into(), json!("AAAAAAAAAAAAAAAAAAAAAA"))),
            Err(Error::AccessTokenHash),
        );
        check(|c| drop(c.remove("auth_time")), Err(Error::AuthTimeMissing));
        check(
            |c| drop(c.insert("auth_time".into(), json!(NOW - 700))),
            Err(Error::AuthTooOld {
                age: 700,
                max_age: 600,
            }),
        );
    }

    #[test]
    fn only_jwts_are_id_tokens() {
        for ok in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("application/jwt"),
            Some("JOSE"),
        ] {
            assert_eq!(id_token_type(ok), Ok(()), "{ok:?}");
        }
        for wrong in ["at+jwt", "application/at+jwt", "logout+jwt", "JWS", ""] {
            assert_eq!(
                id_token_type(Some(wrong)),
                Err(Error::Type(wrong.into())),
                "{wrong}"
            );
        }
    }

    #[test]
    fn a_claim_named_twice_is_refused() {
        let want = Expected {
            issuer: "https://id.example.com",
            client_id: "app",
            nonce: None,
            max_age: None,
            access_token: None,
            require_at_hash: false,
            now: NOW,
        };
        let payload = format!(
            r#"{{"iss":"https://id.example.com","aud":"app","sub":"alice","sub":"mallory","exp":{},"iat":{}}}"#,
            NOW + 300,
            NOW
        );
        assert_eq!(
            id_token(payload.as_bytes(), "RS256", &want).map(|_| ()),
            Err(Error::DuplicateClaim("sub".into()))
        );
    }

    #[test]
    fn userinfo_and_refresh_keep_the_subject() {
        let claims = id_token(
            base().to_string().as_bytes(),
            "RS256",
            &Expected {
                issuer: "https://id.example.com",
                client_id: "app",
                nonce: None,
                max_age: None,
                access_token: None,
                require_at_hash: false,
                now: NOW,
            },
        )
        .unwrap();
        assert_eq!(
            userinfo(&claims, json!({"sub": "alice"}).as_object().unwrap()),
            Ok(())
        );
        assert_eq!(
            userinfo(&claims, json!({"sub": "mallory"}).as_object().unwrap()),
            Err(Error::UserinfoSubject {
                id_token: "alice".into(),
                userinfo: "mallory".into()
            })
        );
        assert_eq!(
            refreshed("https://id.example.com", "alice", &claims),
            Ok(())
        );
        assert_eq!(
            refreshed("https://id.example.com", "bob", &claims),
            Err(Error::RefreshChanged {
                claim: "sub",
                expected: "bob".into(),
                got: "alice".into()
            })
        );
    }
}
