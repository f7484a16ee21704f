//! Presets: what Lanyard knows about the providers it supports out of the box.
//!
//! A preset is data, not code: the issuer, the scopes offered (with what each gives), the
//! claims worth showing, the redirect style the provider accepts, how the client
//! authenticates, the response type and mode, which logout steps exist, and the branding
//! the provider asks for. `lanyard accounts add --preset` turns one into an
//! `[accounts.NAME]` section; the desktop app draws its buttons from it. The sign-in code
//! never branches on a preset: every quirk is a setting any account can use.

use serde::Serialize;

use crate::settings::{ClientAuth, ResponseMode, ResponseType};

#[derive(Debug, Clone, Copy, Serialize)]
/// A known provider: what a new account for it gets, and how its button looks.
pub struct Preset {
    /// The name used on the command line: `--preset hepgg`.
    pub id: &'static str,
    /// The provider's name, as shown.
    pub name: &'static str,
    /// The provider's issuer URL.
    pub issuer: &'static str,
    /// Every scope the provider offers, with what it gives.
    pub scopes: &'static [Scope],
    /// The scopes a new account asks for.
    pub default_scopes: &'static str,
    /// Claims to show first, beyond name, email and picture.
    pub claims: &'static [&'static str],
    /// `Some(port)`: the provider matches redirect URIs exactly, so the loopback port is
    /// fixed and must be registered as `http://127.0.0.1:PORT/callback`.
    pub fixed_port: Option<u16>,
    /// How it authenticates clients at the token endpoint.
    pub client_auth: ClientAuth,
    /// The response type its clients use.
    pub response_type: ResponseType,
    /// How it sends its response back.
    pub response_mode: ResponseMode,
    /// It issues refresh tokens.
    pub refresh: bool,
    /// It has a revocation endpoint.
    pub revocation: bool,
    /// It has an end-session endpoint.
    pub end_session: bool,
    /// An extra authorization parameter a center must set (ggLeap's `center_uuid`).
    pub center_param: Option<&'static str>,
    /// How its button looks.
    pub branding: Branding,
    /// The provider's developer documentation, for registering a client.
    pub docs: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize)]
/// A scope a provider offers.
pub struct Scope {
    /// The scope.
    pub name: &'static str,
    /// What it gives the app.
    pub description: &'static str,
}

/// How a "Sign in with …" button looks, per the provider's guidance.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Branding {
    /// The button's text.
    pub label: &'static str,
    /// The button's background colour (CSS).
    pub background: &'static str,
    /// The text's colour (CSS).
    pub foreground: &'static str,
    /// A mark drawn before the label (Hellō's ō), if the provider has one.
    pub mark: Option<&'static str>,
}

const fn scope(name: &'static str, description: &'static str) -> Scope {
    Scope { name, description }
}

const OPENID: Scope = scope("openid", "who you are (required)");
const PROFILE: Scope = scope("profile", "name and basic profile");
const EMAIL: Scope = scope("email", "email address");
const OFFLINE: Scope = scope("offline_access", "stay signed in (refresh token)");

/// ggLeap production; the beta preset differs only in its issuer.
const GGLEAP: Preset = Preset {
    id: "ggleap",
    name: "ggLeap",
    issuer: "https://api.ggleap.com/production/oidc",
    scopes: &[OPENID, EMAIL, PROFILE, scope("group", "your ggLeap group")],
    default_scopes: "openid email profile group",
    claims: &["group", "center_uuid"],
    fixed_port: Some(GGLEAP_PORT),
    client_auth: ClientAuth::ClientSecretBasic,
    response_type: ResponseType::Code,
    response_mode: ResponseMode::Query,
    refresh: false,
    revocation: false,
    end_session: true,
    center_param: Some("center_uuid"),
    branding: Branding {
        label: "Sign in with ggLeap",
        background: "#1a1d29",
        foreground: "#ffffff",
        mark: None,
    },
    docs: "https://ggleap.com",
};
/// ggLeap matches redirect URIs exactly; this is the port to register.
pub const GGLEAP_PORT: u16 = 47615;

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "hepgg",
        name: "Hep.gg",
        issuer: "https://hep.gg",
        scopes: &[
            OPENID,
            PROFILE,
            EMAIL,
            scope("groups", "the groups you belong to"),
            OFFLINE,
        ],
        default_scopes: "openid profile email groups offline_access",
        claims: &["groups"],
        fixed_port: None,
        client_auth: ClientAuth::ClientSecretBasic,
        response_type: ResponseType::Code,
        response_mode: ResponseMode::Query,
        refresh: true,
        revocation: true,
        end_session: true,
        center_param: None,
        branding: Branding {
            label: "Sign in with Hep.gg",
            background: "#6d28d9",
            foreground: "#ffffff",
            mark: None,
        },
        docs: "https://hep.gg",
    },
    Preset {
        id: "hackclub",
        name: "Hack Club Auth",
        issuer: "https://hca.dinosaurbbq.org",
        scopes: &[
            OPENID,
            PROFILE,
            EMAIL,
            scope("phone", "phone number"),
            scope("address", "postal address"),
            scope("birthdate", "date of birth"),
            scope("slack_id", "your Hack Club Slack ID"),
            scope(
                "verification_status",
                "verification status and YSWS eligibility",
            ),
        ],
        default_scopes: "openid profile email slack_id verification_status",
        claims: &[
            "slack_id",
            "verification_status",
            "ysws_eligible",
            "phone_number",
            "address",
            "birthdate",
        ],
        fixed_port: None,
        client_auth: ClientAuth::ClientSecretPost,
        response_type: ResponseType::Code,
        response_mode: ResponseMode::Query,
        refresh: false,
        revocation: false,
        end_session: false,
        center_param: None,
        branding: Branding {
            label: "Sign in with Hack Club",
            background: "#ec3750",
            foreground: "#ffffff",
            mark: None,
        },
        docs: "https://hca.dinosaurbbq.org",
    },
    Preset {
        id: "propper",
        name: "Propper",
        issuer: "https://auth.propper.ai",
        scopes: &[
            OPENID,
            PROFILE,
            EMAIL,
            OFFLINE,
            scope("sign:read", "read your signing documents"),
        ],
        default_scopes: "openid profile email offline_access",
        claims: &["roles"],
        fixed_port: None,
        client_auth: ClientAuth::ClientSecretBasic,
        response_type: ResponseType::Code,
        response_mode: ResponseMode::Query,
        refresh: true,
        revocation: true,
        end_session: false,
        center_param: None,
        branding: Branding {
            label: "Sign in with Propper",
            background: "#0f172a",
            foreground: "#ffffff",
            mark: None,
        },
        docs: "https://auth.propper.ai",
    },
    Preset {
        id: "hello",
        name: "Hellō",
        issuer: "https://issuer.hello.coop",
        scopes: &[
            OPENID,
            scope("name", "full name"),
            scope("nickname", "preferred name"),
            EMAIL,
            scope("picture", "profile picture"),
        ],
        default_scopes: "openid name nickname email picture",
        claims: &["nickname", "scope"],
        fixed_port: None,
        client_auth: ClientAuth::None,
        response_type: ResponseType::IdToken,
        response_mode: ResponseMode::FormPost,
        refresh: false,
        revocation: false,
        end_session: false,
        center_param: None,
        // Hellō's rule: charcoal (#303030) on white or white on charcoal, with the ō mark.
        branding: Branding {
            label: "Continue with Hellō",
            background: "#303030",
            foreground: "#ffffff",
            mark: Some("ō"),
        },
        docs: "https://www.hello.dev/docs",
    },
    GGLEAP,
    Preset {
        id: "ggleap-beta",
        name: "ggLeap (beta)",
        issuer: "https://api.ggleap.com/beta/oidc",
        ..GGLEAP
    },
];

/// The preset `id` (`hepgg`, `hello`, …), if there is one.
pub fn find(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// The ids, for error messages.
pub fn ids() -> String {
    PRESETS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_coherent() {
        for p in PRESETS {
            let offered: Vec<&str> = p.scopes.iter().map(|s| s.name).collect();
            for s in p.default_scopes.split(' ') {
                assert!(
                    offered.contains(&s),
                    "{}: default scope {s} is not offered",
                    p.id
                );
            }
            assert!(
                p.default_scopes.split(' ').any(|s| s == "openid"),
                "{}",
                p.id
            );
            assert_eq!(
                p.refresh,
                p.default_scopes.contains("offline_access"),
                "{}",
                p.id
            );
            assert!(find(p.id).is_some());
        }
        assert_eq!(find("hello").unwrap().branding.mark, Some("ō"));
    }
}
