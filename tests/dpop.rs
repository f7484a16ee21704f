//! DPoP (RFC 9449) against the real provider, node-oidc-provider with `dPoP` on: a public
//! client's tokens bound to the account's key, a proof with every request, the key kept
//! with the tokens in the keychain and never handed out, not even by the agent.

use serde_json::{Value, json};

use crate::broker::{me, signed_in};
use crate::support::{Env, Idp, stored_tokens};

/// The headers `lanyard token NAME --format header --dpop-method M --dpop-url URL` prints.
async fn proved_headers(
    env: &Env,
    account: &str,
    method: &str,
    url: &str,
) -> Vec<(String, String)> {
    let run = env
        .lanyard(&[
            "token",
            account,
            "--format",
            "header",
            "--dpop-method",
            method,
            "--dpop-url",
            url,
        ])
        .await;
    let headers: Vec<(String, String)> = run
        .assert_ok()
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["Authorization", "DPoP"],
        "{run:#?}"
    );
    assert!(headers[0].1.starts_with("DPoP "), "{headers:?}");
    headers
}

fn dpop_env(idp: &Idp, name: &str) -> Env {
    let env = Env::new();
    // A public client, and a provider that offers DPoP: bound by default.
    env.public_account(name, idp);
    env
}

#[tokio::test]
async fn a_public_clients_tokens_are_bound_to_its_key() {
    let idp = Idp::start_with(false, &["--dpop"]);
    let env = dpop_env(&idp, "pop");
    env.lanyard(&["login", "pop"]).await.assert_ok();

    // The key is kept with the tokens, in the keychain, and in no file.
    let stored = stored_tokens("pop").unwrap();
    let key = stored["dpop_key"].as_str().expect("a key with the tokens");
    for (path, text) in env.data_files() {
        assert!(!text.contains(key), "{} holds the key", path.display());
    }
    let run = env.lanyard(&["token", "pop", "--json"]).await;
    let answer = run.assert_ok().json();
    assert_eq!(answer["token_type"], "DPoP", "{answer}");
    let token = answer["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token, stored["access_token"].as_str().unwrap());

    // At a resource server that checks the binding (the provider's userinfo): refused as
    // a bearer token, taken with the proof `lanyard token` prints.
    let userinfo = idp.url_of("userinfo_endpoint").await;
    let bearer = [("Authorization".to_owned(), format!("Bearer {token}"))];
    let (status, _) = idp.get_with(&userinfo, &bearer).await;
    assert_eq!(status, 401, "a bound token without its proof");
    let headers = proved_headers(&env, "pop", "GET", &userinfo).await;
    let (status, body) = idp.get_with(&userinfo, &headers).await;
    assert_eq!((status, &body["sub"]), (200, &json!("alice")), "{body}");
    // A proof is for one request: used again (its jti replayed), or for another URL or
    // method, it is refused.
    let (status, _) = idp.get_with(&userinfo, &headers).await;
    assert_eq!(status, 401, "a replayed proof");
    let elsewhere = format!("{userinfo}/x");
    let other = proved_headers(&env, "pop", "GET", &elsewhere).await;
    let (status, _) = idp.get_with(&userinfo, &other).await;
    assert_eq!(status, 401, "a proof for another URL");
    let posted = proved_headers(&env, "pop", "POST", &userinfo).await;
    let (status, _) = idp.get_with(&userinfo, &posted).await;
    assert_eq!(status, 401, "a proof for another method");

    // The refresh token, stolen from the keychain, is useless without the key.
    let refresh_token = stored["refresh_token"].as_str().unwrap();
    let stolen = idp.try_refresh("lanyard-public", refresh_token).await;
    assert!(
        stolen["error"].is_string() && stolen.get("access_token").is_none(),
        "{stolen}"
    );
    // Lanyard's own refresh, with the key, works: a new bound token.
    let run = env
        .lanyard(&["token", "pop", "--json", "--min-valid", "7200"])
        .await;
    let refreshed = run.assert_ok().json();
    assert_eq!(refreshed["token_type"], "DPoP");
    assert_ne!(refreshed["access_token"], answer["access_token"]);
    let headers = proved_headers(&env, "pop", "GET", &userinfo).await;
    assert_eq!(idp.get_with(&userinfo, &headers).await.0, 200);
    let kept = stored_tokens("pop").unwrap();
    assert_eq!(kept["dpop_key"], stored["dpop_key"], "the same key stays");
}

/// `dpop = false` opts out: bearer tokens, even where the provider would bind them.
#[tokio::test]
async fn an_account_may_keep_bearer_tokens() {
    let idp = Idp::start_with(false, &["--dpop"]);
    let env = Env::new();
    env.account(
        "bearer",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\ndpop = false",
            idp.issuer
        ),
    );
    env.lanyard(&["login", "bearer"]).await.assert_ok();
    assert!(stored_tokens("bearer").unwrap().get("dpop_key").is_none());
    let token = env.access_token("bearer", &[]).await;
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");
    // The README's headline form works for it as printed: the Bearer header alone, the
    // same that a DPoP-bound account answers with its proof beside it.
    let headline = [
        "token",
        "bearer",
        "--format",
        "header",
        "--dpop-method",
        "GET",
        "--dpop-url",
        "https://api.example.com/",
    ];
    let direct = env.lanyard(&headline).await;
    assert_eq!(
        direct.assert_ok().stdout.trim(),
        format!("Authorization: Bearer {token}")
    );
    // Through the agent too.
    let _agent = env.start_agent().await;
    env.lanyard(&["allow", "bearer", &crate::broker::me()])
        .await
        .assert_ok();
    let through = env.lanyard(&headline).await;
    let header = through.assert_ok().stdout.trim().to_owned();
    assert!(header.starts_with("Authorization: Bearer "), "{through:?}");
    assert_eq!(header.lines().count(), 1, "{through:?}");
}

/// Through the agent, a tool gets the token and a proof for its request: the key stays
/// in Lanyard, and the answers carry no key material.
#[tokio::test]
async fn through_the_agent_a_tool_gets_proofs_not_the_key() {
    let idp = Idp::start_with(false, &["--dpop"]);
    let env = signed_in(&idp, "pop-agent").await;
    let stored = stored_tokens("pop-agent").unwrap();
    assert!(stored["dpop_key"].is_string(), "bound at sign-in");
    let _agent = env.start_agent().await;
    let userinfo = idp.url_of("userinfo_endpoint").await;
    // Approval first, as for a token.
    env.lanyard(&[
        "token",
        "pop-agent",
        "--dpop-method",
        "GET",
        "--dpop-url",
        &userinfo,
    ])
    .await
    .assert_fails(8, "lanyard allow pop-agent");
    env.lanyard(&["allow", "pop-agent", &me()])
        .await
        .assert_ok();

    let mut agent = lanyard::broker::Client::connect(std::path::Path::new(&env.socket()))
        .await
        .unwrap();
    let reply: Value = agent
        .call(lanyard::broker::protocol::Op::Proof {
            account: "pop-agent".into(),
            method: "GET".into(),
            url: userinfo.clone(),
            nonce: None,
            min_valid: 60,
        })
        .await
        .unwrap();
    let mut keys: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_at", "proof", "token_type"],
        "{reply}"
    );
    assert_eq!(reply["token_type"], "DPoP");
    let key = stored["dpop_key"].as_str().unwrap();
    assert!(!reply.to_string().contains(key));
    let token = reply["access_token"].as_str().unwrap();
    let headers = [
        ("Authorization".to_owned(), format!("DPoP {token}")),
        (
            "DPoP".to_owned(),
            reply["proof"].as_str().unwrap().to_owned(),
        ),
    ];
    let (status, body) = idp.get_with(&userinfo, &headers).await;
    assert_eq!(status, 200, "{body}");
    // The token op says how to send it.
    let answer: Value = agent
        .call(lanyard::broker::protocol::Op::Token {
            account: "pop-agent".into(),
            min_valid: 60,
            scope: None,
            audience: None,
            exchange: false,
            sign_in: false,
        })
        .await
        .unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    // And the command line, through the agent, prints both headers.
    let headers = proved_headers(&env, "pop-agent", "GET", &userinfo).await;
    assert_eq!(idp.get_with(&userinfo, &headers).await.0, 200);
}

/// A provider that requires its own nonce in proofs (RFC 9449 section 8): the first
/// request is refused with `use_dpop_nonce` and the nonce, and Lanyard asks once more
/// with it, at sign-in and at each refresh.
#[tokio::test]
async fn a_provider_that_requires_nonces_gets_them() {
    let idp = Idp::start_with(false, &["--dpop", "--dpop-nonce"]);
    let env = dpop_env(&idp, "pop-nonce");
    env.lanyard(&["login", "pop-nonce"]).await.assert_ok();
    assert_eq!(
        idp.hits("/token").await,
        2,
        "refused once, then with the nonce"
    );
    let run = env
        .lanyard(&["token", "pop-nonce", "--json", "--min-valid", "7200"])
        .await;
    assert_eq!(run.assert_ok().json()["token_type"], "DPoP");
    assert_eq!(idp.hits("/token").await, 4);
}
