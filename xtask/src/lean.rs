//! An app that only signs in pays only for that: the library built without its default
//! features (`lanyard = { …, default-features = false }`, docs/embedding.md) compiles
//! and documents without a warning, and its dependency graph holds none of what only the command line,
//! the broker or the desktop app need.

use anyhow::bail;

/// What only the `cli`, `broker` and `desktop` features may bring in.
const NOT_FOR_APPS: &[&str] = &[
    "clap",
    "crypto_box",
    "qrcode",
    "tracing-subscriber",
    "x11-dl",
];

pub fn check() -> anyhow::Result<()> {
    super::run(super::cargo().args([
        "clippy",
        "-p",
        "lanyard",
        "--no-default-features",
        "--lib",
        "--",
        "-D",
        "warnings",
    ]))?;
    super::run(
        super::cargo()
            .args(["doc", "--no-deps", "-p", "lanyard", "--no-default-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    let tree = super::cargo()
        .args(["tree", "-p", "lanyard", "--no-default-features"])
        .args(["-e", "normal", "--prefix", "none", "--target", "all"])
        .output()?;
    if !tree.status.success() {
        bail!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&tree.stderr)
        );
    }
    let tree = String::from_utf8(tree.stdout)?;
    let crates: std::collections::BTreeSet<&str> =
        tree.lines().filter_map(|l| l.split(' ').next()).collect();
    let found: Vec<&&str> = NOT_FOR_APPS
        .iter()
        .filter(|c| crates.contains(**c))
        .collect();
    if !found.is_empty() {
        bail!("the library without default features still depends on {found:?}");
    }
    eprintln!(
        "xtask: the library without default features: {} crates (every platform's), none of {NOT_FOR_APPS:?}",
        crates.len()
    );
    Ok(())
}
