//! `cargo xtask bench [agent|desktop]`: the agent's speed and memory (benches/agent.rs),
//! in the shipping build, inside a private Secret Service, against the real test provider;
//! and the desktop app's launch time and idle memory (benches/desktop.rs), in a release
//! build on a private display. Prints the Markdown tables that docs/benchmarks.md
//! records, with the machine they ran on.

use std::process::Command;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    super::deps::run()?;
    let which = args.first().map(String::as_str);
    let machine = machine()?;
    eprintln!("xtask: machine: {machine}");
    if which != Some("desktop") {
        agent()?;
    }
    if which != Some("agent") {
        desktop()?;
    }
    Ok(())
}

fn desktop() -> anyhow::Result<()> {
    super::run(super::cargo().args(["bench", "--bench", "desktop", "--no-run"]))?;
    super::run(super::cargo().args(["build", "--release", "-p", "lanyard-desktop"]))?;
    let app = super::root().join("target/release/lanyard-desktop");
    super::run(
        super::cargo_in_keyring_session(&["bench", "--bench", "desktop"])?
            .env("LANYARD_DESKTOP_BIN", app),
    )
}

fn machine() -> anyhow::Result<String> {
    let machine = format!(
        "{} ({} cores), {}",
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown CPU")
            .trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        String::from_utf8_lossy(&Command::new("uname").arg("-sr").output()?.stdout).trim()
    );
    Ok(machine)
}

fn agent() -> anyhow::Result<()> {
    super::run(super::cargo().args(["bench", "--bench", "agent", "--no-run"]))?;
    // The binary measured is the one that ships.
    let lanyard = super::dist::run()?;
    super::run(
        super::cargo_in_keyring_session(&["bench", "--bench", "agent"])?
            .env("LANYARD_BENCH_BIN", lanyard),
    )
}
