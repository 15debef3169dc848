//! `expect = "a"`: the next packet not yet consumed must match the given
//! fields (waiting up to `within_ms`), so a scenario checks what arrives and
//! in which order. With `ack`, a QoS 1/2 PUBLISH is answered as a receiver:
//! PUBACK; or PUBREC, expect PUBREL, PUBCOMP [MQTT-4.3.2-1],
//! [MQTT-4.3.3-1].

use std::time::Duration;

use mqtt_codec::{Packet, PacketId};

use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult};
use crate::model::Matcher;
use crate::script::error::ScriptError;
use crate::script::args::MatcherArgs;

/// Expect the next packet to match.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Client name.
    pub client: String,
    /// The matcher.
    pub matcher: Matcher,
    /// How long to wait.
    pub within: Duration,
    /// Answer a QoS 1/2 PUBLISH as a receiver (PUBACK; PUBREC, PUBREL, PUBCOMP).
    pub ack: bool,
}

impl ActionDef for Expect {
    const NAME: &'static str = "expect";

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<MatcherArgs>()?;
        a.forbid(&step.at, Self::NAME, &["for_ms"])?;
        if a.packet.is_none() {
            return Err(step.error(
                "`expect` needs `packet` (connack, publish, puback, ..., or \"any\")",
            ));
        }
        let within = a.within();
        let ack = a.ack;
        Ok(Expect {
            client,
            matcher: a.into_matcher(&step.at)?,
            within,
            ack,
        })
    }

    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        let client = self.client.as_str();
        let packet = run
            .expect_one(at, client, &self.matcher, self.within, false)
            .await?;
        if self.ack
            && let Some(Packet::Publish(p)) = packet
        {
            let id = p.packet_id().map_or(0, PacketId::get);
            run.receiver_flow(at, client, p.qos().as_u8(), id).await?;
        }
        Ok(())
    }

    /// Without `ack` it only observes; answering a PUBLISH cannot be undone
    /// when a `one_of` branch fails.
    fn observes_only(&self) -> bool {
        !self.ack
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;
    use crate::model::{IdSpec, QosSpec};

    #[test]
    fn packet_is_required() {
        let e = parse_err("{ expect = \"a\", topic = \"x\" }");
        assert!(e.starts_with("`expect` needs `packet`"), "{e}");
        let e = parse_err("{ expect = \"a\", packet = \"any\", for_ms = 3 }");
        assert_eq!(e, "`for_ms` does not belong in `expect`");
    }

    #[test]
    fn matcher_fields_and_ack() {
        let e: Expect = parse_ok(
            "{ expect = \"a\", packet = \"publish\", qos = \"min(2, $g)\", packet_id = \"$p\", ack = true, within_ms = 100 }",
        );
        assert_eq!(e.matcher.qos, Some(QosSpec::MinOf(2, "g".into())));
        assert_eq!(e.matcher.packet_id, Some(IdSpec::Var("p".into())));
        assert_eq!(e.within.as_millis(), 100);
        assert!(e.ack && !e.observes_only());
        let any: Expect = parse_ok("{ expect = \"a\", packet = \"any\" }");
        assert!(any.observes_only());
        assert!(any.matcher.packet.is_none(), "\"any\" matches any packet");
    }
}
