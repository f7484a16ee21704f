//! `cargo xtask fuzz [SECONDS]`: libFuzzer, through cargo-fuzz, on the agent's frame
//! decoder (fuzz/fuzz_targets/frames.rs) for SECONDS (default 60).
//!
//! cargo-fuzz needs a nightly compiler for its sanitizer flags. This machine has only the
//! stable toolchain, so the build runs with `RUSTC_BOOTSTRAP=1`, which lets stable rustc
//! accept them. The normal test suite runs property tests of the same decoder instead.

use std::process::Command;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: u64 = match args.first() {
        Some(s) => s.parse()?,
        None => 60,
    };
    let has_fuzz = super::cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        super::run(super::cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let root = super::root();
    let corpus = root.join("target/fuzz-corpus/frames");
    std::fs::create_dir_all(&corpus)?;
    // Seeds that reach what random growth from small inputs rarely does: requests that
    // decode, and a line over the size limit (the first byte is the read size).
    let mut oversize = vec![200u8];
    oversize.extend(std::iter::repeat_n(b'x', 66 * 1024));
    oversize.push(b'\n');
    let seeds: [(&str, &[u8]); 3] = [
        ("hello-token", b"\x07{\"id\":1,\"op\":\"hello\",\"version\":1}\n{\"id\":2,\"op\":\"token\",\"account\":\"w\",\"scope\":\"openid\"}\n"),
        ("garbage", b"\x01{\"id\": 9, \"op\": \"fly\"}\nnot json\n\n"),
        ("oversize", &oversize),
    ];
    for (name, bytes) in seeds {
        let path = corpus.join(format!("seed-{name}"));
        if !path.exists() {
            std::fs::write(path, bytes)?;
        }
    }
    super::run(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(root.join("fuzz"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", root.join("target/fuzz"))
            .args(["fuzz", "run", "frames"])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-max_len={}", 70 * 1024)),
    )
}
