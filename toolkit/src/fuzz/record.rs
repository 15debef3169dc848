//! The replayable file `toolkit fuzz` writes when the broker crashes or
//! hangs, and `toolkit fuzz --replay FILE` reads: JSON, so any tool can read
//! it, with the bytes in hex. The format is documented in docs/fuzz.md:
//!
//! ```json
//! { "format": "toolkit-fuzz 1", "seed": 42, "failure": "crash",
//!   "detail": "…", "minimised": true,
//!   "sessions": [ { "index": 17, "steps": [ { "hex": "100c…", "slow": false } ] } ] }
//! ```
//!
//! Sessions are played at once, each on its own connection, steps in order.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::generate::{Session, Step};
use crate::exit::usage;

/// The `format` value this version writes and reads.
pub const FORMAT: &str = "toolkit-fuzz 1";

/// A recorded failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Always [`FORMAT`].
    pub format: String,
    /// The run's seed: `toolkit fuzz --seed SEED` sends these sessions again
    /// (before minimising) as session numbers `index`.
    pub seed: u64,
    /// `crash` or `hang`.
    pub failure: String,
    /// What the liveness check saw, in words.
    pub detail: String,
    /// Whether the sessions were minimised (false: as generated).
    pub minimised: bool,
    /// The sessions, played at once.
    pub sessions: Vec<RecordedSession>,
}

/// One session of a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedSession {
    /// Its number in the run.
    pub index: u64,
    /// Its writes.
    pub steps: Vec<RecordedStep>,
}

/// One write, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedStep {
    /// The bytes, in hex (two digits a byte, no separators).
    pub hex: String,
    /// Written one byte at a time.
    #[serde(default)]
    pub slow: bool,
}

impl Record {
    /// A record of `sessions`.
    pub fn new(
        seed: u64,
        failure: &str,
        detail: &str,
        minimised: bool,
        sessions: &[Session],
    ) -> Self {
        Self {
            format: FORMAT.to_owned(),
            seed,
            failure: failure.to_owned(),
            detail: detail.to_owned(),
            minimised,
            sessions: sessions
                .iter()
                .map(|s| RecordedSession {
                    index: s.index,
                    steps: s
                        .steps
                        .iter()
                        .map(|st| RecordedStep {
                            hex: conformance::describe::hex(&st.bytes),
                            slow: st.slow,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The sessions to play; a step whose hex is not hex is an error
    /// naming it.
    pub fn sessions(&self) -> anyhow::Result<Vec<Session>> {
        self.sessions
            .iter()
            .map(|s| {
                let steps = s
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| {
                        Ok(Step {
                            bytes: from_hex(&st.hex).map_err(|e| {
                                usage(format!("session {} step {}: {e}", s.index, i + 1))
                            })?,
                            slow: st.slow,
                        })
                    })
                    .collect::<anyhow::Result<Vec<Step>>>()?;
                Ok(Session {
                    index: s.index,
                    steps,
                })
            })
            .collect()
    }

    /// Writes the record to `path`.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding the fuzz record")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// Reads a record; a missing, unreadable or malformed file is a usage
    /// error naming the file (and the line, for bad JSON).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("reading {}: {e}", path.display())))?;
        let record: Record = serde_json::from_str(&text).map_err(|e| {
            usage(format!(
                "{}:{}: not a toolkit fuzz record: {e}",
                path.display(),
                e.line()
            ))
        })?;
        if record.format != FORMAT {
            return Err(usage(format!(
                "{}: format {:?} is not {FORMAT:?}, the one this toolkit reads",
                path.display(),
                record.format
            )));
        }
        Ok(record)
    }
}

/// Bytes from lowercase or uppercase hex; whitespace is ignored.
fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".to_owned());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|_| "not hex".to_owned())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("{s:?} is not a hex byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_file() {
        let sessions = vec![Session {
            index: 17,
            steps: vec![
                Step {
                    bytes: vec![0x10, 0x00, 0xff],
                    slow: true,
                },
                Step {
                    bytes: vec![0xe0, 0x00],
                    slow: false,
                },
            ],
        }];
        let record = Record::new(42, "crash", "connection refused", true, &sessions);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        record.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"hex\": \"1000ff\""), "{text}");
        let back = Record::read(&path).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.sessions().unwrap(), sessions);
    }

    #[test]
    fn bad_files_are_usage_errors_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\n\"format\": 3\n}").unwrap();
        let err = Record::read(&path).unwrap_err();
        assert_eq!(crate::exit::status_of(&err), crate::exit::Status::Usage);
        assert!(err.to_string().contains("bad.json:2:"), "{err}");
        assert_eq!(from_hex("1g"), Err("\"1g\" is not a hex byte".to_owned()));
        assert!(from_hex("abc").is_err());
        assert_eq!(from_hex("0A ff"), Ok(vec![0x0a, 0xff]));
    }
}
