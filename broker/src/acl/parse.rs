//! mosquitto's `acl_file` format, read into [`Acl`] rules.
//!
//! ```text
//! # comment
//! topic read sensors/#          <- before any `user`: anonymous clients
//! pattern readwrite devices/%c/# <- every client, %c its client id, %u its user name
//! user alice
//! topic alice/#                 <- no access word: readwrite
//! topic deny alice/secret
//! ```
//!
//! As mosquitto 2.0 reads it: the first word of a line is `topic`,
//! `pattern` or `user`; an access word (`read`, `write`, `readwrite`,
//! `deny`) is taken only when more text follows it, and the rest of the
//! line, trailing blanks trimmed, is the filter. `#` starts a comment only
//! at the start of a line. Where mosquitto would skip a line silently (an
//! unknown keyword) this parser refuses it, naming the line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mqtt_codec::topic::TopicFilter;

use super::{Access, Acl, Rule, Rules};

/// Why an ACL file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AclFileError {
    /// The file cannot be read.
    #[error("reading ACL file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a comment, `user NAME`, `topic ...` or `pattern ...`.
    #[error("ACL file {path} line {line}: {reason}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and how to write it.
        reason: String,
    },
}

impl Acl {
    /// Reads and parses an ACL file.
    pub fn load(path: &Path) -> Result<Self, AclFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses ACL text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, AclFileError> {
        let mut anonymous = Rules::default();
        let mut users: HashMap<Box<str>, Rules> = HashMap::new();
        let mut patterns = Rules::default();
        let mut user: Option<Box<str>> = None;
        for (i, raw) in text.lines().enumerate() {
            let bad = |reason: String| AclFileError::BadLine {
                path: path.to_owned(),
                line: i + 1,
                reason,
            };
            let line = raw.trim_end();
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim_start_matches(' ');
            let (keyword, rest) = match line.split_once(' ') {
                Some((k, r)) => (k, r.trim_start_matches(' ')),
                None => (line, ""),
            };
            match keyword {
                "" => {}
                "user" => {
                    if rest.is_empty() {
                        return Err(bad("`user` without a name: write `user NAME`".into()));
                    }
                    user = Some(rest.into());
                }
                "topic" | "pattern" => {
                    let rule = rule(keyword, rest).map_err(bad)?;
                    let rules = match (keyword, &user) {
                        ("pattern", _) => &mut patterns,
                        (_, Some(name)) => users.entry(name.clone()).or_default(),
                        (_, None) => &mut anonymous,
                    };
                    rules.push(rule);
                }
                other => {
                    return Err(bad(format!(
                        "unknown keyword \"{other}\": a line is `user NAME`, `topic [read|write|readwrite|deny] FILTER`, `pattern [read|write|readwrite|deny] FILTER` or a `#` comment"
                    )));
                }
            }
        }
        Ok(Acl {
            anonymous,
            users,
            patterns,
        })
    }
}

/// One `topic` or `pattern` line's rule, from the text after the keyword.
fn rule(keyword: &str, rest: &str) -> Result<Rule, String> {
    if rest.is_empty() {
        return Err(format!(
            "`{keyword}` without a filter: write `{keyword} [read|write|readwrite|deny] FILTER`"
        ));
    }
    // An access word counts only when a filter follows it, as in mosquitto:
    // `topic read` alone is the topic `read` with readwrite access.
    let (access, filter) = match rest.split_once(' ') {
        Some((word, filter)) => {
            let access = match word {
                "read" => Access::Read,
                "write" => Access::Write,
                "readwrite" => Access::ReadWrite,
                "deny" => Access::Deny,
                other => {
                    return Err(format!(
                        "access \"{other}\" is not read, write, readwrite or deny"
                    ));
                }
            };
            (access, filter.trim_matches(' '))
        }
        None => (Access::ReadWrite, rest),
    };
    // A pattern is checked with its %c and %u standing for a plain level:
    // what a client's id or name puts there is checked when it is used.
    let checked = if keyword == "pattern" {
        filter.replace("%c", "c").replace("%u", "u")
    } else {
        filter.to_owned()
    };
    if let Err(e) = TopicFilter::new(&checked) {
        return Err(format!("\"{filter}\" is not a valid topic filter: {e}"));
    }
    Ok(Rule {
        filter: filter.into(),
        access,
        substitutes: keyword == "pattern" && (filter.contains("%c") || filter.contains("%u")),
        needs_user: keyword == "pattern" && filter.contains("%u"),
    })
}
