//! Sockets of one remote host's own, for `lanyard ssh`.
//!
//! `lanyard ssh HOST` asks the agent (`forward`) for a pair of sockets dedicated to HOST:
//! one speaking the agent's protocol, one oidc-agent's. ssh forwards both to the remote
//! machine (`-R`). Every request that comes through them is named `ssh:HOST` in approvals,
//! prompts and the audit log, whatever runs on the remote side: the host is allowed or
//! denied apart from the desktop's own programs and from every other host, and is
//! remembered like an app.
//!
//! Only the ssh that asked may use them. `forward` is taken from a `lanyard` command line
//! alone, and a connection to the sockets must come from a direct child of that command
//! line's process: the ssh it runs. Both are read from the pinned process table, as for
//! every peer. The sockets live in a directory made afresh with mode 0700, and go when
//! the `forward` connection closes (when ssh exits, or `lanyard ssh` is killed).

use std::path::PathBuf;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::accept::{self, Limits};
use super::agent::Agent;
use super::oidc_agent;
use super::peer::Peer;
use super::protocol::{Code, ErrorBody};
use super::server::{self, Forwarded};
use crate::platform::{self, Listener};

/// What names a host's requests in the policy: `ssh:HOST`.
pub const PREFIX: &str = "ssh:";

/// Connections a host is served at once on each of its sockets: enough for its tools, and
/// far from the descriptors the agent's own socket needs (a host that opens more is told
/// `busy`).
pub const HOST_CONNECTIONS: usize = 16;

/// A host's sockets, served until this is dropped; then they are removed.
pub struct Forward {
    dir: PathBuf,
    socket: PathBuf,
    oidc_socket: PathBuf,
    stop: watch::Sender<bool>,
}

impl Forwarded for Forward {
    fn reply(&self) -> Value {
        json!({ "socket": self.socket, "oidc_socket": self.oidc_socket })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Opens HOST's sockets for `owner`, the connection that asked ([`server::Forwarder`]).
pub fn open(agent: &Agent, host: &str, owner: &Peer) -> Result<Box<dyn Forwarded>, ErrorBody> {
    let refuse = |code, message: String| ErrorBody {
        code,
        message,
        hint: None,
    };
    check_host(host).map_err(|why| refuse(Code::BadRequest, why))?;
    // A host reaches its sockets through a `lanyard` command line on its side, which is
    // looked through as any other: it must not open sockets of its own.
    if owner.remote {
        return Err(server::not_allowed_from_host(owner));
    }
    let (Some(_), Some(cli)) = (&owner.through, owner.process) else {
        return Err(refuse(
            Code::Denied,
            "sockets for a remote host are opened by `lanyard ssh` alone".into(),
        ));
    };
    let name = crate::secret::random(9)
        .map_err(|_| refuse(Code::Internal, "no randomness for a directory name".into()))?;
    let dir = platform::forward_dir(&format!("lanyard-ssh-{}", name.expose()))
        .map_err(|e| refuse(Code::NotSupported, format!("cannot serve {host}: {e}")))?;
    let (stop, stopped) = watch::channel(false);
    let forward = Forward {
        socket: dir.join("agent.sock"),
        oidc_socket: dir.join("oidc-agent.sock"),
        dir,
        stop,
    };
    let bind = |path: &PathBuf| {
        Listener::bind(path).map_err(|e| {
            refuse(
                Code::Internal,
                format!("cannot listen at {}: {e}", path.display()),
            )
        })
    };
    let (main, compat) = (bind(&forward.socket)?, bind(&forward.oidc_socket)?);
    let user = platform::own_user();
    let clis = agent.clis().clone();
    let until = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    tokio::spawn({
        let (agent, user, clis, host) =
            (agent.clone(), user.clone(), clis.clone(), host.to_owned());
        let shutdown = until(stopped.clone());
        async move {
            let limits = Limits {
                parent: true,
                ..server::limits(HOST_CONNECTIONS)
            };
            accept::accept(main, &clis, limits, shutdown, move |stream, peer| {
                let peer = peer.and_then(|p| as_host(p, &host, cli));
                server::serve(stream, peer, agent.clone(), user.clone(), None)
            })
            .await;
        }
    });
    tokio::spawn({
        let (agent, host) = (agent.clone(), host.to_owned());
        let shutdown = until(stopped);
        async move {
            accept::accept(
                compat,
                &clis,
                Limits {
                    parent: true,
                    max: HOST_CONNECTIONS,
                    ..oidc_agent::limits()
                },
                shutdown,
                move |stream, peer| {
                    let peer = peer.and_then(|p| as_host(p, &host, cli));
                    oidc_agent::serve(stream, peer, agent.clone(), user.clone())
                },
            )
            .await;
        }
    });
    tracing::info!(host, cli, socket = %forward.socket.display(), "serving a remote host");
    Ok(Box::new(forward))
}

/// The peer of a host's socket, named as the host: it must be the ssh that `lanyard ssh`
/// (process `cli`) runs.
fn as_host(peer: Peer, host: &str, cli: i32) -> std::io::Result<Peer> {
    if peer.parent != Some(cli) || peer.through.is_some() {
        return Err(std::io::Error::other(format!(
            "{} (process {:?}) is not the ssh that `lanyard ssh {host}` runs; only that one may use {host}'s sockets",
            peer.app, peer.process
        )));
    }
    Ok(Peer {
        app: format!("{PREFIX}{host}"),
        through: Some(peer.app),
        remote: true,
        ..peer
    })
}

/// A host as ssh's command line names it (an alias, a name, an address): what the person
/// sees in prompts and types in `lanyard allow`.
pub fn check_host(host: &str) -> Result<(), String> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "-._:[]%".contains(c);
    if host.is_empty() || host.len() > 255 || host.starts_with('-') || !host.chars().all(fine) {
        return Err(format!(
            "`{host}` is not a host name: letters, digits and - . _ : [ ] % only"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(app: &str, process: i32, parent: i32, through: Option<&str>) -> Peer {
        Peer {
            user: platform::own_user(),
            pid: Some(process),
            app: app.into(),
            through: through.map(Into::into),
            process: Some(process),
            parent: Some(parent),
            remote: false,
        }
    }

    #[test]
    fn only_the_ssh_that_lanyard_ssh_runs_is_named_as_the_host() {
        let named = as_host(peer("/usr/bin/ssh", 20, 10, None), "build-box", 10).unwrap();
        assert_eq!(named.app, "ssh:build-box");
        assert!(named.remote);
        assert_eq!(named.through.as_deref(), Some("/usr/bin/ssh"));
        // Another program of the user's that found the socket.
        let other = as_host(peer("/usr/bin/python3", 30, 1, None), "build-box", 10);
        assert!(other.unwrap_err().to_string().contains("only that one"));
        // A `lanyard` command line run by the ssh (looked through) is not the ssh itself.
        let cli = peer("/usr/bin/ssh", 20, 10, Some("/usr/bin/lanyard"));
        assert!(as_host(cli, "build-box", 10).is_err());
    }

    #[test]
    fn host_names_are_what_ssh_takes_and_nothing_a_prompt_could_mislead_with() {
        for fine in [
            "build-box",
            "alice.example.com",
            "10.0.0.7",
            "[::1]:2222",
            "fe80::1%eth0",
        ] {
            assert_eq!(check_host(fine), Ok(()), "{fine}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "-oProxyCommand=x",
            "a b",
            "a/b",
            "box\n",
            "ssh:x@y",
            &long,
        ] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
    }
}
