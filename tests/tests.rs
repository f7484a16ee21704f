//! Lanyard's end-to-end tests: the real `lanyard` binary against real parts — the real
//! test provider (node-oidc-provider), Debian's Chromium as the browser, gnome-keyring as
//! the keychain — and, for attacks a real provider never makes, a hostile provider.
//! Run them with `cargo xtask test`, which provides the private keychain they need.

mod support;

/// The agent: protocol, approvals, single-flight refresh, restarts, other users.
mod broker;
/// The command line: configuration errors, exit codes, JSON, a missing keychain.
mod cli;
/// The crate as other apps embed it (`lanyard::client`), through its examples.
mod client;
/// Cloud credentials from the sign-in: the AWS CLI with moto's STS, Google's format.
mod cloud;
/// The desktop app in its real webview: sign in, identity, an approval, sign out.
mod desktop;
/// DPoP (RFC 9449) at the real provider: tokens bound to the account's key, proofs from the
/// command line and the agent, a stolen refresh token useless, nonces.
mod dpop;
/// examples/tauri-signin, a Tauri app using tauri-plugin-lanyard, in its real webview.
mod example_app;
/// Token exchange (RFC 8693) at the real provider, directly and through the agent.
mod exchange;
/// `lanyard exec`: tokens in a command's environment, never on its command line.
mod exec;
/// The real provider: sign-in, refresh with rotation, sign-out, client authentication.
mod flows;
/// The hostile provider: every RP certification case and JOSE attack, each rejected.
mod hostile;
/// Kiosk mode: a seat session against the real provider, ended by every trigger, and a
/// residue scan after each.
mod kiosk;
/// A lapsed sign-in brought back once for the tools a person waits at (real kubectl on
/// terminals), and told at once to those that cannot wait.
mod lapsed;
/// `[[match]]`: the account per directory or git remote, with the real git.
mod matching;
/// Lanyard's ID-token verifier beside openidconnect's, as a differential oracle.
mod oracle;
/// The provider down, hanging or answering garbage while tools ask at once; processes
/// that refresh together without the agent.
mod outage;
/// The five seed providers as presets, each against its emulation.
mod presets;
/// clients/python against the real agent, with requests and httpx.
mod python;
/// Package registries that take the sign-in's token: real cargo and a sparse registry.
mod registries;
/// A browser that cannot come back: on another machine, over ssh, in a container.
mod remote;
/// `lanyard ssh`: the agent forwarded over the real OpenSSH, approved per host.
mod ssh;
/// A sign-in never changes who an account is, unless the person asks; a `LANYARD_SOCK`
/// that names nothing is an error.
mod subject;
/// The Windows lane: lanyard.exe under Wine, against the real provider.
mod windows;
