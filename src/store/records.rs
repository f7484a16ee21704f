//! Non-secret state about each sign-in: who signed in, when the access token expires,
//! which claims the provider sent. Kept as one JSON file per account in the platform data
//! directory (`accounts/NAME.json`, private to the user), written atomically (a temporary
//! file, then rename) so that a crash leaves the old record or the new one, never half.
//! Memory accounts keep their record in memory only. No token ever enters a record.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Error;
use crate::config::{ResponseType, StoreKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// Who is signed in to an account, and how: everything about a sign-in but the tokens. Kept as a private JSON file (keychain accounts) or in memory.
pub struct Record {
    /// The account's name.
    pub account: String,
    /// The provider's issuer.
    pub issuer: String,
    /// The client the sign-in was for.
    pub client_id: String,
    /// The provider's identifier for the person (`sub`).
    pub subject: String,
    /// Unix seconds.
    pub signed_in_at: u64,
    /// When the access token expires, in Unix seconds.
    pub access_token_expires_at: Option<u64>,
    #[serde(default)]
    /// When the ID token expires, in Unix seconds.
    pub id_token_expires_at: Option<u64>,
    /// Whether a refresh token is kept.
    pub refreshable: bool,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Where the tokens are kept (`keychain` or `memory`).
    pub store: String,
    /// `id_token` sign-ins have no access token; `token` explains why.
    #[serde(default = "code")]
    pub response_type: ResponseType,
    /// The ID token's claims (less the one-time values nonce, at_hash and c_hash).
    pub id_token_claims: Map<String, Value>,
    /// What the userinfo endpoint said, if it was asked.
    pub userinfo: Option<Map<String, Value>>,
    /// The claims of a JWT access token, verified with the provider's keys.
    #[serde(default)]
    pub access_token_claims: Option<Map<String, Value>>,
    /// Whether the access token is DPoP-bound (RFC 9449): it goes with a proof of the
    /// account's key, `Authorization: DPoP`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop: bool,
    /// Whether the sign-in is still usable.
    pub status: Status,
    /// A new random value at every write of the account's tokens to the keychain: a
    /// process that holds them in memory uses them only while this is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_stamp: Option<u64>,
}

fn code() -> ResponseType {
    ResponseType::Code
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
/// Whether a sign-in is still usable.
pub enum Status {
    /// It is.
    SignedIn,
    /// It is not: the person must sign in again.
    SignInNeeded {
        /// Why.
        reason: String,
    },
}

impl Record {
    /// Every claim, userinfo's over the ID token's: what `whoami` shows.
    pub fn claims(&self) -> Map<String, Value> {
        let mut all = self.id_token_claims.clone();
        if let Some(userinfo) = &self.userinfo {
            all.extend(userinfo.clone());
        }
        all
    }
}

#[derive(Debug)]
/// The records of every account: files in a private directory, or memory.
pub struct Records {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<String, Record>>,
}

impl Records {
    /// `dir` is `None` when the platform has no data directory; keychain accounts then
    /// cannot be saved, and say so.
    pub fn new(dir: Option<PathBuf>) -> Records {
        Records {
            dir,
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// The platform data directory: `$XDG_DATA_HOME/lanyard` on Linux.
    pub fn default_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "lanyard").map(|d| d.data_dir().to_owned())
    }

    /// The directory the files are kept in.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The record of `account`, if any (an unreadable file counts as none).
    pub fn load(&self, kind: StoreKind, account: &str) -> Option<Record> {
        match kind {
            StoreKind::Memory => self.memory().get(account).cloned(),
            StoreKind::Keychain => {
                let text = std::fs::read_to_string(self.path(account)?).ok()?;
                match serde_json::from_str(&text) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::warn!(account, error = %e, "ignoring an unreadable sign-in record");
                        None
                    }
                }
            }
        }
    }

    /// Saves `record`, replacing the one before (files are replaced atomically).
    pub fn save(&self, kind: StoreKind, record: &Record) -> Result<(), Error> {
        match kind {
            StoreKind::Memory => {
                self.memory().insert(record.account.clone(), record.clone());
                Ok(())
            }
            StoreKind::Keychain => {
                let path = self.path(&record.account).ok_or_else(|| Error::State {
                    path: "(no data directory)".into(),
                    message: "this system has no data directory for the user; set XDG_DATA_HOME"
                        .into(),
                })?;
                let json = serde_json::to_vec_pretty(record).expect("records serialise to JSON");
                write_atomically(&path, &json).map_err(|e| Error::State {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            }
        }
    }

    /// Forgets the account's record, and its refresh lock: a signed-out account leaves no
    /// file behind. (A process still waiting on the lock finds no refresh token after it.)
    pub fn remove(&self, kind: StoreKind, account: &str) -> Result<(), Error> {
        match kind {
            StoreKind::Memory => {
                self.memory().remove(account);
                Ok(())
            }
            StoreKind::Keychain => match self.path(account) {
                Some(path) => {
                    if let Some(lock) = self.lock_path(account)
                        && let Err(e) = std::fs::remove_file(&lock)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(account, error = %e, "cannot delete the refresh lock file");
                    }
                    match std::fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::State {
                            path: path.display().to_string(),
                            message: e.to_string(),
                        }),
                        _ => Ok(()),
                    }
                }
                None => Ok(()),
            },
        }
    }

    /// Where the picture at `url` of `account`'s person is cached (the desktop app's
    /// identity card): `pictures/ACCOUNT/URL`, both as hashes. `None` without a data
    /// directory.
    pub fn picture_path(&self, account: &str, url: &str) -> Option<PathBuf> {
        Some(self.pictures(account)?.join(key(url)))
    }

    /// Deletes every picture cached for `account` (at sign-out and removal).
    pub fn forget_pictures(&self, account: &str) {
        if let Some(dir) = self.pictures(account)
            && let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(account, error = %e, "cannot delete the cached pictures");
        }
    }

    fn pictures(&self, account: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("pictures").join(key(account)))
    }

    fn path(&self, account: &str) -> Option<PathBuf> {
        Some(
            self.dir
                .as_ref()?
                .join("accounts")
                .join(format!("{account}.json")),
        )
    }

    /// Where `account`'s refresh lock is (see [`super::AccountLock`]); `None` without a
    /// data directory.
    pub fn lock_path(&self, account: &str) -> Option<PathBuf> {
        Some(
            self.dir
                .as_ref()?
                .join("locks")
                .join(format!("{account}.lock")),
        )
    }

    /// Where `account`'s sign-in lock is: held by the one process that signs it in
    /// again for tools (`session::Lanyard::bring_back`); `None` without a data directory.
    pub fn sign_in_lock_path(&self, account: &str) -> Option<PathBuf> {
        Some(
            self.dir
                .as_ref()?
                .join("locks")
                .join(format!("{account}.sign-in.lock")),
        )
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A file name for `text`: 32 hex digits of its SHA-256.
fn key(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a file readable by the user only, atomically (temporary file, fsync, rename),
/// creating its directory (0700) if need be.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomically(path, bytes)
}

/// Writes `bytes` to a new file beside `path` and renames it over `path`: a reader sees
/// the old file or the new one, whole. Each write has a temporary file of its own (this
/// process's id and a count), so writers at once, in this process or another, never
/// write into one another's file or rename it from under each other: the last rename
/// wins, whole.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = path.parent().expect("record paths have a parent");
    create_private_dir(dir)?;
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{write}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("record"),
        std::process::id()
    ));
    let written = (|| {
        let mut file = crate::platform::private_file_options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        crate::platform::replace_file(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    crate::platform::private_dir_builder()
        .recursive(true)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> Record {
        Record {
            account: name.into(),
            issuer: "https://id.example.com".into(),
            client_id: "app".into(),
            subject: "alice".into(),
            signed_in_at: 1,
            access_token_expires_at: Some(2),
            id_token_expires_at: Some(2),
            refreshable: true,
            scopes: vec!["openid".into()],
            store: "keychain".into(),
            response_type: ResponseType::Code,
            id_token_claims: Map::new(),
            userinfo: None,
            access_token_claims: None,
            dpop: false,
            status: Status::SignedIn,
            tokens_stamp: None,
        }
    }

    /// Writers at once (the agent's requests saving the policy together) each succeed,
    /// and the file is one writer's whole content, never a mix; nothing is left beside it.
    #[test]
    fn writers_at_once_never_mix_or_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.json");
        let contents: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|scope| {
            for content in &contents {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..25 {
                        write_private(path, content).unwrap();
                    }
                });
            }
        });
        let written = std::fs::read(&path).unwrap();
        assert!(contents.contains(&written), "a mix of writers");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn disk_records_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(Some(dir.path().to_owned()));
        records.save(StoreKind::Keychain, &record("work")).unwrap();
        assert_eq!(
            records.load(StoreKind::Keychain, "work"),
            Some(record("work"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("accounts")), 0o700);
            assert_eq!(mode(&dir.path().join("accounts/work.json")), 0o600);
        }
        let lock = records.lock_path("work").unwrap();
        drop(super::super::AccountLock::acquire(&lock).unwrap());
        records.remove(StoreKind::Keychain, "work").unwrap();
        assert_eq!(records.load(StoreKind::Keychain, "work"), None);
        assert!(!lock.exists(), "the refresh lock goes with the record");
        records.remove(StoreKind::Keychain, "work").unwrap();
    }

    #[test]
    fn memory_records_never_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(Some(dir.path().to_owned()));
        records.save(StoreKind::Memory, &record("seat")).unwrap();
        assert!(records.load(StoreKind::Memory, "seat").is_some());
        assert!(!dir.path().join("accounts").exists());
    }

    #[test]
    fn a_corrupt_record_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("accounts")).unwrap();
        std::fs::write(dir.path().join("accounts/x.json"), "{not json").unwrap();
        assert_eq!(
            Records::new(Some(dir.path().to_owned())).load(StoreKind::Keychain, "x"),
            None
        );
    }
}
