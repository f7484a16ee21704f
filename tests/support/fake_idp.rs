//! A hostile OpenID provider, in process, for what a real provider never does: forged
//! signatures, `alg: none`, HMAC keyed with the public key, keys in the token header,
//! wrong nonce, audience, issuer, subject … Every other test uses the real provider.
//!
//! It speaks just enough HTTP/1.1 (one request per connection) to serve discovery, the
//! key set, an authorization endpoint that redirects straight back with a code, a token
//! endpoint that checks PKCE, and userinfo. What it sends is set by [`Behaviour`].

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

pub const CLIENT_ID: &str = "lanyard-test";
pub const ACCESS_TOKEN: &str = "at-1-aaaaaaaaaaaaaaaaaaaa";

/// How the ID token is signed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Signing {
    /// With the provider's key, published in its JWKS.
    #[default]
    Good,
    /// With a key the provider never published.
    OtherKey,
    /// `alg: none`, empty signature.
    Unsigned,
    /// HS256 keyed with the provider's public key (the RSA/HMAC confusion attack).
    HmacWithPublicKey,
}

#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Claims to set (or remove, with `Value::Null`) in the sign-in's ID token.
    pub claims: Vec<(&'static str, Value)>,
    /// Header members to set (or remove, with `Value::Null`).
    pub header: Vec<(&'static str, Value)>,
    pub signing: Signing,
    pub userinfo_sub: Option<&'static str>,
    /// What discovery says the issuer is, if not the truth.
    pub discovery_issuer: Option<&'static str>,
    /// The `iss` of the authorization response (RFC 9207), if not the truth.
    pub response_iss: Option<&'static str>,
    /// The key set first holds only an old key; the signing key appears on refetch.
    pub rotate_keys: bool,
    /// The `sub` of the ID token returned by a refresh.
    pub refresh_sub: Option<&'static str>,
    /// The token endpoint answers refreshes with this HTTP status and no body (an outage).
    pub refresh_outage: Option<u16>,
    /// The revocation endpoint's first this many requests lose their connection
    /// unanswered (a connection the server closed as the request went out).
    pub revocation_drops: usize,
    /// The token responses' `expires_in`, if not an hour (0, negative, absurd).
    pub expires_in: Option<Value>,
    /// DPoP (RFC 9449): offered in discovery, and each proof at the token endpoint
    /// checked as a strict provider checks it.
    pub dpop: Option<Dpop>,
    /// Answers `token_type: DPoP` whatever was asked (no proof, no binding).
    pub dpop_anyway: bool,
}

/// How the fake provider takes DPoP proofs at its token endpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dpop {
    /// Checked (signature with the key it carries, `typ`, `htm`, `htu`, `iat`, a `jti`
    /// never seen before), and the refresh token bound to the key of the code exchange.
    Checked,
    /// Checked, and the nonce `n-1` required: a proof without it is answered
    /// `use_dpop_nonce`.
    Nonce,
    /// Every proof is answered `use_dpop_nonce`, with a new nonce each time.
    NewNonceEveryTime,
}

#[derive(Default)]
struct Seen {
    nonce: Option<String>,
    challenge: Option<String>,
    redeemed: Vec<String>,
    jwks_fetches: usize,
    dropped: usize,
    revoked: Vec<String>,
    /// The refresh tokens presented at the token endpoint.
    refreshed: Vec<String>,
    /// The claims of each DPoP proof sent to the token endpoint, in order.
    proofs: Vec<Value>,
    /// The key (`x`) the code exchange's proof carried: the refresh token is bound to it.
    bound_to: Option<String>,
}

pub struct FakeIdp {
    pub issuer: String,
    seen: Arc<Mutex<Seen>>,
}

struct Keys {
    good: RsaKeyPair,
    other: RsaKeyPair,
}

impl FakeIdp {
    pub async fn start(behaviour: Behaviour) -> FakeIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let keys = Arc::new(Keys {
            good: load_key("rsa-a.pem"),
            other: load_key("rsa-b.pem"),
        });
        let (iss, shared) = (issuer.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (iss, shared, keys, behaviour) =
                    (iss.clone(), shared.clone(), keys.clone(), behaviour.clone());
                tokio::spawn(async move { serve(stream, &iss, &shared, &keys, &behaviour).await });
            }
        });
        FakeIdp { issuer, seen }
    }

    /// Codes redeemed at the token endpoint.
    pub fn redeemed(&self) -> Vec<String> {
        self.seen.lock().unwrap().redeemed.clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.seen.lock().unwrap().jwks_fetches
    }

    /// The tokens the revocation endpoint answered for, with their hints: `hint:token`.
    /// The refresh tokens presented at the token endpoint, in order.
    pub fn refreshed(&self) -> Vec<String> {
        self.seen.lock().unwrap().refreshed.clone()
    }

    pub fn revoked(&self) -> Vec<String> {
        self.seen.lock().unwrap().revoked.clone()
    }

    /// The claims of the DPoP proofs the token endpoint was sent, in order.
    pub fn proofs(&self) -> Vec<Value> {
        self.seen.lock().unwrap().proofs.clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    issuer: &str,
    seen: &Mutex<Seen>,
    keys: &Keys,
    b: &Behaviour,
) {
    let Some((method, path, params, authorization, proof)) = read(&mut stream).await else {
        return;
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (status, headers, body) = match (method.as_str(), path.as_str()) {
        ("GET", "/.well-known/openid-configuration") => (
            200,
            vec![],
            json!({
                "issuer": b.discovery_issuer.unwrap_or(issuer),
                "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"),
                "userinfo_endpoint": format!("{issuer}/userinfo"),
                "revocation_endpoint": format!("{issuer}/revoke"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "dpop_signing_alg_values_supported": if b.dpop.is_some() { vec!["ES256"] } else { vec![] },
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": true,
            })
            .to_string(),
        ),
        ("GET", "/jwks") => {
            let fetches = {
                let mut s = seen.lock().unwrap();
                s.jwks_fetches += 1;
                s.jwks_fetches
            };
            let keys = if b.rotate_keys && fetches == 1 {
                vec![jwk(&keys.other, "old-key")]
            } else {
                vec![jwk(&keys.good, "k1")]
            };
            (200, vec![], json!({ "keys": keys }).to_string())
        }
        // Served to prove that a `jku` header is never followed.
        ("GET", "/evil-jwks") => (200, vec![], json!({ "keys": [jwk(&keys.other, "evil")] }).to_string()),
        ("GET", "/authorize") => {
            {
                let mut s = seen.lock().unwrap();
                s.nonce = Some(get("nonce"));
                s.challenge = Some(get("code_challenge"));
            }
            let mut location = url::Url::parse(&get("redirect_uri")).unwrap();
            location
                .query_pairs_mut()
                .append_pair("code", "good-code")
                .append_pair("state", &get("state"))
                .append_pair("iss", b.response_iss.unwrap_or(issuer));
            (302, vec![("Location".to_owned(), location.to_string())], String::new())
        }
        ("POST", "/token") => token(issuer, seen, keys, b, &get, &proof),
        ("POST", "/revoke") => {
            let mut s = seen.lock().unwrap();
            if s.dropped < b.revocation_drops {
                s.dropped += 1;
                return; // the connection closes, unanswered
            }
            s.revoked
                .push(format!("{}:{}", get("token_type_hint"), get("token")));
            (200, vec![], String::new())
        }
        // RFC 6750 section 2.1: the access token in the Authorization header, nowhere else.
        // A DPoP-bound token: `Authorization: DPoP`, with a proof.
        ("GET", "/userinfo")
            if authorization != format!("Bearer {ACCESS_TOKEN}")
                && !(b.dpop.is_some()
                    && authorization == format!("DPoP {ACCESS_TOKEN}")
                    && !proof.is_empty()) =>
        (
            401,
            vec![],
            json!({ "error": "invalid_token" }).to_string(),
        ),
        ("GET", "/userinfo") => (
            200,
            vec![],
            json!({ "sub": b.userinfo_sub.unwrap_or("alice"), "name": "Alice Example", "email": "alice@example.test" })
                .to_string(),
        ),
        _ => (404, vec![], json!({ "error": "not_found" }).to_string()),
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn token(
    issuer: &str,
    seen: &Mutex<Seen>,
    keys: &Keys,
    b: &Behaviour,
    get: &dyn Fn(&str) -> String,
    proof: &str,
) -> (u16, Vec<(String, String)>, String) {
    let error = |e: &str| (400, vec![], json!({ "error": e }).to_string());
    let bound = match b.dpop {
        Some(mode) => match check_proof(issuer, seen, proof, mode) {
            Ok(key) => Some(key),
            Err(refusal) => return refusal,
        },
        None => None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "iss": issuer, "aud": CLIENT_ID, "sub": "alice", "exp": now + 300, "iat": now,
    });
    let (access, refresh) = match get("grant_type").as_str() {
        "authorization_code" => {
            let mut s = seen.lock().unwrap();
            let code = get("code");
            s.redeemed.push(code.clone());
            let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA256,
                get("code_verifier").as_bytes(),
            ));
            if code != "good-code" || s.challenge.as_deref() != Some(challenge.as_str()) {
                return error("invalid_grant");
            }
            s.bound_to.clone_from(&bound);
            claims["nonce"] = json!(s.nonce.clone());
            for (k, v) in &b.claims {
                set(claims.as_object_mut().unwrap(), k, v.clone());
            }
            (ACCESS_TOKEN.to_owned(), "rt-1")
        }
        "refresh_token" if b.refresh_outage.is_some() => {
            return (b.refresh_outage.unwrap_or(503), vec![], String::new());
        }
        "refresh_token" => {
            let mut s = seen.lock().unwrap();
            s.refreshed.push(get("refresh_token"));
            // A bound refresh token goes with a proof of its key, and no other.
            if s.bound_to.is_some() && s.bound_to != bound {
                return error("invalid_grant");
            }
            drop(s);
            claims["sub"] = json!(b.refresh_sub.unwrap_or("alice"));
            ("at-2-bbbbbbbbbbbbbbbbbbbb".to_owned(), "rt-2")
        }
        _ => return error("unsupported_grant_type"),
    };
    let mut header = json!({ "alg": "RS256", "kid": "k1", "typ": "JWT" });
    for (k, v) in &b.header {
        set(header.as_object_mut().unwrap(), k, v.clone());
    }
    let id_token = sign(&header, &claims, b.signing, keys);
    let token_type = if bound.is_some() || b.dpop_anyway {
        "DPoP"
    } else {
        "Bearer"
    };
    let body = json!({
        "access_token": access, "token_type": token_type,
        "expires_in": b.expires_in.clone().unwrap_or(json!(3600)),
        "refresh_token": refresh, "id_token": id_token,
    });
    (200, vec![], body.to_string())
}

/// Checks a DPoP proof as a strict provider does (RFC 9449 section 4.3); the key's `x` when
/// it passes, else the refusal to send.
#[allow(clippy::type_complexity)]
fn check_proof(
    issuer: &str,
    seen: &Mutex<Seen>,
    proof: &str,
    mode: Dpop,
) -> Result<String, (u16, Vec<(String, String)>, String)> {
    let refuse = |error: &str, why: &str, nonce: Option<String>| {
        let headers = nonce
            .map(|n| ("DPoP-Nonce".to_owned(), n))
            .into_iter()
            .collect();
        (
            400,
            headers,
            json!({ "error": error, "error_description": why }).to_string(),
        )
    };
    let invalid = |why: &str| refuse("invalid_dpop_proof", why, None);
    let part = |i: usize| -> Option<Value> {
        let text = proof.split('.').nth(i)?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (part(0), part(1)) else {
        return Err(invalid("no proof"));
    };
    if header["typ"] != "dpop+jwt" || header["alg"] != "ES256" || header["jwk"].get("d").is_some() {
        return Err(invalid("typ, alg or jwk"));
    }
    let keys: lanyard::jose::JwkSet =
        serde_json::from_value(json!({ "keys": [header["jwk"].clone()] })).unwrap();
    let verified = lanyard::jose::parse(proof)
        .ok()
        .is_some_and(|jws| jws.verify(&keys, &["ES256".to_owned()]).is_ok());
    if !verified {
        return Err(invalid("signature"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut s = seen.lock().unwrap();
    let replayed = s.proofs.iter().any(|p| p["jti"] == claims["jti"]);
    s.proofs.push(claims.clone());
    if claims["htm"] != "POST" || claims["htu"] != format!("{issuer}/token") {
        return Err(invalid("htm or htu"));
    }
    if !claims["jti"].is_string() || replayed {
        return Err(invalid("jti replayed"));
    }
    if claims["iat"]
        .as_u64()
        .is_none_or(|iat| iat.abs_diff(now) > 60)
    {
        return Err(invalid("iat"));
    }
    match mode {
        Dpop::Checked => {}
        Dpop::Nonce if claims["nonce"] == "n-1" => {}
        Dpop::Nonce => return Err(refuse("use_dpop_nonce", "a nonce", Some("n-1".into()))),
        Dpop::NewNonceEveryTime => {
            let nonce = format!("n-{}", s.proofs.len());
            return Err(refuse("use_dpop_nonce", "another nonce", Some(nonce)));
        }
    }
    Ok(header["jwk"]["x"].as_str().unwrap_or_default().to_owned())
}

fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
}

fn sign(header: &Value, claims: &Value, signing: Signing, keys: &Keys) -> String {
    let mut header = header.clone();
    match signing {
        Signing::Unsigned => header["alg"] = json!("none"),
        Signing::HmacWithPublicKey => header["alg"] = json!("HS256"),
        _ => {}
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rsa = |key: &RsaKeyPair| rs256(key, &input);
    let signature = match signing {
        Signing::Good => rsa(&keys.good),
        Signing::OtherKey => rsa(&keys.other),
        Signing::Unsigned => vec![],
        Signing::HmacWithPublicKey => {
            let n = jwk(&keys.good, "k1")["n"].as_str().unwrap().to_owned();
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, n.as_bytes());
            ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A JWS signed as the fake provider signs (for tests that check tokens without it).
pub fn signed(header: &Value, claims: &Value, signing: Signing) -> String {
    let keys = Keys {
        good: load_key("rsa-a.pem"),
        other: load_key("rsa-b.pem"),
    };
    sign(header, claims, signing, &keys)
}

/// `input` (`header.payload`, base64url) with the provider's RS256 signature appended.
pub fn sign_input(input: &str) -> String {
    let sig = rs256(&load_key("rsa-a.pem"), input);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn rs256(key: &RsaKeyPair, input: &str) -> Vec<u8> {
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    sig
}

/// The fake provider's key set, as its jwks_uri serves it.
pub fn key_set() -> Value {
    json!({ "keys": [jwk(&load_key("rsa-a.pem"), "k1")] })
}

/// The public half of `key` as a JWK.
pub fn jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e),
    })
}

/// The attacker's own public key, for tests that put it in the token header.
pub fn attacker_jwk() -> Value {
    jwk(&load_key("rsa-b.pem"), "attacker")
}

fn load_key(name: &str) -> RsaKeyPair {
    let pem = std::fs::read_to_string(super::root().join("tests/fixtures").join(name)).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    RsaKeyPair::from_pkcs8(&der).unwrap()
}

/// Method, path, query and form parameters, and the Authorization header.
/// One request: its method, path, query and form parameters, and its `Authorization` and
/// `DPoP` headers.
#[allow(clippy::type_complexity)]
pub async fn read(
    stream: &mut TcpStream,
) -> Option<(String, String, Vec<(String, String)>, String, String)> {
    let mut buf = Vec::new();
    let head = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf[..head]).ok()?;
    let length = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    let (method, target) = (req.method?.to_owned(), req.path?.to_owned());
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .unwrap_or_default()
    };
    let (authorization, proof) = (header("authorization"), header("dpop"));
    while buf.len() < head + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    params.extend(url::form_urlencoded::parse(&buf[head..]).into_owned());
    Some((method, path.to_owned(), params, authorization, proof))
}
