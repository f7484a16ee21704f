//! `cargo xtask bundle [deb,nsis,appimage,…]`: the desktop app's installers (default: the
//! .deb and the Windows installer).
//!
//! Builds the `lanyard` command line in release mode, then runs the Tauri CLI (an exact
//! version from npm, installed into target/tools), which builds the app with its assets
//! embedded and writes target/release/bundle/: the .deb installs both, `lanyard-desktop`
//! and `lanyard`. AppImage bundling downloads linuxdeploy from GitHub, so it works only
//! where that is reachable.
//!
//! `nsis` is the Windows installer, `bundle/nsis/Lanyard_VERSION_x64-setup.exe`. Tauri's
//! own NSIS bundler downloads a plugin DLL from GitHub and checks its hash, so it cannot
//! run here; the installer is our script (`src-tauri/windows/installer.nsi`) run by
//! Debian's makensis over the Windows lane's release builds (`cargo xtask windows`).

use std::process::Command;

use anyhow::Context as _;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    super::deps::run()?;
    let tauri = tauri_cli()?;
    let bundles = args.first().map_or("deb,nsis", String::as_str);
    let target = target_dir();
    let out = target.join("release/bundle");
    if bundles.split(',').any(|b| b == "nsis") {
        let setup = super::windows::release_installer(&out.join("nsis"))?;
        eprintln!("xtask: {}", setup.display());
    }
    let bundles = bundles
        .split(',')
        .filter(|b| *b != "nsis")
        .collect::<Vec<_>>()
        .join(",");
    if bundles.is_empty() {
        return Ok(());
    }
    // The package carries the command line too (tauri.conf.json `bundle.linux.deb.files`).
    super::run(super::cargo().args(["build", "--release", "--bin", "lanyard"]))?;
    super::run(
        Command::new(tauri)
            .args(["build", "--bundles", &bundles, "--config"])
            .arg(cli_file(&target.join("release/lanyard")))
            .current_dir(super::root().join("src-tauri")),
    )?;
    eprintln!("xtask: bundles in {}", out.display());
    if bundles.split(',').any(|b| b == "deb") {
        check_deb(&out.join("deb"))?;
    }
    Ok(())
}

/// What `cargo xtask test` checks: the .deb packed from the debug builds the tests ran
/// (`tauri bundle --debug`, which builds nothing), in target/debug/bundle/deb.
pub fn debug_deb() -> anyhow::Result<()> {
    let tauri = tauri_cli()?;
    let debug = target_dir().join("debug");
    super::run(
        Command::new(tauri)
            .args(["bundle", "--debug", "--bundles", "deb", "--config"])
            .arg(cli_file(&debug.join("lanyard")))
            .current_dir(super::root().join("src-tauri")),
    )?;
    check_deb(&debug.join("bundle/deb"))
}

/// The configuration that puts the command line `lanyard` into the .deb. It is merged
/// over tauri.conf.json, whose relative path is right only for the default target
/// directory.
fn cli_file(lanyard: &std::path::Path) -> String {
    // (A path's Debug form is a JSON string for the paths cargo makes.)
    let lanyard = lanyard.display().to_string();
    format!(r#"{{"bundle":{{"linux":{{"deb":{{"files":{{"/usr/bin/lanyard":{lanyard:?}}}}}}}}}}}"#)
}

/// The target directory, wherever it is (`CARGO_TARGET_DIR`).
fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => super::root().join(dir),
        None => super::root().join("target"),
    }
}

/// The Tauri CLI, pinned; its prebuilt binary for this platform comes with it.
const TAURI_CLI: &str = "@tauri-apps/cli@2.12.5";

fn tauri_cli() -> anyhow::Result<std::path::PathBuf> {
    let prefix = super::root().join(super::deps::TOOLS).join("tauri-cli");
    let bin = prefix.join("node_modules/.bin/tauri");
    if !bin.exists() {
        super::run(
            Command::new("npm")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--no-package-lock",
                    "--prefix",
                ])
                .arg(&prefix)
                .arg(TAURI_CLI),
        )
        .context("installing the Tauri CLI")?;
    }
    Ok(bin)
}

/// The .deb holds both programs and a desktop entry that passes links (`%u`) to the app.
fn check_deb(dir: &std::path::Path) -> anyhow::Result<()> {
    let deb = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("no .deb was written")?;
    let listing = Command::new("dpkg-deb").arg("-c").arg(&deb).output()?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "usr/bin/lanyard-desktop",
        "usr/bin/lanyard",
        "usr/share/applications/Lanyard.desktop",
    ] {
        anyhow::ensure!(
            listing.lines().any(|l| l.ends_with(path)),
            "{} lacks {path}",
            deb.display()
        );
    }
    let entry = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xO usr/share/applications/Lanyard.desktop")
        .arg("sh")
        .arg(&deb)
        .output()?;
    let entry = String::from_utf8_lossy(&entry.stdout);
    anyhow::ensure!(
        entry.contains("%u") && entry.contains("x-scheme-handler/dev.lanyard"),
        "the desktop entry does not take links:\n{entry}"
    );
    eprintln!("xtask: checked {}", deb.display());
    Ok(())
}
