//! Start at login: an XDG autostart entry on Linux, the user's Run key on Windows
//! (`platform::set_autostart`).

use std::path::Path;

use super::Failure;

pub fn enabled() -> bool {
    crate::platform::autostart_enabled()
}

/// Adds or removes the entry that starts `exe` (hidden in the tray) at login.
pub fn set(enabled: bool, exe: &Path) -> Result<(), Failure> {
    crate::platform::set_autostart(enabled, exe).map_err(|e| Failure::new(e.to_string()))
}
