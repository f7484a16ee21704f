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
    (
        "oidc-agent-cli",
        "oidc-token, a real client of the oidc-agent socket (tests and bench)",
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
    (
        "libayatana-appindicator3-dev",
        "the tray library Tauri's bundler looks for when it builds the .deb",
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
    (
        "libglib2.0-bin",
        "gio, with which the test browser hands a private-scheme link to the app",
    ),
    (
        "python3",
        "runs the Python client (clients/python) in its tests",
    ),
    (
        "python3-venv",
        "the Python client's test environment (requests and httpx from PyPI)",
    ),
    (
        "openssh-client",
        "ssh, which `lanyard ssh` runs, and ssh-keygen for its test's throwaway keys",
    ),
    (
        "openssh-server",
        "sshd on 127.0.0.1, the remote host in `lanyard ssh`'s test (the test runs its own)",
    ),
];

/// Where a program that the tests, benches or xtask start comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// A Debian package in [`APT`].
    Apt(&'static str),
    /// An npm package installed into the repository (tests/idp, or target/tools).
    Npm(&'static str),
    /// A crate installed with `cargo install` into target/tools.
    Cargo(&'static str),
    /// Part of every Debian and Ubuntu system: the reason says which essential or
    /// required package has it.
    Base(&'static str),
    /// Built from this workspace.
    Built,
}

/// Every program the tests, benches and xtask start, by the name they start it with, and
/// where it comes from. `programs_started_are_all_provided` (below) finds each program
/// the code starts and fails for any not listed here; listed packages must be in [`APT`].
pub const PROGRAMS: &[(&str, Source)] = &[
    ("chromium", Source::Apt("chromium")),
    ("firefox-esr", Source::Apt("firefox-esr")),
    ("gnome-keyring-daemon", Source::Apt("gnome-keyring")),
    ("dbus-run-session", Source::Apt("dbus")),
    ("dbus-daemon", Source::Apt("dbus")),
    ("dbus-send", Source::Apt("dbus")),
    ("secret-tool", Source::Apt("libsecret-tools")),
    ("openssl", Source::Apt("openssl")),
    ("node", Source::Apt("nodejs")),
    ("npm", Source::Apt("npm")),
    ("git", Source::Apt("git")),
    ("kubectl", Source::Apt("kubernetes-client")),
    ("oidc-token", Source::Apt("oidc-agent-cli")),
    ("oidc-agent", Source::Apt("oidc-agent-cli")),
    ("oidc-gen", Source::Apt("oidc-agent-cli")),
    ("WebKitWebDriver", Source::Apt("webkit2gtk-driver")),
    ("Xvfb", Source::Apt("xvfb")),
    ("gio", Source::Apt("libglib2.0-bin")),
    ("xdg-mime", Source::Apt("xdg-utils")),
    ("update-desktop-database", Source::Apt("desktop-file-utils")),
    ("tauri-driver", Source::Cargo("tauri-driver")),
    ("tauri", Source::Npm("@tauri-apps/cli")),
    ("python3", Source::Apt("python3")),
    ("ssh", Source::Apt("openssh-client")),
    ("ssh-keygen", Source::Apt("openssh-client")),
    ("sshd", Source::Apt("openssh-server")),
    ("lanyard", Source::Built),
    ("lanyard-desktop", Source::Built),
    ("sh", Source::Base("dash, Debian's /bin/sh (essential)")),
    ("true", Source::Base("coreutils (essential)")),
    ("id", Source::Base("coreutils (essential)")),
    ("uname", Source::Base("coreutils (essential)")),
    (
        "script",
        Source::Base("bsdutils (essential), util-linux's: a terminal for a command"),
    ),
    ("timeout", Source::Base("coreutils (essential)")),
    ("mkfifo", Source::Base("coreutils (essential)")),
    ("setpriv", Source::Base("util-linux (essential)")),
    ("tar", Source::Base("tar (essential)")),
    ("perl", Source::Base("perl-base (essential)")),
    ("dpkg-query", Source::Base("dpkg (essential)")),
    ("dpkg-deb", Source::Base("dpkg (essential)")),
    (
        "apt-get",
        Source::Base("apt (required: every Debian and Ubuntu system has it)"),
    ),
    (
        "apt-cache",
        Source::Base("apt (required: every Debian and Ubuntu system has it)"),
    ),
    ("dpkg", Source::Base("dpkg (essential)")),
    // The Windows lane (`cargo xtask windows`), whose packages are windows::APT.
    ("cargo", Source::Apt("cargo-web")),
    (
        "x86_64-w64-mingw32-gcc",
        Source::Apt("gcc-mingw-w64-x86-64"),
    ),
    (
        "x86_64-w64-mingw32-strip",
        Source::Apt("binutils-mingw-w64-x86-64"),
    ),
    ("wine64", Source::Apt("wine64")),
    ("wineserver", Source::Apt("libwine")),
    // The Windows installer.
    ("makensis", Source::Apt("nsis")),
    // The macOS type-check (`cargo xtask macos`), whose packages are macos::APT.
    ("clang", Source::Apt("clang")),
];

/// tauri-driver's version, and where it is installed (outside the user's cargo bin).
const TAURI_DRIVER: &str = "^2";
pub const TOOLS: &str = "target/tools";

pub fn run() -> anyhow::Result<()> {
    apt()?;
    npm()?;
    tauri_driver()?;
    python()
}

/// PyPI packages of the Python client's tests (the HTTP libraries its auth class serves,
/// and setuptools, which builds the client from its pyproject.toml as pip would publish
/// it) and of the cloud credential tests.
const PYTHON_PACKAGES: &[&str] = &[
    "requests==2.34.2",
    "httpx==0.28.1",
    "setuptools==84.2.1",
    // The AWS CLI and moto's STS server, for `lanyard aws-credentials`.
    "awscli==1.46.3",
    "moto[server]==5.2.5",
];
/// The Python client's test environment (a venv of Debian's Python).
pub const PYTHON: &str = "target/python";

/// The venv in target/python with [`PYTHON_PACKAGES`], made when missing or when the list
/// changed.
pub fn python() -> anyhow::Result<()> {
    let venv = super::root().join(PYTHON);
    let marker = venv.join("lanyard-packages");
    let wanted = PYTHON_PACKAGES.join("\n");
    if venv.join("bin/python").exists()
        && std::fs::read_to_string(&marker).is_ok_and(|had| had == wanted)
    {
        return Ok(());
    }
    super::run(
        Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .context("making the Python client's test environment")?;
    super::run(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PYTHON_PACKAGES),
    )
    .context("installing the Python client's test packages from PyPI")?;
    std::fs::write(&marker, wanted)?;
    Ok(())
}

/// `cargo xtask deps --list`: each program the tests, benches and xtask start, and what
/// provides it.
pub fn list() {
    for (program, source) in PROGRAMS {
        let from = match source {
            Source::Apt(package) => format!("Debian package {package}"),
            Source::Npm(package) => format!("npm package {package} (in the repository)"),
            Source::Cargo(krate) => format!("crate {krate} (cargo install, into {TOOLS})"),
            Source::Base(why) => format!("the base system: {why}"),
            Source::Built => "this workspace".to_owned(),
        };
        println!("{program:<24} {from}");
    }
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
    let all: Vec<&str> = APT.iter().map(|(p, _)| *p).collect();
    apt_packages(&all)
}

/// Installs those of `packages` that are missing (as root; else says how).
pub fn apt_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
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

#[cfg(test)]
mod tests {
    //! Every program the tests, benches and xtask start is provided by `cargo xtask deps`
    //! or by the base system: found in the code, not remembered by a developer.

    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::{APT, PROGRAMS, Source};

    /// The programs the code starts by name: `Command::new("…")` in Rust, `spawn`,
    /// `execFile…` and `executablePath` in the test scripts, and the scripts' shebangs.
    fn started() -> BTreeSet<(String, PathBuf)> {
        let root = super::super::root();
        let mut found = BTreeSet::new();
        for dir in ["tests", "benches", "xtask/src"] {
            for file in files(&root.join(dir)) {
                let Ok(mut text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                // This file's own tests name programs as examples.
                if file.ends_with("xtask/src/deps.rs")
                    && let Some(tests) = text.find("\n#[cfg(test)]")
                {
                    text.truncate(tests);
                }
                let needles: &[&str] = match file.extension().and_then(|e| e.to_str()) {
                    Some("rs") => &["Command::new("],
                    Some("mjs" | "js") => &[
                        "spawn(",
                        "spawnSync(",
                        "execFile(",
                        "execFileSync(",
                        "executablePath:",
                    ],
                    _ => continue,
                };
                let at = |name: String| (name, file.strip_prefix(&root).unwrap().to_owned());
                for needle in needles {
                    for (i, _) in text.match_indices(needle) {
                        if let Some(name) = program(&text[i + needle.len()..]) {
                            found.insert(at(name));
                        }
                    }
                }
                if let Some(interpreter) = text.strip_prefix("#!/usr/bin/env ") {
                    let name = interpreter.split_whitespace().next().unwrap_or_default();
                    found.insert(at(name.to_owned()));
                }
            }
        }
        found
    }

    /// The program an argument list starts with, when it is a string literal (or the
    /// literal after `??`, a default); `None` for a variable.
    fn program(args: &str) -> Option<String> {
        let arg = args.split([',', ')', '\n']).next()?.trim();
        let arg = arg.rsplit_once("?? ").map_or(arg, |(_, default)| default);
        if let Some(bin) = arg.strip_prefix("env!(\"CARGO_BIN_EXE_") {
            return Some(bin.trim_end_matches('"').to_owned());
        }
        let quote = arg.chars().next().filter(|c| matches!(c, '"' | '\''))?;
        let literal = arg[1..].split(quote).next()?;
        let name = literal.rsplit('/').next()?;
        (!name.is_empty()).then(|| name.to_owned())
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            if path.is_dir() {
                out.extend(files(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    fn source(program: &str) -> Option<Source> {
        PROGRAMS
            .iter()
            .find(|(name, _)| *name == program)
            .map(|(_, source)| *source)
    }

    #[test]
    fn the_scan_reads_calls_as_written() {
        assert_eq!(program("\"kubectl\")").as_deref(), Some("kubectl"));
        assert_eq!(program("'/bin/true', [])").as_deref(), Some("true"));
        assert_eq!(
            program("process.env.FIREFOX ?? '/usr/bin/firefox-esr',").as_deref(),
            Some("firefox-esr")
        );
        assert_eq!(
            program("env!(\"CARGO_BIN_EXE_lanyard\"))").as_deref(),
            Some("lanyard")
        );
        assert_eq!(program("driver)"), None);
        assert_eq!(program("&words[0])"), None);
    }

    #[test]
    fn programs_started_are_all_provided() {
        let started = started();
        for name in ["node", "oidc-token", "chromium", "Xvfb", "secret-tool"] {
            assert!(
                started.iter().any(|(n, _)| n == name),
                "the scan no longer finds {name}: it reads fewer calls than it should"
            );
        }
        let missing: Vec<String> = started
            .iter()
            .filter(|(name, _)| source(name).is_none())
            .map(|(name, file)| format!("{name} (started in {})", file.display()))
            .collect();
        assert!(
            missing.is_empty(),
            "add each to deps::PROGRAMS, with the package that provides it (and that package \
             to deps::APT), or the reason every Debian system has it:\n  {}",
            missing.join("\n  ")
        );
        for (name, source) in PROGRAMS {
            if let Source::Apt(package) = source {
                assert!(
                    APT.iter().any(|(p, _)| p == package)
                        || super::super::windows::APT.contains(package)
                        || super::super::macos::APT.contains(package),
                    "{name} comes from {package}, which `cargo xtask deps` does not install"
                );
            }
        }
    }

    /// On a Debian machine, each listed package really has the program, and each base
    /// program belongs to an essential or required package.
    #[test]
    fn the_packages_named_have_the_programs() {
        if super::which("dpkg-query").is_none() {
            eprintln!("not a Debian system: the package contents cannot be checked here");
            return;
        }
        let mut wrong = Vec::new();
        for (name, source) in PROGRAMS {
            match source {
                Source::Apt(package) if super::installed(package) => {
                    // The package's own files, or those of a package it depends on (Debian
                    // 12 moved dbus's programs into dbus-daemon and dbus-bin, which dbus
                    // pulls in; Ubuntu 22.04's dbus has them itself).
                    let has = [*package]
                        .into_iter()
                        .chain(depends(package).iter().map(String::as_str))
                        .any(|p| has_program(p, name));
                    if !has {
                        wrong.push(format!("{package} has no {name}"));
                    }
                }
                Source::Base(why) => {
                    let Some(path) = super::which(name) else {
                        wrong.push(format!("{name} ({why}) is not on this system"));
                        continue;
                    };
                    let owner = [path.clone(), unmerged(&path)].into_iter().find_map(|p| {
                        let out = Command::new("dpkg-query").arg("-S").arg(&p).output().ok()?;
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        // "diversion by dash from: /bin/sh" lines name no owner.
                        text.lines()
                            .find(|l| !l.starts_with("diversion by"))
                            .and_then(|l| l.split(':').next())
                            .map(str::to_owned)
                    });
                    let Some(owner) = owner else {
                        wrong.push(format!("no package has {}", path.display()));
                        continue;
                    };
                    let fields = Command::new("dpkg-query")
                        .args(["-W", "-f=${Essential} ${Priority}", &owner])
                        .output()
                        .unwrap();
                    let fields = String::from_utf8_lossy(&fields.stdout).into_owned();
                    if !(fields.starts_with("yes") || fields.ends_with("required")) {
                        wrong.push(format!(
                            "{name} is from {owner} ({fields}), which a base system may lack"
                        ));
                    }
                }
                _ => {}
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Whether installed package `package` has `name` in a bin directory.
    fn has_program(package: &str, name: &str) -> bool {
        let Ok(out) = Command::new("dpkg-query").args(["-L", package]).output() else {
            return false;
        };
        // In a bin directory (or as the variant Debian's alternatives link the name to),
        // or a loader such as Wine's /usr/lib/wine/wine64.
        String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            l.rsplit_once('/').is_some_and(|(dir, file)| {
                let named = file == name || file.starts_with(&format!("{name}-"));
                named && (dir.ends_with("bin") || dir.starts_with("/usr/lib"))
            })
        })
    }

    /// The packages `package` depends on directly, by name.
    fn depends(package: &str) -> Vec<String> {
        let Ok(out) = Command::new("dpkg-query")
            .args(["-W", "-f=${Depends}", package])
            .output()
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split([',', '|'])
            .filter_map(|d| d.split_whitespace().next())
            .map(|d| d.split(':').next().unwrap_or(d).to_owned())
            .collect()
    }

    /// `/usr/bin/sh` as dpkg knows it on a merged-/usr system: `/bin/sh`.
    fn unmerged(path: &Path) -> PathBuf {
        path.strip_prefix("/usr")
            .map_or_else(|_| path.to_owned(), |p| Path::new("/").join(p))
    }
}
