//! The OS keychain through `keyring-core`: Secret Service on Linux, Keychain Services on
//! macOS, Credential Manager on Windows. The only module that touches the keychain.
//!
//! The store is opened explicitly (not through a process-wide default), so a failure is
//! returned to the caller, who can report it and retry later. Items are visible to other
//! tools under the attributes `service` and `username`
//! (`secret-tool search service lanyard`).

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};

use super::{Error, Secrets};
use crate::secret::Secret;

const HINT: &str = if cfg!(target_os = "linux") {
    "Lanyard keeps tokens in the Secret Service: start one in your desktop session \
     (gnome-keyring or KeePassXC; `apt install gnome-keyring`) and unlock your login keyring. \
     Without a keychain, mark the account `store = \"memory\"` or pass `--store memory`: \
     tokens then live only as long as the process."
} else {
    "Unlock your keychain and try again, or mark the account `store = \"memory\"` \
     (or pass `--store memory`): tokens then live only as long as the process."
};

/// The OS keychain: the Secret Service, the macOS Keychain or Credential Manager.
pub struct Keychain {
    store: Arc<CredentialStore>,
}

impl Keychain {
    /// Opens the OS keychain, or says why it cannot and what to do.
    pub fn open() -> Result<Keychain, Error> {
        Ok(Keychain {
            store: crate::platform::keychain_store().map_err(unavailable)?,
        })
    }

    /// The keychain as a store of secrets of any size: where one item holds less than an
    /// account's tokens (Credential Manager), larger values are kept in parts.
    pub fn into_secrets(self) -> Arc<dyn super::Secrets> {
        match crate::platform::KEYCHAIN_ITEM_MAX {
            Some(max) => Arc::new(super::chunked::Chunked::new(self, max)),
            None => Arc::new(self),
        }
    }

    fn entry(&self, service: &str, account: &str) -> Result<Entry, Error> {
        self.store.build(service, account, None).map_err(classify)
    }
}

impl Secrets for Keychain {
    fn get(&self, service: &str, account: &str) -> Result<Option<Secret>, Error> {
        match self.entry(service, account)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    fn set(&self, service: &str, account: &str, value: &Secret) -> Result<(), Error> {
        self.entry(service, account)?
            .set_password(value.expose())
            .map_err(classify)
    }

    fn delete(&self, service: &str, account: &str) -> Result<bool, Error> {
        match self.entry(service, account)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }
}

fn unavailable(e: keyring_core::Error) -> Error {
    Error::Unavailable {
        message: describe(&e),
        hint: HINT,
    }
}

/// Access failures (no service, locked, no bus) become `Unavailable` with the hint;
/// anything else is a plain failure.
fn classify(e: keyring_core::Error) -> Error {
    match e {
        keyring_core::Error::NoStorageAccess(_) | keyring_core::Error::NoDefaultStore => {
            unavailable(e)
        }
        keyring_core::Error::PlatformFailure(_) => {
            let message = describe(&e);
            if [
                "ServiceUnknown",
                "Failed to connect",
                "org.freedesktop.secrets",
                "locked",
                "Locked",
            ]
            .iter()
            .any(|m| message.contains(m))
            {
                unavailable(e)
            } else {
                Error::Failed(message)
            }
        }
        other => Error::Failed(describe(&other)),
    }
}

/// The error and its causes, each said once (D-Bus errors repeat their cause in their
/// own message), with "locked" first when that is what it is.
fn describe(e: &keyring_core::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let said = s.to_string();
        if !message.contains(&said) {
            message = format!("{message}: {said}");
        }
        source = s.source();
    }
    let locked = [
        "locked",
        "Locked",
        "IsLocked",
        "Prompt dismissed",
        "prompt dismissed",
        "prompt was dismissed",
    ]
    .iter()
    .any(|m| message.contains(m));
    if locked && !message.starts_with("the keychain is locked") {
        message = format!("the keychain is locked ({message})");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Said(&'static str, Option<Box<Said>>);

    impl std::fmt::Display for Said {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Said {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|s| s as _)
        }
    }

    /// A D-Bus failure whose every layer repeats its cause is said once, and a locked
    /// collection is called locked.
    #[test]
    fn a_keychain_error_is_said_once_and_locked_is_locked() {
        let dbus =
            "org.freedesktop.Secret.Error.IsLocked: Cannot create an item in a locked collection";
        let chain = Said(
            dbus,
            Some(Box::new(Said(dbus, Some(Box::new(Said(dbus, None)))))),
        );
        let message = describe(&keyring_core::Error::PlatformFailure(Box::new(chain)));
        assert_eq!(
            message.matches("Cannot create an item").count(),
            1,
            "{message}"
        );
        assert!(message.starts_with("the keychain is locked"), "{message}");
        assert!(matches!(
            classify(keyring_core::Error::PlatformFailure(Box::new(Said(
                dbus, None
            )))),
            Error::Unavailable { .. }
        ));
    }
}
