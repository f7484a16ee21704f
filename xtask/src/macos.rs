//! `cargo xtask macos`: a type-check of the library and CLI for `aarch64-apple-darwin`,
//! as far as this machine allows. It uses the Windows lane's Rust (Debian's, with std
//! built from source). ring's C code is compiled by Debian's clang for
//! `arm64-apple-macos11`: GCC has no Apple targets. Nothing is linked, so no macOS SDK
//! is needed: ring's C is compiled against musl's headers (Debian's `musl-dev`) in place
//! of the SDK's libc, and the one Apple header it asks for, `TargetConditionals.h` (macros
//! that say which Apple OS), comes from `xtask/macos/include`. The objects are never
//! linked; what the check proves is that Lanyard's Rust compiles for macOS.

use std::process::Command;

pub const TARGET: &str = "aarch64-apple-darwin";
/// The Debian packages of the check, beside the Windows lane's Rust.
pub const APT: &[&str] = &["clang", "musl-dev"];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        None | Some("check") => check(),
        Some(other) => anyhow::bail!("unknown macos task `{other}`: check"),
    }
}

/// Installs what the check needs where it is missing, and runs it.
pub fn check() -> anyhow::Result<()> {
    super::deps::apt_packages(APT)?;
    super::deps::apt_packages(super::windows::APT)?;
    super::windows::rust_src()?;
    super::run(&mut cargo(&["check", "-p", "lanyard", "--lib", "--bins"])?)
}

fn cargo(args: &[&str]) -> anyhow::Result<Command> {
    let mut cmd = super::windows::debian_cargo(args, TARGET, &super::root().join("target/macos"));
    let out = Command::new("clang").arg("-print-resource-dir").output()?;
    let builtin = format!("{}/include", String::from_utf8_lossy(&out.stdout).trim());
    let include = super::root().join("xtask/macos/include");
    cmd.env("CC_aarch64_apple_darwin", "clang").env(
        "CFLAGS_aarch64_apple_darwin",
        format!(
            "--target=arm64-apple-macos11 -nostdinc -isystem {builtin} -isystem {MUSL} -isystem {}",
            include.display()
        ),
    );
    Ok(cmd)
}

/// musl's C headers, in place of the macOS SDK's: self-contained, and enough for ring.
const MUSL: &str = "/usr/include/x86_64-linux-musl";
