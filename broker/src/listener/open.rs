//! From a connection's first byte to CONNACK: the I/O around the CONNECT
//! rules.
//!
//! The TLS handshake, the WebSocket upgrade and the first packet, all
//! within one connect timeout counted from the accept (a client slow at
//! each step is not given the timeout once per step);
//! the router's wait for an older connection with the same client id to go
//! (session takeover); the CONNACK and resumed flows written. What those
//! steps decide (is it CONNECT, which client id, who is let in, what CONNACK
//! says) lives in [`crate::session::connect`], over plain values; this module
//! only waits, reads and writes.
//!
//! All of it runs in a boxed future freed before the connection loop starts
//! (see [`super::connection::serve`]), so none of its state sizes an idle
//! connection. Within it, the TLS handshake and everything after the first
//! packet ([`answer_connect`]) are boxed again, allocated only when
//! reached: what a socket that has not sent CONNECT holds is the wait for
//! it alone, the socket and a timer (issue 14: thousands of silent
//! sockets). A first packet larger than [`MAX_FIRST_PACKET`] is refused
//! from its fixed header.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::buffers::Conn;
use super::connection::{Client, Seldom};
use super::end::End;
use super::transport::{Stream, Transport};
use super::{Endpoint, Shared, websocket};
use crate::router::{AttachError, Attachment};
use crate::session::connect::{self, Policy};
use mqtt_codec::{ConnectReturnCode, DecodeError, Packet};

/// How long a new connection waits for an old one with its client id to go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// The largest packet a connection's first packet may be: the largest
/// CONNECT the protocol can express. A fixed header of at most 5 bytes; a
/// variable header of at most 12 (MQTT 3.1's protocol name `MQIsdp` is the
/// longer); five length-prefixed fields of at most 65,535 bytes each: client
/// id, will topic, will message, user name, password (§1.5.3),
/// [MQTT-3.1.3-1]. 327,702 bytes in all.
///
/// A first packet announcing more cannot be a valid CONNECT, so it is
/// refused from its fixed header, before its bytes are read, whatever
/// `--max-packet-size` allows: a client that has not yet sent a valid
/// CONNECT (nor passed authentication) cannot make the broker buffer more
/// than this.
const MAX_FIRST_PACKET: usize = 5 + 12 + 5 * (2 + u16::MAX as usize);

/// The TLS handshake, by `deadline`. `None` when it failed.
async fn handshake(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    shared: &Shared,
    deadline: Instant,
    shutdown: &CancellationToken,
) -> Option<Stream> {
    let timeout = shared.limits.connect_timeout;
    let handshake = tokio::select! {
        r = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => r,
        () = shutdown.cancelled() => return None,
    };
    match handshake {
        Ok(Ok(stream)) => {
            let (tcp, tls) = stream.into_inner();
            Some(Stream::Tls {
                tcp,
                tls: Box::new(tls),
            })
        }
        Ok(Err(e)) => {
            warn!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            warn!(
                timeout_secs = timeout.as_secs(),
                "TLS handshake did not finish in time, closing"
            );
            None
        }
    }
}

/// From the first byte to CONNACK: the TLS handshake and the WebSocket
/// upgrade if the listener has them, then CONNECT, all by one deadline
/// `--connect-timeout` after the accept, the CONNECT rules applied ([`connect::check`]), the
/// session taken from the router, and CONNACK and the resumed flows queued
/// ([`connect::Accepted::start`]). `None` when the connection ended
/// (refused, closed, timed out).
pub(super) async fn open(
    tcp: TcpStream,
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    accepted: Instant,
) -> Option<Client> {
    let (shared, shutdown) = (&shared, &shutdown);
    if crate::mutant::active("stall-after-topic") && shared.router.stalled() {
        // Planted bug: hold the connection open, never answering, until the
        // broker stops.
        shutdown.cancelled().await;
        return None;
    }
    let limits = &shared.limits;
    // One deadline for every step before CONNECT, from the accept.
    let deadline = accepted + limits.connect_timeout;
    let max_first = limits.max_packet_size.min(MAX_FIRST_PACKET);
    let stream = match &endpoint.tls {
        None => Stream::Plain(tcp),
        // Boxed, as is everything after CONNECT: this future's size is the
        // largest of its steps', and every socket that has not sent
        // CONNECT yet holds one.
        Some(acceptor) => {
            Box::pin(handshake(tcp, acceptor.clone(), shared, deadline, shutdown)).await?
        }
    };
    let transport = match &endpoint.websocket {
        None => Transport::new(stream),
        Some(path) => {
            let upgrade = websocket::upgrade(
                stream,
                path.as_deref(),
                max_first,
                deadline,
                limits.connect_timeout,
                shutdown,
            );
            let (stream, ws) = Box::pin(upgrade).await?;
            Transport::websocket(stream, ws)
        }
    };
    let cert_name = certificate_name(&transport);
    let identity_as_username = endpoint.identity_as_username;
    drop(endpoint);
    let mut conn = Conn::new(transport);
    // CONNECT must be the first packet [MQTT-3.1.0-1], by the deadline.
    let first = tokio::select! {
        r = tokio::time::timeout_at(deadline, conn.first_packet(max_first)) => r,
        () = shutdown.cancelled() => return None,
    };
    let first = match first {
        Err(_) => {
            info!(timeout = ?limits.connect_timeout, "no CONNECT in time, closing");
            return None;
        }
        Ok(Ok(packet)) => Ok(packet),
        Ok(Err(End::Malformed(e))) => Err(e),
        Ok(Err(end @ End::NotConnect(_))) => {
            end.log();
            return None;
        }
        Ok(Err(End::Closed)) => {
            debug!("closed before CONNECT");
            return None;
        }
        Ok(Err(other)) => {
            debug!(reason = ?other, "connection failed before CONNECT");
            return None;
        }
    };
    // Past CONNECT, a WebSocket message may be as large as any packet.
    conn.transport.set_max_message(limits.max_packet_size);
    let identity = Identity {
        cert_name,
        as_username: identity_as_username,
    };
    Box::pin(answer_connect(conn, first, identity, shared, shutdown)).await
}

/// From the first packet to CONNACK: the CONNECT rules applied, the session
/// taken from the router, CONNACK and the resumed flows queued. `None` when
/// the connection was refused or the broker is stopping.
async fn answer_connect(
    mut conn: Conn,
    first: Result<Packet, DecodeError>,
    identity: Identity,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Option<Client> {
    let kind = conn.transport.kind();
    let limits = &shared.limits;
    let policy = Policy {
        auth: &shared.auth,
        identity_as_username: identity.as_username,
        certificate_name: identity.cert_name.as_deref(),
        use_username_as_clientid: shared.use_username_as_clientid,
    };
    let accepted = match connect::check(first, &policy) {
        Ok(accepted) => accepted,
        Err(refused) => {
            refused.log();
            if let Some(code) = refused.refusal() {
                conn.refuse(code).await;
            }
            return None;
        }
    };

    let attachment = tokio::select! {
        r = shared.router.connect_as(&accepted.client_id, accepted.user.as_deref(), accepted.username.as_deref(), accepted.clean_session, limits.max_inflight, TAKEOVER_WAIT) => r,
        () = shutdown.cancelled() => return None,
    };
    let Attachment {
        slot,
        mut session,
        session_present,
    } = match attachment {
        Ok(a) => a,
        Err(AttachError::HeldByAnotherUser { client_id }) => {
            let refused = connect::ConnectError::HeldByAnotherUser {
                code: ConnectReturnCode::NotAuthorized,
                client_id,
            };
            refused.log();
            if let Some(code) = refused.refusal() {
                conn.refuse(code).await;
            }
            return None;
        }
        Err(AttachError::Timeout(e)) => {
            error!(error = %e, "session takeover failed");
            conn.refuse(ConnectReturnCode::ServerUnavailable).await;
            return None;
        }
    };
    slot.set_bridge(accepted.bridge);
    // CONNACK, then the flows in flight in their original order
    // [MQTT-4.4.0-1].
    let packets: Vec<Packet> =
        accepted.start(&mut session, session_present, Instant::now().into_std());
    shared.stats.client_connected(kind);
    info!(
        clean_session = accepted.clean_session,
        keep_alive = accepted.keep_alive,
        session_present,
        bridge = accepted.bridge,
        "client connected"
    );
    for p in &packets {
        conn.put(p);
    }
    drop(packets);

    Some(Client {
        conn,
        slot,
        session,
        seldom: accepted.will.map(|will| Box::new(Seldom::with_will(*will))),
    })
}

/// What a TLS client's certificate says about who it is.
struct Identity {
    /// The certificate's Common Name.
    cert_name: Option<String>,
    /// The listener's `identity-as-username`.
    as_username: bool,
}

/// The Common Name of a TLS client's certificate, for
/// `--identity-as-username`.
fn certificate_name(transport: &Transport) -> Option<String> {
    let leaf = transport.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_owned())
}
