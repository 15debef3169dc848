//! Is the broker still alive and answering? After each batch `toolkit fuzz`
//! runs the conformance harness's liveness probe
//! ([`conformance::liveness::probe_over`]: a fresh client connects,
//! subscribes, publishes at QoS 1 and receives its message) within
//! `--deadline`. A probe that cannot open a connection, or whose connection
//! the broker closes, is a crash; one the broker accepts but does not answer
//! in time is a hang. After a failure the broker is brought back with
//! `--restart-command`, or waited for, before the next try.

use std::process::Stdio;
use std::time::Duration;

use conformance::client::Transport;
use conformance::engine::SessionError;
use conformance::target::Target;
use tokio::time::Instant;

/// What a failed liveness check means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing accepts connections any more, or they are closed at once.
    Crash,
    /// Connections are accepted but not answered within the deadline.
    Hang,
}

impl FailureKind {
    /// Its name in records and messages.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Crash => "crash",
            FailureKind::Hang => "hang",
        }
    }
}

/// A failed liveness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// Crash or hang.
    pub kind: FailureKind,
    /// What the probe saw.
    pub detail: String,
}

/// The liveness probe as `fuzz` runs it.
#[derive(Debug, Clone)]
pub struct Health {
    /// The broker, for the harness's client.
    pub target: Target,
    /// The listener fuzzed (plain or TLS).
    pub transport: Transport,
    /// A run id for the probe's client ids and topics.
    pub run_id: String,
    /// How long the probe may take (`--deadline`).
    pub deadline: Duration,
    /// Run (by `sh -c`) to bring the broker back after a failure.
    pub restart_command: Option<String>,
    /// How long to wait for the broker to come back.
    pub restart_wait: Duration,
}

impl Health {
    /// One probe, numbered `seq`.
    pub async fn check(&self, seq: u32) -> Result<(), Unhealthy> {
        let probe = conformance::liveness::probe_over(
            &self.target,
            self.transport,
            &self.run_id,
            seq,
            self.deadline,
        );
        // The probe bounds its own waits; this bounds the whole, in case a
        // TLS handshake or a write hangs.
        match tokio::time::timeout(self.deadline + Duration::from_secs(1), probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Unhealthy {
                kind: FailureKind::Hang,
                detail: format!(
                    "the liveness check took longer than {}s",
                    self.deadline.as_secs_f64()
                ),
            }),
        }
    }

    /// Brings the broker back after a failure: runs `--restart-command`
    /// when given, then waits (at most `--restart-wait`) until a probe
    /// passes. `false` when it did not come back.
    pub async fn recover(&self, seq: &mut u32) -> bool {
        if let Some(command) = &self.restart_command {
            tracing::info!(command, "restarting the broker");
            let status = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .stdin(Stdio::null())
                .status();
            match tokio::time::timeout(self.restart_wait, status).await {
                Ok(Ok(s)) if s.success() => {}
                Ok(Ok(s)) => tracing::warn!(command, status = %s, "the restart command failed"),
                Ok(Err(e)) => tracing::warn!(command, error = %e, "cannot run the restart command"),
                Err(_) => tracing::warn!(command, "the restart command did not finish in time"),
            }
        }
        let until = Instant::now() + self.restart_wait;
        while Instant::now() < until {
            *seq += 1;
            if self.check(*seq).await.is_ok() {
                return true;
            }
            // Between tries: a refused connection returns at once, and the
            // broker needs a moment to come back.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

/// Crash or hang, from how the probe failed.
fn classify(e: &SessionError) -> Unhealthy {
    let kind = match e {
        SessionError::Connect(_) | SessionError::Closed { .. } => FailureKind::Crash,
        SessionError::NoAnswer { .. } | SessionError::Unexpected { .. } => FailureKind::Hang,
    };
    Unhealthy {
        kind,
        detail: format!("the liveness check failed: {e}"),
    }
}
