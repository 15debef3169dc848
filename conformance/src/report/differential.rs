//! The differential run (issue 13, item 8): the same suite against several
//! brokers, one table of scenario x broker, each cell the scenario's own
//! outcome there, so a team sees where its broker differs from mosquitto
//! and the reference broker. Cells are verdicts weighed by level only (no
//! baseline: a baseline describes one broker), so the same behaviour reads
//! the same in every column.

use std::fmt::Write as _;

use serde::Serialize;

use crate::baseline::{Baseline, Evaluation};
use crate::model::Level;
use crate::outcome::{ScenarioResult, Verdict};
use crate::suite::RunReport;

/// One broker's run in a differential run.
#[derive(Debug, Clone)]
pub struct NamedRun {
    /// The name given with `--target NAME=HOST:PORT`.
    pub name: String,
    /// Its results.
    pub report: RunReport,
}

/// A table cell: what scenario `r` came to on one broker: `pass`, `FAIL`
/// (a MUST failed), `obs` (a SHOULD/MAY not met), `n/a`, `skip`, `error`
/// or `not run`.
pub fn cell(r: &ScenarioResult) -> &'static str {
    match &r.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail { .. } if r.level == Level::Must => "FAIL",
        Verdict::Fail { .. } => "obs",
        Verdict::NotApplicable { .. } => "n/a",
        Verdict::Skipped { .. } => "skip",
        Verdict::Error { .. } => "error",
        Verdict::NotRun { .. } => "not run",
    }
}

/// One row: a scenario and its cell per broker, in `--target` order.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The scenario.
    pub scenario: String,
    /// One cell per broker (see [`cell`]); "-" where a broker's run has no
    /// result for it.
    pub cells: Vec<&'static str>,
}

impl Row {
    /// Whether the brokers differ on this scenario.
    pub fn differs(&self) -> bool {
        self.cells.windows(2).any(|w| w[0] != w[1])
    }
}

/// Every scenario's row, in suite order (the first run's).
pub fn rows(runs: &[NamedRun]) -> Vec<Row> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .report
        .results
        .iter()
        .map(|r| Row {
            scenario: r.name.clone(),
            cells: runs
                .iter()
                .map(|run| {
                    run.report
                        .results
                        .iter()
                        .find(|x| x.name == r.name)
                        .map_or("-", cell)
                })
                .collect(),
        })
        .collect()
}

/// The table as text: the brokers, the rows where they differ (every row
/// with `all_rows`), a count line, and one summary line per broker.
pub fn text(runs: &[NamedRun], all_rows: bool) -> String {
    let mut out = String::new();
    let rows = rows(runs);
    let differing = rows.iter().filter(|r| r.differs()).count();
    let _ = writeln!(
        out,
        "MQTT 3.1.1 conformance, differential run over {} brokers",
        runs.len()
    );
    for run in runs {
        let _ = writeln!(out, "  {:<12} {}", run.name, run.report.target);
    }
    let _ = writeln!(out);
    let name_width = rows
        .iter()
        .map(|r| r.scenario.len())
        .chain(std::iter::once("scenario".len()))
        .max()
        .unwrap_or(8);
    let widths: Vec<usize> = runs.iter().map(|r| r.name.len().max(7)).collect();
    let mut header = format!("{:<name_width$}", "scenario");
    for (run, w) in runs.iter().zip(&widths) {
        let _ = write!(header, "  {:<w$}", run.name);
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for row in rows.iter().filter(|r| all_rows || r.differs()) {
        let mut line = format!("{:<name_width$}", row.scenario);
        for (c, w) in row.cells.iter().zip(&widths) {
            let _ = write!(line, "  {c:<w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "\n{differing} of {} scenarios differ between the brokers{}",
        rows.len(),
        if all_rows {
            ""
        } else {
            " (--verbose shows every scenario)"
        }
    );
    for run in runs {
        let eval = Evaluation::of(&run.report, &Baseline::default());
        let _ = writeln!(
            out,
            "  {}: {} passed, {} failed (MUST), {} observations, {} not applicable, {} skipped{} in {:.1}s",
            run.name,
            eval.passed.len() + eval.stale.len(),
            eval.failures.len(),
            eval.observations.len(),
            eval.not_applicable.len(),
            eval.skipped.len(),
            if eval.not_run.is_empty() {
                String::new()
            } else {
                format!(", {} not run (broker unavailable)", eval.not_run.len())
            },
            run.report.duration.as_secs_f64()
        );
        for o in &run.report.outages {
            let _ = writeln!(
                out,
                "    broker became unavailable ({}); likely cause: {}",
                o.probe,
                if o.suspects.is_empty() {
                    "before the first scenario".to_owned()
                } else {
                    o.suspects.join(", ")
                }
            );
        }
    }
    out
}

#[derive(Serialize)]
struct JsonTarget<'a> {
    name: &'a str,
    report: super::JsonReport<'a>,
}

#[derive(Serialize)]
struct JsonDifferential<'a> {
    /// The first broker's status, judged against the baseline.
    status: crate::baseline::Status,
    scenarios: usize,
    differing: usize,
    /// Target names, the order of every row's cells.
    brokers: Vec<&'a str>,
    rows: Vec<Row>,
    targets: Vec<JsonTarget<'a>>,
}

/// The differential run as one JSON document: the first broker's status
/// (judged against `baseline`, which describes it), every row with its
/// cells and whether they differ, and each broker's whole report as a
/// single run's JSON report gives it (the baseline applied to the first
/// only).
pub fn json(runs: &[NamedRun], first_eval: &Evaluation, baseline: &Baseline) -> String {
    let none = Baseline::default();
    let evals: Vec<Evaluation> = runs
        .iter()
        .skip(1)
        .map(|r| Evaluation::of(&r.report, &none))
        .collect();
    let rows = rows(runs);
    let doc = JsonDifferential {
        status: first_eval.status(),
        scenarios: rows.len(),
        differing: rows.iter().filter(|r| r.differs()).count(),
        brokers: runs.iter().map(|r| r.name.as_str()).collect(),
        rows,
        targets: runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                let (eval, b) = match i.checked_sub(1) {
                    None => (first_eval, baseline),
                    Some(j) => (&evals[j], &none),
                };
                JsonTarget {
                    name: &run.name,
                    report: super::json_doc(&run.report, eval, b),
                }
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::suite::Suite;

    fn result(s: &Scenario, verdict: Verdict) -> ScenarioResult {
        ScenarioResult::new(s, verdict, std::time::Duration::ZERO, Vec::new())
    }

    fn report(results: Vec<ScenarioResult>) -> RunReport {
        let target = crate::target::Target::plain("127.0.0.1", 1883);
        RunReport {
            tool_version: String::new(),
            suite_version: String::new(),
            target: "127.0.0.1:1883".into(),
            broker_target: crate::suite::TargetInfo::of(&target),
            started_at: String::new(),
            time_scale: 1.0,
            results,
            outages: Vec::new(),
            duration: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn cells_weigh_verdicts_by_level_and_rows_differ_only_on_different_cells() {
        let suite = Suite::builtin().unwrap();
        let must = suite
            .scenarios
            .iter()
            .find(|s| s.level == Level::Must)
            .unwrap();
        let may = suite
            .scenarios
            .iter()
            .find(|s| s.level != Level::Must)
            .unwrap();
        let failure = || crate::outcome::Failure {
            location: must.location.clone(),
            step: "expect".into(),
            statements: Vec::new(),
            client: None,
            expected: "x".into(),
            observed: "y".into(),
        };
        let fail = |s| result(s, Verdict::Fail { failure: failure() });
        assert_eq!(cell(&fail(must)), "FAIL");
        assert_eq!(cell(&fail(may)), "obs");
        let not_run = Verdict::NotRun {
            reason: "broker unavailable".into(),
        };
        assert_eq!(cell(&result(must, not_run.clone())), "not run");
        let runs = [
            NamedRun {
                name: "a".into(),
                report: report(vec![
                    result(must, Verdict::Pass),
                    result(may, Verdict::Pass),
                ]),
            },
            NamedRun {
                name: "b".into(),
                report: report(vec![fail(must), result(may, Verdict::Pass)]),
            },
        ];
        let rows = rows(&runs);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].cells, ["pass", "FAIL"]);
        assert!(rows[0].differs() && !rows[1].differs());
        let short = text(&runs, false);
        assert!(short.contains(&must.name) && !short.contains(&format!("\n{} ", may.name)));
        assert!(short.contains("1 of 2 scenarios differ"), "{short}");
        assert!(text(&runs, true).contains(&may.name));
    }
}
