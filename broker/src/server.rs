//! [`Broker`]: the listeners, the router and the background tasks put
//! together, with a graceful shutdown.
//!
//! [`Broker::bind`] loads everything the configuration names (password
//! file, certificates, stored state) and binds the listeners, so every
//! error a user can fix shows up before the broker runs. [`Broker::run`]
//! serves until the shutdown token fires, then stops accepting, ends every
//! connection (publishing wills as for any non-DISCONNECT end), saves the
//! persistent state and returns.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use tracing::{info, warn};

use crate::acl::{Acl, AclFileError};
use crate::auth::Authenticator;
use crate::bridge::BridgeConfig;
use crate::config::Durability;
use crate::config::{
    BindAddress, Config, FileNotice, ListenerSettings, ListenerTransport, TlsSettings,
};
use crate::listener::{self, ConnLimits, Endpoint, Shared, TlsError};
use crate::router::{Limits, Router};
use crate::stats::{Stats, Transport};
use crate::store::commit::{Commits, Committer};
use crate::store::{Store, StoreError};
use crate::tls_files::{self, TlsFilesError};
use credentials::password::{PasswordFile, PasswordFileError};

/// How long connections get to close at shutdown before they are left.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the broker cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The password file is unusable.
    #[error(transparent)]
    Auth(#[from] PasswordFileError),
    /// The ACL file is unusable.
    #[error(transparent)]
    Acl(#[from] AclFileError),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS certificate could not be found or created.
    #[error(transparent)]
    TlsFiles(#[from] TlsFilesError),
    /// A listener could not bind.
    #[error(
        "binding the {transport} listener ({origin}) to {addr}: {source} (pick another port, or 0 for any free port)"
    )]
    Bind {
        /// What it speaks.
        transport: ListenerTransport,
        /// The address asked for.
        addr: SocketAddr,
        /// What set it: the flag (`--tls-port`) or the config file's line.
        origin: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A listener's host name does not resolve.
    #[error(
        "resolving {host} for the {transport} listener ({origin}): {source} (give an IP address, or a name this machine resolves)"
    )]
    Resolve {
        /// The host name.
        host: String,
        /// What it speaks.
        transport: ListenerTransport,
        /// What set it.
        origin: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The data directory's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bridge's TLS files are unusable.
    #[error(transparent)]
    BridgeTls(#[from] crate::bridge::BridgeTlsError),
}

/// A bound, not yet running broker.
pub struct Broker {
    config: Config,
    shared: Arc<Shared>,
    listeners: Vec<Bound>,
    store: Option<Store>,
    /// Each bridge with its TLS connector (if it uses TLS).
    bridges: Vec<(BridgeConfig, Option<TlsConnector>)>,
}

/// One bound socket of a listener.
struct Bound {
    socket: TcpListener,
    addr: SocketAddr,
    transport: ListenerTransport,
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("listeners", &self.listeners())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Loads what `config` names and binds the listeners.
    pub async fn bind(config: Config) -> Result<Self, BrokerError> {
        for notice in &config.file_notices {
            match notice {
                FileNotice::Warning(d) => warn!(line = %d.origin, "{}", d.message),
                FileNotice::Note(d) => info!(line = %d.origin, "{}", d.message),
            }
        }
        let passwords = match &config.password_file {
            Some(p) => {
                let file = PasswordFile::load(p)?;
                info!(path = %p.display(), users = file.len(), "password file loaded");
                Some(file)
            }
            None => None,
        };
        let acl = match &config.acl_file {
            Some(p) => {
                let acl = Acl::load(p)?;
                info!(path = %p.display(), rules = acl.rule_count(), "ACL file loaded");
                Some(acl)
            }
            None => None,
        };
        let stats = Arc::new(Stats::new());
        let router = Router::new(
            Limits {
                max_queued: config.max_queued,
                max_queued_bytes: config.max_queued_bytes,
                queue_qos0: config.queue_qos0,
            },
            Arc::clone(&stats),
        );
        let router = Arc::new(match acl {
            Some(acl) => router.with_acl(acl),
            None => router,
        });
        let store = match &config.data_dir {
            Some(dir) => {
                let (store, (sessions, retained)) =
                    Store::open_and_load(dir, &router, config.max_inflight)?;
                info!(
                    path = %store.path().display(),
                    sessions,
                    retained,
                    durability = config.durability.name(),
                    "state restored"
                );
                router.track_changes(config.durability == Durability::Batched);
                if config.durability == Durability::Batched {
                    store.write_ahead()?;
                }
                Some(store)
            }
            None => None,
        };
        let commits = (store.is_some() && config.durability == Durability::Batched)
            .then(|| Arc::new(Commits::default()));
        let listeners = bind_listeners(&config).await?;
        let bridges = config
            .bridges
            .iter()
            .map(|b| Ok((b.clone(), crate::bridge::remote::tls_connector(b)?)))
            .collect::<Result<Vec<_>, BrokerError>>()?;
        let shared = Arc::new(Shared {
            router,
            auth: Authenticator::new(passwords, config.allow_anonymous),
            stats,
            limits: ConnLimits {
                max_packet_size: config.max_packet_size,
                max_inflight: config.max_inflight,
                slow_client_timeout: config.slow_client_timeout,
                connect_timeout: config.connect_timeout,
                max_connections: config.max_connections,
            },
            use_username_as_clientid: config.use_username_as_clientid,
            connections: listener::connection_limit(config.max_connections),
            commits,
        });
        if config.bind_is_default {
            // Logged here, before the "broker ready" line, so whoever
            // waits for that line has read this one too.
            info!(
                bind = "127.0.0.1,::1",
                "no --bind given: listening on this machine only (as mosquitto 2.0 does); --bind 0.0.0.0 (or ::) opens the broker to the network"
            );
        }
        Ok(Self {
            config,
            shared,
            listeners,
            store,
            bridges,
        })
    }

    /// Every bound socket: what it speaks and its address (the real port
    /// when 0 was asked), in the order the configuration lists them.
    pub fn listeners(&self) -> Vec<(ListenerTransport, SocketAddr)> {
        self.listeners
            .iter()
            .map(|b| (b.transport, b.addr))
            .collect()
    }

    /// The first listener speaking `transport`, if any.
    pub fn addr_of(&self, transport: ListenerTransport) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|b| b.transport == transport)
            .map(|b| b.addr)
    }

    /// The first plain MQTT listener's address, unless there is none
    /// (`--no-plain`).
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.addr_of(ListenerTransport::Mqtt)
    }

    /// The first MQTT-over-TLS listener's address, if TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.addr_of(ListenerTransport::MqttTls)
    }

    /// The router, for tests and embedding.
    pub fn router(&self) -> &Arc<Router> {
        &self.shared.router
    }

    /// What re-reads the password and ACL files while the broker runs
    /// (SIGHUP in `main.rs`), as mosquitto does on SIGHUP.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: Arc::clone(&self.shared),
            password_file: self.config.password_file.clone(),
            acl_file: self.config.acl_file.clone(),
        }
    }

    /// Serves until `shutdown` fires, then shuts down gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BrokerError> {
        let tracker = TaskTracker::new();
        let connections = TaskTracker::new();
        for bound in self.listeners {
            // Named as the connections' spans and `$SYS` name them.
            info!(transport = %bound.endpoint.kind.name(), addr = %bound.addr, "listening");
            tracker.spawn(listener::accept_loop(
                bound.socket,
                bound.endpoint,
                Arc::clone(&self.shared),
                shutdown.clone(),
                connections.clone(),
            ));
        }
        if let Some(interval) = self.config.sys_interval {
            tracker.spawn(crate::sys::run(
                Arc::clone(&self.shared.router),
                interval,
                shutdown.clone(),
            ));
        }
        for (bridge, tls) in self.bridges {
            let span = tracing::info_span!("bridge", name = %bridge.name);
            let host = crate::bridge::Host {
                router: Arc::clone(&self.shared.router),
                max_inflight: self.config.max_inflight,
                max_packet_size: self.config.max_packet_size,
                commits: self.shared.commits.clone(),
                slow_client_timeout: self.config.slow_client_timeout,
            };
            tracker.spawn(
                crate::bridge::run::run(bridge, tls, host, shutdown.clone()).instrument(span),
            );
        }
        let store = self.store.map(Arc::new);
        if let Some(max_offline) = self.config.persistent_client_expiration {
            tracker.spawn(expire_sessions(
                Arc::clone(&self.shared.router),
                store.clone(),
                max_offline,
                shutdown.clone(),
            ));
        }
        // The committer writes what changed: every --autosave-interval,
        // and for each batch of tickets with --durability batched.
        if let Some(commits) = &self.shared.commits {
            let relay = Arc::clone(commits).relay();
            let until = shutdown.clone();
            // At shutdown it ends, and the committer wakes the connections
            // still waiting itself.
            tracker.spawn(async move {
                tokio::select! {
                    () = relay => {}
                    () = until.cancelled() => {}
                }
            });
        }
        let committer = match &store {
            Some(store) => Some(
                Committer::start(
                    Arc::clone(store),
                    Arc::clone(&self.shared.router),
                    self.shared.commits.clone().unwrap_or_default(),
                    self.config.autosave_interval,
                )
                .map_err(StoreError::Committer)?,
            ),
            None => None,
        };

        shutdown.cancelled().await;
        info!("shutting down: no new connections, closing clients");
        // Connections past CONNECT wait on their slot, not on the token
        // (it would cost each a future): tell them through the router.
        self.shared.router.kick_all(crate::router::Kick::Shutdown);
        tracker.close();
        connections.close();
        tracker.wait().await;
        if tokio::time::timeout(SHUTDOWN_GRACE, connections.wait())
            .await
            .is_err()
        {
            warn!(grace = ?SHUTDOWN_GRACE, "some connections did not close in time");
        }
        if let Some(committer) = committer
            && let Err(e) = tokio::task::spawn_blocking(move || committer.stop()).await
        {
            warn!(error = %e, "the store's committer did not stop cleanly");
        }
        if let Some(store) = &store {
            store.save(&self.shared.router)?;
            store.checkpoint()?;
            info!(path = %store.path().display(), "state saved");
        }
        info!("broker stopped");
        Ok(())
    }
}

/// Re-reads the password file and the ACL file the broker started with:
/// see [`Broker::reloader`].
#[derive(Debug, Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
}

impl Reloader {
    /// Loads each file anew and puts it in force for the checks from now
    /// on: CONNECTs for the password file; SUBSCRIBEs, PUBLISHes, wills and
    /// the deliveries of existing subscriptions for the ACL. A file that
    /// fails to load leaves its old rules in force and is logged as one
    /// ERROR line naming the file (and line); the other file still reloads.
    /// Returns whether every file reloaded.
    pub fn reload(&self) -> bool {
        let mut ok = true;
        if let Some(path) = &self.password_file {
            match PasswordFile::load(path) {
                Ok(file) => {
                    let users = file.len();
                    self.shared.auth.replace_passwords(file);
                    info!(path = %path.display(), users, "password file reloaded");
                }
                Err(e) => {
                    ok = false;
                    tracing::error!(
                        "reloading {}: {e}; the old password file stays in force",
                        path.display()
                    );
                }
            }
        }
        if let Some(path) = &self.acl_file {
            match Acl::load(path) {
                Ok(acl) => {
                    let rules = acl.rule_count();
                    self.shared.router.replace_acl(acl);
                    info!(path = %path.display(), rules, "ACL file reloaded");
                }
                Err(e) => {
                    ok = false;
                    tracing::error!("{e}; the old ACL stays in force");
                }
            }
        }
        ok
    }
}

/// The background sweep of `--persistent-client-expiration`: drops parked
/// sessions whose client has been away longer than `max_offline`, logs
/// each, and saves the store at once so the dropped sessions leave the disk
/// too (not only at the next autosave). It looks ten times per period
/// (between every 100 ms and every minute), so a session outlives its limit
/// by at most a tenth of it, or a minute.
async fn expire_sessions(
    router: Arc<Router>,
    store: Option<Arc<Store>>,
    max_offline: Duration,
    shutdown: CancellationToken,
) {
    let period = (max_offline / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let expired = router.expire_parked(max_offline, std::time::SystemTime::now());
        for e in &expired {
            info!(
                client_id = %e.client_id,
                offline_secs = e.offline.as_secs(),
                queued_dropped = e.queued,
                "persistent session expired: its client was offline longer than --persistent-client-expiration"
            );
        }
        if !expired.is_empty()
            && let Some(store) = &store
        {
            match save_off_runtime(store, &router).await {
                Ok(()) => info!(
                    path = %store.path().display(),
                    expired = expired.len(),
                    "state saved after session expiry"
                ),
                Err(e) => warn!(error = %e, "saving after session expiry failed"),
            }
        }
    }
}

/// Saves the store on tokio's blocking pool. A redb commit waits for the
/// disk (fsync), often for milliseconds: on the runtime's thread that wait
/// would stall every connection it serves.
async fn save_off_runtime(store: &Arc<Store>, router: &Arc<Router>) -> Result<(), SaveError> {
    let (store, router) = (Arc::clone(store), Arc::clone(router));
    tokio::task::spawn_blocking(move || store.save(&router))
        .await
        .map_err(SaveError::Task)?
        .map(|_| ())
        .map_err(SaveError::Store)
}

/// Why a background save failed.
#[derive(Debug, thiserror::Error)]
enum SaveError {
    /// The store refused.
    #[error(transparent)]
    Store(StoreError),
    /// The blocking task running the save panicked or was cancelled.
    #[error("the save task did not finish: {0}")]
    Task(tokio::task::JoinError),
}

fn tls_acceptor(
    t: &TlsSettings,
    data_dir: Option<&std::path::Path>,
    generated: &mut Option<(PathBuf, PathBuf)>,
) -> Result<TlsAcceptor, BrokerError> {
    let (cert, key): (PathBuf, PathBuf) = match (&t.cert_and_key, &generated) {
        (Some((c, k)), _) => (c.clone(), k.clone()),
        (None, Some(pair)) => pair.clone(),
        (None, None) => {
            let pair = tls_files::ensure(data_dir)?;
            *generated = Some(pair.clone());
            pair
        }
    };
    let config = listener::server_config(&cert, &key, t.cafile.as_deref(), t.require_certificate)?;
    Ok(TlsAcceptor::from(config))
}

/// Connections the kernel completes and holds until the accept loop takes
/// them. A burst beyond this (clients reconnecting after a restart, or a
/// flood) has its SYNs dropped, each costing its client a second before it
/// tries again; `TcpListener::bind` asks for only 128. 1024, as Go and
/// others do; the kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds every listener of `config`: each address a host name resolves
/// to gets a socket; the default ::1 is skipped, with a note, on a machine
/// without IPv6.
async fn bind_listeners(config: &Config) -> Result<Vec<Bound>, BrokerError> {
    // The generated certificate is made (or read) once, for every TLS
    // listener without its own.
    let mut generated: Option<(PathBuf, PathBuf)> = None;
    let mut bound = Vec::new();
    for l in &config.listeners {
        let endpoint = Arc::new(endpoint(l, config, &mut generated)?);
        for addr in resolve(l).await? {
            let socket = match listen(addr) {
                Ok(s) => s,
                Err(e) if l.optional && no_such_address(&e) => {
                    info!(
                        transport = %l.transport,
                        %addr,
                        error = %e,
                        "no IPv6 on this machine: not listening on ::1"
                    );
                    continue;
                }
                Err(source) => {
                    return Err(BrokerError::Bind {
                        transport: l.transport,
                        addr,
                        origin: l.origin.clone(),
                        source,
                    });
                }
            };
            let addr = socket.local_addr().unwrap_or(addr);
            bound.push(Bound {
                socket,
                addr,
                transport: l.transport,
                endpoint: Arc::clone(&endpoint),
            });
        }
    }
    Ok(bound)
}

/// What the connections of listener `l` need to begin.
fn endpoint(
    l: &ListenerSettings,
    config: &Config,
    generated: &mut Option<(PathBuf, PathBuf)>,
) -> Result<Endpoint, BrokerError> {
    let tls = match &l.tls {
        Some(t) => Some(tls_acceptor(t, config.data_dir.as_deref(), generated)?),
        None => None,
    };
    let kind = match l.transport {
        ListenerTransport::Mqtt => Transport::Plain,
        ListenerTransport::MqttTls => Transport::Tls,
        ListenerTransport::WebSockets => Transport::WebSockets,
        ListenerTransport::WebSocketsTls => Transport::WebSocketsTls,
    };
    Ok(Endpoint {
        kind,
        tls,
        websocket: l.transport.is_websockets().then(|| l.ws_path.clone()),
        identity_as_username: l.tls.as_ref().is_some_and(|t| t.identity_as_username),
    })
}

/// The socket addresses listener `l` binds: its address, or every address
/// its host name resolves to (each once).
async fn resolve(l: &ListenerSettings) -> Result<Vec<SocketAddr>, BrokerError> {
    match &l.bind {
        BindAddress::Ip(ip) => Ok(vec![SocketAddr::new(*ip, l.port)]),
        BindAddress::Host(host) => {
            let found = tokio::net::lookup_host((host.as_str(), l.port))
                .await
                .map_err(|source| BrokerError::Resolve {
                    host: host.clone(),
                    transport: l.transport,
                    origin: l.origin.clone(),
                    source,
                })?;
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for a in found {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            Ok(addrs)
        }
    }
}

/// Whether a bind failed because the machine lacks the address (or its
/// family): no IPv6.
fn no_such_address(e: &std::io::Error) -> bool {
    // EAFNOSUPPORT, on Linux and the BSDs: the kernel has no IPv6 at all.
    const AF_NOT_SUPPORTED: [i32; 2] = [97, 47];
    e.kind() == std::io::ErrorKind::AddrNotAvailable
        || e.raw_os_error()
            .is_some_and(|c| AF_NOT_SUPPORTED.contains(&c))
}

/// Binds a listening socket on `addr`. An IPv6 wildcard (`::`) takes IPv4
/// connections too where the OS allows (Linux by default), as mosquitto's
/// does.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind` does: a restarted broker can bind its port
        // while the old one's connections linger in TIME_WAIT.
        #[cfg(not(windows))]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    }
}
