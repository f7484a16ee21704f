//! Signing in: through the browser (loopback or a private-use scheme redirect) or with the
//! device flow. Nothing is stored until every check of the response has passed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::dpop::new_dpop_key;
use super::{
    Lanyard, Progress, Shown, check_id_token, display_name, held, identity_claims, now,
    run_blocking, save_tokens,
};
use crate::config::{Account, Redirect, ResponseMode, ResponseType, StoreKind};
use crate::discovery::Provider;
use crate::dpop;
use crate::error::Error;
use crate::flow::loopback::{Listener, Page};
use crate::flow::{self, AuthRequest, Overrides, Params};
use crate::secret::Secret;
use crate::store::{self, Record, Secrets, Status, Tokens};
use crate::{http, validate};

/// How [`Lanyard::login`](super::Lanyard::login) signs in.
pub struct LoginOptions {
    /// Open the system browser (else the URL is only reported, for the person to open).
    pub open_browser: bool,
    /// Give up when the browser has not come back after this long.
    pub timeout: Duration,
    /// The `prompt` to send (`login` asks for credentials again).
    pub prompt: Option<String>,
    /// The sign-in may come back as another person than the one the account is signed in
    /// as (the person asked for it: `lanyard login NAME --as-new-user`). Without it, a
    /// sign-in that comes back with another `sub` or issuer is refused
    /// ([`Error::SubjectChanged`]), and what it issued is revoked.
    pub as_new_user: bool,
    /// Someone shows the person the link `progress` reports ([`Progress::OpenYourself`])
    /// when the browser cannot be started (the default). Without it, a browser that fails
    /// to start (or whose command fails) ends the sign-in at once with `Error::Browser`.
    pub link_shown: bool,
}

impl Default for LoginOptions {
    /// Open the browser, wait five minutes, no `prompt`, the same person.
    fn default() -> LoginOptions {
        LoginOptions {
            open_browser: true,
            timeout: Duration::from_secs(300),
            prompt: None,
            as_new_user: false,
            link_shown: true,
        }
    }
}

/// Where a sign-in's tokens go, and whose they may be.
struct Keep {
    secrets: Arc<dyn Secrets>,
    /// The DPoP key the code is redeemed with, made before the browser goes (its
    /// thumbprint is in the authorization request), where the tokens are to be bound.
    dpop: Option<(dpop::Key, Secret)>,
    /// [`LoginOptions::as_new_user`].
    as_new_user: bool,
    /// To revoke what a refused sign-in was issued.
    client_secret: Option<Secret>,
}

/// A sign-in's starting point ([`Lanyard::sign_in`]).
struct SignIn<'a> {
    account: &'a Account,
    kind: StoreKind,
    secrets: Arc<dyn Secrets>,
    client_secret: Option<Secret>,
    provider: Arc<Provider>,
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

/// The address a browser on another machine ended on, as the person pastes it (`None`
/// when nothing was pasted).
pub type Pasted<'a> = std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;

impl Lanyard {
    /// Signs in through the browser. Stores tokens and the record only if every check passes.
    pub async fn login(
        &self,
        name: &str,
        options: &LoginOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Record, Error> {
        self.login_with(name, options, progress, None).await
    }

    /// Signs in with a browser on another machine (WSL, a container, a host reached over
    /// ssh), whose redirect to this machine's 127.0.0.1 cannot load there. The provider's
    /// authorization URL itself is reported ([`Progress::OpenYourself`]), to be opened
    /// anywhere; `pasted` resolves with the address the browser ended on, which must be
    /// this sign-in's redirect with its `state`, and then gets every check a redirect
    /// gets. Loopback accounts only.
    pub async fn login_pasted(
        &self,
        name: &str,
        options: &LoginOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
        pasted: Pasted<'_>,
    ) -> Result<Record, Error> {
        self.login_with(name, options, progress, Some(pasted)).await
    }

    async fn login_with(
        &self,
        name: &str,
        options: &LoginOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
        pasted: Option<Pasted<'_>>,
    ) -> Result<Record, Error> {
        let SignIn {
            account,
            kind,
            secrets,
            client_secret,
            provider,
        } = self.sign_in(name).await?;
        let dpop = match account.response_type {
            ResponseType::Code => new_dpop_key(account, &provider, client_secret.as_ref())?,
            ResponseType::IdToken => None,
        };
        let overrides = Overrides {
            prompt: options.prompt.clone(),
            dpop_jkt: dpop.as_ref().map(|(key, _)| key.thumbprint().to_owned()),
        };
        let secrets = Keep {
            secrets,
            dpop,
            as_new_user: options.as_new_user,
            client_secret: client_secret.clone(),
        };
        let listener = match &account.redirect {
            Redirect::Loopback { port } => Listener::bind(*port).await?,
            Redirect::Scheme { uri } if pasted.is_some() => {
                return Err(Error::PasteNeedsLoopback {
                    account: name.to_owned(),
                    uri: uri.clone(),
                });
            }
            Redirect::Scheme { uri } => {
                let inbox = self.scheme_inbox(account, uri)?;
                let secret = client_secret.as_ref();
                let request = self
                    .authorization(&provider, account, uri, &overrides, secret)
                    .await?;
                // In the inbox before the browser opens: the link may come back at once.
                let mut waiting = inbox.expect(request.state.expose());
                let mut handoff = self.send(&request, options, progress).await?;
                let params = tokio::select! {
                    params = tokio::time::timeout(options.timeout, waiting.recv()) => params
                        .ok()
                        .flatten()
                        .ok_or(flow::loopback::Error::Timeout(options.timeout))?,
                    e = handoff.interrupted(options.link_shown, progress) => return Err(e),
                };
                progress(Progress::Finishing);
                let (secret, params) = (client_secret.as_ref(), &params);
                return self
                    .finish_login(account, kind, &provider, &request, params, secret, secrets)
                    .await;
            }
        };
        if let Some(pasted) = pasted {
            // Nothing listens for a browser elsewhere: its redirect cannot reach this
            // machine, and the person pastes where it ended. The port (a free one, or the
            // account's) is only named. The browser gets the provider's URL itself: the
            // one-time page on this machine's 127.0.0.1 is out of its reach too.
            let redirect_uri = listener.uri("/callback");
            drop(listener);
            let secret = client_secret.as_ref();
            let request = self
                .authorization(&provider, account, &redirect_uri, &overrides, secret)
                .await?;
            progress(Progress::OpenYourself {
                url: request.url.as_str(),
                reason: None,
            });
            progress(Progress::PasteBack {
                redirect_uri: &redirect_uri,
            });
            progress(Progress::Waiting);
            let address = tokio::time::timeout(options.timeout, pasted)
                .await
                .map_err(|_| flow::loopback::Error::Timeout(options.timeout))?
                .unwrap_or_default();
            progress(Progress::Finishing);
            let params = request.pasted(&address)?;
            let secret = client_secret.as_ref();
            return self
                .finish_login(account, kind, &provider, &request, &params, secret, secrets)
                .await;
        }
        let (uri, secret) = (listener.uri("/callback"), client_secret.as_ref());
        let request = self
            .authorization(&provider, account, &uri, &overrides, secret)
            .await?;
        let mut handoff = self.send(&request, options, progress).await?;
        let waited = listener.wait(
            "/callback",
            &request.state,
            options.timeout,
            account.response_mode == ResponseMode::Fragment,
        );
        let callback = tokio::select! {
            callback = waited => callback?,
            e = handoff.interrupted(options.link_shown, progress) => return Err(e),
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
            Ok(record) => {
                let claims = record.claims();
                let who = display_name(&claims).unwrap_or(&record.subject);
                if self.embedded {
                    format!("You are signed in as {who}. You can close this tab.")
                } else {
                    format!("You are signed in to {name} as {who}. You can close this tab.")
                }
            }
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
        mut secrets: Keep,
    ) -> Result<Record, Error> {
        let artifact = request.check_response(provider, params)?;
        // The code flow redeems the code for tokens; the ID-token flow has its token already.
        let (response, id_token, key) = match request.response_type {
            ResponseType::Code => {
                let auth = flow::client_auth(account, provider, client_secret)?;
                let key = secrets.dpop.take();
                let dpop = key.as_ref().map(|(key, _)| key);
                let response =
                    flow::exchange(&self.http, provider, &auth, &artifact, request, dpop).await?;
                let id_token = response.id_token.clone().ok_or(flow::Error::NoIdToken)?;
                (Some(response), id_token, key)
            }
            ResponseType::IdToken => (None, artifact, None),
        };
        self.keep(
            account,
            kind,
            provider,
            (response, key),
            id_token,
            (Some(&request.nonce), account.max_age),
            secrets,
        )
        .await
    }

    /// Checks a sign-in's tokens (ID token, introspection, userinfo) and, when every check
    /// passes, stores them and the record. `key` is the DPoP key the token request
    /// proved, kept with the tokens when the provider bound them to it.
    #[allow(clippy::too_many_arguments)]
    async fn keep(
        &self,
        account: &Account,
        kind: StoreKind,
        provider: &Provider,
        (response, key): (Option<flow::TokenResponse>, Option<(dpop::Key, Secret)>),
        id_token: Secret,
        (nonce, max_age): (Option<&Secret>, Option<u64>),
        keep: Keep,
    ) -> Result<Record, Error> {
        let now = now();
        let access_token = response.as_ref().map(|r| &r.access_token);
        let bound = response.as_ref().is_some_and(flow::TokenResponse::is_dpop);
        let key = key.filter(|_| bound);
        let dpop = key.as_ref().map(|(key, _)| key);
        let claims =
            check_id_token(provider, account, &id_token, nonce, max_age, access_token).await?;
        if !keep.as_new_user
            && let Some(before) = self.records.load(kind, &account.name)
            && (before.subject != claims.subject() || before.issuer != provider.issuer())
        {
            // Someone else's tokens must not become the account's without the person
            // asking: tools that trust the account would act as that someone.
            let issued = [
                (
                    "refresh_token",
                    response.as_ref().and_then(|r| r.refresh_token.as_ref()),
                ),
                ("access_token", access_token),
            ];
            self.revoke_issued(account, provider, keep.client_secret.as_ref(), &issued)
                .await;
            tracing::warn!(account = %account.name, "a sign-in came back as another person; refused");
            return Err(Error::SubjectChanged {
                account: account.name.clone(),
                was: format!("{} at {}", before.subject, before.issuer),
                now: format!("{} at {}", claims.subject(), provider.issuer()),
            });
        }
        let secrets = keep.secrets;
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
                let client_id = &account.client_id;
                let userinfo =
                    flow::userinfo(&self.http, provider, url, access_token, client_id, dpop)
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
            dpop_key: key.map(|(_, kept)| kept),
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
            dpop: bound,
            status: Status::SignedIn,
            tokens_stamp: Some(held::new_stamp()),
        };
        if let Err(e) = save_tokens(secrets, &account.name, &tokens).await {
            // Tokens nobody keeps must not stay valid at the provider.
            let issued = [
                ("refresh_token", tokens.refresh_token.as_ref()),
                ("access_token", tokens.access_token.as_ref()),
            ];
            let (revoked, _) = self
                .revoke_issued(account, provider, keep.client_secret.as_ref(), &issued)
                .await;
            let said = if revoked.is_empty() {
                "the tokens the provider just issued could not be revoked; they lapse at their expiry"
            } else {
                "the tokens the provider just issued were revoked"
            };
            return Err(match e {
                store::Error::Unavailable { message, hint } => store::Error::Unavailable {
                    message: format!("{message}; nothing was kept, and {said}"),
                    hint,
                },
                store::Error::Failed(message) => {
                    store::Error::Failed(format!("{message}; nothing was kept, and {said}"))
                }
                other => other,
            }
            .into());
        }
        self.records.save(kind, &record)?;
        self.held.put(&record, &tokens);
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
        let secrets = Keep {
            secrets,
            // (Made below: the device flow has no authorization request to name it in.)
            dpop: None,
            as_new_user: options.as_new_user,
            client_secret: client_secret.clone(),
        };
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
        let key = new_dpop_key(account, &provider, client_secret.as_ref())?;
        let dpop = key.as_ref().map(|(key, _)| key);
        let response =
            flow::device::wait(&self.http, &provider, &auth, &authorization, dpop).await?;
        progress(Progress::Finishing);
        let id_token = response.id_token.clone().ok_or(flow::Error::NoIdToken)?;
        self.keep(
            account,
            kind,
            &provider,
            (Some(response), key),
            id_token,
            // No nonce in RFC 8628. No max_age either: the person signs in on their own
            // device, where the provider decides whether to ask for credentials again;
            // the seat never sees them.
            (None, None),
            secrets,
        )
        .await
    }

    /// What every sign-in needs before the person is sent anywhere: the store must work,
    /// the client secret be there, and the provider be discovered afresh.
    async fn sign_in<'a>(&'a self, name: &str) -> Result<SignIn<'a>, Error> {
        let account = self.config.account(name)?;
        let kind = self.store_kind(account);
        let secrets = self.secrets(kind).await?;
        // Before the person is sent to the browser: the store must take a write (a locked
        // keychain asks to be unlocked now, or fails now), not after they signed in.
        {
            let (secrets, check) = (secrets.clone(), format!("{name} (write check)"));
            run_blocking(move || {
                secrets.set(store::TOKENS, &check, &Secret::new("check"))?;
                secrets.delete(store::TOKENS, &check).map(drop)
            })
            .await?;
        }
        Ok(SignIn {
            account,
            kind,
            secrets,
            client_secret: self.client_secret(account, kind).await?,
            provider: self.discover_afresh(account).await?,
        })
    }

    /// This sign-in's authorization request, pushed to the provider first where it takes
    /// pushed requests (RFC 9126): then the browser carries only a reference to it.
    async fn authorization(
        &self,
        provider: &Provider,
        account: &Account,
        redirect_uri: &str,
        overrides: &Overrides,
        client_secret: Option<&Secret>,
    ) -> Result<AuthRequest, Error> {
        let mut request = AuthRequest::new(provider, account, redirect_uri, overrides)?;
        if let Some(endpoint) = &provider.metadata.pushed_authorization_request_endpoint {
            let auth = flow::client_auth(account, provider, client_secret)?;
            request.push(&self.http, provider, endpoint, &auth).await?;
        }
        Ok(request)
    }

    /// Sends the browser with the authorization request, and says it is waiting.
    async fn send(
        &self,
        request: &AuthRequest,
        options: &LoginOptions,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Shown, Error> {
        let shown = http::display_url(&request.url);
        let how = (options.open_browser, options.link_shown);
        let handoff = self
            .show(request.url.clone(), &shown, how, progress)
            .await?;
        progress(Progress::Waiting);
        Ok(handoff)
    }
}
