//! The operations on an account: sign in, get a token, sign out, say who is signed in.
//!
//! [`Lanyard`] ties the other modules together and owns the policy of what is stored
//! when: nothing is written until every check of a sign-in has passed; a rotated refresh
//! token is in the store before the access token that came with it is handed out; a
//! failed refresh keeps the old tokens. The CLI, the broker and the desktop app call these
//! functions and render the results.
//!
//! `login` signs in (browser or device flow), `token` hands out access tokens and refreshes
//! them, `logout` signs out; what they share (the stores, discovery, ID token checks) is
//! here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::config::{Account, Config, StoreKind};
use crate::discovery::Provider;
use crate::error::Error;
use crate::flow::handoff::Handoff;
use crate::flow::scheme::Inbox;
use crate::secret::Secret;
use crate::store::{self, Keychain, Memory, Record, Records, Secrets, Tokens};
use crate::{browser, flow, http, validate};

/// A page handed to the browser ([`Lanyard::show`]): the one-time page, and the browser's
/// command, watched.
pub(crate) struct Shown {
    pub(crate) handoff: Handoff,
    browser: Option<browser::Launched>,
}

impl Shown {
    /// Resolves when the sign-in must stop: the one-time page was asked for twice, or the
    /// browser's command failed and nobody is shown the link (`link_shown` false). With the
    /// link shown, a failed browser is reported as the link to open, and waited past.
    pub(crate) async fn interrupted(
        &mut self,
        link_shown: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Error {
        loop {
            let failed = async {
                match &mut self.browser {
                    Some(browser) => browser.failed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.handoff.stolen() => return flow::Error::HandoffStolen.into(),
                e = failed => {
                    self.browser = None;
                    if !link_shown {
                        return e.into();
                    }
                    progress(Progress::OpenYourself {
                        url: self.handoff.url(),
                        reason: Some(e.to_string()),
                    });
                }
            }
        }
    }
}

mod cloud;
mod dpop;
mod held;
mod lapsed;
mod login;
mod logout;
mod token;

pub use crate::error::StsError;
pub use cloud::AwsCredentials;
pub use lapsed::TOOL_SIGN_IN_BACKOFF;
pub use login::{LoginOptions, Pasted};
pub use logout::{END_SESSION_TIMEOUT, EndSession, Logout};
pub use token::AccessToken;

/// What a sign-in is doing, for a progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The browser was started. `url` is safe to show: for sign-out it lacks the query,
    /// whose `id_token_hint` is a token.
    BrowserOpened {
        /// The page opened.
        url: &'a str,
    },
    /// The person must open this URL themselves (`--no-browser`, or no browser started).
    OpenYourself {
        /// The page to open.
        url: &'a str,
        /// Why the browser was not started, if it failed.
        reason: Option<String>,
    },
    /// A browser elsewhere (`--paste`): the address it ends on, to be pasted back, starts
    /// with `redirect_uri`.
    PasteBack {
        /// This sign-in's redirect URI.
        redirect_uri: &'a str,
    },
    /// Waiting for the browser to come back.
    Waiting,
    /// Scan-to-sign-in (RFC 8628): the person signs in on their own device at
    /// `verification_uri` with `user_code`; `verification_uri_complete` (the QR code's
    /// content) carries the code.
    DeviceCode {
        /// What the person types.
        user_code: &'a str,
        /// Where they type it.
        verification_uri: &'a str,
        /// The URL with the code in it.
        verification_uri_complete: Option<&'a str>,
        /// How long the code is good for.
        expires_in: Duration,
    },
    /// The browser came back; checking the response and redeeming the code.
    Finishing,
}

/// Sign-ins for the accounts of an accounts file: login, token, logout, whoami and status, with the policy of what is stored where. The command line, the broker, the desktop app and [`crate::client::Client`] all run on it.
pub struct Lanyard {
    config: Config,
    http: http::Client,
    records: Arc<Records>,
    memory: Arc<Memory>,
    /// Opened on first use and kept; a failure is not kept, so a later call may succeed.
    keychain: Mutex<Option<Arc<dyn Secrets>>>,
    store_override: Option<StoreKind>,
    /// One refresh at a time per account: a provider that rotates refresh tokens treats
    /// a second use of the old one as theft and revokes the grant.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Discovered providers by issuer, with when (see `discover`).
    providers: Mutex<HashMap<String, (Instant, Arc<Provider>)>>,
    /// Where private-use scheme redirects arrive, when the desktop app runs this session.
    inbox: Option<Arc<Inbox>>,
    /// Where sign-in pages open: the person's browser, or a kiosk seat's.
    opener: Arc<dyn browser::Opener>,
    /// The keychain service an embedding app keeps its tokens under, instead of Lanyard's.
    service: Option<String>,
    /// An app's one sign-in ([`crate::client`]): pages and messages do not name the
    /// account, which the person never chose.
    pub(crate) embedded: bool,
    /// Tokens kept in memory between refreshes, in a long-running process.
    held: held::HeldTokens,
}

/// How long a discovery document is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);

impl Lanyard {
    /// Sessions for the accounts in `config`, with their records in `records`. Nothing is fetched yet.
    pub fn new(config: Config, records: Records) -> Result<Lanyard, Error> {
        Ok(Lanyard {
            config,
            http: http::Client::new().map_err(|e| Error::Flow(e.into()))?,
            records: Arc::new(records),
            memory: Arc::new(Memory::default()),
            keychain: Mutex::new(None),
            store_override: None,
            refreshing: Mutex::new(HashMap::new()),
            providers: Mutex::new(HashMap::new()),
            inbox: None,
            opener: Arc::new(browser::System),
            service: None,
            embedded: false,
            held: held::HeldTokens::default(),
        })
    }

    /// For a long-running process (the agent, the desktop app): keep each account's
    /// tokens in memory between refreshes, and leave a refresh that did not rotate the
    /// refresh token unwritten (see `held.rs`).
    pub fn long_running(mut self) -> Lanyard {
        self.held = held::HeldTokens::on();
        self
    }

    /// Keep every account's tokens in `kind`, whatever the config says (`--store`).
    pub fn with_store(mut self, kind: Option<StoreKind>) -> Lanyard {
        self.store_override = kind;
        self
    }

    /// The accounts file it was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where `account`'s tokens are kept (the file's choice, unless overridden).
    pub fn store_kind(&self, account: &Account) -> StoreKind {
        self.store_override.unwrap_or(account.store)
    }

    /// Where this session receives private-use scheme redirects: only the desktop app
    /// has such an inbox (the OS hands it the URLs).
    fn scheme_inbox(&self, account: &Account, uri: &str) -> Result<Arc<Inbox>, Error> {
        self.inbox.clone().ok_or_else(|| Error::SchemeNeedsApp {
            account: account.name.clone(),
            uri: uri.to_owned(),
        })
    }

    /// The lock that runs an account's refreshes and its sign-out one at a time.
    fn account_lock(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.refreshing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// Open sign-in and sign-out pages with `opener` (a kiosk seat's browser).
    pub fn with_opener(mut self, opener: Arc<dyn browser::Opener>) -> Lanyard {
        self.opener = opener;
        self
    }

    /// Keep keychain secrets in `store` instead of the OS keychain (an embedder's own
    /// store). Memory accounts still keep their tokens in this process's memory.
    pub fn with_keychain(self, store: Arc<dyn Secrets>) -> Lanyard {
        let store = self.renamed(store);
        *self.keychain.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
        self
    }

    /// Keep tokens in the keychain under `service` (an embedding app's own name) instead
    /// of `lanyard`, so that the app's sign-ins and Lanyard's own never meet.
    pub fn with_service(mut self, service: &str) -> Lanyard {
        self.service = Some(service.to_owned());
        let mut keychain = self.keychain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = keychain.take() {
            *keychain = Some(Arc::new(store::Renamed::new(store, service)));
        }
        drop(keychain);
        self
    }

    fn renamed(&self, store: Arc<dyn Secrets>) -> Arc<dyn Secrets> {
        match &self.service {
            Some(service) => Arc::new(store::Renamed::new(store, service)),
            None => store,
        }
    }

    /// Receive private-use scheme redirects (`redirect = "dev.lanyard:/callback"`)
    /// through `inbox`, which the desktop app feeds from its deep-link handler.
    pub fn with_inbox(mut self, inbox: Arc<Inbox>) -> Lanyard {
        self.inbox = Some(inbox);
        self
    }

    /// The stored ID token of a signed-in account.
    pub async fn id_token(&self, name: &str) -> Result<Secret, Error> {
        let account = self.config.account(name)?;
        let kind = self.store_kind(account);
        let held = (self.records.load(kind, name)).and_then(|stored| self.held.get(&stored));
        let tokens = match held {
            Some((_, tokens)) => Some(tokens),
            None => load_tokens(self.secrets(kind).await?, name).await?,
        };
        tokens
            .and_then(|t| t.id_token)
            .ok_or_else(|| Error::SignInNeeded {
                account: name.to_owned(),
                reason: "no ID token is stored".into(),
            })
    }

    /// The stored record of who is signed in.
    pub fn whoami(&self, name: &str) -> Result<Record, Error> {
        let account = self.config.account(name)?;
        self.record(self.store_kind(account), name)
            .ok_or_else(|| Error::SignInNeeded {
                account: name.to_owned(),
                reason: "not signed in".into(),
            })
    }

    /// The account's record: the stored one, or the one this process holds when a
    /// refresh it left unwritten made that newer than the file.
    fn record(&self, kind: StoreKind, name: &str) -> Option<Record> {
        let stored = self.records.load(kind, name)?;
        match self.held.get(&stored) {
            Some((record, _)) if stored.status == store::Status::SignedIn => Some(record),
            _ => Some(stored),
        }
    }

    /// Every configured account with its record, if it has one.
    pub fn status(&self) -> Vec<(&Account, Option<Record>)> {
        self.config
            .accounts
            .values()
            .map(|a| (a, self.record(self.store_kind(a), &a.name)))
            .collect()
    }

    /// Stores a client secret for an account in the keychain.
    pub async fn set_client_secret(&self, name: &str, value: Secret) -> Result<(), Error> {
        let account = self.config.account(name)?;
        let keychain = self.secrets(StoreKind::Keychain).await?;
        let name = account.name.clone();
        run_blocking(move || keychain.set(store::CLIENT_SECRET, &name, &value)).await?;
        // A new stamp: processes that hold the old secret read the new one.
        let kind = self.store_kind(account);
        if let Some(mut record) = self.records.load(kind, &account.name) {
            record.tokens_stamp = Some(held::new_stamp());
            self.records.save(kind, &record)?;
        }
        Ok(())
    }

    /// Sends the browser on to `next` through a one-time loopback page ([`Handoff`]), so
    /// that no browser command line (readable by every user in /proc) and no printed link
    /// carries `state`, `nonce` or an `id_token_hint`; or asks the person to open that page.
    /// `shown` is what may be printed once the browser has it. Keep the page while
    /// waiting ([`Shown`]): dropped, it is gone. A browser that cannot be started is
    /// reported as the link to open, or with `link_shown` false (nobody would see it) is
    /// an error at once.
    async fn show(
        &self,
        next: url::Url,
        shown: &str,
        (open_browser, link_shown): (bool, bool),
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Shown, Error> {
        let handoff = Handoff::serve(next).await?;
        let url = handoff.url();
        if !open_browser {
            progress(Progress::OpenYourself { url, reason: None });
            return Ok(Shown {
                handoff,
                browser: None,
            });
        }
        let browser = match self.opener.launch(url) {
            Ok(browser) => {
                progress(Progress::BrowserOpened { url: shown });
                browser
            }
            Err(e) if !link_shown => return Err(e.into()),
            Err(e) => {
                progress(Progress::OpenYourself {
                    url,
                    reason: Some(e.to_string()),
                });
                None
            }
        };
        Ok(Shown { handoff, browser })
    }

    /// The provider as discovered within the last [`DISCOVERY_TTL`]; its key cache comes
    /// along, so a refresh costs the token request alone. A sign-in always discovers
    /// afresh.
    async fn discover(&self, account: &Account) -> Result<Arc<Provider>, Error> {
        let cached = self
            .providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&account.issuer)
            .filter(|(at, _)| at.elapsed() < DISCOVERY_TTL)
            .map(|(_, provider)| provider.clone());
        match cached {
            Some(provider) => Ok(provider),
            None => self.discover_afresh(account).await,
        }
    }

    async fn discover_afresh(&self, account: &Account) -> Result<Arc<Provider>, Error> {
        let provider = Provider::discover(&self.http, &account.issuer)
            .await
            .map_err(|source| Error::Discovery {
                issuer: account.issuer.clone(),
                source,
            })?;
        let provider = Arc::new(provider);
        self.providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.issuer.clone(), (Instant::now(), provider.clone()));
        Ok(provider)
    }

    async fn secrets(&self, kind: StoreKind) -> Result<Arc<dyn Secrets>, Error> {
        if kind == StoreKind::Memory {
            return Ok(self.memory.clone());
        }
        if let Some(keychain) = self
            .keychain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(keychain);
        }
        let keychain = self.renamed(run_blocking(Keychain::open).await?.into_secrets());
        *self.keychain.lock().unwrap_or_else(|e| e.into_inner()) = Some(keychain.clone());
        Ok(keychain)
    }

    /// The account's client secret from the keychain, if it has one. A memory account
    /// works without a keychain, as a public client.
    async fn client_secret(
        &self,
        account: &Account,
        kind: StoreKind,
    ) -> Result<Option<Secret>, Error> {
        let keychain = match self.secrets(StoreKind::Keychain).await {
            Ok(k) => k,
            Err(_) if kind == StoreKind::Memory => return Ok(None),
            Err(e) => return Err(e),
        };
        // A long-running process holds it beside the account's tokens.
        let stored = self
            .held
            .is_on()
            .then(|| self.records.load(kind, &account.name));
        let stored = stored.flatten();
        if let Some(secret) = stored.as_ref().and_then(|r| self.held.client_secret(r)) {
            return Ok(secret);
        }
        let name = account.name.clone();
        let secret = run_blocking(move || keychain.get(store::CLIENT_SECRET, &name)).await?;
        if let Some(stored) = &stored {
            self.held.put_client_secret(stored, &secret);
        }
        Ok(secret)
    }
}

/// Verifies an ID token: its signature with the provider's keys, then its claims against
/// what was asked for (OpenID Connect Core 3.1.3.7; `nonce` is `None` for refreshes).
async fn check_id_token(
    provider: &Provider,
    account: &Account,
    id_token: &Secret,
    nonce: Option<&Secret>,
    max_age: Option<u64>,
    access_token: Option<&Secret>,
) -> Result<validate::IdClaims, Error> {
    let (header, payload) = provider.verify(id_token.expose()).await?;
    validate::id_token_type(header.typ.as_deref())?;
    let alg = header.alg;
    let expected = validate::Expected {
        issuer: provider.issuer(),
        client_id: &account.client_id,
        nonce,
        max_age,
        access_token,
        require_at_hash: false,
        now: now(),
    };
    Ok(validate::id_token(&payload, &alg, &expected)?)
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::Error> + Send + 'static,
) -> Result<T, store::Error> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(store::Error::Failed(format!(
            "the keychain call did not finish: {e}"
        )))
    })
}

async fn save_tokens(
    secrets: Arc<dyn Secrets>,
    name: &str,
    tokens: &Tokens,
) -> Result<(), store::Error> {
    let name = name.to_owned();
    let value = tokens.to_secret();
    run_blocking(move || secrets.set(store::TOKENS, &name, &value)).await
}

async fn load_tokens(
    secrets: Arc<dyn Secrets>,
    name: &str,
) -> Result<Option<Tokens>, store::Error> {
    let name = name.to_owned();
    let stored = run_blocking(move || secrets.get(store::TOKENS, &name)).await?;
    stored.as_ref().map(Tokens::from_secret).transpose()
}

/// The claims worth keeping: all but the one-time values of the sign-in itself.
fn identity_claims(mut claims: Map<String, Value>) -> Map<String, Value> {
    for one_time in ["nonce", "at_hash", "c_hash", "s_hash"] {
        claims.remove(one_time);
    }
    claims
}

/// The name to greet someone by: `name`, else `preferred_username`, else `email`.
pub fn display_name(claims: &Map<String, Value>) -> Option<&str> {
    ["name", "preferred_username", "email"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str))
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
