//! Opening a URL in the user's browser (RFC 8252: the system browser, never an embedded one).
//!
//! `$BROWSER` wins when set, read the way xdg-open and git read it: a `:`-separated list of
//! commands tried in order, each split like a shell word list, with `%s` replaced by the
//! URL or else the URL appended (on Windows the list is `;`-separated, as paths hold `:`).
//! Without it, the platform's opener (`xdg-open`, `open`, `ShellExecuteW`). The browser
//! runs detached with its standard streams closed: its output must not mix with
//! Lanyard's, and Lanyard never waits for it to exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::config::SeatBrowser;
use crate::platform;

/// Where sign-in and sign-out pages open.
pub trait Opener: Send + Sync {
    fn open(&self, url: &str) -> Result<(), Error>;

    /// Opens `url`, and says later if the browser's command then failed (exited with an
    /// error: a `$BROWSER` that is not a browser, an opener with no display to open on).
    /// `None` where there is nothing to watch.
    fn launch(&self, url: &str) -> Result<Option<Launched>, Error> {
        self.open(url).map(|()| None)
    }
}

/// A browser command that was started: [`Launched::failed`] resolves if it exits with a
/// failure, and never if it succeeds or keeps running.
pub struct Launched(tokio::sync::oneshot::Receiver<Error>);

impl Launched {
    /// Watches `child`, the command `tried` (reaped when it exits).
    fn watch(mut child: std::process::Child, tried: String) -> Launched {
        let (tell, told) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait()
                && !status.success()
            {
                let _ = tell.send(Error {
                    tried: format!("{tried}: {status}"),
                });
            }
        });
        Launched(told)
    }

    /// Why the browser's command failed, once it has; pending while it has not.
    pub async fn failed(&mut self) -> Error {
        match (&mut self.0).await {
            Ok(error) => error,
            // It succeeded, or runs on: nothing to say, ever.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The person's own browser: [`open`].
pub struct System;

impl Opener for System {
    fn open(&self, url: &str) -> Result<(), Error> {
        launch(url).map(drop)
    }

    fn launch(&self, url: &str) -> Result<Option<Launched>, Error> {
        launch(url)
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open a browser ({tried}); open the link yourself, or set BROWSER to your browser's command"
)]
pub struct Error {
    tried: String,
}

impl Error {
    pub fn new(tried: String) -> Error {
        Error { tried }
    }
}

/// Why a browser started here could not come back to this machine's 127.0.0.1, if it
/// could not: an ssh session (the browser would open on no screen of the person's), or no
/// display on Linux. `$BROWSER` set says otherwise: the person told how to open one.
pub fn unreachable_here() -> Option<&'static str> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("BROWSER") {
        return None;
    }
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        return Some("This is an ssh session");
    }
    if cfg!(target_os = "linux") && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Some("There is no display here");
    }
    None
}

/// Opens `url` in the person's browser ([`Opener`] for [`System`]).
pub fn open(url: &str) -> Result<(), Error> {
    launch(url).map(drop)
}

/// Opens `url` in the person's browser, watching the command that does.
fn launch(url: &str) -> Result<Option<Launched>, Error> {
    let commands: Vec<String> = match std::env::var("BROWSER") {
        Ok(value) if !value.trim().is_empty() => value
            .split(platform::BROWSER_SEPARATOR)
            .map(str::to_owned)
            .collect(),
        _ => {
            return match platform::open_url(url) {
                Ok(child) => Ok(child.map(|c| Launched::watch(c, platform::OPENER.to_owned()))),
                Err(e) => Err(Error {
                    tried: format!("{}: {e}", platform::OPENER),
                }),
            };
        }
    };
    let mut tried = Vec::new();
    for command in commands {
        let Some(mut words) = platform::split_command(&command) else {
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
            // (The first command that starts is the browser, as for xdg-open; one that
            // then fails is told through the watch.)
            Ok(child) => return Ok(Some(Launched::watch(child, format!("`{}`", words[0])))),
            Err(e) => tried.push(format!("`{}`: {e}", words[0])),
        }
    }
    Err(Error {
        tried: tried.join("; "),
    })
}

/// A kiosk seat's browser: started by Lanyard with a profile directory made for one seat
/// session (Chromium `--user-data-dir` and `--incognito` or Edge's `--inprivate`, Firefox `-profile` and
/// `-private-window`), so the provider's cookies live there and nowhere else. [`Seat::close`]
/// stops the browser and deletes the profile.
pub struct Seat {
    kind: SeatBrowser,
    profile: PathBuf,
    children: Mutex<Vec<platform::Group>>,
}

impl Seat {
    /// Makes an empty profile directory (mode 0700) under the temporary directory.
    pub fn new(kind: SeatBrowser) -> std::io::Result<Seat> {
        let name = crate::secret::random(12)
            .map_err(|_| std::io::Error::other("no randomness for the profile's name"))?;
        let profile = std::env::temp_dir().join(format!("lanyard-seat-{}", name.expose()));
        crate::platform::private_dir_builder().create(&profile)?;
        Ok(Seat {
            kind,
            profile,
            children: Mutex::new(Vec::new()),
        })
    }

    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// Stops every browser process this seat started and deletes the profile.
    pub fn close(&self) -> std::io::Result<()> {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(|e| e.into_inner()));
        for child in children {
            // Five seconds to quit (a browser saves its state), then it is killed.
            child.stop(std::time::Duration::from_secs(5));
        }
        match std::fs::remove_dir_all(&self.profile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Chromium's private-window switch.
const PRIVATE: &str = "--incognito";

fn is_edge(command: &str) -> bool {
    let file = Path::new(command)
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    file.starts_with("msedge") || file.starts_with("microsoft-edge")
}

impl Drop for Seat {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Opener for Seat {
    fn open(&self, url: &str) -> Result<(), Error> {
        let profile = self.profile.display().to_string();
        let (commands, args): (&[String], Vec<String>) = match &self.kind {
            SeatBrowser::System => return open(url),
            SeatBrowser::Chromium { commands } => (
                commands,
                vec![
                    format!("--user-data-dir={profile}"),
                    PRIVATE.into(),
                    "--no-first-run".into(),
                    "--no-default-browser-check".into(),
                    url.into(),
                ],
            ),
            // No `-no-remote`: a second page for the seat (the provider's logout) must reach
            // the Firefox already running on this profile. Firefox's remoting is per profile,
            // so the player's other Firefox windows, if any, are never involved.
            SeatBrowser::Firefox { commands } => (
                commands,
                vec![
                    "-profile".into(),
                    profile,
                    "-private-window".into(),
                    url.into(),
                ],
            ),
        };
        let mut tried = Vec::new();
        for command in commands {
            let mut cmd = Command::new(command);
            let args = args.iter().map(|a| match a.as_str() {
                // Edge spells Chromium's private mode its own way.
                PRIVATE if is_edge(command) => "--inprivate",
                other => other,
            });
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // Its own group: closing the seat stops the browser's helpers too.
            match platform::Group::spawn(&mut cmd) {
                Ok(child) => {
                    self.children
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(child);
                    return Ok(());
                }
                Err(e) => tried.push(format!("`{command}`: {e}")),
            }
        }
        Err(Error {
            tried: tried.join("; "),
        })
    }
}

// Shell scripts stand in for the browsers: Unix only.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A seat's Chromium-family browser gets its own profile and private mode, in the
    /// spelling of the browser at hand: Edge's `--inprivate`, the others' `--incognito`.
    /// (A shell script named like each browser records what it was given.)
    #[test]
    fn seat_browsers_get_a_private_window_in_their_own_spelling() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        for (name, private) in [("msedge", "--inprivate"), ("chromium", "--incognito")] {
            let script = dir.path().join(name);
            let record = dir.path().join(format!("{name}.args"));
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{0}.tmp'\nmv '{0}.tmp' '{0}'\n",
                    record.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            let seat = Seat::new(SeatBrowser::Chromium {
                commands: vec![script.display().to_string()],
            })
            .unwrap();
            seat.open("https://id.example.com/authorize").unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let args = loop {
                if let Ok(args) = std::fs::read_to_string(&record) {
                    break args;
                }
                assert!(std::time::Instant::now() < deadline, "{name} never ran");
                std::thread::yield_now();
            };
            let args: Vec<&str> = args.lines().collect();
            let profile = format!("--user-data-dir={}", seat.profile().display());
            assert_eq!(
                args,
                [
                    profile.as_str(),
                    private,
                    "--no-first-run",
                    "--no-default-browser-check",
                    "https://id.example.com/authorize"
                ]
            );
            seat.close().unwrap();
            assert!(!seat.profile().exists());
        }
    }
}
