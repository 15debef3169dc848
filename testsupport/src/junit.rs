//! A structure check of JUnit XML against the Jenkins/Surefire schema
//! (`junit-10.xsd` of the Jenkins xUnit plugin, which Jenkins, GitLab and
//! the GitHub test-report actions accept): which elements may hold which,
//! which attributes each may carry and which it must, and the form of
//! `time`. No XSD validator is needed to run it.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One `testcase` of a checked report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitCase {
    /// Its `name`.
    pub name: String,
    /// Its `classname`, if given.
    pub classname: Option<String>,
    /// Its `time`, if given.
    pub time: Option<String>,
    /// `failure`, `error` or `skipped` when it has such a child.
    pub status: Option<String>,
}

/// (element, allowed attributes, required attributes, allowed children).
type Rule = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const RULES: &[Rule] = &[
    (
        "testsuites",
        &["name", "time", "tests", "failures", "errors"],
        &[],
        &["testsuite"],
    ),
    (
        "testsuite",
        &[
            "name",
            "tests",
            "failures",
            "errors",
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
        ],
        &["name", "tests", "failures", "errors"],
        &[
            "testsuite",
            "properties",
            "testcase",
            "system-out",
            "system-err",
        ],
    ),
    ("properties", &[], &[], &["property"]),
    ("property", &["name", "value"], &["name", "value"], &[]),
    (
        "testcase",
        &["name", "time", "classname", "group"],
        &["name"],
        &[
            "skipped",
            "error",
            "failure",
            "rerunFailure",
            "rerunError",
            "flakyFailure",
            "flakyError",
            "system-out",
            "system-err",
        ],
    ),
    ("failure", &["type", "message"], &[], &[]),
    ("error", &["type", "message"], &[], &[]),
    ("skipped", &["type", "message"], &[], &[]),
    ("system-out", &[], &[], &[]),
    ("system-err", &[], &[], &[]),
];

/// The schema's `SUREFIRE_TIME`: digits (with optional thousands commas),
/// then optionally a point and more digits.
fn surefire_time(t: &str) -> bool {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    whole.chars().all(|c| c.is_ascii_digit() || c == ',')
        && frac.chars().all(|c| c.is_ascii_digit())
}

/// Checks `xml` against the schema's structure and returns its test cases,
/// or every problem found.
pub fn check_junit(xml: &str) -> Result<Vec<JunitCase>, Vec<String>> {
    let mut problems = Vec::new();
    let mut cases = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut reader = Reader::from_str(xml);
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("not well-formed XML: {e}"));
                break;
            }
        };
        let (start, empty) = match &event {
            Event::Start(s) => (Some(s.clone()), false),
            Event::Empty(s) => (Some(s.clone()), true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::Eof => break,
            _ => (None, false),
        };
        let Some(start) = start else { continue };
        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        check_element(&start, &name, stack.last(), &mut problems);
        match name.as_str() {
            "testcase" => cases.push(JunitCase {
                name: attr(&start, "name").unwrap_or_default(),
                classname: attr(&start, "classname"),
                time: attr(&start, "time"),
                status: None,
            }),
            "failure" | "error" | "skipped" if stack.last().is_some_and(|p| p == "testcase") => {
                if let Some(c) = cases.last_mut() {
                    c.status = Some(name.clone());
                }
            }
            _ => {}
        }
        if !empty {
            stack.push(name);
        }
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

fn attr(e: &BytesStart<'_>, key: &str) -> Option<String> {
    e.attributes()
        .filter_map(Result::ok)
        .find(|a| a.key.as_ref() == key.as_bytes())
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

fn check_element(
    e: &BytesStart<'_>,
    name: &str,
    parent: Option<&String>,
    problems: &mut Vec<String>,
) {
    let Some((_, allowed, required, _)) = RULES.iter().find(|r| r.0 == name) else {
        problems.push(format!("element <{name}> is not in the schema"));
        return;
    };
    match parent {
        None if name != "testsuites" => {
            problems.push(format!("the root is <{name}>, not <testsuites>"));
        }
        Some(p) => {
            let children = RULES.iter().find(|r| r.0 == p).map_or(&[][..], |r| r.3);
            if !children.contains(&name) {
                problems.push(format!("<{p}> may not hold <{name}>"));
            }
        }
        None => {}
    }
    let keys: Vec<String> = e
        .attributes()
        .filter_map(Result::ok)
        .map(|a| String::from_utf8_lossy(a.key.as_ref()).into_owned())
        .collect();
    for k in &keys {
        if !allowed.contains(&k.as_str()) {
            problems.push(format!("<{name}> may not carry attribute {k}"));
        }
    }
    for r in *required {
        if !keys.iter().any(|k| k == r) {
            problems.push(format!("<{name}> lacks required attribute {r}"));
        }
    }
    if let Some(t) = attr(e, "time")
        && matches!(name, "testsuite" | "testsuites")
        && !surefire_time(&t)
    {
        problems.push(format!("<{name}> time {t:?} is not a SUREFIRE_TIME"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_report_and_returns_its_cases() {
        let xml = r#"<?xml version="1.0"?>
<testsuites name="x" tests="2" failures="1" errors="0">
  <testsuite name="a" tests="2" failures="1" errors="0" skipped="0" time="1.5">
    <properties><property name="k" value="v"/></properties>
    <testcase name="a.one" classname="a" time="0.1"/>
    <testcase name="a.two" classname="a" time="0.2"><failure message="m" type="t">text</failure></testcase>
  </testsuite>
</testsuites>"#;
        let cases = check_junit(xml).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].status.as_deref(), Some("failure"));
        assert_eq!(cases[0].classname.as_deref(), Some("a"));
    }

    #[test]
    fn refuses_what_the_schema_does_not_allow() {
        let xml = r#"<testsuites skipped="1"><testsuite name="a" tests="1"><testcase classname="a"><weird/></testcase></testsuite></testsuites>"#;
        let problems = check_junit(xml).unwrap_err();
        for p in [
            "<testsuites> may not carry attribute skipped",
            "<testsuite> lacks required attribute failures",
            "<testcase> lacks required attribute name",
            "element <weird> is not in the schema",
        ] {
            assert!(problems.iter().any(|x| x == p), "{p} not in {problems:?}");
        }
        assert!(
            check_junit("<testsuite name=\"a\" tests=\"0\" failures=\"0\" errors=\"0\"/>").is_err()
        );
    }
}
