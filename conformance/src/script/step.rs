//! One step of a script: an inline table with exactly one action key.
//!
//! The action key is found first, then the rest of the table is deserialized
//! into that action's argument struct with `deny_unknown_fields`, so a key
//! that does not belong to the action is an error naming the keys that do.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;

use super::args::{
    BatchArgs, ConnectArgs, DisconnectArgs, ExpectAllArgs, ExpectClosedArgs, MatcherArgs, NoArgs,
    OpenArgs, PublishArgs, SendArgs, SubscribeArgs, UnsubscribeArgs,
};
use super::values::{hex, one_bytes, packet_type, text};
use super::{ScriptError, line_of};
use crate::model::{Action, BytesSpec, DEFAULT_WITHIN, Location, SendSpec, Step};

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
    "batch",
];

pub(super) struct Context<'a> {
    pub file: &'a str,
    pub source: &'a str,
    pub uses_tls: bool,
    /// A step leaves the client certificate out on purpose.
    pub uses_client_cert: bool,
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
            let client_cert = check_client_cert(ctx, loc, a.tls, a.client_cert)?;
            ctx.uses_tls |= a.tls;
            ctx.clients.insert(client.clone());
            Action::Open {
                client,
                tls: a.tls,
                client_cert,
            }
        }
        "connect" => {
            let client = client_name(loc, action, value)?;
            let a: ConnectArgs = args(loc, action, table)?;
            check_client_cert(ctx, loc, a.tls, a.client_cert)?;
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
            if a.granted.is_some() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`granted` is gone: a server may grant less than asked [MQTT-3.8.4-6], so give `require = [lowest QoS the scenario needs, per filter]` (a lower grant makes the scenario not applicable), and check exact codes, such as a refusal, with an `expect` step on the SUBACK",
                ));
            }
            let requested: Vec<u8> = filters.iter().map(|(_, q)| *q).collect();
            Action::Subscribe {
                client,
                packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
                grants: super::qos::grant_spec(loc, &requested, a.require, a.grants)?,
                filters,
                flags: a.flags,
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
            let a: ExpectClosedArgs = args(loc, action, table)?;
            Action::ExpectClosed {
                client,
                within: a.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis),
                tls_refused: a.tls_refused,
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
        "batch" => {
            let client = client_name(loc, action, value)?;
            let steps_value = table
                .remove("steps")
                .ok_or_else(|| ScriptError::new(loc.clone(), "`batch` needs `steps = [ ... ]`"))?;
            let a: BatchArgs = args(loc, action, table)?;
            if a.chunk == Some(0) {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`chunk` is the number of bytes per write: at least 1",
                ));
            }
            if a.pause_ms.is_some() && a.chunk.is_none() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`pause_ms` goes with `chunk`: without it the batch is one write",
                ));
            }
            let steps = parse_nested(ctx, loc, steps_value, "`batch` steps")?;
            if steps.is_empty() {
                return Err(ScriptError::new(
                    loc.clone(),
                    "`batch` needs at least one step",
                ));
            }
            for s in &steps {
                check_batched(loc, &client, s)?;
            }
            Action::Batch {
                client,
                steps,
                chunk: a.chunk,
                pause: Duration::from_millis(a.pause_ms.unwrap_or(0)),
            }
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

/// A step inside a `batch` must only send, for the batch's own client: its
/// bytes are held back until the batch writes them, so a step that waits
/// for an answer (a CONNACK, SUBACK, PUBACK...) would wait for a reply to
/// something not yet sent.
fn check_batched(loc: &Location, client: &str, step: &Step) -> Result<(), ScriptError> {
    let (who, waits) = match &step.action {
        Action::Connect { client, spec } => (
            client,
            spec.connack.is_some() || spec.refusal_not_applicable,
        ),
        Action::Subscribe { client, grants, .. } => (client, grants.is_some()),
        Action::Unsubscribe { client, ack, .. } | Action::Publish { client, ack, .. } => {
            (client, *ack)
        }
        Action::Send { client, .. } => (client, false),
        Action::Disconnect { client, close } => (client, *close),
        Action::Repeat { steps, .. } => {
            for s in steps {
                check_batched(loc, client, s)?;
            }
            return Ok(());
        }
        other => {
            return Err(ScriptError::new(
                loc.clone(),
                format!(
                    "a `batch` holds only connect, subscribe, unsubscribe, publish, send, disconnect (close = false) and repeat steps of those, found `{}`",
                    other.keyword()
                ),
            ));
        }
    };
    if who != client {
        return Err(ScriptError::new(
            loc.clone(),
            format!(
                "a `batch` for client {client:?} holds a `{}` step for {who:?}: one batch is one connection's bytes",
                step.action.keyword()
            ),
        ));
    }
    if waits {
        return Err(ScriptError::new(
            loc.clone(),
            format!(
                "a `{}` step in a `batch` may not wait for an answer (connack, require, grants, ack, or disconnect's close): its bytes are sent only when the batch ends; check the answers with `expect` steps after the batch",
                step.action.keyword()
            ),
        ));
    }
    Ok(())
}

/// `client_cert` (default true) only means something on TLS; leaving the
/// certificate out is what a mutual-TLS scenario does, so it needs the run
/// to have one (`requires = ["client-cert"]` is added).
fn check_client_cert(
    ctx: &mut Context<'_>,
    loc: &Location,
    tls: bool,
    client_cert: Option<bool>,
) -> Result<bool, ScriptError> {
    match client_cert {
        Some(_) if !tls => Err(ScriptError::new(
            loc.clone(),
            "`client_cert` goes with `tls = true`",
        )),
        Some(false) => {
            ctx.uses_client_cert = true;
            Ok(false)
        }
        _ => Ok(true),
    }
}
