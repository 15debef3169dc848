//! One scenario after parsing and validation: its metadata and its steps.
//! The engine runs these and never sees the script text. It sits above
//! [`crate::actions`] (which defines the steps), [`crate::model`] (the
//! values they hold) and [`crate::outcome`] (what running produces), so none
//! of those needs to know about it.

use std::time::Duration;

use crate::actions::Step;
use crate::model::{Level, Location, Requirement};
use crate::outcome::{Line, ScenarioResult, Verdict};

/// One scenario: named clients and the steps they take.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unique name across the suite.
    pub name: String,
    /// The area it belongs to (the file stem, e.g. `connect`).
    pub area: String,
    /// What it checks, for people.
    pub description: String,
    /// Normative statement ids it checks.
    pub statements: Vec<String>,
    /// Tags for `--tags`.
    pub tags: Vec<String>,
    /// MUST / SHOULD / MAY.
    pub level: Level,
    /// What the run must provide for the scenario to run at all.
    pub requires: Vec<Requirement>,
    /// Sees the whole broker (subscribes to `#`, `+`, `$SYS/#`): runs alone.
    pub exclusive: bool,
    /// Its verdict depends on the broker's timers (keep-alive): it is run
    /// several times at once, staggered (`--timing-repeats`), and a failure
    /// in any repeat fails it, so a timer that is only sometimes wrong is
    /// seen every run.
    pub timing: bool,
    /// For a cross-node scenario: why two brokers joined by a bridge
    /// cannot promise what it checks (a bridge forwards messages, not
    /// sessions or connections). Against a bridged pair
    /// (`--second-bridged`) its failure is an observation.
    pub bridge_limit: Option<String>,
    /// Where the scenario starts.
    pub location: Location,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

// The constructors of `ScenarioResult` live here, beside the scenario they
// read, so that `outcome` (whose transcript lines and failures the engine
// uses) does not depend on the scenario and, through it, on the actions.
impl ScenarioResult {
    /// A result for a scenario that was not run.
    pub fn skipped(s: &Scenario, reason: String) -> Self {
        Self::new(s, Verdict::Skipped { reason }, Duration::ZERO, Vec::new())
    }

    /// A result from its parts.
    pub fn new(s: &Scenario, verdict: Verdict, duration: Duration, transcript: Vec<Line>) -> Self {
        Self {
            name: s.name.clone(),
            area: s.area.clone(),
            description: s.description.clone(),
            level: s.level,
            statements: s.statements.clone(),
            tags: s.tags.clone(),
            location: s.location.clone(),
            verdict,
            duration,
            transcript,
            strays: Vec::new(),
            repeats: 1,
            close_timings: Vec::new(),
        }
    }
}
