//! `cargo xtask …`: the project's set-up, test and demo tasks.
//!
//! - `cargo xtask test`  installs what is missing, then fmt, clippy and every test inside a
//!   private Secret Service (dbus-run-session + gnome-keyring).
//! - `cargo xtask demo`  opens the desktop app wired to the bundled demo provider.
//! - `cargo xtask screenshots`  drives the desktop app and saves a PNG of every screen.
//! - `cargo xtask bundle`  builds the desktop app's .deb (Tauri's bundler).
//! - `cargo xtask deps`  only installs what is missing (apt packages as root, npm packages).
//! - `cargo xtask bench` measures the agent beside oidc-agent (docs/benchmarks.md).
//! - `cargo xtask dist`  builds the shipping `lanyard` binary into target/dist.
//! - `cargo xtask fuzz`  fuzzes the agent's frame decoder (cargo-fuzz, libFuzzer).
//! - `cargo xtask windows`  the Windows toolchain; check, build and unit tests under Wine.
//! - `cargo xtask macos`    a type-check for aarch64-apple-darwin.
//! - `cargo xtask cited`    checks that every test docs/security.md cites exists.
//! - `cargo xtask circles`  checks that no rooms of src/ import each other in a circle.
//!
//! Everything a fresh Debian/Ubuntu machine needs is installed from here, so that the
//! README's two commands are the whole set-up.

mod bench;
mod bundle;
mod circles;
mod cited;
mod demo;
mod deps;
mod dist;
mod fuzz;
mod keyring;
mod lean;
mod macos;
mod screenshots;
mod test;
mod windows;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("demo") => demo::run(&args[1..]),
        Some("deps") if args.get(1).is_some_and(|a| a == "--list") => {
            deps::list();
            Ok(())
        }
        Some("deps") => deps::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("dist") => dist::run().map(drop),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("screenshots") => screenshots::run(),
        Some("cited") => cited::check(),
        Some("circles") => circles::check(),
        Some("lean") => lean::check(),
        Some("bundle") => bundle::run(&args[1..]),
        Some("windows") => windows::run(&args[1..]),
        Some("macos") => macos::run(&args[1..]),
        Some("keyring-session") => return keyring::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  test [-- CARGO TEST ARGS]  install what is missing, then fmt, clippy and all tests\n  \
                 demo [--headless]          the desktop app against the bundled demo provider\n  \
                 screenshots                a PNG of every screen of the desktop app (docs/screenshots)\n  \
                 bundle [deb,appimage]      the desktop app's installers, into target/release/bundle\n  \
                 deps [--list]              install what is missing (--list: what provides each program)\n  \
                 bench [agent|desktop]      measure the agent and the app (docs/benchmarks.md)\n  \
                 dist                       build the shipping `lanyard` binary into target/dist\n  \
                 fuzz [SECONDS]             fuzz the agent's frame decoder (default 60 s)\n  \
                 windows [check|build|unit|lane]  Lanyard for Windows, built here and run under Wine
                 macos [check]              a type-check of the library and CLI for macOS\n  \
                 cited                      every test docs/security.md cites exists\n  \
                 circles                    no import circle between the rooms of src/\n  \
                 lean                       the library for apps (no default features) leaves the CLI's dependencies out"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn root() -> PathBuf {
    // `cargo xtask` (cargo run) says where the checkout is at run time: a binary built by
    // another clone that shares the target directory must not act on that clone.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        // Only xtask's own: a test that runs xtask has the tested crate's.
        .filter(|dir| dir.file_name() == Some("xtask".as_ref()))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// `cargo`, as the one that runs us.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// `cargo ARGS` inside a private session bus with its own gnome-keyring: where the tests,
/// benches and screenshots run, so that nothing touches the developer's own keychain.
pub fn cargo_in_keyring_session(args: &[&str]) -> anyhow::Result<Command> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new("dbus-run-session");
    cmd.arg("--")
        .arg(std::env::current_exe()?)
        .args(["keyring-session", "--", &cargo])
        .args(args)
        .current_dir(root());
    Ok(cmd)
}

/// Runs a command to completion, failing with its name if it fails.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {}", shown.replace('"', ""));
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}
