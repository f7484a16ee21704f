//! `lanyard-desktop`: the Tauri shell over [`lanyard::desktop`].
//!
//! Everything Lanyard does lives in the library; this file only wires it to a window and a
//! tray: each command forwards to [`Desktop`], each [`UiEvent`] is emitted to the window
//! as `lanyard://event`, and a few events also move the window (an approval prompt brings
//! it forward) or the tray (its icon and menu follow the accounts).

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod tray;

use lanyard::desktop::{
    AccountView, ActivityEntry, AddAccount, AppRule, Desktop, Failure, IdentityView, Options,
    PresetView, ProviderCheck, UiEvent,
};
use tauri::{AppHandle, Emitter as _, Manager as _, State};

/// What the commands reach: the app's model, or why it could not start.
struct App {
    desktop: Result<Desktop, Failure>,
    /// Why the private-use scheme could not be registered, if it could not: accounts that
    /// use it cannot sign in, every other one can.
    scheme_error: Option<String>,
}

impl App {
    fn get(&self) -> Result<&Desktop, Failure> {
        self.desktop.as_ref().map_err(Clone::clone)
    }
}

type Reply<T> = Result<T, Failure>;

/// What the window shows in its footer and its start-up banner.
#[derive(serde::Serialize)]
struct Info {
    version: &'static str,
    socket: Option<String>,
    config: Option<String>,
    /// Why the broker is not running, if it is not.
    error: Option<Failure>,
    scheme_error: Option<String>,
    autostart: bool,
    /// Kiosk mode: the seat, for the kiosk screen.
    seat: Option<lanyard::kiosk::SeatView>,
}

#[tauri::command]
fn info(app: State<'_, App>) -> Info {
    let (socket, config) = match &app.desktop {
        Ok(d) => (
            Some(d.socket().display().to_string()),
            Some(d.config_path().display().to_string()),
        ),
        Err(_) => (None, None),
    };
    Info {
        version: env!("CARGO_PKG_VERSION"),
        socket,
        config,
        error: app.desktop.as_ref().err().cloned(),
        scheme_error: app.scheme_error.clone(),
        autostart: lanyard::desktop::autostart::enabled(),
        seat: app.desktop.as_ref().ok().and_then(Desktop::seat),
    }
}

#[tauri::command]
async fn offers_device_flow(app: State<'_, App>, account: String) -> Reply<bool> {
    app.get()?.offers_device_flow(&account).await
}

#[tauri::command]
async fn sign_in_device(app: State<'_, App>, account: String) -> Reply<IdentityView> {
    let desktop = app.get()?.clone();
    desktop.sign_in_device(&account).await
}

/// The kiosk's End session button.
#[tauri::command]
async fn end_session(app: State<'_, App>) -> Reply<bool> {
    let desktop = app.get()?.clone();
    desktop.end_session(lanyard::kiosk::Trigger::Button).await
}

/// "I'm still here", or any input on the kiosk screen.
#[tauri::command]
fn still_here(app: State<'_, App>) -> Reply<()> {
    app.get()?.still_here();
    Ok(())
}

/// On a kiosk, quitting ends the seat session first: the next person inherits nothing.
pub fn end_seat_before_exit(handle: &AppHandle) {
    let desktop = handle
        .try_state::<App>()
        .and_then(|app| app.get().ok().cloned());
    if let Some(desktop) = desktop
        && desktop.seat().is_some()
    {
        let _ = tauri::async_runtime::block_on(desktop.end_session(lanyard::kiosk::Trigger::Quit));
    }
}

#[tauri::command]
fn accounts(app: State<'_, App>) -> Reply<Vec<AccountView>> {
    Ok(app.get()?.accounts())
}

#[tauri::command]
fn presets(app: State<'_, App>) -> Reply<Vec<PresetView>> {
    Ok(app.get()?.presets())
}

#[tauri::command]
fn identity(app: State<'_, App>, account: String) -> Reply<IdentityView> {
    app.get()?.identity(&account)
}

#[tauri::command]
async fn picture(app: State<'_, App>, account: String) -> Reply<Option<String>> {
    Ok(app.get()?.picture(&account).await)
}

#[tauri::command]
async fn sign_in(app: State<'_, App>, account: String) -> Reply<IdentityView> {
    let desktop = app.get()?.clone();
    desktop.sign_in(&account).await
}

#[tauri::command]
fn cancel(app: State<'_, App>, account: String) -> Reply<bool> {
    Ok(app.get()?.cancel(&account))
}

#[tauri::command]
async fn sign_out(app: State<'_, App>, account: String) -> Reply<Vec<String>> {
    let desktop = app.get()?.clone();
    desktop.sign_out(&account).await
}

#[tauri::command]
async fn access_token(app: State<'_, App>, account: String) -> Reply<String> {
    app.get()?.access_token(&account).await
}

#[tauri::command]
fn answer(app: State<'_, App>, id: u64, decision: String) -> Reply<bool> {
    app.get()?.answer(id, &decision)
}

/// The prompts still waiting: a window opened after they were asked shows them.
#[tauri::command]
fn approvals(app: State<'_, App>) -> Reply<Vec<UiEvent>> {
    Ok(app.get()?.pending_approvals())
}

#[tauri::command]
fn apps(app: State<'_, App>) -> Reply<Vec<AppRule>> {
    app.get()?.apps()
}

#[tauri::command]
fn revoke(app: State<'_, App>, account: String, path: String) -> Reply<Vec<AppRule>> {
    app.get()?.revoke(&account, &path)
}

#[tauri::command]
fn activity(app: State<'_, App>) -> Reply<Vec<ActivityEntry>> {
    Ok(app.get()?.activity(200))
}

#[tauri::command]
async fn check_provider(app: State<'_, App>, issuer: String) -> Reply<ProviderCheck> {
    app.get()?.check_provider(&issuer).await
}

#[tauri::command]
async fn add_account(app: State<'_, App>, form: AddAccount) -> Reply<Vec<AccountView>> {
    app.get()?.add_account(form).await
}

#[tauri::command]
async fn remove_account(app: State<'_, App>, account: String) -> Reply<Vec<AccountView>> {
    app.get()?.remove_account(&account).await
}

#[tauri::command]
fn set_autostart(enabled: bool) -> Reply<bool> {
    let exe = std::env::current_exe().map_err(|e| Failure {
        message: format!("cannot find this program's path: {e}"),
        hint: None,
    })?;
    lanyard::desktop::autostart::set(enabled, &exe)?;
    Ok(lanyard::desktop::autostart::enabled())
}

/// When the process started: the window reports its first paint against it.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// The window's first paint (the front end calls this once, two frames after its first
/// render): logged for `cargo xtask bench`, which times launches by this line.
#[tauri::command]
fn painted() {
    if let Some(start) = STARTED.get() {
        eprintln!(
            "lanyard-desktop: painted {} ms after start",
            start.elapsed().as_millis()
        );
    }
}

#[tauri::command]
fn quit(handle: AppHandle) {
    handle.exit(0);
}

/// Shows the main window and brings it forward, opening it if it is closed.
pub fn show(handle: &AppHandle) {
    let window = match handle.get_webview_window(WINDOW) {
        Some(window) => window,
        None => match open_window(handle) {
            Ok(window) => window,
            // Opened meanwhile by another call (an approval and a sign-in at once).
            Err(_) if handle.get_webview_window(WINDOW).is_some() => return show(handle),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the window");
                return;
            }
        },
    };
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
}

/// The main window's label, as tauri.conf.json names it.
const WINDOW: &str = "main";

/// Opens the main window as tauri.conf.json describes it. The window is not made at
/// start (`create: false`): started at login the app lives in the tray, and closing the
/// window destroys it, webview and web processes with it; this makes it anew.
fn open_window(handle: &AppHandle) -> tauri::Result<tauri::WebviewWindow> {
    let config = handle
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == WINDOW)
        .ok_or_else(|| tauri::Error::WindowNotFound)?
        .clone();
    let window = tauri::WebviewWindowBuilder::from_config(handle, &config)?.build()?;
    // A kiosk seat's screen fills the display.
    let kiosk = handle
        .try_state::<App>()
        .is_some_and(|app| app.get().is_ok_and(|d| d.seat().is_some()));
    if kiosk {
        let _ = window.set_fullscreen(true);
    }
    Ok(window)
}

/// In the tray with no window (closed, or started at login): once the window's teardown
/// is over, the webview's helper processes end and the memory the window used goes back
/// to the system. A window opened meanwhile keeps it all: the check and the ending run
/// on the main thread, where windows are made.
fn release_when_windowless(handle: AppHandle) {
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let main = handle.clone();
        let _ = handle.run_on_main_thread(move || {
            if main.get_webview_window(WINDOW).is_some() {
                return;
            }
            // WebKitWebDriver ends its session when WebKit's network process does: under
            // automation (tests) the helpers stay.
            let automated = std::env::var("TAURI_WEBVIEW_AUTOMATION").as_deref() == Ok("true");
            let helpers = if automated {
                0
            } else {
                lanyard::platform::end_webview_helpers()
            };
            match lanyard::platform::release_memory() {
                Ok(bytes) => tracing::debug!(helpers, kib = bytes / 1024, "memory released"),
                Err(e) => tracing::debug!(error = %e, "memory cannot be released"),
            }
        });
    });
}

/// The actions of a "sign in again" notification: its "Sign in" button (a click on the
/// notification itself does the same).
const SIGN_IN_ACTIONS: &str = "lanyard-sign-in";

/// Registers the "Sign in" action of the notifications: it brings the window forward and
/// signs the notification's account in.
fn notification_actions(handle: &AppHandle, desktop: &Desktop) {
    use tauri_plugin_notification::{Action, ActionType, NotificationExt as _};
    let notifications = handle.notification();
    let sign_in = ActionType::builder(SIGN_IN_ACTIONS)
        .actions(vec![Action::builder("sign-in", "Sign in").build()])
        .build();
    if let Err(e) = notifications.register_action_types(vec![sign_in]) {
        tracing::info!(error = %e, "no notification actions");
        return;
    }
    let (handle, desktop) = (handle.clone(), desktop.clone());
    let registered = notifications.on_action(move |performed| {
        if !matches!(performed.action_id(), "sign-in" | "tap") {
            return;
        }
        let Some(account) = performed
            .notification()
            .and_then(|n| n.extra().get("account"))
            .and_then(|a| a.as_str())
            .map(str::to_owned)
        else {
            return;
        };
        show(&handle);
        let desktop = desktop.clone();
        tauri::async_runtime::spawn(async move {
            if let Err(e) = desktop.sign_in(&account).await {
                tracing::info!(error = %e.message, "from the notification");
            }
        });
    });
    if let Err(e) = registered {
        tracing::info!(error = %e, "no notification actions");
    }
}

/// Forwards the model's events to the window, the tray and the desktop's notifications.
async fn forward(handle: AppHandle, desktop: Desktop) {
    let mut events = desktop.subscribe();
    if let Some(tray) = handle.tray_by_id(tray::ID) {
        tray::update(&handle, &tray, &desktop.accounts());
    }
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        match &event {
            UiEvent::Approval { .. } => show(&handle),
            UiEvent::Progress {
                action: "sign_in",
                stage: "done",
                ..
            } => show(&handle),
            UiEvent::Accounts { accounts } => {
                if let Some(tray) = handle.tray_by_id(tray::ID) {
                    tray::update(&handle, &tray, accounts);
                }
            }
            UiEvent::SignInNeeded {
                account,
                reason,
                app,
            } => {
                use tauri_plugin_notification::NotificationExt as _;
                // Told once per lapse (the broker says it once, however many ask), with
                // the app that is waiting, and a "Sign in" action.
                let body = match app {
                    Some(app) => format!(
                        "{} is waiting for it. {reason}",
                        app.rsplit(['/', '\\']).next().unwrap_or(app)
                    ),
                    None => reason.clone(),
                };
                let shown = handle
                    .notification()
                    .builder()
                    .title(format!("Sign in to {account} again"))
                    .body(body)
                    .action_type_id(SIGN_IN_ACTIONS)
                    .extra("account", account)
                    .show();
                if let Err(e) = shown {
                    tracing::info!(error = %e, "no notification");
                }
            }
            _ => {}
        }
        if let Err(e) = handle.emit("lanyard://event", &event) {
            tracing::warn!(error = %e, "cannot reach the window");
        }
    }
}

/// Private-use scheme redirects: registered with the desktop (Linux: a `.desktop` handler
/// in the user's data directory), received while running (a second launch with the URL,
/// forwarded by the single-instance plugin) and at a cold start. A failed registration is
/// reported, not fatal.
fn deep_links(app: &tauri::App, desktop: Option<&Desktop>) -> Option<String> {
    use tauri_plugin_deep_link::DeepLinkExt as _;
    let links = app.deep_link();
    if let Some(desktop) = desktop {
        let receiver = desktop.clone();
        links.on_open_url(move |event| {
            for url in event.urls() {
                if let Err(e) = receiver.deep_link(url.as_str()) {
                    tracing::info!(error = %e.message, "link");
                }
            }
        });
        // Started by the link itself: no sign-in can be waiting, and the window says so.
        if let Ok(Some(urls)) = links.get_current() {
            for url in urls {
                let _ = desktop.deep_link(url.as_str());
            }
        }
    }
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    if let Err(e) = links.register_all() {
        tracing::warn!(error = %e, "cannot register the dev.lanyard: scheme");
        return Some(format!(
            "Lanyard could not register its dev.lanyard: links ({e}); accounts that use them cannot sign in"
        ));
    }
    None
}

fn main() {
    STARTED.get_or_init(std::time::Instant::now);
    for (key, value) in lanyard::platform::webview_environment() {
        // SAFETY: the first thing `main` does: no other thread runs yet to read the
        // environment while it changes.
        unsafe { std::env::set_var(key, value) };
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let app = tauri::Builder::default()
        // Registered first: a second launch (or a deep link, which the OS delivers by
        // starting the app again) reaches this instance instead.
        .plugin(tauri_plugin_single_instance::init(|handle, _argv, _cwd| {
            show(handle);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(tauri::generate_handler![
            info,
            accounts,
            presets,
            identity,
            picture,
            sign_in,
            cancel,
            sign_out,
            access_token,
            answer,
            approvals,
            apps,
            revoke,
            activity,
            check_provider,
            add_account,
            remove_account,
            set_autostart,
            painted,
            quit,
            offers_device_flow,
            sign_in_device,
            end_session,
            still_here,
        ])
        .setup(|app| {
            let desktop = tauri::async_runtime::block_on(Desktop::start(Options::default()));
            if let Err(e) = &desktop {
                tracing::error!(error = %e.message, "the broker did not start");
            }
            let handle = app.handle().clone();
            // The tray first: the forwarder shows the accounts in it from the start.
            if let Err(e) = tray::create(&handle) {
                tracing::warn!(error = %e, "no tray icon");
            }
            if let Ok(d) = &desktop {
                notification_actions(&handle, d);
                tauri::async_runtime::spawn(forward(handle.clone(), d.clone()));
            }
            let scheme_error = deep_links(app, desktop.as_ref().ok());
            app.manage(App {
                desktop,
                scheme_error,
            });
            // Started at login: straight to the tray, no window made.
            if std::env::args().any(|a| a == "--hidden") {
                release_when_windowless(handle);
            } else {
                open_window(&handle)?;
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::Destroyed = event
                && window.label() == WINDOW
            {
                release_when_windowless(window.app_handle().clone());
            }
        })
        .build(tauri::generate_context!())
        .expect("the Tauri application could not be built");
    app.run(|handle, event| match event {
        // The last window closed: Lanyard (and its broker) lives on in the tray. An exit
        // asked for (Quit) has a code, and goes ahead.
        tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        tauri::RunEvent::Exit => end_seat_before_exit(handle),
        _ => {}
    });
}
