//! The broker's settings: command-line flags, an optional TOML file, and the
//! defaults, merged into one checked [`Config`].
//!
//! Every flag has a TOML key of the same name (`--max-inflight` is
//! `max-inflight = 20`); a flag given on the command line wins over the
//! file, and the file over the default. Contradictions (`--key` without
//! `--cert`, `--require-certificate` without `--cafile`) are refused with a
//! message naming both settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

pub use crate::store::commit::Durability;

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file cannot be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A line of a mosquitto.conf (`-c`) has a wrong value.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file the line is in (the `-c` file or one `include_dir`
        /// reads).
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with the value and what a valid one looks like.
        message: String,
    },
    /// Two settings contradict each other or one is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// `broker`: the reference MQTT 3.1.1 broker, over TCP, TLS and WebSocket.
///
/// With no flags it listens on localhost only, as mosquitto 2.0 does: plain
/// MQTT on port 1883 and MQTT over TLS on 8883, both on 127.0.0.1 and ::1,
/// creating a CA-signed server certificate on first run if none is given;
/// `--bind 0.0.0.0` (or `--bind ::`) opens it to the network. `--ws-port`
/// and `--wss-port` add MQTT over WebSocket. Every flag can also be set in a
/// TOML file (`--config`), under the flag's name, or read from a
/// mosquitto.conf (`-c`); flags win. The TOML file may
/// instead list its listeners in `[[listener]]` sections (port, bind,
/// transport, cert, key, cafile, require-certificate, identity-as-username,
/// ws-path): see docs/broker.md.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "broker",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("GIT_REVISION"), ")"),
    about,
    long_about
)]
pub struct Flags {
    /// TOML file with settings named like the flags (`max-inflight = 20`),
    /// and `[[bridge]]` tables of mosquitto's bridge directives
    /// (`connection = "b1"`, `address = "host:1883"`, `topic = ["# both
    /// 1"]`, ...) bridging this broker to others (docs/broker.md, Bridges).
    #[arg(long, value_name = "FILE", conflicts_with = "config_file")]
    pub config: Option<PathBuf>,
    /// mosquitto.conf to read, as `mosquitto -c` does: its listeners,
    /// security, persistence, limits and logging directives (see "Coming
    /// from mosquitto" in docs/broker.md); other directives are warned
    /// about with their line.
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Address or host name to listen on, repeatable; 0.0.0.0 for every
    /// IPv4 interface, :: for every interface (IPv6 and, where the OS
    /// allows, IPv4) [default: 127.0.0.1 and ::1, this machine only].
    #[arg(long, value_name = "ADDR", value_parser = BindAddress::parse)]
    pub bind: Vec<BindAddress>,
    /// Port for plain MQTT; 0 picks a free one [default: 1883].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Port for MQTT over TLS; 0 picks a free one [default: 8883].
    #[arg(long, value_name = "PORT")]
    pub tls_port: Option<u16>,
    /// Port for MQTT over WebSocket (ws://, any path); 0 picks a free one
    /// [default: none].
    #[arg(long, value_name = "PORT")]
    pub ws_port: Option<u16>,
    /// Port for MQTT over WebSocket and TLS (wss://), with the --cert
    /// settings; 0 picks a free one [default: none].
    #[arg(long, value_name = "PORT")]
    pub wss_port: Option<u16>,
    /// No TLS listener on --tls-port (--wss-port, when given, still uses
    /// TLS).
    #[arg(long)]
    pub no_ssl: bool,
    /// TLS only: no plain MQTT listener.
    #[arg(long)]
    pub no_plain: bool,
    /// Server certificate chain (PEM). Without it, one is created in the
    /// data directory on first run.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key of --cert (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates are checked against.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// TLS clients must present a certificate signed by --cafile.
    #[arg(long)]
    pub require_certificate: bool,
    /// Use the client certificate's Common Name as the user name.
    #[arg(long)]
    pub identity_as_username: bool,
    /// mosquitto password file (`toolkit passwd` or `mosquitto_passwd`
    /// make one); clients without valid credentials are refused.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// mosquitto ACL file (acl_file): `user NAME`,
    /// `topic [read|write|readwrite|deny] FILTER`, `pattern ... FILTER`
    /// with %c (client id) and %u (user name). What it does not grant is denied: a SUBSCRIBE
    /// to a filter with nothing readable gets 0x80, a PUBLISH the client
    /// may not write is acknowledged and dropped, deliveries are filtered
    /// by read rights. SIGHUP reloads it and --password-file.
    #[arg(long, value_name = "FILE")]
    pub acl_file: Option<PathBuf>,
    /// Let clients without a user name in even when --password-file is set.
    #[arg(long)]
    pub allow_anonymous: bool,
    /// The client id becomes the user name (as mosquitto's
    /// use_username_as_clientid), so no user can take another's session;
    /// clients without a user name are refused with 0x05.
    #[arg(long)]
    pub use_username_as_clientid: bool,
    /// Keep sessions and retained messages here across restarts; also where
    /// the generated TLS certificate is written.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Refuse connections past this many at once; 0 for no limit
    /// [default: 0].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Close a connection that sends a packet larger than this many bytes
    /// [default: 268435460, the protocol's limit].
    #[arg(long, value_name = "BYTES")]
    pub max_packet_size: Option<usize>,
    /// QoS 1 and 2 messages sent to a client and not yet acknowledged;
    /// more wait in its queue. 0 for the protocol's limit [default: 100;
    /// mosquitto's 20 holds a fast subscriber to a fifth of its rate].
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,
    /// Messages waiting for a client beyond the in-flight window. When a
    /// connected client's queue is full, the broker stops reading from the
    /// clients publishing to it until it drains to half (backpressure:
    /// nothing is lost); for an offline persistent session, and for wills
    /// and $SYS, messages past it are dropped and counted. 0 for no limit
    /// [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_queued: Option<usize>,
    /// Bytes (topic and payload) waiting for a client beyond the in-flight
    /// window, as mosquitto's max_queued_bytes; full at this many bytes,
    /// with the same effect as --max-queued, which applies as well. 0 for
    /// no limit [default: 0].
    #[arg(long, value_name = "BYTES")]
    pub max_queued_bytes: Option<usize>,
    /// Seconds a connected client's queue may stay over half full while
    /// publishers wait for it; past this the client is disconnected (a
    /// persistent session keeps its queue), and the publishers go on. 0
    /// never disconnects [default: 10].
    #[arg(long, value_name = "SECS")]
    pub slow_client_timeout: Option<u64>,
    /// Also queue QoS 0 messages for persistent sessions while offline.
    #[arg(long)]
    pub queue_qos0: bool,
    /// Seconds between $SYS updates and statistics log lines; 0 turns
    /// them off [default: 10].
    #[arg(long, value_name = "SECS")]
    pub sys_interval: Option<u64>,
    /// Seconds from the accept by which a new connection must have sent
    /// CONNECT, a TLS client's handshake and a WebSocket client's HTTP
    /// upgrade included (one deadline for all) [default: 10].
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
    /// Seconds between saves of sessions and retained messages to
    /// --data-dir; they are always saved at shutdown [default: 60].
    #[arg(long, value_name = "SECS")]
    pub autosave_interval: Option<u64>,
    /// When a PUBACK, PUBREC, PUBCOMP or SUBACK goes out: `none` at once,
    /// the state saved every --autosave-interval (a crash loses what
    /// changed since, as with mosquitto); `batched` only once what it
    /// promises is on disk in --data-dir, many acknowledgements sharing one
    /// fsync [default: none].
    #[arg(long, value_name = "LEVEL")]
    pub durability: Option<Durability>,
    /// Drop a persistent session (its subscriptions and queued messages)
    /// once its client has been offline this long: a number and a unit,
    /// s, h, d, w, m (30 days) or y, as mosquitto's
    /// persistent_client_expiration (e.g. 1h, 2d, 1w) [default: never].
    #[arg(long, value_name = "DURATION", value_parser = expiration::parse_expiration)]
    pub persistent_client_expiration: Option<Duration>,
    /// Debug logging (RUST_LOG, when set, takes precedence).
    #[arg(long, short)]
    pub verbose: bool,
}

/// The same settings as they appear in a `--config` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileSettings {
    bind: Option<OneOrMany>,
    port: Option<u16>,
    tls_port: Option<u16>,
    ws_port: Option<u16>,
    wss_port: Option<u16>,
    no_ssl: Option<bool>,
    no_plain: Option<bool>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    cafile: Option<PathBuf>,
    require_certificate: Option<bool>,
    identity_as_username: Option<bool>,
    password_file: Option<PathBuf>,
    /// mosquitto.conf's spelling is accepted too.
    #[serde(alias = "acl_file")]
    acl_file: Option<PathBuf>,
    allow_anonymous: Option<bool>,
    /// mosquitto.conf's spelling is accepted too.
    #[serde(alias = "use_username_as_clientid")]
    use_username_as_clientid: Option<bool>,
    data_dir: Option<PathBuf>,
    max_connections: Option<usize>,
    max_packet_size: Option<usize>,
    max_inflight: Option<usize>,
    /// mosquitto.conf's spelling is accepted too.
    #[serde(alias = "max_queued_messages")]
    max_queued: Option<usize>,
    /// mosquitto.conf's spelling is accepted too.
    #[serde(alias = "max_queued_bytes")]
    max_queued_bytes: Option<usize>,
    slow_client_timeout: Option<u64>,
    queue_qos0: Option<bool>,
    sys_interval: Option<u64>,
    connect_timeout: Option<u64>,
    autosave_interval: Option<u64>,
    durability: Option<Durability>,
    persistent_client_expiration: Option<String>,
    verbose: Option<bool>,
    /// `[[listener]]` sections; when present they alone define the
    /// listeners.
    #[serde(default)]
    listener: Vec<toml::Spanned<ListenerFile>>,
    /// The file, and the text's line starts, to name a section's line in
    /// errors.
    #[serde(skip)]
    source: Option<(PathBuf, Vec<usize>)>,
    /// For settings read from a mosquitto.conf: where each `[[listener]]`
    /// section's `listener` line is (`file:line`), in order.
    #[serde(skip)]
    listener_places: Vec<String>,
    /// `[[bridge]]` tables, keys named as mosquitto's bridge directives
    /// (see [`crate::bridge::BridgeConfig::from_toml`]).
    #[serde(default)]
    bridge: Vec<toml::Table>,
}

/// `bind = "::"` or `bind = ["127.0.0.1", "::1"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl FileSettings {
    /// Parses TOML text; `path` only names the file in errors. Text that
    /// reads like a mosquitto.conf gets a hint to use `-c`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut file: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!("line {}: ", line_of(&line_starts(text), s.start)))
                .unwrap_or_default();
            let hint = if mosquitto::looks_like_mosquitto_conf(text) {
                "; this looks like a mosquitto.conf: use -c (--config-file) to read it"
            } else {
                ""
            };
            ConfigError::Parse {
                path: path.to_owned(),
                message: format!("{line}{}{hint}", e.message().trim_end()),
            }
        })?;
        file.source = Some((path.to_owned(), line_starts(text)));
        Ok(file)
    }

    /// Where the `[[listener]]` section starting at byte `start` is, for
    /// errors: `file line N`.
    fn place(&self, start: usize) -> String {
        match &self.source {
            Some((path, starts)) => {
                format!(
                    "config file {} line {}",
                    path.display(),
                    line_of(starts, start)
                )
            }
            None => "config file".to_owned(),
        }
    }

    /// The listeners the file's sections define, or `None` without any.
    fn listeners(&mut self) -> Result<Option<Vec<ListenerSettings>>, ConfigError> {
        if self.listener.is_empty() {
            return Ok(None);
        }
        let sections = std::mem::take(&mut self.listener);
        let mut all = Vec::new();
        for (i, section) in sections.into_iter().enumerate() {
            let at = match self.listener_places.get(i) {
                Some(place) => place.clone(),
                None => self.place(section.span().start),
            };
            all.extend(listeners::from_section(section.into_inner(), &at)?);
        }
        Ok(Some(all))
    }

    /// The settings a mosquitto.conf translated to, checked as a TOML
    /// file's are; `path` names the file in errors. A setting this broker
    /// refuses is reported at the line it came from.
    pub fn from_mosquitto(
        translation: &mosquitto::Translation,
        path: &Path,
    ) -> Result<Self, ConfigError> {
        let mut file = Self::from_table(&translation.settings).map_err(|message| {
            // Which setting: the first one refused on its own.
            let culprit = translation.settings.iter().find_map(|(key, value)| {
                let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
                Self::from_table(&alone).err().map(|e| (key, value, e))
            });
            let Some((key, value, e)) = culprit else {
                return ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                };
            };
            let Some(source) = translation.sources.get(key) else {
                return ConfigError::Parse {
                    path: path.to_owned(),
                    message: format!("{key}: {e}"),
                };
            };
            // serde's words for a key `deny_unknown_fields` refuses.
            let message = if e.starts_with("unknown field") {
                format!(
                    "{} is not supported by this broker yet: remove the line to start without it",
                    source.directive
                )
            } else {
                format!(
                    "{} gives {key} = {value}, which this broker cannot take: {e}",
                    source.directive
                )
            };
            ConfigError::Line {
                path: source.origin.path.clone(),
                line: source.origin.line,
                message,
            }
        })?;
        file.listener_places = translation
            .listeners
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(file)
    }

    /// Settings from a table, through TOML text as a file's go, so the
    /// `[[listener]]` sections deserialize with their spans (a
    /// `toml::Value` carries none); the error is the parser's message.
    fn from_table(table: &toml::Table) -> Result<Self, String> {
        let text = toml::to_string(table).map_err(|e| e.to_string())?;
        toml::from_str(&text).map_err(|e: toml::de::Error| e.message().trim_end().to_owned())
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

/// Byte offsets where each line of `text` starts.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The 1-based line holding byte `offset`.
fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&s| s <= offset).max(1)
}

/// The checked, merged settings the broker runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the broker listens, in order; never empty.
    pub listeners: Vec<ListenerSettings>,
    /// Whether the listeners bind the default, loopback only (neither
    /// `--bind` nor the file named an address, and the file has no
    /// `[[listener]]` sections), so start-up can say how to open it.
    pub bind_is_default: bool,
    /// mosquitto password file.
    pub password_file: Option<PathBuf>,
    /// mosquitto ACL file; `None`: every client may read and write every
    /// topic (but `$SYS`, which only the broker writes).
    pub acl_file: Option<PathBuf>,
    /// Whether clients without a user name are accepted.
    pub allow_anonymous: bool,
    /// The user name replaces the client id; clients without one are
    /// refused.
    pub use_username_as_clientid: bool,
    /// Where sessions and retained messages persist.
    pub data_dir: Option<PathBuf>,
    /// Most simultaneous connections, 0 for no limit.
    pub max_connections: usize,
    /// Largest packet accepted, in bytes.
    pub max_packet_size: usize,
    /// In-flight window per client, 0 for the protocol's limit.
    pub max_inflight: usize,
    /// Queue bound per client, 0 for none.
    pub max_queued: usize,
    /// Queue bound per client in bytes of topic and payload, 0 for none.
    pub max_queued_bytes: usize,
    /// How long a connected client's queue may stay full while publishers
    /// wait for it; `None` never disconnects it.
    pub slow_client_timeout: Option<Duration>,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0: bool,
    /// $SYS and statistics period; `None` turns them off.
    pub sys_interval: Option<Duration>,
    /// Time from the accept allowed for the TLS handshake, the WebSocket
    /// upgrade and CONNECT together.
    pub connect_timeout: Duration,
    /// Period of saves to the data directory; `None` saves only at shutdown.
    pub autosave_interval: Option<Duration>,
    /// When acknowledgements go out relative to the store's writes.
    pub durability: Durability,
    /// How long a persistent session waits for its client before it is
    /// dropped; `None` keeps it forever.
    pub persistent_client_expiration: Option<Duration>,
    /// Debug logging.
    pub verbose: bool,
    /// Bridges to other brokers (`[[bridge]]` in the config file).
    pub bridges: Vec<crate::bridge::BridgeConfig>,
    /// What the mosquitto.conf reader warned about or ignored, logged when
    /// the broker starts.
    pub file_notices: Vec<FileNotice>,
}

/// A mosquitto.conf line the broker warns about or ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileNotice {
    /// Unknown or unsupported: logged as a warning.
    Warning(mosquitto::Diagnostic),
    /// Read and deliberately ignored: logged as information.
    Note(mosquitto::Diagnostic),
}

impl Default for Config {
    fn default() -> Self {
        Self::resolve(Flags::default(), FileSettings::default())
            .expect("the defaults contradict nothing")
    }
}

fn secs(s: u64) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s))
}

impl Config {
    /// Parses the command line (and the `--config` file it names).
    pub fn from_args<I, T>(args: I) -> Result<Self, anyhow::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let flags = Flags::try_parse_from(args)?;
        Ok(Self::from_flags(flags)?)
    }

    /// Merges parsed flags with the file they name, if any: a TOML file
    /// (`--config`) or a mosquitto.conf (`-c`).
    pub fn from_flags(flags: Flags) -> Result<Self, ConfigError> {
        if let Some(path) = flags.config_file.clone() {
            let translation = mosquitto::translate_file(&path)?;
            let file = FileSettings::from_mosquitto(&translation, &path)?;
            let (bridges, bridge_notes) = mosquitto_bridges(&translation.bridges)?;
            let mut config = Self::resolve(flags, file)?;
            config.bridges = bridges;
            config.file_notices = notices(translation, bridge_notes);
            return Ok(config);
        }
        let file = match &flags.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        Self::resolve(flags, file)
    }

    /// Merges flags over file settings over defaults, and checks the result.
    pub fn resolve(flags: Flags, file: FileSettings) -> Result<Self, ConfigError> {
        let on = |flag: bool, file: Option<bool>| flag || file.unwrap_or(false);
        let mut file = file;
        let bind = if flags.bind.is_empty() {
            match file.bind.take() {
                None => Vec::new(),
                Some(OneOrMany::One(b)) => vec![b],
                Some(OneOrMany::Many(b)) => b,
            }
            .iter()
            .map(|text| {
                BindAddress::parse(text)
                    .map_err(|e| ConfigError::Invalid(format!("bind in --config: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?
        } else {
            flags.bind
        };
        let listener_flags = ListenerFlags {
            bind,
            port: flags.port.or(file.port),
            tls_port: flags.tls_port.or(file.tls_port),
            ws_port: flags.ws_port.or(file.ws_port),
            wss_port: flags.wss_port.or(file.wss_port),
            no_plain: on(flags.no_plain, file.no_plain),
            no_ssl: on(flags.no_ssl, file.no_ssl),
            tls: TlsFlags {
                cert: flags.cert.or(file.cert.take()),
                key: flags.key.or(file.key.take()),
                cafile: flags.cafile.or(file.cafile.take()),
                require_certificate: on(flags.require_certificate, file.require_certificate),
                identity_as_username: on(flags.identity_as_username, file.identity_as_username),
            },
        };
        let (listeners, bind_is_default) = match file.listeners()? {
            Some(sections) => {
                if listener_flags.any() {
                    return Err(ConfigError::Invalid(
                        "the config file's [[listener]] sections define the listeners, yet --bind/--port/--tls-port/--ws-port/--wss-port/--no-plain/--no-ssl/--cert/--key/--cafile (or the same top-level keys) were given too: set them in the sections instead".to_owned(),
                    ));
                }
                // The start-up notice is about `--bind`; each section's
                // `listening` lines show where it listens.
                (sections, false)
            }
            None => {
                let default = listener_flags.bind.is_empty();
                (listeners::from_flags(listener_flags)?, default)
            }
        };
        listeners::check_distinct(&listeners)?;
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let password_file = flags.password_file.or(file.password_file);
        // Without a password file there is nothing to check a user against,
        // so anonymous clients are let in; with one, only if asked. A file
        // that says `allow-anonymous = false` is obeyed either way (as
        // mosquitto 2.0 obeys it: with no password file nobody gets in).
        let allow_anonymous =
            flags.allow_anonymous || file.allow_anonymous.unwrap_or(password_file.is_none());
        let max_packet_size = flags
            .max_packet_size
            .or(file.max_packet_size)
            .unwrap_or(mqtt_codec::DEFAULT_MAX_PACKET_SIZE);
        let persistent_client_expiration = match (
            flags.persistent_client_expiration,
            file.persistent_client_expiration,
        ) {
            (Some(d), _) => Some(d),
            (None, Some(text)) => Some(expiration::parse_expiration(&text).map_err(|e| {
                ConfigError::Invalid(format!("persistent-client-expiration in --config: {e}"))
            })?),
            (None, None) => None,
        };
        if max_packet_size < 2 {
            return invalid("--max-packet-size must be at least 2 bytes (the smallest packet)");
        }
        let bridges = file
            .bridge
            .iter()
            .enumerate()
            .map(|(i, table)| {
                crate::bridge::BridgeConfig::from_toml(table).map_err(|e| {
                    ConfigError::Invalid(format!("[[bridge]] number {} in --config: {e}", i + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut names: Vec<&str> = bridges.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return invalid(&format!(
                "two [[bridge]] tables in --config are both named \"{}\": give each connection its own name",
                w[0]
            ));
        }
        Ok(Self {
            listeners,
            bind_is_default,
            password_file,
            acl_file: flags.acl_file.or(file.acl_file),
            allow_anonymous,
            use_username_as_clientid: on(
                flags.use_username_as_clientid,
                file.use_username_as_clientid,
            ),
            data_dir: flags.data_dir.or(file.data_dir),
            max_connections: flags.max_connections.or(file.max_connections).unwrap_or(0),
            max_packet_size,
            max_inflight: flags.max_inflight.or(file.max_inflight).unwrap_or(100),
            max_queued: flags.max_queued.or(file.max_queued).unwrap_or(1000),
            max_queued_bytes: flags
                .max_queued_bytes
                .or(file.max_queued_bytes)
                .unwrap_or(0),
            slow_client_timeout: secs(
                flags
                    .slow_client_timeout
                    .or(file.slow_client_timeout)
                    .unwrap_or(10),
            ),
            queue_qos0: on(flags.queue_qos0, file.queue_qos0),
            sys_interval: secs(flags.sys_interval.or(file.sys_interval).unwrap_or(10)),
            connect_timeout: Duration::from_secs(
                flags
                    .connect_timeout
                    .or(file.connect_timeout)
                    .unwrap_or(10)
                    .max(1),
            ),
            autosave_interval: secs(
                flags
                    .autosave_interval
                    .or(file.autosave_interval)
                    .unwrap_or(60),
            ),
            durability: flags.durability.or(file.durability).unwrap_or_default(),
            persistent_client_expiration,
            verbose: on(flags.verbose, file.verbose),
            bridges,
            file_notices: Vec::new(),
        })
    }
}

/// The bridges of a mosquitto.conf's `connection` blocks, each directive
/// applied in file order; a wrong one is an error at its line, one read but
/// not acted on a note.
fn mosquitto_bridges(
    blocks: &[mosquitto::BridgeBlock],
) -> Result<(Vec<crate::bridge::BridgeConfig>, Vec<FileNotice>), ConfigError> {
    use crate::bridge::{Applied, BridgeConfig};
    let at = |origin: &mosquitto::Origin, message: String| ConfigError::Line {
        path: origin.path.clone(),
        line: origin.line,
        message,
    };
    let mut bridges: Vec<BridgeConfig> = Vec::new();
    let mut notes = Vec::new();
    for block in blocks {
        let mut bridge =
            BridgeConfig::new(&block.name).map_err(|e| at(&block.origin, e.to_string()))?;
        for d in &block.directives {
            match bridge.apply(&d.name, &d.value) {
                Ok(Applied::Set) => {}
                Ok(Applied::Ignored { note }) => {
                    notes.push(FileNotice::Note(mosquitto::Diagnostic {
                        origin: d.origin.clone(),
                        message: format!("{}: {note}", d.name),
                    }))
                }
                Err(e) => return Err(at(&d.origin, format!("connection {}: {e}", block.name))),
            }
        }
        let bridge = bridge
            .finish()
            .map_err(|e| at(&block.origin, e.to_string()))?;
        if bridges.iter().any(|b| b.name == bridge.name) {
            return Err(at(
                &block.origin,
                format!(
                    "a second connection named {}: give each bridge its own name",
                    bridge.name
                ),
            ));
        }
        bridges.push(bridge);
    }
    Ok((bridges, notes))
}

/// A translation's warnings and notes, in that order, for the log.
fn notices(translation: mosquitto::Translation, bridge_notes: Vec<FileNotice>) -> Vec<FileNotice> {
    translation
        .warnings
        .into_iter()
        .map(FileNotice::Warning)
        .chain(translation.notes.into_iter().map(FileNotice::Note))
        .chain(bridge_notes)
        .collect()
}

mod expiration;
mod listeners;
pub mod mosquitto;

pub use expiration::parse_expiration;
pub use listeners::{BindAddress, ListenerSettings, ListenerTransport, TlsSettings};
use listeners::{ListenerFile, ListenerFlags, TlsFlags};

#[cfg(test)]
mod tests;
