//! Who is asking: the program behind a broker connection, as the policy names it.
//!
//! A connection's peer is a process with a user and an executable. Often that process is
//! the `lanyard` command line itself, run by the real caller: kubectl's exec plugin, git's
//! credential helper, a script's `lanyard token`. Naming the CLI would let one "Always
//! allow" for `lanyard` through for every program on the desktop, so the broker names the
//! CLI's caller instead: its nearest ancestor that is neither a `lanyard` CLI nor the
//! non-interactive `sh -c` wrapper git runs helpers in.
//!
//! The CLI is recognised by its path, not its name: the broker's own executable when it
//! is the CLI (`lanyard agent`), the `lanyard` installed beside the broker's executable
//! (the desktop app's package ships both), the `lanyard` on the broker's `PATH` at start,
//! and any path an embedder names ([`Clis::with`]). A program merely named `lanyard`
//! elsewhere is an app like any other.
//!
//! Process ids can be reused. The process table comes from [`platform::peer_of`], in which
//! each process read is pinned (a pidfd, a process handle) and checked to be alive after
//! its executable was read, and each parent to still be the child's parent once pinned: a
//! client that exits mid-way is refused, never named after whatever took its pid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::platform::{self, CLI, Processes};

/// Who is asking, from the connection's peer credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub user: platform::User,
    /// The named app's process.
    pub pid: Option<i32>,
    /// The executable path that names the app in the policy.
    pub app: String,
    /// The `lanyard` command line the app asked through, when it did.
    pub through: Option<String>,
    /// The process at the other end of the connection (the CLI, when it was looked
    /// through), and its parent, named only on a host's forwarded sockets, which check
    /// it (`forward`).
    pub process: Option<i32>,
    pub parent: Option<i32>,
    /// A remote host's, through the sockets `lanyard ssh` forwards: it may ask only for
    /// tokens and identity (`server::allowed_from_host`).
    pub remote: bool,
}

/// The `lanyard` command lines this broker recognises, by canonical path.
#[derive(Debug, Clone, Default)]
pub struct Clis(Arc<Vec<PathBuf>>);

impl Clis {
    /// The CLIs of this installation: the running executable if it is the CLI, the one
    /// beside it, and the one on `PATH`.
    pub fn detect() -> Clis {
        let mut paths = Vec::new();
        if let Ok(exe) = std::env::current_exe() {
            if exe.file_name().is_some_and(|n| n == CLI) {
                paths.push(exe.clone());
            }
            paths.push(exe.with_file_name(CLI));
        }
        if let Some(path) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&path).map(|dir| dir.join(CLI)));
        }
        Clis::default().with(paths)
    }

    /// These too (an embedder's own copy of the CLI). Paths that do not exist are skipped.
    pub fn with(self, paths: impl IntoIterator<Item = PathBuf>) -> Clis {
        let mut all = (*self.0).clone();
        for path in paths {
            if let Ok(path) = std::fs::canonicalize(&path)
                && path.is_file()
            {
                let path = platform::as_named(path);
                if !all.contains(&path) {
                    all.push(path);
                }
            }
        }
        Clis(Arc::new(all))
    }

    /// Whether `exe`, as the OS names a process's executable, is one of these.
    pub fn contains(&self, exe: &Path) -> bool {
        self.0.iter().any(|p| platform::same_path(p, exe))
    }
}

/// How far up the walk goes: a CLI run by a CLI run by a shell wrapper is already deep.
const MAX_DEPTH: usize = 8;

/// The process that asked through `pid` (whose executable is `exe`): `pid` itself, or for
/// a `lanyard` CLI its nearest ancestor that is neither a CLI nor an `sh -c` wrapper.
/// Returns that process and, if it was looked through, the CLI's path.
pub fn caller(
    processes: &dyn Processes,
    clis: &Clis,
    pid: i32,
    exe: PathBuf,
) -> Result<(i32, PathBuf, Option<PathBuf>), String> {
    if !clis.contains(&exe) {
        return Ok((pid, exe, None));
    }
    let through = exe;
    let mut current = pid;
    for _ in 0..MAX_DEPTH {
        let parent = processes
            .parent(current)
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("the caller of process {current} is gone"))?;
        let exe = processes
            .exe(parent)
            .ok_or_else(|| format!("cannot read the executable of process {parent}"))?;
        if clis.contains(&exe) || is_sh_c(&exe, &processes.args(parent)) {
            current = parent;
            continue;
        }
        return Ok((parent, exe, Some(through)));
    }
    Err("the chain of processes that asked is too deep to name".into())
}

/// A non-interactive shell that runs one command line (`sh -c '…'`), as git runs a
/// credential helper: a wrapper, not an app.
fn is_sh_c(exe: &Path, args: &[String]) -> bool {
    const SHELLS: &[&str] = &["sh", "dash", "bash", "ash", "ksh", "mksh", "zsh"];
    let shell = exe
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| {
            if cfg!(windows) {
                n.trim_end_matches(".exe")
            } else {
                n
            }
        })
        .is_some_and(|n| SHELLS.contains(&n));
    shell && args.get(1).is_some_and(|a| a == "-c")
}

/// Names the peer of an accepted connection.
pub fn identify(
    stream: &platform::Connection,
    clis: &Clis,
    with_parent: bool,
) -> std::io::Result<Peer> {
    let process = platform::peer_of(stream)?;
    let (Some(pid), Some(exe)) = (process.pid, process.exe) else {
        return Ok(Peer {
            user: process.user,
            pid: process.pid,
            app: "unknown".into(),
            through: None,
            process: process.pid,
            parent: None,
            remote: false,
        });
    };
    let parent = with_parent.then(|| process.processes.parent(pid)).flatten();
    let (app_pid, app, through) = caller(&*process.processes, clis, pid, exe)
        .map_err(|why| std::io::Error::other(format!("client pid {pid}: {why}")))?;
    Ok(Peer {
        user: process.user,
        pid: Some(app_pid),
        app: app.display().to_string(),
        through: through.map(|p| p.display().to_string()),
        process: Some(pid),
        parent,
        remote: false,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A process table: pid → (parent, executable, arguments).
    struct Table(HashMap<i32, (i32, &'static str, Vec<&'static str>)>);

    impl Processes for Table {
        fn exe(&self, pid: i32) -> Option<PathBuf> {
            self.0.get(&pid).map(|(_, exe, _)| PathBuf::from(exe))
        }
        fn parent(&self, pid: i32) -> Option<i32> {
            self.0.get(&pid).map(|(parent, _, _)| *parent)
        }
        fn args(&self, pid: i32) -> Vec<String> {
            self.0
                .get(&pid)
                .map(|(_, _, args)| args.iter().map(|a| a.to_string()).collect())
                .unwrap_or_default()
        }
    }

    fn clis() -> Clis {
        Clis(Arc::new(vec![
            PathBuf::from("/usr/bin/lanyard"),
            PathBuf::from("/home/a/.cargo/bin/lanyard"),
        ]))
    }

    fn named(
        table: &[(i32, i32, &'static str, &[&'static str])],
        pid: i32,
    ) -> Result<(i32, String, Option<String>), String> {
        let table = Table(
            table
                .iter()
                .map(|(pid, parent, exe, args)| (*pid, (*parent, *exe, args.to_vec())))
                .collect(),
        );
        let exe = table.exe(pid).unwrap();
        caller(&table, &clis(), pid, exe).map(|(pid, exe, through)| {
            (
                pid,
                exe.display().to_string(),
                through.map(|p| p.display().to_string()),
            )
        })
    }

    #[test]
    fn the_cli_is_named_by_its_caller() {
        let through = Some("/usr/bin/lanyard".to_owned());
        // kubectl runs the exec plugin directly.
        let kubectl = [
            (10, 1, "/usr/bin/kubectl", &["kubectl", "get", "pods"][..]),
            (
                11,
                10,
                "/usr/bin/lanyard",
                &["lanyard", "kubectl-credential", "work"],
            ),
        ];
        assert_eq!(
            named(&kubectl, 11),
            Ok((10, "/usr/bin/kubectl".into(), through.clone()))
        );
        // git runs `!lanyard …` helpers through `sh -c`: looked through.
        let git = [
            (20, 1, "/usr/bin/git", &["git", "push"][..]),
            (
                21,
                20,
                "/usr/bin/dash",
                &[
                    "/bin/sh",
                    "-c",
                    "lanyard git-credential \"$@\"",
                    "lanyard git-credential",
                    "get",
                ],
            ),
            (
                22,
                21,
                "/usr/bin/lanyard",
                &["lanyard", "git-credential", "get"],
            ),
        ];
        assert_eq!(
            named(&git, 22),
            Ok((20, "/usr/bin/git".into(), through.clone()))
        );
        // An interactive shell is the person at a terminal: it is the app.
        let terminal = [
            (30, 1, "/usr/bin/bash", &["-bash"][..]),
            (31, 30, "/usr/bin/lanyard", &["lanyard", "token", "work"]),
        ];
        assert_eq!(
            named(&terminal, 31),
            Ok((30, "/usr/bin/bash".into(), through.clone()))
        );
        // A script run by a shell (not `-c`) is named by that shell, as before.
        let script = [
            (40, 1, "/usr/bin/dash", &["/bin/sh", "./deploy.sh"][..]),
            (
                41,
                40,
                "/home/a/.cargo/bin/lanyard",
                &["lanyard", "token", "work"],
            ),
        ];
        assert_eq!(
            named(&script, 41),
            Ok((
                40,
                "/usr/bin/dash".into(),
                Some("/home/a/.cargo/bin/lanyard".into())
            ))
        );
        // A CLI run by a CLI: both looked through.
        let nested = [
            (50, 1, "/opt/tool", &["tool"][..]),
            (51, 50, "/usr/bin/lanyard", &["lanyard", "x"]),
            (
                52,
                51,
                "/home/a/.cargo/bin/lanyard",
                &["lanyard", "token", "work"],
            ),
        ];
        assert_eq!(named(&nested, 52).unwrap().1, "/opt/tool");
    }

    #[test]
    fn anything_else_is_named_by_itself() {
        // Not the CLI: the program itself, whoever ran it.
        let direct = [
            (10, 1, "/usr/bin/git", &["git"][..]),
            (11, 10, "/usr/bin/python3", &["python3", "client.py"]),
        ];
        assert_eq!(
            named(&direct, 11),
            Ok((11, "/usr/bin/python3".into(), None))
        );
        // A program named `lanyard` that is not one of the CLIs is an app like any other:
        // git running it does not make it git.
        let impostor = [
            (20, 1, "/usr/bin/git", &["git"][..]),
            (
                21,
                20,
                "/tmp/x/lanyard",
                &["lanyard", "git-credential", "get"],
            ),
        ];
        assert_eq!(
            named(&impostor, 21),
            Ok((21, "/tmp/x/lanyard".into(), None))
        );
        // `sh -c` is looked through only above a CLI.
        let shell = [(30, 1, "/usr/bin/dash", &["sh", "-c", "curl …"][..])];
        assert_eq!(named(&shell, 30).unwrap().1, "/usr/bin/dash");
    }

    #[test]
    fn a_chain_that_cannot_be_read_is_refused() {
        // The caller exited: the CLI was adopted by init, which is not named instead.
        let orphan = [(11, 0, "/usr/bin/lanyard", &["lanyard", "token", "work"][..])];
        assert!(named(&orphan, 11).unwrap_err().contains("is gone"));
        let unreadable = [(11, 99, "/usr/bin/lanyard", &["lanyard"][..])];
        assert!(named(&unreadable, 11).unwrap_err().contains("cannot read"));
        let deep: Vec<_> = (1..=20)
            .map(|pid| (pid, pid - 1, "/usr/bin/lanyard", &["lanyard"][..]))
            .collect();
        assert!(named(&deep, 20).unwrap_err().contains("too deep"));
    }
}
