//! Reports of a run: text for people, JSON and JUnit XML for CI systems.
//! All three are built from the same [`RunReport`] and [`Evaluation`]. And
//! the `--list` of a suite's scenarios, and the table of a differential run
//! ([`differential`]).

pub mod differential;
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
pub(crate) struct JsonReport<'a> {
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
    let doc = json_doc(report, eval, baseline);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The document [`json`] writes, for embedding in a bigger one.
pub(crate) fn json_doc<'a>(
    report: &'a RunReport,
    eval: &'a Evaluation,
    baseline: &'a Baseline,
) -> JsonReport<'a> {
    JsonReport {
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
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{Level, Location};
    use crate::outcome::{Failure, StrayDelivery, Verdict};
    use crate::suite::RunReport;

    fn at(line: usize) -> Location {
        Location {
            file: "t.toml".into(),
            line,
        }
    }

    fn result(name: &str, verdict: Verdict, strays: Vec<StrayDelivery>) -> ScenarioResult {
        ScenarioResult {
            name: name.into(),
            area: "t".into(),
            description: "d".into(),
            level: Level::Must,
            statements: vec!["MQTT-3.3.1-6".into(), "MQTT-3.3.1-8".into()],
            tags: vec!["retained".into()],
            location: at(1),
            verdict,
            duration: Duration::ZERO,
            transcript: Vec::new(),
            strays,
            repeats: 1,
            close_timings: Vec::new(),
        }
    }

    fn stray(own: bool) -> StrayDelivery {
        StrayDelivery {
            statement: "MQTT-3.3.2-3".into(),
            client: "sub".into(),
            text: "stray delivery [MQTT-3.3.2-3]: PUBLISH(...)".into(),
            own,
        }
    }

    /// One scenario failing on its step that checks MQTT-3.3.1-8 only, one
    /// passing that saw another scenario's stray.
    fn report() -> RunReport {
        let failed = Verdict::Fail {
            failure: Failure {
                location: at(7),
                step: "expect".into(),
                statements: vec!["MQTT-3.3.1-8".into()],
                client: Some("sub".into()),
                expected: "PUBLISH with retain=1".into(),
                observed: "PUBLISH with retain=0".into(),
            },
        };
        RunReport {
            tool_version: "v".into(),
            suite_version: "s".into(),
            target: "127.0.0.1:1".into(),
            broker_target: TargetInfo::of(&crate::target::Target::plain("127.0.0.1", 1)),
            started_at: "START".into(),
            time_scale: 1.0,
            results: vec![
                result("t.flag", failed, Vec::new()),
                result("t.other", Verdict::Pass, vec![stray(false)]),
            ],
            outages: Vec::new(),
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn a_failure_is_reported_under_the_statements_of_its_check() {
        let (report, baseline) = (report(), Baseline::default());
        let eval = Evaluation::of(&report, &baseline);
        let text = text(&report, &eval, &baseline);
        assert!(
            text.contains("\n  t.flag [MUST] MQTT-3.3.1-8 (t.toml:1)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    checks:   MQTT-3.3.1-8 (the scenario cites MQTT-3.3.1-6 MQTT-3.3.1-8)\n"
            ),
            "{text}"
        );
        let junit = junit(&report, &baseline);
        assert!(junit.contains("classname=\"t.MQTT-3.3.1-8\""), "{junit}");
        assert!(
            junit.contains("message=\"[MQTT-3.3.1-8] expected"),
            "{junit}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&json(&report, &eval, &baseline)).unwrap_or_default();
        assert_eq!(
            json["results"][0]["failure"]["statements"],
            serde_json::json!(["MQTT-3.3.1-8"])
        );
        let recorded = Baseline::record(&report, &baseline, "b", "2026-11-29");
        assert_eq!(recorded.deviations["t.flag"].statements, ["MQTT-3.3.1-8"]);
    }

    #[test]
    fn strays_are_listed_once_for_the_run() {
        let (report, baseline) = (report(), Baseline::default());
        let eval = Evaluation::of(&report, &baseline);
        let text = text(&report, &eval, &baseline);
        assert_eq!(
            text.matches("Stray deliveries seen in 1 scenario [MQTT-3.3.2-3]")
                .count(),
            1,
            "{text}"
        );
        assert!(
            text.contains(
                "  t.other: 1 stray, 0 on its own topics; first: stray delivery [MQTT-3.3.2-3]"
            ),
            "{text}"
        );
        assert_eq!(eval.passed, ["t.other"], "a foreign stray fails nothing");
        let json: serde_json::Value =
            serde_json::from_str(&json(&report, &eval, &baseline)).unwrap_or_default();
        assert_eq!(json["stray_scenarios"], serde_json::json!(["t.other"]));
        assert_eq!(json["results"][1]["strays"][0]["own"], false);
        assert!(json["results"][0].get("strays").is_none(), "none: left out");
    }
}
