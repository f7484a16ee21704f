//! `lanyard ssh [SSH ARGS]`: ssh, with the agent forwarded to the remote host on sockets of
//! that host's own, so that what asks from there is approved per host (`ssh:HOST`).
//!
//! The agent opens the host's sockets (`forward`, see `broker::forward`) and keeps them
//! while this command holds its connection. ssh forwards them (`-R`) to random paths in the
//! remote `/tmp` (sshd makes them 0600), and the remote command runs with `LANYARD_SOCK`
//! and `OIDC_SOCK` pointing there, through a POSIX `sh` wrapper that removes them when the
//! session ends. Remote `lanyard token` and oidc-agent's clients then work unchanged.

use std::io::IsTerminal as _;

use crate::broker::protocol::Op;
use crate::broker::{self, forward};
use crate::{Error, Kind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// ssh's own arguments, as ssh takes them: [OPTIONS] DESTINATION [COMMAND...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "SSH ARGS"
    )]
    ssh: Vec<String>,
}

/// Runs ssh to its end; its exit code is the command's.
pub async fn run(args: Args) -> Result<i32, Error> {
    let line = split(&args.ssh).map_err(usage)?;
    let host = host_of(&line.destination);
    forward::check_host(host).map_err(usage)?;
    let path = broker::socket_path();
    let mut agent = broker::Client::connect(&path)
        .await
        .map_err(|e| match e {
            broker::client::Error::NotRunning(_) => Error::Usage {
                kind: Kind::Other,
                message: format!(
                    "`lanyard ssh` forwards the agent, and none runs at {}: start it with `lanyard agent` (or open the Lanyard app)",
                    path.display()
                ),
            },
            e => e.into(),
        })?;
    let local: serde_json::Value = agent
        .call(Op::Forward {
            host: host.to_owned(),
        })
        .await?;
    let (Some(socket), Some(oidc_socket)) =
        (local["socket"].as_str(), local["oidc_socket"].as_str())
    else {
        return Err(usage(format!("the agent answered `forward` with {local}")));
    };
    let tag = crate::secret::random(9).map_err(|_| usage("no randomness".into()))?;
    let remote = Remote {
        socket: format!("/tmp/lanyard-{}.sock", tag.expose()),
        oidc_socket: format!("/tmp/lanyard-{}.oidc.sock", tag.expose()),
    };
    let mut ssh = std::process::Command::new("ssh");
    // Our own ssh process forwards (not a shared master connection), so that the agent
    // knows it as this command's child.
    ssh.args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
        .args(["-o", "ExitOnForwardFailure=yes"])
        .arg("-R")
        .arg(format!("{}:{socket}", remote.socket))
        .arg("-R")
        .arg(format!("{}:{oidc_socket}", remote.oidc_socket));
    if line.no_command {
        eprintln!(
            "lanyard: {host} reaches your agent at LANYARD_SOCK={} and OIDC_SOCK={} while this runs",
            remote.socket, remote.oidc_socket
        );
        ssh.args(&line.options).arg(&line.destination);
    } else {
        // A login shell gets a terminal, as plain ssh gives it one.
        if line.command.is_empty() && !line.tty_set && std::io::stdin().is_terminal() {
            ssh.arg("-t");
        }
        ssh.args(&line.options)
            .arg(&line.destination)
            .arg(remote.wrap(&line.command));
    }
    tracing::debug!(?ssh, "running ssh");
    // Ctrl-C is ssh's to act on (it reaches both); this command waits for ssh to end.
    let interrupts = tokio::spawn(async { while tokio::signal::ctrl_c().await.is_ok() {} });
    // (The task starts listening for it at its first turn, which this gives it.)
    tokio::task::yield_now().await;
    let status = tokio::task::spawn_blocking(move || ssh.status())
        .await
        .map_err(|e| usage(format!("waiting for ssh: {e}")))?
        .map_err(|e| Error::Usage {
            kind: Kind::Other,
            message: format!(
                "cannot run ssh: {e}; install OpenSSH's client (Debian: openssh-client)"
            ),
        })?;
    interrupts.abort();
    // The host's sockets close with this connection: the agent has removed them once it
    // closes its side.
    if let Err(e) = agent.close().await {
        tracing::warn!(error = %e, "the agent did not confirm closing the host's sockets");
    }
    Ok(exit_code(status))
}

fn usage(message: String) -> Error {
    Error::Usage {
        kind: Kind::Config,
        message,
    }
}

#[cfg(unix)]
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

#[cfg(not(unix))]
fn exit_code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(255)
}

/// Where the host's sockets appear on the remote machine.
struct Remote {
    socket: String,
    oidc_socket: String,
}

impl Remote {
    /// The remote command: `command` (or a login shell) run by the user's shell, as ssh
    /// runs it, with the sockets in its environment; they are removed when it ends.
    fn wrap(&self, command: &[String]) -> String {
        let Remote {
            socket,
            oidc_socket,
        } = self;
        let script = format!(
            "export LANYARD_SOCK={socket} OIDC_SOCK={oidc_socket}; \
             trap \"rm -f {socket} {oidc_socket}\" EXIT; trap \"exit 129\" HUP; trap \"exit 143\" TERM; \
             if [ $# -gt 0 ]; then \"${{SHELL:-/bin/sh}}\" -c \"$1\"; else \"${{SHELL:-/bin/sh}}\" -l; fi"
        );
        let mut wrapped = format!("sh -c {} lanyard-ssh", quote(&script));
        if !command.is_empty() {
            // ssh joins the command's words with spaces; so does this.
            wrapped.push(' ');
            wrapped.push_str(&quote(&command.join(" ")));
        }
        wrapped
    }
}

/// `s` as one word for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// ssh's command line, taken apart as ssh takes it.
#[derive(Debug, Default, PartialEq)]
struct Line {
    options: Vec<String>,
    destination: String,
    command: Vec<String>,
    /// `-N`: no remote command, forwarding only.
    no_command: bool,
    /// `-t` or `-T` was given: the terminal is as asked.
    tty_set: bool,
}

/// ssh's options that take a value (OpenSSH's getopt string).
const WITH_VALUE: &str = "BbcDEeFIiJLlmOoPpQRSWw";
/// Options `lanyard ssh` cannot honour: it holds the sockets while ssh runs in front of it.
const REFUSED: &[(char, &str)] = &[
    (
        'f',
        "-f would put ssh in the background, and the host's sockets close when `lanyard ssh` returns",
    ),
    (
        'O',
        "-O talks to a master connection, which does not forward for `lanyard ssh`",
    ),
    (
        'W',
        "-W forwards standard input only; there is no remote command to give the sockets",
    ),
    ('G', "-G only prints ssh's configuration; run ssh -G itself"),
];

/// Splits ssh's arguments: options (to the destination and after it, as ssh reads them),
/// the destination, and the remote command.
fn split(args: &[String]) -> Result<Line, String> {
    let mut line = Line::default();
    let mut rest = args.iter();
    let mut terminated = false;
    let mut destination = None;
    let mut pending: Option<&String> = None;
    loop {
        // Options, up to the first word that is not one.
        while !terminated {
            let Some(arg) = pending.take().or_else(|| rest.next()) else {
                break;
            };
            if arg == "--" {
                terminated = true;
                break;
            }
            if !arg.starts_with('-') || arg == "-" {
                pending = Some(arg);
                break;
            }
            line.options.push(arg.clone());
            for (at, flag) in arg[1..].char_indices() {
                if let Some((_, why)) = REFUSED.iter().find(|(f, _)| *f == flag) {
                    return Err((*why).to_owned());
                }
                match flag {
                    'N' => line.no_command = true,
                    't' | 'T' => line.tty_set = true,
                    _ => {}
                }
                if WITH_VALUE.contains(flag) {
                    if at + 1 + flag.len_utf8() == arg.len() {
                        let value = rest
                            .next()
                            .ok_or_else(|| format!("ssh's -{flag} needs a value"))?;
                        line.options.push(value.clone());
                    }
                    break;
                }
            }
        }
        if destination.is_some() {
            break;
        }
        let Some(host) = pending.take().or_else(|| rest.next()) else {
            return Err("name the host: lanyard ssh [SSH OPTIONS] DESTINATION [COMMAND...]".into());
        };
        destination = Some(host.clone());
        if terminated {
            break;
        }
    }
    line.destination = destination.unwrap_or_default();
    line.command = pending.into_iter().chain(rest).cloned().collect();
    if line.no_command && !line.command.is_empty() {
        return Err("ssh's -N runs no remote command, and one was given".into());
    }
    Ok(line)
}

/// The host a destination names, as approvals name it: `alice@build-box` and
/// `ssh://alice@build-box:2222` are `build-box` and `build-box:2222`.
fn host_of(destination: &str) -> &str {
    let bare = destination.strip_prefix("ssh://").unwrap_or(destination);
    bare.rsplit_once('@').map_or(bare, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn ssh_arguments_split_as_ssh_reads_them() {
        let line = split(&words("-p 2222 -vv -oBatchMode=yes build-box make test")).unwrap();
        assert_eq!(line.options, words("-p 2222 -vv -oBatchMode=yes"));
        assert_eq!(line.destination, "build-box");
        assert_eq!(line.command, words("make test"));
        // Options after the destination, up to the command; `--` ends them.
        let line = split(&words("alice@box -i key -tt -- -weird command")).unwrap();
        assert_eq!(line.options, words("-i key -tt"));
        assert_eq!(
            (line.destination.as_str(), line.tty_set),
            ("alice@box", true)
        );
        assert_eq!(line.command, words("-weird command"));
        let line = split(&words("-- -p")).unwrap();
        assert_eq!((line.destination.as_str(), line.command.len()), ("-p", 0));
        // A value glued to its flag, and a flag cluster ending in one.
        let line = split(&words("-Fcfg -4vp 22 box")).unwrap();
        assert_eq!(line.options, words("-Fcfg -4vp 22"));
        assert_eq!(line.destination, "box");
        assert!(split(&words("-N box")).unwrap().no_command);
    }

    #[test]
    fn what_lanyard_ssh_cannot_honour_is_refused_with_the_reason() {
        for (args, says) in [
            ("-f box", "background"),
            ("-4f box", "background"),
            ("box -W host:22", "standard input"),
            ("-p", "needs a value"),
            ("-v", "name the host"),
            ("-N box uptime", "-N runs no remote command"),
        ] {
            let err = split(&words(args)).unwrap_err();
            assert!(err.contains(says), "{args}: {err}");
        }
    }

    #[test]
    fn approvals_name_the_host_without_the_user() {
        assert_eq!(host_of("build-box"), "build-box");
        assert_eq!(host_of("alice@build-box"), "build-box");
        assert_eq!(host_of("ssh://alice@build-box:2222"), "build-box:2222");
    }

    #[test]
    fn the_remote_command_is_one_word_whatever_it_holds() {
        let remote = Remote {
            socket: "/tmp/lanyard-x.sock".into(),
            oidc_socket: "/tmp/lanyard-x.oidc.sock".into(),
        };
        let wrapped = remote.wrap(&words("echo it's | wc"));
        assert!(wrapped.starts_with("sh -c 'export LANYARD_SOCK=/tmp/lanyard-x.sock "));
        assert!(
            wrapped.ends_with(r" lanyard-ssh 'echo it'\''s | wc'"),
            "{wrapped}"
        );
        let login = remote.wrap(&[]);
        assert!(login.ends_with("' lanyard-ssh"), "{login}");
    }
}
