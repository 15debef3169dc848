//! Accept loops for plain TCP, TLS, WebSocket and WebSocket over TLS, one
//! task per connection.
//!
//! Each accepted socket gets its own task and a tracing span holding the
//! peer address, the listener and (once CONNECT is in) the client id. A TLS
//! handshake, and a WebSocket upgrade, must each finish within the connect
//! timeout. Past
//! `--max-connections`, or out of file descriptors, new sockets are closed
//! at once (see `accept_errors.rs`). On shutdown the loops stop accepting
//! and every connection task ends (see [`crate::server`]).
//!
//! A connection task only moves bytes: `open` (the TLS handshake, the
//! WebSocket upgrade (`websocket`) and the I/O around
//! [`crate::session::connect`], up to CONNACK), `buffers` (the
//! socket and its buffers), `pull` (outbox to write buffer), `end` (why it
//! ended) and `connection` (the loop). An idle plain-TCP client gives up
//! its task and parks in its listener's lot (`park`) until its socket, its
//! router slot or its keep-alive deadline wakes it.

mod accept_errors;
pub(crate) mod buffers;
mod connection;
mod end;
mod open;
mod park;
mod pull;
mod tls;
mod transport;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info, info_span, warn};

pub use tls::{TlsError, server_config};
pub use transport::Transport;

use accept_errors::{Report, Shed, Spare, lost_connection, out_of_descriptors};

use crate::auth::Authenticator;
use crate::router::Router;
use crate::stats::{Stats, Transport as Kind};

/// Per-connection limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Largest packet accepted.
    pub max_packet_size: usize,
    /// In-flight window per client.
    pub max_inflight: usize,
    /// How long a publisher waits for a full subscriber before that one is
    /// disconnected (`--slow-client-timeout`); `None` waits for ever.
    pub slow_client_timeout: Option<Duration>,
    /// Time for the TLS handshake, the WebSocket upgrade, and CONNECT.
    pub connect_timeout: Duration,
    /// Most connections at once, 0 for no limit.
    pub max_connections: usize,
}

/// How one listener's connections begin: what it speaks, and for TLS and
/// WebSocket what the opening needs.
#[derive(Clone)]
pub struct Endpoint {
    /// What its clients speak, for logs and counters.
    pub kind: Kind,
    /// The TLS handshake, for `mqtt+tls` and `websockets+tls`.
    pub tls: Option<TlsAcceptor>,
    /// For WebSocket listeners, the only path accepted (`Some(None)`: any).
    pub websocket: Option<Option<String>>,
    /// TLS clients' certificate names serve as user names.
    pub identity_as_username: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("tls", &self.tls.is_some())
            .field("websocket", &self.websocket)
            .field("identity_as_username", &self.identity_as_username)
            .finish()
    }
}

/// How long the accept loop waits after a failure it cannot work around.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    /// The router.
    pub router: Arc<Router>,
    /// Who may connect.
    pub auth: Authenticator,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Limits.
    pub limits: ConnLimits,
    /// User names serve as client ids (`--use-username-as-clientid`).
    pub use_username_as_clientid: bool,
    /// One permit per connection task alive, `--max-connections` of them;
    /// `None` when there is no limit. See [`connection_limit`].
    pub connections: Option<Arc<Semaphore>>,
    /// With `--durability batched`: the tickets a connection waits on
    /// before its acknowledgements go out (see [`crate::store::commit`]).
    pub commits: Option<Arc<crate::store::commit::Commits>>,
}

/// The semaphore behind `--max-connections` (0: no limit, no semaphore).
pub fn connection_limit(max_connections: usize) -> Option<Arc<Semaphore>> {
    (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)))
}

/// A connection task's place under `--max-connections`, given back when
/// the task ends.
type LiveGuard = Option<OwnedSemaphorePermit>;

/// Lets a new socket in, or refuses it past the limit (`None`).
fn admit(shared: &Shared) -> Option<LiveGuard> {
    let Some(connections) = &shared.connections else {
        return Some(None);
    };
    Arc::clone(connections).try_acquire_owned().ok().map(Some)
}

/// What one listener's connections share: what all connections share,
/// the shutdown, and on a plain-TCP listener the parking lot. One pointer
/// in each connection's task, which tokio lays out in steps of 128 bytes.
struct Home {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// Where idle clients park: plain TCP only (TLS and WebSocket clients
    /// never park, see `park.rs`); none if it could not be made.
    lot: Option<park::Lot>,
}

impl Home {
    /// The home of `endpoint`'s connections; on a plain-TCP listener, with
    /// its parking lot, whose task goes on `tracker`.
    fn new(
        endpoint: &Arc<Endpoint>,
        shared: Arc<Shared>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Home> {
        let plain = endpoint.tls.is_none() && endpoint.websocket.is_none();
        let (lot, watch) = match plain.then(|| park::Lot::new(tracker, Arc::clone(endpoint))) {
            Some(Ok((lot, watch))) => (Some(lot), Some(watch)),
            Some(Err(e)) => {
                warn!(error = %e, listener = endpoint.kind.name(), "cannot make the parking lot: idle clients keep their tasks");
                (None, None)
            }
            None => (None, None),
        };
        let home = Arc::new(Home {
            shared,
            shutdown,
            lot,
        });
        if let Some(watch) = watch {
            tracker.spawn(park::watch(Arc::clone(&home), watch));
        }
        home
    }
}

/// Accepts sockets until shutdown; `tls` makes it the TLS listener.
///
/// Sockets past `--max-connections`, and those that come when descriptors
/// have run out (see `accept_errors.rs`), are closed at once and counted in
/// `$SYS/broker/clients/refused`, with a log line per 10 s rather than per
/// socket. Other failures of `accept` are logged the same way and waited
/// out briefly, never retried in a spin.
pub async fn accept_loop(
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let kind = endpoint.kind;
    let listener_name = kind.name();
    let mut spare = Spare::reserve();
    let (mut no_descriptors, mut over_limit, mut failing) =
        (Report::default(), Report::default(), Report::default());
    let home = Home::new(&endpoint, Arc::clone(&shared), shutdown.clone(), &tracker);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let now = tokio::time::Instant::now();
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if out_of_descriptors(&e) => match spare.shed(&listener) {
                Shed::Closed => {
                    shared.stats.connections_refused.fetch_add(1, Relaxed);
                    if let Some(refused) = no_descriptors.refused(now) {
                        warn!(error = %e, refused, listener = listener_name, "out of file descriptors: closing new connections at once (raise the limit, ulimit -n, or lower --max-connections)");
                    }
                    continue;
                }
                // tokio saw the backlog empty: the next accept waits for a
                // client.
                Shed::NoneWaiting => continue,
                Shed::Failed => {
                    if let Some(failures) = failing.refused(now) {
                        error!(error = %e, failures, listener = listener_name, "accept failed, out of file descriptors");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        () = shutdown.cancelled() => return,
                    }
                }
            },
            Err(e) if lost_connection(&e) => {
                debug!(error = %e, listener = listener_name, "connection lost before accept");
                continue;
            }
            Err(e) => {
                // Out of kernel memory and the like: back off briefly
                // rather than spin.
                if let Some(failures) = failing.refused(now) {
                    error!(error = %e, failures, listener = listener_name, "accept failed");
                }
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        if let Some(refused_in_all) = no_descriptors.recovered() {
            info!(
                refused_in_all,
                listener = listener_name,
                "file descriptors free again: accepting connections again"
            );
        }
        failing.recovered();
        let Some(guard) = admit(&shared) else {
            shared.stats.connections_refused.fetch_add(1, Relaxed);
            if let Some(refused) = over_limit.refused(now) {
                let max = shared.limits.max_connections;
                warn!(%peer, max_connections = max, refused, "connection limit reached, closing new connections");
            }
            continue;
        };
        if let Some(refused_in_all) = over_limit.recovered() {
            info!(
                refused_in_all,
                "below the connection limit again: accepting connections again"
            );
        }
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        match &home.lot {
            // A plain socket waits for its first bytes in the lot.
            Some(lot) => lot.take_new(&home, tcp, guard, now, peer),
            None => serve_in_task(&tracker, &endpoint, &home, tcp, guard, now, peer),
        }
    }
}

/// Serves a socket in a task of its own on `tracker`, from its accept
/// (`accepted`) on, in its connection's span: one just accepted, or one
/// the parking lot held until its first bytes came.
fn serve_in_task(
    tracker: &TaskTracker,
    endpoint: &Arc<Endpoint>,
    home: &Arc<Home>,
    tcp: tokio::net::TcpStream,
    guard: LiveGuard,
    accepted: tokio::time::Instant,
    peer: std::net::SocketAddr,
) {
    let span = conn_span(&peer, endpoint.kind, None);
    tracker.spawn(
        connection::serve(tcp, Arc::clone(endpoint), Arc::clone(home), guard, accepted)
            .instrument(span),
    );
}

/// The span a connection's logs carry: who (`peer`), over what, and once
/// CONNECT named it (recorded then, or given here for a client coming back
/// from its parking lot, which keeps no span: a span held open costs half a
/// kilobyte in the log subscriber's registry, as much as the parked client
/// itself).
pub(crate) fn conn_span(
    peer: &dyn std::fmt::Display,
    kind: crate::stats::Transport,
    client_id: Option<&str>,
) -> tracing::Span {
    let span = info_span!(
        "conn",
        %peer,
        transport = kind.name(),
        client_id = tracing::field::Empty
    );
    if let Some(id) = client_id {
        span.record("client_id", id);
    }
    span
}

#[cfg(test)]
mod tests;
