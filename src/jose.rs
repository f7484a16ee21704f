//! Compact JWS parsing and signature verification against a JSON Web Key Set.
//!
//! Deliberately narrow: asymmetric algorithms only (RS*, PS*, ES256, ES384, EdDSA), keys
//! only from the provider's JWKS. `alg: none` and HMAC are never accepted (an HMAC keyed
//! with a public RSA key is the classic confusion attack), and keys a token carries in its
//! own header (`jwk`, `jku`, `x5u`, `x5c`) are never read. Any `crit` header is refused:
//! Lanyard understands no JWS extensions (RFC 7515 section 4.1.11). Claims are not looked
//! at here; that is `validate`'s job.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde::Deserialize;

/// Algorithms Lanyard can verify, in the order it prefers them.
pub const SUPPORTED_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not a compact JWS: {0}")]
    Malformed(&'static str),
    #[error("encrypted tokens (JWE) are not supported")]
    Encrypted,
    #[error("the token is unsigned (alg `none`)")]
    Unsigned,
    #[error("alg `{alg}` is not accepted (accepted: {})", allowed.join(", "))]
    AlgNotAllowed { alg: String, allowed: Vec<String> },
    #[error("the token has critical header extensions Lanyard does not understand: {}", .0.join(", "))]
    Crit(Vec<String>),
    #[error(
        "the token has a content type (`cty` {0}), as a nested token would; Lanyard reads plain JWTs only"
    )]
    ContentType(String),
    #[error("no key in the provider's key set matches {}", kid.as_deref().map(|k| format!("kid `{k}`")).unwrap_or_else(|| "the token's algorithm".into()))]
    NoKey { kid: Option<String> },
    #[error("the signature does not verify with the provider's keys")]
    BadSignature,
}

/// The protected header fields Lanyard reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub crit: Option<Vec<String>>,
    /// Present only to tell an encrypted token apart; JWE is refused.
    pub enc: Option<String>,
    /// A content type means a nested JWT (or other content): refused.
    pub cty: Option<String>,
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug)]
pub struct Jws<'a> {
    pub header: Header,
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// One JSON Web Key (RFC 7517); only the members Lanyard uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub alg: Option<String>,
    #[serde(rename = "use")]
    pub use_: Option<String>,
    pub key_ops: Option<Vec<String>>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
}

/// A key set. Members that are not keys Lanyard can read are skipped, not fatal: a
/// provider may publish encryption keys or key types beside its signing keys.
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl<'de> Deserialize<'de> for JwkSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(JwkSet {
            keys: raw
                .keys
                .into_iter()
                .filter_map(|k| serde_json::from_value(k).ok())
                .collect(),
        })
    }
}

pub fn parse(token: &str) -> Result<Jws<'_>, Error> {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => return Err(Error::Encrypted),
        _ => return Err(Error::Malformed("expected three dot-separated parts")),
    }
    let header_bytes = b64(parts[0]).ok_or(Error::Malformed("the header is not base64url"))?;
    // A member given twice (two `alg`s) is read differently by different libraries.
    let header = object(&header_bytes).map_err(|e| match e {
        ObjectError::Duplicate(_) => Error::Malformed("the header has a member twice"),
        ObjectError::Invalid => Error::Malformed("the header is not a JSON object with `alg`"),
    })?;
    let header: Header = serde_json::from_value(serde_json::Value::Object(header))
        .map_err(|_| Error::Malformed("the header is not a JSON object with `alg`"))?;
    if header.enc.is_some() {
        return Err(Error::Encrypted);
    }
    let payload = b64(parts[1]).ok_or(Error::Malformed("the payload is not base64url"))?;
    let signature = b64(parts[2]).ok_or(Error::Malformed("the signature is not base64url"))?;
    let signing_input = &token[..parts[0].len() + 1 + parts[1].len()];
    Ok(Jws {
        header,
        payload,
        signing_input,
        signature,
    })
}

impl Jws<'_> {
    /// Checks the header against the allow-list and verifies the signature with a key
    /// from `keys`. Returns [`Error::NoKey`] when no key could even be tried, so that the
    /// caller can refetch a rotated key set and try once more.
    pub fn verify<'k>(&self, keys: &'k JwkSet, allowed: &[String]) -> Result<&'k Jwk, Error> {
        let alg = self.header.alg.as_str();
        if alg.eq_ignore_ascii_case("none") {
            return Err(Error::Unsigned);
        }
        if !allowed.iter().any(|a| a == alg) || !SUPPORTED_ALGS.contains(&alg) {
            return Err(Error::AlgNotAllowed {
                alg: alg.to_owned(),
                allowed: allowed.to_vec(),
            });
        }
        if let Some(crit) = &self.header.crit {
            return Err(Error::Crit(crit.clone()));
        }
        if let Some(cty) = &self.header.cty {
            return Err(Error::ContentType(format!("`{cty}`")));
        }
        let mut candidates = keys
            .keys
            .iter()
            .filter(|k| match (&self.header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .filter(|k| usable_for(k, alg))
            .peekable();
        if candidates.peek().is_none() {
            return Err(Error::NoKey {
                kid: self.header.kid.clone(),
            });
        }
        candidates
            .find(|k| verify_with(k, alg, self.signing_input.as_bytes(), &self.signature))
            .ok_or(Error::BadSignature)
    }
}

/// The left half of the hash of `value` with the hash function of `alg`, base64url: the
/// `at_hash` and `c_hash` rule of OpenID Connect Core 3.1.3.6 (SHA-512 for Ed25519).
pub fn half_hash(alg: &str, value: &str) -> Option<String> {
    let algorithm = match alg {
        "RS256" | "PS256" | "ES256" => &ring::digest::SHA256,
        "RS384" | "PS384" | "ES384" => &ring::digest::SHA384,
        "RS512" | "PS512" | "EdDSA" => &ring::digest::SHA512,
        _ => return None,
    };
    let digest = ring::digest::digest(algorithm, value.as_bytes());
    let bytes = digest.as_ref();
    Some(URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2]))
}

/// Why [`object`] refused some JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// Not a JSON object.
    Invalid,
    /// This member name appears twice in one object (at any depth).
    Duplicate(String),
}

/// A JSON object, refusing any object (at any depth) that names a member twice: RFC 7515
/// section 4 and RFC 7519 section 4 say such a JWS or JWT must be rejected, or the last
/// member taken; Lanyard rejects, so that no two readers of one token disagree about it.
pub fn object(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ObjectError> {
    use serde::de::Error as _;
    let mut duplicate = None;
    let parsed = {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Strict::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        match value {
            Ok(Strict(serde_json::Value::Object(map))) => Ok(map),
            Ok(_) => Err(serde_json::Error::custom("not an object")),
            Err(e) => {
                let text = e.to_string();
                if let Some(name) = text
                    .strip_prefix("duplicate member `")
                    .and_then(|rest| rest.split('`').next())
                {
                    duplicate = Some(name.to_owned());
                }
                Err(e)
            }
        }
    };
    parsed.map_err(|_| match duplicate {
        Some(name) => ObjectError::Duplicate(name),
        None => ObjectError::Invalid,
    })
}

/// A JSON value whose objects have no member twice.
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(v.into()))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(serde_json::Value::Null))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(items.into()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        use serde::de::Error as _;
        let mut members = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(A::Error::custom(format!("duplicate member `{name}`")));
            }
            let Strict(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(Strict(members.into()))
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

fn usable_for(key: &Jwk, alg: &str) -> bool {
    if key.use_.as_deref().is_some_and(|u| u != "sig") {
        return false;
    }
    if key
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
    {
        return false;
    }
    if key.alg.as_deref().is_some_and(|a| a != alg) {
        return false;
    }
    match alg {
        a if a.starts_with("RS") || a.starts_with("PS") => key.kty == "RSA",
        "ES256" => key.kty == "EC" && key.crv.as_deref() == Some("P-256"),
        "ES384" => key.kty == "EC" && key.crv.as_deref() == Some("P-384"),
        "EdDSA" => key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519"),
        _ => false,
    }
}

fn verify_with(key: &Jwk, alg: &str, message: &[u8], sig: &[u8]) -> bool {
    let rsa = |params: &'static signature::RsaParameters| {
        let (Some(n), Some(e)) = (
            key.n.as_deref().and_then(b64),
            key.e.as_deref().and_then(b64),
        ) else {
            return false;
        };
        let strip = |v: &[u8]| {
            v.iter()
                .position(|&b| b != 0)
                .map_or(vec![], |i| v[i..].to_vec())
        };
        signature::RsaPublicKeyComponents {
            n: strip(&n),
            e: strip(&e),
        }
        .verify(params, message, sig)
        .is_ok()
    };
    let ec = |algorithm: &'static dyn VerificationAlgorithm, len: usize| {
        let (Some(x), Some(y)) = (
            key.x.as_deref().and_then(b64),
            key.y.as_deref().and_then(b64),
        ) else {
            return false;
        };
        if x.len() != len || y.len() != len {
            return false;
        }
        let point = [&[4u8][..], &x, &y].concat();
        UnparsedPublicKey::new(algorithm, point)
            .verify(message, sig)
            .is_ok()
    };
    match alg {
        "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => rsa(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => rsa(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => ec(&signature::ECDSA_P256_SHA256_FIXED, 32),
        "ES384" => ec(&signature::ECDSA_P384_SHA384_FIXED, 48),
        "EdDSA" => key.x.as_deref().and_then(b64).is_some_and(|x| {
            UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok()
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    fn es256_key(kid: &str) -> (EcdsaKeyPair, Jwk) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some(kid.into()),
            alg: None,
            use_: Some("sig".into()),
            key_ops: None,
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(URL_SAFE_NO_PAD.encode(&point[1..33])),
            y: Some(URL_SAFE_NO_PAD.encode(&point[33..])),
        };
        (pair, jwk)
    }

    fn sign(pair: &EcdsaKeyPair, header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let sig = pair
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn allowed() -> Vec<String> {
        vec!["ES256".into(), "RS256".into()]
    }

    #[test]
    fn verifies_with_matching_kid_and_without_kid() {
        let (pair, jwk) = es256_key("k1");
        let set = JwkSet { keys: vec![jwk] };
        let t = sign(&pair, r#"{"alg":"ES256","kid":"k1"}"#, "{}");
        assert!(parse(&t).unwrap().verify(&set, &allowed()).is_ok());
        let t = sign(&pair, r#"{"alg":"ES256"}"#, "{}");
        assert!(parse(&t).unwrap().verify(&set, &allowed()).is_ok());
    }

    #[test]
    fn refuses_what_it_must() {
        let (pair, jwk) = es256_key("k1");
        let (other, _) = es256_key("k1");
        let set = JwkSet { keys: vec![jwk] };
        let check = |token: String, expected: Error| {
            assert_eq!(
                parse(&token).and_then(|j| j.verify(&set, &allowed()).map(|_| ())),
                Err(expected)
            );
        };
        check(
            sign(&other, r#"{"alg":"ES256","kid":"k1"}"#, "{}"),
            Error::BadSignature,
        );
        check(
            sign(&pair, r#"{"alg":"ES256","kid":"k2"}"#, "{}"),
            Error::NoKey {
                kid: Some("k2".into()),
            },
        );
        check(sign(&pair, r#"{"alg":"none"}"#, "{}"), Error::Unsigned);
        check(
            sign(&pair, r#"{"alg":"HS256"}"#, "{}"),
            Error::AlgNotAllowed {
                alg: "HS256".into(),
                allowed: allowed(),
            },
        );
        check(
            sign(&pair, r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "{}"),
            Error::Crit(vec!["exp".into()]),
        );
        check("a.b.c.d.e".into(), Error::Encrypted);
        check(
            "a.b".into(),
            Error::Malformed("expected three dot-separated parts"),
        );
    }

    #[test]
    fn a_member_named_twice_is_refused_at_any_depth() {
        assert_eq!(
            object(br#"{"sub":"alice","sub":"mallory"}"#),
            Err(ObjectError::Duplicate("sub".into()))
        );
        assert_eq!(
            object(br#"{"a":[{"x":1,"x":2}]}"#),
            Err(ObjectError::Duplicate("x".into()))
        );
        assert_eq!(object(b"[1]"), Err(ObjectError::Invalid));
        assert_eq!(object(br#"{"a":1} x"#), Err(ObjectError::Invalid));
        let ok = object(br#"{"a":{"b":[1,2.5,"c",null,true]},"d":-1}"#).unwrap();
        assert_eq!(ok["a"]["b"][1], 2.5);
        // Two `alg`s in a header: which one a verifier reads is not to be guessed at.
        let (pair, jwk) = es256_key("k1");
        let set = JwkSet { keys: vec![jwk] };
        let t = sign(&pair, r#"{"alg":"none","alg":"ES256"}"#, "{}");
        assert_eq!(
            parse(&t).map(|_| ()),
            Err(Error::Malformed("the header has a member twice"))
        );
        let _ = set;
    }

    #[test]
    fn at_hash_example_from_the_spec() {
        // OpenID Connect Core, Appendix A.3 (id_token token response).
        assert_eq!(
            half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
    }
}
