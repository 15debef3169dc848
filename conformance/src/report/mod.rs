//! Reports of a run: text for people, JSON and JUnit XML for CI systems.
//! All three are built from the same [`RunReport`] and [`Evaluation`]. And
//! the `--list` of a suite's scenarios.

mod junit;
mod list;
mod text;

pub use junit::junit;
pub use list::{list_json, list_text};
pub use text::text;

use serde::Serialize;

use crate::baseline::{Baseline, Evaluation, Outcome, Status};
use crate::outcome::ScenarioResult;
use crate::suite::{RunReport, TargetInfo};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    status: Status,
    summary: &'a Evaluation,
    baseline: Option<&'a Option<String>>,
    tool_version: &'a str,
    suite_version: &'a str,
    target: &'a str,
    broker_target: &'a TargetInfo,
    started_at: &'a str,
    #[serde(rename = "duration_ms")]
    duration_ms: u64,
    time_scale: f64,
    /// Scenarios that saw stray deliveries (see each result's `strays`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stray_scenarios: Vec<&'a str>,
    results: Vec<JsonResult<'a>>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    outcome: Outcome,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale_baseline: bool,
    #[serde(flatten)]
    result: &'a ScenarioResult,
}

/// The run as one JSON document: status, the evaluation lists, the tool
/// and suite versions, the target, start time and duration, and every
/// result with its `outcome` (see [`Outcome`]) and transcript. (`verdict`
/// is what the scenario itself saw, before the baseline: read `outcome`.)
pub fn json(report: &RunReport, eval: &Evaluation, baseline: &Baseline) -> String {
    let doc = JsonReport {
        status: eval.status(),
        summary: eval,
        baseline: (!baseline.deviations.is_empty()).then_some(&baseline.broker),
        tool_version: &report.tool_version,
        suite_version: &report.suite_version,
        target: &report.target,
        broker_target: &report.broker_target,
        started_at: &report.started_at,
        duration_ms: report.duration.as_millis().try_into().unwrap_or(u64::MAX),
        time_scale: report.time_scale,
        stray_scenarios: report
            .results
            .iter()
            .filter(|r| !r.strays.is_empty())
            .map(|r| r.name.as_str())
            .collect(),
        results: report
            .results
            .iter()
            .map(|r| JsonResult {
                outcome: eval.outcome(&r.name),
                stale_baseline: eval.stale.contains(&r.name),
                result: r,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Renders in `format`.
pub fn render(
    format: Format,
    report: &RunReport,
    eval: &Evaluation,
    baseline: &Baseline,
) -> String {
    match format {
        Format::Text => text(report, eval, baseline),
        Format::Json => json(report, eval, baseline),
        Format::Junit => junit(report, baseline),
    }
}
