//! Scenario scripts: TOML files parsed with serde into [`Scenario`]s.
//!
//! A file holds `[[scenario]]` tables; each scenario's `steps` is an array of
//! inline tables whose one action key (`connect = "a"`, `expect = "a"`, ...)
//! names the step and the client it acts for. The format is documented in
//! `fixtures/scenarios/README.md`. This module reads the scenario tables;
//! each step is parsed by its action (see [`crate::actions`]). Every error
//! names the file, the line and what is wrong; unknown keys are errors, so
//! typos cannot silently turn a check off.

pub(crate) mod args;
pub(crate) mod error;
pub(crate) mod qos;
pub(crate) mod template;
pub(crate) mod values;

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;

use crate::actions::{ParseCx, parse_steps};
use crate::model::{Level, Location, Requirement};
use crate::scenario::Scenario;

pub use error::ScriptError;
pub(crate) use error::line_of;
pub use template::{Placeholders, check_template};

/// Tags a scenario may carry; a fixed list so a misspelt tag is caught.
pub const TAGS: &[&str] = &[
    "connect",
    "session",
    "qos0",
    "qos1",
    "qos2",
    "retained",
    "lwt",
    "wildcard",
    "keepalive",
    "malformed",
    "auth",
    "tls",
    "cross",
    "subscribe",
    "unsubscribe",
    "ordering",
    "ping",
    "topic",
    "mqtt31",
    "framing",
    "restart",
    "cross-node",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    scenario: Vec<Spanned<ScenarioDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioDef {
    name: Spanned<String>,
    description: String,
    statements: Spanned<Vec<String>>,
    tags: Spanned<Vec<String>>,
    #[serde(default)]
    level: Option<LevelDef>,
    #[serde(default)]
    requires: Vec<RequirementDef>,
    #[serde(default)]
    exclusive: bool,
    #[serde(default)]
    timing: bool,
    bridge_limit: Option<String>,
    steps: Vec<Spanned<toml::Table>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LevelDef {
    Must,
    Should,
    May,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RequirementDef {
    Tls,
    Auth,
    ClientCert,
    Restart,
    Kill,
    SecondNode,
}

/// Parses one script file. `file` is the name used in messages; `known` is
/// the set of statement ids scenarios may cite.
pub fn parse_file(
    file: &str,
    source: &str,
    known: &HashSet<String>,
) -> Result<Vec<Scenario>, ScriptError> {
    let area = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let def: FileDef = toml::from_str(source).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(source, s.start));
        ScriptError::new(
            Location {
                file: file.to_owned(),
                line,
            },
            e.message().trim_end().to_owned(),
        )
    })?;
    let at = |offset: usize| Location {
        file: file.to_owned(),
        line: line_of(source, offset),
    };
    let mut out = Vec::with_capacity(def.scenario.len());
    for spanned in def.scenario {
        let location = at(spanned.span().start);
        let def = spanned.into_inner();
        let name_loc = at(def.name.span().start);
        let name = def.name.into_inner();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(ScriptError::new(
                name_loc,
                format!("scenario name {name:?} must be lowercase letters, digits, '-' and '.'"),
            ));
        }
        let stmt_loc = at(def.statements.span().start);
        let statements = def.statements.into_inner();
        for id in &statements {
            if !known.contains(id) {
                return Err(ScriptError::new(
                    stmt_loc,
                    format!(
                        "unknown statement id {id:?} (ids are listed in fixtures/spec/mqtt-3.1.1-statements.tsv)"
                    ),
                ));
            }
        }
        let level = match def.level {
            None | Some(LevelDef::Must) => Level::Must,
            Some(LevelDef::Should) => Level::Should,
            Some(LevelDef::May) => Level::May,
        };
        if statements.is_empty() && level == Level::Must {
            return Err(ScriptError::new(
                stmt_loc,
                "a MUST scenario cites the statements it checks; a check the spec states without a statement id can only be a SHOULD or MAY (set `level`)",
            ));
        }
        let tag_loc = at(def.tags.span().start);
        let tags = def.tags.into_inner();
        for tag in &tags {
            if !TAGS.contains(&tag.as_str()) {
                return Err(ScriptError::new(
                    tag_loc,
                    format!("unknown tag {tag:?}; known tags: {}", TAGS.join(", ")),
                ));
            }
        }
        if tags.is_empty() {
            return Err(ScriptError::new(
                tag_loc,
                "a scenario needs at least one tag",
            ));
        }
        let mut requires: Vec<Requirement> = def
            .requires
            .iter()
            .map(|r| match r {
                RequirementDef::Tls => Requirement::Tls,
                RequirementDef::Auth => Requirement::Auth,
                RequirementDef::ClientCert => Requirement::ClientCert,
                RequirementDef::Restart => Requirement::Restart,
                RequirementDef::Kill => Requirement::Kill,
                RequirementDef::SecondNode => Requirement::SecondNode,
            })
            .collect();
        let mut ctx = ParseCx {
            file,
            source,
            uses_tls: false,
            uses_client_cert: false,
            cited: &statements,
            inherited: statements.clone(),
            exclusive: def.exclusive,
            uses_restart: false,
            uses_kill: false,
            uses_second_node: false,
        };
        let steps = parse_steps(&mut ctx, def.steps)?;
        if steps.is_empty() {
            return Err(ScriptError::new(
                location,
                "a scenario needs at least one step",
            ));
        }
        if ctx.uses_tls && !requires.contains(&Requirement::Tls) {
            requires.push(Requirement::Tls);
        }
        if ctx.uses_client_cert && !requires.contains(&Requirement::ClientCert) {
            requires.push(Requirement::ClientCert);
        }
        if ctx.uses_restart && !requires.contains(&Requirement::Restart) {
            requires.push(Requirement::Restart);
        }
        if ctx.uses_kill && !requires.contains(&Requirement::Kill) {
            requires.push(Requirement::Kill);
        }
        if ctx.uses_second_node && !requires.contains(&Requirement::SecondNode) {
            requires.push(Requirement::SecondNode);
        }
        let bridge_limit = def.bridge_limit.map(|b| b.trim().to_owned());
        if bridge_limit.is_some() && !requires.contains(&Requirement::SecondNode) {
            return Err(ScriptError::new(
                location,
                "`bridge_limit` marks a cross-node scenario: it needs a step with `node = 2`",
            ));
        }
        if (ctx.uses_restart || ctx.uses_kill) && !def.exclusive {
            return Err(ScriptError::new(
                location,
                "a scenario that restarts or kills the broker drops the clients of every scenario running beside it: set `exclusive = true`",
            ));
        }
        out.push(Scenario {
            name,
            area: area.clone(),
            description: def.description.trim().to_owned(),
            statements,
            tags,
            level,
            requires,
            exclusive: def.exclusive,
            timing: def.timing,
            bridge_limit,
            location,
            steps,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
