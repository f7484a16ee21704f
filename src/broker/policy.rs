//! Which app may have which account's tokens: a pure decision over a small file.
//!
//! Apps are named by executable path. Per account an app is allowed always, allowed once
//! (the grant is used up by the next token), or denied; a denial wins. Anything else is
//! unknown: the caller gets `approval_required` with the command that allows it, or the
//! desktop app asks the person. The file (`policy.json` in the data directory) holds no
//! secret and is written atomically by `lanyard allow` / `lanyard deny`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::platform;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub accounts: BTreeMap<String, Rules>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    #[serde(default)]
    pub always: BTreeSet<String>,
    #[serde(default)]
    pub once: BTreeSet<String>,
    #[serde(default)]
    pub denied: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed this one time; the grant must be used up.
    AllowOnce,
    Deny,
    Unknown,
}

impl Policy {
    /// What is decided for `app`, an executable's path as the OS names it; paths compare
    /// as the OS compares them (case-insensitively on Windows).
    pub fn decide(&self, account: &str, app: &str) -> Decision {
        let Some(rules) = self.accounts.get(account) else {
            return Decision::Unknown;
        };
        // An exact match first; a scan only where paths ignore case.
        let has = |set: &BTreeSet<String>| {
            set.contains(app)
                || (platform::PATHS_IGNORE_CASE
                    && set
                        .iter()
                        .any(|a| platform::same_path(Path::new(a), Path::new(app))))
        };
        if has(&rules.denied) {
            Decision::Deny
        } else if has(&rules.always) {
            Decision::Allow
        } else if has(&rules.once) {
            Decision::AllowOnce
        } else {
            Decision::Unknown
        }
    }

    /// Records a decision; the newest one for an app replaces any older.
    pub fn set(&mut self, account: &str, app: &str, decision: Decision) {
        let rules = self.accounts.entry(account.to_owned()).or_default();
        let other = |a: &String| !platform::same_path(Path::new(a), Path::new(app));
        rules.always.retain(other);
        rules.once.retain(other);
        rules.denied.retain(other);
        let _ = match decision {
            Decision::Allow => rules.always.insert(app.to_owned()),
            Decision::AllowOnce => rules.once.insert(app.to_owned()),
            Decision::Deny => rules.denied.insert(app.to_owned()),
            Decision::Unknown => false,
        };
    }

    /// Uses up a one-time grant.
    pub fn consume_once(&mut self, account: &str, app: &str) {
        if let Some(rules) = self.accounts.get_mut(account) {
            rules
                .once
                .retain(|a| !platform::same_path(Path::new(a), Path::new(app)));
        }
    }
}

/// The policy file.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    pub path: PathBuf,
}

impl PolicyFile {
    pub fn new(data_dir: &Path) -> PolicyFile {
        PolicyFile {
            path: data_dir.join("policy.json"),
        }
    }

    /// The policy; a missing file is an empty one. An unreadable file is an error, never
    /// an empty policy: that would silently drop denials.
    pub fn load(&self) -> Result<Policy, String> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{} is damaged: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default()),
            Err(e) => Err(format!("cannot read {}: {e}", self.path.display())),
        }
    }

    pub fn save(&self, policy: &Policy) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(policy).expect("policies serialise to JSON");
        crate::store::write_private(&self.path, &json)
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows names an executable in whatever case; a decision holds for the file.
    #[cfg(windows)]
    #[test]
    fn windows_paths_compare_without_case() {
        let mut policy = Policy::default();
        policy.set("w", r"C:\Tools\App.exe", Decision::Allow);
        assert_eq!(policy.decide("w", r"c:\tools\app.exe"), Decision::Allow);
        policy.set("w", r"c:\TOOLS\app.exe", Decision::Deny);
        assert!(policy.accounts["w"].always.is_empty());
        assert_eq!(policy.decide("w", r"C:\Tools\App.exe"), Decision::Deny);
    }

    #[test]
    fn decisions() {
        let mut p = Policy::default();
        let check = |p: &Policy, app: &str, expected: Decision| {
            assert_eq!(p.decide("work", app), expected, "{app}")
        };
        check(&p, "/usr/bin/kubectl", Decision::Unknown);
        p.set("work", "/usr/bin/kubectl", Decision::Allow);
        p.set("work", "/usr/bin/git", Decision::AllowOnce);
        p.set("work", "/usr/bin/curl", Decision::Deny);
        check(&p, "/usr/bin/kubectl", Decision::Allow);
        check(&p, "/usr/bin/git", Decision::AllowOnce);
        check(&p, "/usr/bin/curl", Decision::Deny);
        assert_eq!(
            p.decide("other", "/usr/bin/kubectl"),
            Decision::Unknown,
            "grants are per account"
        );
        p.consume_once("work", "/usr/bin/git");
        check(&p, "/usr/bin/git", Decision::Unknown);
        p.set("work", "/usr/bin/kubectl", Decision::Deny);
        check(&p, "/usr/bin/kubectl", Decision::Deny);
        p.set("work", "/usr/bin/kubectl", Decision::Unknown);
        check(&p, "/usr/bin/kubectl", Decision::Unknown);
    }

    #[test]
    fn the_file_round_trips_and_a_damaged_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = PolicyFile::new(dir.path());
        assert_eq!(file.load().unwrap(), Policy::default());
        let mut p = Policy::default();
        p.set("work", "/usr/bin/git", Decision::Allow);
        file.save(&p).unwrap();
        assert_eq!(file.load().unwrap(), p);
        std::fs::write(&file.path, "{").unwrap();
        assert!(file.load().unwrap_err().contains("damaged"));
    }
}
