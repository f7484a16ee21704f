//! The `lanyard` command line: parse arguments, call the library, render the result.
//!
//! No OIDC or storage logic lives here. Each subcommand is one file with a `run` function
//! returning `Result<(), lanyard::Error>`; [`main`] turns errors into a message on stderr
//! and an exit code from [`crate::Kind`]. Read commands take `--json`.

mod accounts;
mod agent;
mod apps;
mod cargo;
mod cloud;
mod exec;
mod helpers;
mod login;
mod logout;
mod output;
mod presets;
mod ssh;
mod status;
mod token;
mod whoami;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, StoreKind};
use crate::session::Lanyard;
use crate::store::Records;
use crate::{Error, Kind};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure
  2  usage or configuration error
  3  sign-in needed (run `lanyard login NAME`)
  4  provider or network error (trying again may help)
  5  a token or response was rejected by a security check
  6  the OS keychain is unavailable or locked
  7  sign-in not completed (timed out, cancelled or refused at the provider)
  8  the agent refused this app (run the `lanyard allow …` it names)
  130 interrupted";

/// Sign in with OpenID Connect providers and hand out their tokens.
#[derive(Debug, Parser)]
#[command(name = "lanyard", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The accounts file [default: $LANYARD_CONFIG, else the platform config dir]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Keep tokens in this store for every account, whatever the config says
    #[arg(long, global = true, value_name = "STORE", value_parser = parse_store)]
    store: Option<StoreKind>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign in to an account in the browser
    Login(login::Args),
    /// Print an access token, refreshing it if needed
    Token(token::Args),
    /// Show who is signed in to an account, with every claim
    Whoami(whoami::Args),
    /// Sign out: revoke tokens, forget them, end the provider session
    Logout(logout::Args),
    /// List the configured accounts, or manage their client secrets
    Accounts(accounts::Args),
    /// Show the sign-in state of every account
    Status(status::Args),
    /// List the providers Lanyard knows out of the box
    Presets(presets::Args),
    /// Run the token broker: other programs get tokens through its socket
    Agent(agent::Args),
    /// Allow an app (an executable path) to get an account's tokens from the agent
    Allow(apps::AllowArgs),
    /// Deny an app an account's tokens
    Deny(apps::DenyArgs),
    /// List the apps allowed or denied, per account
    Apps(apps::ListArgs),
    /// kubectl's exec credential plugin: `lanyard kubectl-credential NAME`
    KubectlCredential(helpers::KubectlArgs),
    /// git's credential helper: `lanyard git-credential --account NAME get`
    GitCredential(helpers::GitArgs),
    /// Kiosk: end the seat session now (for the center's seat software)
    EndSession(EndSessionArgs),
    /// AWS credential_process: role credentials from the account's ID token (STS)
    AwsCredentials(cloud::AwsArgs),
    /// Google workload identity federation: the account's ID token as an executable source
    GcpCredential(cloud::GcpArgs),
    /// ssh, with the agent forwarded to the host: its requests are approved as `ssh:HOST`
    Ssh(ssh::Args),
    /// Run a command with fresh access tokens in its environment (never on its command
    /// line): `lanyard exec --env NPM_TOKEN=work -- npm install`
    Exec(exec::Args),
}

#[derive(Debug, clap::Args)]
struct EndSessionArgs {
    /// Print the outcome as JSON: {"ended": true|false}
    #[arg(long)]
    json: bool,
}

/// `lanyard end-session`: asks the kiosk app's broker to end the seat session.
async fn end_session(args: EndSessionArgs) -> Result<(), Error> {
    let mut agent = crate::broker::Client::connect(&crate::broker::socket_path()).await?;
    let reply: serde_json::Value = agent.call(crate::broker::protocol::Op::EndSession).await?;
    let ended = reply["ended"].as_bool().unwrap_or(false);
    if args.json {
        output::print_json(&reply);
    } else if ended {
        output::print_line("Ended the seat session: signed out, and nothing kept.");
    } else {
        output::print_line("Nobody was signed in at this seat.");
    }
    Ok(())
}

fn parse_store(s: &str) -> Result<StoreKind, String> {
    match s {
        "keychain" => Ok(StoreKind::Keychain),
        "memory" => Ok(StoreKind::Memory),
        _ => Err("expected `keychain` or `memory`".into()),
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = token::fast(args.get(1..).unwrap_or_default()) {
        return code;
    }
    // Cargo runs its credential provider so, with the rest of its configuration in each
    // request (`cargo.rs`).
    if args.get(1).is_some_and(|a| a == "--cargo-plugin") {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return Kind::Other.exit_code();
        };
        let open = Opener {
            config: std::env::var_os("LANYARD_CONFIG").map(Into::into),
            store: None,
        };
        return runtime.block_on(cargo::plugin(&open));
    }
    let cli = Cli::parse_from(args);
    // RUST_LOG as `level` or `target=level,…` (no regular expressions: a smaller binary).
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lanyard: cannot start: {e}");
            return Kind::Other.exit_code();
        }
    };
    let result = runtime.block_on(async {
        if let Command::Agent(args) = cli.command {
            // The agent handles its signals itself, to shut down cleanly.
            return Some(agent::run(cli.config, cli.store, args).await.map(|()| 0));
        }
        if let Command::Ssh(args) = cli.command {
            // Ctrl-C is ssh's; its exit code is this command's.
            return Some(ssh::run(args).await);
        }
        tokio::select! {
            result = run(cli) => Some(result.map(|()| 0)),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match result {
        None => {
            eprintln!("\nlanyard: interrupted");
            130
        }
        Some(Ok(code)) => code,
        Some(Err(e)) => {
            eprintln!("lanyard: {e}");
            e.kind().exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    // Commands that answer from the agent when one runs, before any costly set-up.
    let open = Opener {
        config: cli.config.clone(),
        store: cli.store,
    };
    match cli.command {
        Command::Token(args) => return token::run(&open, args).await,
        Command::Login(args) => return login::run(&open, args).await,
        Command::Logout(args) => return logout::run(&open, args).await,
        Command::KubectlCredential(args) => return helpers::kubectl(&open, args).await,
        Command::GitCredential(args) => return helpers::git(&open, args).await,
        Command::Allow(args) => return apps::allow(args),
        Command::Deny(args) => return apps::deny(args),
        Command::Apps(args) => return apps::list(args),
        Command::Presets(args) => return presets::run(args),
        Command::EndSession(args) => return end_session(args).await,
        Command::AwsCredentials(args) => return cloud::aws(&open, args).await,
        Command::GcpCredential(args) => return cloud::gcp(&open, args).await,
        Command::Exec(args) => return exec::run(&open, args).await,
        _ => {}
    }
    let lanyard = open.lanyard()?;
    match cli.command {
        Command::Whoami(args) => whoami::run(&lanyard, args),
        Command::Accounts(args) => accounts::run(&lanyard, args).await,
        Command::Status(args) => status::run(&lanyard, args),
        Command::Token(_)
        | Command::Login(_)
        | Command::Logout(_)
        | Command::KubectlCredential(_)
        | Command::GitCredential(_)
        | Command::Allow(_)
        | Command::Deny(_)
        | Command::Apps(_)
        | Command::Presets(_)
        | Command::EndSession(_)
        | Command::AwsCredentials(_)
        | Command::GcpCredential(_)
        | Command::Exec(_)
        | Command::Agent(_)
        | Command::Ssh(_) => unreachable!("dispatched above"),
    }
}

/// Whether a person who can sign in is at this command: stdin or stderr is a terminal,
/// and a browser started here can come back (not an ssh session, a display). A tool run
/// so waits for a lapsed sign-in to be brought back; otherwise it is told at once.
pub fn person_at_terminal() -> bool {
    use std::io::IsTerminal as _;
    (std::io::stdin().is_terminal() || std::io::stderr().is_terminal())
        && crate::browser::unreachable_here().is_none()
}

/// Builds a [`Lanyard`] only when a command needs one: loading the OS trust store and the
/// accounts file costs milliseconds that the agent's fast path does not spend.
pub struct Opener {
    config: Option<PathBuf>,
    store: Option<StoreKind>,
}

impl Opener {
    pub fn lanyard(&self) -> Result<Lanyard, Error> {
        let config = self.config()?;
        Ok(Lanyard::new(config, Records::new(Records::default_dir()))?.with_store(self.store))
    }

    /// The accounts file alone: no trust store, no keychain.
    pub fn config(&self) -> Result<Config, Error> {
        let path = match &self.config {
            Some(path) => path.clone(),
            None => Config::default_path()?,
        };
        Ok(Config::load(&path)?)
    }

    /// The account a command means: the one it names, else the one the accounts file's
    /// `[[match]]` rules pick where it runs (and why).
    pub fn account(
        &self,
        named: Option<&str>,
    ) -> Result<(String, Option<crate::config::matching::Picked>), Error> {
        match named {
            Some(name) => Ok((name.to_owned(), None)),
            None => {
                let config = self.config()?;
                let (name, why) = config.pick(&crate::config::matching::Place::here())?;
                Ok((name.to_owned(), Some(why)))
            }
        }
    }

    /// The agent, when one answers; `None` where none answers at the default socket, for
    /// direct mode. While an agent (or the desktop app) serves the socket, every command
    /// that hands out a credential asks it, under its approval and audit. A
    /// `$LANYARD_SOCK` where no agent answers is an error, never a quiet fall-back.
    pub async fn agent(&self) -> Result<Option<crate::broker::Client>, Error> {
        let path = crate::broker::socket_path();
        match crate::broker::Client::connect(&path).await {
            Ok(agent) => Ok(Some(agent)),
            Err(crate::broker::client::Error::NotRunning(_))
                if std::env::var_os("LANYARD_SOCK").is_some() =>
            {
                Err(Error::Usage {
                    kind: Kind::Config,
                    message: format!(
                        "no agent answers at LANYARD_SOCK={}: start one there (`lanyard agent`), or unset LANYARD_SOCK",
                        path.display()
                    ),
                })
            }
            Err(crate::broker::client::Error::NotRunning(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The account's token with a DPoP proof for one request: from the agent when one
    /// runs (the key stays there), else directly. A token that is not DPoP-bound comes
    /// alone (`None`): it goes as a Bearer token, with no proof.
    pub async fn proof(
        &self,
        account: &str,
        request: crate::broker::protocol::ProofRequest,
    ) -> Result<(crate::session::AccessToken, Option<String>), Error> {
        if let Some(mut agent) = self.agent().await? {
            let min_valid = request.min_valid;
            let reply = match agent.proof(account, request).await {
                Err(crate::broker::client::Error::Agent(body))
                    if body.code == crate::broker::protocol::Code::NotSupported =>
                {
                    let own = crate::flow::Target::default();
                    let token = agent.token_for(account, min_valid, &own).await?;
                    return Ok((token.into(), None));
                }
                reply => reply?,
            };
            let proof = reply.proof.clone();
            let token = crate::broker::protocol::TokenReply {
                access_token: reply.access_token,
                token_type: reply.token_type,
                expires_at: reply.expires_at,
                warning: reply.warning,
            };
            return Ok((token.into(), Some(proof)));
        }
        let lanyard = self.lanyard()?;
        let own = crate::flow::Target::default();
        let token = lanyard.token_for(account, request.min_valid, &own).await?;
        let url = url::Url::parse(&request.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| Error::Usage {
                kind: Kind::Config,
                message: format!("--dpop-url: `{}` is not an http(s) URL", request.url),
            })?;
        if !token.dpop {
            return Ok((token, None));
        }
        let nonce = request.nonce.as_deref();
        let proof = lanyard
            .dpop_proof(account, &request.method, &url, &token.token, nonce)
            .await?;
        Ok((token, proof))
    }

    /// The access token: from the agent when one runs, else directly.
    pub async fn token(
        &self,
        account: &str,
        min_valid: u64,
        target: &crate::flow::Target,
    ) -> Result<crate::session::AccessToken, Error> {
        match self.agent().await? {
            Some(mut agent) => Ok(agent.token_for(account, min_valid, target).await?.into()),
            None => Ok(self
                .lanyard()?
                .token_for(account, min_valid, target)
                .await?),
        }
    }

    /// [`Opener::token`] for a tool that can wait: when `interactive` (a person at a
    /// terminal who can reach a browser here) and the account needs a sign-in, the person
    /// is brought back first, once however many ask: by the agent when one runs, else by
    /// this process or the one already doing it (`Lanyard::bring_back`). Not
    /// interactive, it is `token`: "sign-in needed" at once.
    pub async fn token_or_sign_in(
        &self,
        account: &str,
        min_valid: u64,
        target: &crate::flow::Target,
        interactive: bool,
    ) -> Result<crate::session::AccessToken, Error> {
        if !interactive {
            return self.token(account, min_valid, target).await;
        }
        let waiting = login::Waiting::start();
        let told = std::sync::atomic::AtomicBool::new(false);
        // Said once, before whatever the sign-in itself says.
        let tell = |p: crate::session::Progress<'_>| {
            if !told.swap(true, std::sync::atomic::Ordering::SeqCst) {
                eprintln!("lanyard: {account} needs you to sign in again.");
            }
            waiting.progress(p);
        };
        let token = match self.agent().await? {
            Some(mut agent) => {
                let mut progress = |p: crate::broker::protocol::Progress| tell(p.as_session());
                agent
                    .token_signing_in(account, min_valid, target, &mut progress)
                    .await
                    .map(Into::into)
                    .map_err(Error::from)
            }
            None => {
                let lanyard = self.lanyard()?;
                match lanyard.token_for(account, min_valid, target).await {
                    Err(e) if e.kind() == Kind::SignInNeeded => {
                        let back = lanyard.bring_back(account, &tell).await;
                        waiting.stop();
                        back?;
                        lanyard.token_for(account, min_valid, target).await
                    }
                    answer => answer,
                }
            }
        };
        waiting.stop();
        token
    }

    /// A token for the account's client itself: from the agent when one runs, else
    /// directly.
    pub async fn client_credentials(
        &self,
        account: &str,
        scope: Option<&str>,
    ) -> Result<crate::session::AccessToken, Error> {
        match self.agent().await? {
            Some(mut agent) => Ok(agent.client_credentials(account, scope).await?.into()),
            None => Ok(self.lanyard()?.client_credentials(account, scope).await?),
        }
    }

    /// The account's ID token, valid for at least `min_valid` more seconds, and when it
    /// expires: from the agent when one runs (under the account's ID-token grant), else
    /// directly.
    pub async fn id_token(
        &self,
        account: &str,
        min_valid: u64,
    ) -> Result<(crate::secret::Secret, u64), Error> {
        match self.agent().await? {
            Some(mut agent) => {
                let reply = agent.id_token(account, min_valid).await?;
                Ok((crate::secret::Secret::new(reply.id_token), reply.expires_at))
            }
            None => Ok(self.lanyard()?.fresh_id_token(account, min_valid).await?),
        }
    }
}
