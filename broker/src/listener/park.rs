//! The parking lot: idle plain-TCP clients kept without a task of their
//! own (issue 15).
//!
//! An idle connection costs mostly its task (the loop's future, 640 bytes
//! as tokio lays it out) and its tokio socket registration (256 bytes):
//! more than mosquitto spends on a whole client. So a plain-TCP connection
//! whose loop had nothing to do for a whole [`PARK_CHECK`] period (see
//! `connection.rs`) hands its client to its listener's [`Lot`] and ends its
//! task. The lot keeps, boxed, what the client needs between packets: the
//! `std` socket, the router slot, the session, its will and its
//! `--max-connections` permit. Not its tracing span: an open span costs
//! about 500 bytes in the log subscriber's registry, as much as all the
//! rest; a new one with the same fields is made when the client wakes
//! (see `conn_span`). The buffers are empty then and the counters flushed.
//! A client just past CONNACK with nothing to do parks at once
//! (see `connection.rs`), so a burst of connections does not leave the
//! memory of a task for each behind.
//!
//! One task per lot watches what would wake a parked client:
//!
//! - its socket readable (a packet, the peer's close or a socket error):
//!   every parked socket sits in one `mio::Poll` (epoll) set,
//!   edge-triggered, whose descriptor one tokio [`AsyncFd`] watches;
//!   registering a socket that already holds bytes reports it at once, so
//!   nothing sent while it parked is missed;
//! - its slot's events (a message queued, a takeover, the shutdown, a
//!   slowness kick, a commit on disk): parking leaves a small waker in the
//!   slot, which sends the client's key to the lot;
//! - its keep-alive deadline: a heap of deadlines and one timer.
//!
//! Any of them unparks the client: the lot takes it out of its table, takes
//! the socket out of the epoll set, gives it back to tokio and spawns a task
//! running the same connection loop, which finds what happened (or the
//! keep-alive past) as any connection does, then parks again or ends. Only
//! the lot's task unparks, so a client is never resumed twice; a wake-up
//! carries the generation the client parked with, so a late one for a
//! client that left cannot unpark another parked in its place.
//!
//! TLS and WebSocket connections never park: their state (a rustls
//! connection, the WebSocket framing) costs kilobytes anyway, and its
//! buffered bytes would have to be watched too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, warn};

use super::buffers::Conn;
use super::connection::{Client, Seldom, end_session, resume};
use super::end::End;
use super::transport::{Stream, Transport};
use super::{Home, LiveGuard};
use crate::router::ClientSlot;
use crate::session::Session;
use crate::stats::Transport as Kind;

/// How often a plain connection's loop looks whether it is idle. It parks
/// at the first look after a whole period without an event but timers,
/// so after 1 to 2 s of quiet: a client that talks every second or more
/// keeps its task (unparking costs a task spawn and two `epoll_ctl`
/// calls), while one that only pings parks again after each ping. Short
/// enough that the conformance suite's idle steps park their clients.
pub(super) const PARK_CHECK: Duration = Duration::from_secs(1);

/// Socket events taken in one `epoll_wait` of the lot.
const EVENTS: usize = 256;

/// The heap of deadlines is rebuilt without its stale entries once they
/// outnumber the parked clients by this many.
const STALE_TIMERS: usize = 64;

/// One parked client: what its connection's task held, less the buffers.
struct Parked {
    tcp: std::net::TcpStream,
    slot: Arc<ClientSlot>,
    session: Session,
    seldom: Option<Box<Seldom>>,
    guard: LiveGuard,
    /// Told apart from earlier clients parked under the same key.
    generation: u32,
}

/// A socket that has not sent anything yet: accepted, and watched for its
/// first bytes (issue 15: a socket that has not sent CONNECT holds almost
/// nothing; with a task and the wait for CONNECT it held 1.75 KB).
struct Fresh {
    tcp: std::net::TcpStream,
    guard: LiveGuard,
    /// When it was accepted: `--connect-timeout` counts from here.
    accepted: Instant,
    generation: u32,
}

/// What the lot holds under a key.
enum Entry {
    /// An idle client.
    Client(Box<Parked>),
    /// A socket waiting for its first bytes.
    Fresh(Box<Fresh>),
}

impl Entry {
    fn generation(&self) -> u32 {
        match self {
            Entry::Client(p) => p.generation,
            Entry::Fresh(f) => f.generation,
        }
    }

    fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Entry::Client(p) => p.tcp.as_raw_fd(),
            Entry::Fresh(f) => f.tcp.as_raw_fd(),
        }
    }
}

/// What the lot's task is told.
#[derive(Debug, Clone, Copy)]
enum Note {
    /// The slot of the client parked under this key and generation has an
    /// event (or its socket could not be watched): unpark it.
    Woken(usize, u32),
    /// A deadline earlier than the others was added.
    Timers,
}

/// The lot's table, behind one lock.
#[derive(Default)]
struct State {
    /// Parked clients and fresh sockets, keyed by their epoll token.
    /// Boxed: a slab grows by doubling, and empty places cost a pointer
    /// rather than a client.
    parked: Slab<Entry>,
    next_generation: u32,
    /// Keep-alive deadlines of parked clients (key, generation); entries
    /// of clients that left are skipped, and dropped in a rebuild.
    timers: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    /// The lot's task has ended (shutdown, nothing parked): nobody parks.
    closed: bool,
}

impl State {
    fn holds(&self, key: usize, generation: u32) -> bool {
        self.parked
            .get(key)
            .is_some_and(|p| p.generation() == generation)
    }
}

/// The parking lot of one plain-TCP listener (see the module's doc), in
/// its listener's [`Home`].
pub(super) struct Lot {
    /// Where parked sockets are added to, and taken from, the epoll set.
    registry: mio::Registry,
    state: Mutex<State>,
    notes: mpsc::UnboundedSender<Note>,
    /// The connections' tracker: resumed clients' tasks go there.
    tracker: TaskTracker,
    /// The listener's endpoint, for the sockets that wake fresh.
    endpoint: Arc<super::Endpoint>,
}

/// What the lot's task ([`watch`]) owns: the epoll set, and what it is
/// told.
pub(super) struct Watch {
    poll: AsyncFd<mio::Poll>,
    notes: mpsc::UnboundedReceiver<Note>,
}

impl Lot {
    /// Makes a lot whose clients' tasks go on `tracker`; its task is
    /// [`watch`], given the [`Watch`] returned.
    pub(super) fn new(
        tracker: &TaskTracker,
        endpoint: Arc<super::Endpoint>,
    ) -> io::Result<(Lot, Watch)> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        // tokio 1.54 made this registration `unsafe` (`register_with_interest`,
        // tokio PR 8587), for types whose descriptor may change or close
        // under it; this crate forbids `unsafe`. Here the contract holds: the
        // `Poll` owns its epoll descriptor, the `AsyncFd` owns the `Poll`,
        // and nothing swaps or closes it while the `AsyncFd` lives.
        #[expect(
            deprecated,
            reason = "the safe spelling of register_with_interest; its contract holds (see above)"
        )]
        let poll = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE)?;
        let (notes, received) = mpsc::unbounded_channel();
        let lot = Lot {
            registry,
            state: Mutex::new(State::default()),
            notes,
            tracker: tracker.clone(),
            endpoint,
        };
        let watch = Watch {
            poll,
            notes: received,
        };
        Ok((lot, watch))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every step under the lock leaves the table consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks `client`, taking its `guard`: from here the lot holds it
    /// until something wakes it. Gives the client back, unparked, when the
    /// broker is shutting down (or its transport is not plain TCP, which
    /// the loop never parks): it ends then.
    ///
    /// The order keeps every event: the client goes into the table, then
    /// its waker into the slot (an event already there unparks it at once),
    /// then its socket into the epoll set (bytes already there are reported
    /// at once).
    pub(super) fn park(
        &self,
        home: &Arc<Home>,
        client: Client,
        guard: &mut LiveGuard,
    ) -> Result<(), Box<Client>> {
        let mut state = self.state();
        if state.closed || home.shutdown.is_cancelled() {
            return Err(Box::new(client));
        }
        let Client {
            mut conn,
            slot,
            session,
            seldom,
        } = client;
        let seldom = Seldom::for_parking(seldom);
        home.shared.stats.add(&mut conn.counts);
        let tcp = match conn.transport.into_plain() {
            Ok(tcp) => tcp,
            Err(transport) => {
                return Err(Box::new(Client {
                    conn: Conn::new(transport),
                    slot,
                    session,
                    seldom,
                }));
            }
        };
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                // Taking it from tokio failed: the socket is closed.
                drop(state);
                end_session(
                    &slot,
                    session,
                    seldom,
                    &End::Io(e),
                    Kind::Plain,
                    &home.shared,
                );
                return Ok(());
            }
        };
        let generation = state.next_generation;
        state.next_generation = generation.wrapping_add(1);
        let deadline = session.keep_alive_deadline().map(Instant::from_std);
        let fd = tcp.as_raw_fd();
        let waker = Waker::from(Arc::new(SlotWaker {
            home: Arc::downgrade(home),
            key: state.parked.vacant_key(),
            generation,
        }));
        let key = state.parked.insert(Entry::Client(Box::new(Parked {
            tcp,
            slot: Arc::clone(&slot),
            session,
            seldom,
            guard: guard.take(),
            generation,
        })));
        home.shared.stats.clients_parked.fetch_add(1, Relaxed);
        debug!("idle, parked");
        let woken = slot
            .poll_event(&mut Context::from_waker(&waker), true)
            .is_ready();
        let watched = self
            .registry
            .register(&mut SourceFd(&fd), Token(key), Interest::READABLE);
        if let Err(e) = &watched {
            warn!(error = %e, "cannot watch a parked socket, unparking it");
        }
        if woken || watched.is_err() {
            self.note(Note::Woken(key, generation));
        }
        if let Some(deadline) = deadline {
            self.add_timer(&mut state, deadline, key, generation);
        }
        Ok(())
    }

    fn add_timer(&self, state: &mut State, deadline: Instant, key: usize, generation: u32) {
        let earliest = state
            .timers
            .peek()
            .is_none_or(|Reverse((first, ..))| deadline < *first);
        state.timers.push(Reverse((deadline, key, generation)));
        if earliest {
            self.note(Note::Timers);
        }
    }

    /// Takes a socket just accepted: one that has sent bytes already (a
    /// client's CONNECT usually comes with its handshake) is served at
    /// once; the others wait here, without a task, until they send
    /// something (then they are served from the accept on, see
    /// [`connection::serve`](super::connection::serve)) or `--connect-timeout`
    /// after `accepted` (then served too, which finds the time up and
    /// closes them, with the usual log line), or the broker shuts down.
    pub(super) fn take_new(
        &self,
        home: &Arc<Home>,
        tcp: tokio::net::TcpStream,
        guard: LiveGuard,
        accepted: Instant,
        peer: std::net::SocketAddr,
    ) {
        let mut first = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        let silent = matches!(
            socket2::SockRef::from(&tcp).peek(&mut first),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        );
        let mut state = self.state();
        if !silent || state.closed || home.shutdown.is_cancelled() {
            drop(state);
            super::serve_in_task(
                &self.tracker,
                &self.endpoint,
                home,
                tcp,
                guard,
                accepted,
                peer,
            );
            return;
        }
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                // Taking it from tokio failed: the socket is closed.
                debug!(%peer, error = %e, "socket lost before CONNECT");
                return;
            }
        };
        let generation = state.next_generation;
        state.next_generation = generation.wrapping_add(1);
        let fd = tcp.as_raw_fd();
        let key = state.parked.insert(Entry::Fresh(Box::new(Fresh {
            tcp,
            guard,
            accepted,
            generation,
        })));
        if let Err(e) = self
            .registry
            .register(&mut SourceFd(&fd), Token(key), Interest::READABLE)
        {
            warn!(%peer, error = %e, "cannot watch a new socket, serving it at once");
            self.note(Note::Woken(key, generation));
            return;
        }
        let deadline = accepted + home.shared.limits.connect_timeout;
        self.add_timer(&mut state, deadline, key, generation);
    }

    /// Tells the lot's task; it lives as long as anything is parked, and
    /// nothing is told once it has ended.
    fn note(&self, note: Note) {
        let _ = self.notes.send(note);
    }

    /// Unparks the client under `key` (when it parked with `generation`,
    /// if given) into a task of its own.
    fn unpark(&self, home: &Arc<Home>, key: usize, generation: Option<u32>) {
        let parked = {
            let mut state = self.state();
            let live = match generation {
                Some(g) => state.holds(key, g),
                None => state.parked.contains(key),
            };
            if !live {
                return;
            }
            let parked = state.parked.remove(key);
            // Out of the set before its key can be reused. Failing only
            // for a socket that was never added (see `park`).
            if let Err(e) = self.registry.deregister(&mut SourceFd(&parked.fd())) {
                debug!(error = %e, "parked socket was not watched");
            }
            parked
        };
        let parked = match parked {
            Entry::Client(parked) => parked,
            Entry::Fresh(fresh) => {
                let Fresh {
                    tcp,
                    guard,
                    accepted,
                    ..
                } = *fresh;
                let peer = tcp.peer_addr();
                match (tokio::net::TcpStream::from_std(tcp), peer) {
                    (Ok(tcp), Ok(peer)) => super::serve_in_task(
                        &self.tracker,
                        &self.endpoint,
                        home,
                        tcp,
                        guard,
                        accepted,
                        peer,
                    ),
                    // Gone (the peer reset it) or not taken back by tokio:
                    // closed, as a socket lost before CONNECT is.
                    (Err(e), _) | (_, Err(e)) => debug!(error = %e, "socket lost before CONNECT"),
                }
                return;
            }
        };
        home.shared.stats.clients_parked.fetch_sub(1, Relaxed);
        let Parked {
            tcp,
            slot,
            session,
            seldom,
            guard,
            ..
        } = *parked;
        // A new span with the same fields: the parked client held none.
        let peer = tcp
            .peer_addr()
            .map_or_else(|_| "(gone)".to_owned(), |a| a.to_string());
        let span = super::conn_span(&peer, Kind::Plain, Some(slot.client_id()));
        match tokio::net::TcpStream::from_std(tcp) {
            Ok(tcp) => {
                let client = Client {
                    conn: Conn::new(Transport::new(Stream::Plain(tcp))),
                    slot,
                    session,
                    seldom,
                };
                self.tracker
                    .spawn(resume(client, Arc::clone(home), guard).instrument(span));
            }
            Err(e) => span.in_scope(|| {
                end_session(
                    &slot,
                    session,
                    seldom,
                    &End::Io(e),
                    Kind::Plain,
                    &home.shared,
                );
            }),
        }
    }

    /// Unparks every client whose keep-alive deadline is at or before
    /// `now`.
    fn expire(&self, home: &Arc<Home>, now: Instant) {
        let mut due = Vec::new();
        {
            let mut state = self.state();
            while let Some(Reverse((at, key, generation))) = state.timers.peek().copied()
                && at <= now
            {
                state.timers.pop();
                due.push((key, generation));
            }
        }
        for (key, generation) in due {
            self.unpark(home, key, Some(generation));
        }
    }

    /// The earliest deadline of a client still parked, dropping those of
    /// clients that left.
    fn next_deadline(&self) -> Option<Instant> {
        let mut state = self.state();
        if state.timers.len() > state.parked.len() * 2 + STALE_TIMERS {
            let State { timers, parked, .. } = &mut *state;
            timers.retain(|Reverse((_, key, g))| {
                parked.get(*key).is_some_and(|p| p.generation() == *g)
            });
        }
        while let Some(Reverse((at, key, generation))) = state.timers.peek().copied() {
            if state.holds(key, generation) {
                return Some(at);
            }
            state.timers.pop();
        }
        None
    }

    /// Takes every event the epoll set holds (edge-triggered: all of
    /// them, before waiting again) and unparks their clients.
    fn take_events(
        &self,
        home: &Arc<Home>,
        poll: &mut mio::Poll,
        events: &mut Events,
    ) -> io::Result<()> {
        loop {
            match poll.poll(events, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if events.is_empty() {
                return Ok(());
            }
            for event in events.iter() {
                self.unpark(home, event.token().0, None);
            }
        }
    }

    /// Serves every fresh socket (at shutdown: they end at once, as any
    /// connection that has not sent CONNECT does; no router slot tells
    /// them).
    fn release_fresh(&self, home: &Arc<Home>) {
        let keys: Vec<usize> = self
            .state()
            .parked
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Fresh(_)))
            .map(|(key, _)| key)
            .collect();
        for key in keys {
            self.unpark(home, key, None);
        }
    }

    /// Closes the lot and unparks every client, which then ends as at
    /// shutdown.
    fn close(&self, home: &Arc<Home>) {
        let keys: Vec<usize> = {
            let mut state = self.state();
            state.closed = true;
            state.parked.iter().map(|(key, _)| key).collect()
        };
        for key in keys {
            self.unpark(home, key, None);
        }
    }
}

/// The lot's task: unparks clients as their sockets, slots and deadlines
/// say, until the broker shuts down and none is parked. Spawned on the
/// connections' tracker, so the shutdown waits for it (and so for every
/// parked client).
pub(super) async fn watch(home: Arc<Home>, watch: Watch) {
    let Some(lot) = &home.lot else {
        return;
    };
    let Watch {
        mut poll,
        mut notes,
    } = watch;
    let mut events = Events::with_capacity(EVENTS);
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<Instant> = None;
    let mut shutting_down = false;
    loop {
        if shutting_down {
            // The router's shutdown sweep kicks every slot, so every
            // parked client is on its way out.
            let mut state = lot.state();
            if state.parked.is_empty() {
                state.closed = true;
                return;
            }
        }
        tokio::select! {
            ready = poll.readable_mut() => match ready {
                Ok(mut ready) => {
                    if let Err(e) = lot.take_events(&home, ready.get_inner_mut(), &mut events) {
                        error!(error = %e, "cannot read the parked sockets' events");
                    }
                    ready.clear_ready();
                }
                Err(e) => {
                    // Only when the runtime goes away.
                    error!(error = %e, "cannot watch the parked sockets, unparking them all");
                    lot.close(&home);
                    return;
                }
            },
            note = notes.recv() => match note {
                Some(Note::Woken(key, generation)) => lot.unpark(&home, key, Some(generation)),
                Some(Note::Timers) => {}
                // The lot holds a sender: it never ends first.
                None => return,
            },
            () = &mut timer, if armed.is_some() => {
                armed = None;
                lot.expire(&home, Instant::now());
            }
            () = home.shutdown.cancelled(), if !shutting_down => {
                shutting_down = true;
                lot.release_fresh(&home);
            }
        }
        let next = lot.next_deadline();
        if next != armed {
            if let Some(at) = next {
                timer.as_mut().reset(at);
            }
            armed = next;
        }
    }
}

/// Left in a parked client's slot: an event there sends the client's key
/// to the lot. Holds the listener's home weakly: the waker may stay in the
/// slot after the client left.
struct SlotWaker {
    home: Weak<Home>,
    key: usize,
    generation: u32,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(home) = self.home.upgrade()
            && let Some(lot) = &home.lot
        {
            lot.note(Note::Woken(self.key, self.generation));
        }
    }
}
