//! A scenario after parsing and validation: the engine runs these and never
//! sees the script text.
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
}

impl Requirement {
    /// The name used in scripts.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Tls => "tls",
            Requirement::Auth => "auth",
            Requirement::ClientCert => "client-cert",
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

/// One step, with its location and the client it acts for.
#[derive(Debug, Clone)]
pub struct Step {
    /// Where it was written.
    pub location: Location,
    /// What it does.
    pub action: Action,
}

/// The will of a CONNECT step.
#[derive(Debug, Clone)]
pub struct WillSpec {
    /// Will topic bytes.
    pub topic: BytesSpec,
    /// Will message.
    pub payload: BytesSpec,
    /// Will QoS bits (3 allowed, for malformed CONNECTs).
    pub qos: u8,
    /// Will retain flag.
    pub retain: bool,
}

/// Every field of a CONNECT, as the script asked.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// Use the TLS listener.
    pub tls: bool,
    /// On TLS, present the run's client certificate (if it has one).
    pub client_cert: bool,
    /// Protocol name bytes.
    pub protocol_name: BytesSpec,
    /// Protocol level byte.
    pub protocol_level: u8,
    /// Forced flags byte.
    pub flags: Option<u8>,
    /// Clean Session.
    pub clean_session: bool,
    /// Keep-alive seconds.
    pub keep_alive: u16,
    /// Client id; `None` leaves the field out of the packet.
    pub client_id: Option<BytesSpec>,
    /// Will.
    pub will: Option<WillSpec>,
    /// User name (explicit).
    pub username: Option<BytesSpec>,
    /// Password (explicit).
    pub password: Option<BytesSpec>,
    /// Whether the run's credentials (when it has some) replace the user
    /// name and password given here; `credentials = false` keeps them, for
    /// scenarios that test refusals.
    pub credentials: bool,
    /// Expect a CONNACK with this code right after.
    pub connack: Option<u8>,
    /// With `connack`: the Session Present flag expected.
    pub session_present: Option<bool>,
    /// The CONNECT asks for something a server may decline (MQTT 3.1): a
    /// refusal (a CONNACK with a non-zero code, or a close) makes the
    /// scenario not applicable instead of failing it.
    pub refusal_not_applicable: bool,
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

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Open a network connection without sending anything.
    Open {
        /// Client name.
        client: String,
        /// Use the TLS listener.
        tls: bool,
        /// On TLS, present the run's client certificate (if it has one).
        client_cert: bool,
    },
    /// Open a connection if none is live, send CONNECT, maybe expect CONNACK.
    Connect {
        /// Client name.
        client: String,
        /// The CONNECT.
        spec: Box<ConnectSpec>,
    },
    /// Send SUBSCRIBE; maybe expect its SUBACK.
    Subscribe {
        /// Client name.
        client: String,
        /// Packet id; auto when `None`.
        packet_id: Option<IdSpec>,
        /// Filters and requested-QoS bytes (any byte allowed).
        filters: Vec<(BytesSpec, u8)>,
        /// Forced fixed-header flags.
        flags: Option<u8>,
        /// Expect a SUBACK with the same id and judge its grants.
        grants: Option<GrantSpec>,
    },
    /// Send UNSUBSCRIBE; maybe expect its UNSUBACK.
    Unsubscribe {
        /// Client name.
        client: String,
        /// Packet id; auto when `None`.
        packet_id: Option<IdSpec>,
        /// Filters.
        filters: Vec<BytesSpec>,
        /// Forced fixed-header flags.
        flags: Option<u8>,
        /// Expect an UNSUBACK with the same id.
        ack: bool,
    },
    /// Send PUBLISH; maybe run the sender's side of the QoS flow.
    Publish {
        /// Client name.
        client: String,
        /// Topic bytes.
        topic: BytesSpec,
        /// Payload.
        payload: BytesSpec,
        /// QoS bits (3 allowed).
        qos: u8,
        /// RETAIN.
        retain: bool,
        /// DUP.
        dup: bool,
        /// Packet id: auto for QoS > 0 when `None`.
        packet_id: Option<IdSpec>,
        /// Forced fixed-header flags (overrides qos/retain/dup).
        flags: Option<u8>,
        /// QoS 1: expect PUBACK. QoS 2: expect PUBREC, send PUBREL, expect PUBCOMP.
        ack: bool,
    },
    /// Send a small packet by type, or raw bytes.
    Send {
        /// Client name.
        client: String,
        /// What to send.
        what: SendSpec,
    },
    /// Expect the next packet to match.
    Expect {
        /// Client name.
        client: String,
        /// The matcher.
        matcher: Matcher,
        /// How long to wait.
        within: Duration,
        /// Answer a QoS 1/2 PUBLISH as a receiver (PUBACK; PUBREC, PUBREL, PUBCOMP).
        ack: bool,
    },
    /// Expect these packets, in any order.
    ExpectAll {
        /// Client name.
        client: String,
        /// One matcher per expected packet.
        matchers: Vec<Matcher>,
        /// How long to wait for all of them.
        within: Duration,
    },
    /// Expect no packet (matching, if a matcher is given) for a while.
    ExpectNothing {
        /// Client name.
        client: String,
        /// Only packets matching this count; `None`: anything counts.
        matcher: Option<Matcher>,
        /// How long to watch.
        duration: Duration,
    },
    /// Expect the server to close the connection.
    ExpectClosed {
        /// Client name.
        client: String,
        /// How long to wait.
        within: Duration,
        /// The close must come from the TLS layer (a refused handshake or a
        /// fatal alert), not after an MQTT exchange.
        tls_refused: bool,
    },
    /// Send DISCONNECT and (unless told not to) close the connection.
    Disconnect {
        /// Client name.
        client: String,
        /// Close the socket after sending.
        close: bool,
    },
    /// Close the network connection abruptly, without DISCONNECT.
    Drop {
        /// Client name.
        client: String,
    },
    /// Let time pass.
    Wait(Duration),
    /// Run steps `times` times; `{n}` is the 1-based iteration.
    Repeat {
        /// How many times.
        times: u32,
        /// The steps.
        steps: Vec<Step>,
    },
    /// Alternatives allowed by the spec: passes if any branch passes. Branches
    /// hold only expectations, so trying one consumes nothing irreversibly.
    OneOf(Vec<Vec<Step>>),
    /// Several packets of one client written together: the bytes of the
    /// inner steps (which only send) go out in one write, or split into
    /// writes of `chunk` bytes `pause` apart — how real clients pipeline
    /// packets into one TCP segment, and how a slow link splits one packet
    /// over many.
    Batch {
        /// Client name.
        client: String,
        /// The sending steps whose bytes are joined.
        steps: Vec<Step>,
        /// Bytes per write; `None` writes everything at once.
        chunk: Option<usize>,
        /// Time between two writes of a split batch.
        pause: Duration,
    },
}

/// What a `send` step writes.
#[derive(Debug, Clone)]
pub enum SendSpec {
    /// Exactly these bytes.
    Hex(Vec<u8>),
    /// A packet built by type, then bent as asked.
    Packet {
        /// The type.
        packet: mqtt_codec::PacketType,
        /// Packet id for the types that carry one.
        packet_id: Option<IdSpec>,
        /// Forced fixed-header flags.
        flags: Option<u8>,
        /// Replacement body.
        body: Option<Vec<u8>>,
        /// A stated Remaining Length other than the body's.
        remaining_length: Option<usize>,
    },
}

impl Action {
    /// Whether the step only observes (allowed inside `one_of`).
    pub fn is_expectation(&self) -> bool {
        matches!(
            self,
            Action::Expect { ack: false, .. }
                | Action::ExpectAll { .. }
                | Action::ExpectNothing { .. }
                | Action::ExpectClosed { .. }
        )
    }

    /// The step's keyword in scripts.
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Open { .. } => "open",
            Action::Connect { .. } => "connect",
            Action::Subscribe { .. } => "subscribe",
            Action::Unsubscribe { .. } => "unsubscribe",
            Action::Publish { .. } => "publish",
            Action::Send { .. } => "send",
            Action::Expect { .. } => "expect",
            Action::ExpectAll { .. } => "expect_all",
            Action::ExpectNothing { .. } => "expect_nothing",
            Action::ExpectClosed { .. } => "expect_closed",
            Action::Disconnect { .. } => "disconnect",
            Action::Drop { .. } => "drop",
            Action::Wait(_) => "wait",
            Action::Repeat { .. } => "repeat",
            Action::OneOf(_) => "one_of",
            Action::Batch { .. } => "batch",
        }
    }
}
