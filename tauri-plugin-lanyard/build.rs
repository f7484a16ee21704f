//! Tauri's plugin build step: an `allow-` and a `deny-` permission per command, and the
//! default set in `permissions/default.toml`.

const COMMANDS: &[&str] = &["sign_in", "identity", "access_token", "sign_out"];

fn main() {
    tauri_plugin::Builder::new(COMMANDS)
        .global_api_script_path("./guest-js/global.js")
        .build();
}
