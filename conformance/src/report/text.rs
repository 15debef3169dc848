//! The text report: a summary table by area, then each failure with its
//! statements, expected vs observed and the step transcript, then known
//! deviations, observations, stale baseline entries, scenarios not
//! applicable to the broker, and skips.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::baseline::{Baseline, Evaluation, Status};
use crate::outcome::{ScenarioResult, Verdict};
use crate::suite::RunReport;

#[derive(Default)]
struct Row {
    pass: usize,
    fail: usize,
    known: usize,
    observed: usize,
    not_applicable: usize,
    skipped: usize,
    not_run: usize,
}

/// The text report.
pub fn text(report: &RunReport, eval: &Evaluation, baseline: &Baseline) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "MQTT 3.1.1 conformance against {}", report.target);
    let _ = writeln!(
        out,
        "suite {}, harness {}, started {}",
        report.suite_version, report.tool_version, report.started_at
    );
    if report.time_scale != 1.0 {
        let _ = writeln!(
            out,
            "time scale: every wait for the broker stretched x{} (--time-scale)",
            report.time_scale
        );
    }
    if let Some(b) = &baseline.broker {
        let _ = writeln!(
            out,
            "baseline: {b} ({} known deviations)",
            baseline.deviations.len()
        );
    }
    let _ = writeln!(out);

    let mut areas: BTreeMap<&str, Row> = BTreeMap::new();
    for r in &report.results {
        let row = areas.entry(r.area.as_str()).or_default();
        match bucket(r, eval) {
            Bucket::Pass | Bucket::Stale => row.pass += 1,
            Bucket::Fail => row.fail += 1,
            Bucket::Known => row.known += 1,
            Bucket::Observation => row.observed += 1,
            Bucket::NotApplicable => row.not_applicable += 1,
            Bucket::Skipped => row.skipped += 1,
            Bucket::NotRun => row.not_run += 1,
        }
    }
    // The "not run" column only appears in a run the broker cut short.
    let not_run_col = |n: usize| {
        if eval.not_run.is_empty() {
            String::new()
        } else {
            format!(" {n:>7}")
        }
    };
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>5} {:>6} {:>9} {:>5} {:>5}{}",
        "area",
        "pass",
        "FAIL",
        "known",
        "observed",
        "n/a",
        "skip",
        if eval.not_run.is_empty() {
            ""
        } else {
            " not run"
        }
    );
    let mut total = Row::default();
    for (area, row) in &areas {
        let _ = writeln!(
            out,
            "{:<14} {:>5} {:>5} {:>6} {:>9} {:>5} {:>5}{}",
            area,
            row.pass,
            row.fail,
            row.known,
            row.observed,
            row.not_applicable,
            row.skipped,
            not_run_col(row.not_run)
        );
        total.pass += row.pass;
        total.fail += row.fail;
        total.known += row.known;
        total.observed += row.observed;
        total.not_applicable += row.not_applicable;
        total.skipped += row.skipped;
        total.not_run += row.not_run;
    }
    let _ = writeln!(
        out,
        "{:<14} {:>5} {:>5} {:>6} {:>9} {:>5} {:>5}{}",
        "total",
        total.pass,
        total.fail,
        total.known,
        total.observed,
        total.not_applicable,
        total.skipped,
        not_run_col(total.not_run)
    );
    write_outages(&mut out, eval);

    let section = |out: &mut String, title: &str, bucket_of: Bucket, detail: bool| {
        let items: Vec<&ScenarioResult> = report
            .results
            .iter()
            .filter(|r| bucket(r, eval) == bucket_of)
            .collect();
        if items.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title} ({})", items.len());
        for r in items {
            write_result(out, r, baseline, detail);
        }
    };
    section(&mut out, "FAILURES", Bucket::Fail, true);
    section(
        &mut out,
        "Observations (SHOULD/MAY not met)",
        Bucket::Observation,
        true,
    );
    section(
        &mut out,
        "Known deviations (baseline)",
        Bucket::Known,
        false,
    );
    if !eval.stale.is_empty() {
        let _ = writeln!(
            out,
            "\nSTALE BASELINE: these listed deviations now pass; remove them from the baseline"
        );
        for name in &eval.stale {
            let _ = writeln!(out, "  {name}");
        }
    }
    strays(&mut out, report);
    section(
        &mut out,
        "Not applicable to this broker",
        Bucket::NotApplicable,
        false,
    );
    section(&mut out, "Skipped", Bucket::Skipped, false);
    if !eval.not_run.is_empty() {
        let _ = writeln!(
            out,
            "\nNot run: broker unavailable ({})",
            eval.not_run.len()
        );
        for name in &eval.not_run {
            let _ = writeln!(out, "  {name}");
        }
    }

    let verdict = match eval.status() {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::StaleBaseline => "FAIL (stale baseline)",
        Status::BrokerUnavailable => "BROKER UNAVAILABLE",
    };
    let _ = writeln!(
        out,
        "\n{verdict}: {} scenarios, {} passed, {} failed, {} known deviations, {} observations, {} stale, {} not applicable, {} skipped{} in {:.1}s",
        report.results.len(),
        eval.passed.len(),
        eval.failures.len(),
        eval.known.len(),
        eval.observations.len(),
        eval.stale.len(),
        eval.not_applicable.len(),
        eval.skipped.len(),
        if eval.not_run.is_empty() {
            String::new()
        } else {
            format!(", {} not run", eval.not_run.len())
        },
        report.duration.as_secs_f64()
    );
    out
}

/// The strays of the whole run, once: which scenarios saw them and under
/// which statements. Each stray was set aside where it arrived; one on a
/// scenario's own topics failed that scenario and is listed there too.
fn strays(out: &mut String, report: &RunReport) {
    let seen: Vec<&ScenarioResult> = report
        .results
        .iter()
        .filter(|r| !r.strays.is_empty())
        .collect();
    if seen.is_empty() {
        return;
    }
    let ids: std::collections::BTreeSet<&str> = seen
        .iter()
        .flat_map(|r| r.strays.iter().map(|s| s.statement.as_str()))
        .collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    let _ = writeln!(
        out,
        "\nStray deliveries seen in {} scenario{} [{}] (set aside, so they failed no other check; one on a scenario's own topics fails that scenario)",
        seen.len(),
        if seen.len() == 1 { "" } else { "s" },
        ids.join(" ")
    );
    for r in seen {
        let own = r.strays.iter().filter(|s| s.own).count();
        let _ = writeln!(
            out,
            "  {}: {} stray, {own} on its own topics; first: {}",
            r.name,
            r.strays.len(),
            r.strays.first().map_or("", |s| s.text.as_str())
        );
    }
}

/// The outages of the run, each with its suspects, first thing after the
/// table: they explain everything below.
fn write_outages(out: &mut String, eval: &Evaluation) {
    for o in &eval.outages {
        let _ = writeln!(
            out,
            "\nBROKER BECAME UNAVAILABLE: the liveness probe failed: {}",
            o.probe
        );
        if o.suspects.is_empty() {
            let _ = writeln!(out, "  before the first scenario");
        } else {
            let _ = writeln!(
                out,
                "  likely cause (running, or finished since the last good probe): {}",
                o.suspects.join(", ")
            );
        }
        match o.came_back_after {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  it answered again after {:.1}s (--continue-after-crash); the run went on",
                    d.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  the run stopped there; the scenarios after it were not run"
                );
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Pass,
    Fail,
    Known,
    Observation,
    Stale,
    NotApplicable,
    Skipped,
    NotRun,
}

fn bucket(r: &ScenarioResult, eval: &Evaluation) -> Bucket {
    if eval.failures.contains(&r.name) {
        Bucket::Fail
    } else if eval.known.contains(&r.name) {
        Bucket::Known
    } else if eval.observations.contains(&r.name) {
        Bucket::Observation
    } else if eval.stale.contains(&r.name) {
        Bucket::Stale
    } else if eval.not_applicable.contains(&r.name) {
        Bucket::NotApplicable
    } else if eval.skipped.contains(&r.name) {
        Bucket::Skipped
    } else if eval.not_run.contains(&r.name) {
        Bucket::NotRun
    } else {
        Bucket::Pass
    }
}

fn write_result(out: &mut String, r: &ScenarioResult, baseline: &Baseline, detail: bool) {
    // A failure is filed under the statements of the check that failed, not
    // the scenario's whole list.
    let cited = match &r.verdict {
        Verdict::Fail { failure } if !failure.statements.is_empty() => &failure.statements,
        _ => &r.statements,
    };
    let statements = if cited.is_empty() {
        "(no statement id)".to_owned()
    } else {
        cited.join(" ")
    };
    let _ = writeln!(
        out,
        "\n  {} [{}] {statements} ({})",
        r.name, r.level, r.location
    );
    match &r.verdict {
        Verdict::Skipped { reason } => {
            let _ = writeln!(out, "    skipped: {reason}");
            return;
        }
        Verdict::NotApplicable { reason } => {
            let _ = writeln!(out, "    not applicable: {reason}");
            return;
        }
        _ if !detail => {
            if let Some(d) = baseline.deviations.get(&r.name) {
                let _ = writeln!(out, "    reason: {}", d.reason);
                if d.flaky {
                    let _ = writeln!(out, "    flaky: may pass without making the run stale");
                }
            }
            return;
        }
        _ => {}
    }
    let _ = writeln!(out, "    {}", r.description);
    match &r.verdict {
        Verdict::Fail { failure } => {
            let client = failure
                .client
                .as_deref()
                .map(|c| format!(", client {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    step:     {} at {}{client}",
                failure.step, failure.location
            );
            if failure.statements != r.statements {
                let _ = writeln!(
                    out,
                    "    checks:   {} (the scenario cites {})",
                    failure.statements.join(" "),
                    r.statements.join(" ")
                );
            }
            let _ = writeln!(out, "    expected: {}", failure.expected);
            let _ = writeln!(out, "    observed: {}", failure.observed);
        }
        Verdict::Error { message } => {
            let _ = writeln!(out, "    error:    {message}");
        }
        _ => {}
    }
    if !r.transcript.is_empty() {
        let _ = writeln!(out, "    transcript:");
        for l in &r.transcript {
            let arrow = l.direction.arrow();
            let _ = writeln!(
                out,
                "      {:>6}ms {:<8} {arrow} {}",
                l.at.as_millis(),
                l.client,
                l.text
            );
        }
    }
}
