//! No import circles between the library's rooms: a room is a top-level module of
//! `src/`, or one level below it for a module that is a directory (`broker::server`,
//! `session::login`). A room's references to others are its `crate::…` paths and its
//! `super::…` ones (tests left out); a circle among them fails `cargo xtask test`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::bail;

/// Checks `src/` and says which rooms go round in a circle, if any do.
pub fn check() -> anyhow::Result<()> {
    let src = super::root().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files)?;
    let mut texts = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        if !module.is_empty() {
            texts.push((module, std::fs::read_to_string(&file)?));
        }
    }
    let exists = |path: &[String]| {
        let joined = src.join(path.join("/"));
        joined.with_extension("rs").exists() || joined.is_dir()
    };
    let is_dir = |path: &[String]| src.join(path.join("/")).is_dir();
    let edges = references(&texts, &exists, &is_dir);
    let circles = circles(&edges);
    if !circles.is_empty() {
        let shown: Vec<String> = circles.iter().map(|c| c.join(" → ")).collect();
        bail!("import circles between rooms of src/: {}", shown.join("; "));
    }
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// `src/broker/server.rs` is `["broker", "server"]`; `mod.rs` is its directory; lib.rs
/// and main.rs are no room.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The room a module path is in.
fn room(path: &[String], is_dir: &dyn Fn(&[String]) -> bool) -> String {
    let depth = if path.len() > 1 && is_dir(&path[..1]) {
        2
    } else {
        1
    };
    path[..depth.min(path.len())].join("::")
}

/// Each room's references to other rooms.
fn references(
    texts: &[(Vec<String>, String)],
    exists: &dyn Fn(&[String]) -> bool,
    is_dir: &dyn Fn(&[String]) -> bool,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in texts {
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let from = room(module, is_dir);
        let mut targets: Vec<Vec<String>> = Vec::new();
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent_of(module))] {
            for (at, _) in code.match_indices(prefix) {
                let rest = &code[at + prefix.len()..];
                for first in names_after(rest) {
                    let mut path = base.clone();
                    path.extend(first);
                    targets.push(path);
                }
            }
        }
        for mut path in targets {
            while !path.is_empty() && !exists(&path) {
                path.pop();
            }
            if path.is_empty() {
                continue;
            }
            let to = room(&path, is_dir);
            if to != from {
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    edges
}

/// The module whose `super` a file means: its parent (a `mod.rs` names its directory, so
/// its parent is one up).
fn parent_of(module: &[String]) -> Vec<String> {
    module[..module.len().saturating_sub(1)].to_vec()
}

/// The paths named right after `crate::` or `super::`: `a::b`, or each of `{a, b::c}`.
fn names_after(rest: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| -> Vec<String> {
        s.split("::")
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|p| {
                !p.is_empty() && p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            })
            .collect()
    };
    if let Some(group) = rest.strip_prefix('{') {
        let group = group.split('}').next().unwrap_or_default();
        group
            .split(',')
            .map(|g| ident(g.trim()))
            .filter(|p| !p.is_empty())
            .collect()
    } else {
        let path = ident(rest);
        if path.is_empty() { vec![] } else { vec![path] }
    }
}

/// The circles among the rooms: each strongly connected set of two or more.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().chain(edges.values().flatten()).collect();
    let reaches = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut found: Vec<Vec<String>> = Vec::new();
    for n in &nodes {
        if !reach[n].contains(*n) || found.iter().any(|c| c.contains(n)) {
            continue;
        }
        let circle: Vec<String> = nodes
            .iter()
            .filter(|m| reach[n].contains(**m) && reach[*m].contains(*n))
            .map(|m| (*m).clone())
            .collect();
        found.push(circle);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_circle_is_found_and_a_chain_is_not() {
        let files = [
            "broker/server",
            "broker/forward",
            "broker/oidc_agent",
            "error",
            "session",
        ];
        let exists = |p: &[String]| p == ["broker"] || files.contains(&p.join("/").as_str());
        let is_dir = |p: &[String]| p == ["broker"];
        let texts = |forward_uses_server: bool| {
            vec![
                (
                    vec!["broker".to_owned(), "server".to_owned()],
                    "use super::forward::open;\n".to_owned(),
                ),
                (
                    vec!["broker".to_owned(), "forward".to_owned()],
                    if forward_uses_server {
                        "use super::{oidc_agent, server};"
                    } else {
                        "use super::oidc_agent;"
                    }
                    .to_owned(),
                ),
                (
                    vec!["error".to_owned()],
                    "use crate::{flow, session::StsError};\n// crate::broker\n".to_owned(),
                ),
                (
                    vec!["session".to_owned()],
                    "use crate::error::Error;\n#[cfg(test)]\nmod tests { use crate::session; }"
                        .to_owned(),
                ),
            ]
        };
        let found = circles(&references(&texts(true), &exists, &is_dir));
        assert_eq!(
            found,
            [
                vec!["broker::forward".to_owned(), "broker::server".to_owned()],
                vec!["error".to_owned(), "session".to_owned()],
            ]
        );
        let mut chain = texts(false);
        chain[2].1 = "use crate::flow;".into();
        assert!(circles(&references(&chain, &exists, &is_dir)).is_empty());
    }
}
