//! Accept loops for plain TCP and TLS, one task per connection.
//!
//! Each accepted socket gets its own task and a tracing span holding the
//! peer address, the listener and (once CONNECT is in) the client id. A TLS
//! handshake must finish within the connect timeout. Past
//! `--max-connections` new sockets are closed at once. On shutdown the
//! loops stop accepting and every connection task ends (see
//! [`crate::server`]).

mod buffers;
mod connection;
mod end;
mod open;
mod pull;
mod tls;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info_span, warn};

pub use tls::{TlsError, server_config};
pub use transport::Transport;

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
    /// Time for the TLS handshake and for CONNECT.
    pub connect_timeout: Duration,
    /// Most connections at once, 0 for no limit.
    pub max_connections: usize,
}

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
    /// TLS clients' certificate names serve as user names.
    pub identity_as_username: bool,
    /// One permit per connection task alive, `--max-connections` of them;
    /// `None` when there is no limit. See [`connection_limit`].
    pub connections: Option<Arc<Semaphore>>,
}

/// The semaphore behind `--max-connections` (0: no limit, no semaphore).
pub fn connection_limit(max_connections: usize) -> Option<Arc<Semaphore>> {
    (max_connections > 0).then(|| Arc::new(Semaphore::new(max_connections)))
}

/// A connection task's place under `--max-connections`, given back when
/// the task ends.
type LiveGuard = Option<OwnedSemaphorePermit>;

/// Lets a new socket in, or refuses it past the limit.
fn admit(shared: &Shared, peer: SocketAddr) -> Option<LiveGuard> {
    let Some(connections) = &shared.connections else {
        return Some(None);
    };
    match Arc::clone(connections).try_acquire_owned() {
        Ok(permit) => Some(Some(permit)),
        Err(_) => {
            let max = shared.limits.max_connections;
            warn!(%peer, max_connections = max, "connection limit reached, closing new connection");
            None
        }
    }
}

/// Accepts sockets until shutdown; `tls` makes it the TLS listener.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let kind = if tls.is_some() {
        Kind::Tls
    } else {
        Kind::Plain
    };
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.cancelled() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                error!(error = %e, listener = kind.name(), "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
        };
        let Some(guard) = admit(&shared, peer) else {
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let span = info_span!(
            "conn",
            %peer,
            transport = kind.name(),
            client_id = tracing::field::Empty
        );
        tracker.spawn(
            connection::serve(
                tcp,
                tls.clone(),
                Arc::clone(&shared),
                shutdown.clone(),
                guard,
            )
            .instrument(span),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Every wait in these tests ends within this.
    const WAIT: Duration = Duration::from_secs(10);

    /// What a listener shares, with `connections` as the connection limit.
    fn shared(connections: Option<Arc<Semaphore>>) -> Arc<Shared> {
        let stats = Arc::new(Stats::new());
        Arc::new(Shared {
            router: Arc::new(Router::new(
                crate::router::Limits {
                    max_queued: 0,
                    queue_qos0: false,
                },
                Arc::clone(&stats),
            )),
            auth: Authenticator::new(None, true),
            stats,
            limits: ConnLimits {
                max_packet_size: 1024,
                max_inflight: 10,
                connect_timeout: Duration::from_secs(1),
                max_connections: connections.as_ref().map_or(0, |s| s.available_permits()),
            },
            identity_as_username: false,
            connections,
        })
    }

    /// A connected pair of loopback sockets: (client, server side).
    async fn socket_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    /// Every connection is a task holding this future; its size is most of
    /// what an idle connection costs, so it is watched here. 488 bytes now
    /// (480 in release, which with tokio's task header makes a 640-byte
    /// task); it was 1.9 KB before the loop stopped holding a future per
    /// `select!` branch and its state twice. See also
    /// `tests/idle_memory.rs`.
    #[tokio::test]
    async fn connection_task_stays_small() {
        let (client, server) = socket_pair().await;
        let guard = None;
        let fut = connection::serve(server, None, shared(None), CancellationToken::new(), guard);
        let size = std::mem::size_of_val(&fut);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 512, "connection future grew to {size} bytes");
        drop(client);
    }

    /// `--max-connections 1`: the connection's task holds its permit from
    /// the accept to its end, then gives it back.
    #[tokio::test]
    async fn a_connection_holds_its_permit_until_it_ends() {
        let shared = shared(connection_limit(1));
        let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 1));
        let guard = admit(&shared, peer).expect("the first is let in");
        assert!(admit(&shared, peer).is_none(), "a second is refused");

        let (mut client, server) = socket_pair().await;
        let task = tokio::spawn(connection::serve(
            server,
            None,
            Arc::clone(&shared),
            CancellationToken::new(),
            guard,
        ));
        // CONNECT: MQTT 3.1.1, clean session, keep-alive 60, client id "c".
        let connect = [
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'c',
        ];
        client.write_all(&connect).await.expect("send CONNECT");
        let mut connack = [0; 4];
        tokio::time::timeout(WAIT, client.read_exact(&mut connack))
            .await
            .expect("CONNACK in time")
            .expect("read CONNACK");
        assert_eq!(connack, [0x20, 2, 0, 0]);
        assert!(
            admit(&shared, peer).is_none(),
            "still refused while the first is connected"
        );

        client.write_all(&[0xE0, 0]).await.expect("send DISCONNECT");
        drop(client);
        tokio::time::timeout(WAIT, task)
            .await
            .expect("the connection ends in time")
            .expect("task");
        assert!(
            admit(&shared, peer).is_some(),
            "let in once the first has ended"
        );
    }
}
