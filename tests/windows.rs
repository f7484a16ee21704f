//! The Windows lane: `lanyard.exe`, built on this machine for x86_64-pc-windows-gnu, run
//! under Wine against the real test provider on 127.0.0.1 (Wine's sockets are the host's).
//! Tokens go to Wine's Credential Manager and are read back by another Windows program;
//! the broker serves a Windows tool on its named pipe. What Wine cannot show is listed in
//! docs/windows.md.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{self, Env, Idp, Run};

mod app;
mod desktop;
mod seat;

/// Wine's 64-bit loader.
const WINE: &str = "/usr/lib/wine/wine64";

/// The Windows programs `cargo xtask test` built, and the Wine prefix they run in.
struct Wine {
    bin: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    fn new() -> Wine {
        let var = |name: &str| {
            std::env::var_os(name).map(PathBuf::from).unwrap_or_else(|| {
                panic!("{name} is not set: run the Windows lane with `cargo xtask test`, which builds lanyard.exe")
            })
        };
        Wine {
            bin: var("LANYARD_WINDOWS_BIN"),
            prefix: var("WINEPREFIX"),
        }
    }

    /// `PROGRAM.exe ARGS` under Wine, in `env`'s environment; `cmd` is Wine's own
    /// `cmd.exe`, a Windows program that runs others.
    fn command(&self, env: &Env, program: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(WINE);
        match program {
            "cmd" => cmd.arg("cmd"),
            _ => cmd.arg(self.bin.join(format!("{program}.exe"))),
        };
        cmd.args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env("LANYARD_CONFIG", &env.config)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env.vars() {
            cmd.env(k, v);
        }
        cmd
    }

    async fn run(&self, env: &Env, program: &str, args: &[&str]) -> Run {
        self.run_with_stdin(env, program, args, "").await
    }

    async fn run_with_stdin(&self, env: &Env, program: &str, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.command(env, program, args);
        cmd.stdin(std::process::Stdio::piped());
        support::run_with_stdin(cmd, stdin).await
    }

    async fn lanyard(&self, env: &Env, args: &[&str]) -> Run {
        self.run(env, "lanyard", args).await
    }

    /// `lanyard.exe ARGS` run by `cmd.exe /c`, as a Windows tool runs it.
    async fn lanyard_from_cmd(&self, env: &Env, args: &[&str]) -> Run {
        // Wine's drive Z: is the host's root.
        let exe = format!(
            "Z:{}",
            self.bin
                .join("lanyard.exe")
                .display()
                .to_string()
                .replace('/', "\\")
        );
        self.run(env, "cmd", &[&["/c", &exe], args].concat()).await
    }

    /// An account's tokens as another program reads them from Credential Manager: the
    /// item `ACCOUNT.lanyard`, joined from its parts when it has them (and how many).
    async fn stored(&self, env: &Env, account: &str) -> Option<(Value, usize)> {
        let item = self
            .run(env, "credread", &[&format!("{account}.lanyard")])
            .await;
        if item.code == 1 {
            return None;
        }
        assert_eq!(item.code, 0, "{item:?}");
        let Some(header) = item.stdout.strip_prefix("\u{0}lanyard-parts:") else {
            return Some((serde_json::from_str(&item.stdout).unwrap(), 1));
        };
        let (generation, count) = header.split_once(':').unwrap();
        let count: usize = count.parse().unwrap();
        let mut whole = String::new();
        for i in 0..count {
            let part = self
                .run(
                    env,
                    "credread",
                    &[&format!("{account}#{generation}.{i}.lanyard")],
                )
                .await;
            assert_eq!(part.code, 0, "part {i}: {part:?}");
            whole.push_str(&part.stdout);
        }
        Some((serde_json::from_str(&whole).unwrap(), count))
    }
}

/// Sign-in through the browser, a 6 KB access token kept in Credential Manager (in parts),
/// refresh with rotation, the broker on its named pipe serving a Windows tool that must be
/// approved first, and sign-out.
#[tokio::test]
async fn lanyard_exe_signs_in_keeps_tokens_brokers_and_signs_out() {
    let wine = Wine::new();
    let idp = Idp::start_with(false, &["--access-token-size", "6144"]);
    // Wine's prefix outlives a run: an account name of this run's own.
    let name = format!("win-{}", std::process::id());
    let mut env = Env::new();
    env.account(
        &name,
        &format!(
            "issuer = \"{}\"\nclient_id = \"lanyard-public\"\ngit_hosts = [\"git.example.test\"]",
            idp.issuer
        ),
    );
    // The agent's pipe, once it runs; until then, no agent: direct mode.
    let pipe = format!(r"\\.\pipe\lanyard-test-{name}");

    // Sign in: lanyard.exe opens $BROWSER (the test's browser driver, a host program
    // Wine starts) and receives the redirect on its loopback listener.
    let run = wine.lanyard(&env, &["login", &name]).await;
    assert!(
        run.assert_ok()
            .stdout
            .contains(&format!("Signed in to {name} as Alice Example")),
        "{run:?}"
    );
    let (stored, parts) = wine.stored(&env, &name).await.expect("tokens are stored");
    assert!(
        parts >= 5,
        "a 6 KB token takes parts of 2,560 bytes: {parts}"
    );
    let access = stored["access_token"].as_str().unwrap().to_owned();
    assert_eq!(access.len(), 6144);
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();

    // The token, whole, works at the provider.
    let run = wine.lanyard(&env, &["token", &name, "--json"]).await;
    let token = run.assert_ok().json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(token, access);
    assert_eq!(idp.userinfo(&token).await["sub"], "alice");

    // Refresh with rotation: the new refresh token is the one Credential Manager holds.
    let run = wine
        .lanyard(&env, &["token", &name, "--min-valid", "99999"])
        .await;
    let refreshed = run.assert_ok().stdout.trim().to_owned();
    assert_ne!(refreshed, token);
    assert_eq!(idp.userinfo(&refreshed).await["sub"], "alice");
    let (stored, _) = wine.stored(&env, &name).await.unwrap();
    assert_eq!(stored["access_token"], refreshed.as_str());
    let rotated = stored["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, refresh, "the provider rotated the refresh token");
    assert_eq!(
        idp.try_refresh("lanyard-public", &refresh).await["error"],
        "invalid_grant",
        "the old one is spent"
    );

    // The broker on its named pipe, and a Windows tool that is not lanyard.exe: refused
    // until approved, then served.
    env.set("LANYARD_SOCK", &pipe);
    let mut agent = wine.command(&env, "lanyard", &["agent"]).spawn().unwrap();
    let mut said = tokio::io::BufReader::new(agent.stderr.take().unwrap());
    let listening = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        use tokio::io::AsyncBufReadExt as _;
        let mut line = String::new();
        while said.read_line(&mut line).await.unwrap() > 0 {
            if line.contains("listening at") {
                return line;
            }
            line.clear();
        }
        panic!("the agent exited")
    })
    .await
    .expect("the agent listens within a minute");
    assert!(listening.contains(&pipe), "{listening}");
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt as _;
        let mut rest = Vec::new();
        let _ = said.read_to_end(&mut rest).await;
    });

    let answer = |run: &Run| -> Value {
        let line = run
            .stdout
            .lines()
            .nth(1)
            .unwrap_or_else(|| panic!("{run:?}"));
        serde_json::from_str(line).unwrap()
    };
    let run = wine.run(&env, "pipeclient", &[&pipe, &name]).await;
    let refused = answer(&run);
    assert_eq!(refused["error"]["code"], "approval_required", "{refused}");
    let hint = refused["error"]["hint"].as_str().unwrap().to_owned();
    assert!(hint.to_lowercase().contains("pipeclient.exe"), "{hint}");
    // The hint is the command to run: `lanyard allow ACCOUNT "PATH"`.
    let app = hint
        .split_once(&format!("allow {name} "))
        .map(|(_, app)| app.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{hint}"));
    wine.lanyard(&env, &["allow", &name, &app])
        .await
        .assert_ok();
    let run = wine.run(&env, "pipeclient", &[&pipe, &name]).await;
    let served = answer(&run);
    assert_eq!(served["ok"]["access_token"], refreshed.as_str(), "{served}");

    // lanyard.exe through the agent (its fast path), run by cmd.exe: the agent looks
    // through the command line and names cmd.exe, refused until allowed.
    let run = wine.lanyard_from_cmd(&env, &["token", &name]).await;
    run.assert_fails(8, "cmd.exe");
    let app = run
        .stderr
        .split_once(&format!("lanyard allow {name} "))
        .map(|(_, rest)| rest.split('`').next().unwrap().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{run:?}"));
    assert!(app.to_lowercase().ends_with(r"\cmd.exe"), "{app}");
    wine.lanyard(&env, &["allow", &name, &app])
        .await
        .assert_ok();
    let run = wine.lanyard_from_cmd(&env, &["token", &name]).await;
    assert_eq!(run.assert_ok().stdout.trim(), refreshed);
    agent.kill().await.unwrap();
    // (A LANYARD_SOCK where no agent answers is an error: without it, direct mode.)
    env.unset("LANYARD_SOCK");

    // The credential helpers kubectl and git run, as Windows programs (without the agent).
    let run = wine.lanyard(&env, &["kubectl-credential", &name]).await;
    let credential = run.assert_ok().json();
    assert_eq!(credential["kind"], "ExecCredential");
    assert_eq!(credential["status"]["token"], refreshed.as_str());
    let run = wine
        .run_with_stdin(
            &env,
            "lanyard",
            &["git-credential", "--account", &name, "get"],
            "protocol=https\nhost=git.example.test\n\n",
        )
        .await;
    assert!(
        run.assert_ok()
            .stdout
            .contains(&format!("password={refreshed}")),
        "{run:?}"
    );

    // Sign out: the provider's session ended in the browser and the refresh token
    // revoked; nothing left in Credential Manager, the item's parts included.
    let header = wine
        .run(&env, "credread", &[&format!("{name}.lanyard")])
        .await;
    let generation = header.stdout.split(':').nth(1).unwrap().to_owned();
    let run = wine.lanyard(&env, &["logout", &name]).await;
    run.assert_ok();
    assert_eq!(
        idp.try_refresh("lanyard-public", &rotated).await["error"],
        "invalid_grant",
        "revoked"
    );
    assert!(
        idp.events()
            .await
            .contains(&"end_session.success".to_owned())
    );
    assert!(wine.stored(&env, &name).await.is_none());
    let part = wine
        .run(
            &env,
            "credread",
            &[&format!("{name}#{generation}.0.lanyard")],
        )
        .await;
    assert_eq!(part.code, 1, "no part is left: {part:?}");
}

/// A fresh Wine prefix of a test's own, in which every process can be waited for
/// (`wineserver -w`): what an installer leaves is this test's alone.
struct Prefix {
    dir: tempfile::TempDir,
}

/// A prefix's processes end before its folder goes: a failed test leaves none running, and
/// no wineserver is left to write its registry into a deleted folder.
impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::process::Command::new("/usr/lib/wine/wineserver")
            .arg("-k")
            .env("WINEPREFIX", self.dir.path())
            .status();
        let _ = std::process::Command::new("/usr/lib/wine/wineserver")
            .arg("-w")
            .env("WINEPREFIX", self.dir.path())
            .status();
    }
}

impl Prefix {
    fn new() -> Prefix {
        let prefix = Prefix {
            dir: tempfile::tempdir().unwrap(),
        };
        prefix.wait_for(&["wineboot", "--init"]);
        // Rust's std needs `ProcessPrng`, which Wine 8 lacks: the lane's shim.
        let shim = "drive_c/windows/system32/bcryptprimitives.dll";
        std::fs::copy(Wine::new().prefix.join(shim), prefix.dir.path().join(shim)).unwrap();
        prefix
    }

    /// Runs `args` under Wine and waits until every process of the prefix has exited
    /// (an NSIS uninstaller hands over to a copy of itself and returns at once).
    fn wait_for(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new(WINE)
            .args(args)
            .env("WINEPREFIX", self.dir.path())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .output()
            .unwrap();
        let waited = std::process::Command::new("/usr/lib/wine/wineserver")
            .arg("-w")
            .env("WINEPREFIX", self.dir.path())
            .status()
            .unwrap();
        assert!(waited.success());
        out
    }

    /// A registry value as `reg query` shows it, or `None` when the key or value is gone.
    fn reg(&self, key: &str, value: Option<&str>) -> Option<String> {
        let mut args = vec!["reg", "query", key];
        match value {
            Some(v) => args.extend(["/v", v]),
            None => args.push("/ve"),
        }
        let out = self.wait_for(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let name = value.unwrap_or("(Default)");
        // `    NAME    REG_SZ    DATA`, where DATA may be empty.
        text.lines()
            .map(|l| l.trim_start().trim_end_matches('\r'))
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once("REG_"))
            .and_then(|(_, rest)| rest.split_once("    "))
            .map(|(_, data)| data.to_owned())
            .filter(|_| out.status.success())
    }

    /// `program ARGS` under Wine in this prefix, its output piped.
    fn command(&self, program: &std::path::Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(WINE);
        cmd.arg(program)
            .args(args)
            .env("WINEPREFIX", self.dir.path())
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, program: &std::path::Path, args: &[&str]) -> Run {
        let mut cmd = self.command(program, args);
        cmd.stdin(std::process::Stdio::piped());
        support::run_with_stdin(cmd, "").await
    }

    /// Sets a registry value (as policy tooling does), once nothing else runs.
    fn reg_add(&self, key: &str, name: &str, kind: &str, data: &str) {
        let out = self.wait_for(&["reg", "add", key, "/v", name, "/t", kind, "/d", data, "/f"]);
        assert!(out.status.success(), "reg add {key} {name}: {out:?}");
    }

    fn reg_delete(&self, key: &str, name: &str) {
        let out = self.wait_for(&["reg", "delete", key, "/v", name, "/f"]);
        assert!(out.status.success(), "reg delete {key} {name}: {out:?}");
    }

    fn drive_c(&self) -> PathBuf {
        self.dir.path().join("drive_c")
    }
}

/// The installer, silent, as a center's tooling runs it: both programs, the `dev.lanyard:`
/// scheme, the Start-menu entry, autostart when asked, PATH and the Apps & features entry
/// with its quiet uninstall command; that command then removes every one of them, and the
/// prefix's registry and files hold no trace of Lanyard.
#[test]
fn the_installer_installs_and_uninstalls_silently() {
    let installer = std::env::var_os("LANYARD_WINDOWS_INSTALLER")
        .map(PathBuf::from)
        .expect("LANYARD_WINDOWS_INSTALLER is not set: `cargo xtask test` builds the installer");
    let prefix = Prefix::new();
    let dir = prefix.drive_c().join("Program Files/Lanyard");
    let run = prefix.wait_for(&[installer.to_str().unwrap(), "/S", "/AUTOSTART"]);
    assert!(run.status.success(), "{run:?}");

    for file in [
        "lanyard-desktop.exe",
        "lanyard.exe",
        "WebView2Loader.dll",
        "uninstall.exe",
    ] {
        assert!(dir.join(file).is_file(), "{file} was not installed");
    }
    let app = r#""C:\Program Files\Lanyard\lanyard-desktop.exe""#;
    let scheme = r"HKLM\Software\Classes\dev.lanyard";
    assert_eq!(
        prefix.reg(&format!(r"{scheme}\shell\open\command"), None),
        Some(format!(r#"{app} "%1""#))
    );
    assert_eq!(
        prefix.reg(scheme, Some("URL Protocol")),
        Some(String::new())
    );
    let run_key = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run";
    assert_eq!(
        prefix.reg(run_key, Some("Lanyard")),
        Some(format!("{app} --hidden"))
    );
    let uninstall = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Lanyard";
    let quiet = prefix.reg(uninstall, Some("QuietUninstallString")).unwrap();
    assert_eq!(quiet, r#""C:\Program Files\Lanyard\uninstall.exe" /S"#);
    assert_eq!(
        prefix.reg(uninstall, Some("DisplayName")).as_deref(),
        Some("Lanyard")
    );
    let env = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment";
    let path = prefix.reg(env, Some("Path")).unwrap();
    assert!(
        path.split(';').any(|p| p == r"C:\Program Files\Lanyard"),
        "{path}"
    );
    let shortcut = prefix
        .drive_c()
        .join("ProgramData/Microsoft/Windows/Start Menu/Programs/Lanyard.lnk");
    assert!(shortcut.is_file());
    // The installed command line runs.
    let version = prefix.wait_for(&[r"C:\Program Files\Lanyard\lanyard.exe", "--version"]);
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("lanyard "), "{version}");

    // As Apps & features runs it.
    let run = prefix.wait_for(&[r"C:\Program Files\Lanyard\uninstall.exe", "/S"]);
    assert!(run.status.success(), "{run:?}");
    assert!(!dir.exists(), "the install folder is left");
    assert!(!shortcut.exists(), "the Start-menu entry is left");
    assert_eq!(
        prefix.reg(&format!(r"{scheme}\shell\open\command"), None),
        None
    );
    assert_eq!(prefix.reg(run_key, Some("Lanyard")), None);
    assert_eq!(prefix.reg(uninstall, Some("DisplayName")), None);
    let path_after = prefix.reg(env, Some("Path")).unwrap();
    assert!(
        !path_after.to_lowercase().contains("lanyard"),
        "{path_after}"
    );
    // No trace in the registry files (written out when the prefix's processes ended).
    for hive in ["system.reg", "user.reg", "userdef.reg"] {
        let text = std::fs::read_to_string(prefix.dir.path().join(hive)).unwrap_or_default();
        let found: Vec<&str> = text
            .lines()
            .filter(|l| l.to_lowercase().contains("lanyard"))
            .collect();
        assert!(found.is_empty(), "{hive} still names Lanyard: {found:#?}");
    }
}
