//! The accounts file: which providers to sign in with, and how.
//!
//! The file is TOML, found at `$LANYARD_CONFIG` or else `config.toml` in the platform's
//! config directory. It is parsed once into [`Config`] and validated whole: a bad value is
//! reported with the file, line and key at fault. This module reads the file and nothing
//! else; it never holds a secret (client secrets live in the keychain, see `store`).
//! `parse` checks the file and says where it is wrong, `kiosk` reads the managed seat's
//! `[kiosk]` table, `edit` adds and removes accounts, and [`matching`] picks the account
//! a command means when it names none (`[[match]]`).
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
//! registry_hosts = ["crates.example.com"]           # package registries that get the token (https)
//!
//! [[match]]                                         # `lanyard token` with no name, here:
//! directory = "~/work"                              # or remote = "github.com/acme"
//! account = "work"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::settings::{ClientAuth, ResponseMode, ResponseType};

mod edit;
mod kiosk;
pub mod matching;
mod parse;
#[cfg(test)]
mod tests;

pub use edit::NewAccount;
pub use kiosk::{Kiosk, SeatBrowser};
pub use parse::check_issuer;
use parse::line_column;

/// The largest accounts file read: far more than any has.
const CONFIG_MAX: u64 = 1024 * 1024;

/// Scopes asked for when an account names none.
pub const DEFAULT_SCOPES: &str = "openid profile email offline_access";

#[derive(Debug, thiserror::Error)]
/// What is wrong with the accounts file (or the kiosk policy).
pub enum Error {
    #[error("cannot read {path}: {source}")]
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        /// Why.
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {key}: {message}")]
    /// A value is not valid; `line` and `column` point at it.
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The column, from 1.
        column: usize,
        /// The dotted key at fault, e.g. `accounts.work.issuer`.
        key: String,
        /// What is wrong, and what to write instead.
        message: String,
    },
    #[error(
        "no account named `{name}` in {path}; add a section [accounts.{name}] with `issuer` and `client_id`"
    )]
    /// The file has no account by that name.
    UnknownAccount {
        /// The name asked for.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A command named no account, and no `[[match]]` rule picks one where it runs.
    #[error(
        "no account named, and no [[match]] rule in {path} matches {dir}; name the account, or add a rule: [[match]] directory = \"…\" (or remote = \"host/path\") account = \"…\""
    )]
    NoAccountHere {
        /// Where the command runs.
        dir: PathBuf,
        /// The accounts file.
        path: PathBuf,
    },
    #[error(
        "cannot find a config directory for this user; set LANYARD_CONFIG to the accounts file"
    )]
    /// This user has no config directory, so the default file cannot be found.
    NoConfigDir,
    /// A value of the registry's kiosk policy (Windows): `key` is its place under the
    /// policy key, e.g. `idle_timeout` or `Accounts\work\issuer`.
    #[error(
        "{place}\\{key}: {message}; fix it where the policy is deployed (Group Policy or the center's tooling)"
    )]
    Policy {
        /// Where the policy came from (the registry key).
        place: String,
        /// The value's name under it.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// An error from checking the policy as a kiosk file: the same message, named by the
    /// registry value rather than a line of a file that does not exist.
    fn from_policy(source: &str, e: Error) -> Error {
        match e {
            Error::Invalid { key, message, .. } => {
                let mut parts: Vec<&str> = key.split('.').collect();
                match parts.first() {
                    Some(&"kiosk") => {
                        parts.remove(0);
                    }
                    Some(&"accounts") => parts[0] = "Accounts",
                    _ => {}
                }
                Error::Policy {
                    place: source.into(),
                    key: parts.join("\\"),
                    message,
                }
            }
            other => other,
        }
    }
}

/// The whole accounts file.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file is (or would be); named in error messages.
    pub path: PathBuf,
    /// The accounts, by name.
    pub accounts: BTreeMap<String, Account>,
    /// The `[kiosk]` table: only in the managed kiosk file (see [`Kiosk::path`]).
    pub kiosk: Option<Kiosk>,
    /// The `[[match]]` rules, in the file's order.
    pub rules: Vec<matching::Rule>,
}

/// One `[accounts.NAME]` section, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The account's name, its `[accounts.NAME]`.
    pub name: String,
    /// Compared byte for byte with the provider's discovery document.
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The scopes asked for at sign-in.
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back to.
    pub redirect: Redirect,
    /// Extra authorization parameters the provider requires.
    pub extra_params: BTreeMap<String, String>,
    /// The `prompt` sent at sign-in (`login`, `consent`), if any.
    pub prompt: Option<String>,
    /// The `max_age` sent at sign-in: the provider asks again after this many seconds.
    pub max_age: Option<u64>,
    /// Where the tokens are kept.
    pub store: StoreKind,
    /// How to authenticate at the token endpoint; `None` means follow discovery.
    pub client_auth: Option<ClientAuth>,
    /// `code` (tokens) or `id_token` (who you are, no access token).
    pub response_type: ResponseType,
    /// How the provider sends its response back.
    pub response_mode: ResponseMode,
    /// Also ask the provider's introspection endpoint about the ID token (Hellō).
    pub introspect: bool,
    /// Bind the tokens to a key of the account's own (DPoP, RFC 9449): `Some` as the
    /// account says, `None` for the default, which is DPoP for a public client where the
    /// provider offers it with ES256.
    pub dpop: Option<bool>,
    /// The preset the account was made from, for display and branding.
    pub preset: Option<String>,
    /// RFC 8707 resource indicators asked for at sign-in; tokens for one of them (an
    /// audience) come from a refresh that names it.
    pub resources: Vec<String>,
    /// The git hosts (`host` or `host:port`, lowercase) that `lanyard git-credential`
    /// gives the account's token to, over https only. Empty: none.
    pub git_hosts: Vec<String>,
    /// The package registries (`host` or `host:port`, lowercase) whose credential
    /// helpers (`lanyard --cargo-plugin`) get the account's token, over https only.
    /// Empty: none.
    pub registry_hosts: Vec<String>,
}

/// Where the provider sends the browser back to (RFC 8252 section 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// `http://127.0.0.1:PORT/callback`; port 0 asks the OS for a free one.
    Loopback {
        /// The port; 0 for any free one.
        port: u16,
    },
    /// A private-use URI scheme (RFC 8252 section 7.1), e.g. `dev.lanyard:/callback`: the
    /// OS hands the URL to the desktop app registered for the scheme. Sign-out comes back
    /// to the same scheme with the path `/logged-out`.
    Scheme {
        /// The redirect URI.
        uri: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
/// Where an account's tokens are kept.
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

    /// Reads and validates the file. A missing file is an empty config; a FIFO, device or
    /// directory in its place, or a file over a megabyte, is an error at once.
    pub fn load(path: &Path) -> Result<Config, Error> {
        match crate::platform::read_small_file(path, CONFIG_MAX, false) {
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
                rules: Vec::new(),
            }),
            Err(source) => Err(Error::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The account `name`, or an error that says how to add it.
    pub fn account(&self, name: &str) -> Result<&Account, Error> {
        self.accounts
            .get(name)
            .ok_or_else(|| Error::UnknownAccount {
                name: name.to_owned(),
                path: self.path.clone(),
            })
    }
}
