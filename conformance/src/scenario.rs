//! One scenario after parsing and validation: its metadata and its steps.
//! The engine runs these and never sees the script text. It sits above
//! [`crate::actions`] (which defines the steps) and [`crate::model`] (the
//! values they hold), so neither of those needs to know about it.

use crate::actions::Step;
use crate::model::{Level, Location, Requirement};

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
    /// Where the scenario starts.
    pub location: Location,
    /// The steps, in order.
    pub steps: Vec<Step>,
}
