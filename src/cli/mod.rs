//! The `lanyard` command line: parse arguments, call the library, render the result.
//!
//! No OIDC or storage logic lives here. Each subcommand is one file with a `run` function
//! returning `Result<(), lanyard::Error>`; [`main`] turns errors into a message on stderr
//! and an exit code from [`crate::Kind`]. Read commands take `--json`.

mod accounts;
mod login;
mod logout;
mod output;
mod presets;
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
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
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
        tokio::select! {
            result = run(cli) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match result {
        None => {
            eprintln!("\nlanyard: interrupted");
            130
        }
        Some(Ok(())) => 0,
        Some(Err(e)) => {
            eprintln!("lanyard: {e}");
            e.kind().exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let path = match cli.config {
        Some(path) => path,
        None => Config::default_path()?,
    };
    let config = Config::load(&path)?;
    let lanyard = Lanyard::new(config, Records::new(Records::default_dir()))?.with_store(cli.store);
    match cli.command {
        Command::Login(args) => login::run(&lanyard, args).await,
        Command::Token(args) => token::run(&lanyard, args).await,
        Command::Whoami(args) => whoami::run(&lanyard, args),
        Command::Logout(args) => logout::run(&lanyard, args).await,
        Command::Accounts(args) => accounts::run(&lanyard, args).await,
        Command::Status(args) => status::run(&lanyard, args),
        Command::Presets(args) => presets::run(args),
    }
}
