//! One step of a script: an inline table with exactly one action key.
//!
//! The action key is found first, then the rest of the table is deserialized
//! into that action's argument struct with `deny_unknown_fields`, so a key
//! that does not belong to the action is an error naming the keys that do.

use std::collections::BTreeSet;
use std::time::Duration;

use broker::codec::PacketType;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::template::check_template;
use super::{ScriptError, line_of};
use crate::model::{
    Action, BytesSpec, ConnectSpec, DEFAULT_WITHIN, IdSpec, Location, Matcher, SendSpec, Step,
    Template, WillSpec,
};

/// The action keys, in the order the README documents them.
pub const ACTIONS: &[&str] = &[
    "open",
    "connect",
    "subscribe",
    "unsubscribe",
    "publish",
    "send",
    "expect",
    "expect_all",
    "expect_nothing",
    "expect_closed",
    "disconnect",
    "drop",
    "wait",
    "repeat",
    "one_of",
];

pub(super) struct Context<'a> {
    pub file: &'a str,
    pub source: &'a str,
    pub uses_tls: bool,
    pub clients: BTreeSet<String>,
}

pub(super) fn parse_steps(
    ctx: &mut Context<'_>,
    steps: Vec<Spanned<toml::Table>>,
) -> Result<Vec<Step>, ScriptError> {
    steps
        .into_iter()
        .map(|s| {
            let location = Location {
                file: ctx.file.to_owned(),
                line: line_of(ctx.source, s.span().start),
            };
            parse_step(ctx, location, s.into_inner())
        })
        .collect()
}

fn parse_nested(
    ctx: &mut Context<'_>,
    location: &Location,
    value: toml::Value,
    what: &str,
) -> Result<Vec<Step>, ScriptError> {
    let toml::Value::Array(items) = value else {
        return Err(ScriptError::new(
            location.clone(),
            format!("{what} must be an array of step tables"),
        ));
    };
    items
        .into_iter()
        .map(|item| match item {
            toml::Value::Table(t) => parse_step(ctx, location.clone(), t),
            other => Err(ScriptError::new(
                location.clone(),
                format!("{what} must hold step tables, found {}", other.type_str()),
            )),
        })
        .collect()
}

fn args<T: DeserializeOwned>(
    location: &Location,
    action: &str,
    table: toml::Table,
) -> Result<T, ScriptError> {
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            ScriptError::new(
                location.clone(),
                format!("in `{action}` step: {}", e.message().trim_end()),
            )
        })
}

fn client_name(
    location: &Location,
    action: &str,
    value: toml::Value,
) -> Result<String, ScriptError> {
    match value {
        toml::Value::String(s)
            if !s.is_empty()
                && s.len() <= 8
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) =>
        {
            Ok(s)
        }
        other => Err(ScriptError::new(
            location.clone(),
            format!(
                "`{action}` names the client it acts for: 1 to 8 lowercase letters or digits, found {other}"
            ),
        )),
    }
}

fn parse_step(
    ctx: &mut Context<'_>,
    location: Location,
    mut table: toml::Table,
) -> Result<Step, ScriptError> {
    let present: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| table.contains_key(*a))
        .collect();
    let action = match present.as_slice() {
        [one] => *one,
        [] => {
            let keys: Vec<&str> = table.keys().map(String::as_str).collect();
            return Err(ScriptError::new(
                location,
                format!(
                    "step has no action (keys: {}); start it with one of: {}",
                    keys.join(", "),
                    ACTIONS.join(", ")
                ),
            ));
        }
        many => {
            return Err(ScriptError::new(
                location,
                format!(
                    "step has several actions ({}); split it into one step each",
                    many.join(", ")
                ),
            ));
        }
    };
    let value = table.remove(action).unwrap_or(toml::Value::Boolean(false));
    let loc = &location;
    let action = match action {
        "open" => {
            let client = client_name(loc, action, value)?;
            let a: OpenArgs = args(loc, action, table)?;
            ctx.uses_tls |= a.tls;
            ctx.clients.insert(client.clone());
            Action::Open { client, tls: a.tls }
        }
        "connect" => {
            let client = client_name(loc, action, value)?;
            let a: ConnectArgs = args(loc, action, table)?;
            ctx.uses_tls |= a.tls;
            ctx.clients.insert(client.clone());
            Action::Connect {
                spec: Box::new(a.into_spec(loc, &client)?),
                client,
            }
        }
        "subscribe" => {
            let client = client_name(loc, action, value)?;
            let a: SubscribeArgs = args(loc, action, table)?;
            let mut filters = Vec::new();
            match (a.filter, a.filter_hex, a.filters) {
                (Some(f), None, None) => filters.push((text(loc, f)?, a.qos.unwrap_or(0))),
                (None, Some(h), None) => {
                    filters.push((BytesSpec::Hex(hex(loc, &h)?), a.qos.unwrap_or(0)))
                }
                (None, None, Some(list)) => {
                    if a.qos.is_some() {
                        return Err(ScriptError::new(
                            loc.clone(),
                            "`qos` goes with `filter`; with `filters` give [filter, qos] pairs",
                        ));
                    }
                    for (f, q) in list {
                        filters.push((text(loc, f)?, q));
                    }
                }
                _ => {
                    return Err(ScriptError::new(
                        loc.clone(),
                        "`subscribe` needs exactly one of `filter`, `filter_hex` or `filters`",
                    ));
                }
            }
            Action::Subscribe {
                client,
                packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
                filters,
                flags: a.flags,
                granted: a.granted,
            }
        }
        "unsubscribe" => {
            let client = client_name(loc, action, value)?;
            let a: UnsubscribeArgs = args(loc, action, table)?;
            let filters = match (a.filter, a.filter_hex, a.filters) {
                (Some(f), None, None) => vec![text(loc, f)?],
                (None, Some(h), None) => vec![BytesSpec::Hex(hex(loc, &h)?)],
                (None, None, Some(list)) => list
                    .into_iter()
                    .map(|f| text(loc, f))
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ScriptError::new(
                        loc.clone(),
                        "`unsubscribe` needs exactly one of `filter`, `filter_hex` or `filters`",
                    ));
                }
            };
            Action::Unsubscribe {
                client,
                packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
                filters,
                flags: a.flags,
                ack: a.ack,
            }
        }
        "publish" => {
            let client = client_name(loc, action, value)?;
            let a: PublishArgs = args(loc, action, table)?;
            let topic = one_bytes(loc, "topic", a.topic, a.topic_hex, None)?.ok_or_else(|| {
                ScriptError::new(loc.clone(), "`publish` needs `topic` or `topic_hex`")
            })?;
            let payload = one_bytes(loc, "payload", a.payload, a.payload_hex, a.payload_size)?
                .unwrap_or(BytesSpec::Hex(Vec::new()));
            if a.ack && a.qos == 0 {
                return Err(ScriptError::new(loc.clone(), "`ack` needs `qos` 1 or 2"));
            }
            Action::Publish {
                client,
                topic,
                payload,
                qos: a.qos,
                retain: a.retain,
                dup: a.dup,
                packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
                flags: a.flags,
                ack: a.ack,
            }
        }
        "send" => {
            let client = client_name(loc, action, value)?;
            let a: SendArgs = args(loc, action, table)?;
            let what = match (a.hex, a.packet) {
                (Some(h), None) => {
                    if a.packet_id.is_some()
                        || a.flags.is_some()
                        || a.body_hex.is_some()
                        || a.remaining_length.is_some()
                    {
                        return Err(ScriptError::new(
                            loc.clone(),
                            "`hex` sends exactly its bytes; `packet_id`, `flags`, `body_hex` and `remaining_length` go with `packet`",
                        ));
                    }
                    SendSpec::Hex(hex(loc, &h)?)
                }
                (None, Some(p)) => SendSpec::Packet {
                    packet: packet_type(loc, &p)?,
                    packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
                    flags: a.flags,
                    body: a.body_hex.map(|h| hex(loc, &h)).transpose()?,
                    remaining_length: a.remaining_length,
                },
                _ => {
                    return Err(ScriptError::new(
                        loc.clone(),
                        "`send` needs exactly one of `hex` (raw bytes) or `packet` (a type name)",
                    ));
                }
            };
            Action::Send { client, what }
        }
        "expect" => {
            let client = client_name(loc, action, value)?;
            let a: MatcherArgs = args(loc, action, table)?;
            a.forbid(loc, action, &["for_ms"])?;
            if a.packet.is_none() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`expect` needs `packet` (connack, publish, puback, ..., or \"any\")",
                ));
            }
            let within = a.within();
            let ack = a.ack;
            Action::Expect {
                client,
                matcher: a.into_matcher(loc)?,
                within,
                ack,
            }
        }
        "expect_all" => {
            let client = client_name(loc, action, value)?;
            let a: ExpectAllArgs = args(loc, action, table)?;
            if a.packets.is_empty() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`expect_all` needs at least one entry in `packets`",
                ));
            }
            let matchers = a
                .packets
                .into_iter()
                .map(|m| {
                    m.forbid(loc, "expect_all packets", &["for_ms", "within_ms", "ack"])?;
                    m.into_matcher(loc)
                })
                .collect::<Result<_, _>>()?;
            Action::ExpectAll {
                client,
                matchers,
                within: a.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis),
            }
        }
        "expect_nothing" => {
            let client = client_name(loc, action, value)?;
            let a: MatcherArgs = args(loc, action, table)?;
            a.forbid(loc, action, &["within_ms", "ack"])?;
            let Some(ms) = a.for_ms else {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`expect_nothing` needs `for_ms`",
                ));
            };
            let matcher = if a.is_empty_matcher() {
                None
            } else {
                Some(a.into_matcher(loc)?)
            };
            Action::ExpectNothing {
                client,
                matcher,
                duration: Duration::from_millis(ms),
            }
        }
        "expect_closed" => {
            let client = client_name(loc, action, value)?;
            let a: WithinArgs = args(loc, action, table)?;
            Action::ExpectClosed {
                client,
                within: a.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis),
            }
        }
        "disconnect" => {
            let client = client_name(loc, action, value)?;
            let a: DisconnectArgs = args(loc, action, table)?;
            Action::Disconnect {
                client,
                close: a.close.unwrap_or(true),
            }
        }
        "drop" => {
            let client = client_name(loc, action, value)?;
            let _: NoArgs = args(loc, action, table)?;
            Action::Drop { client }
        }
        "wait" => {
            let _: NoArgs = args(loc, action, table)?;
            match value.as_integer() {
                Some(ms) if ms >= 0 => Action::Wait(Duration::from_millis(ms.unsigned_abs())),
                _ => {
                    return Err(ScriptError::new(
                        loc.clone(),
                        "`wait` takes milliseconds, e.g. { wait = 500 }",
                    ));
                }
            }
        }
        "repeat" => {
            let times = match value.as_integer() {
                Some(n) if (1..=10_000).contains(&n) => n as u32,
                _ => {
                    return Err(ScriptError::new(
                        loc.clone(),
                        "`repeat` takes a count from 1 to 10000",
                    ));
                }
            };
            let steps_value = table
                .remove("steps")
                .ok_or_else(|| ScriptError::new(loc.clone(), "`repeat` needs `steps = [ ... ]`"))?;
            let _: NoArgs = args(loc, action, table)?;
            let steps = parse_nested(ctx, loc, steps_value, "`repeat` steps")?;
            Action::Repeat { times, steps }
        }
        "one_of" => {
            let _: NoArgs = args(loc, action, table)?;
            let toml::Value::Array(branches) = value else {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`one_of` takes an array of branches, each an array of expectation steps",
                ));
            };
            if branches.len() < 2 {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`one_of` needs at least two branches",
                ));
            }
            let mut parsed = Vec::new();
            for b in branches {
                let steps = parse_nested(ctx, loc, b, "a `one_of` branch")?;
                if steps.is_empty() {
                    return Err(ScriptError::new(loc.clone(), "a `one_of` branch is empty"));
                }
                if let Some(s) = steps.iter().find(|s| !s.action.is_expectation()) {
                    return Err(ScriptError::new(
                        loc.clone(),
                        format!(
                            "a `one_of` branch may hold only expect, expect_all, expect_nothing and expect_closed (without ack), found `{}`",
                            s.action.keyword()
                        ),
                    ));
                }
                parsed.push(steps);
            }
            Action::OneOf(parsed)
        }
        other => {
            return Err(ScriptError::new(
                location,
                format!("unknown action {other}"),
            ));
        }
    };
    Ok(Step { location, action })
}

fn text(loc: &Location, s: String) -> Result<BytesSpec, ScriptError> {
    check_template(&s).map_err(|m| ScriptError::new(loc.clone(), m))?;
    Ok(BytesSpec::Text(Template(s)))
}

fn template(loc: &Location, s: String) -> Result<Template, ScriptError> {
    check_template(&s).map_err(|m| ScriptError::new(loc.clone(), m))?;
    Ok(Template(s))
}

/// Parses hex digits, ignoring whitespace, `_` and `:` between them.
pub(crate) fn hex(loc: &Location, s: &str) -> Result<Vec<u8>, ScriptError> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'_' && *b != b':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(ScriptError::new(
            loc.clone(),
            format!("hex {s:?} has an odd number of digits"),
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| ScriptError::new(loc.clone(), format!("{s:?} is not hex")))
        })
        .collect()
}

fn one_bytes(
    loc: &Location,
    field: &str,
    text_value: Option<String>,
    hex_value: Option<String>,
    size: Option<usize>,
) -> Result<Option<BytesSpec>, ScriptError> {
    match (text_value, hex_value, size) {
        (None, None, None) => Ok(None),
        (Some(t), None, None) => text(loc, t).map(Some),
        (None, Some(h), None) => Ok(Some(BytesSpec::Hex(hex(loc, &h)?))),
        (None, None, Some(n)) => Ok(Some(BytesSpec::Filler(n))),
        _ => Err(ScriptError::new(
            loc.clone(),
            format!(
                "give only one of `{field}`, `{field}_hex`{}",
                if field == "payload" {
                    ", `payload_size`"
                } else {
                    ""
                }
            ),
        )),
    }
}

pub(crate) fn packet_type(loc: &Location, name: &str) -> Result<PacketType, ScriptError> {
    (1..=14)
        .filter_map(PacketType::from_nibble)
        .find(|t| t.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ScriptError::new(
                loc.clone(),
                format!(
                    "unknown packet type {name:?}; use connect, connack, publish, puback, pubrec, pubrel, pubcomp, subscribe, suback, unsubscribe, unsuback, pingreq, pingresp or disconnect"
                ),
            )
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenArgs {
    #[serde(default)]
    tls: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithinArgs {
    within_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectArgs {
    close: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdArg {
    Num(u16),
    Var(String),
}

impl IdArg {
    fn into_spec(self, loc: &Location) -> Result<IdSpec, ScriptError> {
        match self {
            IdArg::Num(n) => Ok(IdSpec::Literal(n)),
            IdArg::Var(v) => match v.strip_prefix('$') {
                Some(name)
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Ok(IdSpec::Var(name.to_owned()))
                }
                None if v.contains('{') => {
                    check_template(&v).map_err(|m| ScriptError::new(loc.clone(), m))?;
                    Ok(IdSpec::Template(Template(v)))
                }
                _ => Err(ScriptError::new(
                    loc.clone(),
                    format!(
                        "packet_id {v:?} must be a number, a variable like \"$p\", or a placeholder like \"{{n}}\""
                    ),
                )),
            },
        }
    }
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectArgs {
    #[serde(default)]
    tls: bool,
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
}

impl ConnectArgs {
    fn into_spec(self, loc: &Location, client: &str) -> Result<ConnectSpec, ScriptError> {
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
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeArgs {
    filter: Option<String>,
    filter_hex: Option<String>,
    qos: Option<u8>,
    filters: Option<Vec<(String, u8)>>,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    granted: Option<Vec<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsubscribeArgs {
    filter: Option<String>,
    filter_hex: Option<String>,
    filters: Option<Vec<String>>,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    #[serde(default)]
    ack: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishArgs {
    topic: Option<String>,
    topic_hex: Option<String>,
    payload: Option<String>,
    payload_hex: Option<String>,
    payload_size: Option<usize>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    #[serde(default)]
    dup: bool,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    #[serde(default)]
    ack: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendArgs {
    hex: Option<String>,
    packet: Option<String>,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    body_hex: Option<String>,
    remaining_length: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectAllArgs {
    packets: Vec<MatcherArgs>,
    within_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatcherArgs {
    packet: Option<String>,
    code: Option<u8>,
    session_present: Option<bool>,
    topic: Option<String>,
    payload: Option<String>,
    payload_hex: Option<String>,
    payload_size: Option<usize>,
    qos: Option<u8>,
    retain: Option<bool>,
    dup: Option<bool>,
    packet_id: Option<IdArg>,
    packet_id_not: Option<Vec<IdArg>>,
    return_codes: Option<Vec<u8>>,
    within_ms: Option<u64>,
    for_ms: Option<u64>,
    #[serde(default)]
    ack: bool,
}

impl MatcherArgs {
    fn forbid(&self, loc: &Location, action: &str, fields: &[&str]) -> Result<(), ScriptError> {
        for f in fields {
            let set = match *f {
                "for_ms" => self.for_ms.is_some(),
                "within_ms" => self.within_ms.is_some(),
                "ack" => self.ack,
                _ => false,
            };
            if set {
                return Err(ScriptError::new(
                    loc.clone(),
                    format!("`{f}` does not belong in `{action}`"),
                ));
            }
        }
        Ok(())
    }

    fn within(&self) -> Duration {
        self.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis)
    }

    fn is_empty_matcher(&self) -> bool {
        self.packet.is_none()
            && self.code.is_none()
            && self.session_present.is_none()
            && self.topic.is_none()
            && self.payload.is_none()
            && self.payload_hex.is_none()
            && self.payload_size.is_none()
            && self.qos.is_none()
            && self.retain.is_none()
            && self.dup.is_none()
            && self.packet_id.is_none()
            && self.packet_id_not.is_none()
            && self.return_codes.is_none()
    }

    fn into_matcher(self, loc: &Location) -> Result<Matcher, ScriptError> {
        let packet = match self.packet.as_deref() {
            None | Some("any") => None,
            Some(p) => Some(packet_type(loc, p)?),
        };
        Ok(Matcher {
            packet,
            code: self.code,
            session_present: self.session_present,
            topic: self.topic.map(|t| template(loc, t)).transpose()?,
            payload: one_bytes(
                loc,
                "payload",
                self.payload,
                self.payload_hex,
                self.payload_size,
            )?,
            qos: self.qos,
            retain: self.retain,
            dup: self.dup,
            packet_id: self.packet_id.map(|i| i.into_spec(loc)).transpose()?,
            packet_id_not: self
                .packet_id_not
                .unwrap_or_default()
                .into_iter()
                .map(|i| i.into_spec(loc))
                .collect::<Result<_, _>>()?,
            return_codes: self.return_codes,
        })
    }
}
