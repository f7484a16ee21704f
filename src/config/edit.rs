//! Changing the accounts file: adding and removing an account, keeping every other line
//! as it was, and writing all or nothing.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ClientAuth, Config, Error, ResponseMode, ResponseType};
use crate::preset::Preset;

/// A new `[accounts.NAME]` section, as `lanyard accounts add` writes it.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    /// The account's name, its `[accounts.NAME]`.
    pub name: String,
    /// The preset it was made from.
    pub preset: Option<String>,
    /// The provider's issuer URL.
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The scopes to ask for, space-separated; `None`: the default.
    pub scopes: Option<String>,
    /// A fixed loopback port; `None`: any free port.
    pub port: Option<u16>,
    /// How to authenticate at the token endpoint; `None`: as discovery says.
    pub client_auth: Option<ClientAuth>,
    /// `code` or `id_token`; `None`: `code`.
    pub response_type: Option<ResponseType>,
    /// How the provider sends its response back; `None`: as the response type implies.
    pub response_mode: Option<ResponseMode>,
    /// Extra authorization parameters the provider requires.
    pub extra_params: BTreeMap<String, String>,
    /// A private-use scheme redirect URI (`com.example.app:/callback`) instead of the
    /// loopback.
    pub scheme: Option<String>,
    /// DPoP-bound tokens (RFC 9449) or not; `None`: the default (see `Account::dpop`).
    pub dpop: Option<bool>,
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
            scheme: None,
            dpop: None,
        }
    }

    /// The account's `[accounts.NAME]` section.
    pub(crate) fn to_toml(&self) -> String {
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
        if let Some(uri) = &self.scheme {
            out += &format!("redirect = {}\n", q(uri));
        } else if let Some(port) = self.port {
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
        if let Some(dpop) = self.dpop {
            out += &format!("dpop = {dpop}\n");
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
pub(super) fn without_section(text: &str, name: &str) -> String {
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
