//! `send = "a"`: writes exactly the bytes given (`hex`), or a packet built
//! by type (`packet = "pingreq"`) and bent as asked: another packet id,
//! forced fixed-header flags, a replacement body, a false Remaining Length.
//! This is how malformed-packet scenarios speak.

use bytes::Bytes;
use mqtt_codec::PacketType;
use mqtt_codec::raw::RemainingLength;
use serde::Deserialize;

use super::{ActionDef, Batched, StepTable};
use crate::engine::{Run, StepAt, StepResult, simple_packet};
use crate::model::IdSpec;
use crate::script::error::ScriptError;
use crate::script::args::IdArg;
use crate::script::values::{hex, packet_type};

/// The fields of a `send` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    hex: Option<String>,
    packet: Option<String>,
    packet_id: Option<IdArg>,
    flags: Option<u8>,
    body_hex: Option<String>,
    remaining_length: Option<usize>,
}

/// What a `send` step writes.
#[derive(Debug, Clone)]
pub enum SendSpec {
    /// Exactly these bytes.
    Hex(Vec<u8>),
    /// A packet built by type, then bent as asked.
    Packet {
        /// The type.
        packet: PacketType,
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

/// Send a small packet by type, or raw bytes.
#[derive(Debug, Clone)]
pub struct Send {
    /// Client name.
    pub client: String,
    /// What to send.
    pub what: SendSpec,
}

impl ActionDef for Send {
    const NAME: &'static str = "send";
    const CHECKS: bool = false;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let loc = &step.at;
        let what = match (a.hex, a.packet) {
            (Some(h), None) => {
                if a.packet_id.is_some()
                    || a.flags.is_some()
                    || a.body_hex.is_some()
                    || a.remaining_length.is_some()
                {
                    return Err(step.error(
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
                return Err(step.error(
                    "`send` needs exactly one of `hex` (raw bytes) or `packet` (a type name)",
                ));
            }
        };
        Ok(Send { client, what })
    }

    /// Sends raw bytes, or a packet built by type and bent as asked.
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let bytes = match &self.what {
            SendSpec::Hex(b) => Bytes::copy_from_slice(b),
            SendSpec::Packet {
                packet,
                packet_id,
                flags,
                body,
                remaining_length,
            } => {
                let id = packet_id
                    .as_ref()
                    .map(|s| run.resolve_id(at, s))
                    .transpose()?;
                let mut raw = simple_packet(*packet, id);
                if let Some(f) = flags {
                    raw = raw.with_flags(*f);
                }
                if let Some(b) = body {
                    raw = raw.with_body(b.clone());
                }
                if let Some(rl) = remaining_length {
                    raw = raw.with_remaining_length(RemainingLength::Value(*rl));
                }
                raw.to_bytes()
            }
        };
        run.send(at, &self.client, &bytes).await
    }

    fn batched(&self) -> Batched<'_> {
        Batched::sends(&self.client, false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn hex_or_packet() {
        let s: Send = parse_ok("{ send = \"a\", hex = \"c0 00\" }");
        assert!(matches!(s.what, SendSpec::Hex(b) if b == [0xc0, 0x00]));
        let s: Send = parse_ok("{ send = \"a\", packet = \"pingreq\", flags = 4 }");
        assert!(matches!(
            s.what,
            SendSpec::Packet {
                packet: PacketType::PingReq,
                flags: Some(4),
                ..
            }
        ));
    }

    #[test]
    fn hex_takes_no_packet_fields() {
        let e = parse_err("{ send = \"a\", hex = \"c0 00\", flags = 1 }");
        assert!(e.starts_with("`hex` sends exactly its bytes"), "{e}");
        let e = parse_err("{ send = \"a\" }");
        assert!(e.starts_with("`send` needs exactly one of"), "{e}");
        let e = parse_err("{ send = \"a\", packet = \"ping\" }");
        assert!(e.starts_with("unknown packet type \"ping\""), "{e}");
    }
}
