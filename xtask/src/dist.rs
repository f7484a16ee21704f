//! `cargo xtask dist`: the `lanyard` command line as it ships, in `target/dist/`.
//!
//! On Linux it is linked statically and not position-independent. A process that only
//! asks the agent for a token (`lanyard token`, run by kubectl or git for every request)
//! then starts in about a third of the time: no shared libraries to load, no relocations
//! to apply across a 14 MB binary. docs/benchmarks.md has the figures.
//!
//! Only the final link differs from `cargo build --release`, so the dependencies built
//! for that are reused. glibc's static build still resolves host names and users through
//! the system's NSS modules at run time, so the binary belongs on the distribution it was
//! built on (as a .deb does); `cargo install` builds the ordinary dynamic binary.

use std::path::PathBuf;

/// Builds the shipping binary and returns its path.
pub fn run() -> anyhow::Result<PathBuf> {
    let mut build = super::cargo();
    build.args(["rustc", "--release", "--bin", "lanyard"]);
    if cfg!(target_os = "linux") {
        build.args([
            "--",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
        ]);
    }
    super::run(&mut build)?;
    let dist = super::root().join("target/dist");
    std::fs::create_dir_all(&dist)?;
    let to = dist.join("lanyard");
    // Copied, not hard-linked: the next `cargo build --release` relinks the original.
    let _ = std::fs::remove_file(&to);
    std::fs::copy(super::root().join("target/release/lanyard"), &to)?;
    eprintln!("xtask: {}", to.display());
    Ok(to)
}
