//! `unsubscribe = "a"`: sends UNSUBSCRIBE (any flags, even no filter); with
//! `ack`, expects the UNSUBACK carrying its packet id [MQTT-3.10.4-4].

use mqtt_codec::PacketType;
use mqtt_codec::raw::RawUnsubscribe;
use serde::Deserialize;

use super::{ActionDef, Batched, StepTable};
use crate::engine::{Run, StepAt, StepResult, bytes_of};
use crate::model::{BytesSpec, IdSpec};
use crate::script::error::ScriptError;
use crate::script::args::IdArg;
use crate::script::values::{hex, text};

/// The fields of an `unsubscribe` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    filter: Option<String>,
    filter_hex: Option<String>,
    filters: Option<Vec<String>>,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    #[serde(default)]
    ack: bool,
}

/// Send UNSUBSCRIBE; maybe expect its UNSUBACK.
#[derive(Debug, Clone)]
pub struct Unsubscribe {
    /// Client name.
    pub client: String,
    /// Packet id; auto when `None`.
    pub packet_id: Option<IdSpec>,
    /// Filters.
    pub filters: Vec<BytesSpec>,
    /// Forced fixed-header flags.
    pub flags: Option<u8>,
    /// Expect an UNSUBACK with the same id.
    pub ack: bool,
}

impl ActionDef for Unsubscribe {
    const NAME: &'static str = "unsubscribe";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let loc = &step.at;
        let filters = match (a.filter, a.filter_hex, a.filters) {
            (Some(f), None, None) => vec![text(loc, f)?],
            (None, Some(h), None) => vec![BytesSpec::Hex(hex(loc, &h)?)],
            (None, None, Some(list)) => list
                .into_iter()
                .map(|f| text(loc, f))
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(step.error(
                    "`unsubscribe` needs exactly one of `filter`, `filter_hex` or `filters`",
                ));
            }
        };
        Ok(Unsubscribe {
            client,
            packet_id: a.packet_id.map(|i| i.into_spec(loc)).transpose()?,
            filters,
            flags: a.flags,
            ack: a.ack,
        })
    }

    /// Sends UNSUBSCRIBE; with `ack`, expects its UNSUBACK.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let client = self.client.as_str();
        let id = run.id_for(at, client, self.packet_id.as_ref())?;
        let raw = RawUnsubscribe {
            packet_id: id,
            filters: self.filters.iter().map(|f| bytes_of(f, &run.ph)).collect(),
        };
        let mut packet = raw.to_packet();
        if let Some(f) = self.flags {
            packet = packet.with_flags(f);
        }
        run.send(at, client, &packet.to_bytes()).await?;
        if self.ack {
            run.expect_ack(at, client, PacketType::UnsubAck, id).await?;
        }
        Ok(())
    }

    fn batched(&self) -> Batched<'_> {
        Batched::sends(&self.client, self.ack)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn filters_and_ack() {
        let u: Unsubscribe =
            parse_ok("{ unsubscribe = \"a\", filters = [\"{t}/x\", \"{t}/y\"], ack = true }");
        assert_eq!(u.filters.len(), 2);
        assert!(u.ack && u.packet_id.is_none());
        let e = parse_err("{ unsubscribe = \"a\", filter = \"x\", filters = [] }");
        assert!(e.contains("needs exactly one of"), "{e}");
    }
}
