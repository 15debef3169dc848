//! `subscribe = "a"`: sends SUBSCRIBE (any QoS byte, any flags, even no
//! filter at all); with `require` or `grants`, expects the SUBACK with its
//! packet id and judges the grants.
//!
//! A server may grant less than asked or refuse a filter [MQTT-3.8.4-6], so
//! a step says the least it can work with (`require`): a lower grant makes
//! the scenario not applicable, a grant above the request or codes that do
//! not line up with the filters [MQTT-3.9.3-1] fail it. `grants` captures
//! each grant into a variable for `qos = "min(N, $g)"` expectations.

use mqtt_codec::raw::RawSubscribe;
use mqtt_codec::{Packet, PacketType};
use serde::Deserialize;

use super::{ActionDef, Batched, StepTable};
use crate::engine::{Judgement, Requested, Run, StepAt, StepError, StepResult, bytes_of, judge};
use crate::model::{BytesSpec, GrantSpec, IdSpec};
use crate::script::error::ScriptError;
use crate::script::args::IdArg;
use crate::script::qos::grant_spec;
use crate::script::values::{hex, text};

/// The fields of a `subscribe` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    filter: Option<String>,
    filter_hex: Option<String>,
    qos: Option<u8>,
    filters: Option<Vec<(String, u8)>>,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    /// The old exact check, refused with a message saying what replaced it.
    granted: Option<toml::Value>,
    require: Option<Vec<u8>>,
    grants: Option<Vec<String>>,
}

/// Send SUBSCRIBE; maybe expect its SUBACK.
#[derive(Debug, Clone)]
pub struct Subscribe {
    /// Client name.
    pub client: String,
    /// Packet id; auto when `None`.
    pub packet_id: Option<IdSpec>,
    /// Filters and requested-QoS bytes (any byte allowed).
    pub filters: Vec<(BytesSpec, u8)>,
    /// Forced fixed-header flags.
    pub flags: Option<u8>,
    /// Expect a SUBACK with the same id and judge its grants.
    pub grants: Option<GrantSpec>,
}

impl ActionDef for Subscribe {
    const NAME: &'static str = "subscribe";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let loc = &step.at;
        let mut filters = Vec::new();
        match (a.filter, a.filter_hex, a.filters) {
            (Some(f), None, None) => filters.push((text(loc, f)?, a.qos.unwrap_or(0))),
            (None, Some(h), None) => {
                filters.push((BytesSpec::Hex(hex(loc, &h)?), a.qos.unwrap_or(0)))
            }
            (None, None, Some(list)) => {
                if a.qos.is_some() {
                    return Err(step.error(
                        "`qos` goes with `filter`; with `filters` give [filter, qos] pairs",
                    ));
                }
                for (f, q) in list {
                    filters.push((text(loc, f)?, q));
                }
            }
            _ => {
                return Err(step.error(
                    "`subscribe` needs exactly one of `filter`, `filter_hex` or `filters`",
                ));
            }
        }
        if a.granted.is_some() {
            return Err(step.error(
                "`granted` is gone: a server may grant less than asked [MQTT-3.8.4-6], so give `require = [lowest QoS the scenario needs, per filter]` (a lower grant makes the scenario not applicable), and check exact codes, such as a refusal, with an `expect` step on the SUBACK",
            ));
        }
        // Isolation: a filter without `{t}` or `{u}` could take other
        // scenarios' messages, and its subscription make a broker's stray
        // deliveries to them depend on what runs beside it. (An invalid
        // filter, which the broker must refuse, is a malformed-packet test.)
        if !step.cx.exclusive
            && let Some(f) = filters.iter().find_map(|(f, _)| match f {
                BytesSpec::Text(t)
                    if !t.0.contains("{t}")
                        && !t.0.contains("{u}")
                        && mqtt_codec::topic::TopicFilter::new(&t.0).is_ok() =>
                {
                    Some(&t.0)
                }
                _ => None,
            })
        {
            return Err(step.error(format!(
                "filter {f:?} could match other scenarios' topics, which would make this scenario and the ones beside it depend on each other: put `{{t}}` or `{{u}}` in it, or mark the scenario `exclusive = true` (it then runs alone)"
            )));
        }
        let requested: Vec<u8> = filters.iter().map(|(_, q)| *q).collect();
        Ok(Subscribe {
            client,
            packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
            grants: grant_spec(loc, &requested, a.require, a.grants)?,
            filters,
            flags: a.flags,
        })
    }

    /// Sends SUBSCRIBE; with `grants`, expects its SUBACK and judges the
    /// codes (see [`crate::engine::judge`]): a violation fails the step, a
    /// grant below what the scenario needs makes it not applicable, and the
    /// rest binds the captured grants.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let client = self.client.as_str();
        let id = run.id_for(at, client, self.packet_id.as_ref())?;
        let raw = RawSubscribe {
            packet_id: id,
            filters: self
                .filters
                .iter()
                .map(|(f, q)| (bytes_of(f, &run.ph), *q))
                .collect(),
        };
        let requested: Vec<Requested> = raw
            .filters
            .iter()
            .map(|(f, q)| Requested {
                shown: crate::describe::bytes(f),
                qos: *q,
            })
            .collect();
        let mut packet = raw.to_packet();
        if let Some(f) = self.flags {
            packet = packet.with_flags(f);
        }
        run.send(at, client, &packet.to_bytes()).await?;
        let Some(spec) = &self.grants else {
            return Ok(());
        };
        let packet = run.expect_ack(at, client, PacketType::SubAck, id).await?;
        let Some(Packet::SubAck(suback)) = packet else {
            return Err(StepError::Harness(
                "a SUBACK matcher let another packet through".into(),
            ));
        };
        let codes: Vec<u8> = suback.return_codes.iter().map(|c| c.as_u8()).collect();
        match judge(&requested, &codes, spec) {
            Judgement::Usable(bind) => {
                run.vars.extend(bind);
                Ok(())
            }
            Judgement::NotApplicable(reason) => Err(StepError::NotApplicable(reason)),
            Judgement::Violation(what) => Err(run.fail(
                at,
                Some(client),
                format!(
                    "SUBACK(id={id}) with one code per filter, each granting at most the QoS asked for"
                ),
                what,
            )),
        }
    }

    fn batched(&self) -> Batched<'_> {
        Batched::sends(&self.client, self.grants.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn one_filter_or_a_list() {
        let s: Subscribe = parse_ok("{ subscribe = \"a\", filter = \"{t}/x\", qos = 1 }");
        assert_eq!(s.filters.len(), 1);
        assert_eq!(s.filters[0].1, 1);
        assert!(s.grants.is_none(), "no SUBACK is awaited without require/grants");
        let s: Subscribe = parse_ok("{ subscribe = \"a\", filters = [] }");
        assert!(s.filters.is_empty(), "an empty SUBSCRIBE is a malformed-packet test");
        let e = parse_err("{ subscribe = \"a\", filters = [[\"x\", 1]], qos = 1 }");
        assert!(e.starts_with("`qos` goes with `filter`"), "{e}");
        let e = parse_err("{ subscribe = \"a\" }");
        assert!(e.contains("needs exactly one of"), "{e}");
    }

    #[test]
    fn filters_stay_within_the_scenarios_own_topics() {
        let e = parse_err("{ subscribe = \"a\", filters = [[\"{t}/x\", 0], [\"#\", 0]] }");
        assert!(
            e.starts_with("filter \"#\" could match other scenarios' topics"),
            "{e}"
        );
        // `{u}` anywhere ties the filter to this scenario; raw bytes and
        // invalid filters are malformed-packet tests the rule leaves alone.
        let _: Subscribe = parse_ok("{ subscribe = \"a\", filter = \"+/{u}/+\" }");
        let _: Subscribe = parse_ok("{ subscribe = \"a\", filter_hex = \"23\" }");
        let _: Subscribe = parse_ok("{ subscribe = \"a\", filter = \"\" }");
    }

    #[test]
    fn require_and_grants_make_a_grant_check() {
        let s: Subscribe = parse_ok(
            "{ subscribe = \"a\", filters = [[\"{t}/x\", 2], [\"{t}/y\", 1]], require = [1, 0], grants = [\"$g\", \"$h\"] }",
        );
        let g = s.grants.unwrap();
        assert_eq!(g.require, vec![1, 0]);
        assert_eq!(g.capture, vec![Some("g".into()), Some("h".into())]);
    }
}
