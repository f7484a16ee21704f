//! `lanyard ssh`: the agent forwarded to a remote host over the real OpenSSH. The remote
//! host is Debian's sshd on 127.0.0.1 with its own configuration and throwaway host and
//! user keys; two aliases name it, as two hosts would be named. What asks from there is
//! the app `ssh:HOST`: approved for one alias, still refused for the other.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncBufReadExt as _;

use crate::broker::signed_in;
use crate::support::{Env, Idp, Run, free_port, run_with_stdin};

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
/// machine) and the agent's local directories.
fn leftovers() -> Vec<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let mut found = Vec::new();
    for dir in [Some(std::env::temp_dir()), runtime.map(PathBuf::from)]
        .into_iter()
        .flatten()
    {
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
    let idp = Idp::start(false);
    let env = signed_in(&idp, "ssh-work").await;
    let _agent = env.start_agent().await;
    let sshd = Sshd::start(&env).await;
    let before = leftovers();
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
    let left = leftovers();
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
