//! Reports of a run: text for people, JSON and JUnit XML for CI systems.
//! All three are built from the same [`RunReport`] and [`Evaluation`].

mod junit;
mod text;

pub use junit::junit;
pub use text::text;

use serde::Serialize;

use crate::baseline::{Baseline, Evaluation, Status};
use crate::suite::RunReport;

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
    #[serde(flatten)]
    report: &'a RunReport,
}

/// The run as one JSON document: status, the evaluation lists, and every
/// result with its transcript.
pub fn json(report: &RunReport, eval: &Evaluation, baseline: &Baseline) -> String {
    let doc = JsonReport {
        status: eval.status(),
        summary: eval,
        baseline: (!baseline.deviations.is_empty()).then_some(&baseline.broker),
        report,
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
