//! `[[match]]`: the account a command means when it names none, picked by the directory
//! it runs in or by the git remotes of the repository there. gh's users ask for this
//! (cli/cli #12459, #13768): a work account under `~/work`, a personal one elsewhere.
//!
//! ```toml
//! [[match]]
//! remote = "github.com/acme"     # a repository with a remote under github.com/acme/
//! account = "acme"
//!
//! [[match]]
//! directory = "~/work"           # this directory and everything under it
//! account = "work"
//! ```
//!
//! Rules are tried in the file's order; the first that matches picks. A remote pattern is
//! `HOST/PATH`, compared segment by segment with the remote's own, in any case (`*` is
//! any one segment), and matches that repository and everything under the path; a
//! remote's scheme, user, port and `.git` suffix do not count.

use std::path::{Path, PathBuf};

use crate::platform;

/// One `[[match]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Its place among the file's rules, from 1 (`whoami` names it).
    pub index: usize,
    /// What it matches.
    pub on: On,
    /// The account it picks.
    pub account: String,
}

/// What a [`Rule`] matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    /// This directory and everything under it (`~/` is the home directory).
    Directory(PathBuf),
    /// A repository with a remote whose `HOST/PATH` starts with these segments.
    Remote(String),
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.on {
            On::Directory(dir) => {
                write!(f, "[[match]] #{}: directory {}", self.index, dir.display())
            }
            On::Remote(remote) => write!(f, "[[match]] #{}: remote {remote}", self.index),
        }
    }
}

/// Where a command runs: its directory, and the `HOST/PATH` of each remote of the git
/// repository there (none outside one).
#[derive(Debug, Clone, Default)]
pub struct Place {
    /// The directory.
    pub dir: PathBuf,
    /// The repository's remotes, as `host/path`.
    pub remotes: Vec<String>,
}

impl Place {
    /// The current directory, and the remotes of the repository it is in.
    pub fn here() -> Place {
        let dir = std::env::current_dir().unwrap_or_default();
        let remotes = repository_remotes(&dir);
        Place { dir, remotes }
    }
}

/// Why an account was picked for a command that named none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// This rule matched.
    Rule(Rule),
    /// No rule matched, and the file has this one account.
    OnlyAccount,
}

impl std::fmt::Display for Picked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Picked::Rule(rule) => rule.fmt(f),
            Picked::OnlyAccount => f.write_str("the only account in the file"),
        }
    }
}

impl super::Config {
    /// The account a command run at `place` means when it names none: the first
    /// `[[match]]` rule that matches, else the file's only account.
    pub fn pick(&self, place: &Place) -> Result<(&str, Picked), super::Error> {
        if let Some(rule) = pick(&self.rules, place) {
            return Ok((&rule.account, Picked::Rule(rule.clone())));
        }
        let mut names = self.accounts.keys();
        match (names.next(), names.next()) {
            (Some(only), None) => Ok((only, Picked::OnlyAccount)),
            _ => Err(super::Error::NoAccountHere {
                dir: place.dir.clone(),
                path: self.path.clone(),
            }),
        }
    }
}

/// The first rule that matches `place`.
pub fn pick<'a>(rules: &'a [Rule], place: &Place) -> Option<&'a Rule> {
    // As written, or with links resolved (a rule for ~/work, a shell in its real path).
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let dir = real(&place.dir);
    rules.iter().find(|rule| match &rule.on {
        On::Directory(root) => place.dir.starts_with(root) || dir.starts_with(real(root)),
        On::Remote(pattern) => place.remotes.iter().any(|r| remote_matches(pattern, r)),
    })
}

/// Checks a rule's `remote` pattern: `HOST/PATH`, lowercase host, no scheme.
pub(super) fn check_remote(pattern: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "`{pattern}` is not HOST/PATH (e.g. \"github.com/acme\"; no scheme, user or `.git`)"
        )
    };
    if pattern.contains("://") || pattern.contains('@') || pattern.ends_with(".git") {
        return Err(bad());
    }
    let (host, _) = pattern.split_once('/').unwrap_or((pattern, ""));
    if host.is_empty() || host.contains(':') || pattern.split('/').any(str::is_empty) {
        return Err(bad());
    }
    Ok(pattern.to_ascii_lowercase())
}

/// Expands a rule's `directory`: `~/…` under the home directory; it must be absolute.
pub(super) fn check_directory(dir: &str) -> Result<PathBuf, String> {
    let path = match dir
        .strip_prefix("~/")
        .or(if dir == "~" { Some("") } else { None })
    {
        Some(rest) => directories::BaseDirs::new()
            .ok_or("there is no home directory to expand `~` in")?
            .home_dir()
            .join(rest),
        None => PathBuf::from(dir),
    };
    if !path.is_absolute() {
        return Err(format!(
            "`{dir}` is not an absolute path (or one under `~/`)"
        ));
    }
    Ok(path)
}

fn remote_matches(pattern: &str, remote: &str) -> bool {
    let remote: Vec<&str> = remote.split('/').collect();
    let pattern: Vec<&str> = pattern.split('/').collect();
    pattern.len() <= remote.len()
        && pattern
            .iter()
            .zip(&remote)
            .all(|(p, r)| *p == "*" || p.eq_ignore_ascii_case(r))
}

/// `HOST/PATH` of a git remote URL: `https://host/path.git`, `ssh://git@host:22/path`,
/// or scp-like `git@host:path.git`. Local paths and `file://` have none.
pub fn remote_host_path(url: &str) -> Option<String> {
    let url = url.trim();
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(
            scheme,
            "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git"
        ) {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?;
        (host, path)
    } else {
        // scp-like: [user@]host:path, where host has no slash before the colon.
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') || authority.is_empty() {
            return None;
        }
        (authority.rsplit('@').next()?, path)
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{}/{path}", host.to_ascii_lowercase()))
}

/// The largest git file read (a repository's config, `.git` and `commondir` files).
const GIT_FILE_MAX: u64 = 1024 * 1024;

/// The remotes (`HOST/PATH`) of the git repository `dir` is in, read from its config
/// file (a worktree's config is its main repository's). Only a repository of the user's
/// own counts, as git's `safe.directory` has it: another user's `.git` (in /tmp, say)
/// picks no account, and a FIFO or device in place of a file is not read.
fn repository_remotes(dir: &Path) -> Vec<String> {
    let read = |path: &Path| platform::read_small_file(path, GIT_FILE_MAX, true).ok();
    // The nearest `.git`, as git finds it; if it is another user's, no remote counts.
    let Some((top, dot_git)) = dir
        .ancestors()
        .map(|d| (d, d.join(".git")))
        .find(|(_, dot_git)| dot_git.symlink_metadata().is_ok())
    else {
        return Vec::new();
    };
    let Ok(meta) = std::fs::metadata(&dot_git) else {
        return Vec::new();
    };
    let git_dir = if meta.is_dir() {
        if !platform::owned_by_user(&meta) {
            return Vec::new();
        }
        dot_git
    } else {
        // A worktree or submodule: `.git` is a file naming the real directory.
        let Some(named) = read(&dot_git)
            .and_then(|text| Some(PathBuf::from(text.strip_prefix("gitdir:")?.trim())))
        else {
            return Vec::new();
        };
        if named.is_absolute() {
            named
        } else {
            top.join(named)
        }
    };
    let common = read(&git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or(git_dir);
    let Some(config) = read(&common.join("config")) else {
        return Vec::new();
    };
    let mut remotes = Vec::new();
    let mut in_remote = false;
    for line in config.lines().map(str::trim) {
        if line.starts_with('[') {
            in_remote = line.starts_with("[remote ");
        } else if in_remote
            && let Some((key, value)) = line.split_once('=')
            && key.trim().eq_ignore_ascii_case("url")
            && let Some(remote) = remote_host_path(value.trim().trim_matches('"'))
        {
            remotes.push(remote);
        }
    }
    remotes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository in `dir` whose remote is `git.acme.test/acme/api`.
    #[cfg(unix)]
    fn repository(dir: &Path) -> PathBuf {
        let git = dir.join(".git");
        std::fs::create_dir_all(&git).unwrap();
        std::fs::write(
            git.join("config"),
            "[remote \"origin\"]\n\turl = https://git.acme.test/acme/api.git\n",
        )
        .unwrap();
        git
    }

    /// Another user's `.git` (in a shared /tmp, say) picks no account, as git's
    /// `safe.directory` trusts only the user's own repositories. (The test runs as root,
    /// as `cargo xtask test` does, to give a directory away.)
    #[cfg(unix)]
    #[test]
    fn another_users_repository_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        // The user's own repository, and another's inside it.
        let _ = repository(dir.path());
        let inner = dir.path().join("inner");
        let git = repository(&inner);
        let inside = inner.join("src");
        std::fs::create_dir(&inside).unwrap();
        assert_eq!(repository_remotes(&inside), ["git.acme.test/acme/api"]);
        std::os::unix::fs::chown(&git, Some(65534), Some(65534))
            .expect("the tests run as root (`cargo xtask test`)");
        // Neither the other user's repository nor (past it) the user's own counts.
        assert_eq!(repository_remotes(&inside), Vec::<String>::new());
        assert_eq!(repository_remotes(dir.path()), ["git.acme.test/acme/api"]);
    }

    /// A FIFO or a device in place of a git file is not read: no hang, no endless read.
    #[cfg(unix)]
    #[test]
    fn special_files_in_place_of_git_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let git = repository(dir.path());
        std::fs::remove_file(git.join("config")).unwrap();
        let fifo = std::ffi::CString::new(git.join("config").to_str().unwrap()).unwrap();
        // SAFETY: a valid, NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(repository_remotes(dir.path()), Vec::<String>::new());
        // `.git` a file that is /dev/zero.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", other.path().join(".git")).unwrap();
        assert_eq!(repository_remotes(other.path()), Vec::<String>::new());
        // And an accounts file that is a FIFO is an error at once.
        let accounts =
            std::ffi::CString::new(dir.path().join("config.toml").to_str().unwrap()).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::mkfifo(accounts.as_ptr(), 0o600) }, 0);
        let err = crate::config::Config::load(&dir.path().join("config.toml")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn remote_urls_of_every_shape_give_host_and_path() {
        for (url, want) in [
            (
                "https://github.com/acme/api.git",
                Some("github.com/acme/api"),
            ),
            (
                "https://user@GitHub.com:443/acme/api/",
                Some("github.com/acme/api"),
            ),
            (
                "ssh://git@github.com:22/acme/api.git",
                Some("github.com/acme/api"),
            ),
            ("git@github.com:acme/api.git", Some("github.com/acme/api")),
            ("github.com:acme/api", Some("github.com/acme/api")),
            ("/srv/git/api.git", None),
            ("file:///srv/git/api.git", None),
            ("../api", None),
        ] {
            assert_eq!(remote_host_path(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn the_first_matching_rule_picks() {
        let rules = vec![
            Rule {
                index: 1,
                on: On::Remote("github.com/acme".into()),
                account: "acme".into(),
            },
            Rule {
                index: 2,
                on: On::Remote("*/personal".into()),
                account: "me".into(),
            },
            Rule {
                index: 3,
                on: On::Directory("/work".into()),
                account: "work".into(),
            },
        ];
        let at = |dir: &str, remotes: &[&str]| Place {
            dir: dir.into(),
            remotes: remotes.iter().map(|r| (*r).to_owned()).collect(),
        };
        let picked = |place: Place| pick(&rules, &place).map(|r| r.account.as_str());
        assert_eq!(
            picked(at("/work/api", &["github.com/acme/api"])),
            Some("acme")
        );
        // Segment by segment: `acme` is not `acme-labs`.
        assert_eq!(
            picked(at("/work/x", &["github.com/acme-labs/x"])),
            Some("work")
        );
        assert_eq!(
            picked(at("/home/me/x", &["gitlab.com/personal/x"])),
            Some("me")
        );
        // A directory matches itself and what is under it, not a sibling with its prefix.
        assert_eq!(picked(at("/work", &[])), Some("work"));
        assert_eq!(picked(at("/workshop", &[])), None);
        assert_eq!(picked(at("/home/me", &["github.com/other/x"])), None);
    }

    #[test]
    fn patterns_and_directories_are_checked() {
        assert_eq!(check_remote("GitHub.com/Acme").unwrap(), "github.com/acme");
        for bad in [
            "https://github.com/acme",
            "git@github.com:acme",
            "github.com/acme/api.git",
            "github.com//acme",
            "/acme",
            "github.com:22/acme",
        ] {
            assert!(check_remote(bad).is_err(), "{bad}");
        }
        assert!(check_directory("relative/dir").is_err());
        let absolute = std::env::temp_dir();
        assert_eq!(
            check_directory(&absolute.display().to_string()).unwrap(),
            absolute
        );
    }
}
