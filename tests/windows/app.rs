//! `app.exe`, the desktop app without its window (Wine has no WebView2), run in a Wine
//! prefix and driven as its window would drive it: commands on its stdin, its answers and
//! the window's events read back as they come.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use super::{Prefix, Wine};

/// `app.exe` running in a prefix.
pub(super) struct App {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Lines read since the last command but not yet picked. The app prints its events
    /// from their own task, so an event a command causes may come before the command's
    /// answer: waiting for the answer must not lose it.
    unread: Vec<Value>,
    /// The broker's named pipe.
    pub(super) pipe: String,
}

/// How long anything in the app may take: a bound on a hung run, not a way to sync.
const BOUND: Duration = Duration::from_secs(120);

impl App {
    /// Starts the app in `prefix` with `vars` added to its environment; returns once its
    /// broker listens.
    pub(super) async fn start(prefix: &Prefix, vars: &[(&str, String)]) -> App {
        let mut cmd = prefix.command(&Wine::new().bin.join("app.exe"), &[]);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            // Its log goes with the test's output.
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut app = App {
            child,
            stdin,
            lines,
            unread: Vec::new(),
            pipe: String::new(),
        };
        let ready = app
            .next(|l| l.get("ready").is_some() || l.get("failed").is_some())
            .await;
        app.pipe = ready["ready"]
            .as_str()
            .unwrap_or_else(|| panic!("the app did not start: {ready}"))
            .to_owned();
        app
    }

    /// Sends `command`; what the app said before it is old news.
    pub(super) async fn send(&mut self, command: &str) {
        self.unread.clear();
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The first line since the last command that `pick` accepts, waiting for it if it
    /// has not come yet; lines passed over stay for the next call.
    pub(super) async fn next(&mut self, pick: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.unread.iter().position(&pick) {
            return self.unread.remove(i);
        }
        let wait = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("app.exe said {line:?}: {e}"));
                if pick(&value) {
                    return value;
                }
                self.unread.push(value);
            }
            panic!("app.exe exited")
        };
        tokio::time::timeout(BOUND, wait)
            .await
            .expect("app.exe never said it")
    }

    /// `COMMAND`, and its answer: `done`'s value, or a panic with the failure.
    pub(super) async fn call(&mut self, command: &str) -> Value {
        self.send(command).await;
        let answer = self
            .next(|l| l.get("done").is_some() || l.get("failed").is_some())
            .await;
        match answer.get("done") {
            Some(done) => done.clone(),
            None => panic!("{command}: {answer}"),
        }
    }

    /// Signs in to `account` (the browser does its part) as Alice.
    pub(super) async fn sign_in(&mut self, account: &str) {
        let identity = self.call(&format!("sign_in {account}")).await;
        assert_eq!(identity["name"], "Alice Example", "{identity}");
    }

    /// The next window event of `kind` that `pick` accepts.
    pub(super) async fn event(&mut self, kind: &str, pick: impl Fn(&Value) -> bool) -> Value {
        let event = self
            .next(|l| l["event"]["type"] == kind && pick(&l["event"]))
            .await;
        event["event"].clone()
    }

    /// Quits as the app quits (a seat session ends first); the program then exits.
    pub(super) async fn quit(mut self) {
        self.send("quit").await;
        let quit = self.next(|l| l.get("quit").is_some()).await;
        assert_eq!(quit["quit"], true);
        let status = tokio::time::timeout(BOUND, self.child.wait())
            .await
            .expect("app.exe exits after quitting")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}
