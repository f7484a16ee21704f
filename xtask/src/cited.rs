//! The tests docs/security.md cites for each finding exist: a refactor that deletes or
//! renames one fails `cargo xtask test` until the document names what tests it now.

use anyhow::{Context, bail};

/// Lists every test of the workspace and checks the document's citations against them.
pub fn check() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(super::root().join("docs/security.md"))
        .context("reading docs/security.md")?;
    let listed = super::cargo()
        .args(["test", "--workspace", "--", "--list"])
        .stderr(std::process::Stdio::null())
        .output()
        .context("listing the tests")?;
    if !listed.status.success() {
        bail!("`cargo test --workspace -- --list` failed");
    }
    let tests: Vec<&str> = std::str::from_utf8(&listed.stdout)?
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .collect();
    let missing: Vec<String> = cited(&doc)
        .into_iter()
        .filter(|name| !tests.iter().any(|t| names(name, t)))
        .collect();
    if !missing.is_empty() {
        bail!(
            "docs/security.md cites tests that do not exist: {}",
            missing.join(", ")
        );
    }
    Ok(())
}

/// The test paths (`module::name`, with `…` or `*` for the rest) in the last column of
/// the document's tables.
fn cited(doc: &str) -> Vec<String> {
    let mut found = Vec::new();
    for row in doc.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').collect();
        let Some(last) = cells.len().checked_sub(2).map(|i| cells[i]) else {
            continue;
        };
        for (i, part) in last.split('`').enumerate() {
            if i % 2 == 1 && part.contains("::") && !part.contains(' ') {
                found.push(part.to_owned());
            }
        }
    }
    found
}

/// Whether the cited `name` names the listed test `test`: its path, or a module of it,
/// from any level down (`flow::tests::x` names `lanyard::…::flow::tests::x`); `…` and `*`
/// stand for any characters.
fn names(name: &str, test: &str) -> bool {
    let pattern = name.replace('…', "*");
    let segments: Vec<&str> = test.split("::").collect();
    (0..segments.len()).any(|start| {
        (start + 1..=segments.len()).any(|end| glob(&pattern, &segments[start..end].join("::")))
    })
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else {
                return false;
            };
            (0..=after.len())
                .filter(|i| after.is_char_boundary(*i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_name_tests_modules_and_prefixes() {
        let test = "broker::agent::tokens::tests::narrower_tokens_per_account_are_bounded";
        assert!(names(
            "agent::tokens::tests::narrower_tokens_per_account_are_bounded",
            test
        ));
        assert!(names("broker::agent::tokens::tests::narrower_…", test));
        assert!(names("tokens::tests::*per_account*", test));
        assert!(names("broker::agent", test));
        assert!(!names(
            "agent::tests::narrower_tokens_per_account_are_bounded",
            test
        ));
        assert!(!names("tokens::tests::narrower", test));
        assert_eq!(
            cited("| M2 | x | y | `flow::tests::a`, `b::c…` and `hostile` |\n| no `x::y` | |"),
            ["flow::tests::a", "b::c…"]
        );
    }
}
