//! The values a parsed scenario is made of (locations, templates, byte and
//! packet-id specs, matchers, levels): what the actions hold and the engine
//! works with, never the script text. The scenario itself is
//! [`crate::scenario::Scenario`]; each step's action is defined in
//! [`crate::actions`].
//!
//! Strings that may hold placeholders (`{t}`, `{u}`, `{id}`, `{n}`) are kept
//! as [`Template`]s and expanded when the step runs, so one parsed suite can
//! run many times with fresh isolation prefixes.

use std::fmt;
use std::time::Duration;

/// How much a scenario's failure weighs (the spec's MUST / SHOULD / MAY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A failure fails the run.
    Must,
    /// A failure is reported as an observation.
    Should,
    /// A failure is reported as an observation.
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// Something a scenario needs from the run beyond a plain listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// A TLS listener (`--tls-port`).
    Tls,
    /// Credentials the broker accepts (`--username`/`--password`), on a
    /// broker that refuses wrong ones.
    Auth,
    /// A client certificate (`--cert`/`--key`) for a TLS listener that
    /// requires one (mutual TLS).
    ClientCert,
    /// A way to restart the broker gracefully (`--restart-command`).
    Restart,
    /// A way to kill the broker abruptly and start it again
    /// (`--kill-command`).
    Kill,
    /// A second node of the same cluster, or a broker bridged to the one
    /// under test (`--second-host`).
    SecondNode,
}

impl Requirement {
    /// The name used in scripts.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Tls => "tls",
            Requirement::Auth => "auth",
            Requirement::ClientCert => "client-cert",
            Requirement::Restart => "restart",
            Requirement::Kill => "kill",
            Requirement::SecondNode => "second-node",
        }
    }
}

/// Where in which file a scenario or step was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    /// The file, as given (relative to the suite root for the built-in one).
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A string with placeholders, expanded at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub String);

/// Bytes given as text (with placeholders) or as hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BytesSpec {
    /// UTF-8 text, placeholders expanded.
    Text(Template),
    /// Exact bytes.
    Hex(Vec<u8>),
    /// `n` bytes of filler (`0x61`..), for size tests.
    Filler(usize),
}

/// A packet id in a script: a literal, or a variable bound earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    /// This exact value (0 allowed, for malformed packets).
    Literal(u16),
    /// `$name`: the id captured into `name` by an earlier expectation.
    Var(String),
    /// A string with placeholders that expands to a number, e.g. `"{n}"`
    /// inside a `repeat`.
    Template(Template),
}

/// The QoS an expected PUBLISH must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QosSpec {
    /// This exact QoS.
    Literal(u8),
    /// `"$g"`: the QoS a SUBACK granted, captured by a `subscribe` step's
    /// `grants`.
    Var(String),
    /// `"min(N, $g)"`: the lower of a published QoS and a granted one — the
    /// QoS a delivery must have [MQTT-3.8.4-6].
    MinOf(u8, String),
}

/// What a `subscribe` step checks in its SUBACK when the scenario depends on
/// the grants: one code per filter, each a QoS no higher than the one asked
/// for [MQTT-3.9.3-1], [MQTT-3.8.4-6]. A server may grant less than asked or
/// refuse (0x80), so a grant below `require` does not fail the scenario: it
/// makes it not applicable to this broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSpec {
    /// Per filter, the lowest grant the scenario can work with.
    pub require: Vec<u8>,
    /// Per filter, the variable (without `$`) that captures the grant.
    pub capture: Vec<Option<String>>,
}

/// What an expectation requires of one received packet. `None` fields are
/// not checked.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// Packet type, by its lowercase name; `None` matches any packet.
    pub packet: Option<mqtt_codec::PacketType>,
    /// CONNACK return code.
    pub code: Option<u8>,
    /// CONNACK Session Present.
    pub session_present: Option<bool>,
    /// PUBLISH topic.
    pub topic: Option<Template>,
    /// PUBLISH payload.
    pub payload: Option<BytesSpec>,
    /// PUBLISH QoS.
    pub qos: Option<QosSpec>,
    /// PUBLISH RETAIN.
    pub retain: Option<bool>,
    /// PUBLISH DUP.
    pub dup: Option<bool>,
    /// Packet id: literal, or a variable bound on first use and compared after.
    pub packet_id: Option<IdSpec>,
    /// Packet ids the packet must not carry (ids still in flight, which a
    /// sender may not reuse [MQTT-2.3.1-4]).
    pub packet_id_not: Vec<IdSpec>,
    /// SUBACK return codes, in order.
    pub return_codes: Option<Vec<u8>>,
}

/// Default wait for an expected packet or close.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(3);
