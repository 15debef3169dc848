//! JUnit XML: one test suite per area, one test case per scenario. Known
//! deviations, SHOULD/MAY observations and scenarios not applicable to the
//! broker are reported as skipped with their reason, so CI dashboards show
//! them without failing.
//!
//! The file follows the Jenkins/Surefire schema (`junit-10.xsd` of the
//! Jenkins xUnit plugin), which CI systems read: each `testsuite` carries
//! `name`, `tests`, `failures` and `errors`, and the run's tool and suite
//! versions, target, start time and time scale as `properties`; each
//! `testcase` its `name`, `classname` and `time`.

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
        suite.add_properties([
            ("tool_version", report.tool_version.as_str()),
            ("suite_version", report.suite_version.as_str()),
            ("target", report.target.as_str()),
            ("started_at", report.started_at.as_str()),
            ("time_scale", report.time_scale.to_string().as_str()),
        ]);
        for o in &report.outages {
            suite.add_property((
                "broker_unavailable",
                format!(
                    "liveness probe failed ({}); likely cause: {}",
                    o.probe,
                    if o.suspects.is_empty() {
                        "before the first scenario".to_owned()
                    } else {
                        o.suspects.join(", ")
                    }
                )
                .as_str(),
            ));
        }
        for r in report.results.iter().filter(|r| r.area == area) {
            let status = match (&r.verdict, baseline.deviations.get(&r.name)) {
                (Verdict::Pass, Some(d)) if d.flaky => TestCaseStatus::success(),
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
                (Verdict::NotRun { reason }, _) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("not run: {reason}"));
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
                        "[{}] expected {}; observed {}",
                        failure.statements.join(" "),
                        failure.expected,
                        failure.observed
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
            // A failure is filed under the statements of the check that
            // failed.
            let statements = match &r.verdict {
                Verdict::Fail { failure } if !failure.statements.is_empty() => &failure.statements,
                _ => &r.statements,
            };
            case.set_classname(if statements.is_empty() {
                r.area.clone()
            } else {
                format!("{}.{}", r.area, statements.join(","))
            });
            case.set_time(r.duration);
            suite.add_test_case(case);
        }
        out.add_test_suite(suite);
    }
    let xml = out.to_string().unwrap_or_else(|e| format!("<!-- {e} -->"));
    without_root_skipped(xml)
}

/// quick-junit writes a `skipped` count on the root `testsuites` element,
/// which the Jenkins schema does not allow there (only on `testsuite`):
/// drop it from the root element only.
fn without_root_skipped(xml: String) -> String {
    let Some(start) = xml.find("<testsuites ") else {
        return xml;
    };
    let Some(len) = xml[start..].find('>') else {
        return xml;
    };
    let root = &xml[start..start + len];
    let Some(at) = root.find(" skipped=\"") else {
        return xml;
    };
    let value_start = start + at + " skipped=\"".len();
    let Some(value_len) = xml[value_start..].find('"') else {
        return xml;
    };
    let mut out = xml.clone();
    out.replace_range(start + at..value_start + value_len + 1, "");
    out
}

fn transcript(r: &crate::outcome::ScenarioResult) -> String {
    r.transcript
        .iter()
        .map(|l| {
            format!(
                "{:>6}ms {} {} {}",
                l.at.as_millis(),
                l.client,
                l.direction.word(),
                l.text
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
