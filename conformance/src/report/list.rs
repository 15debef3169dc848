//! `--list`: the scenarios of a suite with their id, area, level,
//! statements and needs, as text or JSON. Needs no broker.

use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{Level, Requirement};
use crate::suite::Suite;

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    area: &'a str,
    level: Level,
    statements: &'a [String],
    needs: &'a [Requirement],
    tags: &'a [String],
    description: &'a str,
}

#[derive(Serialize)]
struct Listing<'a> {
    suite_version: String,
    scenarios: Vec<Entry<'a>>,
}

/// One line per scenario: id, area, level, statements, and what it needs
/// beyond a plain listener (`tls`, `auth`, `client-cert`); then the count.
pub fn list_text(suite: &Suite) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<10} {:<6} {:<16} statements",
        "id", "area", "level", "needs"
    );
    for s in &suite.scenarios {
        let needs: Vec<&str> = s.requires.iter().map(|r| r.name()).collect();
        let needs = if needs.is_empty() {
            "-".to_owned()
        } else {
            needs.join(",")
        };
        let _ = writeln!(
            out,
            "{:<40} {:<10} {:<6} {:<16} {}",
            s.name,
            s.area,
            s.level.to_string(),
            needs,
            s.statements.join(" ")
        );
    }
    let _ = writeln!(
        out,
        "\n{} scenarios (suite {})",
        suite.scenarios.len(),
        suite.version()
    );
    out
}

/// The listing as one JSON document: `suite_version` and `scenarios`, each
/// with `id`, `area`, `level` (`must`, `should`, `may`), `statements`,
/// `needs` (`tls`, `auth`, `client-cert`), `tags` and `description`.
pub fn list_json(suite: &Suite) -> String {
    let doc = Listing {
        suite_version: suite.version(),
        scenarios: suite
            .scenarios
            .iter()
            .map(|s| Entry {
                id: &s.name,
                area: &s.area,
                level: s.level,
                statements: &s.statements,
                needs: &s.requires,
                tags: &s.tags,
                description: &s.description,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
