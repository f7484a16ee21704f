//! `lanyard login NAME`: sign in through the browser, with progress while waiting.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::{Opener, output};
use crate::Error;
use crate::broker::client;
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
    /// The browser is on another machine (WSL, a container, ssh): print the sign-in
    /// link, then paste back the address the browser ended on (the 127.0.0.1 page that
    /// could not load)
    #[arg(long, conflicts_with_all = ["device", "no_browser"])]
    paste: bool,
    /// Sign in to the account as someone else than it is signed in as (without it, a
    /// sign-in that comes back as another person is refused and stores nothing)
    #[arg(long)]
    as_new_user: bool,
    /// Print the signed-in identity as JSON
    #[arg(long)]
    json: bool,
}

/// Signs in through the agent when one runs (it keeps the sign-in, so it serves the new
/// tokens from then on), else in this process.
pub async fn run(open: &Opener, mut args: Args) -> Result<(), Error> {
    // A browser started here could not come back (or could not start at all): say what
    // works instead, and take a pasted address where a person can paste one.
    if !args.paste
        && !args.device
        && !args.no_browser
        && let Some(why) = headless()
    {
        let device = match open.lanyard() {
            Ok(lanyard) => lanyard
                .offers_device_flow(&args.name)
                .await
                .unwrap_or(false),
            Err(_) => false,
        };
        eprintln!("{why}: a browser started here cannot come back to Lanyard.");
        if device {
            eprintln!(
                "(The provider also offers sign-in with a code on another device: `lanyard login {} --device`.)",
                args.name
            );
        }
        if std::io::stdin().is_terminal() {
            args.paste = true;
        } else {
            args.no_browser = true;
        }
    }
    if args.paste {
        return pasted(&open.lanyard()?, &args).await;
    }
    let options = LoginOptions {
        open_browser: !args.no_browser,
        timeout: Duration::from_secs(args.timeout),
        prompt: args.reauth.then(|| "login".to_owned()),
        as_new_user: args.as_new_user,
        link_shown: true,
    };
    let Some(mut agent) = open.agent().await? else {
        return direct(&open.lanyard()?, &args, &options).await;
    };
    let waiting = Waiting::start();
    let op = Op::Login {
        account: args.name.clone(),
        open_browser: options.open_browser,
        prompt: options.prompt.clone(),
        device: args.device,
        timeout: Some(args.timeout),
        as_new_user: args.as_new_user,
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
        tokio::time::timeout(
            options.timeout,
            lanyard.login_device(&args.name, options, &progress),
        )
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

/// Why a browser started here cannot reach this machine's 127.0.0.1, if it cannot.
fn headless() -> Option<&'static str> {
    crate::browser::unreachable_here()
}

/// `--paste`: the sign-in link for a browser anywhere, and the address it ended on read
/// from standard input. Always in this process (the paste is typed here); an agent that
/// runs reads the new sign-in from the keychain.
async fn pasted(lanyard: &Lanyard, args: &Args) -> Result<(), Error> {
    let options = LoginOptions {
        open_browser: false,
        timeout: Duration::from_secs(args.timeout),
        prompt: args.reauth.then(|| "login".to_owned()),
        as_new_user: args.as_new_user,
        link_shown: true,
    };
    let progress = |p: Progress<'_>| match p {
        Progress::OpenYourself { url, .. } => {
            eprintln!("Open this link in a browser on any device:\n  {url}");
        }
        Progress::PasteBack { redirect_uri } => {
            eprintln!(
                "After you sign in, the browser ends on a page that cannot load; its address \
                 starts with {redirect_uri}. Copy that whole address and paste it here:"
            );
        }
        Progress::Finishing => eprintln!("Checking the sign-in…"),
        _ => {}
    };
    let read = Box::pin(async {
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            match std::io::stdin().read_line(&mut line) {
                Ok(n) if n > 0 && !line.trim().is_empty() => Some(line),
                // Nothing pasted: the sign-in stops and says what to paste.
                _ => None,
            }
        })
        .await
        .ok()
        .flatten()
    });
    let record = lanyard
        .login_pasted(&args.name, &options, &progress, read)
        .await?;
    signed_in(&record, args.json);
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
            // Only `--paste` asks for the address, and says so itself.
            Progress::PasteBack { .. } => {}
        }
    }

    pub fn stop(&self) {
        if self.active.swap(false, Ordering::SeqCst) {
            eprint!("\r\x1b[2K");
        }
    }
}
