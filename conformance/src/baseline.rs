//! Baselines: the known deviations of a broker, each with a reason, and the
//! verdict of a run measured against one.
//!
//! A scenario listed in the baseline may fail without failing the run; if it
//! passes, the baseline is stale and the run fails too, so a baseline never
//! hides a fix or outlives the bug it excused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use toml::Spanned;

use crate::model::Level;
use crate::outcome::Verdict;
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
    /// When the entry was recorded (`YYYY-MM-DD`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// A timing-dependent deviation: it may pass now and then, and a run
    /// where it passes is neither failed nor stale.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
}

/// An entry as written, every field optional, so that every missing field
/// of every entry can be reported at once.
#[derive(Debug, Deserialize)]
struct DeviationDef {
    scenario: Option<String>,
    statements: Option<Vec<String>>,
    reason: Option<String>,
    date: Option<String>,
    #[serde(default)]
    flaky: bool,
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineFile {
    #[serde(default)]
    broker: Option<String>,
    #[serde(default)]
    deviation: Vec<Spanned<DeviationDef>>,
}

#[derive(Serialize)]
struct BaselineOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    broker: Option<&'a str>,
    deviation: Vec<&'a Deviation>,
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
    /// Not valid: every problem found, one per line.
    #[error("baseline {path}: {}", .problems.join(&format!("\nbaseline {path}: ")))]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong, one entry per problem, each naming its line.
        problems: Vec<String>,
    },
    /// Neither a file nor the name of a shipped baseline.
    #[error("no baseline file {name} and no shipped baseline of that name; shipped: {}", .shipped.join(", "))]
    Unknown {
        /// What was asked for.
        name: String,
        /// The names of the shipped baselines.
        shipped: Vec<String>,
    },
}

/// The baselines shipped with the suite (`fixtures/baselines/*.toml`), by
/// name without the extension, e.g. `mosquitto-2.0`.
pub fn shipped() -> impl Iterator<Item = (&'static str, &'static str)> {
    crate::builtin::BASELINE_FILES
        .iter()
        .map(|(file, text)| (file.strip_suffix(".toml").unwrap_or(file), *text))
}

impl Baseline {
    /// Reads and checks a baseline file against the suite it will judge:
    /// every entry must name a scenario of the suite, cite statements that
    /// exist in `fixtures/spec/`, and give a reason. Every problem is
    /// reported, not only the first.
    pub fn load(path: &Path, suite: &Suite) -> Result<Self, BaselineError> {
        let text = std::fs::read_to_string(path).map_err(|source| BaselineError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&path.display().to_string(), &text, suite)
    }

    /// A file, or when no such file exists and `name` is a bare name, the
    /// shipped baseline of that name (see [`shipped`]).
    pub fn load_file_or_shipped(name: &Path, suite: &Suite) -> Result<Self, BaselineError> {
        if name.exists() {
            return Self::load(name, suite);
        }
        let bare = name.to_str().filter(|n| !n.contains(['/', '\\']));
        if let Some(n) = bare {
            let n = n.strip_suffix(".toml").unwrap_or(n);
            if let Some((_, text)) = shipped().find(|(s, _)| *s == n) {
                return Self::parse(&format!("fixtures/baselines/{n}.toml"), text, suite);
            }
            return Err(BaselineError::Unknown {
                name: n.to_owned(),
                shipped: shipped().map(|(s, _)| s.to_owned()).collect(),
            });
        }
        Self::load(name, suite)
    }

    /// Parses baseline text (see [`Baseline::load`]).
    pub fn parse(path: &str, text: &str, suite: &Suite) -> Result<Self, BaselineError> {
        let invalid = |problems: Vec<String>| BaselineError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let file: BaselineFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |s| crate::script::line_of(text, s.start));
            invalid(vec![format!("line {line}: {}", e.message().trim_end())])
        })?;
        let known = crate::spec::statement_ids();
        let mut problems = Vec::new();
        let mut deviations = BTreeMap::new();
        for entry in file.deviation {
            let line = crate::script::line_of(text, entry.span().start);
            let d = entry.into_inner();
            let mut problem = |message: String| problems.push(format!("line {line}: {message}"));
            for key in d.unknown.keys() {
                problem(format!(
                    "unknown field `{key}`; an entry has scenario, statements, reason, date and flaky"
                ));
            }
            let Some(scenario) = d.scenario else {
                problem("entry without `scenario`".to_owned());
                continue;
            };
            if !suite.scenarios.iter().any(|s| s.name == scenario) {
                problem(format!(
                    "scenario {scenario:?} is not in the suite; remove the entry or fix its name"
                ));
            }
            let statements = d.statements.unwrap_or_default();
            if statements.is_empty() {
                problem(format!("entry for {scenario:?} needs its `statements`"));
            }
            for id in statements.iter().filter(|id| !known.contains(*id)) {
                problem(format!(
                    "entry for {scenario:?}: unknown statement id {id:?} (see fixtures/spec/)"
                ));
            }
            let reason = d.reason.unwrap_or_default();
            if reason.trim().is_empty() {
                problem(format!("entry for {scenario:?} needs a `reason`"));
            }
            let deviation = Deviation {
                scenario: scenario.clone(),
                statements,
                reason,
                date: d.date,
                flaky: d.flaky,
            };
            if deviations.insert(scenario.clone(), deviation).is_some() {
                problem(format!("scenario {scenario:?} is listed twice"));
            }
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        Ok(Self {
            broker: file.broker,
            deviations,
        })
    }

    /// The baseline as a TOML file that [`Baseline::parse`] reads back.
    pub fn to_toml(&self) -> String {
        let out = BaselineOut {
            broker: self.broker.as_deref(),
            deviation: self.deviations.values().collect(),
        };
        toml::to_string(&out).unwrap_or_default()
    }

    /// A baseline recording every MUST scenario of `report` that failed,
    /// each with its statements, the observed failure as its reason and
    /// `date`. Entries of `previous` for scenarios that still fail keep
    /// their reason, date and `flaky` mark, and its flaky entries are kept
    /// even when they passed this time.
    pub fn record(report: &RunReport, previous: &Baseline, broker: &str, date: &str) -> Self {
        let mut deviations = BTreeMap::new();
        for r in &report.results {
            let old = previous.deviations.get(&r.name);
            let keep = match old {
                Some(d) if d.flaky => !r.not_applicable(),
                _ => r.failed() && r.level == Level::Must,
            };
            if !keep {
                continue;
            }
            let d = match old {
                Some(d) => d.clone(),
                None => Deviation {
                    scenario: r.name.clone(),
                    // The statements of the check that failed, when known.
                    statements: match &r.verdict {
                        Verdict::Fail { failure } if !failure.statements.is_empty() => {
                            failure.statements.clone()
                        }
                        _ => r.statements.clone(),
                    },
                    reason: failure_text(&r.verdict),
                    date: Some(date.to_owned()),
                    flaky: false,
                },
            };
            deviations.insert(r.name.clone(), d);
        }
        Self {
            broker: Some(broker.to_owned()),
            deviations,
        }
    }
}

/// What a failed scenario observed, in one paragraph.
fn failure_text(v: &Verdict) -> String {
    match v {
        Verdict::Fail { failure } => format!(
            "observed: expected {}; observed {} (step `{}` at {})",
            failure.expected, failure.observed, failure.step, failure.location
        ),
        Verdict::Error { message } => format!("observed: {message}"),
        _ => String::new(),
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
    /// Scenarios not run because the broker had become unavailable.
    pub not_run: Vec<String>,
    /// Each time the broker stopped answering the liveness probe, with the
    /// scenarios likely to blame.
    pub outages: Vec<crate::outcome::Outage>,
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
    /// The broker stopped answering the liveness probe during the run
    /// (whether or not it came back): the results after that say nothing
    /// of its rules.
    BrokerUnavailable,
}

/// What one scenario came to, measured against the baseline: the one
/// field of the JSON report a CI system needs to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It passed (a stale baseline entry, which passed although listed, is
    /// `passed` too; the report lists it under `stale`).
    Passed,
    /// A MUST scenario failed (or could not be carried out) outside the
    /// baseline: the run fails.
    Failed,
    /// It failed as the baseline says it does.
    KnownDeviation,
    /// A SHOULD or MAY scenario failed: reported, never fails the run.
    Observation,
    /// Not run: the run lacks what it needs (TLS, credentials, a client
    /// certificate).
    Skipped,
    /// Run, but the broker made a choice the spec allows that left nothing
    /// to check.
    NotApplicable,
    /// Not run: the broker had stopped answering.
    NotRun,
}

impl Evaluation {
    /// The outcome of scenario `name` (`skipped` for a name not in the run).
    pub fn outcome(&self, name: &str) -> Outcome {
        let has = |v: &[String]| v.iter().any(|n| n == name);
        if has(&self.failures) {
            Outcome::Failed
        } else if has(&self.known) {
            Outcome::KnownDeviation
        } else if has(&self.observations) {
            Outcome::Observation
        } else if has(&self.passed) || has(&self.stale) {
            Outcome::Passed
        } else if has(&self.not_applicable) {
            Outcome::NotApplicable
        } else if has(&self.not_run) {
            Outcome::NotRun
        } else {
            Outcome::Skipped
        }
    }

    /// Judges `report` against `baseline`.
    pub fn of(report: &RunReport, baseline: &Baseline) -> Self {
        let mut e = Self {
            outages: report.outages.clone(),
            ..Self::default()
        };
        for r in &report.results {
            let entry = baseline.deviations.get(&r.name);
            let listed = entry.is_some();
            let flaky = entry.is_some_and(|d| d.flaky);
            let name = r.name.clone();
            if r.not_applicable() {
                // Neither evidence that a listed deviation is fixed nor a
                // failure: the scenario could not look.
                e.not_applicable.push(name);
                continue;
            }
            if r.not_run() {
                // Not evidence either way: a listed deviation that did not
                // run is not stale.
                e.not_run.push(name);
                continue;
            }
            match (r.passed(), r.failed(), listed) {
                // A flaky deviation that passed this time is not stale.
                (true, _, true) if flaky => e.passed.push(name),
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
        if !self.outages.is_empty() {
            Status::BrokerUnavailable
        } else if !self.failures.is_empty() {
            Status::Fail
        } else if !self.stale.is_empty() {
            Status::StaleBaseline
        } else {
            Status::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite() -> Suite {
        Suite::builtin().unwrap()
    }

    #[test]
    fn every_problem_is_listed_at_once_with_its_line() {
        let text = r#"
[[deviation]]
scenario = "connect.nope"
statements = ["MQTT-3.1.4-4"]
reason = "r"

[[deviation]]
scenario = "connect.accepted"
statements = ["MQTT-9.9.9-9"]

[[deviation]]
statements = ["MQTT-3.1.4-4"]
reason = "r"
colour = "red"
"#;
        let err = Baseline::parse("b.toml", text, &suite()).unwrap_err();
        let BaselineError::Invalid { problems, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            problems,
            &[
                "line 2: scenario \"connect.nope\" is not in the suite; remove the entry or fix its name",
                "line 7: entry for \"connect.accepted\": unknown statement id \"MQTT-9.9.9-9\" (see fixtures/spec/)",
                "line 7: entry for \"connect.accepted\" needs a `reason`",
                "line 11: unknown field `colour`; an entry has scenario, statements, reason, date and flaky",
                "line 11: entry without `scenario`",
            ]
        );
        // One line per problem in the message.
        assert_eq!(err.to_string().lines().count(), 5);
        assert!(
            err.to_string()
                .lines()
                .all(|l| l.starts_with("baseline b.toml: line "))
        );
    }

    #[test]
    fn the_shipped_mosquitto_baseline_loads_by_name() {
        let b = Baseline::load_file_or_shipped(Path::new("mosquitto-2.0"), &suite()).unwrap();
        assert!(b.deviations.contains_key("malformed.pingreq-flags"));
        let err = Baseline::load_file_or_shipped(Path::new("hivemq-9"), &suite()).unwrap_err();
        assert!(err.to_string().contains("shipped: mosquitto-2.0"), "{err}");
    }

    #[test]
    fn written_baselines_read_back_with_flaky_and_date() {
        let text = r#"
broker = "b"
[[deviation]]
scenario = "keepalive.timeout-closes"
statements = ["MQTT-3.1.2-24"]
reason = "late"
date = "2026-11-29"
flaky = true
"#;
        let b = Baseline::parse("b.toml", text, &suite()).unwrap();
        let again = Baseline::parse("again.toml", &b.to_toml(), &suite()).unwrap();
        let d = &again.deviations["keepalive.timeout-closes"];
        assert!(d.flaky);
        assert_eq!(d.date.as_deref(), Some("2026-11-29"));
        assert_eq!(again.broker.as_deref(), Some("b"));
    }
}
