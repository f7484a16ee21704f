//! `lanyard login NAME`: sign in through the browser, with progress while waiting.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::{Opener, output};
use crate::Error;
use crate::broker::client::{self, Client};
use crate::broker::protocol::Op;
use crate::session::{Lanyard, LoginOptions, Progress};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account, as named in the accounts file
    name: String,
    /// Print the sign-in link instead of opening a browser
    #[arg(long)]
    no_browser: bool,
    /// Give up waiting for the browser after this many seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    timeout: u64,
    /// Make the provider ask for credentials again (prompt=login)
    #[arg(long)]
    reauth: bool,
    /// Sign in on another device with a code (RFC 8628 device flow), for machines
    /// without a browser
    #[arg(long, conflicts_with_all = ["no_browser", "reauth"])]
    device: bool,
    /// Print the signed-in identity as JSON
    #[arg(long)]
    json: bool,
}

/// Signs in through the agent when one runs (it keeps the sign-in, so it serves the new
/// tokens from then on), else in this process.
pub async fn run(open: &Opener, args: Args) -> Result<(), Error> {
    let options = LoginOptions {
        open_browser: !args.no_browser,
        timeout: Duration::from_secs(args.timeout),
        prompt: args.reauth.then(|| "login".to_owned()),
    };
    let mut agent = match Client::connect(&crate::broker::socket_path()).await {
        Ok(agent) => agent,
        Err(client::Error::NotRunning(_)) => {
            return direct(&open.lanyard()?, &args, &options).await;
        }
        Err(e) => return Err(e.into()),
    };
    let waiting = Waiting::start();
    let op = Op::Login {
        account: args.name.clone(),
        open_browser: options.open_browser,
        prompt: options.prompt.clone(),
        device: args.device,
        timeout: Some(args.timeout),
    };
    let answer: Result<Value, client::Error> = agent
        .call_with_progress(op, &mut |p| waiting.progress(p.as_session()))
        .await;
    waiting.stop();
    let answer = answer?;
    // Who signed in: the record, where the agent keeps one on disk; else what it said.
    match open.lanyard().ok().and_then(|l| l.whoami(&args.name).ok()) {
        Some(record) => signed_in(&record, args.json),
        None if args.json => output::print_json(&answer),
        None => output::print_line(&format!("Signed in to {}.", args.name)),
    }
    Ok(())
}

async fn direct(lanyard: &Lanyard, args: &Args, options: &LoginOptions) -> Result<(), Error> {
    let waiting = Waiting::start();
    let record = if args.device {
        let progress = |p: Progress<'_>| waiting.progress(p);
        tokio::time::timeout(options.timeout, lanyard.login_device(&args.name, &progress))
            .await
            .unwrap_or(Err(crate::flow::Error::DeviceExpired.into()))
    } else {
        lanyard
            .login(&args.name, options, &|p| waiting.progress(p))
            .await
    };
    waiting.stop();
    signed_in(&record?, args.json);
    Ok(())
}

fn signed_in(record: &crate::store::Record, json: bool) {
    if json {
        output::print_json(&output::record_json(record));
    } else {
        output::print_line(&format!(
            "Signed in to {} as {}.",
            record.account,
            output::who(record)
        ));
    }
}

/// The progress display: a line that counts seconds while the browser has the sign-in
/// (on a terminal), or one plain line (when stderr is not a terminal).
pub struct Waiting {
    active: Arc<AtomicBool>,
    tty: bool,
    /// Where the person is: "in the browser", or "on the other device".
    place: std::sync::Mutex<&'static str>,
}

impl Waiting {
    pub fn start() -> Waiting {
        Waiting {
            active: Arc::new(AtomicBool::new(false)),
            tty: std::io::stderr().is_terminal(),
            place: std::sync::Mutex::new("in the browser"),
        }
    }

    pub fn progress(&self, progress: Progress<'_>) {
        match progress {
            Progress::BrowserOpened { url } => {
                eprintln!("Opened your browser at {url}");
            }
            Progress::OpenYourself { url, reason } => {
                if let Some(reason) = reason {
                    eprintln!("{reason}");
                }
                eprintln!("Open this link in your browser:\n  {url}");
            }
            Progress::DeviceCode {
                user_code,
                verification_uri,
                verification_uri_complete,
                expires_in,
            } => {
                *self.place.lock().unwrap_or_else(|e| e.into_inner()) = "on the other device";
                eprintln!(
                    "On your phone or another computer, open\n  {verification_uri}\nand enter the code  {user_code}"
                );
                if let Some(complete) = verification_uri_complete {
                    eprintln!("(or open {complete}, which has the code in it)");
                }
                eprintln!(
                    "The code is good for {} min.",
                    expires_in.as_secs().div_ceil(60)
                );
            }
            Progress::Waiting if self.tty => {
                self.active.store(true, Ordering::SeqCst);
                let active = self.active.clone();
                let place = *self.place.lock().unwrap_or_else(|e| e.into_inner());
                tokio::spawn(async move {
                    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                    let started = tokio::time::Instant::now();
                    let mut tick = tokio::time::interval(Duration::from_millis(250));
                    for i in 0.. {
                        tick.tick().await;
                        if !active.load(Ordering::SeqCst) {
                            break;
                        }
                        let secs = started.elapsed().as_secs();
                        eprint!(
                            "\r{} Waiting for you {place}… {secs} s (Ctrl-C to cancel) ",
                            frames[i % frames.len()]
                        );
                        let _ = std::io::stderr().flush();
                    }
                });
            }
            Progress::Waiting => eprintln!(
                "Waiting for you {}… (Ctrl-C to cancel)",
                self.place.lock().unwrap_or_else(|e| e.into_inner())
            ),
            Progress::Finishing => self.stop(),
        }
    }

    pub fn stop(&self) {
        if self.active.swap(false, Ordering::SeqCst) {
            eprint!("\r\x1b[2K");
        }
    }
}
