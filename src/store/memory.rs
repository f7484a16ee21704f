//! Secrets in process memory: for kiosks and CI, where nothing may outlive the process.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Error, Secrets};
use crate::secret::Secret;

#[derive(Debug, Default)]
/// Secrets in this process's memory only.
pub struct Memory {
    // A std mutex: no lock is held across an await.
    items: Mutex<HashMap<(String, String), Secret>>,
}

impl Memory {
    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Secret>> {
        // A panic while holding the lock cannot leave a half-written map entry.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Secrets for Memory {
    fn get(&self, service: &str, account: &str) -> Result<Option<Secret>, Error> {
        Ok(self
            .items()
            .get(&(service.to_owned(), account.to_owned()))
            .cloned())
    }

    fn set(&self, service: &str, account: &str, value: &Secret) -> Result<(), Error> {
        self.items()
            .insert((service.to_owned(), account.to_owned()), value.clone());
        Ok(())
    }

    fn delete(&self, service: &str, account: &str) -> Result<bool, Error> {
        Ok(self
            .items()
            .remove(&(service.to_owned(), account.to_owned()))
            .is_some())
    }
}
