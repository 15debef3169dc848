//! The committer: one blocking thread that writes the store, in batches.
//!
//! With `--durability none` it saves what changed every
//! `--autosave-interval` (as mosquitto's autosave does, but writing only
//! what changed). With `--durability batched` a connection that changed
//! durable state takes a *ticket* ([`Commits::request`]) and holds its
//! outgoing bytes (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, a QoS
//! 2 PUBLISH) until the committer reports that ticket durable
//! ([`Commits::poll_durable`]). The committer wakes on a ticket, takes every
//! change made so far in one consistent cut (see
//! [`crate::router::Changed`]), writes it in one redb transaction with one
//! fsync, and marks every ticket taken before the cut durable: group
//! commit, many acknowledgements per fsync, and a connection never waits
//! for more than the commit running when it asked plus its own.
//!
//! A failed write (ENOSPC, EIO) is logged at ERROR once per streak,
//! counted (`$SYS/broker/store/write-errors`), and retried with a backoff
//! from 50 ms to 5 s on a reopened file; the changes stay pending, so
//! nothing is lost once the disk takes writes again, and in the batched
//! mode no acknowledgement goes out meanwhile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tracing::{debug, error, info};

use super::Store;
use crate::router::Router;

/// How durable an acknowledgement is (`--durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Nothing held: what changed is written every `--autosave-interval`
    /// and at shutdown, as mosquitto does; a crash loses what changed since.
    #[default]
    None,
    /// Acknowledgements wait until what they promise is on disk; many
    /// share one fsync.
    Batched,
}

impl Durability {
    /// The name, as the flag and the config key spell it.
    pub fn name(self) -> &'static str {
        match self {
            Durability::None => "none",
            Durability::Batched => "batched",
        }
    }
}

/// The first and the longest wait before a failed write is retried.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

/// Tickets and their durability, shared by the connections and the
/// committer thread.
#[derive(Debug, Default)]
pub struct Commits {
    /// The last ticket handed out.
    requested: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    /// Who waits for which ticket; woken once it is durable.
    waiters: Mutex<Vec<(u64, Waker)>>,
    /// The task on the broker's runtime that wakes the waiters (see
    /// [`Commits::relay`]); without it the committer wakes them itself.
    relay: Mutex<Option<Waker>>,
    /// A ticket was taken since the relay last told the committer to go.
    wanted: std::sync::atomic::AtomicBool,
    signal: Mutex<Signal>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Signal {
    stop: bool,
    /// The committer sleeps on the condition variable: a new ticket must
    /// wake it. While it commits it looks for new tickets itself, and a
    /// wake would be a system call for nothing (std's condition variable
    /// makes one per notify, waiter or not) on the path of every
    /// acknowledgement.
    asleep: bool,
    /// Tickets wait and their batch is complete: commit (see
    /// [`Commits::request`]).
    go: bool,
}

impl Commits {
    /// A ticket for the changes made so far: once it is durable, they are
    /// on disk. Call it after making the changes.
    ///
    /// The commit does not start at once: the relay task (when it runs)
    /// is told, and it tells the committer only once the tasks the
    /// runtime had ready have run, so the connections that read in the
    /// same turn (every publisher whose packets came in together) share
    /// the commit. Started at the first ticket, a commit would take that
    /// one connection's messages, and the others would wait for the next,
    /// each commit paying a system call and a disk flush for a few
    /// messages (issue 14: pairs made a commit per 68 messages of 160 in
    /// flight).
    pub fn request(&self) -> u64 {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        // The first ticket since the relay's last word tells it; the
        // others of the batch need no lock.
        if !self.wanted.swap(true, Ordering::SeqCst) {
            match &*lock(&self.relay) {
                Some(relay) => relay.wake_by_ref(),
                None => {
                    self.wanted.store(false, Ordering::SeqCst);
                    self.go();
                }
            }
        }
        ticket
    }

    /// Tells the committer that tickets wait, waking it if it sleeps.
    fn go(&self) {
        // The lock orders this wake-up with the committer's check; the
        // notify comes after it is released: a committer woken while it is
        // still held would run, find it taken and sleep again on it, two
        // more thread switches on the path of every commit (issue 14).
        let asleep = {
            let mut signal = lock(&self.signal);
            signal.go = true;
            signal.asleep
        };
        if asleep {
            self.wake.notify_one();
        }
    }

    /// Whether `ticket` is durable.
    pub fn is_durable(&self, ticket: u64) -> bool {
        self.durable.load(Ordering::SeqCst) >= ticket
    }

    /// Ready once `ticket` is durable; otherwise wakes `cx` when it may be.
    pub fn poll_durable(&self, cx: &mut Context<'_>, ticket: u64) -> Poll<()> {
        if self.is_durable(ticket) {
            return Poll::Ready(());
        }
        self.wake_when_durable(ticket, cx.waker().clone());
        if self.is_durable(ticket) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Wakes `waker` once `ticket` is durable (at once if it is already).
    pub fn wake_when_durable(&self, ticket: u64, waker: Waker) {
        lock(&self.waiters).push((ticket, waker));
        // Looked at again after registering, so an advance in between is
        // not missed.
        if self.is_durable(ticket) {
            self.wake_durable();
        }
    }

    fn advance(&self, ticket: u64) {
        self.durable.fetch_max(ticket, Ordering::SeqCst);
        match &*lock(&self.relay) {
            Some(relay) => relay.wake_by_ref(),
            None => self.wake_durable(),
        }
    }

    /// Wakes the connections waiting for durable tickets from inside the
    /// runtime, until it is dropped: run it as a task of the broker's
    /// runtime. Each commit then wakes this one task; a wake from the
    /// committer's own thread costs a system call (the runtime's thread is
    /// parked in epoll and must be told), one from inside the runtime
    /// costs none, and a commit may release a dozen connections (issue
    /// 14: those wakes took a fifth of the committer's time).
    pub fn relay(self: Arc<Self>) -> impl std::future::Future<Output = ()> + Send {
        /// Unregisters the relay when its task ends, so the committer
        /// wakes the waiters itself again (none is left waiting).
        struct Unregister(Arc<Commits>);
        impl Drop for Unregister {
            fn drop(&mut self) {
                *lock(&self.0.relay) = None;
                self.0.wanted.store(false, Ordering::SeqCst);
                self.0.go();
                self.0.wake_durable();
            }
        }
        let guard = Unregister(self);
        // The relay let the other ready tasks run once since a ticket was
        // wanted.
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            let commits = &guard.0;
            {
                let mut relay = lock(&commits.relay);
                if !relay.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *relay = Some(cx.waker().clone());
                }
            }
            commits.wake_durable();
            if commits.wanted.load(Ordering::SeqCst) {
                if yielded {
                    yielded = false;
                    commits.wanted.store(false, Ordering::SeqCst);
                    commits.go();
                } else {
                    // Polled again after the tasks already waiting to run
                    // (a task that wakes itself goes to the back).
                    yielded = true;
                    cx.waker().wake_by_ref();
                }
            }
            Poll::<()>::Pending
        })
    }

    fn wake_durable(&self) {
        let durable = self.durable.load(Ordering::SeqCst);
        let ready: Vec<Waker> = {
            let mut waiters = lock(&self.waiters);
            let (ready, waiting) = std::mem::take(&mut *waiters)
                .into_iter()
                .partition::<Vec<_>, _>(|(t, _)| *t <= durable);
            *waiters = waiting;
            ready.into_iter().map(|(_, w)| w).collect()
        };
        for w in ready {
            w.wake();
        }
    }

    /// Ends the committer thread after the commit it is running, if any.
    pub fn stop(&self) {
        lock(&self.signal).stop = true;
        self.wake.notify_all();
    }
}

/// The committer thread's handle.
#[derive(Debug)]
pub struct Committer {
    commits: Arc<Commits>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    /// Starts the thread: it saves `router`'s changes into `store` every
    /// `autosave` (if set) and whenever a ticket of `commits` waits.
    pub fn start(
        store: Arc<Store>,
        router: Arc<Router>,
        commits: Arc<Commits>,
        autosave: Option<Duration>,
    ) -> std::io::Result<Self> {
        let shared = Arc::clone(&commits);
        // The thread logs where its starter logs (a test's own subscriber
        // included) and, in a mutation run, carries the same planted bug.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        #[cfg(feature = "mutants")]
        let mutant = crate::mutant::on_this_thread();
        let thread = std::thread::Builder::new()
            .name("store-committer".into())
            .spawn(move || {
                let _log = tracing::dispatcher::set_default(&dispatch);
                #[cfg(feature = "mutants")]
                crate::mutant::set_for_this_thread(mutant.as_deref());
                run(&store, &router, &shared, autosave);
            })?;
        Ok(Self {
            commits,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (a commit under way finishes).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.commits.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A broker dropped without its shutdown (its serving future dropped, as a
/// test's kill does) still stops the thread, so the store file is closed
/// and a new broker may open it.
impl Drop for Committer {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(store: &Store, router: &Router, commits: &Commits, autosave: Option<Duration>) {
    let mut next_autosave = autosave.map(|i| Instant::now() + i);
    // While writes fail: when to try again, and the wait after that.
    let mut retry: Option<(Instant, Duration)> = None;
    loop {
        let autosaving = {
            let mut signal = lock(&commits.signal);
            loop {
                signal.asleep = false;
                if signal.stop {
                    return;
                }
                let now = Instant::now();
                let waiting = commits.requested.load(Ordering::SeqCst)
                    > commits.durable.load(Ordering::SeqCst);
                let retry_at = retry.map(|(at, _)| at);
                let due = match retry_at {
                    Some(at) => now >= at,
                    None => waiting && signal.go,
                };
                let autosave_due = next_autosave.is_some_and(|t| now >= t);
                if due || autosave_due {
                    // This cut takes every ticket so far.
                    signal.go = false;
                    break autosave_due;
                }
                let deadline = [retry_at, next_autosave].into_iter().flatten().min();
                signal.asleep = true;
                signal = match deadline {
                    Some(d) => {
                        commits
                            .wake
                            .wait_timeout(signal, d.saturating_duration_since(now))
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                    None => commits.wake.wait(signal).unwrap_or_else(|p| p.into_inner()),
                };
            }
        };
        if autosaving && let (Some(next), Some(interval)) = (&mut next_autosave, autosave) {
            *next = Instant::now() + interval;
        }
        // Every ticket handed out before the save takes its cut is covered.
        let ticket = commits.requested.load(Ordering::SeqCst);
        match store.save(router) {
            Ok(saved) => {
                commits.advance(ticket);
                if retry.take().is_some() {
                    info!(path = %store.path().display(), "store writes again; held acknowledgements go out");
                }
                if autosaving {
                    debug!(keys = saved.keys(), "state autosaved");
                    // With a write-ahead log its records go into redb now.
                    // What the log holds is on disk already: a failure
                    // holds no acknowledgement, and the next autosave (or
                    // the log's growth) tries again.
                    if let Err(e) = store.checkpoint() {
                        router
                            .stats()
                            .store_write_errors
                            .fetch_add(1, Ordering::Relaxed);
                        error!(error = %e, "writing the write-ahead log into the store failed; the log keeps every change and grows until it works");
                    }
                }
            }
            Err(e) => {
                router
                    .stats()
                    .store_write_errors
                    .fetch_add(1, Ordering::Relaxed);
                let wait = match retry {
                    None => {
                        error!(
                            error = %e,
                            "writing the store failed (disk full?); retrying until it works, acknowledgements of --durability batched held meanwhile"
                        );
                        BACKOFF.0
                    }
                    Some((_, wait)) => (wait * 2).min(BACKOFF.1),
                };
                retry = Some((Instant::now() + wait, wait));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
