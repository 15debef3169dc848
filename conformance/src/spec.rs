//! The normative statements of MQTT 3.1.1 (`fixtures/spec/`), the list of
//! those a black-box server test cannot check, and the coverage table.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// One normative statement.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// Its id, e.g. `MQTT-3.1.2-4`.
    pub id: String,
    /// Section number.
    pub section: String,
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

/// Parses the statements TSV (header `id section server_testable summary`).
pub fn parse_statements(file: &str, tsv: &str) -> Result<Vec<Statement>, SpecError> {
    let mut out = Vec::new();
    for (n, line) in tsv.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(4, '\t').collect();
        let [id, section, testable, summary] = cols[..] else {
            return Err(SpecError {
                file: file.into(),
                line: n + 1,
                message: "expected 4 tab-separated columns".into(),
            });
        };
        out.push(Statement {
            id: id.to_owned(),
            section: section.to_owned(),
            server_testable: testable.to_owned(),
            summary: summary.to_owned(),
        });
    }
    Ok(out)
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
            let _ = writeln!(out, "{:<15} {:<13} {}", st.id, status, detail);
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
