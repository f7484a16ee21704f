//! `cargo xtask test`: what CI runs. Installs what is missing, checks formatting and
//! lints, then runs every test inside a private Secret Service; a whole run (no test
//! filter) then packs the desktop app's .deb from the debug build and checks what it holds.

pub fn run(extra: &[String]) -> anyhow::Result<()> {
    super::deps::run()?;
    super::run(super::cargo().args(["fmt", "--all", "--check"]))?;
    // No room of the library imports another that imports it back.
    super::circles::check()?;
    super::run(super::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // An app that only signs in builds none of the command line's dependencies.
    super::lean::check()?;
    // The API documentation builds without a warning (the crate denies missing docs on
    // its public API; a broken link is a warning).
    super::run(
        super::cargo()
            .args(["doc", "--no-deps", "-p", "lanyard"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    // Build first, outside the keyring session, so compile time does not count against it.
    super::run(super::cargo().args(["test", "--workspace", "--no-run"]))?;
    // Every test docs/security.md cites for a finding exists.
    super::cited::check()?;
    // The desktop tests drive the app's binary, which `cargo test` does not build; so do
    // the tests of the example app that uses tauri-plugin-lanyard. `--tests` gives the
    // programs the test build's feature set, so no dependency is compiled twice.
    super::run(super::cargo().args(["build", "--workspace", "--bins", "--tests"]))?;
    // The Windows lane: the library's unit tests under Wine, then lanyard.exe, the desktop
    // app, the plugin's example app and the test programs, which the end-to-end tests
    // (tests/windows.rs) run under Wine, and the installer they install.
    super::windows::toolchain()?;
    super::windows::unit()?;
    let windows = super::windows::lane()?;
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
    // The whole run (CI's) also packs the desktop app's .deb and checks it. Both
    // installers are packed from the debug builds the tests ran: `cargo xtask bundle`
    // packs the same from release builds (a release build of the app is most of a cold
    // run's time on two cores, and adds nothing the packing checks).
    if extra.is_empty() {
        super::bundle::debug_deb()?;
    }
    Ok(())
}
