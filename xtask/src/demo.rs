//! `cargo xtask demo`: the desktop app, wired to the bundled demo provider.
//!
//! Starts tests/idp/server.mjs (node-oidc-provider) on 127.0.0.1, writes an accounts file
//! for it under target/demo, and opens the desktop app inside a private keychain session
//! with its own broker socket, so the demo leaves nothing in your own keychain and does
//! not disturb an agent you run. Sign in with any login and password (try `alice`).
//! `--headless` runs the command line instead (`lanyard login demo`, `whoami`, `status`),
//! with the test browser signing in for you: for machines without a display.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let headless = args.iter().any(|a| a == "--headless");
    super::deps::npm()?;
    if super::deps::which("gnome-keyring-daemon").is_none()
        || (headless && super::deps::which("chromium").is_none())
    {
        super::deps::apt()?;
    }
    if !headless
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        bail!(
            "the desktop app needs a display (DISPLAY is unset); try `cargo xtask demo --headless`"
        );
    }
    super::run(super::cargo().args(["build", "--bin", "lanyard"]))?;
    if !headless {
        super::run(super::cargo().args(["build", "-p", "lanyard-desktop"]))?;
    }
    let root = super::root();
    let mut idp = Command::new("node")
        .arg(root.join("tests/idp/server.mjs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the demo provider (is node installed? run `cargo xtask deps`)")?;
    let mut line = String::new();
    let mut stdout = BufReader::new(idp.stdout.take().expect("piped"));
    stdout.read_line(&mut line)?;
    // Keep draining: a provider whose stdout is closed dies on its next write.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let issuer = line
        .split("\"issuer\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(str::to_owned);
    let Some(issuer) = issuer else {
        let _ = idp.kill();
        bail!("the demo provider did not start: {line}");
    };
    eprintln!("xtask: demo provider at {issuer} (sign in as any user, e.g. alice)");
    let dir = root.join("target/demo");
    // The demo's keychain lives only as long as the demo: so must what it signed in.
    let _ = std::fs::remove_dir_all(dir.join("data"));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by `cargo xtask demo`.\n[accounts.demo]\nissuer = \"{issuer}\"\nclient_id = \"lanyard-public\"\n\
             scopes = \"openid profile email groups offline_access\"\n"
        ),
    )?;
    let lanyard = root.join("target/debug/lanyard");
    let script = if headless {
        format!(
            "{l} login demo && echo && {l} whoami demo && echo && {l} status",
            l = shell_quote(&lanyard.display().to_string())
        )
    } else {
        eprintln!(
            "xtask: opening Lanyard; in another terminal, ask it for a token:\n  \
             LANYARD_SOCK={sock} {l} token demo",
            sock = dir.join("run/agent.sock").display(),
            l = lanyard.display()
        );
        shell_quote(
            &root
                .join("target/debug/lanyard-desktop")
                .display()
                .to_string(),
        )
    };
    let xtask = std::env::current_exe()?;
    let mut session = Command::new("dbus-run-session");
    session
        .arg("--")
        .arg(xtask)
        .args(["keyring-session", "--", "sh", "-c", &script])
        .env("LANYARD_CONFIG", &config)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("LANYARD_SOCK", dir.join("run/agent.sock"));
    if headless {
        session.env("BROWSER", root.join("tests/idp/browser.mjs"));
    }
    let result = super::run(&mut session);
    let _ = idp.kill();
    let _ = idp.wait();
    result
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
