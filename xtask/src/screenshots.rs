//! `cargo xtask screenshots`: a PNG of every screen of the desktop app, in docs/screenshots.
//!
//! Runs the desktop app's WebDriver walk-through (tests/desktop.rs) with
//! `LANYARD_SCREENSHOTS` set: the same steps the tests assert, saved as they pass.

use std::process::Command;

pub fn run() -> anyhow::Result<()> {
    super::deps::run()?;
    super::run(super::cargo().args(["build", "-p", "lanyard-desktop"]))?;
    super::run(super::cargo().args(["test", "--test", "integration", "--no-run"]))?;
    let dir = super::root().join("docs/screenshots");
    let xtask = std::env::current_exe()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    super::run(
        Command::new("dbus-run-session")
            .arg("--")
            .arg(xtask)
            .args([
                "keyring-session",
                "--",
                &cargo,
                "test",
                "--test",
                "integration",
                "desktop::",
            ])
            .env("LANYARD_SCREENSHOTS", &dir)
            .current_dir(super::root()),
    )?;
    eprintln!("xtask: screenshots in {}", dir.display());
    Ok(())
}
