//! The tray icon: its picture says whether every account is signed in, its menu signs
//! each in or out, opens the window, or quits.

use lanyard::desktop::{AccountView, Desktop};
use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager as _};

pub const ID: &str = "lanyard";

const OK: &[u8] = include_bytes!("../../icons/tray.png");
const ATTENTION: &[u8] = include_bytes!("../../icons/tray-attention.png");
const SIGNED_OUT: &[u8] = include_bytes!("../../icons/tray-signed-out.png");

pub fn create(handle: &AppHandle) -> tauri::Result<()> {
    TrayIconBuilder::with_id(ID)
        .icon(Image::from_bytes(SIGNED_OUT)?)
        .tooltip("Lanyard")
        .menu(&menu(handle, &[])?)
        .show_menu_on_left_click(false)
        .on_menu_event(|handle, event| on_menu(handle, event.id.as_ref()))
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::DoubleClick { .. } = event {
                super::show(tray.app_handle());
            }
        })
        .build(handle)?;
    Ok(())
}

/// Follows the accounts: the icon, the tooltip and the menu.
pub fn update(handle: &AppHandle, tray: &TrayIcon, accounts: &[AccountView]) {
    let needs = accounts.iter().any(|a| a.status == "sign_in_needed");
    let signed_in = accounts.iter().filter(|a| a.status == "signed_in").count();
    let (icon, tooltip) = if needs {
        (
            ATTENTION,
            "Lanyard: an account needs you to sign in".to_owned(),
        )
    } else if signed_in > 0 {
        (OK, format!("Lanyard: {signed_in} signed in"))
    } else {
        (SIGNED_OUT, "Lanyard: not signed in".to_owned())
    };
    if let Ok(image) = Image::from_bytes(icon) {
        let _ = tray.set_icon(Some(image));
    }
    let _ = tray.set_tooltip(Some(&tooltip));
    if let Ok(menu) = menu(handle, accounts) {
        let _ = tray.set_menu(Some(menu));
    }
}

fn menu(handle: &AppHandle, accounts: &[AccountView]) -> tauri::Result<Menu<tauri::Wry>> {
    let menu = Menu::new(handle)?;
    for a in accounts {
        let (id, label) = if a.status == "signed_in" {
            (
                format!("sign-out:{}", a.name),
                format!(
                    "Sign out of {} ({})",
                    a.name,
                    a.person.as_deref().unwrap_or("")
                ),
            )
        } else {
            (
                format!("sign-in:{}", a.name),
                format!("Sign in to {} ({})", a.name, a.provider),
            )
        };
        menu.append(&MenuItem::with_id(handle, id, label, true, None::<&str>)?)?;
    }
    if !accounts.is_empty() {
        menu.append(&PredefinedMenuItem::separator(handle)?)?;
    }
    menu.append(&MenuItem::with_id(
        handle,
        "open",
        "Open Lanyard",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(
        handle,
        "quit",
        "Quit Lanyard",
        true,
        None::<&str>,
    )?)?;
    Ok(menu)
}

fn on_menu(handle: &AppHandle, id: &str) {
    let desktop = || {
        handle
            .try_state::<super::App>()
            .and_then(|app| app.get().ok().cloned())
    };
    match id.split_once(':') {
        Some(("sign-in", account)) => {
            if let Some(d) = desktop() {
                let account = account.to_owned();
                super::show(handle);
                tauri::async_runtime::spawn(async move { report(&d, d.sign_in(&account).await) });
            }
        }
        Some(("sign-out", account)) => {
            if let Some(d) = desktop() {
                let account = account.to_owned();
                tauri::async_runtime::spawn(async move { report(&d, d.sign_out(&account).await) });
            }
        }
        _ if id == "open" => super::show(handle),
        _ if id == "quit" => handle.exit(0),
        _ => {}
    }
}

/// The window hears of the outcome through the model's progress events; this only logs.
fn report<T>(_desktop: &Desktop, outcome: Result<T, lanyard::desktop::Failure>) {
    if let Err(e) = outcome {
        tracing::info!(error = %e.message, "from the tray");
    }
}
