//! `drop = "a"`: closes client `a`'s socket without DISCONNECT, as a crashed
//! client or a broken network would, so the server publishes the will
//! [MQTT-3.1.2-8].

use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult};
use crate::script::error::ScriptError;
use crate::script::args::NoArgs;

/// Close the network connection abruptly, without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop {
    /// Client name.
    pub client: String,
}

impl ActionDef for Drop {
    const NAME: &'static str = "drop";
    const CHECKS: bool = false;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let client = step.client()?;
        let _: NoArgs = step.args()?;
        Ok(Drop { client })
    }

    /// Closes the socket without DISCONNECT, so the will fires [MQTT-3.1.2-8].
    async fn run(&self, run: &mut Run<'_>, at: StepAt<'_>) -> StepResult {
        run.require_conn(at, &self.client)?;
        run.close_conn(&self.client, "dropped the connection (no DISCONNECT)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn takes_only_the_client() {
        let d: Drop = parse_ok("{ drop = \"b\" }");
        assert_eq!(d.client, "b");
        let e = parse_err("{ drop = \"Publisher1\" }");
        assert!(e.contains("1 to 8 lowercase letters or digits"), "{e}");
    }
}
