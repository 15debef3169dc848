//! Restarting the broker under test, for the `restart` and `kill` steps:
//! the [`BrokerControl`] a [`Target`] carries, one
//! implementation of which runs the user's command ([`ShellCommand`],
//! `--restart-command` / `--kill-command`), and the wait until the broker
//! accepts a client again ([`wait_until_accepting`]).
//!
//! A restart drops every client, so the scenarios that restart are
//! `exclusive`: they run alone, after the others. Tests restart an
//! in-process broker with an implementation of their own, without a shell.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::time::Instant;

use crate::engine::service::open_session;
use crate::target::Target;

/// How long a restart or kill command may run before it is stopped and the
/// step is a harness error (times the target's time scale).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long after its command the broker gets to accept a client again
/// (times the target's time scale).
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a failed command's stderr a message quotes.
const STDERR_QUOTED: usize = 2_000;

/// A future as [`BrokerControl`] returns it.
pub type ControlFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ControlError>> + Send + 'a>>;

/// Why a restart or kill did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The command could not be started.
    #[error("`{command}` could not be started: {reason}")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error, as text.
        reason: String,
    },
    /// The command ended with a failure status.
    #[error("`{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// What it wrote on stderr (trimmed, at most 2,000 bytes).
        stderr: String,
    },
    /// The command ran past its bound and was stopped.
    #[error("`{command}` did not finish within {:.1}s; it was stopped", .timeout.as_secs_f64())]
    Timeout {
        /// The command line.
        command: String,
        /// The bound.
        timeout: Duration,
    },
    /// Another implementation (a test's in-process restart) failed.
    #[error("{0}")]
    Other(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// Stops the broker under test and starts it again, returning once the
/// stop-and-start is done (the broker may still be starting:
/// [`wait_until_accepting`] follows). The `restart` and `kill` steps call
/// the one the target carries for each.
pub trait BrokerControl: Send + Sync + fmt::Debug {
    /// Does it; `timeout` bounds how long it may take.
    fn run(&self, timeout: Duration) -> ControlFuture<'_>;

    /// What it is, for transcripts: the command line, say.
    fn describe(&self) -> String;
}

/// A shell command that restarts the broker (`systemctl restart
/// mosquitto`, `docker restart b`, a script), run with `sh -c`. Its
/// success is its exit status 0; stdout is discarded, stderr quoted in the
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// The command line.
    pub line: String,
}

impl ShellCommand {
    /// The command `line`.
    pub fn new(line: impl Into<String>) -> Self {
        Self { line: line.into() }
    }

    async fn run_bounded(&self, timeout: Duration) -> Result<(), ControlError> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.line)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ControlError::Spawn {
                command: self.line.clone(),
                reason: e.to_string(),
            })?;
        // Read in a task of its own: a command that starts the broker in
        // the background may leave stderr open in it, so the end of the
        // command, not of its stderr, ends the wait.
        let stderr = child.stderr.take();
        let collected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&collected);
        let reader = tokio::spawn(async move {
            let Some(mut s) = stderr else { return };
            let mut chunk = [0u8; 1024];
            while let Ok(n @ 1..) = s.read(&mut chunk).await {
                if let Ok(mut text) = sink.lock() {
                    let room = STDERR_QUOTED.saturating_sub(text.len());
                    text.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        });
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(r) => r,
            Err(_) => {
                reader.abort();
                return Err(ControlError::Timeout {
                    command: self.line.clone(),
                    timeout,
                });
            }
        };
        // What the command wrote before exiting is in the pipe: a moment to
        // read it, not the life of a daemon that inherited it.
        let abort = reader.abort_handle();
        if tokio::time::timeout(Duration::from_millis(200), reader)
            .await
            .is_err()
        {
            abort.abort();
        }
        let text = collected.lock().map(|t| t.clone()).unwrap_or_default();
        let status = status.map_err(|e| ControlError::Spawn {
            command: self.line.clone(),
            reason: e.to_string(),
        })?;
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&text).trim().to_owned();
        Err(ControlError::Failed {
            command: self.line.clone(),
            status: status.to_string(),
            stderr: text,
        })
    }
}

impl BrokerControl for ShellCommand {
    fn run(&self, timeout: Duration) -> ControlFuture<'_> {
        Box::pin(self.run_bounded(timeout))
    }

    fn describe(&self) -> String {
        format!("`{}`", self.line)
    }
}

/// Waits until the broker accepts a client again: a CONNECT (Clean Session
/// 1, client id `client_id`, the run's credentials) answered by CONNACK 0,
/// tried every 100 ms until `within` has passed. Returns how long it took,
/// or the last reason it was refused.
pub async fn wait_until_accepting(
    target: &Target,
    client_id: &str,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + within;
    let mut last;
    loop {
        match probe(target, client_id, deadline).await {
            Ok(()) => return Ok(started.elapsed()),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        // Polling a process that is starting: there is no event to await.
        let pause = Duration::from_millis(100).min(deadline - Instant::now());
        tokio::time::sleep(pause).await;
    }
}

/// One try: CONNECT, CONNACK 0, DISCONNECT.
async fn probe(target: &Target, client_id: &str, deadline: Instant) -> Result<(), String> {
    // At least half a second even at the deadline, so the last try can
    // still tell a refused connection from a slow one.
    let now = Instant::now();
    let answer_by = deadline
        .max(now + Duration::from_millis(500))
        .min(now + Duration::from_secs(5));
    let mut conn = open_session(
        target,
        Instant::now(),
        client_id.as_bytes().to_vec(),
        answer_by,
    )
    .await
    .map_err(|e| e.to_string())?;
    let _ = conn.write(&[0xe0, 0x00]).await;
    conn.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_that_succeeds_is_done() {
        let c = ShellCommand::new("true");
        assert_eq!(c.run(Duration::from_secs(5)).await, Ok(()));
        assert_eq!(c.describe(), "`true`");
    }

    #[tokio::test]
    async fn a_failing_command_quotes_its_status_and_stderr() {
        let c = ShellCommand::new("echo 'no such unit' >&2; exit 3");
        let e = c.run(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "`echo 'no such unit' >&2; exit 3` failed (exit status: 3): no such unit"
        );
    }

    #[tokio::test]
    async fn a_command_leaving_a_daemon_behind_is_done_when_it_exits() {
        // The background `sleep` keeps the command's stderr open.
        let c = ShellCommand::new("sleep 5 & exit 0");
        let started = std::time::Instant::now();
        assert_eq!(c.run(Duration::from_secs(10)).await, Ok(()));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_command_running_too_long_is_stopped() {
        let c = ShellCommand::new("sleep 5");
        let started = std::time::Instant::now();
        let e = c.run(Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "`sleep 5` did not finish within 0.2s; it was stopped"
        );
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn waiting_for_a_broker_that_is_not_there_ends_with_why() {
        // A port nobody listens on: bind one, note it, close it.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let target = Target::plain("127.0.0.1", port);
        let e = wait_until_accepting(&target, "probe", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("127.0.0.1"), "{e}");
    }
}
