//! `cargo xtask bench`: the agent's speed and memory (benches/agent.rs), in a release
//! build, inside a private Secret Service, against the real test provider. Prints the
//! Markdown table that docs/benchmarks.md records, with the machine it ran on.

use std::process::Command;

pub fn run() -> anyhow::Result<()> {
    super::deps::run()?;
    super::run(super::cargo().args(["bench", "--bench", "agent", "--no-run"]))?;
    // The binary measured is the one that ships.
    let lanyard = super::dist::run()?;
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
    eprintln!("xtask: machine: {machine}");
    let xtask = std::env::current_exe()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    super::run(
        Command::new("dbus-run-session")
            .arg("--")
            .arg(xtask)
            .args(["keyring-session", "--", &cargo, "bench", "--bench", "agent"])
            .env("LANYARD_BENCH_BIN", lanyard)
            .current_dir(super::root()),
    )
}
