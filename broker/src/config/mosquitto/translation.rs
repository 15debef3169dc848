//! What reading a mosquitto.conf yields: the settings table, bridge
//! blocks, warnings and notes, each tied to its file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where a line of a mosquitto.conf (or of a file it includes) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file, as named on the command line or found by `include_dir`.
    pub path: PathBuf,
    /// The line number, from 1.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// A warning or note about one line, shown at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The line it is about.
    pub origin: Origin,
    /// What is wrong or ignored, and what to do about it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// One bridge directive inside a `connection` block, unparsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDirective {
    /// The directive (`address`, `topic`, `bridge_cafile`...).
    pub name: String,
    /// The rest of the line, trimmed.
    pub value: String,
    /// Where it is.
    pub origin: Origin,
}

/// A `connection NAME` line and the bridge directives after it, up to the
/// next `connection`, for the bridge module to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeBlock {
    /// The connection's name.
    pub name: String,
    /// Where the `connection` line is.
    pub origin: Origin,
    /// Its directives, in file order.
    pub directives: Vec<BridgeDirective>,
}

/// A mosquitto.conf read into the broker's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translation {
    /// The settings, under the TOML file's keys (`max-inflight`,
    /// `listener`...), ready for [`crate::config::FileSettings`].
    pub settings: toml::Table,
    /// Bridge blocks, in file order.
    pub bridges: Vec<BridgeBlock>,
    /// Unknown or unsupported directives, one per line.
    pub warnings: Vec<Diagnostic>,
    /// Directives read and deliberately ignored.
    pub notes: Vec<Diagnostic>,
    /// Where the listeners emitted as `listener` tables are, in order
    /// (empty when the listeners fit the flags' keys).
    pub listeners: Vec<Origin>,
    /// The directive and line each setting came from (the first
    /// listener's for `listener`), so a setting the broker refuses is
    /// reported at its line.
    pub sources: BTreeMap<String, Source>,
}

/// The line a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The directive (`acl_file`).
    pub directive: String,
    /// Where it is.
    pub origin: Origin,
}
