//! The `[kiosk]` table, read only from the managed kiosk file: a gaming center's seat.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Config, Error, StoreKind};

/// A managed seat (`[kiosk]` in the system-wide kiosk file): a gaming center's shared PC.
///
/// ```toml
/// [kiosk]
/// idle_timeout = "10m"      # no input this long ends the seat session ("0": never)
/// idle_warning = "60s"      # the countdown shown before it does
/// max_session = "4h"        # the longest a seat session may last ("0": no limit)
/// allowed_apps = ["/opt/partner/launcher"]   # may ask the broker for tokens
/// session_apps = ["/opt/center/seat-agent"]  # may end the seat session (`end_session`)
/// browser = "chromium"      # or "edge", "chrome", "firefox", "system", or a command
///                           # (default: Chromium on Linux; Edge, else Chrome, on Windows)
/// device_flow = true        # offer scan-to-sign-in where the provider supports it
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Kiosk {
    /// A seat session ends after this long without input; `None`: never.
    pub idle_timeout: Option<std::time::Duration>,
    /// How long before the idle end the warning shows.
    pub idle_warning: std::time::Duration,
    /// A seat session ends after this long whatever happens; `None`: never.
    pub max_session: Option<std::time::Duration>,
    /// Programs (by path) the broker serves on the seat without asking.
    pub allowed_apps: Vec<String>,
    /// Programs (by path) that may end the seat session through the broker.
    pub session_apps: Vec<String>,
    /// The browser sign-ins open in.
    pub browser: SeatBrowser,
    /// Scan-to-sign-in (the device flow) is offered where the provider supports it.
    pub device_flow: bool,
}

/// The browser a seat signs in with: started by Lanyard with a profile made for the seat
/// session and deleted after it.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatBrowser {
    /// Chromium, Chrome or Edge: `--user-data-dir=PROFILE`, and `--incognito` (Edge:
    /// `--inprivate`). The first of `commands` that can be started (distributions spell
    /// the same browser differently; on Windows these are installed paths).
    Chromium {
        /// The commands to try, in order.
        commands: Vec<String>,
    },
    /// Firefox: `-profile PROFILE -private-window`.
    Firefox {
        /// The commands to try, in order.
        commands: Vec<String>,
    },
    /// The system browser (`$BROWSER`, xdg-open): cookies outlive the seat session there.
    System,
}

impl Kiosk {
    /// The managed kiosk file: `$LANYARD_KIOSK_CONFIG`, else the platform's system-wide
    /// place (`/etc/lanyard/kiosk.toml`; macOS `/Library/Application Support/Lanyard`;
    /// Windows `%ProgramData%\\Lanyard`). Kiosk mode is on when this file exists.
    pub fn path() -> PathBuf {
        if let Some(path) = std::env::var_os("LANYARD_KIOSK_CONFIG") {
            return PathBuf::from(path);
        }
        crate::platform::managed_dir().join("kiosk.toml")
    }

    /// The kiosk settings, if kiosk mode is on: the managed kiosk file, and on Windows the
    /// policy under `HKLM\SOFTWARE\Policies\Lanyard` (see [`Kiosk::load_with`]). Its
    /// accounts are the only ones offered, each forced to memory-only storage and a fresh
    /// sign-in (`prompt=login`, `max_age=0`).
    pub fn load() -> Result<Option<Config>, Error> {
        Kiosk::load_from(&Kiosk::path())
    }

    /// [`Kiosk::load`] with the kiosk file at `path`.
    pub fn load_from(path: &Path) -> Result<Option<Config>, Error> {
        let policy = crate::platform::kiosk_policy().map_err(|source| Error::Read {
            path: PathBuf::from(crate::platform::POLICY.unwrap_or("the kiosk policy")),
            source,
        })?;
        Kiosk::load_with(path, policy)
    }

    /// The kiosk file at `path` and the registry's `policy` (as a kiosk file's table);
    /// kiosk mode is on when either exists. **The policy wins:** each of its `[kiosk]`
    /// values replaces the file's, and each of its accounts replaces the file's account
    /// of that name whole. The file is checked on its own first, so that its errors name
    /// its lines; what fails after the merge is named by its registry value.
    pub fn load_with(path: &Path, policy: Option<toml::Table>) -> Result<Option<Config>, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut config = match (text, policy) {
            (None, None) => return Ok(None),
            (Some(text), None) => Config::parse(path, &text)?,
            (text, Some(policy)) => {
                let source = crate::platform::POLICY.unwrap_or("the kiosk policy");
                let as_text = |table: &toml::Table| {
                    toml::to_string(table).map_err(|e| Error::Policy {
                        place: source.into(),
                        key: String::new(),
                        message: e.to_string(),
                    })
                };
                // The file alone first, so that its errors name its lines.
                let (label, mut merged) = match &text {
                    Some(text) => {
                        Config::parse(path, text)?;
                        let table: toml::Table =
                            toml::from_str(text).map_err(|e| Error::Policy {
                                place: path.display().to_string(),
                                key: String::new(),
                                message: e.to_string(),
                            })?;
                        (path, table)
                    }
                    None => (Path::new(source), toml::Table::new()),
                };
                overlay(&mut merged, policy);
                // What fails now is the policy's, or the policy's with the file's values.
                Config::parse(label, &as_text(&merged)?)
                    .map_err(|e| Error::from_policy(source, e))?
            }
        };
        if config.kiosk.is_none() {
            config.kiosk = Some(
                RawKiosk::default()
                    .into_kiosk()
                    .expect("the defaults are valid"),
            );
        }
        for account in config.accounts.values_mut() {
            account.store = StoreKind::Memory;
            account.prompt = Some("login".into());
            account.max_age = Some(0);
        }
        Ok(Some(config))
    }
}

/// The policy over the file: its `[kiosk]` values replace the file's, its accounts the
/// file's accounts of the same name.
fn overlay(file: &mut toml::Table, policy: toml::Table) {
    for (section, value) in policy {
        let toml::Value::Table(values) = value else {
            continue;
        };
        let into = file
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(into) = into {
            into.extend(values);
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKiosk {
    idle_timeout: Option<RawDuration>,
    idle_warning: Option<RawDuration>,
    max_session: Option<RawDuration>,
    #[serde(default)]
    allowed_apps: Vec<String>,
    #[serde(default)]
    session_apps: Vec<String>,
    browser: Option<String>,
    device_flow: Option<bool>,
}

/// Seconds, or a string with a unit: "90s", "10m", "4h".
#[derive(Clone, Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(u64),
    Text(String),
}

impl RawDuration {
    fn parse(&self) -> Result<std::time::Duration, String> {
        let secs = match self {
            RawDuration::Seconds(n) => *n,
            RawDuration::Text(text) => {
                let text = text.trim();
                let split = text
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(text.len());
                let (number, unit) = text.split_at(split);
                let n: u64 = number.parse().map_err(|_| {
                    format!("`{text}` is not a duration like \"90s\", \"10m\" or \"4h\"")
                })?;
                let scale = match unit.trim() {
                    "" | "s" => 1,
                    "m" | "min" => 60,
                    "h" => 3600,
                    _ => return Err(format!("`{text}`: the unit must be s, m or h")),
                };
                n * scale
            }
        };
        Ok(std::time::Duration::from_secs(secs))
    }
}

/// The kiosk defaults: a seat session ends after 10 idle minutes (with a minute's
/// warning) or 8 hours, whichever comes first.
const KIOSK_IDLE: u64 = 600;
const KIOSK_WARNING: u64 = 60;
const KIOSK_MAX: u64 = 8 * 3600;

impl RawKiosk {
    pub(super) fn into_kiosk(self) -> Result<Kiosk, (&'static str, String)> {
        let limit = |d: Option<RawDuration>, default: u64, field| match d {
            None => Ok(Some(std::time::Duration::from_secs(default))),
            Some(d) => d
                .parse()
                .map(|d| (!d.is_zero()).then_some(d))
                .map_err(|m| (field, m)),
        };
        let idle_timeout = limit(self.idle_timeout, KIOSK_IDLE, "idle_timeout")?;
        let max_session = limit(self.max_session, KIOSK_MAX, "max_session")?;
        let idle_warning =
            limit(self.idle_warning, KIOSK_WARNING, "idle_warning")?.unwrap_or_default();
        if let Some(idle) = idle_timeout
            && idle_warning >= idle
        {
            return Err(("idle_warning", "must be shorter than idle_timeout".into()));
        }
        for app in self.allowed_apps.iter().chain(&self.session_apps) {
            if !Path::new(app).is_absolute() {
                return Err((
                    "allowed_apps",
                    format!(
                        "`{app}` is not an absolute path; apps are named by their executable's full path"
                    ),
                ));
            }
        }
        let name = self.browser.as_deref().map(str::trim);
        let browser = match name {
            Some("system") => SeatBrowser::System,
            _ => match crate::platform::seat_browser_commands(name) {
                Some(commands) if name == Some("firefox") => SeatBrowser::Firefox { commands },
                Some(commands) => SeatBrowser::Chromium { commands },
                None => {
                    let command = name.unwrap_or_default();
                    let file = Path::new(command)
                        .file_name()
                        .map(|n| n.to_string_lossy().to_lowercase())
                        .unwrap_or_default();
                    let commands = vec![command.to_owned()];
                    if file.contains("firefox") {
                        SeatBrowser::Firefox { commands }
                    } else {
                        // Chromium, Chrome, Edge, Brave and the rest take Chromium's switches.
                        SeatBrowser::Chromium { commands }
                    }
                }
            },
        };
        Ok(Kiosk {
            idle_timeout,
            idle_warning,
            max_session,
            allowed_apps: self.allowed_apps,
            session_apps: self.session_apps,
            browser,
            device_flow: self.device_flow.unwrap_or(true),
        })
    }
}
