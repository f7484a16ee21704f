//! Opening a URL in the user's browser (RFC 8252: the system browser, never an embedded one).
//!
//! `$BROWSER` wins when set, read the way xdg-open and git read it: a `:`-separated list of
//! commands tried in order, each split like a shell word list, with `%s` replaced by the
//! URL or else the URL appended. Without it, the platform's opener (`xdg-open`, `open`,
//! `explorer`). The browser runs detached with its standard streams closed: its output
//! must not mix with Lanyard's, and Lanyard never waits for it to exit.

use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open a browser ({tried}); open the link yourself, or set BROWSER to your browser's command"
)]
pub struct Error {
    tried: String,
}

pub fn open(url: &str) -> Result<(), Error> {
    let commands: Vec<String> = match std::env::var("BROWSER") {
        Ok(value) if !value.trim().is_empty() => value.split(':').map(str::to_owned).collect(),
        _ => vec![platform_opener().to_owned()],
    };
    let mut tried = Vec::new();
    for command in commands {
        let Ok(mut words) = shell_words::split(&command) else {
            tried.push(format!("`{command}`: cannot parse"));
            continue;
        };
        if words.is_empty() {
            continue;
        }
        if words.iter().any(|w| w.contains("%s")) {
            words.iter_mut().for_each(|w| *w = w.replace("%s", url));
        } else {
            words.push(url.to_owned());
        }
        let spawned = Command::new(&words[0])
            .args(&words[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => {
                // Reap the child when it exits, so that a long-lived process keeps no zombie.
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            Err(e) => tried.push(format!("`{}`: {e}", words[0])),
        }
    }
    Err(Error {
        tried: tried.join("; "),
    })
}

fn platform_opener() -> &'static str {
    if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    }
}
