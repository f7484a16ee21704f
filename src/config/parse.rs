//! Reading the accounts file: TOML into [`Config`], every value checked, and an error that
//! names the file, line, column and key at fault.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::kiosk::RawKiosk;
use super::{
    Account, ClientAuth, Config, DEFAULT_SCOPES, Error, Redirect, ResponseMode, ResponseType,
    StoreKind,
};

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

impl Config {
    /// Parses and validates the text of an accounts file at `path` (named in errors).
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
            // Host names, with an optional :port, lowercase.
            let hosts = |list: &Option<Spanned<Vec<String>>>, name: &str| {
                let mut hosts = Vec::new();
                for host in list.iter().flat_map(|l| l.get_ref()) {
                    let valid = !host.is_empty()
                        && Url::parse(&format!("https://{host}/"))
                            .is_ok_and(|u| u.path() == "/" && u.username().is_empty());
                    if !valid || host.contains(['/', '@', '?', '#']) {
                        return Err(at(
                            list.as_ref().map(Spanned::span),
                            key(name),
                            format!("`{host}` is not a host name (with an optional :port)"),
                        ));
                    }
                    hosts.push(host.to_ascii_lowercase());
                }
                Ok(hosts)
            };
            let git_hosts = hosts(&raw.git_hosts, "git_hosts")?;
            let registry_hosts = hosts(&raw.registry_hosts, "registry_hosts")?;
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
                    dpop: raw.dpop,
                    preset: raw.preset.map(Spanned::into_inner),
                    resources,
                    git_hosts,
                    registry_hosts,
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
        let mut rules = Vec::new();
        for (i, raw) in raw.rules.into_iter().enumerate() {
            let span = raw.span();
            let raw = raw.into_inner();
            let key = |field: &str| Some(format!("match[{i}].{field}"));
            let on = match (raw.directory, raw.remote) {
                (Some(dir), None) => super::matching::On::Directory(
                    super::matching::check_directory(dir.get_ref())
                        .map_err(|m| at(Some(dir.span()), key("directory"), m))?,
                ),
                (None, Some(remote)) => super::matching::On::Remote(
                    super::matching::check_remote(remote.get_ref())
                        .map_err(|m| at(Some(remote.span()), key("remote"), m))?,
                ),
                _ => {
                    return Err(at(
                        Some(span),
                        Some(format!("match[{i}]")),
                        "a [[match]] rule has one of `directory` or `remote`".into(),
                    ));
                }
            };
            if !accounts.contains_key(raw.account.get_ref()) {
                return Err(at(
                    Some(raw.account.span()),
                    key("account"),
                    format!(
                        "there is no account `{}` in this file",
                        raw.account.get_ref()
                    ),
                ));
            }
            rules.push(super::matching::Rule {
                index: i + 1,
                on,
                account: raw.account.into_inner(),
            });
        }
        Ok(Config {
            path: path.to_owned(),
            accounts,
            kiosk,
            rules,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    accounts: BTreeMap<Spanned<String>, RawAccount>,
    kiosk: Option<Spanned<RawKiosk>>,
    #[serde(default, rename = "match")]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    directory: Option<Spanned<String>>,
    remote: Option<Spanned<String>>,
    account: Spanned<String>,
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
    dpop: Option<bool>,
    preset: Option<Spanned<String>>,
    resources: Option<Spanned<Vec<String>>>,
    git_hosts: Option<Spanned<Vec<String>>>,
    registry_hosts: Option<Spanned<Vec<String>>>,
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
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
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
