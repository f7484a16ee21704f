//! Installs what the tests and the demo need and the machine lacks.

use std::process::Command;

use anyhow::{Context, bail};

/// Debian packages: the browser, the keychain and its session bus, the tools the tests use.
const APT: &[(&str, &str)] = &[
    ("chromium", "the browser the tests drive"),
    ("firefox-esr", "a kiosk seat's other browser family"),
    ("gnome-keyring", "the Secret Service (OS keychain)"),
    ("dbus", "the session bus the keychain lives on"),
    ("dbus-x11", "dbus-launch for gnome-keyring"),
    (
        "libsecret-tools",
        "secret-tool, to inspect the keychain in tests",
    ),
    ("openssl", "the test provider's private CA"),
    ("nodejs", "the test provider (node-oidc-provider)"),
    ("npm", "the test provider's packages"),
    ("git", "git, a real client of the credential helper"),
    (
        "kubernetes-client",
        "kubectl, a real client of the exec credential plugin",
    ),
    // The desktop app (Tauri 2 on WebKitGTK) and its tests in the real webview.
    (
        "build-essential",
        "a C toolchain for the desktop app's GTK crates",
    ),
    ("pkg-config", "finds WebKitGTK for the desktop app's build"),
    (
        "libwebkit2gtk-4.1-dev",
        "the desktop app's webview (WebKitGTK)",
    ),
    (
        "libayatana-appindicator3-1",
        "the desktop app's tray icon (loaded at run time)",
    ),
    ("xdg-utils", "registers the desktop app's URL scheme"),
    (
        "desktop-file-utils",
        "updates the MIME cache for the app's URL scheme",
    ),
    (
        "webkit2gtk-driver",
        "WebKitWebDriver, which tauri-driver runs",
    ),
    ("xvfb", "a display for the desktop app's tests"),
];

/// tauri-driver's version, and where it is installed (outside the user's cargo bin).
const TAURI_DRIVER: &str = "^2";
pub const TOOLS: &str = "target/tools";

pub fn run() -> anyhow::Result<()> {
    apt()?;
    npm()?;
    tauri_driver()
}

/// tauri-driver, the WebDriver server for the desktop app, from crates.io.
pub fn tauri_driver() -> anyhow::Result<()> {
    let root = super::root().join(TOOLS);
    if root.join("bin/tauri-driver").exists() {
        return Ok(());
    }
    super::run(
        super::cargo()
            .args([
                "install",
                "tauri-driver",
                "--locked",
                "--version",
                TAURI_DRIVER,
                "--root",
            ])
            .arg(&root),
    )
    .context("installing tauri-driver")
}

pub fn apt() -> anyhow::Result<()> {
    let missing: Vec<&str> = APT
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // A command that came from elsewhere (nvm's node, the Cloud SDK's kubectl, a newer
    // git) serves as well as Debian's package: install the package only without one.
    let command = |package: &str| match package {
        "nodejs" => Some("node"),
        "npm" => Some("npm"),
        "git" => Some("git"),
        "kubernetes-client" => Some("kubectl"),
        _ => None,
    };
    let missing: Vec<&str> = missing
        .into_iter()
        .filter(|p| command(p).is_none_or(|c| which(c).is_none()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        bail!(
            "these Debian packages are missing: {}\ninstall them with:\n  sudo apt-get install -y {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(", "));
    super::run(Command::new("apt-get").args(["update", "-qq"]))?;
    super::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// `npm ci` in tests/idp when its node_modules is missing or older than the lockfile.
pub fn npm() -> anyhow::Result<()> {
    npm_ci(&super::root().join("tests/idp")).context("installing the test provider's npm packages")
}

/// `npm ci` in `dir` when its node_modules is missing or older than the lockfile.
fn npm_ci(dir: &std::path::Path) -> anyhow::Result<()> {
    let lock = dir.join("package-lock.json");
    let marker = dir.join("node_modules/.package-lock.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((modified(&marker), modified(&lock)), (Some(m), Some(l)) if m >= l);
    if fresh {
        return Ok(());
    }
    super::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
    )
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}
