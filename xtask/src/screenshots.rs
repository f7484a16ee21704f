//! `cargo xtask screenshots`: a PNG of every screen of the desktop app, in docs/screenshots.
//!
//! Runs the desktop app's WebDriver walk-through (tests/desktop.rs) and the kiosk screen's
//! (tests/kiosk.rs) with `LANYARD_SCREENSHOTS` set: the same steps the tests assert, saved
//! as they pass.

pub fn run() -> anyhow::Result<()> {
    super::deps::run()?;
    super::run(super::cargo().args(["build", "-p", "lanyard-desktop"]))?;
    super::run(super::cargo().args(["test", "--test", "integration", "--no-run"]))?;
    let dir = super::root().join("docs/screenshots");
    super::run(
        super::cargo_in_keyring_session(&[
            "test",
            "--test",
            "integration",
            "--",
            "desktop::",
            "kiosk::the_kiosk_screen",
        ])?
        .env("LANYARD_SCREENSHOTS", &dir),
    )?;
    eprintln!("xtask: screenshots in {}", dir.display());
    Ok(())
}
