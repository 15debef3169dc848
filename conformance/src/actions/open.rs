//! `open = "a"`: opens a network connection for client `a` (TCP, or TLS
//! with `tls = true`; to the second node with `node = 2`) and sends
//! nothing, so a scenario can write raw bytes, or check that a TLS
//! handshake is refused.

use serde::Deserialize;

use super::{ActionDef, StepTable};
use crate::engine::{Run, StepAt, StepResult, transport};
use crate::script::error::ScriptError;
use crate::target::Node;

/// The fields of an `open` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    tls: bool,
    client_cert: Option<bool>,
    node: Option<u8>,
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
    /// The node it connects to.
    pub node: Node,
}

impl ActionDef for Open {
    const NAME: &'static str = "open";
    const CHECKS: bool = false;

    fn parse(mut step: StepTable<'_, '_>) -> Result<Self, ScriptError> {
        let (client, a) = step.client_and_args::<Args>()?;
        let (client_cert, node) = transport_fields(&mut step, a.tls, a.client_cert, a.node)?;
        Ok(Open {
            client,
            tls: a.tls,
            client_cert,
            node,
        })
    }

    async fn run(&self, run: &mut Run<'_>, _at: StepAt<'_>) -> StepResult {
        run.open(
            &self.client,
            transport(self.tls, self.client_cert),
            self.node,
        )
        .await
    }
}

/// Checks the `tls`, `client_cert` and `node` fields and notes what they
/// need; returns whether to present the client certificate, and the node.
/// Shared with `connect`, which opens a connection the same way.
///
/// `tls` needs the TLS listener (`requires = ["tls"]` is added).
/// `client_cert` (default true) only means something on TLS; leaving the
/// certificate out is what a mutual-TLS scenario does, so it needs the run
/// to have one (`requires = ["client-cert"]` is added). `node = 2` needs a
/// second node (`requires = ["second-node"]` is added); the second node is
/// reached on its main listener only.
pub(crate) fn transport_fields(
    step: &mut StepTable<'_, '_>,
    tls: bool,
    client_cert: Option<bool>,
    node: Option<u8>,
) -> Result<(bool, Node), ScriptError> {
    let node = match node {
        None | Some(1) => Node::First,
        Some(2) if tls => {
            return Err(step.error(
                "`tls` goes with the first node: the second node is reached on its main listener",
            ));
        }
        Some(2) => {
            step.cx.uses_second_node = true;
            Node::Second
        }
        Some(n) => {
            return Err(step.error(format!(
                "`node = {n}`: 1 is the broker under test, 2 the second node (--second-host)"
            )));
        }
    };
    let client_cert = match client_cert {
        Some(_) if !tls => return Err(step.error("`client_cert` goes with `tls = true`")),
        Some(false) => {
            step.cx.uses_client_cert = true;
            false
        }
        _ => true,
    };
    step.cx.uses_tls |= tls;
    Ok((client_cert, node))
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
                client_cert: true,
                node: Node::First,
            }
        );
        let o: Open = parse_ok("{ open = \"a\", tls = true, client_cert = false }");
        assert!(o.tls && !o.client_cert);
        let o: Open = parse_ok("{ open = \"a\", node = 2 }");
        assert_eq!(o.node, Node::Second);
    }

    #[test]
    fn node_is_one_or_two_and_the_second_has_no_tls() {
        assert_eq!(
            parse_err("{ open = \"a\", node = 3 }"),
            "`node = 3`: 1 is the broker under test, 2 the second node (--second-host)"
        );
        assert!(parse_err("{ open = \"a\", node = 2, tls = true }").contains("first node"));
    }

    #[test]
    fn client_cert_needs_tls() {
        assert_eq!(
            parse_err("{ open = \"a\", client_cert = true }"),
            "`client_cert` goes with `tls = true`"
        );
    }
}
