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
//!
//! Memory: an idle connection is mostly its task, so the task is kept
//! small. Everything needed only until CONNACK (the TLS handshake, CONNECT
//! and its timeouts, a takeover wait) runs in a boxed future freed before
//! the loop starts; what the loop keeps lives once, in [`Client`]; and the
//! loop waits with one hand-written poll over readiness calls (socket, the
//! slot's events, the keep-alive timer) instead of a `select!` holding a
//! future per branch. The buffers are empty while idle (see [`Conn::shrink`]).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::transport::Transport;
use super::{LiveGuard, Shared};
use crate::router::{Attachment, ClientSlot, Kick, SlotEvent};
use crate::session::{Action, Message, Session, SessionError, resolve_client_id};
use crate::stats::Counts;
use mqtt_codec::{ConnAck, ConnectReturnCode, DecodeError, Packet, PacketType, decode_packet};

thread_local! {
    /// Messages moved out of an outbox in one [`pull`], reused by every
    /// connection on this thread rather than held by each.
    static BATCH: RefCell<Vec<Message>> = const { RefCell::new(Vec::new()) };
    /// An empty write buffer with room, handed from a connection that went
    /// idle to the next one that writes (see [`Conn::shrink`]).
    static SPARE_WBUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Stop reading and pulling from the outbox while this much output waits:
/// a client that does not read cannot make the broker buffer without end.
const HIGH_WATER: usize = 64 * 1024;
/// Read at most this much in one turn before handling it, for fairness.
const READ_BATCH: usize = 64 * 1024;
/// The read buffer's first reservation; it doubles while reads fill it.
const MIN_READ_CHUNK: u32 = 512;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// Messages moved from the outbox per lock.
const PULL_BATCH: usize = 256;
/// A read that forwarded at most this many messages lets the subscribers
/// write before its acknowledgements go out (see the connection loop).
const FORWARD_FIRST: usize = 4;
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
    counts: Counts,
    read_chunk: u32,
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

    fn count_bytes_in(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.counts.bytes_in = self.counts.bytes_in.saturating_add(n);
    }

    /// Encodes a packet into the write buffer.
    fn put(&mut self, packet: &Packet) {
        if self.wbuf.capacity() == 0 {
            self.wbuf = SPARE_WBUF.with_borrow_mut(std::mem::take);
        }
        let before = self.wbuf.len();
        match packet.encode(&mut self.wbuf) {
            Ok(()) => {
                let c = &mut self.counts;
                let n = u32::try_from(self.wbuf.len() - before).unwrap_or(u32::MAX);
                c.packets_out = c.packets_out.saturating_add(1);
                c.bytes_out = c.bytes_out.saturating_add(n);
                if matches!(packet, Packet::Publish(_)) {
                    c.publish_out = c.publish_out.saturating_add(1);
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
            let chunk = self.read_chunk as usize;
            match self.transport.try_read(&mut self.rbuf, chunk) {
                Ok(0) => {
                    self.count_bytes_in(total);
                    return Ok(None);
                }
                Ok(n) => {
                    total += n;
                    if n >= spare.max(chunk) && chunk < MAX_READ_CHUNK {
                        self.read_chunk *= 2;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.count_bytes_in(total);
        Ok(Some(total))
    }

    /// Lets go of the buffers when they are empty, so an idle connection
    /// holds none. The read buffer's memory may be shared with payloads
    /// still on their way to subscribers, so it is only dropped; the write
    /// buffer's is ours alone and goes back to the thread's spare for the
    /// next connection that writes (unless it grew past [`HIGH_WATER`]).
    fn shrink(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 0 {
            let wbuf = std::mem::take(&mut self.wbuf);
            if wbuf.capacity() <= HIGH_WATER {
                SPARE_WBUF.with_borrow_mut(|spare| {
                    if spare.capacity() < wbuf.capacity() {
                        *spare = wbuf;
                    }
                });
            }
        }
    }

    /// Waits for the first complete packet.
    async fn first_packet(&mut self, max_packet_size: usize) -> Result<Packet, End> {
        loop {
            if let Some(p) =
                decode_packet(&mut self.rbuf, max_packet_size).map_err(End::Malformed)?
            {
                self.counts.packets_in = self.counts.packets_in.saturating_add(1);
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

/// What an attached connection keeps from CONNACK to its end: everything
/// the loop needs, held once.
struct Client {
    conn: Conn,
    slot: Arc<ClientSlot>,
    session: Session,
    /// Boxed: most clients set no will, and those that do pay for it alone.
    will: Option<Box<Message>>,
}

/// Serves one client from its first byte to its close, TLS handshake
/// included when `tls` is given.
///
/// A plain function returning an `async move` block rather than an `async
/// fn`: an `async fn` copies its arguments into its state, and they would
/// take room twice for the connection's whole life. For the same reason the
/// socket goes straight into the boxed opening phase, built here.
pub(super) fn serve(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    guard: LiveGuard,
) -> impl Future<Output = ()> + Send {
    // Boxed: the handshake (a whole rustls connection) and CONNECT handling
    // (timeouts, a takeover wait) live only at the start; inline, they
    // would size every connection's task for its whole life.
    let opening = Box::pin(open(tcp, tls, Arc::clone(&shared), shutdown.clone()));
    async move {
        // Held, not moved into a local: the block owns it until it ends
        // (a local would store the permit a second time).
        let _: &LiveGuard = &guard;
        // `client` borrows from `opened`, so the client is stored once.
        let mut opened = opening.await;
        let Some(client) = opened.as_mut() else {
            return;
        };
        let end = client.run(&shared, &shutdown).await;
        let closing = match opened.take().and_then(|c| c.finish(end, &shared)) {
            Some(conn) => Box::pin(conn.close(LINGER)),
            None => return,
        };
        closing.await;
    }
}

/// The TLS handshake, within the connect timeout. `None` when it failed.
async fn handshake(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Option<Transport> {
    let timeout = shared.limits.connect_timeout;
    let handshake = tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(tcp)) => r,
        () = shutdown.cancelled() => return None,
    };
    match handshake {
        Ok(Ok(stream)) => {
            let (tcp, tls) = stream.into_inner();
            Some(Transport::Tls {
                tcp,
                tls: Box::new(tls),
            })
        }
        Ok(Err(e)) => {
            warn!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            warn!(?timeout, "TLS handshake did not finish in time, closing");
            None
        }
    }
}

/// From the first byte to CONNACK: the TLS handshake if any, then CONNECT
/// within the timeout, the client id and credentials checked, the session
/// taken from the router, and CONNACK and the resumed flows queued. `None`
/// when the connection ended (refused, closed, timed out).
async fn open(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> Option<Client> {
    let (shared, shutdown) = (&shared, &shutdown);
    let transport = match tls {
        None => Transport::Plain(tcp),
        Some(acceptor) => handshake(tcp, acceptor, shared, shutdown).await?,
    };
    let cert_name = certificate_name(&transport);
    let mut conn = Conn::new(transport);
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

    let client_id = match resolve_client_id(
        &connect.client_id,
        connect.clean_session,
        connect.protocol,
    ) {
        Ok(id) => id,
        Err(code) => {
            warn!(code = %code, protocol = ?connect.protocol, "empty client id refused: it needs clean session [MQTT-3.1.3-8], and MQTT 3.1 allows none");
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

    let will = connect.will.as_ref().map(|w| {
        Box::new(Message {
            topic: w.topic.clone(),
            // Copy the payload: the will lives as long as the connection and
            // should not pin the buffer the CONNECT was read into.
            payload: Bytes::copy_from_slice(&w.message),
            qos: w.qos,
            retain: w.retain,
        })
    });
    drop(connect);

    Some(Client {
        conn,
        slot,
        session,
        will,
    })
}

/// What the connection loop waited for.
enum Event {
    Kicked(Kick),
    Writable(io::Result<()>),
    Readable(io::Result<()>),
    Messages,
    Yielded,
    KeepAlive,
}

impl Client {
    /// The connection loop after CONNACK.
    ///
    /// Returns a future borrowing its arguments rather than being an `async
    /// fn`, which would copy them into its state (see [`serve`]).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would store its arguments twice"
    )]
    fn run<'a>(
        &'a mut self,
        shared: &'a Shared,
        shutdown: &'a CancellationToken,
    ) -> impl Future<Output = End> + Send + 'a {
        async move {
            // Messages may have queued while a persistent session was away.
            let mut outbox_more = true;
            let mut pulled = Pulled::Drained;
            let keep_alive = tokio::time::sleep_until(far_future(&self.session));
            tokio::pin!(keep_alive);
            // Packets that came in behind the CONNECT, in the same read, are
            // already buffered: handle them before waiting for the socket.
            if let Err(end) = self.handle_packets(shared, &mut outbox_more) {
                return end;
            }
            // The last read forwarded a few messages and left acknowledgements
            // to write: let the subscribers' tasks, woken by the routing, go
            // first and write the messages; the acks follow. A message's way
            // from publisher to subscriber then holds no write of ours to the
            // publisher (mosquitto, too, sends the forwarded PUBLISH before
            // the PUBACK). Under load, when a read brings many messages, the
            // acks go first: they keep the publisher's in-flight window moving.
            let mut forward_first = false;
            loop {
                // A connection attached after the shutdown's sweep of the
                // router learns of it here.
                if shutdown.is_cancelled() {
                    return End::Shutdown;
                }
                if !forward_first
                    && let Some(end) = self.turn(shared, &mut outbox_more, &mut pulled)
                {
                    return end;
                }
                let event = self
                    .wait(outbox_more, pulled, forward_first, keep_alive.as_mut())
                    .await;
                forward_first = false;
                match event {
                    Event::Kicked(Kick::TakenOver) => return End::TakenOver,
                    Event::Kicked(Kick::Shutdown) => return End::Shutdown,
                    Event::Writable(r) => {
                        let conn = &mut self.conn;
                        if let Err(e) = r.and_then(|()| conn.transport.try_write(&mut conn.wbuf)) {
                            return End::Io(e);
                        }
                    }
                    Event::Readable(r) => {
                        if let Err(e) = r {
                            return End::Io(e);
                        }
                        match self.conn.read_available() {
                            Ok(Some(_)) => {}
                            Ok(None) => {
                                // Handle what arrived before the close (a
                                // final DISCONNECT, say) first.
                                return match self.handle_packets(shared, &mut outbox_more) {
                                    Err(end) => end,
                                    Ok(_) => End::Closed,
                                };
                            }
                            Err(e) => return End::Io(e),
                        }
                        match self.handle_packets(shared, &mut outbox_more) {
                            Err(end) => return end,
                            Ok(routed) => {
                                forward_first = (1..=FORWARD_FIRST).contains(&routed)
                                    && !self.conn.wbuf.is_empty();
                            }
                        }
                    }
                    Event::Messages => outbox_more = true,
                    Event::Yielded => {}
                    Event::KeepAlive => {
                        if self.session.keep_alive_expired(Instant::now().into_std()) {
                            return End::KeepAlive;
                        }
                        // Packets arrived since the timer was set: move it on.
                        keep_alive.as_mut().reset(far_future(&self.session));
                    }
                }
            }
        }
    }

    /// The work of one turn before waiting: deliver from the outbox, write,
    /// flush the counts, release idle buffers.
    fn turn(
        &mut self,
        shared: &Shared,
        outbox_more: &mut bool,
        pulled: &mut Pulled,
    ) -> Option<End> {
        if *outbox_more && self.conn.wbuf.len() < HIGH_WATER {
            *pulled = pull(&mut self.conn, &self.slot, &mut self.session);
            *outbox_more = *pulled != Pulled::Drained;
        }
        let conn = &mut self.conn;
        if conn.transport.wants_write(&conn.wbuf)
            && let Err(e) = conn.transport.try_write(&mut conn.wbuf)
        {
            return Some(End::Io(e));
        }
        shared.stats.add(&mut conn.counts);
        conn.shrink();
        None
    }

    /// Waits for the next event, in this order of priority: a kick from the
    /// router, the socket writable (while output waits), readable (while
    /// there is room for output), messages in the outbox (once it was
    /// drained), one yield to other tasks (while messages wait but the
    /// write buffer was full), the keep-alive deadline (when it is on).
    /// With `forward_first`, it lets the tasks already scheduled run once
    /// before it looks at any of these.
    ///
    /// One poll function over readiness calls: nothing here is stored
    /// across the wait but a few flags.
    fn wait<'a>(
        &'a self,
        outbox_more: bool,
        pulled: Pulled,
        forward_first: bool,
        mut keep_alive: Pin<&'a mut Sleep>,
    ) -> impl Future<Output = Event> + Send + 'a {
        let wants_write = self.conn.transport.wants_write(&self.conn.wbuf);
        let can_read = self.conn.wbuf.len() < HIGH_WATER;
        // Messages still wait and there is room for them: come straight
        // back after letting other tasks run once.
        let pull_again = outbox_more && pulled == Pulled::BufferFull && can_read;
        let keep_alive_on = self.session.keep_alive_deadline().is_some();
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            // One look at the slot (one lock) for a kick and for messages;
            // messages come after the socket, so that a client's close (or
            // its acks) is seen before more is sent to it.
            let slot = self.slot.poll_event(cx, !outbox_more);
            if let Poll::Ready(SlotEvent::Kicked(kick)) = slot {
                return Poll::Ready(Event::Kicked(kick));
            }
            if forward_first && !yielded {
                // Polled again once the tasks already waiting ran (a direct
                // wake: `tokio::task::yield_now` would also wait for a poll
                // of the I/O driver).
                yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let transport = &self.conn.transport;
            if wants_write && let Poll::Ready(r) = transport.poll_write_ready(cx) {
                return Poll::Ready(Event::Writable(r));
            }
            if can_read && let Poll::Ready(r) = transport.poll_read_ready(cx) {
                return Poll::Ready(Event::Readable(r));
            }
            if let Poll::Ready(SlotEvent::Messages) = slot {
                return Poll::Ready(Event::Messages);
            }
            if pull_again {
                if yielded {
                    return Poll::Ready(Event::Yielded);
                }
                // Ask to be polled again once the tasks already waiting ran.
                yielded = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if keep_alive_on && keep_alive.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::KeepAlive);
            }
            Poll::Pending
        })
    }

    /// Decodes and handles every complete packet in the read buffer.
    /// Returns how many of them were messages queued for a subscriber.
    fn handle_packets(&mut self, shared: &Shared, outbox_more: &mut bool) -> Result<usize, End> {
        let Client {
            conn,
            slot,
            session,
            ..
        } = self;
        let now = Instant::now().into_std();
        let mut routed = 0;
        loop {
            let packet = match decode_packet(&mut conn.rbuf, shared.limits.max_packet_size) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(routed),
                Err(e) => return Err(End::Malformed(e)),
            };
            conn.counts.packets_in = conn.counts.packets_in.saturating_add(1);
            if packet.packet_type() == PacketType::Publish {
                conn.counts.publish_in = conn.counts.publish_in.saturating_add(1);
            }
            match session.handle(packet, now).map_err(End::Violation)? {
                Action::None => {
                    // An ack may have opened the window.
                    *outbox_more = true;
                }
                Action::Reply(p) => conn.put(&p),
                Action::Route { message, ack } => {
                    if shared.router.publish_from_client(&message) > 0 {
                        routed += 1;
                    }
                    if let Some(ack) = ack {
                        conn.put(&ack);
                    }
                }
                Action::Subscribe(request) => {
                    // The router grants, the session records the grants and
                    // builds the SUBACK.
                    let grants = shared.router.subscribe(slot, &request.filters);
                    debug!(filters = request.filters.len(), "subscribed");
                    conn.put(&Packet::SubAck(
                        session.granted(request, grants.return_codes),
                    ));
                    // Retained messages follow the SUBACK through the outbox.
                    shared.router.queue_unbounded(slot, grants.retained);
                    *outbox_more = true;
                }
                Action::Unsubscribe(request) => {
                    let (held, unsuback) = session.unsubscribe(request);
                    shared.router.unsubscribe(slot, &held);
                    conn.put(&unsuback);
                }
                Action::Disconnect => return Err(End::Disconnect),
            }
        }
    }

    /// After the loop: logs why it ended, publishes the will unless the
    /// client sent DISCONNECT, and hands the session back. Returns the
    /// connection when it still deserves a polite close.
    fn finish(self, end: End, shared: &Shared) -> Option<Conn> {
        let Client {
            mut conn,
            slot,
            session,
            will,
        } = self;
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
        shared.stats.client_disconnected(conn.transport.kind());
        match end {
            // The socket is gone, or the broker is in a hurry.
            End::Closed | End::Io(_) | End::Shutdown => None,
            _ => Some(conn),
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
fn pull(conn: &mut Conn, slot: &ClientSlot, session: &mut Session) -> Pulled {
    BATCH.with_borrow_mut(|batch| {
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
    })
}

/// The Common Name of a TLS client's certificate, for
/// `--identity-as-username`.
fn certificate_name(transport: &Transport) -> Option<String> {
    let leaf = transport.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_owned())
}
