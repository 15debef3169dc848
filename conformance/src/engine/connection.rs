//! A client's connection: opening it (TCP or TLS), writing bytes (or
//! holding them for a `batch`), and forgetting it when it closes.

use super::{Run, StepAt, StepError, StepResult};
use crate::client::{Connection, Transport};
use crate::outcome::Direction;
use crate::target::{Carrier, Node};

/// The transport a step's `tls` and `client_cert` fields ask for.
pub(crate) fn transport(tls: bool, client_cert: bool) -> Transport {
    if tls {
        Transport::Tls { client_cert }
    } else {
        Transport::Plain
    }
}

impl Run<'_> {
    /// The state of `client`, created on first use.
    pub(crate) fn client_mut(&mut self, client: &str) -> &mut super::ClientState {
        self.clients.entry(client.to_owned()).or_default()
    }

    /// Forgets `client`'s connection and what arrived on it, noting why.
    pub(crate) fn close_conn(&mut self, client: &str, note: &str) {
        let state = self.client_mut(client);
        state.conn = None;
        state.log.clear();
        state.consumed.clear();
        state.closed = false;
        state.watch = Default::default();
        self.note(client, Direction::Note, note.to_owned());
    }

    /// A harness error unless `client` has a connection: a script that acts
    /// for a client before opening one is wrong.
    pub(crate) fn require_conn(&self, at: StepAt<'_>, client: &str) -> StepResult {
        if self.clients.get(client).is_some_and(|s| s.conn.is_some()) {
            Ok(())
        } else {
            Err(StepError::Harness(format!(
                "{}: `{}` for client {client:?}, which has no connection (script error: connect or open it first)",
                at.location, at.keyword
            )))
        }
    }

    /// Opens a new connection for `client` to `node`, replacing any it
    /// had.
    pub(crate) async fn open(
        &mut self,
        client: &str,
        transport: Transport,
        node: Node,
    ) -> StepResult {
        let tls = transport != Transport::Plain;
        let target = self.target.node(node).ok_or_else(|| {
            StepError::Harness(
                "the scenario connects to a second node, and the run has none (--second-host)"
                    .to_owned(),
            )
        })?;
        let span = tracing::info_span!("connection", scenario = %self.name, client = %client, tls, second_node = node == Node::Second);
        let conn = Connection::open(target, transport, self.epoch, span)
            .await
            .map_err(|e| StepError::Harness(e.to_string()))?;
        let unread = self
            .clients
            .get(client)
            .map_or(0, |s| s.consumed.iter().filter(|c| !**c).count());
        let state = self.client_mut(client);
        state.conn = Some(conn);
        state.log.clear();
        state.consumed.clear();
        state.closed = false;
        state.watch = Default::default();
        state.keep_alive = None;
        state.last_sent = None;
        let mut text = match (transport, &target.carrier) {
            (Transport::Plain, Carrier::Tcp) => "opened TCP connection".to_owned(),
            (Transport::Plain, Carrier::WebSocket(ws)) => format!(
                "opened WebSocket connection ({})",
                ws.url(&target.host, target.port)
            ),
            (Transport::Tls { client_cert }, _) => {
                let has_cert = self.target.tls.as_ref().is_some_and(|t| t.client_cert);
                match (has_cert, client_cert) {
                    (true, true) => "opened TLS connection with the client certificate".to_owned(),
                    (true, false) => {
                        "opened TLS connection without a client certificate".to_owned()
                    }
                    (false, _) => "opened TLS connection".to_owned(),
                }
            }
        };
        if node == Node::Second {
            text.push_str(&format!(" to the second node {}", target.main_listener()));
        }
        if unread > 0 {
            text.push_str(&format!(
                " ({unread} unread arrivals of the previous one discarded)"
            ));
        }
        self.note(client, Direction::Note, text);
        Ok(())
    }

    /// Writes `bytes` on `client`'s connection, or holds them back while a
    /// `batch` for that client runs. A failed write is only noted: the
    /// broker closed first, and the next expectation sees the close.
    pub(crate) async fn send(&mut self, at: StepAt<'_>, client: &str, bytes: &[u8]) -> StepResult {
        self.require_conn(at, client)?;
        self.watch_sent(client, bytes);
        let text = crate::describe::sent(bytes);
        if let Some((batched, held)) = self.batch.as_mut()
            && batched == client
        {
            held.extend_from_slice(bytes);
            self.note(
                client,
                Direction::Sent,
                format!("{text} (held for the batch)"),
            );
            return Ok(());
        }
        self.note(client, Direction::Sent, text);
        let now = self.elapsed();
        let state = self.client_mut(client);
        state.last_sent = Some(now);
        let result = match state.conn.as_mut() {
            Some(conn) => conn.write(bytes).await,
            None => Ok(()),
        };
        if let Err(e) = result {
            // The broker closed first; the next expectation will see the close.
            self.note(client, Direction::Note, format!("write failed: {e}"));
        }
        Ok(())
    }
}
