//! `cargo xtask test`: what CI runs. Installs what is missing, checks formatting and
//! lints, then runs every test inside a private Secret Service; a whole run (no test
//! filter) then builds the desktop app's .deb and checks what it holds.

use std::process::Command;

pub fn run(extra: &[String]) -> anyhow::Result<()> {
    super::deps::run()?;
    super::run(super::cargo().args(["fmt", "--all", "--check"]))?;
    super::run(super::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Build first, outside the keyring session, so compile time does not count against it.
    super::run(super::cargo().args(["test", "--workspace", "--no-run"]))?;
    // The desktop tests drive the app's binary, which `cargo test` does not build.
    super::run(super::cargo().args(["build", "-p", "lanyard-desktop"]))?;
    let xtask = std::env::current_exe()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let extra: Vec<&String> = extra.iter().skip_while(|a| *a == "--").collect();
    super::run(
        Command::new("dbus-run-session")
            .arg("--")
            .arg(xtask)
            .args(["keyring-session", "--", &cargo, "test", "--workspace"])
            .args(&extra)
            .current_dir(super::root()),
    )?;
    // The whole run (CI's) also builds and checks the desktop app's .deb.
    if extra.is_empty() {
        super::bundle::run(&[])?;
    }
    Ok(())
}
