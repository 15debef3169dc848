//! The scenario actions: every keyword a step may start with (`connect`,
//! `expect`, `repeat`, ...) is defined once, in one module of this
//! directory, holding its arguments (a serde struct with
//! `deny_unknown_fields`), their parse into a typed value, what the step does
//! when run, its docs and its tests — in the manner of ripgrep's
//! `flags/defs.rs`.
//!
//! The modules are found by `build.rs`: each `x_y.rs` here (but this file)
//! defines `pub struct XY` implementing `ActionDef` with `NAME = "x_y"`.
//! The build script declares the modules and lists them, in the order the
//! step table of `fixtures/scenarios/README.md` documents them, in one
//! `actions!` call, which makes the [`Action`] enum, the `REGISTRY` the
//! step parser walks (so the keyword list is the table), and the dispatch
//! that runs a step. Adding an action is adding one file, plus its row in
//! the README (a test here fails without it).
//!
//! This module also holds what all actions share: [`Step`], the step
//! parser, and `run_steps`. The actions that contain steps (`repeat`,
//! `one_of`, `batch`) call back into those two, so nesting is the one place
//! where a child module uses its parent's parser.

use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::engine::{Run, StepAt, StepResult};
use crate::model::Location;
use crate::script::error::{ScriptError, line_of};

/// One scenario action: its keyword, the parse of its step table, and what
/// it does when run.
pub(crate) trait ActionDef: Sized {
    /// The keyword scripts start the step with; also the module's name.
    const NAME: &'static str;

    /// Whether the action's steps only observe, consuming nothing
    /// irreversibly, so they may stand in a `one_of` branch.
    const OBSERVES_ONLY: bool = false;

    /// Whether a step of this action can fail (or holds steps that can), so
    /// it may name the statements it checks with `statements = [...]`.
    /// Steps that only act (`open`, `send`, `wait`...) cannot.
    const CHECKS: bool = true;

    /// Parses a step whose action key is [`Self::NAME`]: the key's value and
    /// the rest of the table are in `step`. Errors name the step's line.
    fn parse(step: StepTable<'_, '_>) -> Result<Self, ScriptError>;

    /// Carries the step out against the engine context.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult;

    /// Whether this step only observes: [`Self::OBSERVES_ONLY`], unless an
    /// action's answer depends on the step's fields (`expect` with `ack`).
    fn observes_only(&self) -> bool {
        Self::OBSERVES_ONLY
    }

    /// How the step may stand in a `batch` (by default it may not).
    fn batched(&self) -> Batched<'_> {
        Batched::Refused
    }
}

/// What a step is to an enclosing `batch`, whose bytes go out together.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Batched<'a> {
    /// It does not only send: refused inside a batch.
    Refused,
    /// It sends for `client`; `waits` when it would also wait for an answer,
    /// which cannot come before the batch writes its bytes.
    Sends {
        /// The client it sends for.
        client: &'a str,
        /// It waits for an answer (a CONNACK, SUBACK, PUBACK, a close...).
        waits: bool,
    },
    /// It holds steps that are checked in turn (`repeat`).
    Holds(&'a [Step]),
}

impl<'a> Batched<'a> {
    /// A step that sends for `client`, and `waits` for an answer when set.
    pub(crate) fn sends(client: &'a str, waits: bool) -> Self {
        Batched::Sends { client, waits }
    }
}

/// One step, with its location and what it does.
#[derive(Debug, Clone)]
pub struct Step {
    /// Where it was written.
    pub location: Location,
    /// The statement ids its check stands for: its own `statements`, or
    /// those of the step holding it (`repeat`, `batch`, `one_of`), or the
    /// scenario's. A failure of this step is reported under these.
    pub statements: Vec<String>,
    /// What it does.
    pub action: Action,
}

impl Step {
    /// The step as failures and script errors name it.
    pub(crate) fn at(&self) -> StepAt<'_> {
        StepAt {
            location: &self.location,
            keyword: self.action.keyword(),
            statements: &self.statements,
        }
    }
}

/// One entry of the action table: a keyword and the parse of its steps.
pub(crate) struct Entry {
    /// The keyword.
    pub(crate) keyword: &'static str,
    /// Whether its steps can fail and so may carry `statements`.
    pub(crate) checks: bool,
    /// Parses a step table whose action key is `keyword`.
    pub(crate) parse: fn(StepTable<'_, '_>) -> Result<Action, ScriptError>,
}

fn parse_as<A: ActionDef + Into<Action>>(step: StepTable<'_, '_>) -> Result<Action, ScriptError> {
    A::parse(step).map(Into::into)
}

/// Makes, from the list of action modules and types, the [`Action`] enum,
/// the [`REGISTRY`], and the dispatch of [`Action`]'s methods to each
/// action's [`ActionDef`] impl. Called once, by the code `build.rs` writes.
macro_rules! actions {
    ($($module:ident :: $ty:ident),* $(,)?) => {
        /// What a step does: one variant per action module, holding the
        /// step's parsed arguments.
        #[derive(Clone)]
        pub enum Action {
            $(
                #[doc = concat!("`", stringify!($module), "`: see [`", stringify!($module), "`](mod@", stringify!($module), ").")]
                $ty($module::$ty),
            )*
        }

        $(
            impl From<$module::$ty> for Action {
                fn from(a: $module::$ty) -> Self {
                    Action::$ty(a)
                }
            }
        )*

        /// Every action, in the order the README documents them: the step
        /// parser looks a step's keys up here.
        pub(crate) static REGISTRY: &[Entry] = &[
            $(
                Entry {
                    keyword: <$module::$ty as ActionDef>::NAME,
                    checks: <$module::$ty as ActionDef>::CHECKS,
                    parse: parse_as::<$module::$ty>,
                },
            )*
        ];

        // Lets tests take a parsed step as the action they expect.
        $(
            #[cfg(test)]
            impl TryFrom<Action> for $module::$ty {
                type Error = Action;

                fn try_from(a: Action) -> Result<Self, Action> {
                    match a {
                        Action::$ty(a) => Ok(a),
                        other => Err(other),
                    }
                }
            }
        )*

        /// The module names `build.rs` found, in [`REGISTRY`] order.
        #[cfg(test)]
        const MODULES: &[&str] = &[$(stringify!($module)),*];

        /// Shows the action's own value: `Connect { client: "a", .. }`.
        impl std::fmt::Debug for Action {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Action::$ty(a) => a.fmt(f),)*
                }
            }
        }

        impl Action {
            /// The step's keyword in scripts.
            pub fn keyword(&self) -> &'static str {
                match self {
                    $(Action::$ty(_) => <$module::$ty as ActionDef>::NAME,)*
                }
            }

            /// Whether the step only observes (allowed inside `one_of`).
            pub fn is_expectation(&self) -> bool {
                match self {
                    $(Action::$ty(a) => a.observes_only(),)*
                }
            }

            /// How the step may stand in a `batch`.
            pub(crate) fn batched(&self) -> Batched<'_> {
                match self {
                    $(Action::$ty(a) => a.batched(),)*
                }
            }

            /// Carries the step out.
            pub(crate) async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
                match self {
                    $(Action::$ty(a) => a.run(run, at).await,)*
                }
            }
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/actions.rs"));

/// The action keywords, in the order the README documents them.
pub fn keywords() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|e| e.keyword)
}

/// Runs `steps` in order, stopping at the first that does not pass.
pub(crate) async fn run_steps(run: &mut Run<'_>, steps: &[Step]) -> StepResult {
    for step in steps {
        run.current = Some((step.location.clone(), step.action.keyword()));
        // Boxed: `repeat`, `one_of` and `batch` run steps inside a step.
        Box::pin(step.action.run(run, step.at())).await?;
    }
    Ok(())
}

/// What parsing the steps of one scenario needs and records.
pub(crate) struct ParseCx<'a> {
    /// The file name used in messages.
    pub(crate) file: &'a str,
    /// The file's text, for line numbers.
    pub(crate) source: &'a str,
    /// A step uses the TLS listener (`requires` gains `tls`).
    pub(crate) uses_tls: bool,
    /// A step leaves the client certificate out on purpose (`requires`
    /// gains `client-cert`).
    pub(crate) uses_client_cert: bool,
    /// The statements the scenario cites: a step's `statements` must be
    /// among them, so a scenario's level stays that of what it cites.
    pub(crate) cited: &'a [String],
    /// The statements a step without its own `statements` stands for: the
    /// scenario's, or inside a nesting step, that step's.
    pub(crate) inherited: Vec<String>,
    /// The scenario sees the whole broker and runs alone: its filters need
    /// not stay within its own topics.
    pub(crate) exclusive: bool,
    /// A step restarts the broker (`requires` gains `restart`).
    pub(crate) uses_restart: bool,
    /// A step connects to the second node (`requires` gains
    /// `second-node`).
    pub(crate) uses_second_node: bool,
    /// A step kills the broker (`requires` gains `kill`).
    pub(crate) uses_kill: bool,
}

/// One step table being parsed: its action key's value, the rest of the
/// table, and where it was written.
pub(crate) struct StepTable<'p, 'a> {
    /// The scenario-wide parse state.
    pub(crate) cx: &'p mut ParseCx<'a>,
    /// Where the step was written.
    pub(crate) at: Location,
    keyword: &'static str,
    value: toml::Value,
    rest: toml::Table,
}

impl StepTable<'_, '_> {
    /// An error at this step.
    pub(crate) fn error(&self, message: impl Into<String>) -> ScriptError {
        ScriptError::new(self.at.clone(), message)
    }

    /// The action key's value: `500` in `{ wait = 500 }`.
    pub(crate) fn value(&self) -> &toml::Value {
        &self.value
    }

    /// The action key's value as the name of the client the step acts for:
    /// 1 to 8 lowercase letters or digits, so `{id}` + name stays a client
    /// id every broker accepts [MQTT-3.1.3-5].
    pub(crate) fn client(&self) -> Result<String, ScriptError> {
        match &self.value {
            toml::Value::String(s)
                if !s.is_empty()
                    && s.len() <= 8
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
            {
                Ok(s.clone())
            }
            other => Err(self.error(format!(
                "`{}` names the client it acts for: 1 to 8 lowercase letters or digits, found {other}",
                self.keyword
            ))),
        }
    }

    /// The client the step acts for ([`Self::client`]), then the rest of the
    /// table as the action's argument struct ([`Self::args`]): how most
    /// actions' parse begins.
    pub(crate) fn client_and_args<T: DeserializeOwned>(
        &mut self,
    ) -> Result<(String, T), ScriptError> {
        let client = self.client()?;
        Ok((client, self.args()?))
    }

    /// Removes `key` from the table before [`Self::args`] sees it (for
    /// fields that are not plain data, such as nested `steps`).
    pub(crate) fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.rest.remove(key)
    }

    /// The rest of the table as the action's argument struct; with
    /// `deny_unknown_fields`, a misspelt field is an error naming it.
    pub(crate) fn args<T: DeserializeOwned>(&mut self) -> Result<T, ScriptError> {
        toml::Value::Table(std::mem::take(&mut self.rest))
            .try_into()
            .map_err(|e: toml::de::Error| {
                self.error(format!(
                    "in `{}` step: {}",
                    self.keyword,
                    e.message().trim_end()
                ))
            })
    }

    /// Parses `value`, an array of step tables nested in this step; `what`
    /// names it in errors.
    pub(crate) fn steps(
        &mut self,
        value: toml::Value,
        what: &str,
    ) -> Result<Vec<Step>, ScriptError> {
        let toml::Value::Array(items) = value else {
            return Err(self.error(format!("{what} must be an array of step tables")));
        };
        items
            .into_iter()
            .map(|item| match item {
                toml::Value::Table(t) => parse_step(self.cx, self.at.clone(), t),
                other => Err(self.error(format!(
                    "{what} must hold step tables, found {}",
                    other.type_str()
                ))),
            })
            .collect()
    }
}

/// Milliseconds from a script, or `default` when not given.
pub(crate) fn millis_or(ms: Option<u64>, default: Duration) -> Duration {
    ms.map_or(default, Duration::from_millis)
}

/// Parses the steps of a scenario, each with its own line.
pub(crate) fn parse_steps(
    cx: &mut ParseCx<'_>,
    steps: Vec<Spanned<toml::Table>>,
) -> Result<Vec<Step>, ScriptError> {
    steps
        .into_iter()
        .map(|s| {
            let location = Location {
                file: cx.file.to_owned(),
                line: line_of(cx.source, s.span().start),
            };
            parse_step(cx, location, s.into_inner())
        })
        .collect()
}

/// Parses one step table: finds its one action key in the [`REGISTRY`] and
/// hands the table to that action's parse.
fn parse_step(
    cx: &mut ParseCx<'_>,
    location: Location,
    mut table: toml::Table,
) -> Result<Step, ScriptError> {
    let present: Vec<&Entry> = REGISTRY
        .iter()
        .filter(|e| table.contains_key(e.keyword))
        .collect();
    let entry = match present.as_slice() {
        [one] => *one,
        [] => {
            let keys: Vec<&str> = table.keys().map(String::as_str).collect();
            let all: Vec<&str> = keywords().collect();
            return Err(ScriptError::new(
                location,
                format!(
                    "step has no action (keys: {}); start it with one of: {}",
                    keys.join(", "),
                    all.join(", ")
                ),
            ));
        }
        many => {
            let names: Vec<&str> = many.iter().map(|e| e.keyword).collect();
            return Err(ScriptError::new(
                location,
                format!(
                    "step has several actions ({}); split it into one step each",
                    names.join(", ")
                ),
            ));
        }
    };
    let value = table
        .remove(entry.keyword)
        .unwrap_or(toml::Value::Boolean(false));
    let own = match table.remove("statements") {
        Some(v) => Some(step_statements(cx, &location, entry, v)?),
        None => None,
    };
    // Nested steps inherit this step's statements while it is parsed.
    let statements = own.unwrap_or_else(|| cx.inherited.clone());
    let outer = std::mem::replace(&mut cx.inherited, statements.clone());
    let action = (entry.parse)(StepTable {
        cx,
        at: location.clone(),
        keyword: entry.keyword,
        value,
        rest: table,
    });
    cx.inherited = outer;
    Ok(Step {
        location,
        statements,
        action: action?,
    })
}

/// Reads a step's `statements`: a non-empty array of ids the scenario
/// cites, on a step that can fail.
fn step_statements(
    cx: &ParseCx<'_>,
    location: &Location,
    entry: &Entry,
    value: toml::Value,
) -> Result<Vec<String>, ScriptError> {
    let err = |message: String| ScriptError::new(location.clone(), message);
    if !entry.checks {
        return Err(err(format!(
            "`{}` checks nothing, so it has no `statements`; put them on the step whose check they name",
            entry.keyword
        )));
    }
    let ids: Vec<String> = value.try_into().map_err(|_| {
        err("`statements` is an array of statement ids, e.g. [\"MQTT-3.3.1-6\"]".to_owned())
    })?;
    if ids.is_empty() {
        return Err(err(
            "`statements` is empty; leave it out to stand for the scenario's statements".to_owned(),
        ));
    }
    for id in &ids {
        if !cx.cited.contains(id) {
            return Err(err(format!(
                "step statement {id:?} is not among the scenario's statements ({}); cite it in the scenario's `statements` too",
                if cx.cited.is_empty() {
                    "none".to_owned()
                } else {
                    cx.cited.join(", ")
                }
            )));
        }
    }
    Ok(ids)
}

/// Parses one step written as an inline table (`{ wait = 500 }`) as if it
/// stood on line 1 of `t.toml` in a scenario citing `MQTT-3.3.1-6` and
/// `MQTT-3.3.1-8`; the error is the message without its place.
#[cfg(test)]
pub(crate) fn parse_one(step: &str) -> Result<Action, String> {
    parse_one_step(step).map(|s| s.action)
}

/// As [`parse_one`], the whole step with its statements.
#[cfg(test)]
pub(crate) fn parse_one_step(step: &str) -> Result<Step, String> {
    let mut doc: toml::Table = toml::from_str(&format!("s = {step}")).map_err(|e| e.to_string())?;
    let Some(toml::Value::Table(table)) = doc.remove("s") else {
        return Err(format!("{step} is not an inline table"));
    };
    let cited = ["MQTT-3.3.1-6".to_owned(), "MQTT-3.3.1-8".to_owned()];
    let mut cx = ParseCx {
        file: "t.toml",
        source: "",
        uses_tls: false,
        uses_client_cert: false,
        cited: &cited,
        inherited: cited.to_vec(),
        exclusive: false,
        uses_restart: false,
        uses_kill: false,
        uses_second_node: false,
    };
    let at = Location {
        file: "t.toml".into(),
        line: 1,
    };
    parse_step(&mut cx, at, table).map_err(|e| e.message)
}

/// Parses one step written as an inline table, which must parse as action
/// `A`; panics otherwise, naming the step.
#[cfg(test)]
pub(crate) fn parse_ok<A: TryFrom<Action, Error = Action>>(step: &str) -> A {
    match parse_one(step).map(A::try_from) {
        Ok(Ok(a)) => a,
        Ok(Err(other)) => panic!("{step} parsed as another action: {other:?}"),
        Err(e) => panic!("{step} did not parse: {e}"),
    }
}

/// The error message of one step written as an inline table, which must
/// not parse; panics otherwise, naming the step.
#[cfg(test)]
pub(crate) fn parse_err(step: &str) -> String {
    match parse_one(step) {
        Ok(a) => panic!("{step} parsed: {a:?}"),
        Err(e) => e,
    }
}

/// Runs `action` alone, as the only step of a scenario at `t.toml:1`,
/// against `target` (nothing need listen there for steps that connect to
/// nothing).
#[cfg(test)]
pub(crate) async fn run_alone<A: ActionDef>(
    action: &A,
    target: &crate::target::Target,
) -> StepResult {
    let ph = crate::script::Placeholders {
        topic: "mqc/r/t".into(),
        unique: "r1".into(),
        client_id: "qr1".into(),
        iteration: 0,
    };
    let mut run = Run::new(target, ph, "t".into());
    let location = crate::model::Location {
        file: "t.toml".into(),
        line: 1,
    };
    let at = StepAt {
        location: &location,
        keyword: A::NAME,
        statements: &[],
    };
    action.run(&mut run, at).await
}

// Tests sit here rather than in a `tests.rs` beside this file: every file in
// this directory is an action.
#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/scenarios/README.md"
    ));

    #[test]
    fn each_action_is_named_for_its_module() {
        let keywords: Vec<&str> = keywords().collect();
        assert_eq!(keywords, MODULES);
    }

    #[test]
    fn readme_documents_every_action_in_table_order() {
        let rows: Vec<&str> = README
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split([' ', '`']).next())
            .filter(|k| !k.starts_with('{'))
            .collect();
        let keywords: Vec<&str> = keywords().collect();
        assert_eq!(
            rows, keywords,
            "the step table of fixtures/scenarios/README.md lists the actions of src/actions/, one row each"
        );
    }

    #[test]
    fn a_step_names_exactly_one_action() {
        let none = parse_one("{ client = \"a\" }").unwrap_err();
        let all: Vec<&str> = keywords().collect();
        assert_eq!(
            none,
            format!(
                "step has no action (keys: client); start it with one of: {}",
                all.join(", ")
            )
        );
        let two = parse_one("{ drop = \"a\", connect = \"a\" }").unwrap_err();
        assert_eq!(
            two,
            "step has several actions (connect, drop); split it into one step each"
        );
    }

    #[test]
    fn a_step_names_the_statements_it_checks_or_inherits_them() {
        // parse_one_step's scenario cites MQTT-3.3.1-6 and MQTT-3.3.1-8.
        let own = parse_one_step(
            "{ expect = \"a\", packet = \"publish\", statements = [\"MQTT-3.3.1-8\"] }",
        )
        .unwrap();
        assert_eq!(own.statements, ["MQTT-3.3.1-8"]);
        assert_eq!(own.at().statements, ["MQTT-3.3.1-8"]);
        let inherited = parse_one_step("{ expect_closed = \"a\" }").unwrap();
        assert_eq!(inherited.statements, ["MQTT-3.3.1-6", "MQTT-3.3.1-8"]);
        // Steps nested in a step take its statements unless they name their own.
        let repeat = parse_one_step(
            "{ repeat = 2, statements = [\"MQTT-3.3.1-6\"], steps = [ { expect_closed = \"a\" }, { expect_closed = \"a\", statements = [\"MQTT-3.3.1-8\"] } ] }",
        )
        .unwrap();
        assert_eq!(repeat.statements, ["MQTT-3.3.1-6"]);
        let Action::Repeat(r) = &repeat.action else {
            panic!("not a repeat: {:?}", repeat.action)
        };
        let nested: Vec<&[String]> = r.steps.iter().map(|s| s.statements.as_slice()).collect();
        assert_eq!(
            nested,
            [
                &["MQTT-3.3.1-6".to_owned()][..],
                &["MQTT-3.3.1-8".to_owned()][..]
            ]
        );
        // Back outside the repeat, a step inherits the scenario's again.
        let one_of = parse_one_step(
            "{ one_of = [ [ { expect_closed = \"a\", statements = [\"MQTT-3.3.1-8\"] } ], [ { expect_closed = \"a\" } ] ] }",
        )
        .unwrap();
        let Action::OneOf(o) = &one_of.action else {
            panic!("not a one_of")
        };
        assert_eq!(o.0[1][0].statements, ["MQTT-3.3.1-6", "MQTT-3.3.1-8"]);
    }

    #[test]
    fn step_statements_are_cited_by_the_scenario_and_on_checking_steps() {
        let e =
            parse_one("{ expect_closed = \"a\", statements = [\"MQTT-3.1.4-4\"] }").unwrap_err();
        assert_eq!(
            e,
            "step statement \"MQTT-3.1.4-4\" is not among the scenario's statements (MQTT-3.3.1-6, MQTT-3.3.1-8); cite it in the scenario's `statements` too"
        );
        let e = parse_one("{ wait = 10, statements = [\"MQTT-3.3.1-6\"] }").unwrap_err();
        assert_eq!(
            e,
            "`wait` checks nothing, so it has no `statements`; put them on the step whose check they name"
        );
        let e = parse_one("{ expect_closed = \"a\", statements = [] }").unwrap_err();
        assert!(e.starts_with("`statements` is empty"), "{e}");
        let e = parse_one("{ expect_closed = \"a\", statements = \"MQTT-3.3.1-6\" }").unwrap_err();
        assert!(
            e.starts_with("`statements` is an array of statement ids"),
            "{e}"
        );
    }

    #[test]
    fn misspelt_field_names_the_action() {
        let e = parse_one("{ drop = \"a\", clean = true }").unwrap_err();
        assert!(
            e.starts_with("in `drop` step: unknown field `clean`"),
            "{e}"
        );
    }
}
