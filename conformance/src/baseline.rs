//! Baselines: the known deviations of a broker, each with a reason, and the
//! verdict of a run measured against one.
//!
//! A scenario listed in the baseline may fail without failing the run; if it
//! passes, the baseline is stale and the run fails too, so a baseline never
//! hides a fix or outlives the bug it excused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::Level;
use crate::suite::{RunReport, Suite};

/// One known deviation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// The scenario that fails.
    pub scenario: String,
    /// The statements the broker breaks.
    pub statements: Vec<String>,
    /// Why the broker, not the suite, is wrong.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    #[serde(default)]
    broker: Option<String>,
    #[serde(default)]
    deviation: Vec<Deviation>,
}

/// A broker's known deviations, by scenario name.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// What broker it describes.
    pub broker: Option<String>,
    /// Deviations by scenario.
    pub deviations: BTreeMap<String, Deviation>,
}

/// Why a baseline could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Unreadable.
    #[error("reading baseline {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Not valid.
    #[error("baseline {path}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Baseline {
    /// Reads and checks a baseline file against the suite it will judge:
    /// every entry must name a scenario of the suite, cite statements, and
    /// give a reason.
    pub fn load(path: &Path, suite: &Suite) -> Result<Self, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text, suite)
    }

    /// Parses baseline text (see [`Baseline::load`]).
    pub fn parse(path: &str, text: &str, suite: &Suite) -> Result<Self, BaselineError> {
        let invalid = |message: String| BaselineError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: BaselineFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |s| crate::script::line_of(text, s.start));
            invalid(format!("line {line}: {}", e.message().trim_end()))
        })?;
        let mut deviations = BTreeMap::new();
        for d in file.deviation {
            if !suite.scenarios.iter().any(|s| s.name == d.scenario) {
                return Err(invalid(format!(
                    "scenario {:?} is not in the suite; remove the entry or fix its name",
                    d.scenario
                )));
            }
            if d.reason.trim().is_empty() || d.statements.is_empty() {
                return Err(invalid(format!(
                    "entry for {:?} needs its statements and a reason",
                    d.scenario
                )));
            }
            if deviations.insert(d.scenario.clone(), d.clone()).is_some() {
                return Err(invalid(format!(
                    "scenario {:?} is listed twice",
                    d.scenario
                )));
            }
        }
        Ok(Self {
            broker: file.broker,
            deviations,
        })
    }
}

/// How a run stands against a baseline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evaluation {
    /// MUST scenarios that failed and are not in the baseline.
    pub failures: Vec<String>,
    /// Baselined scenarios that failed, as expected.
    pub known: Vec<String>,
    /// Baselined scenarios that passed: the baseline is stale.
    pub stale: Vec<String>,
    /// SHOULD/MAY scenarios that failed (not baselined).
    pub observations: Vec<String>,
    /// Scenarios the broker's allowed choices left nothing to check (a
    /// lower QoS granted, a subscription refused): neither pass nor fail.
    pub not_applicable: Vec<String>,
    /// Scenarios skipped.
    pub skipped: Vec<String>,
    /// Scenarios that passed.
    pub passed: Vec<String>,
}

/// The overall result of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every MUST passed or failed as baselined, and no baseline entry passed.
    Pass,
    /// A MUST scenario failed outside the baseline.
    Fail,
    /// No new failures, but a baselined scenario now passes.
    StaleBaseline,
}

impl Evaluation {
    /// Judges `report` against `baseline`.
    pub fn of(report: &RunReport, baseline: &Baseline) -> Self {
        let mut e = Self::default();
        for r in &report.results {
            let listed = baseline.deviations.contains_key(&r.name);
            let name = r.name.clone();
            if r.not_applicable() {
                // Neither evidence that a listed deviation is fixed nor a
                // failure: the scenario could not look.
                e.not_applicable.push(name);
                continue;
            }
            match (r.passed(), r.failed(), listed) {
                (true, _, true) => e.stale.push(name),
                (true, _, false) => e.passed.push(name),
                (_, true, true) => e.known.push(name),
                (_, true, false) if r.level == Level::Must => e.failures.push(name),
                (_, true, false) => e.observations.push(name),
                _ => e.skipped.push(name),
            }
        }
        e
    }

    /// The overall status.
    pub fn status(&self) -> Status {
        if !self.failures.is_empty() {
            Status::Fail
        } else if !self.stale.is_empty() {
            Status::StaleBaseline
        } else {
            Status::Pass
        }
    }
}
