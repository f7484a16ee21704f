//! `lanyard ssh`: the agent forwarded to a remote host over the real OpenSSH. The remote
//! host is Debian's sshd on 127.0.0.1 with its own configuration and throwaway host and
//! user keys; two aliases name it, as two hosts would be named. What asks from there is
//! the app `ssh:HOST`: approved for one alias, still refused for the other.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncBufReadExt as _;

use crate::broker::signed_in;
use crate::support::{Env, Idp, Run, free_port, run_with_stdin};

/// One `lanyard ssh` test at a time: each checks that no socket is left in /tmp, where the
/// others' remote sockets would be while they run.
static ONE_SSH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// sshd on 127.0.0.1, and an ssh client configuration that reaches it as `build-box` and
/// as `other-box`. Stopped on drop.
struct Sshd {
    child: tokio::process::Child,
    config: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn keygen(path: &Path) {
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lanyard-test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "ssh-keygen failed for {}", path.display());
}

impl Sshd {
    async fn start(env: &Env) -> Sshd {
        let dir = PathBuf::from(env.path("ssh"));
        std::fs::create_dir_all(&dir).unwrap();
        let (host_key, user_key) = (dir.join("host_key"), dir.join("id"));
        keygen(&host_key);
        keygen(&user_key);
        let public = |key: &Path| std::fs::read_to_string(key.with_extension("pub")).unwrap();
        std::fs::write(dir.join("authorized_keys"), public(&user_key)).unwrap();
        std::fs::write(
            dir.join("known_hosts"),
            format!("lanyard-test {}", public(&host_key)),
        )
        .unwrap();
        let port = free_port();
        let server = dir.join("sshd_config");
        std::fs::write(
            &server,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 AllowStreamLocalForwarding yes\nLogLevel VERBOSE\n",
                host_key.display(),
                dir.join("authorized_keys").display()
            ),
        )
        .unwrap();
        let user = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let user = String::from_utf8_lossy(&user.stdout).trim().to_owned();
        let config = dir.join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host build-box other-box\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\
                 \x20 IdentityFile {}\n  IdentitiesOnly yes\n  HostKeyAlias lanyard-test\n\
                 \x20 UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n\
                 \x20 LogLevel ERROR\n",
                user_key.display(),
                dir.join("known_hosts").display()
            ),
        )
        .unwrap();
        // Run as root, sshd separates privileges into this directory, which its service
        // would otherwise make.
        if user == "root" {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let mut child = tokio::process::Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&server)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        let listening = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let up = line.contains(&format!("listening on 127.0.0.1 port {port}"));
                said.push(line);
                if up {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(listening, Ok(true)),
            "sshd did not start: {}",
            said.join("\n")
        );
        // Keep reading its log, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Sshd { child, config }
    }

    /// `lanyard ssh -F CONFIG HOST COMMAND…`, run from the test's environment.
    async fn run(&self, env: &Env, host: &str, command: &[&str]) -> Run {
        let config = self.config.display().to_string();
        let mut args = vec!["ssh", "-F", &config, host];
        args.extend_from_slice(command);
        run_with_stdin(env.command(&args), "").await
    }
}

/// The forwarded sockets' leftovers: the remote ones in /tmp (the remote host is this
/// machine) and the agent's local directories (in the test's runtime directory).
fn leftovers(env: &Env) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [std::env::temp_dir(), PathBuf::from(env.path("run"))] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("lanyard-ssh-")
                || (name.starts_with("lanyard-") && name.ends_with(".sock"))
            {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn a_remote_host_is_approved_as_itself() {
    let _one = ONE_SSH.lock().await;
    let idp = Idp::start(false);
    let env = signed_in(&idp, "ssh-work").await;
    let _agent = env.start_agent().await;
    let sshd = Sshd::start(&env).await;
    let before = leftovers(&env);
    let lanyard = env!("CARGO_BIN_EXE_lanyard");

    // The remote side asks through its forwarded socket, and the agent names the host.
    let refused = sshd
        .run(&env, "build-box", &[lanyard, "token", "ssh-work"])
        .await;
    refused.assert_fails(8, "lanyard allow ssh-work ssh:build-box");

    env.lanyard(&["allow", "ssh-work", "ssh:build-box"])
        .await
        .assert_ok();
    let run = sshd
        .run(&env, "build-box", &[lanyard, "token", "ssh-work", "--json"])
        .await;
    let token = run.assert_ok().json()["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(
        idp.userinfo(&token).await["sub"].is_string(),
        "the token from the remote side works at the provider"
    );
    // oidc-agent's own client there, on the host's other socket (OIDC_SOCK).
    let oidc = sshd
        .run(&env, "build-box", &["oidc-token", "ssh-work"])
        .await;
    assert_eq!(oidc.assert_ok().stdout.trim(), token);

    // The same machine under another alias is another host, not yet approved.
    let other = sshd
        .run(&env, "other-box", &[lanyard, "token", "ssh-work"])
        .await;
    other.assert_fails(8, "lanyard allow ssh-work ssh:other-box");

    // The remote command's exit code is `lanyard ssh`'s.
    let exit = sshd.run(&env, "build-box", &["exit", "3"]).await;
    assert_eq!(exit.code, 3, "{exit:#?}");

    // Both ends' sockets are gone when `lanyard ssh` returns: the remote ones removed by
    // the wrapper, the agent's once it closed the forward's connection.
    let left = leftovers(&env);
    assert_eq!(left, before, "sockets left behind");
}

/// Only `lanyard ssh` opens a host's sockets: another program asking the agent for them is
/// refused, so it cannot pass itself off as a host that was approved.
#[tokio::test]
async fn only_lanyard_ssh_opens_a_hosts_sockets() {
    let idp = Idp::start(false);
    let env = signed_in(&idp, "ssh-forge").await;
    let _agent = env.start_agent().await;
    let mut client = lanyard::broker::Client::connect(Path::new(&env.socket()))
        .await
        .unwrap();
    let refused = client
        .call::<serde_json::Value>(lanyard::broker::protocol::Op::Forward {
            host: "build-box".into(),
        })
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("opened by `lanyard ssh` alone"),
        "{refused}"
    );
}

/// What a program on the remote host sends on the host's sockets, each request on its
/// own line, and what it reads back: a raw client (Perl, as Debian has it), since the
/// host may ask for anything the protocol has.
const REMOTE_CLIENT: &str = r#"
use IO::Socket::UNIX;
$| = 1;
my $s = IO::Socket::UNIX->new(Peer => $ENV{LANYARD_SOCK}) or die "connect: $!";
print $s qq({"id": 1, "op": "hello", "version": 1}\n);
print scalar <$s>;
my $id = 2;
for my $op (@ARGV) {
    print $s qq({"id": $id, $op}\n);
    print scalar <$s>;
    $id++;
}
my $o = IO::Socket::UNIX->new(Peer => $ENV{OIDC_SOCK}) or die "connect: $!";
print $o qq({"request": "loaded_accounts"});
$o->shutdown(1);
local $/;
print "oidc: ", scalar <$o>, "\n";
"#;

/// A remote host, allowed or not, may ask for tokens and identity only: it cannot sign
/// the desktop's accounts out, start a sign-in (which it could finish as itself), list
/// the accounts, watch events, open more forwards or end a kiosk session. The person
/// stays signed in, and nothing was revoked.
#[tokio::test]
async fn a_remote_host_cannot_sign_the_desktop_in_or_out() {
    let _one = ONE_SSH.lock().await;
    let idp = Idp::start(false);
    let env = signed_in(&idp, "ssh-held").await;
    let _agent = env.start_agent().await;
    let sshd = Sshd::start(&env).await;
    let stored = crate::support::stored_tokens("ssh-held").unwrap();
    let refused_ops = [
        r#""op": "logout", "account": "ssh-held", "local": true"#,
        r#""op": "logout", "account": "ssh-held", "open_browser": false"#,
        r#""op": "login", "account": "ssh-held", "device": true"#,
        r#""op": "login", "account": "ssh-held", "open_browser": false, "as_new_user": true"#,
        r#""op": "accounts""#,
        r#""op": "subscribe""#,
        r#""op": "forward", "host": "elsewhere""#,
        r#""op": "end_session""#,
        r#""op": "client_credentials", "account": "ssh-held""#,
    ];
    for allowed in [false, true] {
        if allowed {
            // Even a host allowed the account's tokens (and its ID token).
            for extra in [&[][..], &["--id-token"][..]] {
                let mut args = vec!["allow", "ssh-held", "ssh:build-box"];
                args.extend_from_slice(extra);
                env.lanyard(&args).await.assert_ok();
            }
        }
        let mut command = vec!["perl", "-e", REMOTE_CLIENT];
        command.extend(refused_ops.iter().copied());
        // (ssh hands the remote shell one command line: quote each word for it.)
        let quoted: Vec<String> = command.iter().map(|w| shell_quote(w)).collect();
        let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
        let run = sshd.run(&env, "build-box", &quoted).await;
        let run = run.assert_ok();
        let mut lines = run.stdout.lines();
        let hello: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(hello["ok"]["version"], 1, "{run:#?}");
        for op in refused_ops {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("no answer to {op}: {run:#?}"));
            let answer: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                answer["error"]["code"], "not_allowed_from_host",
                "{op} (allowed: {allowed}): {answer}"
            );
        }
        let oidc = lines.next().unwrap_or_default();
        assert!(
            oidc.contains("failure")
                && oidc.contains("ssh:build-box")
                && !oidc.contains("ssh-held\""),
            "oidc-agent's loaded_accounts (allowed: {allowed}): {oidc}"
        );
        // The command line there says so in one line, with the exit code for a refusal.
        let logout = sshd
            .run(
                &env,
                "build-box",
                &[
                    env!("CARGO_BIN_EXE_lanyard"),
                    "logout",
                    "ssh-held",
                    "--no-browser",
                ],
            )
            .await;
        logout.assert_fails(8, "ssh:build-box may ask for tokens and identity only");
    }
    // Still signed in, with the same tokens; the provider revoked nothing.
    assert_eq!(crate::support::stored_tokens("ssh-held").unwrap(), stored);
    let who = env.lanyard(&["whoami", "ssh-held", "--json"]).await;
    assert_eq!(who.assert_ok().json()["status"], "signed_in", "{who:#?}");
    let events = idp.events().await;
    assert!(
        !events
            .iter()
            .any(|e| e.contains("revoked") || e.contains("destroyed")),
        "{events:?}"
    );
    // And the host still gets what it was allowed.
    let token = sshd
        .run(
            &env,
            "build-box",
            &[env!("CARGO_BIN_EXE_lanyard"), "token", "ssh-held"],
        )
        .await;
    token.assert_ok();
}

/// One word for a POSIX shell.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
