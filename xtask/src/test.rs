//! `cargo xtask test`: what CI runs. Installs what is missing, checks formatting and
//! lints, then runs every test inside a private Secret Service; a whole run (no test
//! filter) then builds the desktop app's .deb and checks what it holds.

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
    // The API documentation builds without a warning (the crate denies missing docs on
    // its public API; a broken link is a warning).
    super::run(
        super::cargo()
            .args(["doc", "--no-deps", "-p", "lanyard"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // Build first, outside the keyring session, so compile time does not count against it.
    super::run(super::cargo().args(["test", "--workspace", "--no-run"]))?;
    // The desktop tests drive the app's binary, which `cargo test` does not build.
    // So do the tests of the example app that uses tauri-plugin-lanyard.
    super::run(super::cargo().args(["build", "-p", "lanyard-desktop", "-p", "tauri-signin"]))?;
    // The Windows lane: the library's unit tests under Wine, then lanyard.exe and its test
    // programs, which the end-to-end tests (tests/windows.rs) run under Wine.
    super::windows::toolchain()?;
    super::windows::unit()?;
    let windows = super::windows::lane()?;
    // The desktop app and the plugin's example app for Windows, and the installer
    // tests/windows.rs installs under Wine.
    super::windows::desktop()?;
    let installer = super::windows::installer(&windows, &windows.join("bundle"))?;
    // macOS, as far as this machine allows: a type-check.
    super::macos::check()?;
    let extra: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .skip_while(|a| *a == "--")
        .collect();
    super::windows::quiet_prefix();
    super::run(
        super::cargo_in_keyring_session(&[&["test", "--workspace"], extra.as_slice()].concat())?
            .env("LANYARD_WINDOWS_BIN", &windows)
            .env("LANYARD_WINDOWS_INSTALLER", &installer)
            .env("WINEPREFIX", super::windows::wine_prefix()),
    )?;
    // The whole run (CI's) also builds and checks the desktop app's .deb.
    // (The Windows installer the tests installed is the same script over the lane's
    // debug builds; `cargo xtask bundle` makes it from release builds.)
    if extra.is_empty() {
        super::bundle::run(&["deb".to_owned()])?;
    }
    Ok(())
}
