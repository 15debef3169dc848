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
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::acl::{Acl, AclFileError};
use crate::auth::Authenticator;
use crate::config::Durability;
use crate::config::{Config, TlsSettings};
use crate::listener::{self, ConnLimits, Shared, TlsError};
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
        "binding the {transport} listener to {addr}: {source} (pick another --{flag}, or 0 for any free port)"
    )]
    Bind {
        /// "plain" or "TLS".
        transport: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The flag that sets the port.
        flag: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The data directory's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A bound, not yet running broker.
pub struct Broker {
    config: Config,
    shared: Arc<Shared>,
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, TlsAcceptor)>,
    store: Option<Store>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("plain", &self.plain_addr())
            .field("tls", &self.tls_addr())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Loads what `config` names and binds the listeners.
    pub async fn bind(config: Config) -> Result<Self, BrokerError> {
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
                Some(store)
            }
            None => None,
        };
        let commits = (store.is_some() && config.durability == Durability::Batched)
            .then(|| Arc::new(Commits::default()));
        let tls_config = match &config.tls {
            Some(t) => Some(tls_acceptor(t, config.data_dir.as_deref())?),
            None => None,
        };

        let plain = match config.port {
            Some(port) => Some(listen(SocketAddr::new(config.bind, port), "plain", "port").await?),
            None => None,
        };
        let tls = match (tls_config, &config.tls) {
            (Some(acceptor), Some(t)) => {
                let l = listen(SocketAddr::new(config.bind, t.port), "TLS", "tls-port").await?;
                Some((l, acceptor))
            }
            _ => None,
        };
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
            identity_as_username: config.tls.as_ref().is_some_and(|t| t.identity_as_username),
            use_username_as_clientid: config.use_username_as_clientid,
            connections: listener::connection_limit(config.max_connections),
            commits,
        });
        if config.bind_is_default {
            // Logged here, before the "broker ready" line, so whoever
            // waits for that line has read this one too.
            info!(
                bind = %config.bind,
                "no --bind given: listening on this machine only (as mosquitto 2.0 does); --bind 0.0.0.0 opens the broker to the network"
            );
        }
        Ok(Self {
            config,
            shared,
            plain,
            tls,
            store,
        })
    }

    /// The plain listener's bound address (the real port when 0 was
    /// asked), unless `--no-plain`.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The TLS listener's bound address, if TLS is on.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
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
        let plain = self.plain.map(|l| (l, None, Transport::Plain));
        let tls = self
            .tls
            .map(|(l, acceptor)| (l, Some(acceptor), Transport::Tls));
        for (listener, tls, kind) in plain.into_iter().chain(tls) {
            if let Ok(addr) = listener.local_addr() {
                info!(transport = %kind.name(), %addr, "listening");
            }
            tracker.spawn(listener::accept_loop(
                listener,
                tls,
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
) -> Result<TlsAcceptor, BrokerError> {
    let (cert, key): (PathBuf, PathBuf) = match &t.cert_and_key {
        Some((c, k)) => (c.clone(), k.clone()),
        None => tls_files::ensure(data_dir)?,
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

/// Binds the `transport` listener (`plain`, `TLS`) on `addr`; a failure
/// names the flag that set its port.
async fn listen(
    addr: SocketAddr,
    transport: &'static str,
    flag: &'static str,
) -> Result<TcpListener, BrokerError> {
    let bind = || {
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
    };
    bind().map_err(|source| BrokerError::Bind {
        transport,
        addr,
        flag,
        source,
    })
}
