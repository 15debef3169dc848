//! Restarting the broker in the middle of a scenario (the `restart` and
//! `kill` steps): run the target's [`BrokerControl`], end every client's
//! connection (the broker dropped them), and wait until the broker accepts
//! a client again.
//!
//! [`BrokerControl`]: crate::restart::BrokerControl

use std::time::Duration;

use super::{Run, StepError, StepResult};
use crate::outcome::Direction;
use crate::restart::{COMMAND_TIMEOUT, wait_until_accepting};

/// How the broker is stopped before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Gracefully (`--restart-command`): it may save its state first.
    Graceful,
    /// Abruptly (`--kill-command`): no chance to save anything.
    Kill,
}

impl Stop {
    fn flag(self) -> &'static str {
        match self {
            Stop::Graceful => "--restart-command",
            Stop::Kill => "--kill-command",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Stop::Graceful => "restarting",
            Stop::Kill => "killing and starting",
        }
    }
}

/// The note on each client whose connection the restart ended.
const DROPPED: &str = "connection ended by the broker's restart";

impl Run<'_> {
    /// Stops the broker as `how` says and starts it again, then waits (at
    /// most `within`, scaled) until it accepts a client. Every client's
    /// connection is gone afterwards (what arrived on it unread is kept in
    /// the transcript); the scenario reconnects the clients it needs.
    pub(crate) async fn restart_broker(&mut self, how: Stop, within: Duration) -> StepResult {
        let control = match how {
            Stop::Graceful => self.target.restart.clone(),
            Stop::Kill => self.target.kill.clone(),
        };
        let Some(control) = control else {
            return Err(StepError::Harness(format!(
                "the scenario restarts the broker but the run has no {}",
                how.flag()
            )));
        };
        self.note(
            "broker",
            Direction::Note,
            format!("{} the broker with {}", how.verb(), control.describe()),
        );
        control
            .run(self.target.scaled(COMMAND_TIMEOUT))
            .await
            .map_err(|e| StepError::Harness(format!("{}: {e}", how.flag())))?;
        let names: Vec<String> = self.clients.keys().cloned().collect();
        for name in names {
            let mut late = Vec::new();
            if let Some(conn) = self.clients.get_mut(&name).and_then(|s| s.conn.as_mut()) {
                while let Some(a) = conn.try_next() {
                    late.push(a);
                }
            } else {
                continue;
            }
            for a in &late {
                self.record_arrival(&name, a);
            }
            self.close_conn(&name, DROPPED);
        }
        let within = self.target.scaled(within);
        let probe_id = format!("{}rs", self.ph.client_id);
        match wait_until_accepting(self.target, &probe_id, within).await {
            Ok(took) => {
                self.note(
                    "broker",
                    Direction::Note,
                    format!("broker accepts clients again after {}ms", took.as_millis()),
                );
                Ok(())
            }
            Err(why) => Err(StepError::Harness(format!(
                "after {}, the broker did not accept a client within {:.1}s: {why}",
                how.flag(),
                within.as_secs_f64()
            ))),
        }
    }
}
