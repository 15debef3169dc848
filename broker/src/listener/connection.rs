//! One client connection: CONNECT, then a loop moving bytes between the
//! socket, the codec, the [`Session`] and the [`Router`].
//!
//! The loop waits on whichever comes first: the socket readable, the
//! socket writable (only while output is pending), the client's outbox
//! turning non-empty, the keep-alive deadline, a takeover or shutdown.
//! Everything a turn produces (acks, deliveries) is encoded into one
//! buffer and written with one call at the end of the turn.
//!
//! When it ends for any reason but DISCONNECT, the client's will is
//! published [MQTT-3.1.2-8]; the session goes back to the router.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::Shared;
use super::transport::Transport;
use crate::codec::{ConnAck, ConnectReturnCode, DecodeError, Packet, PacketType, decode_packet};
use crate::router::{Attachment, ClientSlot, Kick};
use crate::session::{Action, Message, Session, SessionError, resolve_client_id};
use crate::stats::Counts;

/// Stop reading and pulling from the outbox while this much output waits:
/// a client that does not read cannot make the broker buffer without end.
const HIGH_WATER: usize = 64 * 1024;
/// Read at most this much in one turn before handling it, for fairness.
const READ_BATCH: usize = 64 * 1024;
/// The read buffer's first reservation; it doubles while reads fill it.
const MIN_READ_CHUNK: usize = 512;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// Messages moved from the outbox per lock.
const PULL_BATCH: usize = 256;
/// How long a closing connection waits for the client to close its side.
const LINGER: Duration = Duration::from_secs(1);
/// How long a new connection waits for an old one with its client id to go.
const TAKEOVER_WAIT: Duration = Duration::from_secs(10);

/// Why a connection ended.
#[derive(Debug)]
enum End {
    /// The client sent DISCONNECT: the will is discarded [MQTT-3.14.4-3].
    Disconnect,
    /// The client closed the socket.
    Closed,
    /// The socket failed.
    Io(io::Error),
    /// The client sent bytes that are not a valid packet.
    Malformed(DecodeError),
    /// The client broke a protocol rule.
    Violation(SessionError),
    /// The client was silent past 1.5× its keep-alive [MQTT-3.1.2-24].
    KeepAlive,
    /// Another connection took the client id over [MQTT-3.1.4-2].
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
}

impl From<io::Error> for End {
    fn from(e: io::Error) -> Self {
        End::Io(e)
    }
}

/// The connection's buffers and counters.
struct Conn {
    transport: Transport,
    rbuf: BytesMut,
    wbuf: BytesMut,
    read_chunk: usize,
    counts: Counts,
}

impl Conn {
    fn new(transport: Transport) -> Self {
        Self {
            transport,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            read_chunk: MIN_READ_CHUNK,
            counts: Counts::default(),
        }
    }

    /// Encodes a packet into the write buffer.
    fn put(&mut self, packet: &Packet) {
        let before = self.wbuf.len();
        match packet.encode(&mut self.wbuf) {
            Ok(()) => {
                self.counts.packets_out += 1;
                self.counts.bytes_out += (self.wbuf.len() - before) as u64;
                if matches!(packet, Packet::Publish(_)) {
                    self.counts.publish_out += 1;
                }
            }
            // Only a packet we built wrongly fails to encode.
            Err(e) => error!(error = %e, packet = %packet.packet_type(), "cannot encode packet"),
        }
    }

    /// Reads what the socket has now, up to [`READ_BATCH`]. Returns the
    /// byte count (0 when nothing was there), or `None` at end of stream.
    fn read_available(&mut self) -> io::Result<Option<usize>> {
        let mut total = 0;
        while total < READ_BATCH {
            let spare = self.rbuf.capacity() - self.rbuf.len();
            match self.transport.try_read(&mut self.rbuf, self.read_chunk) {
                Ok(0) => {
                    self.counts.bytes_in += total as u64;
                    return Ok(None);
                }
                Ok(n) => {
                    total += n;
                    if n >= spare.max(self.read_chunk) && self.read_chunk < MAX_READ_CHUNK {
                        self.read_chunk *= 2;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.counts.bytes_in += total as u64;
        Ok(Some(total))
    }

    /// Drops the buffers' memory when they are empty, so an idle connection
    /// costs little.
    fn shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > HIGH_WATER {
            self.wbuf = BytesMut::new();
        }
    }

    /// Waits for the first complete packet.
    async fn first_packet(&mut self, max_packet_size: usize) -> Result<Packet, End> {
        loop {
            if let Some(p) =
                decode_packet(&mut self.rbuf, max_packet_size).map_err(End::Malformed)?
            {
                self.counts.packets_in += 1;
                return Ok(p);
            }
            // TLS may hold bytes that arrived with the handshake, so try
            // before waiting for the socket.
            match self.read_available()? {
                None => return Err(End::Closed),
                Some(0) => self.transport.readable().await?,
                Some(_) => {}
            }
        }
    }

    /// Writes a CONNACK refusing the connection, then closes it
    /// [MQTT-3.2.2-5]. Session Present is 0 with any refusal [MQTT-3.2.2-4].
    async fn refuse(mut self, code: ConnectReturnCode) {
        self.put(&Packet::ConnAck(ConnAck {
            session_present: false,
            code,
        }));
        self.close(LINGER).await;
    }

    /// Ends the connection (see [`Transport::close`]).
    async fn close(self, linger: Duration) {
        let Conn {
            transport,
            mut wbuf,
            ..
        } = self;
        transport.close(&mut wbuf, linger).await;
    }
}

/// What [`open`] hands to the connection loop.
struct Accepted {
    conn: Conn,
    slot: Arc<ClientSlot>,
    session: Session,
    kicked: tokio::sync::oneshot::Receiver<Kick>,
    will: Option<Message>,
}

/// Serves one client from its first byte to its close.
pub(super) async fn serve(
    transport: Transport,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    cert_name: Option<String>,
) {
    let kind = transport.kind();
    // Boxed: CONNECT handling holds large futures (timeouts, a takeover
    // wait) that live only at the start; inline, they would size every
    // connection's task for its whole life.
    let opened = Box::pin(open(Conn::new(transport), &shared, &shutdown, cert_name)).await;
    let Some(Accepted {
        mut conn,
        slot,
        mut session,
        kicked,
        will,
    }) = opened
    else {
        return;
    };

    let end = run(&mut conn, &shared, &slot, &mut session, kicked, &shutdown).await;
    shared.stats.add(&mut conn.counts);
    match &end {
        End::Disconnect => info!("client disconnected"),
        End::Closed => info!("client closed the connection without DISCONNECT"),
        End::Io(e) => info!(error = %e, "connection failed"),
        End::Malformed(e) => warn!(
            error = %e,
            statement = e.statement().unwrap_or("-"),
            "malformed packet, closing [MQTT-4.8.0-1]"
        ),
        End::Violation(e) => warn!(error = %e, "protocol violation, closing"),
        End::KeepAlive => info!("keep-alive expired, closing [MQTT-3.1.2-24]"),
        End::TakenOver => info!("session taken over by a new connection [MQTT-3.1.4-2]"),
        End::Shutdown => debug!("closing for shutdown"),
    }
    if !matches!(end, End::Disconnect)
        && let Some(will) = will
    {
        debug!(topic = %will.topic, "publishing will");
        shared.router.publish_from_client(&will);
    }
    shared.router.disconnect(&slot, session);
    shared.stats.client_disconnected(kind);
    match end {
        // The socket is gone, or the broker is in a hurry.
        End::Closed | End::Io(_) | End::Shutdown => {}
        _ => Box::pin(conn.close(LINGER)).await,
    }
}

/// From the first byte to CONNACK: reads CONNECT within the timeout, checks
/// the client id and credentials, takes the session from the router, and
/// queues CONNACK and the resumed flows. `None` when the connection ended
/// (refused, closed, timed out).
async fn open(
    mut conn: Conn,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
    cert_name: Option<String>,
) -> Option<Accepted> {
    let kind = conn.transport.kind();
    let limits = &shared.limits;
    // CONNECT must be the first packet [MQTT-3.1.0-1], within the timeout.
    let first = tokio::select! {
        r = tokio::time::timeout(limits.connect_timeout, conn.first_packet(limits.max_packet_size)) => r,
        () = shutdown.cancelled() => return None,
    };
    let connect = match first {
        Err(_) => {
            info!(timeout = ?limits.connect_timeout, "no CONNECT in time, closing");
            return None;
        }
        Ok(Ok(Packet::Connect(c))) => c,
        Ok(Ok(other)) => {
            warn!(packet = %other.packet_type(), "first packet is not CONNECT, closing [MQTT-3.1.0-1]");
            return None;
        }
        Ok(Err(End::Malformed(e))) if e.is_unacceptable_protocol() => {
            warn!(error = %e, "refusing CONNECT with return code 0x01");
            conn.refuse(ConnectReturnCode::UnacceptableProtocolVersion)
                .await;
            return None;
        }
        Ok(Err(End::Malformed(e))) => {
            warn!(error = %e, statement = e.statement().unwrap_or("-"), "malformed packet before CONNECT, closing");
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

    let client_id = match resolve_client_id(&connect.client_id, connect.clean_session) {
        Ok(id) => id,
        Err(code) => {
            warn!(code = %code, "empty client id without clean session [MQTT-3.1.3-8]");
            conn.refuse(code).await;
            return None;
        }
    };
    tracing::Span::current().record("client_id", client_id.as_str());

    // With --identity-as-username the certificate's name replaces the user
    // name the client sent (and needs no password).
    let auth = match (
        &cert_name,
        shared.identity_as_username && kind == crate::stats::Transport::Tls,
    ) {
        (Some(_), true) => Ok(()),
        (None, true) => Err(ConnectReturnCode::NotAuthorized),
        _ => shared
            .auth
            .check(connect.username.as_deref(), connect.password.as_deref()),
    };
    if let Err(code) = auth {
        warn!(code = %code, username = connect.username.as_deref().unwrap_or(""), "refusing credentials");
        conn.refuse(code).await;
        return None;
    }

    let attachment = tokio::select! {
        r = shared.router.connect(&client_id, connect.clean_session, limits.max_inflight, TAKEOVER_WAIT) => r,
        () = shutdown.cancelled() => return None,
    };
    let Attachment {
        slot,
        mut session,
        session_present,
        kicked,
    } = match attachment {
        Ok(a) => a,
        Err(e) => {
            error!(error = %e, "session takeover failed");
            conn.refuse(ConnectReturnCode::ServerUnavailable).await;
            return None;
        }
    };
    session.attach(
        connect.clean_session,
        connect.keep_alive,
        Instant::now().into_std(),
    );
    shared.stats.client_connected(kind);
    info!(
        clean_session = connect.clean_session,
        keep_alive = connect.keep_alive,
        session_present,
        "client connected"
    );

    conn.put(&Packet::ConnAck(ConnAck {
        session_present,
        code: ConnectReturnCode::Accepted,
    }));
    // Resume the flows in flight, in their original order [MQTT-4.4.0-1].
    let resume: Vec<Packet> = session.resume().collect();
    for p in &resume {
        conn.put(p);
    }

    let will = connect.will.as_ref().map(|w| Message {
        topic: w.topic.clone(),
        // Copy the payload: the will lives as long as the connection and
        // should not pin the buffer the CONNECT was read into.
        payload: Bytes::copy_from_slice(&w.message),
        qos: w.qos,
        retain: w.retain,
    });
    drop(connect);

    Some(Accepted {
        conn,
        slot,
        session,
        kicked,
        will,
    })
}

/// The connection loop after CONNACK.
async fn run(
    conn: &mut Conn,
    shared: &Shared,
    slot: &Arc<ClientSlot>,
    session: &mut Session,
    mut kicked: tokio::sync::oneshot::Receiver<Kick>,
    shutdown: &CancellationToken,
) -> End {
    let mut batch: Vec<Message> = Vec::new();
    // Messages may have queued while a persistent session was away.
    let mut outbox_more = true;
    let mut pulled = Pulled::Drained;
    let keep_alive = tokio::time::sleep_until(far_future(session));
    tokio::pin!(keep_alive);
    // Packets that came in behind the CONNECT, in the same read, are
    // already buffered: handle them before waiting for the socket.
    if let Err(end) = handle_packets(conn, shared, slot, session, &mut outbox_more) {
        return end;
    }
    loop {
        if outbox_more && conn.wbuf.len() < HIGH_WATER {
            pulled = pull(conn, slot, session, &mut batch);
            outbox_more = pulled != Pulled::Drained;
        }
        if conn.transport.wants_write(&conn.wbuf)
            && let Err(e) = conn.transport.try_write(&mut conn.wbuf)
        {
            return End::Io(e);
        }
        shared.stats.add(&mut conn.counts);
        conn.shrink();
        let wants_write = conn.transport.wants_write(&conn.wbuf);
        let can_read = conn.wbuf.len() < HIGH_WATER;
        // Messages still wait and there is room for them: come straight
        // back after letting other tasks run once.
        let pull_again = outbox_more && pulled == Pulled::BufferFull && can_read;
        let ka_on = session.keep_alive_deadline().is_some();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return End::Shutdown,
            k = &mut kicked => {
                return match k {
                    Ok(Kick::TakenOver) => End::TakenOver,
                    // The router let go of us without a reason: it is gone.
                    Err(_) => End::Shutdown,
                };
            }
            r = conn.transport.writable(), if wants_write => {
                if let Err(e) = r.and_then(|()| conn.transport.try_write(&mut conn.wbuf)) {
                    return End::Io(e);
                }
            }
            r = conn.transport.readable(), if can_read => {
                if let Err(e) = r {
                    return End::Io(e);
                }
                match conn.read_available() {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        // Handle what arrived before the close (a final
                        // DISCONNECT, say) first.
                        return match handle_packets(conn, shared, slot, session, &mut outbox_more) {
                            Err(end) => end,
                            Ok(()) => End::Closed,
                        };
                    }
                    Err(e) => return End::Io(e),
                }
                if let Err(end) = handle_packets(conn, shared, slot, session, &mut outbox_more) {
                    return end;
                }
            }
            () = slot.woken(), if !outbox_more => outbox_more = true,
            () = tokio::task::yield_now(), if pull_again => {}
            () = &mut keep_alive, if ka_on => {
                let now = Instant::now();
                if session.keep_alive_expired(now.into_std()) {
                    return End::KeepAlive;
                }
                // Packets arrived since the timer was set: move it on.
                keep_alive.as_mut().reset(far_future(session));
            }
        }
    }
}

/// The keep-alive deadline as a tokio instant (far away when off).
fn far_future(session: &Session) -> Instant {
    match session.keep_alive_deadline() {
        Some(d) => Instant::from_std(d),
        None => Instant::now() + Duration::from_secs(86_400 * 365),
    }
}

/// Decodes and handles every complete packet in the read buffer.
fn handle_packets(
    conn: &mut Conn,
    shared: &Shared,
    slot: &Arc<ClientSlot>,
    session: &mut Session,
    outbox_more: &mut bool,
) -> Result<(), End> {
    let now = Instant::now().into_std();
    loop {
        let packet = match decode_packet(&mut conn.rbuf, shared.limits.max_packet_size) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(e) => return Err(End::Malformed(e)),
        };
        conn.counts.packets_in += 1;
        if packet.packet_type() == PacketType::Publish {
            conn.counts.publish_in += 1;
        }
        match session.handle(packet, now).map_err(End::Violation)? {
            Action::None => {
                // An ack may have opened the window.
                *outbox_more = true;
            }
            Action::Reply(p) => conn.put(&p),
            Action::Route { message, ack } => {
                shared.router.publish_from_client(&message);
                if let Some(ack) = ack {
                    conn.put(&ack);
                }
            }
            Action::Subscribe(request) => {
                let (suback, retained) = shared.router.subscribe(slot, session, &request);
                debug!(filters = request.filters.len(), "subscribed");
                conn.put(&Packet::SubAck(suback));
                // Retained messages follow the SUBACK through the outbox.
                shared.router.queue_unbounded(slot, retained);
                *outbox_more = true;
            }
            Action::Unsubscribe(request) => {
                shared.router.unsubscribe(slot, session, &request);
                conn.put(&Packet::UnsubAck(request.packet_id));
            }
            Action::Disconnect => return Err(End::Disconnect),
        }
    }
}

/// Why [`pull`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulled {
    /// The outbox is empty: wait to be woken.
    Drained,
    /// The in-flight window is full: wait for an acknowledgement.
    WindowFull,
    /// The write buffer is full: write, then pull again.
    BufferFull,
}

/// Moves messages from the outbox into the write buffer, within the
/// in-flight window and up to [`HIGH_WATER`] bytes of output.
fn pull(
    conn: &mut Conn,
    slot: &ClientSlot,
    session: &mut Session,
    batch: &mut Vec<Message>,
) -> Pulled {
    loop {
        if conn.wbuf.len() >= HIGH_WATER {
            return Pulled::BufferFull;
        }
        let (more, dropped) = slot.take(batch, PULL_BATCH, session.window_room());
        if dropped > 0 {
            warn!(
                dropped,
                "messages for this client were dropped: its queue was full (--max-queued)"
            );
        }
        let took = batch.len();
        for message in batch.drain(..) {
            if let Some(publish) = session.deliver(message) {
                conn.put(&Packet::Publish(publish));
            }
        }
        if !more {
            return Pulled::Drained;
        }
        if took < PULL_BATCH {
            return Pulled::WindowFull;
        }
    }
}

/// The Common Name of a TLS client's certificate, for
/// `--identity-as-username`.
pub(super) fn certificate_name(transport: &Transport) -> Option<String> {
    let leaf = transport.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_owned())
}
