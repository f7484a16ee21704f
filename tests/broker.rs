//! The agent, against the real provider and keychain: the protocol's contract, who may
//! ask, one refresh however many ask, a restart that keeps the accounts, and the real
//! clients that use it (kubectl, git).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::support::{self, Api, Env, Idp};

/// A raw protocol client: lines out, lines in.
struct Raw {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Raw {
    async fn connect(env: &Env) -> Raw {
        let stream = UnixStream::connect(env.socket()).await.unwrap();
        let (read, write) = stream.into_split();
        Raw {
            read: BufReader::new(read),
            write,
        }
    }

    async fn hello(env: &Env) -> Raw {
        let mut raw = Raw::connect(env).await;
        let answer = raw
            .call(json!({"id": 1, "op": "hello", "version": 1}))
            .await;
        assert_eq!(answer["ok"]["version"], 1, "{answer}");
        raw
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    /// The next line, or `None` when the agent closed the connection: an end of stream, or
    /// a reset when it closed with bytes of ours still unread.
    async fn line(&mut self) -> Option<Value> {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), self.read.read_line(&mut line))
            .await
            .expect("the agent answered within 30 s");
        let n = match read {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            other => other.unwrap(),
        };
        (n > 0).then(|| serde_json::from_str(&line).unwrap())
    }

    async fn call(&mut self, request: Value) -> Value {
        self.send_bytes(format!("{request}\n").as_bytes()).await;
        self.line().await.expect("an answer")
    }
}

pub(crate) fn me() -> String {
    std::env::current_exe().unwrap().display().to_string()
}

/// An account signed in (directly, before any agent runs) against `idp`.
pub(crate) async fn signed_in(idp: &Idp, name: &str) -> Env {
    let env = Env::new();
    env.public_account(name, idp);
    env.lanyard(&["login", name]).await.assert_ok();
    env
}

#[tokio::test]
async fn protocol_contract() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-proto").await;
    let _agent = env.start_agent().await;

    // hello first, in a version this agent speaks.
    let mut raw = Raw::connect(&env).await;
    let answer = raw.call(json!({"id": 5, "op": "accounts"})).await;
    assert_eq!(answer["error"]["code"], "hello_first", "{answer}");
    let answer = raw
        .call(json!({"id": 6, "op": "hello", "version": 99}))
        .await;
    assert_eq!(answer["error"]["code"], "unsupported_version", "{answer}");
    let answer = raw
        .call(json!({"id": 7, "op": "hello", "version": 1}))
        .await;
    assert_eq!(
        answer,
        json!({"id": 7, "ok": {"version": 1, "agent": format!("lanyard {}", env!("CARGO_PKG_VERSION"))}})
    );

    // Garbage and unknown requests are answered, and the connection stays usable.
    raw.send_bytes(b"this is not json\n").await;
    assert_eq!(raw.line().await.unwrap()["error"]["code"], "bad_request");
    let answer = raw.call(json!({"id": 8, "op": "fly"})).await;
    assert_eq!(
        (answer["id"].clone(), answer["error"]["code"].clone()),
        (json!(8), json!("bad_request"))
    );
    // Many requests on one connection.
    for id in 9..12 {
        let answer = raw.call(json!({"id": id, "op": "accounts"})).await;
        assert_eq!(answer["id"], id);
        assert_eq!(answer["ok"][0]["account"], "b-proto");
        assert_eq!(answer["ok"][0]["status"], "signed_in");
    }
    let answer = raw
        .call(json!({"id": 12, "op": "token", "account": "nobody"}))
        .await;
    assert_eq!(answer["error"]["code"], "unknown_account", "{answer}");
    let answer = raw
        .call(json!({"id": 13, "op": "token", "account": "b-proto", "min_valid": "soon"}))
        .await;
    assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
    assert_eq!(answer["id"], 13, "the id is echoed when it could be read");

    // A client stalled mid-frame, and one sending an oversize frame, delay no one else.
    let mut stalled = Raw::hello(&env).await;
    stalled.send_bytes(br#"{"id": 2, "op": "acc"#).await;
    let mut oversize = Raw::hello(&env).await;
    oversize.send_bytes(&vec![b'x'; 70 * 1024]).await;
    let mut other = Raw::hello(&env).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        other.call(json!({"id": 2, "op": "accounts"})),
    )
    .await
    .expect("served while another client stalls");
    assert_eq!(answer["ok"][0]["account"], "b-proto");
    assert_eq!(
        oversize.line().await.unwrap()["error"]["code"],
        "frame_too_large"
    );
    assert!(
        oversize.line().await.is_none(),
        "the oversize client is disconnected"
    );
}

#[tokio::test]
async fn unknown_apps_are_refused_until_allowed() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-approve").await;
    let agent = env.start_agent().await;
    let mut raw = Raw::hello(&env).await;
    let token = json!({"id": 2, "op": "token", "account": "b-approve"});

    let answer = raw.call(token.clone()).await;
    assert_eq!(answer["error"]["code"], "approval_required", "{answer}");
    assert_eq!(
        answer["error"]["hint"],
        format!("lanyard allow b-approve {}", me())
    );
    // The CLI, run by this test, is the same app to the agent: refused too, with exit 8.
    env.lanyard(&["token", "b-approve"]).await.assert_fails(
        8,
        &format!(
            "has not been allowed to use b-approve's tokens; run `lanyard allow b-approve {}`",
            me()
        ),
    );

    env.lanyard(&["allow", "b-approve", &me(), "--once"])
        .await
        .assert_ok();
    let answer = raw.call(token.clone()).await;
    let access = answer["ok"]["access_token"]
        .as_str()
        .expect("a token once")
        .to_owned();
    assert_eq!(
        raw.call(token.clone()).await["error"]["code"],
        "approval_required",
        "once is once"
    );

    env.lanyard(&["allow", "b-approve", &me()])
        .await
        .assert_ok();
    assert_eq!(
        raw.call(token.clone()).await["ok"]["access_token"],
        access.as_str()
    );
    let cli = env
        .lanyard(&["token", "b-approve", "--format", "header"])
        .await;
    assert_eq!(
        cli.assert_ok().stdout.trim(),
        format!("Authorization: Bearer {access}")
    );
    // The fast path reads the same flags as the full command, inline values included.
    let cli = env
        .lanyard(&["token", "--min-valid=120", "b-approve", "--format=json"])
        .await;
    let json: Value = serde_json::from_str(&cli.assert_ok().stdout).unwrap();
    assert_eq!(json["access_token"], access.as_str());
    assert_eq!(json["account"], "b-approve");
    // What it does not understand goes to the full parser, which explains.
    env.lanyard(&["token", "b-approve", "--min-valid", "soon"])
        .await
        .assert_fails(2, "invalid value 'soon'");
    let identity = raw
        .call(json!({"id": 3, "op": "identity", "account": "b-approve"}))
        .await;
    assert_eq!(identity["ok"]["email"], "alice@example.test");
    assert!(
        !identity.to_string().contains(&access),
        "identity carries no token"
    );

    env.lanyard(&["deny", "b-approve", &me()]).await.assert_ok();
    assert_eq!(raw.call(token).await["error"]["code"], "denied");

    // The audit log names app, account and decision, and never a token.
    let audit = std::fs::read_to_string(format!("{}/lanyard/audit.log", env.path("data"))).unwrap();
    let decisions: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        decisions.starts_with(&[
            "approval_required".into(),
            "approval_required".into(),
            "allowed_once".into()
        ]),
        "{decisions:?}"
    );
    assert_eq!(decisions.last().unwrap(), "denied");
    assert!(!audit.contains(&access));
    assert!(
        agent.stop().await.success(),
        "SIGTERM stops the agent cleanly"
    );
    assert!(
        !std::path::Path::new(&env.socket()).exists(),
        "the socket is removed"
    );
}

/// Fifty concurrent requests that all need a refresh cause one refresh at the provider;
/// a restarted agent still holds the account (from the keychain), with no new sign-in.
#[tokio::test]
async fn one_refresh_however_many_ask_and_restart_keeps_accounts() {
    // Tokens that live 30 s: every request asking for 60 s of validity needs a refresh.
    let idp = Idp::start_with(false, &["--access-token-ttl", "30"]);
    let env = signed_in(&idp, "b-storm").await;
    env.lanyard(&["allow", "b-storm", &me()]).await.assert_ok();
    let agent = env.start_agent().await;
    let consumed = |events: &[String]| {
        events
            .iter()
            .filter(|e| *e == "refresh_token.consumed")
            .count()
    };
    assert_eq!(consumed(&idp.events().await), 0);

    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(Raw::hello(&env).await);
    }
    let answers = futures_join(clients.into_iter().map(|mut raw| async move {
        raw.call(json!({"id": 2, "op": "token", "account": "b-storm", "min_valid": 60}))
            .await
    }))
    .await;
    let tokens: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|a| {
            a["ok"]["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("{a}"))
        })
        .collect();
    assert_eq!(tokens.len(), 1, "every request got the one refreshed token");
    assert_eq!(
        consumed(&idp.events().await),
        1,
        "exactly one refresh at the provider"
    );

    assert!(agent.stop().await.success());
    let browser_runs = env.browser_runs().len();
    let _agent = env.start_agent().await;
    let mut raw = Raw::hello(&env).await;
    let answer = raw
        .call(json!({"id": 2, "op": "token", "account": "b-storm", "min_valid": 0}))
        .await;
    assert!(answer["ok"]["access_token"].is_string(), "{answer}");
    assert_eq!(
        env.browser_runs().len(),
        browser_runs,
        "no new sign-in after a restart"
    );
}

/// The agent's answer to a token request that needs a refresh (60 s of validity, of
/// tokens that live 30 s), for the sign-in's own token or a narrower one.
async fn ask(raw: &mut Raw, account: &str, scope: Option<&str>) -> Value {
    let mut request = json!({"id": 2, "op": "token", "account": account, "min_valid": 60});
    if let Some(scope) = scope {
        request["scope"] = json!(scope);
    }
    raw.call(request).await
}

async fn token(raw: &mut Raw, account: &str, scope: Option<&str>) -> String {
    let answer = ask(raw, account, scope).await;
    answer["ok"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

/// The agent keeps tokens (and a client secret) in memory between refreshes. A refresh
/// that does not rotate the refresh token leaves the keychain untouched; one that rotates
/// writes it; a client secret set meanwhile is read again. What another
/// process writes meanwhile (here a rotation by `lanyard token` without the agent) is
/// what the agent uses next: it never refreshes with a refresh token already replaced,
/// which a rotating provider takes for theft and answers by revoking the sign-in.
#[tokio::test]
async fn the_agent_writes_the_keychain_only_when_the_refresh_token_rotates() {
    // Tokens that live 30 s: a request for 60 s of validity needs a refresh.
    let idp = Idp::start_with(false, &["--access-token-ttl", "30"]);
    let env = Env::new();
    // A confidential client: node-oidc-provider does not rotate its refresh tokens.
    env.account(
        "b-kept",
        &format!("issuer = \"{}\"\nclient_id = \"lanyard-basic\"", idp.issuer),
    );
    env.lanyard_with_stdin(
        &["accounts", "set-secret", "b-kept"],
        "basic-secret-0123456789\n",
    )
    .await
    .assert_ok();
    env.lanyard(&["login", "b-kept"]).await.assert_ok();
    env.public_account("b-rotating", &idp);
    env.lanyard(&["login", "b-rotating"]).await.assert_ok();
    let _agent = env.start_agent().await;
    env.lanyard(&["allow", "b-kept", &me()]).await.assert_ok();
    env.lanyard(&["allow", "b-rotating", &me()])
        .await
        .assert_ok();
    let mut raw = Raw::hello(&env).await;
    let stored = support::stored_tokens("b-kept").unwrap();
    let own = token(&mut raw, "b-kept", None).await;
    assert_ne!(own, stored["access_token"], "refreshed");
    token(&mut raw, "b-kept", Some("openid profile")).await;
    assert_eq!(
        support::stored_tokens("b-kept").unwrap(),
        stored,
        "no keychain write for refreshes that did not rotate"
    );
    // The agent holds the client secret too; a new one set meanwhile is the one it uses.
    let set_secret = async |secret: &str| {
        env.lanyard_with_stdin(&["accounts", "set-secret", "b-kept"], secret)
            .await
            .assert_ok();
    };
    set_secret("not-the-secret\n").await;
    let refused = ask(&mut raw, "b-kept", Some("openid email")).await;
    assert!(refused.to_string().contains("invalid_client"), "{refused}");
    set_secret("basic-secret-0123456789\n").await;
    token(&mut raw, "b-kept", Some("openid")).await;

    let stored = support::stored_tokens("b-rotating").unwrap();
    token(&mut raw, "b-rotating", None).await;
    let rotated = support::stored_tokens("b-rotating").unwrap();
    assert_ne!(
        rotated["refresh_token"], stored["refresh_token"],
        "a rotation is written"
    );
    // Another process rotates the refresh token the agent holds.
    let mut direct = env.command(&["token", "b-rotating", "--min-valid", "60"]);
    // (In a runtime directory of its own, where no agent runs: direct mode.)
    direct.env("XDG_RUNTIME_DIR", env.path("elsewhere"));
    let out = direct.output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let elsewhere = support::stored_tokens("b-rotating").unwrap();
    assert_ne!(elsewhere["refresh_token"], rotated["refresh_token"]);
    // The agent's next refresh uses the keychain's refresh token, not the replaced one.
    token(&mut raw, "b-rotating", Some("openid profile")).await;
    assert_ne!(
        support::stored_tokens("b-rotating").unwrap()["refresh_token"],
        elsewhere["refresh_token"],
        "the agent's rotation is stored"
    );
    let events = idp.events().await;
    assert!(
        !events
            .iter()
            .any(|e| e.contains("revoked") || e.contains("reuse")),
        "{events:?}"
    );
}

#[tokio::test]
async fn another_user_is_refused() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-uid").await;
    let _agent = env.start_agent().await;
    // Open the socket's permissions so that only the peer-credential check stands between
    // another user and the agent (the directory's 0700 would stop them earlier).
    use std::os::unix::fs::PermissionsExt as _;
    let socket = env.socket();
    // (Every directory down to it: the runtime directory, and Lanyard's inside.)
    for dir in ["", "run", "run/lanyard"] {
        let dir = std::path::Path::new(&env.path("")).join(dir);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // A raw client as user nobody (Lanyard's own client would refuse this agent first,
    // see below): its hello is answered with the refusal, then the agent hangs up.
    let out = as_nobody(
        "perl",
        &[
            "-MIO::Socket::UNIX",
            "-e",
            "my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die $!; \
             print $s qq({\"id\": 1, \"op\": \"hello\", \"version\": 1}\n); \
             print <$s>; print qq(closed\n);",
            &socket,
        ],
    )
    .await;
    let said = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(said.lines().next().unwrap()).unwrap();
    assert_eq!(answer["error"]["code"], "wrong_user", "{said}");
    assert!(
        said.contains("this agent serves its own user only") && said.ends_with("closed\n"),
        "{said}"
    );
}

/// Lanyard's client trusts only an agent of its own user: a socket served by another user
/// (one made first in a shared directory) gets no request and its answers are not taken.
#[tokio::test]
async fn an_agent_of_another_user_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = Env::new();
    env.account(
        "b-forged",
        "issuer = \"http://127.0.0.1:9\"\nclient_id = \"x\"",
    );
    let dir = std::path::PathBuf::from(env.path("shared"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = dir.join("agent.sock").display().to_string();
    // Another user's agent that answers every request with a forged token.
    let mut forger = tokio::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["perl", "-MIO::Socket::UNIX", "-e"])
        .arg(
            "$| = 1; my $l = IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 8) or die $!; \
             chmod 0666, $ARGV[0]; print qq(ready\n); \
             while (my $c = $l->accept) { while (my $q = <$c>) { my ($id) = $q =~ /\"id\":\\s*(\\d+)/; \
             print $c qq({\"id\": $id, \"ok\": {\"version\": 1, \"access_token\": \"forged\", \"token_type\": \"Bearer\", \"expires_at\": null}}\n); } }",
        )
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut ready = String::new();
    tokio::io::BufReader::new(forger.stdout.take().unwrap())
        .read_line(&mut ready)
        .await
        .unwrap();
    assert_eq!(ready, "ready\n");
    let mut env = env;
    env.set("LANYARD_SOCK", &socket);
    let run = env.lanyard(&["token", "b-forged"]).await;
    run.assert_fails(5, "runs as uid 65534, not as you (uid 0)");
    assert!(!run.stdout.contains("forged"), "{run:?}");
}

/// Runs `program` as user nobody and waits for it.
async fn as_nobody(program: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program)
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .await
        .unwrap()
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join<F: std::future::Future<Output = Value> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<Value> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// kubectl runs `lanyard kubectl-credential` as its exec plugin, in API version v1 and
/// v1beta1, and sends the token to the API server.
#[tokio::test]
async fn kubectl_uses_the_exec_credential() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-kube").await;
    let token = env
        .lanyard(&["token", "b-kube"])
        .await
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    let version = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0-lanyard-test"}"#;
    // client-go sends exec credentials over TLS only.
    let api = Api::start(
        true,
        &format!("Bearer {token}"),
        "application/json",
        version,
        "Bearer",
    );
    for api_version in ["v1", "v1beta1"] {
        let args = "kubectl-credential, b-kube";
        let name = format!("kubeconfig-{api_version}");
        let path = crate::support::kubeconfig(&env, &api, api_version, args, "Never", &name);
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.args(["--kubeconfig", &path, "get", "--raw", "/version"])
            .env("LANYARD_CONFIG", &env.config);
        for (k, v) in env.vars() {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("v1.32.0-lanyard-test"),
            "{api_version}: {stdout} {} (the API saw {:?})",
            String::from_utf8_lossy(&out.stderr),
            api.seen().await
        );
    }
    assert!(api.seen().await.contains(&format!("Bearer {token}")));
}

/// git runs `lanyard git-credential` as its credential helper: the access token is the
/// password of a Basic challenge, for the https hosts the account lists only. Through the
/// agent, the app asking is git's own git-remote-https (looked through the helper and the
/// `sh -c` git runs it in).
#[tokio::test]
async fn git_uses_the_credential_helper() {
    use base64::Engine as _;
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-git").await;
    let token = env
        .lanyard(&["token", "b-git"])
        .await
        .assert_ok()
        .stdout
        .trim()
        .to_owned();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("oauth2:{token}"));
    // An empty repository over git's "dumb" HTTP protocol: an empty refs list.
    let api = |tls| {
        Api::start(
            tls,
            &format!("Basic {basic}"),
            "text/plain",
            "",
            "Basic realm=\"lanyard-test\"",
        )
    };
    let (https, http) = (api(true), api(false));
    let host = |api: &Api| {
        api.url
            .split("://")
            .nth(1)
            .unwrap()
            .trim_end_matches('/')
            .to_owned()
    };
    // The account lists the https server's host, and (to show that the scheme matters
    // too) the plain http one's.
    let config = std::fs::read_to_string(&env.config).unwrap().replace(
        "[accounts.b-git]\n",
        &format!(
            "[accounts.b-git]\ngit_hosts = [\"{}\", \"{}\"]\n",
            host(&https),
            host(&http)
        ),
    );
    std::fs::write(&env.config, config).unwrap();
    let _agent = env.start_agent().await;
    // Over https, git asks its credential helpers from git-remote-https, in git's exec
    // path: that is the app the agent names and the person allows.
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap();
    let remote_https = std::path::Path::new(String::from_utf8_lossy(&exec_path.stdout).trim())
        .join("git-remote-https");
    let remote_https = std::fs::canonicalize(remote_https).unwrap();
    env.lanyard(&["allow", "b-git", &remote_https.display().to_string()])
        .await
        .assert_ok();

    let git = |api: &Api, path: &str| {
        let helper = format!(
            "!{} git-credential --account b-git",
            env!("CARGO_BIN_EXE_lanyard")
        );
        let mut cmd = tokio::process::Command::new("git");
        cmd.args([
            "-c",
            "credential.helper=",
            "-c",
            &format!("credential.helper={helper}"),
        ])
        .args(["ls-remote", &format!("{}/{path}", api.url)])
        // (git reads the CA from here; `-c http.sslCAInfo` does not take.)
        .env("GIT_SSL_CAINFO", &api.ca)
        .env("LANYARD_CONFIG", &env.config)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", env.path("home"));
        for (k, v) in env.vars() {
            cmd.env(k, v);
        }
        cmd.output()
    };
    let out = git(&https, "repo.git").await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        https.seen().await.contains(&format!("Basic {basic}")),
        "{:?}",
        https.seen().await
    );

    // Plain http: git is given nothing, and says it could not authenticate.
    let out = git(&http, "repo.git").await.unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("tokens go over https only"), "{said}");
    assert!(
        !http.seen().await.iter().any(|h| h.contains(&basic)),
        "{:?}",
        http.seen().await
    );

    // A host the account does not list: nothing either.
    let other = api(true);
    let out = git(&other, "repo.git").await.unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("is not in the account's git_hosts"), "{said}");
    assert!(!other.seen().await.iter().any(|h| h.contains(&basic)));
}

/// Debian's real `oidc-token` (oidc-agent 4.2.6) gets tokens from Lanyard's oidc-agent
/// socket, over liboidc-agent's encrypted exchange, under the same approval policy; plain
/// JSON requests work too.
#[tokio::test]
async fn oidc_agent_clients_work_unchanged() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-oa").await;
    let compat = env.path("oidc-agent.sock");
    let _agent = env
        .start_agent_with(&["--oidc-agent-socket", &compat])
        .await;
    let oidc_token = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("oidc-token");
        cmd.args(args).env("OIDC_SOCK", &compat);
        cmd.output()
    };
    let refused = oidc_token(&["b-oa"]).await.unwrap();
    let said = String::from_utf8_lossy(&refused.stderr).into_owned()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success());
    assert!(
        said.contains("lanyard allow b-oa /usr/bin/oidc-token"),
        "{said}"
    );

    env.lanyard(&["allow", "b-oa", "/usr/bin/oidc-token"])
        .await
        .assert_ok();
    let stored = crate::support::stored_tokens("b-oa").unwrap();
    let out = oidc_token(&["b-oa"]).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        stored["access_token"].as_str().unwrap()
    );
    let by_issuer = oidc_token(&[&idp.issuer]).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&by_issuer.stdout).trim(),
        stored["access_token"].as_str().unwrap()
    );
    // oidc-token's --scope is down-scoping: a different, narrower token.
    let narrow = oidc_token(&["--scope=openid", "b-oa"]).await.unwrap();
    let narrow = String::from_utf8_lossy(&narrow.stdout).trim().to_owned();
    assert!(narrow.len() > 20, "{narrow}");
    assert_ne!(narrow, stored["access_token"].as_str().unwrap());

    // Plain JSON, one request per connection.
    let ask = |request: Value| {
        let compat = compat.clone();
        async move {
            let mut plain = UnixStream::connect(&compat).await.unwrap();
            plain
                .write_all(request.to_string().as_bytes())
                .await
                .unwrap();
            let mut answer = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut plain, &mut answer)
                .await
                .unwrap();
            serde_json::from_str::<Value>(&answer).unwrap()
        }
    };
    assert_eq!(
        ask(json!({"request": "loaded_accounts"})).await,
        json!({"status": "success", "info": ["b-oa"]})
    );
    // ID tokens only with their own grant (oidc-token 4.2.6 asks for them elsewhere, on
    // OIDC_REMOTE_SOCK; liboidc-agent's clients ask here).
    let id_request = json!({"request": "id_token", "account": "b-oa"});
    assert_eq!(ask(id_request.clone()).await["status"], "failure");
    env.lanyard(&["allow", "b-oa", &me()]).await.assert_ok();
    assert_eq!(
        ask(id_request.clone()).await["status"],
        "failure",
        "an access-token grant is not an ID-token grant"
    );
    env.lanyard(&["allow", "b-oa", &me(), "--id-token"])
        .await
        .assert_ok();
    assert_eq!(ask(id_request).await["id_token"], stored["id_token"]);
}

/// The agent hands back the pages of code its start-up ran once it is quiet, and keeps
/// serving: what a request runs is mapped again from the page cache as it runs.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_agent_hands_back_its_start_up_code_and_keeps_serving() {
    let idp = Idp::start(false);
    let mut env = signed_in(&idp, "b-pages").await;
    env.lanyard(&["allow", "b-pages", &me()]).await.assert_ok();
    // It says when it has handed memory back (a debug line).
    env.set("RUST_LOG", "lanyard::broker::agent=debug");
    let mut agent = env.start_agent().await;
    let mut raw = Raw::hello(&env).await;
    let request = json!({"id": 2, "op": "token", "account": "b-pages", "min_valid": 0});
    let first = raw.call(request.clone()).await;
    assert!(first["ok"]["access_token"].is_string(), "{first}");
    let started = resident_code(agent.pid());
    agent.until_it_says("memory released").await;
    let now = resident_code(agent.pid());
    assert!(
        now < started / 2,
        "the agent still maps {now} bytes of its code, {started} after starting"
    );
    let again = raw.call(request).await;
    assert_eq!(again["ok"], first["ok"], "the same token, from memory");
}

/// The bytes of its own program's code and read-only data that process `pid` maps.
#[cfg(target_os = "linux")]
fn resident_code(pid: u32) -> u64 {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut total = 0;
    let mut ours = false;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            ours = fields.len() >= 6
                && fields[1].starts_with("r-")
                && std::path::Path::new(fields[5]) == exe;
        } else if ours && fields.first() == Some(&"Rss:") {
            total += fields[1].parse::<u64>().unwrap() * 1024;
        }
    }
    total
}

/// Subscribers see who asks without approval, sign-outs, and the account's new state.
#[tokio::test]
async fn subscribers_see_events() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "b-events").await;
    let _agent = env.start_agent().await;
    let mut events = Raw::hello(&env).await;
    assert_eq!(
        events.call(json!({"id": 2, "op": "subscribe"})).await,
        json!({"id": 2, "ok": {}})
    );
    let mut raw = Raw::hello(&env).await;
    let refused = raw
        .call(json!({"id": 2, "op": "token", "account": "b-events"}))
        .await;
    assert_eq!(refused["error"]["code"], "approval_required");
    let event = events.line().await.unwrap();
    assert_eq!(event["event"]["type"], "approval_needed", "{event}");
    assert_eq!(event["event"]["app"], me());
    // The decision as the audit log (and the app's activity view) has it.
    let access = events.line().await.unwrap();
    assert_eq!(access["event"]["type"], "access", "{access}");
    assert_eq!(access["event"]["decision"], "approval_required", "{access}");
    assert_eq!(access["event"]["app"], me());
    let out = raw
        .call(json!({"id": 3, "op": "logout", "account": "b-events", "local": true}))
        .await;
    assert!(out["ok"]["revoked"].is_array(), "{out}");
    assert_eq!(
        events.line().await.unwrap(),
        json!({"event": {"type": "signed_out", "account": "b-events"}})
    );
    let accounts = raw.call(json!({"id": 4, "op": "accounts"})).await;
    assert_eq!(accounts["ok"][0]["status"], "signed_out");
}

/// Down-scoping: a token with fewer scopes, and one for an API's audience (RFC 8707),
/// each from a refresh; the sign-in's own token and identity stay as they were.
#[tokio::test]
async fn narrower_tokens_for_fewer_scopes_and_an_audience() {
    use base64::Engine as _;
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "b-narrow",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-basic\"\n\
             scopes = \"openid profile email offline_access api:read api:write\"\n\
             resources = [\"https://api.one.test\", \"https://api.two.test\"]",
            idp.issuer
        ),
    );
    env.lanyard_with_stdin(
        &["accounts", "set-secret", "b-narrow"],
        "basic-secret-0123456789\n",
    )
    .await
    .assert_ok();
    env.lanyard(&["login", "b-narrow"]).await.assert_ok();
    let basic = crate::support::basic("lanyard-basic", "basic-secret-0123456789");
    let token = |args: &'static [&'static str]| env.access_token("b-narrow", args);
    let claims = |jwt: &str| -> Value {
        let payload = jwt.split('.').nth(1).expect("a JWT");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };

    // Direct mode, with no agent running.
    let own = token(&[]).await;
    let narrow = token(&["--scope", "openid profile"]).await;
    assert_ne!(narrow, own);
    let seen = idp.introspect(&basic, &narrow).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["scope"], "openid profile", "{seen}");

    // Through the agent: narrower tokens are cached apart from the sign-in's own.
    let _agent = env.start_agent().await;
    env.lanyard(&["allow", "b-narrow", &me()]).await.assert_ok();
    assert_eq!(
        token(&[]).await,
        own,
        "the stored token is still the sign-in's"
    );
    let narrow = token(&["--scope", "openid"]).await;
    assert_eq!(idp.introspect(&basic, &narrow).await["scope"], "openid");
    assert_eq!(
        token(&["--scope", "openid"]).await,
        narrow,
        "served from memory"
    );
    let api = token(&["--audience", "https://api.one.test"]).await;
    let api_claims = claims(&api);
    assert_eq!(api_claims["aud"], "https://api.one.test", "{api_claims}");
    assert_eq!(api_claims["scope"], "api:read api:write", "{api_claims}");
    let read_only = token(&["--audience", "https://api.two.test", "--scope", "api:read"]).await;
    let read_claims = claims(&read_only);
    assert_eq!(read_claims["aud"], "https://api.two.test", "{read_claims}");
    assert_eq!(read_claims["scope"], "api:read", "{read_claims}");
    let own_seen = idp.introspect(&basic, &own).await;
    assert_eq!(own_seen["active"], true, "{own_seen}");
    assert!(
        own_seen["scope"].as_str().unwrap().contains("api:write"),
        "{own_seen}"
    );
    assert_eq!(token(&[]).await, own);
    // The identity is the sign-in's, not a narrowed refresh's.
    let me_now = env.lanyard(&["whoami", "b-narrow", "--json"]).await;
    assert_eq!(me_now.assert_ok().json()["email"], "alice@example.test");

    // The same over the protocol; refusals say why.
    let mut raw = Raw::hello(&env).await;
    let answer = raw
        .call(json!({"id": 2, "op": "token", "account": "b-narrow", "scope": "openid"}))
        .await;
    assert_eq!(answer["ok"]["access_token"], narrow.as_str(), "{answer}");
    let answer = raw
        .call(json!({"id": 3, "op": "token", "account": "b-narrow", "audience": "https://api.evil.test"}))
        .await;
    assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
    env.lanyard(&["token", "b-narrow", "--audience", "https://api.evil.test"])
        .await
        .assert_fails(2, "is not among the account's resources");
    // A scope the sign-in was not granted is refused before the provider is asked.
    env.lanyard(&["token", "b-narrow", "--scope", "openid admin"])
        .await
        .assert_fails(2, "the sign-in was not granted admin");
    let answer = raw
        .call(json!({"id": 4, "op": "token", "account": "b-narrow", "scope": "admin"}))
        .await;
    assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
    // The same scopes in another order (and twice) are the same cached token.
    let again = raw
        .call(json!({"id": 5, "op": "token", "account": "b-narrow", "scope": " openid  openid "}))
        .await;
    assert_eq!(again["ok"]["access_token"], narrow.as_str(), "{again}");
    assert_eq!(
        token(&[]).await,
        own,
        "a refusal leaves the stored token alone"
    );
}

/// `lanyard login` and `lanyard logout` go through a running agent: it runs the sign-in
/// (so a memory account lives where it is served), serves the new tokens at once, and
/// stops serving the moment the account signs out. An app not allowed the account may
/// sign in and out (audited), and learns no subject.
#[tokio::test]
async fn login_and_logout_from_the_command_line_reach_the_running_agent() {
    let idp = Idp::start(false);
    let env = Env::new();
    env.account(
        "b-route",
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\nstore = \"memory\"",
            idp.issuer
        ),
    );
    let _agent = env.start_agent().await;

    // The agent runs the sign-in; the command line shows its progress.
    let run = env.lanyard(&["login", "b-route"]).await;
    run.assert_ok();
    assert!(run.stdout.contains("Signed in to b-route"), "{run:?}");
    assert!(run.stderr.contains("Opened your browser"), "{run:?}");
    assert_eq!(
        crate::support::keychain("lanyard", "b-route"),
        None,
        "a memory account"
    );
    let mut raw = Raw::hello(&env).await;
    let accounts = raw.call(json!({"id": 2, "op": "accounts"})).await;
    assert_eq!(accounts["ok"][0]["status"], "signed_in", "{accounts}");
    assert_eq!(
        accounts["ok"][0]["subject"],
        Value::Null,
        "an app not allowed the account learns no subject: {accounts}"
    );
    env.lanyard(&["allow", "b-route", &me()]).await.assert_ok();
    let accounts = raw.call(json!({"id": 3, "op": "accounts"})).await;
    assert_eq!(accounts["ok"][0]["subject"], "alice", "{accounts}");
    let first = env.lanyard(&["token", "b-route"]).await;
    let first = first.assert_ok().stdout.trim().to_owned();

    // Signing in again, opening the one-time link by hand (`--no-browser`): the agent
    // serves the new sign-in's token at once, not the one it had cached.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_lanyard"));
    cmd.args(["login", "b-route", "--no-browser", "--reauth"])
        .env("LANYARD_CONFIG", &env.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env.vars() {
        cmd.env(k, v);
    }
    let mut login = cmd.spawn().unwrap();
    let mut lines = BufReader::new(login.stderr.take().unwrap()).lines();
    let link = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the link is printed");
        if let Some(link) = line.trim().strip_prefix("http://127.0.0.1:") {
            break format!("http://127.0.0.1:{link}");
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    env.phone(&link).await;
    assert!(login.wait().await.unwrap().success());
    let second = env.lanyard(&["token", "b-route"]).await;
    let second = second.assert_ok().stdout.trim().to_owned();
    assert_ne!(
        second, first,
        "the agent still served the old sign-in's token"
    );
    assert_eq!(idp.userinfo(&second).await["sub"], "alice");

    // Signing out: the agent serves nothing from that moment.
    let run = env.lanyard(&["logout", "b-route"]).await;
    run.assert_ok();
    assert!(run.stdout.contains("Signed out of b-route"), "{run:?}");
    env.lanyard(&["token", "b-route"])
        .await
        .assert_fails(3, "sign-in needed");
    let audit = std::fs::read_to_string(format!("{}/lanyard/audit.log", env.path("data"))).unwrap();
    for what in ["signed_in", "signed_out"] {
        assert!(
            audit.lines().any(|l| l.contains(what) && l.contains(&me())),
            "{what} by this program is not in the audit log:\n{audit}"
        );
    }
}
