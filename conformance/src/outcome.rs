//! What running a scenario produced: a verdict and the transcript of
//! everything sent and received, timed from the scenario's start.

use std::time::Duration;

use serde::Serialize;

use crate::model::{Level, Location};

/// Direction of a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The harness sent it.
    Sent,
    /// The broker sent it.
    Received,
    /// A remark of the harness (connection opened, write failed...).
    Note,
}

impl Direction {
    /// How transcripts show it: `->` sent, `<-` received, `--` a remark.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Sent => "->",
            Direction::Received => "<-",
            Direction::Note => "--",
        }
    }

    /// The same in a word, for reports read outside a terminal (JUnit).
    pub fn word(self) -> &'static str {
        match self {
            Direction::Sent => "Sent",
            Direction::Received => "Received",
            Direction::Note => "Note",
        }
    }
}

/// One line of a transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Since the scenario started.
    #[serde(serialize_with = "ser_millis")]
    pub at: Duration,
    /// Which client.
    pub client: String,
    /// Sent, received or a note.
    pub direction: Direction,
    /// The packet or remark.
    pub text: String,
}

/// A step that did not get what it expected.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The step's location.
    pub location: Location,
    /// The step's keyword.
    pub step: String,
    /// The statements whose check failed: the step's own `statements`, or
    /// else the scenario's. Reports name these, not the scenario's headline.
    pub statements: Vec<String>,
    /// The client, when the step has one.
    pub client: Option<String>,
    /// What the step expected.
    pub expected: String,
    /// What was observed instead (packets with their times, or nothing).
    pub observed: String,
}

/// A delivery the broker should not have made, set aside when it arrived
/// so that it could not fail an expectation about something else: a
/// PUBLISH no subscription of the client matches [MQTT-3.3.2-3], or the same
/// QoS 2 message delivered again as new [MQTT-3.3.1-1].
#[derive(Debug, Clone, Serialize)]
pub struct StrayDelivery {
    /// The statement it breaks.
    pub statement: String,
    /// The client it reached.
    pub client: String,
    /// What arrived and why it is a stray.
    pub text: String,
    /// On the scenario's own topics: the scenario caused it and fails with
    /// it. Otherwise it belongs to another scenario and fails nothing.
    pub own: bool,
}

/// How a scenario ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// Every step got what it expected.
    Pass,
    /// A step did not.
    Fail {
        /// The failing step.
        failure: Failure,
    },
    /// Not run.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Run, but the broker made a choice the spec allows (granting a lower
    /// QoS than asked, refusing a subscription, not speaking MQTT 3.1) that
    /// leaves nothing for the scenario to check. Neither pass nor fail.
    #[serde(rename = "not_applicable")]
    NotApplicable {
        /// The broker's choice, e.g. "broker granted QoS 1 for ...".
        reason: String,
    },
    /// The harness could not carry it out (broker unreachable, timeout).
    Error {
        /// What went wrong.
        message: String,
    },
    /// Not run because the broker stopped answering the liveness probe
    /// earlier in the run ([`crate::liveness`]): nothing is known about
    /// the rule it checks. Neither pass nor skip.
    #[serde(rename = "not_run")]
    NotRun {
        /// Why, e.g. "broker unavailable".
        reason: String,
    },
}

/// One scenario's result. (Its constructors, which read a
/// [`crate::scenario::Scenario`], are in that module.)
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Name.
    pub name: String,
    /// Area (file stem).
    pub area: String,
    /// Description.
    pub description: String,
    /// Level.
    pub level: Level,
    /// Statement ids.
    pub statements: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Where it is defined.
    pub location: Location,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How long it ran.
    #[serde(serialize_with = "ser_millis", rename = "duration_ms")]
    pub duration: Duration,
    /// What was sent and received.
    pub transcript: Vec<Line>,
    /// Deliveries set aside as strays, in arrival order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strays: Vec<StrayDelivery>,
    /// How many times it ran (a `timing` scenario runs `--timing-repeats`
    /// times; any failing repeat fails it). Left out of JSON when 1.
    #[serde(skip_serializing_if = "is_one")]
    pub repeats: u32,
    /// The keep-alive closes its `expect_keepalive_close` steps observed,
    /// in every repeat. Left out of JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub close_timings: Vec<CloseTiming>,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// One keep-alive close as `expect_keepalive_close` saw it: when the
/// server closed a silent client, against the window the step allowed.
/// Silence is timed from the client's last write (taken before writing),
/// and the close from when the harness read it, so both errors of the
/// measurement lengthen the silence seen: a correct server is never seen
/// closing before 1.5 × the keep-alive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloseTiming {
    /// The client.
    pub client: String,
    /// Which repeat of the scenario (1-based).
    pub repeat: u32,
    /// The keep-alive the client connected with, in seconds.
    pub keep_alive_s: u16,
    /// Silence before the close was seen, in milliseconds; `None` when the
    /// connection was still open at the end of the window.
    pub closed_after_ms: Option<u64>,
    /// The window's start: 1.5 × the keep-alive [MQTT-3.1.2-24].
    pub earliest_ms: u64,
    /// The window's end: 1.5 × the keep-alive plus the allowance.
    pub latest_ms: u64,
    /// The longest round trip measured, in microseconds: of the PINGREQs
    /// just before the silence, or, when the window ended with the
    /// connection open, of a second connection at that moment (if longer;
    /// the window was then extended to match).
    pub round_trip_us: u64,
    /// What the window allows beyond 1.5 × the keep-alive:
    /// `time_scale × (2 × round trip + 100 ms)`.
    pub allowance_ms: u64,
}

impl std::fmt::Display for CloseTiming {
    /// `keep-alive 2 s: closed after 3004 ms of silence (window 3000..3100 ms: 1.5 × keep-alive + allowance 100 ms, round trip 0.40 ms)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "keep-alive {} s: ", self.keep_alive_s)?;
        match self.closed_after_ms {
            Some(ms) => write!(f, "closed after {ms} ms of silence")?,
            None => write!(f, "still open after {} ms of silence", self.latest_ms)?,
        }
        write!(
            f,
            " (window {}..{} ms: 1.5 × keep-alive + allowance {} ms, round trip {:.2} ms)",
            self.earliest_ms,
            self.latest_ms,
            self.allowance_ms,
            self.round_trip_us as f64 / 1000.0
        )
    }
}

impl ScenarioResult {
    /// Whether the scenario passed.
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Pass)
    }

    /// Whether the broker's allowed choices left it nothing to check.
    pub fn not_applicable(&self) -> bool {
        matches!(self.verdict, Verdict::NotApplicable { .. })
    }

    /// Whether it was not run because the broker had become unavailable.
    pub fn not_run(&self) -> bool {
        matches!(self.verdict, Verdict::NotRun { .. })
    }

    /// Whether it failed or could not be carried out.
    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Fail { .. } | Verdict::Error { .. })
    }
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// A time the broker stopped answering the liveness probe during a run.
#[derive(Debug, Clone, Serialize)]
pub struct Outage {
    /// The likely cause: the scenarios that finished since the last probe
    /// the broker passed, and those still running when it failed (with
    /// `--jobs 1`, exactly one), in suite order.
    pub suspects: Vec<String>,
    /// What the failed probe saw, as one line.
    pub probe: String,
    /// With `--continue-after-crash`: how long the broker took to answer
    /// the probe again; `None` when it did not come back and the run
    /// stopped.
    #[serde(
        rename = "came_back_after_ms",
        serialize_with = "ser_opt_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub came_back_after: Option<Duration>,
}

fn ser_opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_millis(d, s),
        None => s.serialize_none(),
    }
}
