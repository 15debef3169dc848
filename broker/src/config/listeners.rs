//! The listeners: where the broker accepts connections and how each speaks
//! (plain MQTT, MQTT over TLS, MQTT over WebSocket, over WebSocket and TLS).
//!
//! They come either from the config file's `[[listener]]` sections, each
//! complete in itself, or, when the file has none, from the flags (`--bind`,
//! `--port`, `--tls-port`, `--ws-port`, `--wss-port`, `--cert`, ...), which
//! define one listener per port and `--bind` address. Without `--bind` the
//! broker listens on this machine only, on both 127.0.0.1 and ::1, as
//! mosquitto 2.0 does for `localhost`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// How a listener's clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ListenerTransport {
    /// MQTT over TCP.
    #[serde(rename = "mqtt")]
    Mqtt,
    /// MQTT over TLS.
    #[serde(rename = "mqtt+tls")]
    MqttTls,
    /// MQTT over WebSocket (RFC 6455), binary frames.
    #[serde(rename = "websockets")]
    WebSockets,
    /// MQTT over WebSocket over TLS.
    #[serde(rename = "websockets+tls")]
    WebSocketsTls,
}

impl ListenerTransport {
    /// The name used in the config file and the logs.
    pub fn name(self) -> &'static str {
        match self {
            ListenerTransport::Mqtt => "mqtt",
            ListenerTransport::MqttTls => "mqtt+tls",
            ListenerTransport::WebSockets => "websockets",
            ListenerTransport::WebSocketsTls => "websockets+tls",
        }
    }

    /// Whether the bytes are encrypted with TLS.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            ListenerTransport::MqttTls | ListenerTransport::WebSocketsTls
        )
    }

    /// Whether MQTT travels in WebSocket frames.
    pub fn is_websockets(self) -> bool {
        matches!(
            self,
            ListenerTransport::WebSockets | ListenerTransport::WebSocketsTls
        )
    }
}

impl fmt::Display for ListenerTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a listener binds: an address, or a host name resolved when the
/// broker starts (every address it resolves to gets a socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// An IPv4 or IPv6 address; `::` listens on both where the OS allows.
    Ip(IpAddr),
    /// A host name such as `localhost`.
    Host(String),
}

impl BindAddress {
    /// Parses `--bind`'s value: an address (IPv6 with or without
    /// brackets) or a host name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let unbracketed = trimmed
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(BindAddress::Ip(ip));
        }
        let host_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if trimmed.is_empty() || !trimmed.chars().all(host_char) {
            return Err(format!(
                "'{text}' is neither an IP address nor a host name (e.g. 0.0.0.0, ::, localhost)"
            ));
        }
        Ok(BindAddress::Host(trimmed.to_owned()))
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddress::Ip(ip) => ip.fmt(f),
            BindAddress::Host(h) => f.write_str(h),
        }
    }
}

/// Certificate settings of a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate and key files; `None` to use (or create) the ones in the
    /// certificate directory.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    /// CA for client certificates.
    pub cafile: Option<PathBuf>,
    /// Whether a client certificate is required.
    pub require_certificate: bool,
    /// Whether the certificate's CN becomes the user name.
    pub identity_as_username: bool,
}

/// One checked listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    /// Where it binds.
    pub bind: BindAddress,
    /// Port, 0 for any free one.
    pub port: u16,
    /// How its clients speak.
    pub transport: ListenerTransport,
    /// Certificates: `Some` exactly for the TLS transports.
    pub tls: Option<TlsSettings>,
    /// The only HTTP path a WebSocket upgrade may ask for; `None` accepts
    /// any (as mosquitto does). Only for the websockets transports.
    pub ws_path: Option<String>,
    /// A default listener on ::1 that is skipped, with a note, on a machine
    /// without IPv6.
    pub optional: bool,
    /// What set it, for errors: a flag (`--tls-port`) or a file line.
    pub origin: String,
}

/// A `[[listener]]` section as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ListenerFile {
    port: u16,
    bind: Option<String>,
    transport: Option<ListenerTransport>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    cafile: Option<PathBuf>,
    require_certificate: Option<bool>,
    identity_as_username: Option<bool>,
    ws_path: Option<String>,
}

/// The certificate flags (or top-level file keys) shared by the listeners
/// the flags define.
#[derive(Debug, Clone, Default)]
pub(super) struct TlsFlags {
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
    pub(super) cafile: Option<PathBuf>,
    pub(super) require_certificate: bool,
    pub(super) identity_as_username: bool,
}

/// The listener flags, merged from the command line and the file's
/// top-level keys.
#[derive(Debug, Clone, Default)]
pub(super) struct ListenerFlags {
    pub(super) bind: Vec<BindAddress>,
    pub(super) port: Option<u16>,
    pub(super) tls_port: Option<u16>,
    pub(super) ws_port: Option<u16>,
    pub(super) wss_port: Option<u16>,
    pub(super) no_plain: bool,
    pub(super) no_ssl: bool,
    pub(super) tls: TlsFlags,
}

impl ListenerFlags {
    /// Whether any flag that defines listeners was given.
    pub(super) fn any(&self) -> bool {
        !self.bind.is_empty()
            || self.port.is_some()
            || self.tls_port.is_some()
            || self.ws_port.is_some()
            || self.wss_port.is_some()
            || self.no_plain
            || self.no_ssl
            || self.tls.cert.is_some()
            || self.tls.key.is_some()
            || self.tls.cafile.is_some()
            || self.tls.require_certificate
            || self.tls.identity_as_username
    }
}

fn invalid<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(message))
}

/// Checks the certificate settings shared by flags and sections; `name`
/// spells a setting as the user wrote it (`--cert` or `cert`), `at` says
/// where (empty for flags).
fn tls_settings(
    t: TlsFlags,
    name: impl Fn(&str) -> String,
    at: &str,
) -> Result<TlsSettings, ConfigError> {
    let cert_and_key = match (t.cert, t.key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        (Some(_), None) => {
            return invalid(format!(
                "{at}{} needs {}: give the certificate's private key",
                name("cert"),
                name("key")
            ));
        }
        (None, Some(_)) => {
            return invalid(format!(
                "{at}{} needs {}: give the certificate the key belongs to",
                name("key"),
                name("cert")
            ));
        }
    };
    if t.require_certificate && t.cafile.is_none() {
        return invalid(format!(
            "{at}{} needs {}: give the CA that signs client certificates",
            name("require-certificate"),
            name("cafile")
        ));
    }
    if t.identity_as_username && !t.require_certificate {
        return invalid(format!(
            "{at}{} needs {} (and {}), or there may be no certificate to take the name from",
            name("identity-as-username"),
            name("require-certificate"),
            name("cafile")
        ));
    }
    Ok(TlsSettings {
        cert_and_key,
        cafile: t.cafile,
        require_certificate: t.require_certificate,
        identity_as_username: t.identity_as_username,
    })
}

/// The listeners the flags define: plain on `--port` (1883), TLS on
/// `--tls-port` (8883), and WebSocket ones on `--ws-port`/`--wss-port` when
/// given, on every `--bind` address (127.0.0.1 and ::1 by default).
pub(super) fn from_flags(f: ListenerFlags) -> Result<Vec<ListenerSettings>, ConfigError> {
    let port = f.port.unwrap_or(1883);
    let tls_port = f.tls_port.unwrap_or(8883);
    let flag = |n: &str| format!("--{n}");
    let tls = tls_settings(f.tls.clone(), flag, "")?;
    if f.no_plain && f.no_ssl && f.ws_port.is_none() && f.wss_port.is_none() {
        return invalid(
            "--no-plain and --no-ssl together leave no listener: drop one of them (or add --ws-port)"
                .to_owned(),
        );
    }
    let any_tls = !f.no_ssl || f.wss_port.is_some();
    if !any_tls
        && (f.tls.cert.is_some()
            || f.tls.cafile.is_some()
            || f.tls.require_certificate
            || f.tls.identity_as_username)
    {
        return invalid(
            "--no-ssl turns TLS off, yet --cert/--key/--cafile were given: drop one or the other"
                .to_owned(),
        );
    }
    let mut ports: Vec<(u16, ListenerTransport, &'static str)> = Vec::new();
    if !f.no_plain {
        ports.push((port, ListenerTransport::Mqtt, "port"));
    }
    if !f.no_ssl {
        ports.push((tls_port, ListenerTransport::MqttTls, "tls-port"));
    }
    if let Some(p) = f.ws_port {
        ports.push((p, ListenerTransport::WebSockets, "ws-port"));
    }
    if let Some(p) = f.wss_port {
        ports.push((p, ListenerTransport::WebSocketsTls, "wss-port"));
    }
    for (i, (a, _, a_flag)) in ports.iter().enumerate() {
        for (b, _, b_flag) in &ports[i + 1..] {
            if *a != 0 && a == b {
                return invalid(format!(
                    "--{a_flag} and --{b_flag} are both {a}: give them different ports"
                ));
            }
        }
    }
    let (binds, defaulted) = if f.bind.is_empty() {
        (localhost().to_vec(), true)
    } else {
        (f.bind, false)
    };
    let mut listeners = Vec::new();
    for bind in binds {
        for (port, transport, port_flag) in &ports {
            listeners.push(ListenerSettings {
                optional: defaulted && bind == BindAddress::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                bind: bind.clone(),
                port: *port,
                transport: *transport,
                tls: transport.is_tls().then(|| tls.clone()),
                ws_path: None,
                origin: format!("--{port_flag}"),
            });
        }
    }
    Ok(listeners)
}

/// Checks one `[[listener]]` section; `at` names its file and line.
/// A section without `bind` listens on this machine only, 127.0.0.1 and
/// ::1, as the flags' default does.
pub(super) fn from_section(
    section: ListenerFile,
    at: &str,
) -> Result<Vec<ListenerSettings>, ConfigError> {
    let transport = section.transport.unwrap_or(ListenerTransport::Mqtt);
    let at = format!("{at}: [[listener]] port {}: ", section.port);
    let key = |n: &str| n.to_owned();
    let tls_keys = section.cert.is_some()
        || section.key.is_some()
        || section.cafile.is_some()
        || section.require_certificate.is_some()
        || section.identity_as_username.is_some();
    let tls = if transport.is_tls() {
        Some(tls_settings(
            TlsFlags {
                cert: section.cert,
                key: section.key,
                cafile: section.cafile,
                require_certificate: section.require_certificate.unwrap_or(false),
                identity_as_username: section.identity_as_username.unwrap_or(false),
            },
            key,
            &at,
        )?)
    } else if tls_keys {
        return invalid(format!(
            "{at}cert, key, cafile, require-certificate and identity-as-username need a TLS transport (mqtt+tls or websockets+tls), not {transport}"
        ));
    } else {
        None
    };
    if let Some(path) = &section.ws_path {
        if !transport.is_websockets() {
            return invalid(format!(
                "{at}ws-path needs a websockets transport (websockets or websockets+tls), not {transport}"
            ));
        }
        if !path.starts_with('/') {
            return invalid(format!(
                "{at}ws-path '{path}' must start with / (e.g. /mqtt)"
            ));
        }
    }
    let binds = match &section.bind {
        Some(text) => vec![(
            BindAddress::parse(text).map_err(|e| ConfigError::Invalid(format!("{at}bind: {e}")))?,
            false,
        )],
        None => localhost().into_iter().zip([false, true]).collect(),
    };
    Ok(binds
        .into_iter()
        .map(|(bind, optional)| ListenerSettings {
            bind,
            port: section.port,
            transport,
            tls: tls.clone(),
            ws_path: section.ws_path.clone(),
            optional,
            origin: at.trim_end_matches(": ").to_owned(),
        })
        .collect())
}

/// The default bind addresses: 127.0.0.1 and ::1 (the second skipped on a
/// machine without IPv6).
fn localhost() -> [BindAddress; 2] {
    [
        BindAddress::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        BindAddress::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]
}

/// Refuses two listeners on the same address and port.
pub(super) fn check_distinct(listeners: &[ListenerSettings]) -> Result<(), ConfigError> {
    for (i, a) in listeners.iter().enumerate() {
        for b in &listeners[i + 1..] {
            if a.port != 0 && a.port == b.port && a.bind == b.bind {
                return invalid(format!(
                    "{} and {} both listen on {} port {}: give them different ports",
                    a.origin, b.origin, a.bind, a.port
                ));
            }
        }
    }
    Ok(())
}
