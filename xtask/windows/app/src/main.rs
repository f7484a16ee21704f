//! `app.exe`: the desktop app without its window, for the Windows lane's tests. Wine has
//! no WebView2, so the app itself cannot run there; this runs what the window drives, the
//! library's `desktop::Desktop`, started exactly as `lanyard-desktop.exe` starts it: a
//! kiosk seat when there is a kiosk file (`%ProgramData%\Lanyard\kiosk.toml`) or policy
//! (`HKLM\SOFTWARE\Policies\Lanyard`), else the user's accounts; the broker on its named
//! pipe either way. It does on command what the window's buttons do.
//!
//! Commands, one per line on stdin:
//!
//! - `sign_in ACCOUNT`: "Sign in" (on a seat, the big "Sign in with …" button);
//! - `answer ID allow|once|deny`: the answer to an app's request for a token;
//! - `sign_out ACCOUNT`: "Sign out";
//! - `end_session`: a seat's End session button;
//! - `quit`: quitting the app (a seat session ends first); then it exits.
//!
//! On stdout, one JSON line per answer (`{"done": …}` or `{"failed": …}`) and one per event
//! the window would get (`{"event": …}`), starting with `{"ready": PIPE}`.

use std::io::{BufRead as _, Write as _};

use lanyard::desktop::{Desktop, Options};
use lanyard::kiosk::Trigger;
use serde_json::{Value, json};

fn say(line: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let desktop = match Desktop::start(Options::default()).await {
        Ok(desktop) => desktop,
        Err(failure) => {
            say(json!({ "failed": failure }));
            std::process::exit(1);
        }
    };
    let mut events = desktop.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            say(json!({ "event": event }));
        }
    });
    say(json!({ "ready": desktop.socket() }));

    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let desktop = desktop.clone();
        match words.as_slice() {
            ["sign_in", account] => {
                let account = (*account).to_owned();
                // In its own task, as the window's call is: the seat may end meanwhile.
                tokio::spawn(async move {
                    say(match desktop.sign_in(&account).await {
                        Ok(identity) => json!({ "done": identity }),
                        Err(failure) => json!({ "failed": failure }),
                    });
                });
            }
            ["answer", id, decision] => say(match id.parse() {
                Ok(id) => match desktop.answer(id, decision) {
                    Ok(answered) => json!({ "done": answered }),
                    Err(failure) => json!({ "failed": failure }),
                },
                Err(_) => {
                    json!({ "failed": { "message": format!("`{id}` is not a prompt's id") } })
                }
            }),
            ["sign_out", account] => say(match desktop.sign_out(account).await {
                Ok(warnings) => json!({ "done": warnings }),
                Err(failure) => json!({ "failed": failure }),
            }),
            ["end_session"] => say(match desktop.end_session(Trigger::Button).await {
                Ok(active) => json!({ "done": active }),
                Err(failure) => json!({ "failed": failure }),
            }),
            ["quit"] => break,
            _ => say(json!({ "failed": { "message": format!("unknown command `{line}`") } })),
        }
    }
    // Quitting, or stdin closed (the test is gone): as the app quits, a seat session ends
    // first.
    let ended = match desktop.seat() {
        Some(_) => desktop.end_session(Trigger::Quit).await.is_ok(),
        None => true,
    };
    say(json!({ "quit": ended }));
}
