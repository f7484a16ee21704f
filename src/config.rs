//! The accounts file: which providers to sign in with, and how.
//!
//! The file is TOML, found at `$LANYARD_CONFIG` or else `config.toml` in the platform's
//! config directory. It is parsed once into [`Config`] and validated whole: a bad value is
//! reported with the file, line and key at fault. This module reads the file and nothing
//! else; it never holds a secret (client secrets live in the keychain, see `store`).
//!
//! ```toml
//! [accounts.work]
//! issuer = "https://login.example.com"
//! client_id = "lanyard"
//! scopes = "openid profile email offline_access"   # the default
//! redirect = "loopback"                             # or "loopback:PORT", or a private-use
//!                                                   # scheme URI: "dev.lanyard:/callback"
//! extra_params = { center_uuid = "…" }
//! prompt = "login"
//! max_age = 3600
//! store = "keychain"                                # or "memory"
//! response_type = "code"                            # or "id_token" (no access token)
//! response_mode = "query"                           # or "form_post", "fragment"
//! resources = ["https://api.example.com"]           # RFC 8707, for `token --audience`
//! git_hosts = ["git.example.com"]                   # where `git-credential` answers (https)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use url::Url;

pub use crate::settings::{ClientAuth, ResponseMode, ResponseType};

use crate::preset::Preset;

/// Scopes asked for when an account names none.
pub const DEFAULT_SCOPES: &str = "openid profile email offline_access";

/// Authorization request parameters Lanyard sets itself; `extra_params` may not override them.
const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "redirect_uri",
    "response_mode",
    "response_type",
    "scope",
    "state",
    "prompt",
    "max_age",
    "resource",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        /// The dotted key at fault, e.g. `accounts.work.issuer`.
        key: String,
        message: String,
    },
    #[error(
        "no account named `{name}` in {path}; add a section [accounts.{name}] with `issuer` and `client_id`"
    )]
    UnknownAccount { name: String, path: PathBuf },
    #[error(
        "cannot find a config directory for this user; set LANYARD_CONFIG to the accounts file"
    )]
    NoConfigDir,
}

/// The whole accounts file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file is (or would be); named in error messages.
    pub path: PathBuf,
    pub accounts: BTreeMap<String, Account>,
    /// The `[kiosk]` table: only in the managed kiosk file (see [`Kiosk::path`]).
    pub kiosk: Option<Kiosk>,
}

/// A managed seat (`[kiosk]` in the system-wide kiosk file): a gaming center's shared PC.
///
/// ```toml
/// [kiosk]
/// idle_timeout = "10m"      # no input this long ends the seat session ("0": never)
/// idle_warning = "60s"      # the countdown shown before it does
/// max_session = "4h"        # the longest a seat session may last ("0": no limit)
/// allowed_apps = ["/opt/partner/launcher"]   # may ask the broker for tokens
/// session_apps = ["/opt/center/seat-agent"]  # may end the seat session (`end_session`)
/// browser = "chromium"      # or "firefox", "system", or a command: "/usr/bin/chromium"
/// device_flow = true        # offer scan-to-sign-in where the provider supports it
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Kiosk {
    pub idle_timeout: Option<std::time::Duration>,
    pub idle_warning: std::time::Duration,
    pub max_session: Option<std::time::Duration>,
    pub allowed_apps: Vec<String>,
    pub session_apps: Vec<String>,
    pub browser: SeatBrowser,
    pub device_flow: bool,
}

/// The browser a seat signs in with: started by Lanyard with a profile made for the seat
/// session and deleted after it.
#[derive(Debug, Clone, PartialEq)]
pub enum SeatBrowser {
    /// Chromium or Chrome: `--user-data-dir=PROFILE --incognito`. The first of `commands`
    /// that can be started (distributions spell the same browser differently).
    Chromium { commands: Vec<String> },
    /// Firefox: `-profile PROFILE -private-window`.
    Firefox { commands: Vec<String> },
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

    /// The kiosk file, if kiosk mode is on: its accounts are the only ones offered, each
    /// forced to memory-only storage and a fresh sign-in (`prompt=login`, `max_age=0`).
    pub fn load() -> Result<Option<Config>, Error> {
        Kiosk::load_from(&Kiosk::path())
    }

    /// [`Kiosk::load`] from `path`.
    pub fn load_from(path: &Path) -> Result<Option<Config>, Error> {
        let path = path.to_owned();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path, source }),
        };
        let mut config = Config::parse(&path, &text)?;
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

/// One `[accounts.NAME]` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub name: String,
    /// Compared byte for byte with the provider's discovery document.
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub redirect: Redirect,
    pub extra_params: BTreeMap<String, String>,
    pub prompt: Option<String>,
    pub max_age: Option<u64>,
    pub store: StoreKind,
    /// How to authenticate at the token endpoint; `None` means follow discovery.
    pub client_auth: Option<ClientAuth>,
    pub response_type: ResponseType,
    pub response_mode: ResponseMode,
    /// Also ask the provider's introspection endpoint about the ID token (Hellō).
    pub introspect: bool,
    /// The preset the account was made from, for display and branding.
    pub preset: Option<String>,
    /// RFC 8707 resource indicators asked for at sign-in; tokens for one of them (an
    /// audience) come from a refresh that names it.
    pub resources: Vec<String>,
    /// The git hosts (`host` or `host:port`, lowercase) that `lanyard git-credential`
    /// gives the account's token to, over https only. Empty: none.
    pub git_hosts: Vec<String>,
}

/// Where the provider sends the browser back to (RFC 8252 section 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// `http://127.0.0.1:PORT/callback`; port 0 asks the OS for a free one.
    Loopback { port: u16 },
    /// A private-use URI scheme (RFC 8252 section 7.1), e.g. `dev.lanyard:/callback`: the
    /// OS hands the URL to the desktop app registered for the scheme. Sign-out comes back
    /// to the same scheme with the path `/logged-out`.
    Scheme { uri: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS keychain; non-secret state in the data directory.
    Keychain,
    /// Process memory only; nothing is written anywhere.
    Memory,
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redirect::Loopback { port: 0 } => f.write_str("loopback"),
            Redirect::Loopback { port } => write!(f, "loopback:{port}"),
            Redirect::Scheme { uri } => f.write_str(uri),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Keychain => "keychain",
            StoreKind::Memory => "memory",
        })
    }
}

impl Config {
    /// The path of the accounts file: `$LANYARD_CONFIG`, else the platform default.
    pub fn default_path() -> Result<PathBuf, Error> {
        if let Some(path) = std::env::var_os("LANYARD_CONFIG") {
            return Ok(PathBuf::from(path));
        }
        let dirs = directories::ProjectDirs::from("", "", "lanyard").ok_or(Error::NoConfigDir)?;
        Ok(dirs.config_dir().join("config.toml"))
    }

    /// Reads and validates the file. A missing file is an empty config.
    pub fn load(path: &Path) -> Result<Config, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let config = Config::parse(path, &text)?;
                if config.kiosk.is_some() {
                    // A player must not be able to turn kiosk mode on or off, nor loosen it.
                    let (line, column) = line_column(&text, text.find("kiosk").unwrap_or(0));
                    return Err(Error::Invalid {
                        path: path.to_owned(),
                        line,
                        column,
                        key: "kiosk".into(),
                        message: format!(
                            "kiosk settings are read only from the managed kiosk file ({})",
                            Kiosk::path().display()
                        ),
                    });
                }
                Ok(config)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config {
                path: path.to_owned(),
                accounts: BTreeMap::new(),
                kiosk: None,
            }),
            Err(source) => Err(Error::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, Error> {
        let at = |span: Option<Range<usize>>, key: Option<String>, message: String| {
            let offset = span.map_or(0, |s| s.start);
            let (line, column) = line_column(text, offset);
            Error::Invalid {
                path: path.to_owned(),
                line,
                column,
                key: key.unwrap_or_else(|| key_at(text, offset)),
                message,
            }
        };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| at(e.span(), None, e.message().trim().to_owned()))?;
        let mut accounts = BTreeMap::new();
        for (name, raw) in raw.accounts {
            let key = |field: &str| Some(format!("accounts.{}.{field}", name.get_ref()));
            if !valid_name(name.get_ref()) {
                return Err(at(
                    Some(name.span()),
                    Some(format!("accounts.{}", name.get_ref())),
                    "account names use letters, digits, '.', '_' and '-' only".into(),
                ));
            }
            let issuer = raw.issuer.get_ref().clone();
            check_issuer(&issuer).map_err(|m| at(Some(raw.issuer.span()), key("issuer"), m))?;
            if raw.client_id.get_ref().is_empty() {
                return Err(at(
                    Some(raw.client_id.span()),
                    key("client_id"),
                    "must not be empty".into(),
                ));
            }
            let scopes = match &raw.scopes {
                None => DEFAULT_SCOPES.split(' ').map(str::to_owned).collect(),
                Some(s) => {
                    let scopes = s.get_ref().clone().into_vec();
                    if !scopes.iter().any(|s| s == "openid") {
                        return Err(at(
                            Some(s.span()),
                            key("scopes"),
                            "must include `openid`".into(),
                        ));
                    }
                    scopes
                }
            };
            let redirect = match &raw.redirect {
                None => Redirect::Loopback { port: 0 },
                Some(r) => parse_redirect(r.get_ref())
                    .map_err(|m| at(Some(r.span()), key("redirect"), m))?,
            };
            for param in raw.extra_params.keys() {
                if RESERVED_PARAMS.contains(&param.get_ref().as_str()) {
                    return Err(at(
                        Some(param.span()),
                        key(&format!("extra_params.{}", param.get_ref())),
                        "Lanyard sets this parameter itself; use the account's own key where there is one".into(),
                    ));
                }
            }
            let response_type = raw.response_type.unwrap_or(ResponseType::Code);
            let response_mode = match (&raw.response_mode, response_type) {
                (None, ResponseType::Code) => ResponseMode::Query,
                (None, ResponseType::IdToken) => ResponseMode::FormPost,
                (Some(m), ResponseType::IdToken) if *m.get_ref() == ResponseMode::Query => {
                    return Err(at(
                        Some(m.span()),
                        key("response_mode"),
                        "an ID token must not travel in a query string; use `form_post` or `fragment`".into(),
                    ));
                }
                (Some(m), _) => *m.get_ref(),
            };
            if let Some(preset) = &raw.preset
                && crate::preset::find(preset.get_ref()).is_none()
            {
                return Err(at(
                    Some(preset.span()),
                    key("preset"),
                    format!("unknown preset; known: {}", crate::preset::ids()),
                ));
            }
            let mut resources = Vec::new();
            if let Some(list) = &raw.resources {
                for resource in list.get_ref() {
                    let valid = Url::parse(resource).is_ok_and(|u| u.fragment().is_none());
                    if !valid {
                        return Err(at(
                            Some(list.span()),
                            key("resources"),
                            format!(
                                "`{resource}` is not an absolute URI without a fragment (RFC 8707)"
                            ),
                        ));
                    }
                    resources.push(resource.clone());
                }
            }
            let mut git_hosts = Vec::new();
            if let Some(list) = &raw.git_hosts {
                for host in list.get_ref() {
                    let valid = !host.is_empty()
                        && Url::parse(&format!("https://{host}/"))
                            .is_ok_and(|u| u.path() == "/" && u.username().is_empty());
                    if !valid || host.contains(['/', '@', '?', '#']) {
                        return Err(at(
                            Some(list.span()),
                            key("git_hosts"),
                            format!("`{host}` is not a host name (with an optional :port)"),
                        ));
                    }
                    git_hosts.push(host.to_ascii_lowercase());
                }
            }
            let name = name.into_inner();
            accounts.insert(
                name.clone(),
                Account {
                    name,
                    issuer,
                    client_id: raw.client_id.into_inner(),
                    scopes,
                    redirect,
                    extra_params: raw
                        .extra_params
                        .into_iter()
                        .map(|(k, v)| (k.into_inner(), v))
                        .collect(),
                    prompt: raw.prompt,
                    max_age: raw.max_age,
                    store: raw.store.unwrap_or(StoreKind::Keychain),
                    client_auth: raw.client_auth,
                    response_type,
                    response_mode,
                    introspect: raw.introspect,
                    preset: raw.preset.map(Spanned::into_inner),
                    resources,
                    git_hosts,
                },
            );
        }
        let kiosk = match raw.kiosk {
            None => None,
            Some(k) => {
                let span = k.span();
                Some(k.into_inner().into_kiosk().map_err(|(field, m)| {
                    // Point at the field's line within the table.
                    let table = text.find("[kiosk]").unwrap_or(span.start);
                    let start = text[table..].find(field).map_or(table, |i| table + i);
                    at(Some(start..start), Some(format!("kiosk.{field}")), m)
                })?)
            }
        };
        Ok(Config {
            path: path.to_owned(),
            accounts,
            kiosk,
        })
    }

    pub fn account(&self, name: &str) -> Result<&Account, Error> {
        self.accounts
            .get(name)
            .ok_or_else(|| Error::UnknownAccount {
                name: name.to_owned(),
                path: self.path.clone(),
            })
    }
}

/// A new `[accounts.NAME]` section, as `lanyard accounts add` writes it.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub preset: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub scopes: Option<String>,
    pub port: Option<u16>,
    pub client_auth: Option<ClientAuth>,
    pub response_type: Option<ResponseType>,
    pub response_mode: Option<ResponseMode>,
    pub extra_params: BTreeMap<String, String>,
}

impl NewAccount {
    /// The account a user gets from `preset`; `issuer` overrides the preset's (a
    /// staging environment, or a test emulation of the provider).
    pub fn from_preset(
        preset: &Preset,
        name: &str,
        client_id: &str,
        issuer: Option<&str>,
        center: Option<&str>,
        port: Option<u16>,
    ) -> NewAccount {
        let mut extra_params = std::collections::BTreeMap::new();
        if let (Some(param), Some(center)) = (preset.center_param, center) {
            extra_params.insert(param.to_owned(), center.to_owned());
        }
        NewAccount {
            name: name.to_owned(),
            preset: Some(preset.id.to_owned()),
            issuer: issuer.unwrap_or(preset.issuer).to_owned(),
            client_id: client_id.to_owned(),
            scopes: Some(preset.default_scopes.to_owned()),
            port: port.or(preset.fixed_port),
            client_auth: Some(preset.client_auth),
            response_type: (preset.response_type != ResponseType::Code)
                .then_some(preset.response_type),
            response_mode: (preset.response_mode != ResponseMode::Query)
                .then_some(preset.response_mode),
            extra_params,
        }
    }

    fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = format!("\n[accounts.{}]\n", self.name);
        if let Some(preset) = &self.preset {
            out += &format!("preset = {}\n", q(preset));
        }
        out += &format!(
            "issuer = {}\nclient_id = {}\n",
            q(&self.issuer),
            q(&self.client_id)
        );
        if let Some(scopes) = &self.scopes {
            out += &format!("scopes = {}\n", q(scopes));
        }
        if let Some(port) = self.port {
            out += &format!("redirect = \"loopback:{port}\"\n");
        }
        if let Some(auth) = self.client_auth {
            let auth = match auth {
                ClientAuth::None => "none",
                ClientAuth::ClientSecretBasic => "client_secret_basic",
                ClientAuth::ClientSecretPost => "client_secret_post",
            };
            out += &format!("client_auth = \"{auth}\"\n");
        }
        if let Some(t) = self.response_type {
            out += &format!("response_type = \"{}\"\n", t.as_str());
        }
        if let Some(m) = self.response_mode {
            out += &format!("response_mode = \"{}\"\n", m.as_str());
        }
        if !self.extra_params.is_empty() {
            let params: Vec<String> = self
                .extra_params
                .iter()
                .map(|(k, v)| format!("{k} = {}", q(v)))
                .collect();
            out += &format!("extra_params = {{ {} }}\n", params.join(", "));
        }
        out
    }
}

impl Config {
    /// Appends an account to the file at `path` (created if missing), after checking that
    /// the whole file, with it, is valid. The write is atomic: all or nothing.
    pub fn add_account(path: &Path, account: &NewAccount) -> Result<Config, Error> {
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let before = Config::parse(path, &existing)?;
        if before.accounts.contains_key(&account.name) {
            return Err(Error::Invalid {
                path: path.to_owned(),
                line: 1,
                column: 1,
                key: format!("accounts.{}", account.name),
                message:
                    "an account with this name exists already; choose another name or edit the file"
                        .into(),
            });
        }
        Config::rewrite(path, &format!("{}{}", existing, account.to_toml()))
    }

    /// Removes `[accounts.NAME]` (and its sub-tables) from the file at `path`, keeping
    /// every other line as it was. The result must parse; the write is atomic.
    pub fn remove_account(path: &Path, name: &str) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let before = Config::parse(path, &text)?;
        before.account(name)?;
        Config::rewrite(path, &without_section(&text, name))
    }

    /// Replaces the file with `text`, if it is a valid accounts file: all or nothing.
    fn rewrite(path: &Path, text: &str) -> Result<Config, Error> {
        let config = Config::parse(path, text)?;
        write_atomic(path, text).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(config)
    }
}

/// `text` less the lines of `[accounts.NAME]` and `[accounts.NAME.*]`.
fn without_section(text: &str, name: &str) -> String {
    let own = |header: &str| {
        let inner = header.trim_matches(|c| c == '[' || c == ']').trim();
        let inner = inner.replace(['"', '\''], "");
        inner == format!("accounts.{name}") || inner.starts_with(&format!("accounts.{name}."))
    };
    let mut out = String::new();
    let mut skipping = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            let header = trimmed.split('#').next().unwrap_or("").trim_end();
            skipping = own(header);
        }
        if !skipping {
            out.push_str(line);
        }
    }
    out
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".config.toml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    accounts: BTreeMap<Spanned<String>, RawAccount>,
    kiosk: Option<Spanned<RawKiosk>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKiosk {
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
    fn into_kiosk(self) -> Result<Kiosk, (&'static str, String)> {
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
        let browser = match self.browser.as_deref().map(str::trim) {
            None | Some("chromium") => SeatBrowser::Chromium {
                commands: names(&["chromium", "chromium-browser"]),
            },
            Some("chrome") => SeatBrowser::Chromium {
                commands: names(&["google-chrome", "google-chrome-stable"]),
            },
            Some("firefox") => SeatBrowser::Firefox {
                commands: names(&["firefox", "firefox-esr"]),
            },
            Some("system") => SeatBrowser::System,
            Some(command) => {
                let name = Path::new(command)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                let commands = vec![command.to_owned()];
                if name.contains("firefox") {
                    SeatBrowser::Firefox { commands }
                } else {
                    // Chromium, Chrome, Edge, Brave and the rest take Chromium's switches.
                    SeatBrowser::Chromium { commands }
                }
            }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    issuer: Spanned<String>,
    client_id: Spanned<String>,
    scopes: Option<Spanned<Scopes>>,
    redirect: Option<Spanned<String>>,
    #[serde(default)]
    extra_params: BTreeMap<Spanned<String>, String>,
    prompt: Option<String>,
    max_age: Option<u64>,
    store: Option<StoreKind>,
    client_auth: Option<ClientAuth>,
    response_type: Option<ResponseType>,
    response_mode: Option<Spanned<ResponseMode>>,
    #[serde(default)]
    introspect: bool,
    preset: Option<Spanned<String>>,
    resources: Option<Spanned<Vec<String>>>,
    git_hosts: Option<Spanned<Vec<String>>>,
}

/// Scopes as one space-separated string or as an array.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::Text(s) => s.split_whitespace().map(str::to_owned).collect(),
            Scopes::List(v) => v,
        }
    }
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An issuer is an https URL (or http on a loopback host) with no query or fragment
/// (OpenID Connect Discovery 1.0, section 2).
pub fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = Url::parse(issuer).map_err(|e| format!("not a URL ({e})"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an issuer has no query or fragment".into());
    }
    crate::http::check_secure(&url)
}

fn parse_redirect(value: &str) -> Result<Redirect, String> {
    let expected = "expected `loopback`, `loopback:PORT` or a private-use scheme URI such as `dev.lanyard:/callback`";
    match value.split_once(':') {
        None if value == "loopback" => Ok(Redirect::Loopback { port: 0 }),
        Some(("loopback", port)) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Redirect::Loopback { port }),
            _ => Err(format!(
                "`{port}` is not a port number (1-65535); expected `loopback` or `loopback:PORT`"
            )),
        },
        Some((scheme, _)) if scheme.contains('.') => {
            // RFC 8252 section 7.1: a reverse domain name the app controls, one slash.
            let url = Url::parse(value).map_err(|e| format!("`{value}` is not a URI ({e})"))?;
            if url.fragment().is_some() || url.query().is_some() {
                return Err(format!(
                    "`{value}`: a redirect URI has no query or fragment"
                ));
            }
            if !url.path().starts_with('/') || url.host().is_some() {
                return Err(format!(
                    "`{value}`: write it as `{scheme}:/path` (RFC 8252 section 7.1: one slash, no host)"
                ));
            }
            Ok(Redirect::Scheme {
                uri: value.to_owned(),
            })
        }
        Some((scheme, _)) if scheme == "http" || scheme == "https" => Err(format!(
            "`{value}`: Lanyard chooses the loopback address itself; use `loopback` or `loopback:PORT`"
        )),
        Some((scheme, _)) => Err(format!(
            "`{scheme}` is not a private-use scheme: use a reverse domain name you control, such as `dev.lanyard:/callback`; {expected}"
        )),
        _ => Err(format!("unknown redirect `{value}`; {expected}")),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted key on the line holding `offset`, prefixed with the table it sits in, for
/// errors from the TOML parser itself, which point at a span but do not name the key.
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if line.starts_with('[') {
        return line
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_owned();
    }
    let key = line
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t,
        (None, _) => key.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each preset's issuer is one the accounts file accepts.
    #[test]
    fn every_preset_issuer_passes_the_issuer_check() {
        for p in crate::preset::PRESETS {
            assert!(check_issuer(p.issuer).is_ok(), "{}", p.id);
        }
    }

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(Path::new("/etc/lanyard.toml"), text)
    }

    fn check_err(text: &str, expected: &str) {
        let err = parse(text)
            .expect_err("config should be rejected")
            .to_string();
        assert_eq!(err, expected);
    }

    #[test]
    fn minimal_account_gets_defaults() {
        let c = parse(
            "[accounts.work]\nissuer = \"https://id.example.com/tenant\"\nclient_id = \"x\"\n",
        )
        .unwrap();
        let a = c.account("work").unwrap();
        assert_eq!(a.scopes, ["openid", "profile", "email", "offline_access"]);
        assert_eq!(a.redirect, Redirect::Loopback { port: 0 });
        assert_eq!(a.store, StoreKind::Keychain);
        assert_eq!(a.issuer, "https://id.example.com/tenant");
    }

    #[test]
    fn private_use_scheme_redirects() {
        let redirect = |r: &str| {
            parse(&format!(
                "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nredirect = \"{r}\"\n"
            ))
            .map(|c| c.account("a").unwrap().redirect.clone())
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            redirect("dev.lanyard:/callback"),
            Ok(Redirect::Scheme {
                uri: "dev.lanyard:/callback".into()
            })
        );
        for bad in [
            "dev.lanyard://host/callback",
            "dev.lanyard:/callback?x=1",
            "myapp:/callback",
            "https://example.com/cb",
        ] {
            assert!(redirect(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn removing_an_account_keeps_the_others_and_their_comments() {
        let text = "# mine\n[accounts.a]\nissuer = \"https://a.test\"\nclient_id = \"x\"\n\n\
                    [accounts.b]\nissuer = \"https://b.test\"\nclient_id = \"y\"\n\
                    [accounts.b.extra_params]\nfoo = \"1\"\n\
                    [accounts.bb]  # keep\nissuer = \"https://bb.test\"\nclient_id = \"z\"\n";
        let left = without_section(text, "b");
        assert_eq!(
            left,
            "# mine\n[accounts.a]\nissuer = \"https://a.test\"\nclient_id = \"x\"\n\n\
             [accounts.bb]  # keep\nissuer = \"https://bb.test\"\nclient_id = \"z\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::remove_account(&path, "b").unwrap();
        assert_eq!(config.accounts.keys().collect::<Vec<_>>(), ["a", "bb"]);
        assert!(matches!(
            Config::remove_account(&path, "b"),
            Err(Error::UnknownAccount { .. })
        ));
    }

    #[test]
    fn kiosk_table_with_durations_and_defaults() {
        // An absolute path on this platform.
        let game = if cfg!(windows) {
            r"C:\\Games\\game.exe"
        } else {
            "/opt/game"
        };
        let config = parse(&format!(
            "[kiosk]\nidle_timeout = \"90s\"\nidle_warning = 30\nmax_session = \"4h\"\nallowed_apps = [\"{game}\"]\nbrowser = \"/usr/bin/firefox-esr\"\n",
        ))
        .unwrap();
        let kiosk = config.kiosk.unwrap();
        assert_eq!(kiosk.idle_timeout, Some(std::time::Duration::from_secs(90)));
        assert_eq!(kiosk.idle_warning, std::time::Duration::from_secs(30));
        assert_eq!(
            kiosk.max_session,
            Some(std::time::Duration::from_secs(4 * 3600))
        );
        assert_eq!(kiosk.allowed_apps, [game.replace(r"\\", r"\")]);
        assert!(matches!(kiosk.browser, SeatBrowser::Firefox { .. }));
        assert!(kiosk.device_flow);
        let never = parse("[kiosk]\nidle_timeout = 0\nmax_session = \"0\"\n").unwrap();
        let never = never.kiosk.unwrap();
        assert_eq!((never.idle_timeout, never.max_session), (None, None));
        for (text, expected) in [
            (
                "[kiosk]\nidle_timeout = \"ten minutes\"\n",
                ":2:1: kiosk.idle_timeout: `ten minutes` is not a duration",
            ),
            (
                "[kiosk]\nidle_timeout = 60\nidle_warning = 60\n",
                ":3:1: kiosk.idle_warning: must be shorter than idle_timeout",
            ),
            (
                "[kiosk]\nallowed_apps = [\"game\"]\n",
                ":2:1: kiosk.allowed_apps: `game` is not an absolute path",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn a_players_accounts_file_cannot_hold_kiosk_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[kiosk]\nidle_timeout = 0\n").unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(
            err.contains(":1:2: kiosk: kiosk settings are read only from the managed kiosk file"),
            "{err}"
        );
    }

    #[test]
    fn full_account() {
        let c = parse(
            r#"
[accounts.seat]
issuer = "http://127.0.0.1:8080"
client_id = "kiosk"
scopes = ["openid", "group"]
redirect = "loopback:53682"
extra_params = { center_uuid = "c-1" }
prompt = "login"
max_age = 0
store = "memory"
client_auth = "client_secret_post"
"#,
        )
        .unwrap();
        let a = c.account("seat").unwrap();
        assert_eq!(a.scopes, ["openid", "group"]);
        assert_eq!(a.redirect, Redirect::Loopback { port: 53682 });
        assert_eq!(a.extra_params["center_uuid"], "c-1");
        assert_eq!(a.max_age, Some(0));
        assert_eq!(a.store, StoreKind::Memory);
        assert_eq!(a.client_auth, Some(ClientAuth::ClientSecretPost));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        check_err(
            "[accounts.a]\nissuer = \"http://id.example.com\"\nclient_id = \"x\"\n",
            "/etc/lanyard.toml:2:10: accounts.a.issuer: http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https",
        );
        check_err(
            "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nredirect = \"loopback:99999\"\n",
            "/etc/lanyard.toml:4:12: accounts.a.redirect: `99999` is not a port number (1-65535); expected `loopback` or `loopback:PORT`",
        );
        check_err(
            "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nscopes = \"profile\"\n",
            "/etc/lanyard.toml:4:10: accounts.a.scopes: must include `openid`",
        );
        check_err(
            "[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nextra_params = { state = \"s\" }\n",
            "/etc/lanyard.toml:4:18: accounts.a.extra_params.state: Lanyard sets this parameter itself; use the account's own key where there is one",
        );
    }

    #[test]
    fn parser_errors_name_the_key_too() {
        let err =
            parse("[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nmax_age = \"soon\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("/etc/lanyard.toml:4:11: accounts.a.max_age: "),
            "{err}"
        );
        let err =
            parse("[accounts.a]\nissuer = \"https://i\"\nclient_id = \"x\"\nscope = \"openid\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains(":4:1: accounts.a.scope: unknown field `scope`"),
            "{err}"
        );
        let err = parse("[accounts.a]\nissuer = \"https://i\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `client_id`"), "{err}");
        let err = parse("[accounts.a\nissuer = 1").unwrap_err().to_string();
        assert!(err.starts_with("/etc/lanyard.toml:1:"), "{err}");
    }

    #[test]
    fn added_accounts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let new = NewAccount {
            name: "seat".into(),
            preset: Some("ggleap".into()),
            issuer: "https://api.ggleap.com/production/oidc".into(),
            client_id: "c \"quoted\"".into(),
            scopes: Some("openid group".into()),
            port: Some(47615),
            client_auth: Some(ClientAuth::ClientSecretBasic),
            response_type: Some(ResponseType::IdToken),
            response_mode: Some(ResponseMode::Fragment),
            extra_params: [("center_uuid".to_owned(), "c-1".to_owned())].into(),
        };
        let config = Config::add_account(&path, &new).unwrap();
        let a = config.account("seat").unwrap();
        assert_eq!(a.client_id, "c \"quoted\"");
        assert_eq!(a.redirect, Redirect::Loopback { port: 47615 });
        assert_eq!(a.response_mode, ResponseMode::Fragment);
        assert_eq!(a.extra_params["center_uuid"], "c-1");
        assert_eq!(a.preset.as_deref(), Some("ggleap"));
        assert!(
            Config::add_account(&path, &new)
                .unwrap_err()
                .to_string()
                .contains("exists already")
        );
        let bad = NewAccount {
            name: "bad".into(),
            issuer: "http://x.example".into(),
            client_id: "c".into(),
            ..NewAccount::default()
        };
        assert!(Config::add_account(&path, &bad).is_err());
        assert!(
            Config::load(&path).unwrap().accounts.len() == 1,
            "a rejected account is not written"
        );
    }

    #[test]
    fn missing_file_is_empty_and_unknown_account_says_what_to_add() {
        let c = Config::load(Path::new("/nonexistent/lanyard/config.toml")).unwrap();
        assert!(c.accounts.is_empty());
        assert_eq!(
            c.account("work").unwrap_err().to_string(),
            "no account named `work` in /nonexistent/lanyard/config.toml; add a section [accounts.work] with `issuer` and `client_id`"
        );
    }
}
