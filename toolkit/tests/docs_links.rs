//! The README and `docs/*.md` (issue 12, item 9): every relative Markdown
//! link points to a file that exists (and, with `#anchor`, to a heading of
//! it), the README stays short, and it keeps the two set-up commands CI
//! runs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// README.md and every `docs/*.md`.
fn documents() -> Vec<PathBuf> {
    let root = root();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

/// The targets of the inline links `[text](target)` of a Markdown text,
/// outside fenced code blocks and inline code.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop inline code spans, where `](` is text, not a link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// The anchors GitHub gives a file's headings: lowercase, spaces to `-`,
/// punctuation other than `-` and `_` dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        out.insert(slug);
    }
    out
}

/// `path` with its `.` and `..` components resolved, without touching the
/// file system (the file may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Every broken relative link of `doc`, as `file: target (why)`.
fn broken_links(doc: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(doc).unwrap();
    let dir = doc.parent().unwrap();
    let name = doc.strip_prefix(root()).unwrap().display().to_string();
    let mut broken = Vec::new();
    for target in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = match target.split_once('#') {
            Some((f, a)) => (f, Some(a)),
            None => (target.as_str(), None),
        };
        let path = if file.is_empty() {
            doc.to_path_buf()
        } else {
            normalize(&dir.join(file))
        };
        if !path.exists() {
            broken.push(format!("{name}: {target} (no such file)"));
            continue;
        }
        if let Some(anchor) = anchor
            && path.extension().is_some_and(|e| e == "md")
        {
            let headings = anchors(&std::fs::read_to_string(&path).unwrap());
            if !headings.contains(anchor) {
                broken.push(format!("{name}: {target} (no heading #{anchor})"));
            }
        }
    }
    broken
}

#[test]
fn relative_links_of_readme_and_docs_point_to_existing_files() {
    let docs = documents();
    assert!(docs.len() > 1, "no docs/*.md found");
    let broken: Vec<String> = docs.iter().flat_map(|d| broken_links(d)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn readme_stays_short_and_keeps_the_set_up_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 220,
        "README.md has {lines} lines; move the long parts to docs/"
    );
    for command in [
        "./scripts/setup && just conformance",
        "./scripts/setup && just test",
    ] {
        assert!(
            readme.lines().any(|l| l.trim() == command),
            "README.md lost the command `{command}`"
        );
    }
}

#[test]
fn link_finder_skips_code_and_checks_anchors() {
    let text = "see [a](docs/a.md) and `[b](c)`\n```\n[d](e)\n```\n[f](g.md#h-i)\n";
    assert_eq!(links(text), ["docs/a.md", "g.md#h-i"]);
    let headings = anchors("# Top\n## Baselines and their `file` format\n```\n# not\n```\n");
    assert_eq!(
        headings.into_iter().collect::<Vec<_>>(),
        ["baselines-and-their-file-format", "top"]
    );
}
