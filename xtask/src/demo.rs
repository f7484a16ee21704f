//! `cargo xtask demo`: the bundled demo provider, and a sign-in to it in your browser.
//!
//! Starts tests/idp/server.mjs (node-oidc-provider) on 127.0.0.1, writes an accounts file
//! for it under target/demo, and runs `lanyard login demo` and `lanyard whoami demo`
//! inside a private keychain session, so the demo leaves nothing in your own keychain.
//! Sign in with any login and password (try `alice`). `--headless` lets the test
//! browser sign in for you.

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
    super::run(super::cargo().args(["build", "--bin", "lanyard"]))?;
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
    let script = format!(
        "{l} login demo && echo && {l} whoami demo && echo && {l} status",
        l = shell_quote(&lanyard.display().to_string())
    );
    let xtask = std::env::current_exe()?;
    let mut session = Command::new("dbus-run-session");
    session
        .arg("--")
        .arg(xtask)
        .args(["keyring-session", "--", "sh", "-c", &script])
        .env("LANYARD_CONFIG", &config)
        .env("XDG_DATA_HOME", dir.join("data"));
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
