//! `xtask keyring-session -- CMD …`: runs CMD against a private, unlocked Secret Service.
//!
//! Meant to run inside `dbus-run-session`, which gives it a fresh session bus. It starts
//! `gnome-keyring-daemon --foreground` with its own data directory (so the user's real
//! keyrings are never touched) and the password on stdin, waits until the bus name
//! `org.freedesktop.secrets` has an owner, runs CMD, and stops the daemon.

use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub fn run(args: &[String]) -> ExitCode {
    let command: Vec<&String> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let Some((program, rest)) = command.split_first() else {
        eprintln!("usage: xtask keyring-session -- COMMAND [ARGS…]");
        return ExitCode::from(2);
    };
    let home = std::env::temp_dir().join(format!("lanyard-keyring-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&home);
    let daemon = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("XDG_DATA_HOME", &home)
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut daemon = match daemon {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xtask: cannot start gnome-keyring-daemon: {e} (run `cargo xtask deps`)");
            return ExitCode::FAILURE;
        }
    };
    if let Some(mut stdin) = daemon.stdin.take() {
        let _ = stdin.write_all(b"lanyard-test-keyring");
    }
    let ready = wait_for_secret_service(Duration::from_secs(20));
    let code = if ready {
        Command::new(program)
            .args(rest)
            .env("LANYARD_TEST_SESSION", "1")
            .status()
            .map(|s| s.code().unwrap_or(1))
            .unwrap_or_else(|e| {
                eprintln!("xtask: cannot run {program}: {e}");
                1
            })
    } else {
        eprintln!("xtask: the Secret Service did not come up on the session bus");
        1
    };
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&home);
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Polls the bus until the Secret Service name has an owner (a condition, with a limit).
fn wait_for_secret_service(limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let owned = Command::new("dbus-send")
            .args([
                "--session",
                "--dest=org.freedesktop.DBus",
                "--print-reply",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"));
        if owned {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
