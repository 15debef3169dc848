//! The harness's own connections outside any scenario's script: the
//! end-of-scenario clean-up and the liveness probe between scenarios
//! ([`crate::liveness`]). They connect as scenarios do ([`Connection`], the
//! run's credentials) and need an accepted session, nothing more.

use mqtt_codec::Packet;
use mqtt_codec::raw::RawConnect;
use tokio::time::Instant;

use crate::client::{ConnectError, Connection, Event, Transport};
use crate::target::Target;

/// Why a service connection did not get its session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No connection could be opened.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The broker did not answer in time.
    #[error("no {waiting_for} within {:.1}s", .within.as_secs_f64())]
    NoAnswer {
        /// The packet awaited ("CONNACK", "the message back"...).
        waiting_for: &'static str,
        /// How long it was awaited.
        within: std::time::Duration,
    },
    /// The broker closed the connection.
    #[error("connection {reason} while waiting for {waiting_for}")]
    Closed {
        /// The packet awaited.
        waiting_for: &'static str,
        /// How it closed.
        reason: String,
    },
    /// The broker answered with something else.
    #[error("{got} while waiting for {waiting_for}")]
    Unexpected {
        /// The packet awaited.
        waiting_for: &'static str,
        /// What came instead.
        got: String,
    },
}

/// The next packet on `conn` before `deadline`, for a wait described as
/// `waiting_for` in errors; undecodable bytes and closes are errors.
pub(crate) async fn next_packet(
    conn: &mut Connection,
    deadline: Instant,
    waiting_for: &'static str,
    started: Instant,
) -> Result<Packet, SessionError> {
    let Some(a) = conn.next(deadline).await else {
        return Err(SessionError::NoAnswer {
            waiting_for,
            within: deadline.saturating_duration_since(started),
        });
    };
    match a.event {
        Event::Packet { packet, .. } => Ok(packet),
        Event::Closed { reason, .. } => Err(SessionError::Closed {
            waiting_for,
            reason,
        }),
        Event::Garbage { error, .. } => Err(SessionError::Unexpected {
            waiting_for,
            got: format!("undecodable bytes ({error})"),
        }),
    }
}

/// A clean-session connection on the plain listener for `client_id`, with
/// the run's credentials, whose CONNECT the broker accepted before
/// `deadline`.
pub(crate) async fn open_session(
    target: &Target,
    epoch: Instant,
    client_id: Vec<u8>,
    deadline: Instant,
) -> Result<Connection, SessionError> {
    open_session_over(target, Transport::Plain, epoch, client_id, deadline).await
}

/// [`open_session`] on the listener `transport` names.
pub(crate) async fn open_session_over(
    target: &Target,
    transport: Transport,
    epoch: Instant,
    client_id: Vec<u8>,
    deadline: Instant,
) -> Result<Connection, SessionError> {
    let started = Instant::now();
    let mut conn = tokio::time::timeout_at(
        deadline,
        Connection::open(target, transport, epoch, tracing::Span::none()),
    )
    .await
    .map_err(|_| SessionError::NoAnswer {
        waiting_for: "TCP connection",
        within: deadline.saturating_duration_since(started),
    })??;
    let mut raw = RawConnect {
        client_id: Some(client_id),
        ..RawConnect::default()
    };
    if let Some(c) = &target.credentials {
        raw.username = Some(c.username.clone().into_bytes());
        raw.password = Some(c.password.clone().into_bytes());
    }
    // A failed write means the broker closed: the read below reports it.
    let _ = conn.write(&raw.to_packet().to_bytes()).await;
    match next_packet(&mut conn, deadline, "CONNACK", started).await? {
        Packet::ConnAck(c) if c.code.as_u8() == 0 => Ok(conn),
        other => Err(SessionError::Unexpected {
            waiting_for: "CONNACK",
            got: crate::describe::packet(&other),
        }),
    }
}
