//! `connect = "a"`: opens a connection for client `a` if it has no live
//! one, sends CONNECT with every field as the script asks (right or
//! deliberately wrong), and with `connack = CODE` expects the CONNACK.
//!
//! With `refusal_not_applicable` (and `connack = 0`) a refusal — another
//! CONNACK code or a close — makes the scenario not applicable, for features
//! a server may decline, such as MQTT 3.1.

use mqtt_codec::raw::{RawConnect, RawWill};
use mqtt_codec::{Packet, PacketType};
use serde::Deserialize;
use tokio::time::Instant;

use super::open::transport_fields;
use super::{ActionDef, Batched, StepTable};
use crate::client::Event;
use crate::engine::{Run, StepAt, StepError, StepResult, bytes_of, transport};
use crate::model::{BytesSpec, DEFAULT_WITHIN, Location, Matcher, Template};
use crate::script::error::ScriptError;
use crate::script::values::one_bytes;
use crate::target::Node;

/// The `will = { ... }` table of a `connect` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WillArgs {
    topic: Option<String>,
    topic_hex: Option<String>,
    payload: Option<String>,
    payload_hex: Option<String>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
}

/// The fields of a `connect` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    tls: bool,
    client_cert: Option<bool>,
    protocol_name: Option<String>,
    protocol_name_hex: Option<String>,
    protocol_level: Option<u8>,
    flags: Option<u8>,
    clean_session: Option<bool>,
    keep_alive: Option<u16>,
    client_id: Option<String>,
    client_id_hex: Option<String>,
    #[serde(default)]
    no_client_id: bool,
    will: Option<WillArgs>,
    username: Option<String>,
    username_hex: Option<String>,
    password: Option<String>,
    password_hex: Option<String>,
    credentials: Option<bool>,
    connack: Option<u8>,
    session_present: Option<bool>,
    #[serde(default)]
    refusal_not_applicable: bool,
    node: Option<u8>,
}

impl Args {
    fn into_spec(
        self,
        loc: &Location,
        client: &str,
        node: Node,
    ) -> Result<ConnectSpec, ScriptError> {
        let client_id = if self.no_client_id {
            if self.client_id.is_some() || self.client_id_hex.is_some() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`no_client_id` leaves the field out; drop `client_id`",
                ));
            }
            None
        } else {
            Some(
                one_bytes(loc, "client_id", self.client_id, self.client_id_hex, None)?
                    .unwrap_or_else(|| BytesSpec::Text(Template(format!("{{id}}{client}")))),
            )
        };
        let will = self
            .will
            .map(|w| -> Result<WillSpec, ScriptError> {
                Ok(WillSpec {
                    topic: one_bytes(loc, "topic", w.topic, w.topic_hex, None)?.ok_or_else(
                        || ScriptError::new(loc.clone(), "`will` needs `topic` or `topic_hex`"),
                    )?,
                    payload: one_bytes(loc, "payload", w.payload, w.payload_hex, None)?
                        .unwrap_or(BytesSpec::Hex(Vec::new())),
                    qos: w.qos,
                    retain: w.retain,
                })
            })
            .transpose()?;
        if self.refusal_not_applicable && self.connack != Some(0) {
            return Err(ScriptError::new(
                loc.clone(),
                "`refusal_not_applicable` goes with `connack = 0`",
            ));
        }
        if self.session_present.is_some() && self.connack.is_none() {
            return Err(ScriptError::new(
                loc.clone(),
                "`session_present` goes with `connack = CODE`",
            ));
        }
        let username = one_bytes(loc, "username", self.username, self.username_hex, None)?;
        let password = one_bytes(loc, "password", self.password, self.password_hex, None)?;
        Ok(ConnectSpec {
            tls: self.tls,
            node,
            client_cert: self.client_cert.unwrap_or(true),
            protocol_name: one_bytes(
                loc,
                "protocol_name",
                self.protocol_name,
                self.protocol_name_hex,
                None,
            )?
            .unwrap_or(BytesSpec::Hex(b"MQTT".to_vec())),
            protocol_level: self.protocol_level.unwrap_or(4),
            flags: self.flags,
            clean_session: self.clean_session.unwrap_or(true),
            keep_alive: self.keep_alive.unwrap_or(60),
            client_id,
            will,
            credentials: self.credentials.unwrap_or(true),
            username,
            password,
            connack: self.connack,
            session_present: self.session_present,
            refusal_not_applicable: self.refusal_not_applicable,
        })
    }
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
    /// The node it connects to (when it has no live connection).
    pub node: Node,
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

/// Open a connection if none is live, send CONNECT, maybe expect CONNACK.
#[derive(Debug, Clone)]
pub struct Connect {
    /// Client name.
    pub client: String,
    /// The CONNECT (boxed: it is large, and steps are kept in a `Vec`).
    pub spec: Box<ConnectSpec>,
}

impl ActionDef for Connect {
    const NAME: &'static str = "connect";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let (_, node) = transport_fields(&mut step, a.tls, a.client_cert, a.node)?;
        Ok(Connect {
            spec: Box::new(a.into_spec(&step.at, &client, node)?),
            client,
        })
    }

    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let (client, spec) = (self.client.as_str(), &*self.spec);
        let live = run
            .clients
            .get(client)
            .is_some_and(|s| s.conn.is_some() && !s.closed);
        if !live {
            run.open(client, transport(spec.tls, spec.client_cert), spec.node)
                .await?;
        }
        let ph = &run.ph;
        let mut raw = RawConnect {
            protocol_name: bytes_of(&spec.protocol_name, ph),
            protocol_level: spec.protocol_level,
            flags: spec.flags,
            clean_session: spec.clean_session,
            keep_alive: spec.keep_alive,
            client_id: spec.client_id.as_ref().map(|c| bytes_of(c, ph)),
            will: spec.will.as_ref().map(|w| RawWill {
                topic: bytes_of(&w.topic, ph),
                message: bytes_of(&w.payload, ph),
                qos: w.qos,
                retain: w.retain,
            }),
            username: spec.username.as_ref().map(|u| bytes_of(u, ph)),
            password: spec.password.as_ref().map(|p| bytes_of(p, ph)),
        };
        if spec.credentials
            && let Some(c) = &run.target.credentials
        {
            raw.username = Some(c.username.clone().into_bytes());
            raw.password = Some(c.password.clone().into_bytes());
        }
        if !spec.clean_session
            && let Some(id) = &raw.client_id
        {
            run.persistent_ids.insert(id.clone());
        }
        if let Some(w) = &raw.will
            && w.retain
        {
            run.retained_topics.insert(w.topic.clone());
        }
        let asked = format!(
            "protocol {} level {}",
            crate::describe::bytes(&raw.protocol_name),
            raw.protocol_level
        );
        run.send(at, client, &raw.to_packet().to_bytes()).await?;
        run.client_mut(client).keep_alive = Some(raw.keep_alive);
        if spec.refusal_not_applicable
            && let Some(refusal) = refusal(run, client).await
        {
            return Err(StepError::NotApplicable(format!(
                "the broker does not accept a CONNECT with {asked}: it {refusal}"
            )));
        }
        if let Some(code) = spec.connack {
            let m = Matcher {
                packet: Some(PacketType::ConnAck),
                code: Some(code),
                session_present: spec.session_present,
                ..Matcher::default()
            };
            run.expect_one(at, client, &m, DEFAULT_WITHIN, false)
                .await?;
        }
        Ok(())
    }

    fn batched(&self) -> Batched<'_> {
        Batched::sends(&self.client, self.spec.connack.is_some() || self.spec.refusal_not_applicable)
    }
}

/// How the broker refused the CONNECT just sent, if it did: the first
/// answer is a CONNACK with a non-zero code, or the close. Leaves the
/// answer unconsumed for the CONNACK check that follows. After a refusing
/// CONNACK the server must close [MQTT-3.2.2-5]; the close is awaited
/// (boundedly) so the transcript shows the whole refusal.
async fn refusal(run: &mut Run<'_>, client: &str) -> Option<String> {
    let deadline = Instant::now() + DEFAULT_WITHIN;
    let i = run.wait_unconsumed(client, deadline, false).await?;
    let refusal = match &run.arrival(client, i)?.event {
        Event::Closed { reason, .. } => {
            return Some(format!("closed the connection ({reason})"));
        }
        Event::Packet {
            packet: Packet::ConnAck(c),
            ..
        } if c.code.as_u8() != 0 => format!(
            "answered CONNACK 0x{:02x} ({})",
            c.code.as_u8(),
            c.code.describe()
        ),
        _ => return None,
    };
    while !run.clients.get(client).is_some_and(|s| s.closed) {
        if !run.pull(client, deadline).await {
            break;
        }
    }
    Some(refusal)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    fn spec(step: &str) -> ConnectSpec {
        *parse_ok::<Connect>(step).spec
    }

    #[test]
    fn defaults_are_a_plain_clean_connect() {
        let s = spec("{ connect = \"a\" }");
        assert!(s.clean_session && s.credentials && s.client_cert && !s.tls);
        assert_eq!((s.protocol_level, s.keep_alive, s.connack), (4, 60, None));
        assert_eq!(
            s.client_id,
            Some(BytesSpec::Text(Template("{id}a".into())))
        );
    }

    #[test]
    fn will_needs_a_topic() {
        let e = parse_err("{ connect = \"a\", will = { payload = \"x\" } }");
        assert_eq!(e, "`will` needs `topic` or `topic_hex`");
        let s = spec("{ connect = \"a\", will = { topic = \"{t}/w\", qos = 1, retain = true } }");
        let w = s.will.unwrap();
        assert!(w.retain && w.qos == 1);
    }

    #[test]
    fn contradictory_fields_are_refused() {
        for (step, message) in [
            (
                "{ connect = \"a\", no_client_id = true, client_id = \"x\" }",
                "`no_client_id` leaves the field out; drop `client_id`",
            ),
            (
                "{ connect = \"a\", session_present = true }",
                "`session_present` goes with `connack = CODE`",
            ),
            (
                "{ connect = \"a\", connack = 1, refusal_not_applicable = true }",
                "`refusal_not_applicable` goes with `connack = 0`",
            ),
        ] {
            assert_eq!(parse_err(step), message, "{step}");
        }
    }
}
