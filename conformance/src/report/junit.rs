//! JUnit XML: one test suite per area, one test case per scenario. Known
//! deviations, SHOULD/MAY observations and scenarios not applicable to the
//! broker are reported as skipped with their reason, so CI dashboards show
//! them without failing.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::baseline::Baseline;
use crate::model::Level;
use crate::outcome::Verdict;
use crate::suite::RunReport;

/// The JUnit XML report.
pub fn junit(report: &RunReport, baseline: &Baseline) -> String {
    let mut out = Report::new("mqtt-conformance");
    let mut areas: Vec<&str> = report.results.iter().map(|r| r.area.as_str()).collect();
    areas.dedup();
    let mut seen = std::collections::BTreeSet::new();
    areas.retain(|a| seen.insert(*a));
    for area in areas {
        let mut suite = TestSuite::new(area);
        for r in report.results.iter().filter(|r| r.area == area) {
            let status = match (&r.verdict, baseline.deviations.get(&r.name)) {
                (Verdict::Pass, Some(_)) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message("stale baseline: listed as a known deviation but passes");
                    s
                }
                (Verdict::Pass, None) => TestCaseStatus::success(),
                (Verdict::Skipped { reason }, _) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(reason.as_str());
                    s
                }
                (Verdict::NotApplicable { reason }, _) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("not applicable: {reason}"));
                    s
                }
                (Verdict::Fail { .. } | Verdict::Error { .. }, Some(d)) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("known deviation: {}", d.reason));
                    s
                }
                (Verdict::Fail { .. } | Verdict::Error { .. }, None) if r.level != Level::Must => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("{} not met (observation, not a failure)", r.level));
                    s
                }
                (Verdict::Fail { failure }, None) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(format!(
                        "expected {}; observed {}",
                        failure.expected, failure.observed
                    ));
                    s.set_type(failure.step.as_str());
                    s.set_description(transcript(r));
                    s
                }
                (Verdict::Error { message }, None) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(message.as_str());
                    s.set_description(transcript(r));
                    s
                }
            };
            let mut case = TestCase::new(r.name.as_str(), status);
            case.set_classname(if r.statements.is_empty() {
                r.area.clone()
            } else {
                format!("{}.{}", r.area, r.statements.join(","))
            });
            case.set_time(r.duration);
            suite.add_test_case(case);
        }
        out.add_test_suite(suite);
    }
    out.to_string().unwrap_or_else(|e| format!("<!-- {e} -->"))
}

fn transcript(r: &crate::outcome::ScenarioResult) -> String {
    r.transcript
        .iter()
        .map(|l| {
            format!(
                "{:>6}ms {} {:?} {}",
                l.at.as_millis(),
                l.client,
                l.direction,
                l.text
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
