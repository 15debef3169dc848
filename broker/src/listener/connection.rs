//! One client connection: the loop moving bytes between the socket, the
//! codec, the [`Session`] and the [`Router`](crate::router::Router), from
//! CONNACK to the close.
//!
//! A connection spans a few modules: [`super::open`] (the TLS handshake and
//! the I/O around the CONNECT rules, up to CONNACK), [`super::buffers`] (the
//! socket with its read and write buffers), [`super::pull`] (the outbox into
//! the write buffer), [`super::end`] (why it ended), and this loop.
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
//! With `--durability batched`, a step that changes durable state (a QoS
//! 1/2 or retained message routed, a subscription changed, a QoS 2
//! message put in flight, a QoS 2 step recorded) takes a ticket from the
//! committer ([`crate::store::commit`]) and the connection holds all its
//! output until that ticket is on disk: the acknowledgement is never ahead
//! of the disk. Reading goes on meanwhile, up to the write buffer's bound.
//!
//! Backpressure: a PUBLISH that fills a connected subscriber's outbox
//! pauses this connection ([`Seldom::paused`]): it handles no more packets
//! and reads nothing from its socket until that outbox drains to half, so
//! TCP flow control pushes back on the publishing client. It still writes
//! and delivers to its own client meanwhile. Paused past
//! `--slow-client-timeout`, it disconnects the subscriber
//! ([`Kick::SlowClient`]) and goes on.
//!
//! Memory: an idle connection is mostly its task, so the task is kept
//! small. Everything needed only until CONNACK (the TLS handshake, CONNECT
//! and its timeouts, a takeover wait) runs in a boxed future freed before
//! the loop starts; what the loop keeps lives once, in [`Client`]; and the
//! loop waits with one hand-written poll over readiness calls (socket, the
//! slot's events, the keep-alive timer) instead of a `select!` holding a
//! future per branch. The buffers are empty while idle (see [`Conn::shrink`]).
//!
//! Parking: on a plain-TCP listener, a loop that had nothing to do for a
//! whole [`PARK_CHECK`] period (its timer, which also serves the
//! keep-alive, looks) and has nothing pending returns [`End::Park`]; the
//! task then hands its [`Client`] to the listener's parking lot and ends. When
//! the lot wakes the client, [`resume`] runs this same loop in a new task.
//! A client just past CONNACK parks at once when nothing is pending
//! ([`Parking::Now`]): a burst of connections then never holds a task for
//! each of them at the same time (a parked client's task is freed, and the
//! next connection's task reuses its memory), so the process does not keep
//! the memory of that peak; a client that goes on at once (SUBSCRIBE,
//! PUBLISH) is woken by its first packet, once in its life.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::buffers::{Conn, HIGH_WATER, LINGER};
use super::end::End;
use super::open::open;
use super::park::PARK_CHECK;
use super::pull::{Moved, Pulled, pull};
use super::{Endpoint, Home, LiveGuard, Shared};
use crate::mutant;
use crate::router::{ClientSlot, Kick, SlotEvent};
use crate::session::{Action, Session};
use crate::stats::Transport as Kind;
use crate::store::commit::Commits;
use mqtt_codec::Message;
use mqtt_codec::topic::TopicError;
use mqtt_codec::{DecodeError, Packet, PacketType, decode_packet};

/// A read that forwarded at most this many messages lets the subscribers
/// write before its acknowledgements go out (see the connection loop).
const FORWARD_FIRST: usize = 4;

/// What an attached connection keeps from CONNACK to its end: everything
/// the loop needs, held once.
pub(super) struct Client {
    /// The socket and buffers.
    pub(super) conn: Conn,
    /// The client's place in the router.
    pub(super) slot: Arc<ClientSlot>,
    /// The session, owned by this connection until it ends.
    pub(super) session: Session,
    /// What few connections need (a will, a subscriber to wait for),
    /// boxed so that the others pay one pointer for it.
    pub(super) seldom: Option<Box<Seldom>>,
}

/// What few connections need, kept out of [`Client`]: every byte there is
/// in every connection's task, which tokio lays out in steps of 128 bytes.
#[derive(Default)]
pub(super) struct Seldom {
    /// The client's will, published unless it sends DISCONNECT.
    pub(super) will: Option<Message>,
    /// The subscriber whose full outbox this connection waits for before it
    /// reads again (backpressure); `None` while it reads.
    pub(super) paused: Option<Arc<ClientSlot>>,
    /// With `--durability batched`, what the output held for the disk
    /// promises: the copies its QoS 1 PUBLISHes made in persistent
    /// sessions. Once all of them are acknowledged by their subscribers
    /// the output goes out before the commit (see `release_early`).
    watch: Vec<(Arc<ClientSlot>, u64)>,
    /// A held step needs the disk whatever becomes of the copies (QoS 2,
    /// RETAIN, a SUBSCRIBE, a PUBREL...).
    watch_strict: bool,
    /// The ticket `watch` covers up to: every step that took a ticket since
    /// the last one on disk is in it.
    watch_ticket: u64,
    /// The ticket whose output went out before its commit.
    released_early: u64,
}

impl Seldom {
    /// For a client that left a will.
    pub(super) fn with_will(will: Message) -> Self {
        Self {
            will: Some(will),
            ..Self::default()
        }
    }

    /// What a client parking keeps: its output is out (on disk or
    /// released), so the watch is done with; without a will or a pause
    /// nothing is left worth a box. (Back from the lot, its first held
    /// step waits for the disk: the watch starts again after a commit.)
    pub(super) fn for_parking(seldom: Option<Box<Self>>) -> Option<Box<Self>> {
        seldom
            .filter(|s| s.will.is_some() || s.paused.is_some())
            .map(|mut s| {
                s.watch = Vec::new();
                s
            })
    }
}

/// What a step changed of the state the store keeps.
#[derive(Debug, Default)]
struct Step {
    /// The persistent session's in-flight flows changed.
    flows: bool,
    /// The output must wait until the changes are on disk.
    commit: bool,
    /// The copies QoS 1 PUBLISHes made in persistent sessions: the output
    /// must also wait until the changes are on disk or these are all
    /// acknowledged by their subscribers, whichever comes first.
    copies: Vec<(Arc<ClientSlot>, u64)>,
}

/// Serves one client from its first byte to its close, TLS handshake and
/// WebSocket upgrade included when its `endpoint` has them.
///
/// A plain function returning an `async move` block rather than an `async
/// fn`: an `async fn` copies its arguments into its state, and they would
/// take room twice for the connection's whole life. For the same reason the
/// socket goes straight into the boxed opening phase, built here.
///
/// With a parking lot in `home` (plain TCP), the client parks there
/// whenever it goes idle.
///
/// `accepted` is when the socket was accepted: `--connect-timeout` counts
/// from there, however long it waited in the parking lot for its first
/// bytes.
pub(super) fn serve(
    tcp: TcpStream,
    endpoint: Arc<Endpoint>,
    home: Arc<Home>,
    mut guard: LiveGuard,
    accepted: Instant,
) -> impl Future<Output = ()> + Send {
    // Boxed: the handshake (a whole rustls connection) and CONNECT handling
    // (timeouts, a takeover wait) live only at the start; inline, they
    // would size every connection's task for its whole life.
    let opening = Box::pin(open(
        tcp,
        endpoint,
        Arc::clone(&home.shared),
        home.shutdown.clone(),
        accepted,
    ));
    async move {
        // `guard` is held, not moved into a local: the block owns it until
        // it ends or parks (a local would store the permit a second time).
        // `client` borrows from `opened`, so the client is stored once.
        let mut opened = opening.await;
        let Some(client) = opened.as_mut() else {
            return;
        };
        let end = client
            .run(
                &home.shared,
                &home.shutdown,
                match home.lot {
                    Some(_) => Parking::Now,
                    None => Parking::Never,
                },
            )
            .await;
        let closing = match opened
            .take()
            .and_then(|c| settle(c, end, &home, &mut guard))
        {
            Some(conn) => Box::pin(conn.close(LINGER)),
            None => return,
        };
        closing.await;
    }
}

/// Serves a client its parking lot woke: the same loop again, from the
/// state it parked in (the outbox is looked at first, the keep-alive is
/// counted from the last packet heard); then it parks again, or ends.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub(super) fn resume(
    mut client: Client,
    home: Arc<Home>,
    mut guard: LiveGuard,
) -> impl Future<Output = ()> + Send {
    async move {
        let end = client
            .run(&home.shared, &home.shutdown, Parking::WhenIdle)
            .await;
        let closing = match settle(client, end, &home, &mut guard) {
            Some(conn) => Box::pin(conn.close(LINGER)),
            None => return,
        };
        closing.await;
    }
}

/// After the loop: parks the client when the loop found it idle (taking
/// `guard` with it), or finishes it ([`Client::finish`]). Returns the
/// connection when it still deserves a polite close.
fn settle(client: Client, end: End, home: &Arc<Home>, guard: &mut LiveGuard) -> Option<Conn> {
    if let End::Park = end
        && let Some(lot) = &home.lot
    {
        return match lot.park(home, client, guard) {
            Ok(()) => None,
            // Refused only once the broker shuts down.
            Err(client) => (*client).finish(End::Shutdown, &home.shared),
        };
    }
    client.finish(end, &home.shared)
}

/// When the connection loop parks its client (plain TCP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parking {
    /// Never: no parking lot.
    Never,
    /// After a whole [`PARK_CHECK`] period without an event.
    WhenIdle,
    /// At once if nothing is pending after the first turn (just past
    /// CONNACK), then as [`Parking::WhenIdle`].
    Now,
}

/// What the connection loop waited for.
enum Event {
    Kicked(Kick),
    Durable,
    Writable(io::Result<()>),
    Readable(io::Result<()>),
    Messages,
    Yielded,
    KeepAlive,
    /// The subscriber this connection paused for has room again.
    Room,
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
    ///
    /// With `parking` (a plain-TCP listener with a parking lot), it returns
    /// [`End::Park`] at the first look of its timer after a whole
    /// [`PARK_CHECK`] period without an event (or, with [`Parking::Now`],
    /// after its first turn), when nothing is pending: no bytes buffered
    /// either way, the outbox drained, no output held for the disk, not
    /// paused for backpressure.
    fn run<'a>(
        &'a mut self,
        shared: &'a Shared,
        shutdown: &'a CancellationToken,
        parking: Parking,
    ) -> impl Future<Output = End> + Send + 'a {
        async move {
            let park = parking != Parking::Never && self.conn.transport.is_plain();
            let mut park_now = park && parking == Parking::Now;
            // Messages may have queued while a persistent session was away
            // (or while it was parked).
            let mut outbox_more = true;
            let mut pulled = Pulled::Drained;
            // Any event but the timer since its last look: not idle.
            let mut active = true;
            let keep_alive = tokio::time::sleep_until(self.next_timer(park));
            tokio::pin!(keep_alive);
            // Packets that came in behind the CONNECT, in the same read, are
            // already buffered: handle them before waiting for the socket.
            if let Err(end) = self.handle_packets(shared, &mut outbox_more) {
                return end;
            }
            self.pause_timer(shared, keep_alive.as_mut());
            // The last read forwarded a few messages and left acknowledgements
            // to write: let the subscribers' tasks, woken by the routing, go
            // first and write the messages; the acks follow. A message's way
            // from publisher to subscriber then holds no write of ours to the
            // publisher (mosquitto, too, sends the forwarded PUBLISH before
            // the PUBACK). Under load, when a read brings many messages, the
            // acks go first: they keep the publisher's in-flight window moving.
            let mut forward_first = false;
            // The client closed its side while this connection was paused
            // with packets still to handle.
            let mut closed = false;
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
                if park_now {
                    park_now = false;
                    if !forward_first && self.idle(shared, outbox_more, pulled) {
                        return End::Park;
                    }
                }
                if forward_first {
                    // `turn` (which does this) was skipped.
                    self.release_early(shared);
                }
                // Its own statement: a temporary in the awaited call's
                // arguments would be stored across the wait.
                let held = self.held(shared).is_some();
                let event = self
                    .wait(
                        outbox_more,
                        pulled,
                        forward_first,
                        keep_alive.as_mut(),
                        held,
                        park,
                    )
                    .await;
                forward_first = false;
                if !matches!(event, Event::KeepAlive) {
                    active = true;
                }
                match event {
                    Event::Kicked(Kick::TakenOver) => return End::TakenOver,
                    Event::Kicked(Kick::Shutdown) => return End::Shutdown,
                    Event::Kicked(Kick::SlowClient) => return End::SlowClient,
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
                                // final DISCONNECT, say) first; paused, after
                                // the pause (the loop reads nothing more).
                                if let Err(end) = self.handle_packets(shared, &mut outbox_more) {
                                    return end;
                                }
                                if self.paused().is_none() {
                                    return End::Closed;
                                }
                                closed = true;
                                self.pause_timer(shared, keep_alive.as_mut());
                                continue;
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
                        self.pause_timer(shared, keep_alive.as_mut());
                    }
                    Event::Room => {
                        let resumed = self.take_paused();
                        // What it sent while paused is still unread: it
                        // was not silent.
                        let now = Instant::now();
                        self.session.heard(now.into_std());
                        keep_alive.as_mut().reset(self.next_timer(park));
                        if let Err(end) = self.handle_packets(shared, &mut outbox_more) {
                            // Its turn goes to the next one in line.
                            if let Some(full) = resumed.as_deref() {
                                full.leave_line(&self.slot);
                            }
                            return end;
                        }
                        self.end_turn(resumed.as_deref());
                        if closed && self.paused().is_none() {
                            return End::Closed;
                        }
                        self.pause_timer(shared, keep_alive.as_mut());
                    }
                    Event::KeepAlive if self.paused().is_some() => {
                        // Paused past --slow-client-timeout: the subscriber
                        // it waits for goes, and with it the wait.
                        if let Some(full) = self.paused() {
                            disconnect_slow(shared, full);
                        }
                        // Room comes once the subscriber is gone, or its
                        // turn comes; until then the deadline starts again.
                        self.pause_timer(shared, keep_alive.as_mut());
                    }
                    Event::Messages => outbox_more = true,
                    Event::Durable => {}
                    Event::Yielded => {}
                    Event::KeepAlive => {
                        if self.session.keep_alive_expired(Instant::now().into_std()) {
                            return End::KeepAlive;
                        }
                        if park {
                            if !active && self.idle(shared, outbox_more, pulled) {
                                return End::Park;
                            }
                            active = false;
                        }
                        // Packets arrived since the timer was set, or it
                        // looked for idleness: move it on.
                        keep_alive.as_mut().reset(self.next_timer(park));
                    }
                }
            }
        }
    }

    /// When the loop's timer looks next: the keep-alive deadline, and with
    /// `park` the next look for idleness.
    fn next_timer(&self, park: bool) -> Instant {
        let keep_alive = far_future(&self.session);
        if park {
            keep_alive.min(Instant::now() + PARK_CHECK)
        } else {
            keep_alive
        }
    }

    /// Whether nothing is pending, so the client may park: no bytes
    /// buffered either way, the outbox drained (retained messages owed
    /// included), no output held for the disk, not paused.
    fn idle(&self, shared: &Shared, outbox_more: bool, pulled: Pulled) -> bool {
        self.conn.rbuf.is_empty()
            && !self.conn.transport.wants_write(&self.conn.wbuf)
            && !outbox_more
            && pulled == Pulled::Drained
            && self.paused().is_none()
            && self.released(shared)
    }

    /// The subscriber this connection waits for, while paused.
    fn paused(&self) -> Option<&Arc<ClientSlot>> {
        self.seldom.as_deref().and_then(|s| s.paused.as_ref())
    }

    /// Goes on from a pause: the subscriber it waited for.
    fn take_paused(&mut self) -> Option<Arc<ClientSlot>> {
        self.seldom.as_deref_mut().and_then(|s| s.paused.take())
    }

    /// Just paused for backpressure: the keep-alive timer becomes the
    /// `--slow-client-timeout` deadline (keep-alive is not checked while
    /// the connection does not read).
    fn pause_timer(&self, shared: &Shared, keep_alive: Pin<&mut Sleep>) {
        if self.paused().is_some() {
            let wait = shared
                .limits
                .slow_client_timeout
                .unwrap_or(Duration::from_secs(86_400 * 365));
            keep_alive.reset(Instant::now() + wait);
        }
    }

    /// After handling what it had read since it went on from a pause on
    /// `resumed`: unless it paused on that outbox again, the next paused publisher's turn
    /// to fill that outbox.
    fn end_turn(&self, resumed: Option<&ClientSlot>) {
        if let Some(full) = resumed
            && !self
                .paused()
                .is_some_and(|p| std::ptr::eq(p.as_ref(), full))
        {
            full.pass_turn(&self.slot);
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
            let gate = shared.router.gate();
            let mut moved = Moved::default();
            *pulled = pull(
                &mut self.conn,
                &self.slot,
                &mut self.session,
                &shared.router,
                &mut moved,
            );
            *outbox_more = *pulled != Pulled::Drained;
            if moved.any {
                shared.router.session_changed(&self.slot);
            }
            let persistent = !self.session.is_clean();
            self.after_step(
                shared,
                Step {
                    flows: persistent && moved.in_flight,
                    commit: persistent && moved.exactly_once,
                    ..Step::default()
                },
            );
            drop(gate);
        }
        self.release_early(shared);
        let released = self.released(shared);
        let conn = &mut self.conn;
        if released
            && conn.transport.wants_write(&conn.wbuf)
            && let Err(e) = conn.transport.try_write(&mut conn.wbuf)
        {
            return Some(End::Io(e));
        }
        shared.stats.add(&mut conn.counts);
        conn.shrink();
        None
    }

    /// Records a step's changes for the store: copies the in-flight flows
    /// into the slot, and takes a ticket to hold the output on. Called with
    /// the router's gate held, right after the changes.
    fn after_step(&mut self, shared: &Shared, step: Step) {
        if step.flows {
            shared.router.flows_changed(&self.slot, &self.session);
        }
        if (step.commit || !step.copies.is_empty())
            && let Some(commits) = &shared.commits
        {
            let before = self.slot.hold();
            let ticket = commits.request();
            self.slot.set_hold(ticket);
            // The committer wakes the connection through its slot.
            commits.wake_when_durable(ticket, std::task::Waker::from(Arc::clone(&self.slot)));
            if !step.copies.is_empty() || self.seldom.is_some() {
                let s = self.seldom.get_or_insert_with(Box::default);
                if before == 0 || commits.is_durable(before) || s.released_early == before {
                    // Nothing held before this step: a new watch.
                    s.watch = Vec::new();
                    s.watch_strict = false;
                } else if s.watch_ticket != before {
                    // Held output the watch does not cover.
                    s.watch_strict = true;
                }
                s.watch_strict |= step.commit;
                if s.watch_strict {
                    // Only the commit releases it: nothing to watch.
                    s.watch = Vec::new();
                } else {
                    s.watch.extend(step.copies);
                }
                s.watch_ticket = ticket;
            }
        }
    }

    /// Lets the held output go before its commit when all it promises is
    /// delivered: every step held is QoS 1 PUBLISHes whose copies in
    /// persistent sessions are all acknowledged by their subscribers
    /// ([`crate::router::Router::copies_gone`]; otherwise it asks to be
    /// woken when they may be). The disk is there to keep a message until
    /// it is delivered; one already delivered everywhere it was going
    /// needs none, and its PUBACK need not wait for a flush (issue 14: the
    /// flush, not the work, bounded publishers with a few messages in
    /// flight). The commit still comes, for the sessions' sake.
    fn release_early(&mut self, shared: &Shared) {
        let (Some(commits), Some(s)) = (shared.commits.as_deref(), self.seldom.as_deref_mut())
        else {
            return;
        };
        let hold = self.slot.hold();
        if hold == 0
            || s.watch_ticket != hold
            || s.watch_strict
            || s.released_early == hold
            || s.watch.is_empty()
            || commits.is_durable(hold)
        {
            return;
        }
        let waker = std::task::Waker::from(Arc::clone(&self.slot));
        if shared.router.copies_gone(&mut s.watch, &waker) {
            s.released_early = hold;
            s.watch = Vec::new();
        }
    }

    /// The commits to wait for while the output is held (small: the wait
    /// is stored in the connection's task).
    fn held<'a>(&self, shared: &'a Shared) -> Option<&'a Commits> {
        shared.commits.as_deref().filter(|c| {
            let hold = self.slot.hold();
            hold != 0
                && !c.is_durable(hold)
                && self
                    .seldom
                    .as_deref()
                    .is_none_or(|s| s.released_early != hold)
        })
    }

    /// Whether the output may go out: nothing in it waits for the disk.
    fn released(&self, shared: &Shared) -> bool {
        self.held(shared).is_none()
    }

    /// Waits for the next event, in this order of priority: a kick from the
    /// router, the socket writable (while output waits), readable (while
    /// there is room for output), messages in the outbox (once it was
    /// drained), room in the outbox this connection paused for, one yield
    /// to other tasks (while messages wait but the write buffer was full),
    /// the keep-alive deadline (when it is on, or `park` looks for
    /// idleness; while paused, the slow-client deadline).
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
        held: bool,
        park: bool,
    ) -> impl Future<Output = Event> + Send + 'a {
        // Output held for the disk waits for its commit (the slot says when
        // it may be there), not for the socket.
        let wants_write = !held && self.conn.transport.wants_write(&self.conn.wbuf);
        let paused = self.paused().is_some();
        let room = self.conn.wbuf.len() < HIGH_WATER;
        let can_read = room && !paused;
        // Messages still wait (or retained ones are owed) and there is room
        // for them: come straight back after letting other tasks run once.
        // Paused or not: a paused publisher still delivers to its own client.
        let pull_again =
            outbox_more && matches!(pulled, Pulled::BufferFull | Pulled::Paused) && room;
        // While paused, the timer is the slow-client deadline; with `park`,
        // it also looks for idleness.
        let keep_alive_on = self.session.keep_alive_deadline().is_some() || paused || park;
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            // One look at the slot (one lock) for a kick and for messages;
            // messages come after the socket, so that a client's close (or
            // its acks) is seen before more is sent to it.
            let slot = self.slot.poll_event(cx, !outbox_more);
            if let Poll::Ready(SlotEvent::Kicked(kick)) = slot {
                return Poll::Ready(Event::Kicked(kick));
            }
            if let Poll::Ready(SlotEvent::Durable) = slot {
                return Poll::Ready(Event::Durable);
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
            if let Some(full) = self.paused()
                && full.poll_room(cx, &self.slot).is_ready()
            {
                return Poll::Ready(Event::Room);
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
    /// The router's gate is held throughout (see [`crate::router::Changed`]).
    fn handle_packets(&mut self, shared: &Shared, outbox_more: &mut bool) -> Result<usize, End> {
        let gate = shared.router.gate();
        let mut step = Step::default();
        let result = self.handle_packets_in_step(shared, outbox_more, &mut step);
        self.after_step(shared, step);
        drop(gate);
        result
    }

    fn handle_packets_in_step(
        &mut self,
        shared: &Shared,
        outbox_more: &mut bool,
        step: &mut Step,
    ) -> Result<usize, End> {
        let Client {
            conn,
            slot,
            session,
            seldom,
        } = self;
        let persistent = !session.is_clean();
        let now = Instant::now().into_std();
        let mut routed = 0;
        loop {
            if seldom.as_ref().is_some_and(|s| s.paused.is_some()) {
                // Backpressure: the rest waits in the read buffer.
                return Ok(routed);
            }
            if mutant::active("reserved-flags-ignored")
                && let Some(first) = conn.rbuf.first_mut()
                && let Some(expected) =
                    PacketType::from_nibble(*first >> 4).and_then(PacketType::required_flags)
            {
                *first = (*first & 0xf0) | expected;
            }
            let packet = match decode_packet(&mut conn.rbuf, shared.limits.max_packet_size) {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(routed),
                Err(DecodeError::InvalidTopicName {
                    packet: PacketType::Publish,
                    source: TopicError::WildcardInName { wildcard: '#', .. },
                    ..
                }) if mutant::active("publish-hash-topic-accepted") => continue,
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
                    step.flows |= persistent;
                }
                Action::Reply(p) => {
                    // PUBREL (the PUBREC-received state) and PUBCOMP (the
                    // id released) only once their state is on disk.
                    if persistent && matches!(p, Packet::PubRel(_) | Packet::PubComp(_)) {
                        step.flows = true;
                        step.commit = true;
                    }
                    conn.put(&p);
                }
                Action::Route { message, ack } => {
                    // When routing touched stored state (queued for a
                    // persistent session, or retained): the message on disk
                    // before its PUBACK/PUBREC, and a QoS 2 id awaiting
                    // PUBREL with it, or a restart would route a resent
                    // PUBLISH again. A message for clean sessions alone
                    // waits for no disk.
                    crate::router::Router::take_marked();
                    let mut to = shared.router.publish_paced(&message, slot);
                    if to.queued > 0 {
                        routed += 1;
                    }
                    if crate::router::Router::take_marked() {
                        // A QoS 1 message whose only stored trace is its
                        // copies may be acknowledged once they are.
                        if message.qos == mqtt_codec::QoS::AtLeastOnce
                            && !message.retain
                            && !to.copies.is_empty()
                        {
                            step.copies.append(&mut to.copies);
                        } else {
                            step.commit |= message.qos != mqtt_codec::QoS::AtMostOnce;
                        }
                        step.flows |= persistent && message.qos == mqtt_codec::QoS::ExactlyOnce;
                    }
                    // Queued, if past a subscriber's bound: acknowledged.
                    if let Some(ack) = ack {
                        conn.put(&ack);
                    }
                    if to.full.is_some() {
                        shared.stats.publish_paused.fetch_add(1, Ordering::Relaxed);
                        seldom.get_or_insert_with(Box::default).paused = to.full;
                    }
                }
                Action::Subscribe(request) => {
                    // The router grants, the session records the grants and
                    // builds the SUBACK.
                    let grants = shared.router.subscribe(slot, &request.filters);
                    step.commit |= persistent;
                    debug!(filters = request.filters.len(), "subscribed");
                    conn.put(&Packet::SubAck(
                        session.granted(request, grants.return_codes),
                    ));
                    // Retained messages follow the SUBACK through the
                    // outbox, fed from the router as it drains.
                    *outbox_more = true;
                }
                Action::Unsubscribe(request) => {
                    let (held, unsuback) = session.unsubscribe(request);
                    shared.router.unsubscribe(slot, &held);
                    step.commit |= persistent;
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
        let released = self.released(shared);
        let Client {
            mut conn,
            slot,
            session,
            seldom,
        } = self;
        if !released {
            // Acknowledgements of what is not on disk yet never go out.
            conn.wbuf.clear();
        }
        shared.stats.add(&mut conn.counts);
        end_session(&slot, session, seldom, &end, conn.transport.kind(), shared);
        match end {
            // The socket is gone, or the broker is in a hurry.
            End::Closed | End::Io(_) | End::Shutdown => None,
            _ => Some(conn),
        }
    }
}

/// What every end of a client does, with its socket or without (a parked
/// one whose socket failed): logs why it ended, publishes the will unless
/// the client sent DISCONNECT, hands the session back to the router and
/// counts the client gone from its listener (`kind`).
pub(super) fn end_session(
    slot: &Arc<ClientSlot>,
    session: Session,
    seldom: Option<Box<Seldom>>,
    end: &End,
    kind: Kind,
    shared: &Shared,
) {
    let will = seldom.and_then(|s| {
        // Ending while paused: out of that outbox's line, so the
        // publishers behind it are not left waiting for it.
        if let Some(full) = &s.paused {
            full.leave_line(slot);
        }
        s.will
    });
    end.log();
    let skip_will = match end {
        End::Disconnect => !mutant::active("will-on-disconnect"),
        End::Malformed(_) | End::Violation(_) => mutant::active("will-skipped-on-violation"),
        _ => false,
    };
    if !skip_will && let Some(mut will) = will {
        if mutant::active("will-retain-dropped") {
            will.retain = false;
        }
        debug!(topic = %will.topic, "publishing will");
        shared.router.publish_will(&will, slot);
    }
    let mut session = session;
    if matches!(end, End::Shutdown) && crate::mutant::active("forget-connected-session") {
        // Planted bug: the session of a client connected at shutdown
        // is handed back as a clean one, so it is dropped, not saved.
        session.attach(true, 0, std::time::Instant::now());
    }
    shared.router.disconnect(slot, session);
    shared.stats.client_disconnected(kind);
}

/// Tells the subscriber a connection waited for past
/// `--slow-client-timeout` to end ([`Kick::SlowClient`]): its connection
/// logs why it ends, and its queue is kept if its session is persistent.
/// Only a subscriber whose queue has stayed past half that long goes: one
/// that drains, but slowly, makes its publishers wait their turns.
fn disconnect_slow(shared: &Shared, full: &ClientSlot) {
    let Some(wait) = shared.limits.slow_client_timeout else {
        return;
    };
    if full.kick_slow(wait) {
        debug!(subscriber = %full.client_id(), "waited past --slow-client-timeout");
        shared.stats.clients_slow.fetch_add(1, Ordering::Relaxed);
    }
}

/// The keep-alive deadline as a tokio instant (far away when off).
fn far_future(session: &Session) -> Instant {
    match session.keep_alive_deadline() {
        Some(d) => Instant::from_std(d),
        None => Instant::now() + Duration::from_secs(86_400 * 365),
    }
}
