//! `open = "a"`: opens a network connection for client `a` (TCP, or TLS
//! with `tls = true`) and sends nothing, so a scenario can write raw bytes,
//! or check that a TLS handshake is refused.

use serde::Deserialize;

use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult, transport};
use crate::script::error::ScriptError;

/// The fields of an `open` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    tls: bool,
    client_cert: Option<bool>,
}

/// Open a network connection without sending anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// Client name.
    pub client: String,
    /// Use the TLS listener.
    pub tls: bool,
    /// On TLS, present the run's client certificate (if it has one).
    pub client_cert: bool,
}

impl ActionDef for Open {
    const NAME: &'static str = "open";
    const CHECKS: bool = false;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let client_cert = transport_fields(&mut step, a.tls, a.client_cert)?;
        Ok(Open {
            client,
            tls: a.tls,
            client_cert,
        })
    }

    async fn run(&self, run: &mut Run<'_>, _at: StepAt<'_>) -> StepResult {
        run.open(&self.client, transport(self.tls, self.client_cert))
            .await
    }
}

/// Checks the `tls` and `client_cert` fields and notes what they need;
/// returns whether to present the client certificate. Shared with
/// `connect`, which opens a connection the same way.
///
/// `tls` needs the TLS listener (`requires = ["tls"]` is added).
/// `client_cert` (default true) only means something on TLS; leaving the
/// certificate out is what a mutual-TLS scenario does, so it needs the run
/// to have one (`requires = ["client-cert"]` is added).
pub(crate) fn transport_fields(
    step: &mut StepTable<'_, '_>,
    tls: bool,
    client_cert: Option<bool>,
) -> Result<bool, ScriptError> {
    let client_cert = match client_cert {
        Some(_) if !tls => return Err(step.error("`client_cert` goes with `tls = true`")),
        Some(false) => {
            step.cx.uses_client_cert = true;
            false
        }
        _ => true,
    };
    step.cx.uses_tls |= tls;
    Ok(client_cert)
}

#[cfg(test)]
mod tests {
    use super::super::{parse_err, parse_ok};
    use super::*;

    #[test]
    fn parses_transport_choices() {
        let o: Open = parse_ok("{ open = \"a\" }");
        assert_eq!(
            o,
            Open {
                client: "a".into(),
                tls: false,
                client_cert: true
            }
        );
        let o: Open = parse_ok("{ open = \"a\", tls = true, client_cert = false }");
        assert!(o.tls && !o.client_cert);
    }

    #[test]
    fn client_cert_needs_tls() {
        assert_eq!(
            parse_err("{ open = \"a\", client_cert = true }"),
            "`client_cert` goes with `tls = true`"
        );
    }
}
