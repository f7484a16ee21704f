//! Start at login: an XDG autostart entry on Linux.

use std::path::{Path, PathBuf};

use super::Failure;

fn entry() -> Option<PathBuf> {
    let base = directories::BaseDirs::new()?;
    Some(base.config_dir().join("autostart/lanyard.desktop"))
}

pub fn enabled() -> bool {
    entry().is_some_and(|p| p.exists())
}

/// Adds or removes the entry that starts `exe` (hidden in the tray) at login.
pub fn set(enabled: bool, exe: &Path) -> Result<(), Failure> {
    if !cfg!(target_os = "linux") {
        return Err(Failure::new(
            "start at login is not supported on this system yet",
        ));
    }
    let path = entry().ok_or_else(|| Failure::new("this system has no config directory"))?;
    let fail = |e: std::io::Error| Failure::new(format!("{}: {e}", path.display()));
    if !enabled {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fail(e)),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let exe = exe.display().to_string().replace('"', "\\\"");
    let text = format!(
        "[Desktop Entry]\nType=Application\nName=Lanyard\nComment=Sign-in helper and token broker\n\
         Exec=\"{exe}\" --hidden\nIcon=lanyard-desktop\nX-GNOME-Autostart-enabled=true\n"
    );
    std::fs::write(&path, text).map_err(fail)
}
