//! Lanyard's own ID-token verifier (`jose` and `validate`) beside the `openidconnect`
//! crate's, as a differential oracle. Over the hostile table and a few thousand generated
//! tokens, every token `openidconnect` rejects, Lanyard rejects too. Where Lanyard rejects
//! what `openidconnect` accepts, it is on purpose, and [`STRICTER`] lists each such check
//! with its reason; a difference not listed there fails the test.
//!
//! Both verify the same bytes with the same key set, client id, issuer and nonce. The
//! oracle is given Lanyard's clock-skew allowance for `exp` (its clock runs 61 s behind),
//! so that the two agree on what "expired" means and differ only in the checks themselves.
//!
//! What the oracle found: `openidconnect` refuses a `typ` other than JWT and any `cty`;
//! Lanyard took both, and now refuses them too (an access token passed off as an ID
//! token). Both refuse a member named twice and `crit`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use serde_json::{Value, json};

use lanyard::jose::{self, JwkSet};
use lanyard::secret::Secret;
use lanyard::validate::{self, CLOCK_SKEW, Expected};

use crate::support::fake_idp::{self, Signing};

const ISSUER: &str = "https://id.example.com";
const CLIENT: &str = "lanyard-test";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: u64 = 1_800_000_000;

/// Checks Lanyard makes that `openidconnect` leaves to its caller or does not make; the
/// cases the differential finds must each fall under one of these names.
const STRICTER: &[(&str, &str)] = &[
    (
        "iat",
        "Core 3.1.3.7 step 10 leaves the iat window to the client; openidconnect accepts any iat unless told, Lanyard refuses one more than its clock skew in the future",
    ),
    (
        "azp",
        "Core 3.1.3.7 step 5: an azp that is present must be this client; openidconnect does not check azp at all",
    ),
    (
        "nbf",
        "RFC 7519 4.1.5: a token not yet valid is refused; openidconnect ignores nbf",
    ),
    (
        "sub",
        "Core 2: sub is a non-empty identifier; openidconnect takes an empty string",
    ),
];

/// A token as the provider would send it, before any mutation.
fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "alice", "exp": NOW + 300, "iat": NOW - 5,
        "nonce": NONCE,
    })
}

fn header() -> Value {
    json!({ "alg": "RS256", "kid": "k1", "typ": "JWT" })
}

/// Lanyard's verdict: `Err` names the failed check.
fn lanyard(token: &str, nonce: Option<&str>) -> Result<(), String> {
    let keys: JwkSet = serde_json::from_value(fake_idp::key_set()).unwrap();
    let jws = jose::parse(token).map_err(|e| e.to_string())?;
    jws.verify(&keys, &["RS256".to_owned()])
        .map_err(|e| e.to_string())?;
    validate::id_token_type(jws.header.typ.as_deref()).map_err(|e| e.to_string())?;
    let nonce = nonce.map(Secret::new);
    let expected = Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: nonce.as_ref(),
        max_age: None,
        access_token: None,
        require_at_hash: false,
        now: NOW,
    };
    validate::id_token(&jws.payload, &jws.header.alg, &expected)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `openidconnect`'s verdict, with its defaults but for the clock.
fn oracle(token: &str, nonce: Option<&str>) -> Result<(), String> {
    let keys: CoreJsonWebKeySet = serde_json::from_value(fake_idp::key_set()).unwrap();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(CLIENT.into()),
        IssuerUrl::new(ISSUER.into()).unwrap(),
        keys,
    )
    .set_time_fn(|| chrono::DateTime::from_timestamp((NOW - CLOCK_SKEW - 1) as i64, 0).unwrap());
    let token: CoreIdToken = token.parse().map_err(|e| format!("parse: {e}"))?;
    match nonce {
        Some(nonce) => token
            .claims(&verifier, &Nonce::new(nonce.into()))
            .map(drop)
            .map_err(|e| e.to_string()),
        None => token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

/// One case: edits to the header and claims, how it is signed, and which listed
/// strictness (if any) explains Lanyard alone refusing it.
struct Case {
    name: String,
    header: Value,
    claims: Value,
    signing: Signing,
    /// Set when the token is built by hand (a member twice cannot be a `Value`).
    raw: Option<String>,
}

impl Case {
    fn token(&self) -> String {
        match &self.raw {
            Some(raw) => raw.clone(),
            None => fake_idp::signed(&self.header, &self.claims, self.signing),
        }
    }
}

fn case(name: &str, edit: impl FnOnce(&mut Value, &mut Value)) -> Case {
    let (mut h, mut c) = (header(), claims());
    edit(&mut h, &mut c);
    Case {
        name: name.into(),
        header: h,
        claims: c,
        signing: Signing::Good,
        raw: None,
    }
}

fn set(map: &mut Value, key: &str, value: Value) {
    if value.is_null() {
        map.as_object_mut().unwrap().remove(key);
    } else {
        map[key] = value;
    }
}

/// The hostile table (tests/hostile.rs), as tokens.
fn table() -> Vec<Case> {
    let mut cases = vec![case("control", |_, _| {})];
    let claim =
        |name: &str, key: &'static str, value: Value| case(name, move |_, c| set(c, key, value));
    cases.extend([
        claim("nonce wrong", "nonce", json!("n-0S6_WzA2Mk")),
        claim("nonce missing", "nonce", Value::Null),
        claim("aud other", "aud", json!("someone-else")),
        claim("aud missing", "aud", Value::Null),
        claim("aud extra untrusted", "aud", json!([CLIENT, "evil"])),
        claim("iss wrong", "iss", json!("https://evil.example")),
        claim("iss missing", "iss", Value::Null),
        claim("iat missing", "iat", Value::Null),
        claim("iat future", "iat", json!(NOW + 3600)),
        claim("exp past", "exp", json!(NOW - 3600)),
        claim("exp missing", "exp", Value::Null),
        claim("sub missing", "sub", Value::Null),
        claim("sub empty", "sub", json!("")),
        claim("azp other", "azp", json!("evil")),
        claim("nbf future", "nbf", json!(NOW + 3600)),
    ]);
    for (name, signing) in [
        ("signature other key", Signing::OtherKey),
        ("alg none", Signing::Unsigned),
        (
            "alg HS256 keyed with the public key",
            Signing::HmacWithPublicKey,
        ),
    ] {
        let mut c = case(name, |_, _| {});
        c.signing = signing;
        cases.push(c);
    }
    let mut jwk = case("jwk in header", |h, _| {
        set(h, "kid", Value::Null);
        set(h, "jwk", fake_idp::attacker_jwk());
    });
    jwk.signing = Signing::OtherKey;
    cases.push(jwk);
    cases.push(case("kid unknown", |h, _| set(h, "kid", json!("evil"))));
    cases.push(case("crit", |h, _| {
        set(h, "crit", json!(["urn:example:unknown"]));
        set(h, "urn:example:unknown", json!(1));
    }));
    cases.push(case("typ other", |h, _| set(h, "typ", json!("at+jwt"))));
    cases.push(case("cty", |h, _| set(h, "cty", json!("JWT"))));
    // A member twice: in the payload (two subjects) and in the header (two algs).
    let duplicate_sub = format!(
        r#"{{"iss":"{ISSUER}","aud":"{CLIENT}","sub":"alice","sub":"mallory","exp":{},"iat":{},"nonce":"{NONCE}"}}"#,
        NOW + 300,
        NOW - 5
    );
    let mut dup = case("duplicate sub", |_, _| {});
    dup.raw = Some(sign_raw(&header().to_string(), &duplicate_sub));
    cases.push(dup);
    let mut dup = case("duplicate alg", |_, _| {});
    dup.raw = Some(sign_raw(
        r#"{"alg":"none","alg":"RS256","kid":"k1"}"#,
        &claims().to_string(),
    ));
    cases.push(dup);
    cases
}

/// Signs exactly these header and payload bytes with the provider's key.
fn sign_raw(header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    fake_idp::sign_input(&input)
}

/// Generated tokens: a deterministic walk over combinations of the mutations above and
/// boundary values, so that each run checks the same thousands of tokens.
fn generated(count: usize) -> Vec<Case> {
    let mut seed: u64 = 0x5eed_1a7a_4d00_0001;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let times = [
        Value::Null,
        json!(NOW - 3600),
        json!(NOW - CLOCK_SKEW - 1),
        json!(NOW - CLOCK_SKEW),
        json!(NOW),
        json!(NOW + CLOCK_SKEW),
        json!(NOW + CLOCK_SKEW + 1),
        json!(NOW + 3600),
        json!("soon"),
        json!(-1),
    ];
    let auds = [
        json!(CLIENT),
        json!([CLIENT]),
        json!([CLIENT, "evil"]),
        json!("evil"),
        json!([]),
        Value::Null,
        json!(7),
    ];
    let subs = [json!("alice"), json!(""), Value::Null, json!(42)];
    let nonces = [json!(NONCE), json!("other"), Value::Null, json!(1)];
    let isss = [
        json!(ISSUER),
        json!(format!("{ISSUER}/")),
        json!("https://evil.example"),
        Value::Null,
    ];
    let azps = [Value::Null, json!(CLIENT), json!("evil")];
    let kids = [json!("k1"), json!("evil"), Value::Null];
    let signings = [
        Signing::Good,
        Signing::Good,
        Signing::Good,
        Signing::OtherKey,
        Signing::Unsigned,
        Signing::HmacWithPublicKey,
    ];
    (0..count)
        .map(|i| {
            let mut c = case(&format!("generated {i}"), |_, _| {});
            set(&mut c.claims, "exp", times[next(times.len())].clone());
            set(&mut c.claims, "iat", times[next(times.len())].clone());
            if next(3) == 0 {
                set(&mut c.claims, "nbf", times[next(times.len())].clone());
            }
            set(&mut c.claims, "aud", auds[next(auds.len())].clone());
            set(&mut c.claims, "sub", subs[next(subs.len())].clone());
            set(&mut c.claims, "nonce", nonces[next(nonces.len())].clone());
            set(&mut c.claims, "iss", isss[next(isss.len())].clone());
            set(&mut c.claims, "azp", azps[next(azps.len())].clone());
            set(&mut c.header, "kid", kids[next(kids.len())].clone());
            c.signing = signings[next(signings.len())];
            c
        })
        .collect()
}

/// Which listed strictness explains Lanyard alone refusing `case`, from Lanyard's own
/// message (each names the check that failed).
fn explained(lanyard_said: &str) -> Option<&'static str> {
    let check = [
        ("iat:", "iat"),
        ("azp:", "azp"),
        ("nbf:", "nbf"),
        ("sub:", "sub"),
    ];
    check
        .iter()
        .find(|(needle, _)| lanyard_said.contains(needle))
        .map(|(_, name)| *name)
}

#[test]
fn lanyard_rejects_everything_openidconnect_rejects() {
    let mut cases = table();
    cases.extend(generated(3000));
    let mut differences = Vec::new();
    let mut rejected_by_both = 0;
    for case in &cases {
        let token = case.token();
        for nonce in [Some(NONCE), None] {
            let (ours, theirs) = (lanyard(&token, nonce), oracle(&token, nonce));
            match (&ours, &theirs) {
                (Ok(()), Err(e)) => differences.push(format!(
                    "{} (nonce {nonce:?}): openidconnect rejects ({e}), Lanyard accepts",
                    case.name
                )),
                (Err(ours), Ok(())) => {
                    if explained(ours).is_none() {
                        differences.push(format!(
                            "{} (nonce {nonce:?}): Lanyard alone rejects, for no listed reason: {ours}",
                            case.name
                        ));
                    }
                }
                (Err(_), Err(_)) => rejected_by_both += 1,
                (Ok(()), Ok(())) => {}
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} unexplained differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // The control case passes both, and the table is mostly refusals: the oracle works.
    assert_eq!(lanyard(&table()[0].token(), Some(NONCE)), Ok(()));
    assert_eq!(oracle(&table()[0].token(), Some(NONCE)), Ok(()));
    assert!(
        rejected_by_both > 1000,
        "only {rejected_by_both} rejected by both"
    );
}

/// Every listed strictness is still one Lanyard has: the table has a case that only
/// Lanyard rejects, and for that very reason.
#[test]
fn each_listed_difference_is_real() {
    let seen: Vec<&str> = table()
        .iter()
        .filter_map(|case| {
            let token = case.token();
            match (lanyard(&token, Some(NONCE)), oracle(&token, Some(NONCE))) {
                (Err(ours), Ok(())) => explained(&ours),
                _ => None,
            }
        })
        .collect();
    for (name, why) in STRICTER {
        assert!(seen.contains(name), "no case shows `{name}` ({why})");
    }
}
