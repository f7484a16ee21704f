//! The operations on an account: sign in, get a token, sign out, say who is signed in.
//!
//! [`Lanyard`] ties the other modules together and owns the policy of what is stored
//! when: nothing is written until every check of a sign-in has passed; a rotated refresh
//! token is in the store before the access token that came with it is handed out; a
//! failed refresh keeps the old tokens. The CLI calls these functions and renders the
//! results; so will the broker and the desktop app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::config::{Account, Config, Redirect, ResponseMode, ResponseType, StoreKind};
use crate::discovery::Provider;
use crate::error::Error;
use crate::flow::handoff::Handoff;
use crate::flow::loopback::{Listener, Page};
use crate::flow::scheme::Inbox;
use crate::flow::{self, AuthRequest, Overrides, Params};
use crate::secret::{self, Secret};
use crate::store::{self, Keychain, Memory, Record, Records, Secrets, Status, Tokens};
use crate::{browser, http, validate};

mod token;

pub use token::AccessToken;

/// The warning when the provider's sign-out page never sent the browser back.
const NO_END_SESSION_ANSWER: &str = "the browser did not come back from the provider's sign-out page; the provider session may still be active";

/// The warning when the one-time sign-out page was asked for twice.
const STOLEN: &str = "the provider session was not ended: the one-time sign-out page was opened twice, perhaps by another program on this computer; sign out at the provider yourself";

/// How long `logout` waits for the provider to send the browser back.
pub const END_SESSION_TIMEOUT: Duration = Duration::from_secs(120);

/// What a sign-in is doing, for a progress display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The browser was started. `url` is safe to show: for sign-out it lacks the query,
    /// whose `id_token_hint` is a token.
    BrowserOpened { url: &'a str },
    /// The person must open this URL themselves (`--no-browser`, or no browser started).
    OpenYourself {
        url: &'a str,
        reason: Option<String>,
    },
    /// Waiting for the browser to come back.
    Waiting,
    /// Scan-to-sign-in (RFC 8628): the person signs in on their own device at
    /// `verification_uri` with `user_code`; `verification_uri_complete` (the QR code's
    /// content) carries the code.
    DeviceCode {
        user_code: &'a str,
        verification_uri: &'a str,
        verification_uri_complete: Option<&'a str>,
        expires_in: Duration,
    },
    /// The browser came back; checking the response and redeeming the code.
    Finishing,
}

pub struct LoginOptions {
    pub open_browser: bool,
    pub timeout: Duration,
    pub prompt: Option<String>,
}

/// What [`Lanyard::logout`] did.
#[derive(Debug, Default)]
pub struct Logout {
    pub was_signed_in: bool,
    pub revoked: Vec<&'static str>,
    pub end_session: EndSession,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub enum EndSession {
    /// `--local`: the provider was not told.
    #[default]
    Skipped,
    /// The provider has no `end_session_endpoint`.
    NotOffered,
    /// The browser came back from the provider's logout.
    Ended,
    /// The browser did not come back in time; the provider session may remain.
    NoAnswer,
}

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
}

/// A sign-in's starting point ([`Lanyard::sign_in`]).
struct SignIn<'a> {
    account: &'a Account,
    kind: StoreKind,
    secrets: Arc<dyn Secrets>,
    client_secret: Option<Secret>,
    provider: Arc<Provider>,
}

/// How long a discovery document is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);

impl Lanyard {
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
        })
    }

    /// Keep every account's tokens in `kind`, whatever the config says (`--store`).
    pub fn with_store(mut self, kind: Option<StoreKind>) -> Lanyard {
        self.store_override = kind;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store_kind(&self, account: &Account) -> StoreKind {
        self.store_override.unwrap_or(account.store)
    }

    /// Signs in through the browser. Stores tokens and the record only if every check passes.
    pub async fn login(
        &self,
        name: &str,
        options: &LoginOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Record, Error> {
        let SignIn {
            account,
            kind,
            secrets,
            client_secret,
            provider,
        } = self.sign_in(name).await?;
        let overrides = Overrides {
            prompt: options.prompt.clone(),
        };
        let listener = match &account.redirect {
            Redirect::Loopback { port } => Listener::bind(*port).await?,
            Redirect::Scheme { uri } => {
                let inbox = self.scheme_inbox(account, uri)?;
                let request = AuthRequest::new(&provider, account, uri, &overrides)?;
                // In the inbox before the browser opens: the link may come back at once.
                let mut waiting = inbox.expect(request.state.expose());
                let mut handoff = self.send(&request, options, progress).await?;
                let params = tokio::select! {
                    params = tokio::time::timeout(options.timeout, waiting.recv()) => params
                        .ok()
                        .flatten()
                        .ok_or(flow::loopback::Error::Timeout(options.timeout))?,
                    () = handoff.stolen() => return Err(flow::Error::HandoffStolen.into()),
                };
                progress(Progress::Finishing);
                let (secret, params) = (client_secret.as_ref(), &params);
                return self
                    .finish_login(account, kind, &provider, &request, params, secret, secrets)
                    .await;
            }
        };
        let request = AuthRequest::new(&provider, account, &listener.uri("/callback"), &overrides)?;
        let mut handoff = self.send(&request, options, progress).await?;
        let waited = listener.wait(
            "/callback",
            &request.state,
            options.timeout,
            account.response_mode == ResponseMode::Fragment,
        );
        let callback = tokio::select! {
            callback = waited => callback?,
            () = handoff.stolen() => return Err(flow::Error::HandoffStolen.into()),
        };
        progress(Progress::Finishing);
        let outcome = self
            .finish_login(
                account,
                kind,
                &provider,
                &request,
                &callback.params,
                client_secret.as_ref(),
                secrets,
            )
            .await;
        let message = match &outcome {
            Ok(record) => format!(
                "You are signed in to {name} as {}. You can close this tab.",
                display_name(&record.claims()).unwrap_or(&record.subject)
            ),
            Err(e) => format!("{e}"),
        };
        let title = if outcome.is_ok() {
            "Signed in"
        } else {
            "Sign-in failed"
        };
        callback
            .finish(&Page {
                ok: outcome.is_ok(),
                title,
                message: &message,
            })
            .await;
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_login(
        &self,
        account: &Account,
        kind: StoreKind,
        provider: &Provider,
        request: &AuthRequest,
        params: &Params,
        client_secret: Option<&Secret>,
        secrets: Arc<dyn Secrets>,
    ) -> Result<Record, Error> {
        let artifact = request.check_response(provider, params)?;
        // The code flow redeems the code for tokens; the ID-token flow has its token already.
        let (response, id_token) = match request.response_type {
            ResponseType::Code => {
                let auth = flow::client_auth(account, provider, client_secret)?;
                let response =
                    flow::exchange(&self.http, provider, &auth, &artifact, request).await?;
                let id_token = response.id_token.clone().ok_or(flow::Error::NoIdToken)?;
                (Some(response), id_token)
            }
            ResponseType::IdToken => (None, artifact),
        };
        self.keep(
            account,
            kind,
            provider,
            response,
            id_token,
            (Some(&request.nonce), account.max_age),
            secrets,
        )
        .await
    }

    /// Checks a sign-in's tokens (ID token, introspection, userinfo) and, when every check
    /// passes, stores them and the record.
    #[allow(clippy::too_many_arguments)]
    async fn keep(
        &self,
        account: &Account,
        kind: StoreKind,
        provider: &Provider,
        response: Option<flow::TokenResponse>,
        id_token: Secret,
        (nonce, max_age): (Option<&Secret>, Option<u64>),
        secrets: Arc<dyn Secrets>,
    ) -> Result<Record, Error> {
        let now = now();
        let access_token = response.as_ref().map(|r| &r.access_token);
        let claims =
            check_id_token(provider, account, &id_token, nonce, max_age, access_token).await?;
        if account.introspect {
            let nonce = nonce.ok_or_else(|| {
                flow::Error::Introspection(
                    "this sign-in carried no nonce for the introspection check".into(),
                )
            })?;
            let url = provider
                .metadata
                .introspection_endpoint
                .as_ref()
                .ok_or_else(|| {
                    flow::Error::Introspection(
                        "the provider's discovery document has no introspection_endpoint".into(),
                    )
                })?;
            flow::introspect_id_token(
                &self.http,
                url,
                &account.client_id,
                &id_token,
                nonce,
                claims.subject(),
            )
            .await?;
        }
        let userinfo = match (&provider.metadata.userinfo_endpoint, access_token) {
            (Some(url), Some(access_token)) => {
                let userinfo =
                    flow::userinfo(&self.http, provider, url, access_token, &account.client_id)
                        .await?;
                validate::userinfo(&claims, &userinfo)?;
                Some(userinfo)
            }
            _ => None,
        };
        let access_token_claims = match access_token {
            Some(token) => jwt_claims(provider, token).await,
            None => None,
        };
        let scopes = granted_scopes(response.as_ref(), &claims.claims, account);
        let tokens = Tokens {
            access_token: access_token.cloned(),
            expires_at: response.as_ref().and_then(|r| r.expires_at(now)),
            refresh_token: response.as_ref().and_then(|r| r.refresh_token.clone()),
            id_token: Some(id_token),
            issuer: Some(provider.issuer().to_owned()),
            client_id: Some(account.client_id.clone()),
        };
        let record = Record {
            account: account.name.clone(),
            issuer: provider.issuer().to_owned(),
            client_id: account.client_id.clone(),
            subject: claims.subject().to_owned(),
            signed_in_at: now,
            access_token_expires_at: tokens.expires_at,
            id_token_expires_at: Some(claims.expires_at()),
            refreshable: tokens.refresh_token.is_some(),
            scopes,
            store: kind.to_string(),
            response_type: account.response_type,
            id_token_claims: identity_claims(claims.claims),
            userinfo,
            access_token_claims,
            status: Status::SignedIn,
        };
        save_tokens(secrets, &account.name, &tokens).await?;
        self.records.save(kind, &record)?;
        tracing::info!(account = %account.name, subject = %record.subject, "signed in");
        Ok(record)
    }

    /// Whether `name`'s provider offers the device flow (scan-to-sign-in).
    pub async fn offers_device_flow(&self, name: &str) -> Result<bool, Error> {
        let account = self.config.account(name)?;
        let provider = self.discover(account).await?;
        Ok(provider.metadata.device_authorization_endpoint.is_some())
    }

    /// Signs in with the device authorization grant (RFC 8628): `progress` gets the code
    /// to show, then the tokens are checked and stored as for a browser sign-in. Nothing
    /// is stored unless every check passes.
    pub async fn login_device(
        &self,
        name: &str,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Record, Error> {
        let SignIn {
            account,
            kind,
            secrets,
            client_secret,
            provider,
        } = self.sign_in(name).await?;
        let endpoint = provider
            .metadata
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| {
                flow::Error::Device(format!(
                    "{} offers no device authorization endpoint; sign in in the browser",
                    account.issuer
                ))
            })?;
        let auth = flow::client_auth(account, &provider, client_secret.as_ref())?;
        let scope = account.scopes.join(" ");
        let mut params = vec![("scope", scope.as_str())];
        params.extend(
            account
                .extra_params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let authorization = flow::device::start(&self.http, &endpoint, &auth, &params).await?;
        progress(Progress::DeviceCode {
            user_code: &authorization.user_code,
            verification_uri: authorization.verification_uri.as_str(),
            verification_uri_complete: authorization
                .verification_uri_complete
                .as_ref()
                .map(url::Url::as_str),
            expires_in: authorization.expires_in,
        });
        progress(Progress::Waiting);
        let response = flow::device::wait(&self.http, &provider, &auth, &authorization).await?;
        progress(Progress::Finishing);
        let id_token = response.id_token.clone().ok_or(flow::Error::NoIdToken)?;
        self.keep(
            account,
            kind,
            &provider,
            Some(response),
            id_token,
            // No nonce in RFC 8628. No max_age either: the person signs in on their own
            // device, where the provider decides whether to ask for credentials again;
            // the seat never sees them.
            (None, None),
            secrets,
        )
        .await
    }

    /// Signs out: revokes the tokens where the provider offers it, deletes them and the
    /// record, and (unless `local`) ends the provider's session in the browser.
    ///
    /// Forgetting is not conditional on anything else: a provider that cannot be reached,
    /// a client secret that cannot be read, a refused revocation each become a warning in
    /// the report, and the tokens and record are deleted all the same. Only a failure to
    /// delete them is an error.
    pub async fn logout(
        &self,
        name: &str,
        local: bool,
        open_browser: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Logout, Error> {
        let account = self.config.account(name)?;
        let kind = self.store_kind(account);
        // Not while a refresh runs: it would find the tokens gone and write the record
        // back as "sign-in needed" after this deletes it.
        let lock = self.account_lock(name);
        let one_at_a_time = lock.lock().await;
        let mut report = Logout::default();
        let secrets = self.secrets(kind).await;
        let tokens = match &secrets {
            Ok(secrets) => load_tokens(secrets.clone(), name)
                .await
                .unwrap_or_else(|e| {
                    report
                        .warnings
                        .push(format!("could not read the tokens to revoke them: {e}"));
                    None
                }),
            Err(_) => None,
        };
        let record = self.records.load(kind, name);
        report.was_signed_in = tokens.is_some() || record.is_some();
        // Tokens issued by another provider or to another client than the account names
        // now are not sent to this one, to revoke or as an `id_token_hint`.
        let tokens = tokens.filter(|t| {
            let (issuer, client) = record
                .as_ref()
                .map_or((account.issuer.as_str(), account.client_id.as_str()), |r| {
                    (r.issuer.as_str(), r.client_id.as_str())
                });
            let ours = t.issued_to(&account.issuer, &account.client_id, (issuer, client));
            if !ours {
                report.warnings.push(format!(
                    "the stored tokens belong to {} (client {}), not to the provider the account names now; they were forgotten without being sent to {}",
                    t.issuer.as_deref().unwrap_or(issuer),
                    t.client_id.as_deref().unwrap_or(client),
                    account.issuer
                ));
            }
            ours
        });
        let provider = if local {
            None
        } else {
            match self.discover(account).await {
                Ok(p) => Some(p),
                Err(e) => {
                    report.warnings.push(format!(
                        "could not reach the provider to revoke or end the session: {e}"
                    ));
                    None
                }
            }
        };
        if let (Some(provider), Some(tokens)) = (&provider, &tokens)
            && let Some(url) = &provider.metadata.revocation_endpoint
        {
            self.revoke_all(account, kind, provider, url, tokens, &mut report)
                .await;
        }
        let id_token = tokens.as_ref().and_then(|t| t.id_token.clone());
        // The record first: without it no token is handed out, even if the keychain
        // should fail to delete the tokens below.
        let removed = self.records.remove(kind, name);
        self.records.forget_pictures(name);
        let deleted = match secrets {
            Ok(secrets) => {
                let name = name.to_owned();
                run_blocking(move || secrets.delete(store::TOKENS, &name)).await
            }
            Err(e) => Err(match e {
                Error::Store(e) => e,
                other => store::Error::Failed(other.to_string()),
            }),
        };
        drop(one_at_a_time);
        deleted?;
        removed?;
        tracing::info!(account = %name, "signed out locally");
        if let Some(provider) = &provider {
            report.end_session = match &provider.metadata.end_session_endpoint {
                None => EndSession::NotOffered,
                Some(endpoint) if matches!(account.redirect, Redirect::Scheme { .. }) => {
                    self.end_session_by_scheme(
                        account,
                        endpoint,
                        id_token.as_ref(),
                        &mut report,
                        open_browser,
                        progress,
                    )
                    .await?
                }
                Some(endpoint) => {
                    // Providers that match redirect URIs exactly (ggLeap) match this one too.
                    let port = match account.redirect {
                        Redirect::Loopback { port } => port,
                        Redirect::Scheme { .. } => 0,
                    };
                    let listener = Listener::bind(port).await?;
                    let state = secret::random(16).map_err(|_| flow::Error::Random)?;
                    let landing = listener.uri("/logged-out");
                    let next = flow::end_session_url(
                        endpoint,
                        id_token.as_ref(),
                        &account.client_id,
                        &landing,
                        &state,
                    );
                    let mut handoff = self
                        .show(next, &http::display_url(endpoint), open_browser, progress)
                        .await?;
                    progress(Progress::Waiting);
                    let waited = listener.wait("/logged-out", &state, END_SESSION_TIMEOUT, false);
                    let landed = tokio::select! {
                        landed = waited => landed.ok(),
                        () = handoff.stolen() => {
                            report.warnings.push(STOLEN.into());
                            None
                        }
                    };
                    match landed {
                        Some(callback) => {
                            let message =
                                format!("You are signed out of {name}. You can close this tab.");
                            callback
                                .finish(&Page {
                                    ok: true,
                                    title: "Signed out",
                                    message: &message,
                                })
                                .await;
                            EndSession::Ended
                        }
                        None => {
                            report.warnings.push(NO_END_SESSION_ANSWER.into());
                            EndSession::NoAnswer
                        }
                    }
                }
            };
        }
        Ok(report)
    }

    /// Revokes the refresh and access tokens, best effort: each failure is a warning.
    async fn revoke_all(
        &self,
        account: &Account,
        kind: StoreKind,
        provider: &Provider,
        url: &url::Url,
        tokens: &Tokens,
        report: &mut Logout,
    ) {
        let client_secret = match self.client_secret(account, kind).await {
            Ok(secret) => secret,
            Err(e) => {
                report.warnings.push(format!(
                    "could not read the client secret to revoke the tokens: {e}"
                ));
                return;
            }
        };
        let auth = match flow::client_auth(account, provider, client_secret.as_ref()) {
            Ok(auth) => auth,
            Err(e) => {
                report
                    .warnings
                    .push(format!("could not revoke the tokens: {e}"));
                return;
            }
        };
        let pending = [
            ("refresh_token", tokens.refresh_token.as_ref()),
            ("access_token", tokens.access_token.as_ref()),
        ];
        for (hint, token) in pending {
            let Some(token) = token else { continue };
            match flow::revoke(&self.http, url, &auth, token, hint).await {
                Ok(()) => report.revoked.push(hint),
                // RFC 7009 section 2.2.1: this provider cannot revoke such tokens
                // (self-contained JWT access tokens); this one lapses at its expiry.
                Err(flow::Error::Http(e)) if e.oauth_error() == Some("unsupported_token_type") => {
                    report.warnings.push(format!(
                        "the provider cannot revoke its {hint}s; this one stays valid until it expires"
                    ))
                }
                Err(e) => report
                    .warnings
                    .push(format!("revoking the {hint} failed: {e}")),
            }
        }
    }

    /// Ends the provider's session for an account whose redirects come back by scheme:
    /// the provider sends the browser to `SCHEME:/logged-out`, which the app receives.
    async fn end_session_by_scheme(
        &self,
        account: &Account,
        endpoint: &url::Url,
        id_token: Option<&Secret>,
        report: &mut Logout,
        open_browser: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<EndSession, Error> {
        let Redirect::Scheme { uri } = &account.redirect else {
            return Ok(EndSession::Skipped);
        };
        let Ok(inbox) = self.scheme_inbox(account, uri) else {
            report.warnings.push(
                "the provider session was not ended: its sign-out page returns to the desktop app; sign out there"
                    .into(),
            );
            return Ok(EndSession::Skipped);
        };
        let scheme = uri.split(':').next().unwrap_or_default();
        let landing = format!("{scheme}:/logged-out");
        let state = secret::random(16).map_err(|_| flow::Error::Random)?;
        let mut waiting = inbox.expect(state.expose());
        let next = flow::end_session_url(endpoint, id_token, &account.client_id, &landing, &state);
        let mut handoff = self
            .show(next, &http::display_url(endpoint), open_browser, progress)
            .await?;
        progress(Progress::Waiting);
        let landed = tokio::select! {
            landed = tokio::time::timeout(END_SESSION_TIMEOUT, waiting.recv()) => landed,
            () = handoff.stolen() => {
                report.warnings.push(STOLEN.into());
                Ok(None)
            }
        };
        match landed {
            Ok(Some(_)) => Ok(EndSession::Ended),
            _ => {
                report.warnings.push(NO_END_SESSION_ANSWER.into());
                Ok(EndSession::NoAnswer)
            }
        }
    }

    /// Where this session receives private-use scheme redirects: only the desktop app
    /// has such an inbox (the OS hands it the URLs).
    fn scheme_inbox(&self, account: &Account, uri: &str) -> Result<Arc<Inbox>, Error> {
        self.inbox.clone().ok_or_else(|| Error::SchemeNeedsApp {
            account: account.name.clone(),
            uri: uri.to_owned(),
        })
    }

    /// What every sign-in needs before the person is sent anywhere: the store must work,
    /// the client secret be there, and the provider be discovered afresh.
    async fn sign_in<'a>(&'a self, name: &str) -> Result<SignIn<'a>, Error> {
        let account = self.config.account(name)?;
        let kind = self.store_kind(account);
        Ok(SignIn {
            account,
            kind,
            secrets: self.secrets(kind).await?,
            client_secret: self.client_secret(account, kind).await?,
            provider: self.discover_afresh(account).await?,
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
        *self.keychain.lock().unwrap_or_else(|e| e.into_inner()) = Some(store);
        self
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
        let secrets = self.secrets(self.store_kind(account)).await?;
        load_tokens(secrets, name)
            .await?
            .and_then(|t| t.id_token)
            .ok_or_else(|| Error::SignInNeeded {
                account: name.to_owned(),
                reason: "no ID token is stored".into(),
            })
    }

    /// The stored record of who is signed in.
    pub fn whoami(&self, name: &str) -> Result<Record, Error> {
        let account = self.config.account(name)?;
        self.records
            .load(self.store_kind(account), name)
            .ok_or_else(|| Error::SignInNeeded {
                account: name.to_owned(),
                reason: "not signed in".into(),
            })
    }

    /// Every configured account with its record, if it has one.
    pub fn status(&self) -> Vec<(&Account, Option<Record>)> {
        self.config
            .accounts
            .values()
            .map(|a| (a, self.records.load(self.store_kind(a), &a.name)))
            .collect()
    }

    /// Stores a client secret for an account in the keychain.
    pub async fn set_client_secret(&self, name: &str, value: Secret) -> Result<(), Error> {
        let account = self.config.account(name)?;
        let keychain = self.secrets(StoreKind::Keychain).await?;
        let name = account.name.clone();
        run_blocking(move || keychain.set(store::CLIENT_SECRET, &name, &value)).await?;
        Ok(())
    }

    /// Sends the browser with the authorization request, and says it is waiting.
    async fn send(
        &self,
        request: &AuthRequest,
        options: &LoginOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Handoff, Error> {
        let shown = http::display_url(&request.url);
        let handoff = self
            .show(request.url.clone(), &shown, options.open_browser, progress)
            .await?;
        progress(Progress::Waiting);
        Ok(handoff)
    }

    /// Sends the browser on to `next` through a one-time loopback page ([`Handoff`]), so
    /// that no browser command line (readable by every user in /proc) and no printed link
    /// carries `state`, `nonce` or an `id_token_hint`; or asks the person to open that page.
    /// `shown` is what may be printed once the browser has it. Keep the handoff while
    /// waiting: dropped, its page is gone; [`Handoff::stolen`] says someone else had it.
    async fn show(
        &self,
        next: url::Url,
        shown: &str,
        open_browser: bool,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Handoff, Error> {
        let handoff = Handoff::serve(next).await?;
        let url = handoff.url();
        if !open_browser {
            progress(Progress::OpenYourself { url, reason: None });
            return Ok(handoff);
        }
        match self.opener.open(url) {
            Ok(()) => progress(Progress::BrowserOpened { url: shown }),
            Err(e) => progress(Progress::OpenYourself {
                url,
                reason: Some(e.to_string()),
            }),
        }
        Ok(handoff)
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
        let keychain = run_blocking(Keychain::open).await?.into_secrets();
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
        let name = account.name.clone();
        Ok(run_blocking(move || keychain.get(store::CLIENT_SECRET, &name)).await?)
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

/// The scopes granted: the token response's `scope`, else the ID token's `scope` claim
/// (a string, or an array as Hellō sends it), else what was asked for.
fn granted_scopes(
    response: Option<&flow::TokenResponse>,
    claims: &Map<String, Value>,
    account: &Account,
) -> Vec<String> {
    if let Some(scope) = response.and_then(|r| r.scope.as_ref()) {
        return scope.split_whitespace().map(str::to_owned).collect();
    }
    match claims.get("scope") {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => account.scopes.clone(),
    }
}

/// The claims of a JWT access token (Hep.gg issues them), if its signature verifies with
/// the provider's keys; an opaque token, or one that does not verify, has none to show.
async fn jwt_claims(provider: &Provider, token: &Secret) -> Option<Map<String, Value>> {
    if token.expose().split('.').count() != 3 {
        return None;
    }
    let (_, payload) = provider.verify(token.expose()).await.ok()?;
    serde_json::from_slice(&payload).ok()
}

/// The claims worth keeping: all but the one-time values of the sign-in itself.
fn identity_claims(mut claims: Map<String, Value>) -> Map<String, Value> {
    for one_time in ["nonce", "at_hash", "c_hash", "s_hash"] {
        claims.remove(one_time);
    }
    claims
}

pub fn display_name(claims: &Map<String, Value>) -> Option<&str> {
    ["name", "preferred_username", "email"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
