//! What is wrong with a script, and where: every parse error, from the
//! scenario tables and from each action's fields, is a [`ScriptError`]
//! reading `file:line: message`.

use crate::model::Location;

/// A script that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ScriptError {
    /// File and line.
    pub location: Location,
    /// What is wrong, and how to fix it where that is not obvious.
    pub message: String,
}

impl ScriptError {
    pub(crate) fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
        }
    }
}

/// Turns a byte offset into a 1-based line number.
pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    source
        .get(..offset.min(source.len()))
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}
