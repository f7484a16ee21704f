//! "Sign in with X" for an app that embeds Lanyard: one provider, one person.
//!
//! [`Client`] is the small, stable surface for apps: configure a [`Provider`] (or start
//! from a preset), choose where sign-ins are kept ([`Storage`]), then sign in with the
//! system browser or the device flow, read the validated [`Identity`], get an access
//! token that is valid for as long as you need, and sign out. Everything else
//! (discovery, PKCE, `state` and `nonce`, ID-token validation, refresh with rotation,
//! revocation, the provider's logout) happens inside, exactly as for Lanyard's own
//! command line and desktop app.
//!
//! ```no_run
//! # async fn example() -> Result<(), lanyard::Error> {
//! use std::time::Duration;
//! use lanyard::client::{Client, Provider, Storage};
//!
//! let provider = Provider::new("https://id.example.com", "my-app")
//!     .scopes("openid profile email offline_access");
//! let client = Client::new(provider, Storage::memory())?;
//! let me = client.sign_in().await?;
//! println!("Hello, {}", me.name.as_deref().unwrap_or(&me.subject));
//! let token = client.access_token(Duration::from_secs(60)).await?;
//! # let _ = token;
//! client.sign_out().await?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{Config, NewAccount, StoreKind};
use crate::flow::scheme::Inbox;
use crate::preset;
pub use crate::secret::Secret;
use crate::session::{Lanyard, LoginOptions, Progress};
use crate::store::{Record, Records, Status};
pub use crate::{Error, Kind};

/// The account name the client's one sign-in is kept under.
const ACCOUNT: &str = "default";

/// How long a sign-in waits for the browser to come back.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// The provider to sign in with, and how this app is registered there.
#[derive(Debug, Clone)]
pub struct Provider {
    account: NewAccount,
}

impl Provider {
    /// A provider by its issuer (discovery is at `ISSUER/.well-known/openid-configuration`)
    /// and this app's client id there. It asks for `openid profile email` and comes back
    /// to a loopback redirect (`http://127.0.0.1:PORT/callback`, any port), as RFC 8252
    /// recommends for desktop apps: register that redirect with the provider.
    pub fn new(issuer: &str, client_id: &str) -> Provider {
        Provider {
            account: NewAccount {
                name: ACCOUNT.to_owned(),
                issuer: issuer.to_owned(),
                client_id: client_id.to_owned(),
                ..NewAccount::default()
            },
        }
    }

    /// One of Lanyard's presets (`hepgg`, `hello`, `ggleap`, `hackclub`, `propper`): the
    /// provider's issuer, scopes, redirect and quirks, with this app's client id there.
    pub fn preset(id: &str, client_id: &str) -> Result<Provider, Error> {
        let preset = preset::find(id).ok_or_else(|| Error::UnknownPreset {
            preset: id.to_owned(),
            known: preset::ids(),
        })?;
        Ok(Provider {
            account: NewAccount::from_preset(preset, ACCOUNT, client_id, None, None, None),
        })
    }

    /// The scopes to ask for, space-separated. Add `offline_access` for a refresh token
    /// where the provider asks for it.
    pub fn scopes(mut self, scopes: &str) -> Provider {
        self.account.scopes = Some(scopes.to_owned());
        self
    }

    /// Come back on this loopback port (for providers that match redirect URIs exactly).
    pub fn loopback_port(mut self, port: u16) -> Provider {
        self.account.port = Some(port);
        self.account.scheme = None;
        self
    }

    /// Come back to a private-use URI scheme this app is registered for (RFC 8252
    /// section 7.1), such as `com.example.app:/callback`. The OS hands that URL to the
    /// app, which passes it to [`Client::redirected`].
    pub fn redirect_scheme(mut self, uri: &str) -> Provider {
        self.account.scheme = Some(uri.to_owned());
        self
    }

    /// An extra authorization parameter the provider requires.
    pub fn param(mut self, name: &str, value: &str) -> Provider {
        self.account
            .extra_params
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// Binds the tokens to a key of the app's own (DPoP, RFC 9449), or not. By default
    /// they are bound where the provider offers DPoP and the app is a public client:
    /// then send them with [`Client::authorization`]'s headers, not as Bearer tokens.
    pub fn dpop(mut self, bound: bool) -> Provider {
        self.account.dpop = Some(bound);
        self
    }

    /// Another issuer for a preset: its staging environment, or a test double.
    pub fn issuer(mut self, issuer: &str) -> Provider {
        self.account.issuer = issuer.to_owned();
        self
    }
}

/// Where the sign-in is kept.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Tokens in the OS keychain (Secret Service, macOS Keychain, Credential Manager)
    /// under the app's own service name; who is signed in (no secret) in a file in
    /// `dir`, the app's data directory. The person stays signed in across restarts.
    Keychain {
        /// The app's own name in the keychain, such as `com.example.notes`.
        service: String,
        /// The app's data directory.
        dir: PathBuf,
    },
    /// Everything in this process's memory: signed out when it exits.
    Memory,
}

impl Storage {
    /// [`Storage::Keychain`] under `service`, with the record in `dir`.
    pub fn keychain(service: &str, dir: impl Into<PathBuf>) -> Storage {
        Storage::Keychain {
            service: service.to_owned(),
            dir: dir.into(),
        }
    }

    /// [`Storage::Memory`].
    pub fn memory() -> Storage {
        Storage::Memory
    }

    /// The platform's data directory for an app named `app`, for the record that
    /// [`Storage::keychain`] keeps beside the keychain item (who is signed in, until when;
    /// no secret): `~/.local/share/APP` (`$XDG_DATA_HOME`) on Linux,
    /// `~/Library/Application Support/APP` on macOS, `%APPDATA%\APP` on Windows. `None`
    /// where the system names no home directory.
    pub fn data_dir(app: &str) -> Option<PathBuf> {
        directories::BaseDirs::new().map(|dirs| dirs.data_dir().join(app))
    }
}

/// Who is signed in, from the validated ID token and the provider's userinfo.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Identity {
    /// The provider's identifier for the person (`sub`): stable, unlike the rest.
    pub subject: String,
    /// The provider (its issuer URL).
    pub issuer: String,
    /// A name to greet the person by: `name`, else `preferred_username` or the like.
    pub name: Option<String>,
    /// `email`, as the provider gave it (see `claims["email_verified"]`).
    pub email: Option<String>,
    /// `picture`: a URL of the person's picture.
    pub picture: Option<String>,
    /// Every claim, the ID token's and userinfo's together.
    pub claims: Map<String, Value>,
    /// When the person signed in, in Unix seconds.
    pub signed_in_at: u64,
    /// Set when the sign-in has lapsed (the provider refused to refresh it: a session
    /// limit, a revoked grant): why. Until the person signs in again, no token can be had;
    /// [`Client::sign_in`] brings them back (as the same person).
    pub sign_in_needed: Option<String>,
}

impl Identity {
    fn from_record(record: &Record) -> Identity {
        let claims = record.claims();
        let text = |key: &str| claims.get(key).and_then(Value::as_str).map(str::to_owned);
        Identity {
            subject: record.subject.clone(),
            issuer: record.issuer.clone(),
            name: crate::session::display_name(&claims).map(str::to_owned),
            email: text("email"),
            picture: text("picture"),
            signed_in_at: record.signed_in_at,
            claims,
            sign_in_needed: match &record.status {
                Status::SignedIn => None,
                Status::SignInNeeded { reason } => Some(reason.clone()),
            },
        }
    }
}

/// Where a browser sign-in stands, for an app that shows it ([`SignInOptions::progress`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SignInProgress {
    /// The browser's command was started with the provider's page (`url`: where it
    /// went, without its query). Say "opening your browser": a command that then fails
    /// is followed by [`SignInProgress::OpenThisLink`] with the reason (with a progress
    /// callback), or ends the sign-in (without one).
    BrowserOpened {
        /// The provider's page.
        url: String,
    },
    /// No browser was opened ([`SignInOptions::open_browser`] false), or it could not be
    /// started (`reason` says why): show the person this link to open in a browser on
    /// this computer. It is a one-time page on 127.0.0.1 that sends the browser on to the
    /// provider: it works once, in one browser (a second request for it stops the
    /// sign-in, since someone else had the link).
    OpenThisLink {
        /// The one-time page.
        url: String,
        /// Why no browser was started, if one was meant to be.
        reason: Option<String>,
    },
    /// For [`Client::sign_in_elsewhere`]: once signed in, the browser elsewhere ends on a
    /// page that cannot load, whose address starts with `redirect_uri`; ask the person to
    /// copy that whole address and paste it into your app.
    PasteBack {
        /// What the address to paste starts with (`http://127.0.0.1:PORT/callback`).
        redirect_uri: String,
    },
    /// The browser came back: the tokens are being checked.
    Finishing,
}

/// How [`Client::sign_in_with`] signs in.
pub struct SignInOptions<'a> {
    /// Open the system browser (`$BROWSER`, else the platform's opener). Without it, the
    /// link is handed to [`SignInOptions::progress`], which must be given. Default: true.
    pub open_browser: bool,
    /// Give up when the browser has not come back after this long. Default: five minutes.
    pub timeout: Duration,
    /// Called as the sign-in goes: with the link to show when no browser opens. Without
    /// it, a browser that cannot be started fails the sign-in at once
    /// ([`crate::Kind::Other`], `Error::Browser`), since nobody would see the link.
    pub progress: Option<&'a (dyn Fn(&SignInProgress) + Sync)>,
}

impl Default for SignInOptions<'_> {
    fn default() -> Self {
        SignInOptions {
            open_browser: true,
            timeout: SIGN_IN_TIMEOUT,
            progress: None,
        }
    }
}

/// The code to show for a device-flow sign-in (RFC 8628).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceCode {
    /// What the person types at `verification_uri`.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The URL with the code in it: what a QR code should hold.
    pub verification_uri_complete: Option<String>,
    /// How long the code is good for.
    pub expires_in: Duration,
}

/// What [`Client::sign_out`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct SignOut {
    /// Someone was signed in.
    pub was_signed_in: bool,
    /// What was revoked at the provider: `refresh_token`, `access_token`.
    pub revoked: Vec<String>,
    /// The provider's session was ended in the browser.
    pub provider_session_ended: bool,
    /// Without a browser ([`SignOutOptions::open_browser`] false, or a browser that
    /// could not start): the provider's sign-out page, for your app to show or open, to
    /// end the provider's session too. It names your client only, never a token.
    pub sign_out_link: Option<String>,
    /// What could not be done (a revocation the provider refused): the local sign-out
    /// happened all the same.
    pub warnings: Vec<String>,
}

/// How [`Client::sign_out_with`] signs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOutOptions {
    /// End the provider's session in the system browser too, waiting (at most two
    /// minutes) for the browser to come back; a browser that cannot start ends the wait
    /// at once. Without it, sign-out returns at once with the provider's sign-out page in
    /// [`SignOut::sign_out_link`]. Default: true.
    pub open_browser: bool,
    /// Only forget the sign-in here: no revocation, nothing sent to the provider.
    /// Default: false.
    pub local: bool,
}

impl Default for SignOutOptions {
    fn default() -> SignOutOptions {
        SignOutOptions {
            open_browser: true,
            local: false,
        }
    }
}

/// Signs one person in with one provider, and keeps that sign-in.
pub struct Client {
    lanyard: Lanyard,
    inbox: Arc<Inbox>,
    /// The sign-in is kept in the keychain ([`Storage::Keychain`]).
    keychain: bool,
    /// The private-use scheme redirects come back to, if any.
    scheme: Option<String>,
}

impl Client {
    /// A client for `provider`, keeping its sign-in in `storage`. The provider's settings
    /// are checked as an accounts file's are; nothing is fetched yet.
    pub fn new(provider: Provider, storage: Storage) -> Result<Client, Error> {
        let text = format!("[accounts]{}", provider.account.to_toml());
        let config = Config::parse(std::path::Path::new("the client's provider"), &text)
            .map_err(|e| for_the_app(e.into()))?;
        let inbox = Arc::new(Inbox::default());
        let keychain = matches!(storage, Storage::Keychain { .. });
        let scheme = provider
            .account
            .scheme
            .as_deref()
            .and_then(|uri| uri.split_once(':'))
            .map(|(scheme, _)| scheme.to_owned());
        let mut lanyard = match storage {
            Storage::Keychain { service, dir } => {
                Lanyard::new(config, Records::new(Some(dir)))?.with_service(&service)
            }
            Storage::Memory => {
                Lanyard::new(config, Records::new(None))?.with_store(Some(StoreKind::Memory))
            }
        }
        .with_inbox(inbox.clone());
        lanyard.embedded = true;
        Ok(Client {
            lanyard,
            inbox,
            keychain,
            scheme,
        })
    }

    /// The private-use scheme this client's redirects come back to
    /// ([`Provider::redirect_scheme`]'s, without the path), or `None` for loopback: the
    /// links of that scheme are the ones to hand to [`Client::redirected`].
    pub fn redirect_scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// Keeps the app's client secret, for a provider that requires one (a confidential
    /// client; the Hep.gg, Hack Club, Propper and ggLeap presets). It goes to the keychain
    /// under `SERVICE client secret`, so it needs [`Storage::Keychain`]. A secret shipped
    /// inside a desktop app can be read by anyone who has the app: prefer a public client
    /// where the provider offers one. Make the secret with [`Secret::new`].
    pub async fn set_client_secret(&self, secret: Secret) -> Result<(), Error> {
        if !self.keychain {
            return Err(Error::SecretNeedsKeychain);
        }
        self.lanyard.set_client_secret(ACCOUNT, secret).await
    }

    /// Signs in with the system browser: the provider's page opens there, and this
    /// resolves once it comes back and every check has passed (or after five minutes).
    /// A browser that cannot be started is an error at once; [`Client::sign_in_with`]
    /// shows the link instead, or opens no browser at all.
    pub async fn sign_in(&self) -> Result<Identity, Error> {
        self.sign_in_with(&SignInOptions::default()).await
    }

    /// Signs in as `options` say: with or without the system browser, how long to wait,
    /// and what to tell the person as it goes. Dropping the future cancels the sign-in:
    /// its page on 127.0.0.1 closes, and nothing is kept. No browser and no progress
    /// callback is refused at once ([`Kind::Config`]): nobody would see the link.
    pub async fn sign_in_with(&self, options: &SignInOptions<'_>) -> Result<Identity, Error> {
        if !options.open_browser && options.progress.is_none() {
            return Err(Error::Usage {
                kind: Kind::Config,
                message: "without a browser the person must be shown the link: give SignInOptions a progress callback".into(),
            });
        }
        let login = LoginOptions {
            open_browser: options.open_browser,
            timeout: options.timeout,
            link_shown: options.progress.is_some(),
            ..LoginOptions::default()
        };
        let progress = |p: Progress<'_>| {
            let Some(tell) = options.progress else { return };
            let said = match p {
                Progress::BrowserOpened { url } => SignInProgress::BrowserOpened {
                    url: url.to_owned(),
                },
                Progress::OpenYourself { url, reason } => SignInProgress::OpenThisLink {
                    url: url.to_owned(),
                    reason,
                },
                Progress::Finishing => SignInProgress::Finishing,
                _ => return,
            };
            tell(&said);
        };
        let record = self.lanyard.login(ACCOUNT, &login, &progress).await;
        Ok(Identity::from_record(&record.map_err(for_the_app)?))
    }

    /// Signs in with a browser on another machine: for an app on a machine without one
    /// (over ssh, in a container) whose provider offers no device flow. `options.progress`
    /// gets [`SignInProgress::OpenThisLink`] with the provider's own page, to open in any
    /// browser anywhere, then [`SignInProgress::PasteBack`]; after signing in, that
    /// browser ends on a page on its own 127.0.0.1 that cannot load, and the person
    /// copies its address into your app: `pasted` resolves with it (or with `None` when
    /// they gave up: [`Kind::Incomplete`]). The address gets every check a redirect gets,
    /// and must carry this sign-in's `state`; one that fails them ends the sign-in (start
    /// another). `options.open_browser` is not used; `options.timeout` bounds
    /// the wait for the paste. Needs the loopback redirect (not
    /// [`Provider::redirect_scheme`]) and a progress callback.
    pub async fn sign_in_elsewhere(
        &self,
        options: &SignInOptions<'_>,
        pasted: impl Future<Output = Option<String>> + Send,
    ) -> Result<Identity, Error> {
        let Some(tell) = options.progress else {
            return Err(Error::Usage {
                kind: Kind::Config,
                message: "a sign-in elsewhere must show the person the link: give SignInOptions a progress callback".into(),
            });
        };
        let login = LoginOptions {
            open_browser: false,
            timeout: options.timeout,
            link_shown: true,
            ..LoginOptions::default()
        };
        let progress = |p: Progress<'_>| {
            let said = match p {
                Progress::OpenYourself { url, reason } => SignInProgress::OpenThisLink {
                    url: url.to_owned(),
                    reason,
                },
                Progress::PasteBack { redirect_uri } => SignInProgress::PasteBack {
                    redirect_uri: redirect_uri.to_owned(),
                },
                Progress::Finishing => SignInProgress::Finishing,
                _ => return,
            };
            tell(&said);
        };
        let given_up = std::sync::atomic::AtomicBool::new(false);
        let pasted = async {
            let address = pasted.await;
            given_up.store(address.is_none(), std::sync::atomic::Ordering::SeqCst);
            address
        };
        let record = self
            .lanyard
            .login_pasted(ACCOUNT, &login, &progress, Box::pin(pasted))
            .await;
        match record {
            Err(Error::Flow(crate::flow::Error::NotTheRedirect { .. }))
                if given_up.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                Err(Error::Usage {
                    kind: Kind::Incomplete,
                    message: "no address was pasted: the sign-in stopped".into(),
                })
            }
            record => Ok(Identity::from_record(&record.map_err(for_the_app)?)),
        }
    }

    /// Signs in with the device flow (RFC 8628), for a device without a browser or a
    /// person with a phone at hand: `show` gets the code to display; this resolves once
    /// they have signed in elsewhere, or fails when the code expires
    /// ([`DeviceCode::expires_in`], as the provider set it). Dropping the future stops
    /// asking the provider.
    pub async fn sign_in_with_device(
        &self,
        show: impl Fn(&DeviceCode) + Sync,
    ) -> Result<Identity, Error> {
        let progress = |p: Progress<'_>| {
            if let Progress::DeviceCode {
                user_code,
                verification_uri,
                verification_uri_complete,
                expires_in,
            } = p
            {
                show(&DeviceCode {
                    user_code: user_code.to_owned(),
                    verification_uri: verification_uri.to_owned(),
                    verification_uri_complete: verification_uri_complete.map(str::to_owned),
                    expires_in,
                });
            }
        };
        let options = LoginOptions::default();
        let record = self
            .lanyard
            .login_device(ACCOUNT, &options, &progress)
            .await;
        Ok(Identity::from_record(&record.map_err(for_the_app)?))
    }

    /// Whether the provider offers the device flow.
    pub async fn offers_device_flow(&self) -> Result<bool, Error> {
        self.lanyard.offers_device_flow(ACCOUNT).await
    }

    /// Hands a URL the OS gave the app (its private-use scheme, see
    /// [`Provider::redirect_scheme`]) to the sign-in or sign-out waiting for it. A URL
    /// nobody waits for, or one whose `state` matches no request, is refused.
    pub fn redirected(&self, url: &str) -> Result<(), Error> {
        self.inbox
            .deliver(url)
            .map_err(|refused| Error::LinkRefused(refused.to_string()))
    }

    /// Who is signed in, if anyone, from what was stored at sign-in (no network, no
    /// keychain read). A sign-in found to have lapsed is still returned, with
    /// [`Identity::sign_in_needed`] set; that is found when a token is asked for
    /// ([`Client::access_token`]).
    pub fn identity(&self) -> Option<Identity> {
        self.lanyard
            .whoami(ACCOUNT)
            .ok()
            .map(|record| Identity::from_record(&record))
    }

    /// An access token valid for at least `min_valid`: the stored one, or a refreshed one
    /// (the refresh token rotates safely, one refresh at a time). Two exceptions, both
    /// without an error: a provider whose tokens last less than `min_valid` gives them as
    /// they are; and while a refresh fails (the provider is down) the current token is
    /// given for as long as it lasts, so that a blip at the provider does not stop your
    /// app. Once it has expired, the refresh's failure is the error, and
    /// [`Error::kind`] says whether signing in again is what helps. A failed refresh
    /// keeps the old sign-in.
    ///
    /// Whether the sign-in still works is found here, not by [`Client::identity`]: a
    /// keychain emptied since, or a refresh the provider refuses, is
    /// [`Kind::SignInNeeded`] (and [`Identity::sign_in_needed`] is set from then on).
    pub async fn access_token(&self, min_valid: Duration) -> Result<Secret, Error> {
        // Said for the app's person: there is no `lanyard login` to run here.
        let token = self.lanyard.token(ACCOUNT, min_valid.as_secs()).await;
        Ok(token.map_err(for_the_app)?.token)
    }

    /// Refreshes now, whatever the current token's lifetime, and returns the new access
    /// token: for when your API refused the token it was given (`401` with
    /// `invalid_token`: the provider revoked it, or forgot the grant). If the provider no
    /// longer accepts the sign-in, this is [`Kind::SignInNeeded`] (and
    /// [`Identity::sign_in_needed`] is set): sign in again. A sign-in without a refresh
    /// token is `Kind::SignInNeeded` at once.
    pub async fn refresh(&self) -> Result<Secret, Error> {
        // Longer than any token lives: the stored one never suffices, so it is refreshed.
        const LONGER_THAN_ANY_TOKEN: u64 = 100 * 365 * 24 * 3600;
        let token = self.lanyard.token(ACCOUNT, LONGER_THAN_ANY_TOKEN).await;
        let token = token.map_err(for_the_app)?;
        match token.refresh_failed {
            Some(why) => Err(Error::Usage {
                kind: Kind::Provider,
                message: format!("the sign-in could not be refreshed: {why}"),
            }),
            None => Ok(token.token),
        }
    }

    /// The headers that authorize one request (`method` at `url`) with the access token:
    /// `Authorization: Bearer …`, or for a DPoP-bound sign-in `Authorization: DPoP …` and
    /// a `DPoP` proof made for this request alone (the key never leaves the keychain and
    /// this process). Pass the request's whole URL; the proof leaves out its query and
    /// fragment, as RFC 9449 asks. `nonce` is the resource server's `DPoP-Nonce`, when it
    /// asked for one (a 401 with that header: ask again with it, and send again). Nobody
    /// signed in: [`Kind::SignInNeeded`].
    pub async fn authorization(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        min_valid: Duration,
    ) -> Result<Vec<(String, String)>, Error> {
        let token = self
            .lanyard
            .token(ACCOUNT, min_valid.as_secs())
            .await
            .map_err(for_the_app)?;
        if !token.dpop {
            let bearer = format!("Bearer {}", token.token.expose());
            return Ok(vec![("Authorization".into(), bearer)]);
        }
        let url = url::Url::parse(url).map_err(|e| Error::Usage {
            kind: Kind::Config,
            message: format!("`{url}` is not a URL: {e}"),
        })?;
        let proof = self
            .lanyard
            .dpop_proof(ACCOUNT, method, &url, &token.token, nonce)
            .await?
            .ok_or_else(|| Error::SignInAgain {
                reason: "the sign-in's DPoP key is gone from the keychain".into(),
            })?;
        Ok(vec![
            (
                "Authorization".into(),
                format!("DPoP {}", token.token.expose()),
            ),
            ("DPoP".into(), proof),
        ])
    }

    /// Signs out: revokes the tokens where the provider allows, forgets them, and ends
    /// the provider's session in the browser (nobody signed in: no browser either).
    pub async fn sign_out(&self) -> Result<SignOut, Error> {
        self.sign_out_with(&SignOutOptions::default()).await
    }

    /// Signs out as `options` say: without a browser it revokes and forgets, and returns
    /// at once with the provider's sign-out page as a link; `local` only forgets.
    pub async fn sign_out_with(&self, options: &SignOutOptions) -> Result<SignOut, Error> {
        use crate::session::EndSession;
        let report = self
            .lanyard
            .logout(ACCOUNT, options.local, options.open_browser, &|_| {})
            .await
            .map_err(for_the_app)?;
        Ok(SignOut {
            was_signed_in: report.was_signed_in,
            revoked: report.revoked.iter().map(|r| (*r).to_owned()).collect(),
            provider_session_ended: report.end_session == EndSession::Ended,
            sign_out_link: match report.end_session {
                EndSession::Link(url) => Some(url),
                _ => None,
            },
            warnings: report.warnings,
        })
    }
}

/// Why a browser started here could not come back to this app, if it could not: `"This
/// is an ssh session"` or `"There is no display here"` (Linux without `DISPLAY` or
/// `WAYLAND_DISPLAY`); `None` where one can, or where `$BROWSER` says how to open one.
/// An app that gets a reason signs in with the device flow
/// ([`Client::sign_in_with_device`], where [`Client::offers_device_flow`]), or shows the
/// link ([`SignInOptions::open_browser`] false) for a browser on this machine.
pub fn browser_unavailable() -> Option<&'static str> {
    crate::browser::unreachable_here()
}

/// What an app's person can act on, in the app's words: there is no `lanyard login` to
/// run, no accounts file and no command-line flag in an app.
fn for_the_app(e: Error) -> Error {
    match e {
        Error::SubjectChanged { was, now, .. } => Error::Usage {
            kind: Kind::Rejected,
            message: format!(
                "this app is signed in as {was}, but the sign-in came back as {now}: nothing was kept; sign out first to sign in as someone else"
            ),
        },
        Error::SignInNeeded { reason, .. } => Error::SignInAgain { reason },
        Error::PasteNeedsLoopback { uri, .. } => Error::Usage {
            kind: Kind::Config,
            message: format!(
                "a sign-in elsewhere needs the loopback redirect, and this app's provider comes back through {uri}: sign in with the device flow where the provider offers it"
            ),
        },
        Error::Loopback(crate::flow::loopback::Error::Timeout(waited)) => Error::Usage {
            kind: Kind::Incomplete,
            message: format!(
                "no sign-in came back from the browser within {} s; try again",
                waited.as_secs()
            ),
        },
        Error::Config(crate::config::Error::Invalid { key, message, .. }) => {
            let setting = key
                .strip_prefix(&format!("accounts.{ACCOUNT}."))
                .unwrap_or(&key);
            Error::Usage {
                kind: Kind::Config,
                message: format!("the provider's settings: {setting}: {message}"),
            }
        }
        Error::Store(crate::store::Error::Unavailable { message, .. }) => {
            Error::Store(crate::store::Error::Unavailable {
                message,
                hint: "Unlock the keychain (the system's password store) and try again.",
            })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before any sign-in, a token is refused as the app's person needs it said: sign in
    /// again, with no account name and no command line to run.
    #[tokio::test]
    async fn a_token_before_signing_in_says_to_sign_in() {
        let provider = Provider::new("https://id.example.test", "notes");
        let client = Client::new(provider, Storage::memory()).unwrap();
        assert_eq!(client.identity(), None);
        let e = client
            .access_token(Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), crate::Kind::SignInNeeded);
        let message = e.to_string();
        assert!(message.starts_with("sign-in needed: "), "{message}");
        assert!(
            !message.contains("lanyard login") && !message.contains(ACCOUNT),
            "{message}"
        );
    }

    /// A sign-in that lapsed (its refresh refused) is still who signed in, and says it
    /// needs a sign-in, so that an app does not greet someone it cannot get a token for.
    #[test]
    fn a_lapsed_sign_in_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let record = |status| Record {
            account: ACCOUNT.into(),
            issuer: "https://id.example.test".into(),
            client_id: "notes".into(),
            subject: "alice".into(),
            signed_in_at: 1,
            access_token_expires_at: None,
            id_token_expires_at: None,
            refreshable: true,
            scopes: vec!["openid".into()],
            store: "keychain".into(),
            response_type: crate::config::ResponseType::Code,
            id_token_claims: Map::new(),
            userinfo: None,
            access_token_claims: None,
            dpop: false,
            status,
            tokens_stamp: None,
        };
        let records = Records::new(Some(dir.path().to_owned()));
        let storage = Storage::keychain("dev.lanyard.test.lapsed", dir.path());
        let client = Client::new(Provider::new("https://id.example.test", "notes"), storage);
        let client = client.unwrap();
        records
            .save(StoreKind::Keychain, &record(Status::SignedIn))
            .unwrap();
        assert_eq!(client.identity().unwrap().sign_in_needed, None);
        let lapsed = Status::SignInNeeded {
            reason: "the provider no longer accepts the refresh token (invalid_grant)".into(),
        };
        records.save(StoreKind::Keychain, &record(lapsed)).unwrap();
        let me = client.identity().unwrap();
        assert_eq!(me.subject, "alice");
        assert!(me.sign_in_needed.unwrap().contains("invalid_grant"));
    }

    /// The provider's settings get the accounts file's checks.
    #[test]
    fn a_bad_issuer_is_refused_as_the_file_would_refuse_it() {
        let provider = Provider::new("ftp://id.example.test", "notes");
        let e = Client::new(provider, Storage::memory()).err().unwrap();
        assert_eq!(e.kind(), crate::Kind::Config);
        // In the app's words: its provider's setting, not a file, line and section.
        let message = e.to_string();
        assert!(
            message.starts_with("the provider's settings: issuer: "),
            "{message}"
        );
        assert!(
            !message.contains("accounts.") && !message.contains("the client's provider:"),
            "{message}"
        );
    }

    /// The scheme whose links an app hands over is the redirect's, checked as the file
    /// checks it; a loopback client has none.
    #[test]
    fn the_redirect_scheme_is_the_one_links_come_back_on() {
        let issuer = "https://id.example.test";
        let client = Client::new(
            Provider::new(issuer, "notes").redirect_scheme("com.example.notes:/callback"),
            Storage::memory(),
        )
        .unwrap();
        assert_eq!(client.redirect_scheme(), Some("com.example.notes"));
        let loopback = Client::new(Provider::new(issuer, "notes"), Storage::memory()).unwrap();
        assert_eq!(loopback.redirect_scheme(), None);
        let e = Client::new(
            Provider::new(issuer, "notes").redirect_scheme("http://127.0.0.1/callback"),
            Storage::memory(),
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), crate::Kind::Config, "{e}");
    }
}
