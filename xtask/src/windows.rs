//! `cargo xtask windows [check|build|test]`: Lanyard for Windows, built on this machine and
//! run under Wine.
//!
//! The machine's Rust (rustup) has no Windows standard library and cannot fetch one, so the
//! lane builds std from source with Debian's own Rust:
//! - `rustc-web` and `cargo-web` (bookworm-security) install `/usr/bin/rustc` and
//!   `/usr/bin/cargo`, beside rustup's, which stays first on PATH;
//! - their standard library's source, `rust-web-src`, comes from the next Debian release
//!   (it is `Architecture: all`): downloaded with apt's own options pointed at a sources
//!   list of this task's, without touching the system's, unpacked into
//!   `/usr/local/lib/lanyard/rust-src`, and linked where rustc looks for it
//!   (`/usr/lib/rustlib/src/rust`);
//! - MinGW-w64 links, and `-Zbuild-std` (with `RUSTC_BOOTSTRAP=1`) builds std for
//!   `x86_64-pc-windows-gnu`.
//!
//! Wine 8 runs the result. Rust's std imports `ProcessPrng` from `bcryptprimitives.dll`,
//! which Wine 8 lacks: `xtask/windows/bcryptprimitives.c`, built with MinGW into the Wine
//! prefix's system32, provides it over advapi32's `SystemFunction036`.
//!
//! Everything is installed here, idempotently: nothing by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// The Debian packages of the lane.
pub const APT: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "gcc-mingw-w64-x86-64",
    "binutils-mingw-w64-x86-64",
    "wine64",
    "libwine",
    "nsis",
];
/// Where rustc (Debian's, sysroot /usr) looks for the standard library's source.
const SRC_LINK: &str = "/usr/lib/rustlib/src/rust";
/// Where the unpacked source lives.
const SRC_HOME: &str = "/usr/local/lib/lanyard/rust-src";
/// Wine 8's 64-bit loader.
pub const WINE: &str = "/usr/lib/wine/wine64";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    toolchain()?;
    match args.first().map(String::as_str) {
        None | Some("check") => check(),
        Some("build") => build(&["--bin", "lanyard"]).map(drop),
        Some("desktop") => programs().map(drop),
        Some("installer") => {
            let bin = programs()?;
            let setup = installer(&bin, &bin.join("bundle"))?;
            eprintln!("xtask: {}", setup.display());
            Ok(())
        }
        Some("unit") => unit(),
        Some("lane") => lane().map(drop),
        Some(other) => {
            bail!("unknown windows task `{other}`: check, build, desktop, installer, unit or lane")
        }
    }
}

/// Every Windows program of the lane, built in one cargo run: `lanyard.exe`; the test
/// program that plays the desktop app without its window (`app.exe`); `lanyard-desktop.exe`,
/// the Tauri app on WebView2 (`webview2-com`) with its assets embedded; and
/// `tauri-signin.exe`, the example app of tauri-plugin-lanyard (the plugin and its
/// deep-link wiring, built for Windows). One run means one feature set, so each dependency
/// is compiled once (built apart, the command line's and the app's builds shared almost
/// nothing). Returns the directory they are in.
pub fn programs() -> anyhow::Result<PathBuf> {
    build(&[
        "-p",
        "lanyard",
        "--bin",
        "lanyard",
        "-p",
        "lanyard-test-app",
        "--bin",
        "app",
        "-p",
        "lanyard-desktop",
        "--bin",
        "lanyard-desktop",
        "-p",
        "tauri-signin",
        "--bin",
        "tauri-signin",
    ])
}

/// What the end-to-end tests of the Windows lane run under Wine: [`programs`], and the
/// test programs in C that play a Windows tool (`pipeclient.exe`), another program reading
/// Credential Manager (`credread.exe`) and Edge on a kiosk seat (`seatbrowser.exe`).
/// Returns their directory.
pub fn lane() -> anyhow::Result<PathBuf> {
    let bin = programs()?;
    // (The seat browser takes its arguments as UTF-16: `wmain`, hence `-municode`.)
    for (helper, unicode) in [
        ("pipeclient", false),
        ("credread", false),
        ("seatbrowser", true),
    ] {
        let source = super::root().join(format!("xtask/windows/{helper}.c"));
        let exe = bin.join(format!("{helper}.exe"));
        let fresh = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
        if fresh(&exe) < fresh(&source) || !exe.exists() {
            super::run(
                Command::new("x86_64-w64-mingw32-gcc")
                    .args(["-O2", "-Wall"])
                    .args(unicode.then_some("-municode"))
                    .arg("-o")
                    .arg(&exe)
                    .arg(&source)
                    .arg("-ladvapi32"),
            )
            .with_context(|| format!("building {helper}.exe"))?;
        }
    }
    // Lanyard's own state in the prefix is thrown away: each run starts signed out.
    let users = wine_prefix().join("drive_c/users");
    for user in std::fs::read_dir(&users).into_iter().flatten().flatten() {
        let state = user.path().join("AppData/Roaming/lanyard");
        if state.exists() {
            std::fs::remove_dir_all(&state)?;
        }
    }
    Ok(bin)
}

/// The installer from release builds, as shipped: written to `out`.
pub fn release_installer(out: &Path) -> anyhow::Result<PathBuf> {
    toolchain()?;
    build(&["--release", "--bin", "lanyard"])?;
    let bin = build(&[
        "--release",
        "-p",
        "lanyard-desktop",
        "--bin",
        "lanyard-desktop",
    ])?;
    installer(&bin, out)
}

/// The Windows installer (`src-tauri/windows/installer.nsi`, Debian's makensis) from the
/// programs in `bin`, a profile directory of the lane's: they are stripped of their debug
/// information first. Written to `out`; returns its path.
pub fn installer(bin: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let stage = bin.join("installer");
    std::fs::create_dir_all(&stage)?;
    std::fs::create_dir_all(out)?;
    for exe in ["lanyard-desktop.exe", "lanyard.exe"] {
        super::run(
            Command::new("x86_64-w64-mingw32-strip")
                .arg("-o")
                .arg(stage.join(exe))
                .arg(bin.join(exe)),
        )?;
    }
    let version = desktop_version()?;
    let setup = out.join(format!("Lanyard_{version}_x64-setup.exe"));
    let define = |name: &str, value: &Path| format!("-D{name}={}", value.display());
    super::run(
        Command::new("makensis")
            .args(["-V2", "-INPUTCHARSET", "UTF8"])
            .arg(format!("-DVERSION={version}"))
            .arg(define("APP_EXE", &stage.join("lanyard-desktop.exe")))
            .arg(define("CLI_EXE", &stage.join("lanyard.exe")))
            .arg(define("LOADER_DLL", &bin.join("WebView2Loader.dll")))
            .arg(define("ICON", &super::root().join("icons/icon.ico")))
            .arg(define("OUTFILE", &setup))
            .arg(super::root().join("src-tauri/windows/installer.nsi")),
    )
    .context("building the Windows installer")?;
    Ok(setup)
}

/// The desktop app's version, from its Cargo.toml.
fn desktop_version() -> anyhow::Result<String> {
    let manifest = std::fs::read_to_string(super::root().join("src-tauri/Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned)
        .context("no version in src-tauri/Cargo.toml")
}

/// The library's unit tests, built for Windows and run under Wine (cargo's runner).
///
/// When Wine's server dies under a test, the test program's output stops and Wine may
/// still exit with 0: the run passes only if the harness said so itself.
pub fn unit() -> anyhow::Result<()> {
    // Wine 8's wineserver now and then crashes mid-run, which is Wine's failure, not a
    // test's: the run is made once more, and a second crash fails it.
    for attempt in 1..=2 {
        match unit_once()? {
            Unit::Passed => return Ok(()),
            Unit::WineCrashed if attempt == 1 => {
                eprintln!("xtask: wineserver crashed; running the unit tests under Wine again");
            }
            Unit::WineCrashed => break,
        }
    }
    bail!("wineserver crashed in both runs of the unit tests under Wine")
}

enum Unit {
    Passed,
    WineCrashed,
}

fn unit_once() -> anyhow::Result<Unit> {
    use std::io::BufRead as _;
    quiet_prefix();
    let mut cmd = cargo(&["test", "-p", "lanyard", "--lib"]);
    eprintln!("xtask: $ {cmd:?}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("cannot run cargo test for Windows")?;
    // A crashed wineserver leaves Wine's services behind, holding the output pipes open,
    // so cargo would wait for ever: once the crash is reported, they are killed.
    let stderr = child.stderr.take().context("no stderr")?;
    let watch = std::thread::spawn(move || {
        let mut crashed = false;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("{line}");
            if line.contains("wineserver crashed") {
                crashed = true;
                kill_prefix();
            }
        }
        crashed
    });
    let mut passed = false;
    for line in std::io::BufReader::new(child.stdout.take().context("no stdout")?).lines() {
        let line = line?;
        println!("{line}");
        passed |= line.starts_with("test result: ok.");
    }
    let status = child.wait()?;
    let crashed = watch.join().unwrap_or(true);
    if crashed {
        return Ok(Unit::WineCrashed);
    }
    if !status.success() {
        bail!("the unit tests failed under Wine ({status})");
    }
    if !passed {
        bail!("the unit tests under Wine ended without a result");
    }
    Ok(Unit::Passed)
}

/// Kills every process of the lane's prefix (by its `WINEPREFIX`), the wineserver's
/// orphans after a crash among them.
fn kill_prefix() {
    let prefix = format!("WINEPREFIX={}", wine_prefix().display());
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == prefix.as_bytes()) {
            // SAFETY: kill(2) with a pid read from /proc and a signal number; no memory
            // is shared.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    quiet_prefix();
}

/// `cargo check` of the library and the command line for Windows.
pub fn check() -> anyhow::Result<()> {
    super::run(&mut cargo(&["check", "-p", "lanyard", "--lib", "--bins"]))
}

/// `cargo build ARGS` for Windows; the target directory's profile directory.
pub fn build(args: &[&str]) -> anyhow::Result<PathBuf> {
    super::run(&mut cargo(&[&["build"], args].concat()))?;
    let profile = if args.contains(&"--release") {
        "release"
    } else {
        "debug"
    };
    Ok(target_dir().join(TARGET).join(profile))
}

/// The lane's own target directory: another compiler, so nothing is shared with the
/// host build but the sources.
pub fn target_dir() -> PathBuf {
    super::root().join("target/windows")
}

/// Debian's cargo, building std from source for `target` into `target_dir`.
pub fn debian_cargo(args: &[&str], target: &str, target_dir: &Path) -> Command {
    let mut cmd = Command::new("/usr/bin/cargo");
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.args(args)
        .args(["-Zbuild-std=std,panic_abort", "--target", target])
        .current_dir(super::root())
        // Debian's rustc and cargo, not rustup's.
        .env("PATH", format!("/usr/bin:{path}"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_TARGET_DIR", target_dir);
    cmd
}

/// Debian's cargo, building std for Windows.
fn cargo(args: &[&str]) -> Command {
    let mut cmd = debian_cargo(args, TARGET, &target_dir());
    cmd.env(
        "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER",
        "x86_64-w64-mingw32-gcc",
    )
    .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE)
    .env("WINEPREFIX", wine_prefix())
    .env("WINEDEBUG", "-all")
    // No Mono or Gecko installer prompts when the prefix is first made.
    .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    cmd
}

/// Stops whatever still runs in the lane's prefix (a run killed midway leaves its
/// wineserver and services behind, and Wine 8's wineserver has crashed under the next
/// run): each run starts from a quiet prefix.
pub fn quiet_prefix() {
    for arg in ["-k", "-w"] {
        let _ = Command::new("/usr/lib/wine/wineserver")
            .arg(arg)
            .env("WINEPREFIX", wine_prefix())
            .status();
    }
}

pub fn wine_prefix() -> PathBuf {
    super::root().join("target/wine")
}

/// Installs the lane's toolchain where it is missing.
pub fn toolchain() -> anyhow::Result<()> {
    super::deps::apt_packages(APT)?;
    rust_src()?;
    wine()
}

/// The standard library's source, matching `/usr/bin/rustc`'s version.
pub fn rust_src() -> anyhow::Result<()> {
    let version = rustc_version()?;
    let home = Path::new(SRC_HOME).join(&version);
    let unpacked = home.join("usr/lib/rustlib/src/rust");
    if !unpacked.join("library/std/Cargo.toml").exists() {
        download_src(&version, &home)?;
    }
    let link = Path::new(SRC_LINK);
    if std::fs::read_link(link).ok().as_deref() != Some(unpacked.as_path()) {
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&unpacked, link)
            .with_context(|| format!("linking {} to {}", link.display(), unpacked.display()))?;
    }
    Ok(())
}

/// `/usr/bin/rustc`'s Debian version, e.g. `1.96.0+dfsg1-1~deb12u2`.
fn rustc_version() -> anyhow::Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "rustc-web"])
        .output()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if version.is_empty() {
        bail!("rustc-web is not installed");
    }
    Ok(version)
}

/// Downloads rust-web-src from Debian's next release with apt's own options pointed at a
/// sources list of ours (the system's sources stay as they are), and unpacks it.
fn download_src(version: &str, home: &Path) -> anyhow::Result<()> {
    let apt = super::root().join("target/tools/apt-trixie");
    std::fs::create_dir_all(apt.join("lists/partial"))?;
    std::fs::create_dir_all(apt.join("archives/partial"))?;
    let sources = apt.join("sources.list");
    std::fs::write(
        &sources,
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n",
    )?;
    let options = |cmd: &mut Command| {
        cmd.arg("-o")
            .arg(format!("Dir::Etc::sourcelist={}", sources.display()))
            .args(["-o", "Dir::Etc::sourceparts=-"])
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", apt.join("lists").display()))
            .arg("-o")
            .arg(format!(
                "Dir::Cache::Archives={}",
                apt.join("archives").display()
            ))
            .args(["-o", "APT::Get::List-Cleanup=0"]);
    };
    let mut update = Command::new("apt-get");
    update.arg("-qq");
    options(&mut update);
    super::run(update.arg("update"))?;
    // The source of the same upstream release as the compiler.
    let upstream = version.split('+').next().unwrap_or(version);
    let mut policy = Command::new("apt-cache");
    options(&mut policy);
    let shown = policy.args(["madison", "rust-web-src"]).output()?;
    let shown = String::from_utf8_lossy(&shown.stdout);
    let wanted = shown
        .lines()
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .find(|v| v.starts_with(upstream))
        .with_context(|| format!("Debian's next release has no rust-web-src {upstream}:\n{shown}"))?
        .to_owned();
    let mut download = Command::new("apt-get");
    download.arg("-qq");
    options(&mut download);
    download
        .args(["download", &format!("rust-web-src={wanted}")])
        .current_dir(&apt);
    super::run(&mut download)?;
    let deb = std::fs::read_dir(&apt)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rust-web-src_") && n.ends_with(".deb"))
        })
        .context("apt downloaded no rust-web-src")?;
    std::fs::create_dir_all(home)?;
    super::run(Command::new("dpkg").arg("-x").arg(&deb).arg(home))
}

/// A Wine prefix with `bcryptprimitives.dll`'s `ProcessPrng`.
fn wine() -> anyhow::Result<()> {
    let prefix = wine_prefix();
    let system32 = prefix.join("drive_c/windows/system32");
    if !system32.exists() {
        super::run(
            Command::new(WINE)
                .args(["wineboot", "--init"])
                .env("WINEPREFIX", &prefix)
                .env("WINEDEBUG", "-all")
                .env("WINEDLLOVERRIDES", "mscoree,mshtml="),
        )
        .context("making the Wine prefix")?;
    }
    let dll = system32.join("bcryptprimitives.dll");
    if !dll.exists() {
        let source = super::root().join("xtask/windows/bcryptprimitives.c");
        super::run(
            Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-o"])
                .arg(&dll)
                .arg(&source)
                .arg("-ladvapi32"),
        )
        .context("building the ProcessPrng shim")?;
    }
    Ok(())
}
