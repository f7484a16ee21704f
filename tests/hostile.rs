//! Every case here is a sign-in that must fail with a message naming the failed check,
//! exit code 5, and nothing stored: no keychain item, no file.

use serde_json::{Value, json};

use crate::support::fake_idp::{self, Behaviour, FakeIdp, Signing};
use crate::support::{Env, Run, root, stored_tokens};

fn env_for(idp: &FakeIdp, account: &str) -> Env {
    let mut env = Env::new();
    env.set(
        "BROWSER",
        &format!("node {}", root().join("tests/support/follow.mjs").display()),
    );
    env.account(
        account,
        &format!(
            "issuer = \"{}\"\nclient_id = \"{}\"",
            idp.issuer,
            fake_idp::CLIENT_ID
        ),
    );
    env
}

async fn sign_in(behaviour: Behaviour, account: &str) -> (Run, Env, FakeIdp) {
    let idp = FakeIdp::start(behaviour).await;
    let env = env_for(&idp, account);
    let run = env.lanyard(&["login", account]).await;
    (run, env, idp)
}

/// Signs in against a provider behaving badly and checks the rejection.
async fn rejected(account: &str, behaviour: Behaviour, message: &str) {
    let (run, env, _idp) = sign_in(behaviour, account).await;
    run.assert_fails(5, message);
    assert!(
        stored_tokens(account).is_none(),
        "{account}: tokens were stored"
    );
    assert!(
        env.data_files().is_empty(),
        "{account}: files were written: {:?}",
        env.data_paths()
    );
}

fn claim(name: &'static str, value: Value) -> Behaviour {
    Behaviour {
        claims: vec![(name, value)],
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn a_well_behaved_fake_provider_signs_in() {
    // The control case: without it, every rejection below could be a broken fake.
    let (run, _env, idp) = sign_in(Behaviour::default(), "hostile-control").await;
    run.assert_ok();
    assert_eq!(idp.redeemed(), ["good-code"]);
    assert_eq!(
        stored_tokens("hostile-control").unwrap()["access_token"],
        fake_idp::ACCESS_TOKEN
    );
}

#[tokio::test]
async fn rp_certification_claims_cases() {
    rejected(
        "h-nonce",
        claim("nonce", json!("not-the-nonce")),
        "nonce: the token's nonce is not the one Lanyard sent",
    )
    .await;
    rejected(
        "h-nonce-missing",
        claim("nonce", Value::Null),
        "nonce: the token has no nonce",
    )
    .await;
    rejected(
        "h-aud",
        claim("aud", json!("someone-else")),
        "aud: the token is not meant for client `lanyard-test`",
    )
    .await;
    rejected(
        "h-aud-missing",
        claim("aud", Value::Null),
        "aud: the token is not meant for client",
    )
    .await;
    rejected(
        "h-aud-extra",
        claim("aud", json!([fake_idp::CLIENT_ID, "untrusted"])),
        "aud: the token is also meant for `untrusted`",
    )
    .await;
    rejected(
        "h-azp",
        claim("azp", json!("someone-else")),
        "azp: the token was issued to `someone-else`",
    )
    .await;
    rejected(
        "h-iss",
        claim("iss", json!("https://evil.example")),
        "iss: expected",
    )
    .await;
    rejected(
        "h-iat",
        claim("iat", Value::Null),
        "iat: the token has no valid issue time",
    )
    .await;
    rejected(
        "h-iat-future",
        claim("iat", json!(4_000_000_000u64)),
        "iat: the token claims to be issued",
    )
    .await;
    rejected(
        "h-exp",
        claim("exp", json!(1_000_000_000u64)),
        "exp: the token expired",
    )
    .await;
    rejected(
        "h-sub",
        claim("sub", Value::Null),
        "sub: the token names no subject",
    )
    .await;
    rejected(
        "h-at-hash",
        claim("at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA")),
        "at_hash: the token's at_hash does not match",
    )
    .await;
    rejected(
        "h-userinfo",
        Behaviour {
            userinfo_sub: Some("mallory"),
            ..Behaviour::default()
        },
        "userinfo: its sub `mallory` is not the ID token's `alice`",
    )
    .await;
}

#[tokio::test]
async fn jose_attacks() {
    let sig = |signing| Behaviour {
        signing,
        ..Behaviour::default()
    };
    rejected(
        "h-badsig",
        sig(Signing::OtherKey),
        "signature: the signature does not verify",
    )
    .await;
    rejected(
        "h-none",
        sig(Signing::Unsigned),
        "signature: the token is unsigned (alg `none`)",
    )
    .await;
    rejected(
        "h-hmac",
        sig(Signing::HmacWithPublicKey),
        "signature: alg `HS256` is not accepted",
    )
    .await;
    // A key in the token's own header is never used: signed with the attacker's key,
    // carrying that key as `jwk`, the token fails against the provider's keys.
    rejected(
        "h-jwk",
        Behaviour {
            signing: Signing::OtherKey,
            header: vec![("kid", Value::Null), ("jwk", fake_idp::attacker_jwk())],
            ..Behaviour::default()
        },
        "signature: the signature does not verify",
    )
    .await;
    // Nor is a key set the header points at (`jku`, `x5u`), even one on the provider's host.
    let (run, _env, idp) = sign_in(
        Behaviour {
            signing: Signing::OtherKey,
            header: vec![
                ("kid", json!("evil")),
                ("jku", json!("/evil-jwks")),
                ("x5u", json!("/evil-jwks")),
            ],
            ..Behaviour::default()
        },
        "h-jku",
    )
    .await;
    run.assert_fails(
        5,
        "signature: no key in the provider's key set matches kid `evil`",
    );
    assert_eq!(
        idp.jwks_fetches(),
        2,
        "an unknown kid refetches the provider's jwks_uri once, nothing else"
    );
    // An access token (or any other typed JWT) passed off as an ID token.
    rejected(
        "h-typ",
        Behaviour {
            header: vec![("typ", json!("at+jwt"))],
            ..Behaviour::default()
        },
        "typ: the token is of type `at+jwt`, not an ID token",
    )
    .await;
    rejected(
        "h-crit",
        Behaviour { header: vec![("crit", json!(["urn:example:unknown"])), ("urn:example:unknown", json!(1))], ..Behaviour::default() },
        "signature: the token has critical header extensions Lanyard does not understand: urn:example:unknown",
    )
    .await;
}

#[tokio::test]
async fn config_profile_cases() {
    rejected(
        "h-discovery-iss",
        Behaviour {
            discovery_issuer: Some("https://evil.example"),
            ..Behaviour::default()
        },
        "the discovery document says issuer `https://evil.example`",
    )
    .await;
    rejected(
        "h-response-iss",
        Behaviour {
            response_iss: Some("https://evil.example"),
            ..Behaviour::default()
        },
        "iss: the authorization response names issuer `https://evil.example`",
    )
    .await;
    // Keys rotated between discovery and the first token: the unknown kid is fetched anew.
    let (run, _env, idp) = sign_in(
        Behaviour {
            rotate_keys: true,
            ..Behaviour::default()
        },
        "h-rotation",
    )
    .await;
    run.assert_ok();
    assert_eq!(idp.jwks_fetches(), 2);
    // No kid, one key: accepted.
    let (run, _env, _idp) = sign_in(
        Behaviour {
            header: vec![("kid", Value::Null)],
            ..Behaviour::default()
        },
        "h-no-kid",
    )
    .await;
    run.assert_ok();
}

#[tokio::test]
async fn forged_callbacks_are_ignored_and_their_codes_never_redeemed() {
    let idp = FakeIdp::start(Behaviour::default()).await;
    let mut env = env_for(&idp, "h-forged");
    env.set("LANYARD_TEST_FORGE", "1");
    env.lanyard(&["login", "h-forged"]).await.assert_ok();
    assert_eq!(
        idp.redeemed(),
        ["good-code"],
        "only the real callback's code is redeemed"
    );
}

#[tokio::test]
async fn a_refresh_that_changes_the_subject_is_rejected_and_keeps_the_old_tokens() {
    let idp = FakeIdp::start(Behaviour {
        refresh_sub: Some("mallory"),
        ..Behaviour::default()
    })
    .await;
    let env = env_for(&idp, "h-refresh-sub");
    env.lanyard(&["login", "h-refresh-sub"]).await.assert_ok();
    let before = stored_tokens("h-refresh-sub").unwrap();
    env.lanyard(&["token", "h-refresh-sub", "--min-valid", "7200"])
        .await
        .assert_fails(
            5,
            "refresh: the new ID token's sub `mallory` differs from the sign-in's `alice`",
        );
    assert_eq!(
        stored_tokens("h-refresh-sub").unwrap(),
        before,
        "the old tokens are kept"
    );
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_old_tokens_and_says_so() {
    let idp = FakeIdp::start(Behaviour {
        refresh_outage: Some(503),
        ..Behaviour::default()
    })
    .await;
    let env = env_for(&idp, "h-outage");
    env.lanyard(&["login", "h-outage"]).await.assert_ok();
    let before = stored_tokens("h-outage").unwrap();
    // The current token is still valid for an hour: it is served, with a warning.
    let run = env
        .lanyard(&["token", "h-outage", "--min-valid", "7200"])
        .await;
    run.assert_ok();
    assert_eq!(run.stdout.trim(), fake_idp::ACCESS_TOKEN);
    assert!(
        run.stderr
            .contains("answered HTTP 503); the refresh token is kept, try again later"),
        "{run:?}"
    );
    assert_eq!(stored_tokens("h-outage").unwrap(), before);
    let status = env.lanyard(&["status", "--json"]).await;
    assert_eq!(status.assert_ok().json()[0]["status"], "signed_in");
}

/// A revocation whose connection is lost on the way (the server closing it as the request
/// went out) is sent again: a sign-out must not leave a token valid at the provider.
#[tokio::test]
async fn a_revocation_that_loses_its_connection_is_sent_again() {
    let idp = FakeIdp::start(Behaviour {
        revocation_drops: 1,
        ..Behaviour::default()
    })
    .await;
    let env = env_for(&idp, "h-drop");
    env.lanyard(&["login", "h-drop"]).await.assert_ok();
    let run = env.lanyard(&["logout", "h-drop"]).await;
    run.assert_ok();
    assert!(
        run.stdout
            .contains("revoked the refresh_token and the access_token"),
        "{run:?}"
    );
    assert_eq!(run.stderr, "", "{run:?}");
    assert_eq!(
        idp.revoked(),
        [
            "refresh_token:rt-1".to_owned(),
            format!("access_token:{}", fake_idp::ACCESS_TOKEN)
        ]
    );
}

/// A keychain that works until it is told to break (a Secret Service locked, or gone, as
/// the player leaves).
#[derive(Default)]
struct Flaky {
    broken: std::sync::atomic::AtomicBool,
    /// With `Some(n)`: the keychain breaks after `n` more writes.
    writes_left: std::sync::Mutex<Option<usize>>,
    items: lanyard::store::Memory,
}

impl Flaky {
    fn check(&self) -> Result<(), lanyard::store::Error> {
        if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(lanyard::store::Error::Failed(
                "the Secret Service is locked".into(),
            ));
        }
        Ok(())
    }
}

impl lanyard::store::Secrets for Flaky {
    fn get(
        &self,
        service: &str,
        account: &str,
    ) -> Result<Option<lanyard::secret::Secret>, lanyard::store::Error> {
        self.check()?;
        self.items.get(service, account)
    }
    fn set(
        &self,
        service: &str,
        account: &str,
        value: &lanyard::secret::Secret,
    ) -> Result<(), lanyard::store::Error> {
        self.check()?;
        if let Some(left) = self.writes_left.lock().unwrap().as_mut() {
            if *left == 0 {
                self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
                return self.check();
            }
            *left -= 1;
        }
        self.items.set(service, account, value)
    }
    fn delete(&self, service: &str, account: &str) -> Result<bool, lanyard::store::Error> {
        self.check()?;
        self.items.delete(service, account)
    }
}

/// An accounts file with one account, `name`, at the hostile provider (in memory, or in
/// the keychain the test gives).
fn one_account(idp: &FakeIdp, name: &str, memory: bool) -> lanyard::config::Config {
    let store = if memory { "store = \"memory\"\n" } else { "" };
    lanyard::config::Config::parse(
        std::path::Path::new("/accounts.toml"),
        &format!(
            "[accounts.{name}]\nissuer = \"{}\"\nclient_id = \"{}\"\n{store}",
            idp.issuer,
            fake_idp::CLIENT_ID
        ),
    )
    .unwrap()
}

/// A browser in this process: follows the sign-in URL's redirects back to the loopback
/// listener, as follow.mjs does from outside; counts the pages it was given.
#[derive(Default)]
struct Follow(std::sync::atomic::AtomicUsize);

impl lanyard::browser::Opener for Follow {
    fn open(&self, url: &str) -> Result<(), lanyard::browser::Error> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let url = url.to_owned();
        tokio::spawn(async move {
            let _ = reqwest::get(url).await;
        });
        Ok(())
    }
}

/// A sign-out forgets whatever fails on the way: here the keychain breaks before the
/// client secret can be read for the revocation (as a seat's Secret Service might as the
/// player leaves). The revocation is reported as not done; the tokens are gone all the same.
#[tokio::test]
async fn a_sign_out_forgets_even_when_the_revocation_cannot_start() {
    use lanyard::session::{Lanyard, LoginOptions};
    let idp = FakeIdp::start(Behaviour::default()).await;
    let config = one_account(&idp, "seat", true);
    let keychain = std::sync::Arc::new(Flaky::default());
    let lanyard = Lanyard::new(config, lanyard::store::Records::new(None))
        .unwrap()
        .with_keychain(keychain.clone())
        .with_opener(std::sync::Arc::new(Follow::default()));
    let options = LoginOptions {
        timeout: std::time::Duration::from_secs(30),
        ..LoginOptions::default()
    };
    lanyard.login("seat", &options, &|_| {}).await.unwrap();
    assert_eq!(
        lanyard.token("seat", 0).await.unwrap().token.expose(),
        fake_idp::ACCESS_TOKEN
    );

    keychain
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = lanyard
        .logout("seat", false, false, &|_| {})
        .await
        .expect("a sign-out that could not revoke still signs out");
    assert!(report.revoked.is_empty(), "{report:?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("could not read the client secret")),
        "{report:?}"
    );
    let after = lanyard.token("seat", 0).await.unwrap_err();
    assert_eq!(after.kind(), lanyard::Kind::SignInNeeded, "{after}");
    assert!(idp.revoked().is_empty());
}

/// A provider whose tokens expire at once (`expires_in` 0; negative and absurd values are
/// bounded the same way): the agent does not refresh in a loop, but at most once every
/// ten seconds, however many ask.
#[tokio::test]
async fn tokens_that_expire_at_once_are_not_refreshed_in_a_loop() {
    let idp = FakeIdp::start(Behaviour {
        expires_in: Some(json!(0)),
        ..Behaviour::default()
    })
    .await;
    let env = env_for(&idp, "h-zero");
    env.lanyard(&["login", "h-zero"]).await.assert_ok();
    let me = std::env::current_exe().unwrap().display().to_string();
    env.lanyard(&["allow", "h-zero", &me]).await.assert_ok();
    let started = std::time::Instant::now();
    let _agent = env.start_agent().await;
    for _ in 0..3 {
        let run = env.lanyard(&["token", "h-zero", "--min-valid", "1"]).await;
        assert!(
            run.code == 0 || run.stderr.contains("expired at once"),
            "{run:?}"
        );
    }
    let refreshes = idp.refreshed().len() as u64;
    let allowed = started.elapsed().as_secs() / 10 + 2;
    assert!(
        (1..=allowed).contains(&refreshes),
        "{refreshes} refreshes in {:?}",
        started.elapsed()
    );
}

/// An account pointed at another provider after it signed in: its refresh token is never
/// sent there (nor revoked there); the account needs a new sign-in, but the old one is
/// not thrown away by the look (pointed back, it works).
#[tokio::test]
async fn stored_tokens_never_travel_to_another_issuer() {
    let first = FakeIdp::start(Behaviour::default()).await;
    let second = FakeIdp::start(Behaviour::default()).await;
    let env = env_for(&first, "h-moved");
    env.lanyard(&["login", "h-moved"]).await.assert_ok();
    let config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(&env.config, config.replace(&first.issuer, &second.issuer)).unwrap();

    // A refresh is due (a token valid for a day is asked for): refused, sent nowhere.
    env.lanyard(&["token", "h-moved", "--min-valid", "86400"])
        .await
        .assert_fails(3, "not the ones it signed in with");
    // Nor is the current access token handed out for the new provider.
    env.lanyard(&["token", "h-moved"])
        .await
        .assert_fails(3, "sign-in needed");
    // Pointed back (a typo fixed): the sign-in was kept whole.
    std::fs::write(&env.config, &config).unwrap();
    env.lanyard(&["token", "h-moved"]).await.assert_ok();
    let moved = config.replace(&first.issuer, &second.issuer);
    std::fs::write(&env.config, moved).unwrap();
    let run = env.lanyard(&["logout", "h-moved"]).await;
    run.assert_ok();
    assert!(
        run.stderr.contains("forgotten without being sent"),
        "{run:?}"
    );
    assert!(first.refreshed().is_empty() && second.refreshed().is_empty());
    assert!(second.revoked().is_empty(), "{:?}", second.revoked());
    assert_eq!(stored_tokens("h-moved"), None);
}

/// DPoP (RFC 9449) at a provider that checks every proof strictly: the right `htm` and
/// `htu`, a signature by the key the proof carries, a `jti` never sent before; the refresh
/// token bound to the key of the code exchange.
#[tokio::test]
async fn dpop_proofs_pass_a_strict_provider() {
    let behaviour = Behaviour {
        dpop: Some(fake_idp::Dpop::Checked),
        ..Behaviour::default()
    };
    let (run, env, idp) = sign_in(behaviour, "hostile-dpop").await;
    run.assert_ok();
    let run = env
        .lanyard(&["token", "hostile-dpop", "--json", "--min-valid", "7200"])
        .await;
    assert_eq!(run.assert_ok().json()["token_type"], "DPoP", "{run:#?}");
    let proofs = idp.proofs();
    assert_eq!(
        proofs.len(),
        2,
        "the code exchange and the refresh: {proofs:?}"
    );
    assert_ne!(proofs[0]["jti"], proofs[1]["jti"]);
    assert_eq!(idp.refreshed(), ["rt-1"]);
}

/// A provider that wants its nonce gets it: the proof without one is answered
/// `use_dpop_nonce` and the nonce, and the request is made once more with it.
#[tokio::test]
async fn a_dpop_nonce_is_sent_once_asked_for() {
    let behaviour = Behaviour {
        dpop: Some(fake_idp::Dpop::Nonce),
        ..Behaviour::default()
    };
    let (run, env, idp) = sign_in(behaviour, "hostile-nonce").await;
    run.assert_ok();
    env.lanyard(&["token", "hostile-nonce", "--min-valid", "7200"])
        .await
        .assert_ok();
    let nonces: Vec<Value> = idp.proofs().iter().map(|p| p["nonce"].clone()).collect();
    assert_eq!(
        nonces,
        [Value::Null, json!("n-1"), Value::Null, json!("n-1")]
    );
}

/// A provider that answers every proof with another nonce is asked twice, not for ever:
/// the sign-in fails with its error, and nothing is stored.
#[tokio::test]
async fn a_provider_that_always_wants_another_nonce_is_asked_twice() {
    let behaviour = Behaviour {
        dpop: Some(fake_idp::Dpop::NewNonceEveryTime),
        ..Behaviour::default()
    };
    let (run, env, idp) = sign_in(behaviour, "hostile-nonces").await;
    run.assert_fails(4, "use_dpop_nonce");
    assert_eq!(idp.proofs().len(), 2);
    assert!(stored_tokens("hostile-nonces").is_none());
    assert!(env.data_files().is_empty(), "{:?}", env.data_paths());
}

/// A DPoP token where none was asked for (no proof sent): refused, nothing stored.
#[tokio::test]
async fn a_dpop_token_nobody_asked_for_is_refused() {
    let behaviour = Behaviour {
        dpop_anyway: true,
        ..Behaviour::default()
    };
    let (run, env, _idp) = sign_in(behaviour, "hostile-dpop-anyway").await;
    run.assert_fails(4, "did not ask for");
    assert!(stored_tokens("hostile-dpop-anyway").is_none());
    assert!(env.data_files().is_empty(), "{:?}", env.data_paths());
}

/// A keychain that cannot be written is found before the browser opens, not after the
/// person signed in; one that fails after the code was redeemed (the hostile case: it
/// took the check, then broke) keeps nothing, and what the provider issued is revoked.
#[tokio::test]
async fn a_keychain_that_cannot_keep_the_sign_in_is_found_first_and_leaves_nothing_valid() {
    use lanyard::session::{Lanyard, LoginOptions};
    let idp = FakeIdp::start(Behaviour::default()).await;
    let config = one_account(&idp, "kept", false);
    let options = LoginOptions {
        timeout: std::time::Duration::from_secs(30),
        ..LoginOptions::default()
    };
    let world = |keychain: std::sync::Arc<Flaky>| {
        let browser = std::sync::Arc::new(Follow::default());
        let lanyard = Lanyard::new(config.clone(), lanyard::store::Records::new(None))
            .unwrap()
            .with_keychain(keychain)
            .with_opener(browser.clone());
        (lanyard, browser)
    };

    // Locked from the start: refused before any browser.
    let locked = std::sync::Arc::new(Flaky::default());
    locked
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (lanyard, browser) = world(locked);
    let refused = lanyard.login("kept", &options, &|_| {}).await.unwrap_err();
    assert_eq!(refused.kind(), lanyard::Kind::Keychain, "{refused}");
    assert_eq!(browser.0.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Takes the write check, then fails to keep the tokens.
    let breaking = std::sync::Arc::new(Flaky::default());
    *breaking.writes_left.lock().unwrap() = Some(1);
    let (lanyard, browser) = world(breaking);
    let failed = lanyard.login("kept", &options, &|_| {}).await.unwrap_err();
    assert_eq!(browser.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(failed.kind(), lanyard::Kind::Keychain, "{failed}");
    assert!(
        failed
            .to_string()
            .contains("nothing was kept, and the tokens the provider just issued were revoked"),
        "{failed}"
    );
    let revoked = idp.revoked();
    assert!(
        revoked.iter().any(|r| r.starts_with("refresh_token:")),
        "{revoked:?}"
    );
    assert!(lanyard.whoami("kept").is_err());
}

/// An opener that keeps the page it was given and opens nothing.
#[derive(Default)]
struct Keep(std::sync::Mutex<Option<String>>, tokio::sync::Notify);

impl lanyard::browser::Opener for Keep {
    fn open(&self, url: &str) -> Result<(), lanyard::browser::Error> {
        *self.0.lock().unwrap() = Some(url.to_owned());
        self.1.notify_one();
        Ok(())
    }
}

/// Dropping a sign-in's future cancels it: its loopback listener is closed at once (a
/// browser that comes back later finds nothing), its one-time page goes, and nothing is
/// kept.
#[tokio::test]
async fn a_dropped_sign_in_closes_its_listener() {
    use lanyard::session::{Lanyard, LoginOptions};
    let idp = FakeIdp::start(Behaviour::default()).await;
    let config = one_account(&idp, "app", true);
    let browser = std::sync::Arc::new(Keep::default());
    let lanyard = std::sync::Arc::new(
        Lanyard::new(config, lanyard::store::Records::new(None))
            .unwrap()
            .with_opener(browser.clone()),
    );
    let signing_in = tokio::spawn({
        let lanyard = lanyard.clone();
        async move {
            let options = LoginOptions::default();
            lanyard.login("app", &options, &|_| {}).await
        }
    });
    browser.1.notified().await;
    let page = browser.0.lock().unwrap().clone().unwrap();
    // The one-time page sends the browser on to the provider, with the redirect URI.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let to = client.get(&page).send().await.unwrap();
    let next = url::Url::parse(to.headers()["location"].to_str().unwrap()).unwrap();
    let redirect = next
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| url::Url::parse(&v).unwrap())
        .unwrap();
    let port = redirect.port().unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    );

    signing_in.abort();
    assert!(signing_in.await.unwrap_err().is_cancelled());
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(refused.is_err(), "the listener outlived its sign-in");
    assert!(lanyard.whoami("app").is_err(), "nothing was kept");
}

/// An app's sign-in that no browser finishes times out in the app's words (no command
/// line to run again, no flag), as `Kind::Incomplete`; the link was handed to its
/// progress callback, since no browser was asked for.
#[tokio::test]
async fn an_apps_sign_in_that_times_out_says_so_in_its_words() {
    use lanyard::client::{Client, Provider, SignInOptions, SignInProgress, Storage};
    let idp = FakeIdp::start(Behaviour::default()).await;
    let client = Client::new(
        Provider::new(&idp.issuer, fake_idp::CLIENT_ID),
        Storage::memory(),
    )
    .unwrap();
    let links = std::sync::Mutex::new(Vec::new());
    let progress = |p: &SignInProgress| {
        if let SignInProgress::OpenThisLink { url, .. } = p {
            links.lock().unwrap().push(url.clone());
        }
    };
    let options = SignInOptions {
        open_browser: false,
        timeout: std::time::Duration::from_secs(1),
        progress: Some(&progress),
    };
    let e = client.sign_in_with(&options).await.unwrap_err();
    assert_eq!(e.kind(), lanyard::Kind::Incomplete, "{e}");
    let message = e.to_string();
    assert!(message.contains("within 1 s; try again"), "{message}");
    assert!(!message.contains("--"), "{message}");
    let links = links.lock().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].starts_with("http://127.0.0.1:"), "{links:?}");
}
