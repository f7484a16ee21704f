//! `cargo xtask dist`: the `lanyard` command line as it ships, at `target/dist/lanyard`.
//!
//! The `dist` profile (Cargo.toml) optimises the whole program at link time, which makes
//! the binary a quarter smaller. On Linux it is also linked statically and not
//! position-independent: a process that only asks the agent for a token (`lanyard token`,
//! run by kubectl or git for every request) then starts in about a third of the time, with
//! no shared libraries to load and no relocations to apply. docs/benchmarks.md has the
//! figures.
//!
//! glibc's static build still resolves host names and users through the system's NSS
//! modules at run time, so the binary belongs on the distribution it was built on (as a
//! .deb does); `cargo install` builds the ordinary dynamic binary.

use std::path::PathBuf;

/// Builds the shipping binary and returns its path.
pub fn run() -> anyhow::Result<PathBuf> {
    let mut build = super::cargo();
    build.args(["rustc", "--profile", "dist", "--bin", "lanyard"]);
    if cfg!(target_os = "linux") {
        // Flags for the final link only: the dependencies are built as usual.
        build.args([
            "--",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
        ]);
    }
    super::run(&mut build)?;
    let binary = super::root().join("target/dist/lanyard");
    eprintln!("xtask: {}", binary.display());
    Ok(binary)
}
