//! The normative statements of MQTT 3.1.1 (`fixtures/spec/`), the list of
//! those a black-box server test cannot check, and the coverage table.
//!
//! Each statement carries its level (MUST / SHOULD / MAY), the strongest
//! keyword of its normative text: a scenario's own level must equal the
//! strongest level among the statements it cites ([`level_mismatches`]), so
//! a SHOULD is never reported as a failure and a MUST never as an
//! observation. The standard tags only sentences holding a MUST (some with a
//! MAY or SHOULD beside it, as MQTT-3.3.1-7); the untagged SHOULD and MAY
//! sentences that scenarios check are listed with ids of the form
//! `MQTT-<section>-should` / `MQTT-<section>-may`, naming the section they
//! stand in, so they cannot be mistaken for the standard's numbered ids.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::Level;
use crate::scenario::Scenario;

/// One normative statement.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Its id, e.g. `MQTT-3.1.2-4`.
    pub id: String,
    /// Section number.
    pub section: String,
    /// The strongest keyword of its normative text.
    pub level: Level,
    /// `yes`, `partly` or `no`: whether a server test can check it at all.
    pub server_testable: String,
    /// What it says, briefly.
    pub summary: String,
}

/// A problem with the spec files.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SpecError {
    /// File.
    pub file: String,
    /// Line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The header line the statements TSV starts with.
pub const STATEMENTS_HEADER: &str = "id\tsection\tlevel\tserver_testable\tsummary";

/// Parses the statements TSV (header [`STATEMENTS_HEADER`]; the level is
/// `MUST`, `SHOULD` or `MAY`).
pub fn parse_statements(file: &str, tsv: &str) -> Result<Vec<Statement>, SpecError> {
    let error = |line: usize, message: String| SpecError {
        file: file.into(),
        line,
        message,
    };
    let mut lines = tsv.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header == STATEMENTS_HEADER => {}
        _ => {
            return Err(error(
                1,
                format!("the first line must be the header {STATEMENTS_HEADER:?}"),
            ));
        }
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(5, '\t').collect();
        let [id, section, level, testable, summary] = cols[..] else {
            return Err(error(n + 1, "expected 5 tab-separated columns".into()));
        };
        let level = match level {
            "MUST" => Level::Must,
            "SHOULD" => Level::Should,
            "MAY" => Level::May,
            other => {
                return Err(error(
                    n + 1,
                    format!("level {other:?} of {id} is not MUST, SHOULD or MAY"),
                ));
            }
        };
        out.push(Statement {
            id: id.to_owned(),
            section: section.to_owned(),
            level,
            server_testable: testable.to_owned(),
            summary: summary.to_owned(),
        });
    }
    Ok(out)
}

/// The strongest level among `cited` (MUST over SHOULD over MAY: the order
/// [`Level`] is declared in), or `None`
/// when none of them is in `statements`.
pub fn strongest_level(statements: &[Statement], cited: &[String]) -> Option<Level> {
    statements
        .iter()
        .filter(|s| cited.contains(&s.id))
        .map(|s| s.level)
        .min()
}

/// The scenarios whose level is not the strongest level of the statements
/// they cite, each as a line naming both levels. A scenario citing nothing
/// checks a sentence the standard does not number and is left out (the
/// parser already refuses one at MUST level).
pub fn level_mismatches(statements: &[Statement], scenarios: &[Scenario]) -> Vec<String> {
    scenarios
        .iter()
        .filter_map(|s| {
            let strongest = strongest_level(statements, &s.statements)?;
            (strongest != s.level).then(|| {
                format!(
                    "{} is {} but the strongest statement it cites ({}) is {strongest}",
                    s.name,
                    s.level,
                    s.statements.join(", ")
                )
            })
        })
        .collect()
}

/// The built-in statement list.
pub fn statements() -> Vec<Statement> {
    parse_statements(
        "fixtures/spec/mqtt-3.1.1-statements.tsv",
        crate::builtin::STATEMENTS_TSV,
    )
    .unwrap_or_default()
}

/// The built-in statement ids.
pub fn statement_ids() -> HashSet<String> {
    statements().into_iter().map(|s| s.id).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UntestableFile {
    statement: Vec<UntestableDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UntestableDef {
    id: String,
    reason: String,
}

/// Parses `untestable.toml`: `[[statement]] id = "...", reason = "..."`,
/// checking every id exists.
pub fn parse_untestable(
    file: &str,
    source: &str,
    known: &HashSet<String>,
) -> Result<BTreeMap<String, String>, SpecError> {
    let parsed: UntestableFile = toml::from_str(source).map_err(|e| SpecError {
        file: file.into(),
        line: e
            .span()
            .map_or(1, |s| crate::script::line_of(source, s.start)),
        message: e.message().trim_end().into(),
    })?;
    let mut out = BTreeMap::new();
    for def in parsed.statement {
        if !known.contains(&def.id) {
            return Err(SpecError {
                file: file.into(),
                line: 1,
                message: format!("unknown statement id {:?}", def.id),
            });
        }
        if def.reason.trim().is_empty() {
            return Err(SpecError {
                file: file.into(),
                line: 1,
                message: format!("{} needs a reason", def.id),
            });
        }
        out.insert(def.id, def.reason.trim().to_owned());
    }
    Ok(out)
}

/// The built-in untestable list.
pub fn untestable() -> Result<BTreeMap<String, String>, SpecError> {
    parse_untestable(
        "fixtures/spec/untestable.toml",
        crate::builtin::UNTESTABLE_TOML,
        &statement_ids(),
    )
}

/// How one statement is covered.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Coverage {
    /// Checked by these scenarios.
    Covered {
        /// Scenario names.
        scenarios: Vec<String>,
    },
    /// Cannot be checked by a black-box server test.
    NotTestable {
        /// Why.
        reason: String,
    },
    /// Neither.
    Missing,
}

/// The coverage table: each statement with how it is covered.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageTable {
    /// Rows in statement order.
    pub rows: Vec<(Statement, Coverage)>,
}

impl CoverageTable {
    /// Computes coverage of `statements` by `scenarios`.
    pub fn compute(
        statements: &[Statement],
        untestable: &BTreeMap<String, String>,
        scenarios: &[Scenario],
    ) -> Self {
        let mut by_id: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in scenarios {
            for id in &s.statements {
                by_id.entry(id.as_str()).or_default().push(s.name.clone());
            }
        }
        let rows = statements
            .iter()
            .map(|st| {
                let cov = match (by_id.get(st.id.as_str()), untestable.get(&st.id)) {
                    (Some(names), _) => Coverage::Covered {
                        scenarios: names.clone(),
                    },
                    (None, Some(reason)) => Coverage::NotTestable {
                        reason: reason.clone(),
                    },
                    (None, None) => Coverage::Missing,
                };
                (st.clone(), cov)
            })
            .collect();
        Self { rows }
    }

    /// (covered, not testable, missing).
    pub fn totals(&self) -> (usize, usize, usize) {
        let mut t = (0, 0, 0);
        for (_, c) in &self.rows {
            match c {
                Coverage::Covered { .. } => t.0 += 1,
                Coverage::NotTestable { .. } => t.1 += 1,
                Coverage::Missing => t.2 += 1,
            }
        }
        t
    }

    /// The table as text: one line per statement, then totals.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (st, cov) in &self.rows {
            let (status, detail) = match cov {
                Coverage::Covered { scenarios } => ("covered", scenarios.join(", ")),
                Coverage::NotTestable { reason } => ("not testable", reason.clone()),
                Coverage::Missing => ("MISSING", st.summary.clone()),
            };
            let _ = writeln!(
                out,
                "{:<19} {:<6} {:<13} {}",
                st.id,
                st.level.to_string(),
                status,
                detail
            );
        }
        let (c, n, m) = self.totals();
        let _ = writeln!(
            out,
            "\n{} statements: {c} covered, {n} not testable, {m} missing",
            self.rows.len()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "id\tsection\tlevel\tserver_testable\tsummary\n";

    #[test]
    fn statement_rows_carry_their_level() {
        let tsv = format!(
            "{HEAD}MQTT-1-1\t1\tMUST\tyes\tone\nMQTT-1-should\t1\tSHOULD\tyes\ttwo\tstill the summary\n"
        );
        let parsed = parse_statements("s.tsv", &tsv).unwrap();
        assert_eq!(parsed[0].level, Level::Must);
        assert_eq!(parsed[1].level, Level::Should);
        assert_eq!(parsed[1].summary, "two\tstill the summary");
    }

    #[test]
    fn unknown_level_and_old_header_are_refused() {
        let bad = format!("{HEAD}MQTT-1-1\t1\tmust\tyes\tone\n");
        let e = parse_statements("s.tsv", &bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "s.tsv:2: level \"must\" of MQTT-1-1 is not MUST, SHOULD or MAY"
        );
        let old = "id\tsection\tserver_testable\tsummary\nMQTT-1-1\t1\tyes\tone\n";
        let e = parse_statements("s.tsv", old).unwrap_err().to_string();
        assert!(
            e.starts_with("s.tsv:1: the first line must be the header"),
            "{e}"
        );
        let short = format!("{HEAD}MQTT-1-1\t1\tMUST\tyes\n");
        let e = parse_statements("s.tsv", &short).unwrap_err().to_string();
        assert_eq!(e, "s.tsv:2: expected 5 tab-separated columns");
    }

    #[test]
    fn builtin_statements_parse_with_levels() {
        let all = parse_statements(
            "fixtures/spec/mqtt-3.1.1-statements.tsv",
            crate::builtin::STATEMENTS_TSV,
        )
        .unwrap();
        assert!(all.len() > 140);
        // Every numbered id of the standard tags a sentence with a MUST; the
        // SHOULD and MAY rows are the untagged sentences, named by section.
        for st in &all {
            let numbered = st
                .id
                .rsplit('-')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok());
            assert_eq!(numbered, st.level == Level::Must, "{}", st.id);
        }
    }

    #[test]
    fn strongest_level_is_the_lowest_in_declaration_order() {
        let all = statements();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            strongest_level(&all, &ids(&["MQTT-3.3.1.3-should", "MQTT-3.3.1-7"])),
            Some(Level::Must)
        );
        assert_eq!(
            strongest_level(&all, &ids(&["MQTT-3.3.1.3-should", "MQTT-3.1.2.4-may"])),
            Some(Level::Should)
        );
        assert_eq!(strongest_level(&all, &[]), None);
    }

    /// Issue 13, item 4: a scenario asks what its statements ask, at their
    /// level: every built-in scenario's level equals the strongest level
    /// among the statements it cites.
    #[test]
    fn every_builtin_scenario_is_at_the_level_of_its_statements() {
        let suite = crate::suite::Suite::builtin().unwrap();
        let mismatches = level_mismatches(&statements(), &suite.scenarios);
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn a_should_scenario_citing_a_must_statement_is_named() {
        let src = "[[scenario]]\nname = \"x.y\"\ndescription = \"d\"\nstatements = [\"MQTT-3.3.1-7\"]\ntags = [\"retained\"]\nlevel = \"should\"\nsteps = [ { connect = \"a\", connack = 0 } ]\n";
        let scenarios = crate::script::parse_file("t.toml", src, &statement_ids()).unwrap();
        assert_eq!(
            level_mismatches(&statements(), &scenarios),
            ["x.y is SHOULD but the strongest statement it cites (MQTT-3.3.1-7) is MUST"]
        );
        let must = src.replace("level = \"should\"\n", "");
        let scenarios = crate::script::parse_file("t.toml", &must, &statement_ids()).unwrap();
        assert!(level_mismatches(&statements(), &scenarios).is_empty());
    }
}
