//! What the window shows, as the front end receives it: the views (accounts, identity
//! card, presets, approvals, activity), the events that change them, and the functions
//! that build them from the configuration and the sign-in records. No state and no I/O.

use serde::Serialize;
use serde_json::Value;

use crate::config::Account;
use crate::kiosk::SeatView;
use crate::preset::{self, Branding, Preset};
use crate::session;
use crate::store::{Record, Status};

/// One account as the list shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountView {
    pub name: String,
    pub issuer: String,
    /// The preset's name, else the issuer's host.
    pub provider: String,
    pub preset: Option<String>,
    pub button: Button,
    /// `signed_in`, `sign_in_needed` or `signed_out`.
    pub status: &'static str,
    /// Why a sign-in is needed, when it is.
    pub reason: Option<String>,
    /// Who is signed in: a name, else an email, else the subject.
    pub person: Option<String>,
    /// Unix seconds; the window counts down from it.
    pub expires_at: Option<u64>,
    pub redirect: String,
}

/// How the account's "Sign in with …" button looks: the preset's branding, else neutral.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Button {
    pub label: String,
    pub background: String,
    pub foreground: String,
    pub mark: Option<String>,
}

impl From<Branding> for Button {
    fn from(b: Branding) -> Button {
        Button {
            label: b.label.into(),
            background: b.background.into(),
            foreground: b.foreground.into(),
            mark: b.mark.map(str::to_owned),
        }
    }
}

/// The identity card.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityView {
    pub account: String,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// The picture's URL as the provider gave it; [`Desktop::picture`](super::Desktop::picture) fetches it.
    pub picture: Option<String>,
    /// Up to two letters, for when there is no picture.
    pub initials: String,
    /// `groups`, `roles` and `group`, flattened.
    pub groups: Vec<String>,
    /// Provider-specific claims: the preset's first, then any other non-standard one.
    pub claims: Vec<(String, String)>,
    pub scopes: Vec<String>,
    pub signed_in_at: u64,
    pub expires_at: Option<u64>,
    pub refreshable: bool,
    pub store: String,
}

/// An app the policy names, per account.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AppRule {
    pub account: String,
    pub app: String,
    /// `allowed`, `allowed_once` or `denied`.
    pub decision: &'static str,
}

/// One line of the audit log: which app got (or was refused) which account's token.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ActivityEntry {
    pub time: u64,
    pub account: String,
    pub app: String,
    pub decision: String,
}

/// A preset as the "Add account" form offers it.
#[derive(Debug, Clone, Serialize)]
pub struct PresetView {
    pub id: &'static str,
    pub name: &'static str,
    pub issuer: &'static str,
    pub default_scopes: &'static str,
    pub fixed_port: Option<u16>,
    pub needs_secret: bool,
    pub center_param: Option<&'static str>,
    pub branding: Branding,
    pub docs: &'static str,
}

/// What the "Add account" form sends.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AddAccount {
    pub name: String,
    pub preset: Option<String>,
    /// Required without a preset; with one, overrides its issuer (staging).
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub center: Option<String>,
    pub scopes: Option<String>,
}

/// What a live discovery check found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProviderCheck {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub end_session: bool,
    pub revocation: bool,
}

/// What the front end is told, as it happens.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// The accounts changed (sign-in, sign-out, refresh, an account added or removed).
    Accounts { accounts: Vec<AccountView> },
    /// A sign-in or sign-out in the browser moved on. `stage`: `browser_opened`,
    /// `open_yourself` (with `url`), `waiting`, `finishing`, `done`, `failed` (with
    /// `message`), `cancelled`.
    Progress {
        account: String,
        action: &'static str,
        stage: &'static str,
        url: Option<String>,
        message: Option<String>,
    },
    /// An app the policy does not know asks for a token: the window must ask the person.
    Approval {
        id: u64,
        account: String,
        provider: String,
        app: String,
        pid: Option<i32>,
        /// The `lanyard` command line the app asked through, if it did.
        through: Option<String>,
        timeout_secs: u64,
        /// How many of the app's requests wait on this answer (see `ApprovalWaiting`).
        waiting: usize,
    },
    /// More requests wait on prompt `id` (the same app, the same account): `waiting` in
    /// all; one answer serves them all.
    ApprovalWaiting { id: u64, waiting: usize },
    /// The prompt `id` was answered, or timed out (`denied`).
    ApprovalClosed { id: u64, decision: &'static str },
    /// A new line in the activity view.
    Access { entry: ActivityEntry },
    /// An account needs a sign-in (its refresh token stopped working): the desktop
    /// notifies, once, naming the app that found it (`app`) if one did, with a "Sign in"
    /// action.
    SignInNeeded {
        account: String,
        reason: String,
        app: Option<String>,
    },
    /// A link the OS handed over was not for any sign-in in progress.
    LinkRefused { message: String },
    /// Kiosk mode: the seat session changed (started, warned of idleness, ended).
    Seat { seat: SeatView },
    /// Scan-to-sign-in: the code and a QR code (SVG) of the URL that carries it.
    DeviceCode {
        account: String,
        user_code: String,
        verification_uri: String,
        /// The URL with the code in it, which the QR code holds.
        verification_uri_complete: Option<String>,
        qr_svg: String,
        expires_in: u64,
    },
}

pub(super) fn provider_name(account: &Account) -> String {
    match account.preset.as_deref().and_then(preset::find) {
        Some(p) => p.name.to_owned(),
        None => url::Url::parse(&account.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| account.issuer.clone()),
    }
}

/// The button for a provider without a preset: neutral, labelled with its host.
pub(super) fn generic_button(provider: &str) -> Button {
    Button {
        label: format!("Sign in with {provider}"),
        background: "#2f3640".into(),
        foreground: "#ffffff".into(),
        mark: None,
    }
}

pub(super) fn account_view(account: &Account, record: Option<&Record>) -> AccountView {
    let provider = provider_name(account);
    let preset = account.preset.as_deref().and_then(preset::find);
    let button = preset.map_or_else(|| generic_button(&provider), |p| p.branding.into());
    let (status, reason) = match record.map(|r| &r.status) {
        None => ("signed_out", None),
        Some(Status::SignedIn) => ("signed_in", None),
        Some(Status::SignInNeeded { reason }) => ("sign_in_needed", Some(reason.clone())),
    };
    let person = record.map(|r| {
        let claims = r.claims();
        session::display_name(&claims)
            .map(str::to_owned)
            .unwrap_or_else(|| r.subject.clone())
    });
    AccountView {
        name: account.name.clone(),
        issuer: account.issuer.clone(),
        provider,
        preset: account.preset.clone(),
        button,
        status,
        reason,
        person,
        expires_at: record.and_then(|r| r.access_token_expires_at.or(r.id_token_expires_at)),
        redirect: account.redirect.to_string(),
    }
}

/// Claims every provider has, shown in their own places or not at all.
const STANDARD: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "groups",
    "roles",
    "group",
    "scope",
    "client_id",
];

/// Claims the identity card shows in their own places.
const SHOWN_ELSEWHERE: &[&str] = &[
    "iss",
    "sub",
    "name",
    "email",
    "email_verified",
    "picture",
    "groups",
    "roles",
    "group",
];

pub(super) fn identity_view(account: &Account, record: &Record) -> IdentityView {
    let claims = record.claims();
    let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = session::display_name(&claims).map(str::to_owned);
    let email = text("email");
    let initials = initials(
        name.as_deref()
            .or(email.as_deref())
            .unwrap_or(&record.subject),
    );
    let mut groups = Vec::new();
    for key in ["groups", "roles", "group"] {
        match claims.get(key) {
            Some(Value::Array(items)) => groups.extend(items.iter().map(render)),
            Some(Value::String(s)) => groups.push(s.clone()),
            _ => {}
        }
    }
    let preset = account.preset.as_deref().and_then(preset::find);
    let first: &[&str] = preset.map_or(&[], |p| p.claims);
    let mut shown: Vec<(String, String)> = Vec::new();
    let mut push = |key: &str, value: &Value| {
        if !shown.iter().any(|(k, _)| k == key) {
            shown.push((key.to_owned(), render(value)));
        }
    };
    // The preset's claims worth showing come first, standard or not (a phone number),
    // less those the card shows in their own places.
    for key in first {
        if !SHOWN_ELSEWHERE.contains(key)
            && let Some(v) = claims.get(*key)
        {
            push(key, v);
        }
    }
    for (key, value) in &claims {
        if !STANDARD.contains(&key.as_str()) {
            push(key, value);
        }
    }
    IdentityView {
        account: account.name.clone(),
        provider: provider_name(account),
        issuer: record.issuer.clone(),
        subject: record.subject.clone(),
        name,
        email,
        email_verified: claims.get("email_verified").and_then(Value::as_bool),
        picture: text("picture"),
        initials,
        groups,
        claims: shown,
        scopes: record.scopes.clone(),
        signed_in_at: record.signed_in_at,
        expires_at: record
            .access_token_expires_at
            .or(record.id_token_expires_at),
        refreshable: record.refreshable,
        store: record.store.clone(),
    }
}

pub(super) fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// "Alice Example" → "AE"; "alice@example.test" → "A".
pub(super) fn initials(name: &str) -> String {
    let name = name.split('@').next().unwrap_or(name);
    name.split_whitespace()
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

pub(super) fn preset_view(p: &'static Preset) -> PresetView {
    PresetView {
        id: p.id,
        name: p.name,
        issuer: p.issuer,
        default_scopes: p.default_scopes,
        fixed_port: p.fixed_port,
        needs_secret: p.client_auth != crate::config::ClientAuth::None,
        center_param: p.center_param,
        branding: p.branding,
        docs: p.docs,
    }
}

/// A `data:` URL for an image the webview can show; anything else is refused (a picture
/// URL is the provider's to choose, its bytes are not trusted to be an image).
pub(super) fn data_url(bytes: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let mime = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        return None;
    };
    Some(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// A QR code of `text` as an SVG document (dark modules on white, with the quiet zone).
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
        Err(e) => {
            tracing::warn!(error = %e, "no QR code");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn initials_from_names_and_emails() {
        assert_eq!(initials("Alice Example"), "AE");
        assert_eq!(initials("alice@example.test"), "A");
        assert_eq!(initials("Ëva von Neumann Jr"), "ËV");
        assert_eq!(initials(""), "");
    }

    #[test]
    fn the_card_shows_the_presets_claims_first_then_other_unusual_ones() {
        let config = Config::parse(
            Path::new("/c.toml"),
            "[accounts.hc]\npreset = \"hackclub\"\nissuer = \"https://hca.dinosaurbbq.org\"\nclient_id = \"x\"\n",
        )
        .unwrap();
        let claims = serde_json::json!({
            "iss": "https://hca.dinosaurbbq.org", "sub": "ident!a", "aud": "x", "exp": 2, "iat": 1,
            "name": "Alice Example", "email": "a@example.test", "email_verified": true,
            "zz_custom": 7, "verification_status": "verified", "slack_id": "U01",
            "phone_number": "+1 802", "roles": ["admin"], "groups": ["staff"],
        });
        let record = Record {
            account: "hc".into(),
            issuer: "https://hca.dinosaurbbq.org".into(),
            client_id: "x".into(),
            subject: "ident!a".into(),
            signed_in_at: 1,
            access_token_expires_at: Some(100),
            id_token_expires_at: Some(50),
            refreshable: false,
            scopes: vec!["openid".into()],
            store: "keychain".into(),
            response_type: crate::config::ResponseType::Code,
            id_token_claims: claims.as_object().unwrap().clone(),
            userinfo: None,
            access_token_claims: None,
            dpop: false,
            status: Status::SignedIn,
            tokens_stamp: None,
        };
        let view = identity_view(config.account("hc").unwrap(), &record);
        assert_eq!(view.provider, "Hack Club Auth");
        assert_eq!(view.initials, "AE");
        assert_eq!(view.groups, ["staff", "admin"]);
        let keys: Vec<&str> = view.claims.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "slack_id",
                "verification_status",
                "phone_number",
                "zz_custom"
            ]
        );
        assert_eq!(view.expires_at, Some(100));
    }

    #[test]
    fn only_images_become_data_urls() {
        assert!(
            data_url(b"\x89PNG\r\n\x1a\nrest")
                .unwrap()
                .starts_with("data:image/png;base64,")
        );
        assert_eq!(data_url(b"<svg onload=alert(1)>"), None);
        assert_eq!(data_url(b"<html>"), None);
    }
}
