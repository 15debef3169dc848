//! The broker under test: where it listens, whether its main listener
//! speaks MQTT over TCP or over WebSocket (`ws://`, `wss://`), how to reach
//! its TLS listener (trust anchors, and the client certificate for mutual
//! TLS), and the credentials it accepts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use credentials::tls::ClientIdentity;
use credentials::tls::{
    ClientConfigError, PemError, ServerVerification, client_config, load_roots,
};
use rustls::ClientConfig;

use crate::restart::BrokerControl;
use rustls::pki_types::ServerName;

/// Why a target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A CA, client certificate or key file cannot be used; the message
    /// names the file and what is wrong with it.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The host is not a valid TLS server name.
    #[error("{host:?} is not a valid TLS server name: {reason}")]
    ServerName {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The client configuration cannot be built (e.g. a key that does not
    /// match the client certificate).
    #[error(transparent)]
    Config(#[from] ClientConfigError),
}

/// The TLS listener of the target.
#[derive(Clone)]
pub struct TlsTarget {
    /// Its port.
    pub port: u16,
    /// The client configuration (trust anchors or no verification), with
    /// the client certificate when the run has one.
    pub config: Arc<ClientConfig>,
    /// The same configuration without a client certificate, for scenarios
    /// that check a listener requiring one refuses a client without.
    pub config_without_cert: Arc<ClientConfig>,
    /// Whether `config` presents a client certificate.
    pub client_cert: bool,
    /// The name the certificate is checked against.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("port", &self.port)
            .field("client_cert", &self.client_cert)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// How the main listener (`Target::port`) carries MQTT.
#[derive(Debug, Clone, Default)]
pub enum Carrier {
    /// MQTT straight on TCP.
    #[default]
    Tcp,
    /// MQTT over WebSocket (`ws://`, or `wss://` with `tls`): every
    /// scenario, the liveness probe and the clean-up reach the main listener
    /// this way. TLS scenarios still use [`Target::tls`].
    WebSocket(WebSocketTarget),
}

/// A WebSocket listener.
#[derive(Clone)]
pub struct WebSocketTarget {
    /// The HTTP path of the upgrade request (`/mqtt` for most brokers).
    pub path: String,
    /// For `wss://`: the TLS client configuration (the same one the TLS
    /// listener uses) and the name the certificate is checked against.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for WebSocketTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTarget")
            .field("path", &self.path)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .finish()
    }
}

impl WebSocketTarget {
    /// `ws://` on `path`.
    pub fn plain(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            tls: None,
        }
    }

    /// `wss://` on `path`, with the client configuration and server name of
    /// `tls` (the one TLS client set-up of the run, with the client
    /// certificate when it has one).
    pub fn secure(path: impl Into<String>, tls: &TlsTarget) -> Self {
        Self {
            path: path.into(),
            tls: Some((Arc::clone(&tls.config), tls.server_name.clone())),
        }
    }

    /// The URL of this listener on `host:port`.
    pub fn url(&self, host: &str, port: u16) -> String {
        crate::websocket::url(host, port, &self.path, self.tls.is_some())
    }
}

/// Which node of the target a connection goes to: the broker under test,
/// or the second node of a cluster (or a broker bridged to it) given with
/// `--second-host`, for the cross-node scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Node {
    /// The broker under test (`-h`, `-p`).
    #[default]
    First,
    /// The second node (`--second-host`, `--second-port`).
    Second,
}

/// The second node of a cross-node run.
#[derive(Debug, Clone)]
pub struct SecondNode {
    /// How to reach it: its host and port, with the first node's carrier,
    /// TLS client set-up and credentials.
    pub target: Target,
    /// The two nodes are brokers joined by a bridge, not one cluster
    /// (`--second-bridged`): the scenarios marked with what a bridge cannot
    /// promise (a session taken over across nodes) report a failure as an
    /// observation, not a MUST failure.
    pub bridged: bool,
}

/// User name and password the broker accepts.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// Everything needed to reach the broker under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// The main listener's port: plain MQTT, or WebSocket per `carrier`.
    pub port: u16,
    /// How the main listener carries MQTT.
    pub carrier: Carrier,
    /// The second node, for the cross-node scenarios; they are skipped
    /// without one.
    pub second: Option<Arc<SecondNode>>,
    /// TLS listener, if the run has one.
    pub tls: Option<TlsTarget>,
    /// Credentials, if the broker wants them (and refuses wrong ones).
    pub credentials: Option<Credentials>,
    /// Bound on opening a TCP connection and on a TLS handshake.
    pub connect_timeout: Duration,
    /// How much every wait for the broker is stretched (`--time-scale`),
    /// for slow machines; 1 leaves them as written. See
    /// [`Target::scaled`].
    pub time_scale: f64,
    /// Stops the broker gracefully and starts it again
    /// (`--restart-command`), for `restart` steps; scenarios with one are
    /// skipped without it.
    pub restart: Option<Arc<dyn BrokerControl>>,
    /// Stops the broker abruptly (SIGKILL, power loss) and starts it again
    /// (`--kill-command`), for `kill` steps; scenarios with one are skipped
    /// without it.
    pub kill: Option<Arc<dyn BrokerControl>>,
}

impl Target {
    /// A plain-only target without credentials.
    pub fn plain(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            carrier: Carrier::Tcp,
            second: None,
            tls: None,
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            time_scale: 1.0,
            restart: None,
            kill: None,
        }
    }

    /// The target of `node`: this one, or the second node when the run has
    /// one.
    pub fn node(&self, node: Node) -> Option<&Target> {
        match node {
            Node::First => Some(self),
            Node::Second => self.second.as_ref().map(|s| &s.target),
        }
    }

    /// Whether the run's two nodes are bridged brokers rather than one
    /// cluster.
    pub fn bridged(&self) -> bool {
        self.second.as_ref().is_some_and(|s| s.bridged)
    }

    /// How reports name the main listener: `host:port`, or its WebSocket
    /// URL.
    pub fn main_listener(&self) -> String {
        match &self.carrier {
            Carrier::Tcp => format!("{}:{}", self.host, self.port),
            Carrier::WebSocket(ws) => ws.url(&self.host, self.port),
        }
    }

    /// `d` stretched by [`Target::time_scale`]. Only upper bounds are
    /// stretched (how long to wait for a packet or a close, the connect
    /// timeout, the scenario timeout): a slow broker gets longer to answer.
    /// Lower bounds (`expect_nothing`'s `for_ms`) and `wait` steps are not,
    /// since they are measured against the broker's own timers (keep-alive)
    /// and stretching them would make a check stricter, not looser.
    pub fn scaled(&self, d: Duration) -> Duration {
        if self.time_scale.is_finite() && self.time_scale > 0.0 {
            d.mul_f64(self.time_scale)
        } else {
            d
        }
    }
}

/// A TLS target trusting the CA certificates in the PEM file `cafile`,
/// presenting `client` when given.
pub fn tls_with_ca(
    host: &str,
    port: u16,
    cafile: &Path,
    client: Option<ClientIdentity>,
) -> Result<TlsTarget, TargetError> {
    let roots = load_roots(cafile, "--cafile")?;
    tls_target(host, port, ServerVerification::Roots(roots), client)
}

/// A TLS target that accepts any server certificate (`--insecure`): for
/// brokers with self-signed certificates when no CA file is at hand.
/// Presents `client` when given.
pub fn tls_insecure(
    host: &str,
    port: u16,
    client: Option<ClientIdentity>,
) -> Result<TlsTarget, TargetError> {
    tls_target(host, port, ServerVerification::Insecure, client)
}

fn tls_target(
    host: &str,
    port: u16,
    verify: ServerVerification,
    client: Option<ClientIdentity>,
) -> Result<TlsTarget, TargetError> {
    let without = Arc::new(client_config(verify.clone(), None)?);
    let with = match &client {
        Some(id) => Some(Arc::new(client_config(verify, Some(id))?)),
        None => None,
    };
    Ok(TlsTarget {
        port,
        client_cert: with.is_some(),
        config: with.unwrap_or_else(|| Arc::clone(&without)),
        config_without_cert: without,
        server_name: server_name(host)?,
    })
}

fn server_name(host: &str) -> Result<ServerName<'static>, TargetError> {
    ServerName::try_from(host.to_owned()).map_err(|e| TargetError::ServerName {
        host: host.to_owned(),
        reason: e.to_string(),
    })
}
