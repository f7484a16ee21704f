//! DPoP (RFC 9449): an account's key pair, which its tokens are bound to, and the proofs
//! that show the key at each request.
//!
//! The key is ES256 (P-256), made by `ring` and kept in the keychain as PKCS#8 (like a
//! refresh token: never in a file, never over the broker's socket). A proof is a JWS of
//! `typ: dpop+jwt` whose header carries the public key, and whose claims name the request
//! (`htm`, `htu`), when (`iat`), a one-time `jti`, the server's `nonce` when it asked for
//! one, and for a resource request the access token's hash (`ath`). A server's nonce
//! (`DPoP-Nonce`) is kept per origin and sent until the server gives another.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use url::Url;

use crate::secret::{self, Secret};

/// The only algorithm Lanyard signs proofs with.
pub const ALG: &str = "ES256";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the account's DPoP key in the keychain is not a P-256 key Lanyard can use")]
    BadKey,
    #[error("cannot make or use a DPoP key: the OS random source failed")]
    Random,
    #[error("DPoP proofs are for http(s) URLs, not {0}")]
    NotHttp(String),
}

/// An account's DPoP key pair.
pub struct Key {
    pair: EcdsaKeyPair,
    jwk: Value,
    thumbprint: String,
    /// The latest `DPoP-Nonce` of each server (by origin).
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dpop::Key")
            .field("jkt", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A new key, and its PKCS#8 form to keep.
    pub fn generate() -> Result<(Key, Secret), Error> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::Random)?;
        let kept = Secret::new(URL_SAFE_NO_PAD.encode(pkcs8.as_ref()));
        Ok((Key::from_pkcs8(&kept)?, kept))
    }

    /// The key kept by [`Key::generate`].
    pub fn from_pkcs8(kept: &Secret) -> Result<Key, Error> {
        let der = URL_SAFE_NO_PAD
            .decode(kept.expose().trim())
            .map_err(|_| Error::BadKey)?;
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|_| Error::BadKey)?;
        // An uncompressed point: 0x04, x, y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 || point[0] != 4 {
            return Err(Error::BadKey);
        }
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..]),
        );
        // RFC 7638: the required members, in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ));
        Ok(Key {
            pair,
            jwk: json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y }),
            thumbprint,
            nonces: Mutex::new(HashMap::new()),
        })
    }

    /// The key's JWK thumbprint (RFC 7638), which a bound token names as `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A proof for one request: `method` at `url` (its query and fragment are not part of
    /// `htu`), for `access_token` when the request carries one. The server's nonce is
    /// included when it has given one.
    pub fn proof(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&Secret>,
    ) -> Result<String, Error> {
        let nonce = self.nonce_for(url);
        self.proof_with(method, url, access_token, nonce.as_deref(), now())
    }

    fn proof_with(
        &self,
        method: &str,
        url: &Url,
        access_token: Option<&Secret>,
        nonce: Option<&str>,
        iat: u64,
    ) -> Result<String, Error> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::NotHttp(url.scheme().to_owned()));
        }
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let jti = secret::random(16).map_err(|_| Error::Random)?;
        let header = json!({ "typ": "dpop+jwt", "alg": ALG, "jwk": self.jwk });
        let mut claims = json!({
            "jti": jti.expose(),
            "htm": method.to_ascii_uppercase(),
            "htu": htu.as_str(),
            "iat": iat,
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access_token {
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA256,
                token.expose().as_bytes(),
            )));
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .map_err(|_| Error::Random)?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Keeps a server's `DPoP-Nonce` for its next proofs. Returns whether it is new (a
    /// request refused with `use_dpop_nonce` is worth one more try only then).
    pub fn remember_nonce(&self, url: &Url, nonce: &str) -> bool {
        // A nonce is an opaque token a server chose; one that is absurd is not sent back.
        if nonce.is_empty() || nonce.len() > 1024 || !nonce.chars().all(|c| c.is_ascii_graphic()) {
            return false;
        }
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let origin = url.origin().ascii_serialization();
        nonces.insert(origin, nonce.to_owned()).as_deref() != Some(nonce)
    }

    fn nonce_for(&self, url: &Url) -> Option<String> {
        let nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.get(&url.origin().ascii_serialization()).cloned()
    }
}

/// Sends a request through `send`, with a DPoP proof of `dpop` for it (`method` at `url`,
/// carrying `access_token`) when there is a key. A server that answers `use_dpop_nonce`
/// with a nonce new to it is asked once more, with the nonce; a nonce it sends with an
/// answer is kept for the next request (RFC 9449 section 8).
pub async fn proved<E, F, Fut>(
    dpop: Option<&Key>,
    (method, url, access_token): (&str, &Url, Option<&Secret>),
    send: F,
) -> Result<crate::http::Response, E>
where
    E: From<crate::http::Error> + From<Error>,
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<crate::http::Response, crate::http::Error>>,
{
    let mut retried = false;
    loop {
        let proof = match dpop {
            Some(key) => Some(key.proof(method, url, access_token)?),
            None => None,
        };
        match send(proof).await {
            Ok(response) => {
                if let (Some(key), Some(nonce)) = (dpop, &response.dpop_nonce) {
                    key.remember_nonce(url, nonce);
                }
                return Ok(response);
            }
            Err(crate::http::Error::Provider {
                error,
                dpop_nonce: Some(nonce),
                ..
            }) if error == "use_dpop_nonce"
                && !retried
                && dpop.is_some_and(|key| key.remember_nonce(url, &nonce)) =>
            {
                retried = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose;

    fn parts(proof: &str) -> (Value, Value) {
        let mut it = proof.split('.');
        let mut part = || -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap()
        };
        (part(), part())
    }

    #[test]
    fn a_proof_names_its_request_and_verifies_with_the_key_it_carries() {
        let (key, kept) = Key::generate().unwrap();
        let url = Url::parse("https://id.example.com/token?x=1#f").unwrap();
        let proof = key.proof("post", &url, None).unwrap();
        let (header, claims) = parts(&proof);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(header["jwk"].get("d").is_none(), "the private key stays");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://id.example.com/token");
        assert!(claims.get("nonce").is_none() && claims.get("ath").is_none());
        // Verified with the public key from its own header, as a server does.
        let set: jose::JwkSet =
            serde_json::from_value(json!({ "keys": [header["jwk"].clone()] })).unwrap();
        jose::parse(&proof)
            .unwrap()
            .verify(&set, &["ES256".to_owned()])
            .unwrap();
        // Each proof is new; the kept key is the same key.
        let again = key.proof("post", &url, None).unwrap();
        assert_ne!(parts(&again).1["jti"], claims["jti"]);
        let same = Key::from_pkcs8(&kept).unwrap();
        assert_eq!(same.thumbprint(), key.thumbprint());
    }

    #[test]
    fn nonces_are_per_server_and_ath_binds_the_token() {
        let (key, _) = Key::generate().unwrap();
        let token_endpoint = Url::parse("https://id.example.com/token").unwrap();
        let api = Url::parse("https://api.example.com/me").unwrap();
        assert!(key.remember_nonce(&token_endpoint, "n-1"));
        assert!(!key.remember_nonce(&token_endpoint, "n-1"), "not new");
        assert!(!key.remember_nonce(&token_endpoint, "bad nonce\n"));
        let (_, at_server) = parts(&key.proof("POST", &token_endpoint, None).unwrap());
        assert_eq!(at_server["nonce"], "n-1");
        let token = Secret::new("at-123");
        let (_, at_api) = parts(&key.proof("GET", &api, Some(&token)).unwrap());
        assert!(at_api.get("nonce").is_none(), "another server's nonce");
        // RFC 9449 section 4.2: base64url(SHA-256(the token's ASCII)).
        assert_eq!(at_api["ath"], "pZOyhFN0Z9eQivPyniH1Gg1OzUpcjUffjr7n0FzCLck");
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 section 3.1 hashes an RSA key; for EC the members are crv, kty, x, y.
        let (key, _) = Key::generate().unwrap();
        let jwk = &key.jwk;
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            jwk["x"], jwk["y"]
        );
        let expected = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ));
        assert_eq!(key.thumbprint(), expected);
        assert!(Key::from_pkcs8(&Secret::new("not a key")).is_err());
    }
}
