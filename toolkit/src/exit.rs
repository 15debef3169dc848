//! Exit statuses, chosen on purpose so scripts can tell failures apart.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | everything worked |
//! | 1 | an unexpected failure (for `certs`: files exist without `--force`, cannot write) |
//! | 2 | bad usage: a wrong flag or value, or an input file missing or unreadable |
//! | 3 | cannot connect: connection refused, host unreachable, name not resolved, not an MQTT server |
//! | 4 | TLS handshake failed (no common protocol or cipher, client certificate refused) |
//! | 5 | the server certificate failed verification (self-signed, unknown CA, wrong host, expired) |
//! | 6 | the broker refused the connection in its CONNACK |
//! | 7 | a message was lost, late, or came back different |
//! | 8 | timed out waiting for the broker (CONNACK, SUBACK, or the TCP connection) |
//! | 9 | the broker closed the connection unexpectedly |
//! | 10 | `conformance`: no new failures, but a baseline entry now passes (the baseline is stale) |
//! | 11 | `conformance --fail-on-skip`: nothing failed or stale, but scenarios were skipped |
//! | 12 | `conformance`: the broker stopped answering between scenarios (it names the likely scenario) |
//! | 13 | `fuzz`: the broker crashed (stopped accepting connections); the sessions are in a file |
//! | 14 | `fuzz`: the broker hung (accepted but did not answer within `--deadline`); the sessions are in a file |
//!
//! `conformance` exits 1 when a MUST scenario fails outside the baseline, and
//! 3 to 9 as `probe` does when its preflight connection fails.

use std::fmt;

/// Why the toolkit stopped, as a process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Anything not listed below.
    Failure = 1,
    /// A wrong flag or value, or an input file that is missing or unreadable.
    Usage = 2,
    /// TCP connection refused, host unreachable, or its name not resolved.
    Connect = 3,
    /// The TLS handshake failed for a reason other than the server's certificate.
    Handshake = 4,
    /// The server's certificate did not verify.
    Certificate = 5,
    /// The broker answered CONNECT with a non-zero return code.
    Refused = 6,
    /// A published message did not come back in time, or came back changed.
    Lost = 7,
    /// The broker did not answer in time.
    Timeout = 8,
    /// The broker closed the connection when it should not have.
    Closed = 9,
    /// A conformance baseline lists a deviation that no longer happens.
    StaleBaseline = 10,
    /// `conformance --fail-on-skip`: scenarios were skipped for want of
    /// TLS, credentials or a client certificate.
    Skipped = 11,
    /// `conformance`: the broker stopped answering the liveness probe
    /// during the run; the rest was not run (or, with
    /// `--continue-after-crash`, it came back).
    BrokerUnavailable = 12,
    /// `fuzz` (and `fuzz --replay`): the broker crashed.
    FuzzCrash = 13,
    /// `fuzz` (and `fuzz --replay`): the broker hung.
    FuzzHang = 14,
}

impl Status {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A failure with a chosen exit status and a one-line message saying what to
/// try. `main` prints it (after any context) and exits with its status.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub status: Status,
    message: String,
}

impl Failure {
    /// A failure with this status and message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit status an error chain asks for: that of the first [`Failure`] in
/// it, or [`Status::Failure`].
pub fn status_of(err: &anyhow::Error) -> Status {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(Status::Failure, |f| f.status)
}

/// The error chain as the one line `main` prints, each text once (see
/// [`credentials::describe::error_chain`]).
pub fn message_of(err: &anyhow::Error) -> String {
    credentials::describe::error_chain(err.chain())
}

/// Shorthand for a usage failure (exit status 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::new(Status::Usage, message).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn status_is_found_under_context() {
        let err: anyhow::Result<()> = Err(usage("bad"));
        let err = err.context("reading flags").unwrap_err();
        assert_eq!(status_of(&err), Status::Usage);
        assert_eq!(status_of(&anyhow::anyhow!("plain")), Status::Failure);
    }

    /// Issue 12: "reading f: No such file (os error 2): No such file (os
    /// error 2)".
    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading f: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let io = std::io::Error::from_raw_os_error(2);
        let io_text = io.to_string();
        let err = anyhow::Error::new(Read { source: io }).context("loading the baseline");
        assert_eq!(
            message_of(&err),
            format!("loading the baseline: reading f: {io_text}")
        );
        assert_eq!(format!("{err:#}").matches(&io_text).count(), 2);
        // Causes not already shown are kept, in order.
        let err = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(message_of(&err), "outer: middle: inner");
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            Status::Failure,
            Status::Usage,
            Status::Connect,
            Status::Handshake,
            Status::Certificate,
            Status::Refused,
            Status::Lost,
            Status::Timeout,
            Status::Closed,
            Status::StaleBaseline,
            Status::Skipped,
            Status::BrokerUnavailable,
            Status::FuzzCrash,
            Status::FuzzHang,
        ];
        let mut codes: Vec<u8> = all.iter().map(|s| s.code()).collect();
        codes.dedup();
        assert_eq!(codes, (1..=14).collect::<Vec<u8>>());
    }
}
