//! Token exchange (RFC 8693) at the real provider (node-oidc-provider, whose grant-type
//! extension API the test provider uses for it): the sign-in's token exchanged for one
//! aimed at another audience, directly and through the agent, which keeps it per target.

use crate::broker::signed_in;
use crate::support::{self, Idp};

/// The audience the tokens are exchanged for.
const PARTNER: &str = "https://api.partner.test";

#[tokio::test]
async fn the_sign_in_is_exchanged_for_a_token_aimed_at_another_audience() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "tx").await;
    // A confidential client may ask the provider about any token.
    let basic = support::basic("lanyard-basic", "basic-secret-0123456789");
    let token = |args: &'static [&'static str]| env.access_token("tx", args);
    // Directly, with no agent.
    let own = token(&[]).await;
    let aimed = token(&["--exchange", "--audience", PARTNER]).await;
    assert_ne!(aimed, own);
    let seen = idp.introspect(&basic, &aimed).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["aud"], PARTNER, "{seen}");
    assert_eq!(seen["sub"], "alice", "{seen}");
    assert_eq!(seen["client_id"], "lanyard-public", "{seen}");
    assert!(
        idp.events()
            .await
            .contains(&"token_exchange.success".to_owned())
    );
    let narrow = token(&["--exchange", "--audience", PARTNER, "--scope", "openid"]).await;
    assert_eq!(idp.introspect(&basic, &narrow).await["scope"], "openid");
    // The sign-in's own token is untouched.
    assert_eq!(token(&[]).await, own);

    // Through the agent: one exchange per audience and scope, then from memory.
    let _agent = env.start_agent().await;
    // (The agent names the program behind `lanyard token`: this test.)
    env.lanyard(&["allow", "tx", &crate::broker::me()])
        .await
        .assert_ok();
    let first = token(&["--exchange", "--audience", PARTNER]).await;
    assert_eq!(
        token(&["--exchange", "--audience", PARTNER]).await,
        first,
        "served from memory"
    );
    let other = token(&["--exchange", "--audience", "https://api.other.test"]).await;
    assert_ne!(other, first);
    assert_eq!(
        idp.introspect(&basic, &other).await["aud"],
        "https://api.other.test"
    );

    // A scope the sign-in was not granted is the provider's to refuse, and it does.
    let refused = env
        .lanyard(&[
            "token",
            "tx",
            "--exchange",
            "--audience",
            PARTNER,
            "--scope",
            "admin",
        ])
        .await;
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("invalid_scope"), "{refused:?}");
    // --exchange names its audience.
    env.lanyard(&["token", "tx", "--exchange"])
        .await
        .assert_fails(2, "--audience");
}
