//! mosquitto.conf, read as a second syntax for the settings of a TOML
//! `--config` file (`broker -c mosquitto.conf`).
//!
//! The file is read line by line, as mosquitto 2.0 reads it, into the same
//! settings table a TOML file parses to; [`super::FileSettings`] then
//! checks that table exactly as it checks TOML, so both syntaxes share one
//! set of rules. What only this syntax can get wrong (a port that is not a
//! number, `certfile` without `keyfile`) is refused here with the file and
//! line. A directive the broker does not know or cannot honour is one
//! warning with its file and line; one it understands but has no use for
//! (`user`, `log_dest`) is a note. Bridge directives are kept, block by
//! block, for the bridge module to read.
//!
//! mosquitto 2.0's defaults that differ from a bare `broker` follow the
//! file: listeners are only those it names, anonymous clients are refused
//! once a listener is named (and allowed, on localhost only, when none
//! is), and nothing persists unless `persistence true`.

mod listeners;
mod translation;
mod value;

use std::collections::BTreeMap;
use std::path::Path;

use toml::Value;

use super::ConfigError;
use listeners::{Listener, ListenerDraft};
pub use translation::{BridgeBlock, BridgeDirective, Diagnostic, Origin, Source, Translation};
use value::{Arg, int_value};

fn is_bridge_directive(name: &str) -> bool {
    name.starts_with("bridge_") || crate::bridge::config::DIRECTIVES.contains(&name)
}

/// Reads the mosquitto.conf at `path` (and what its `include_dir` lines
/// name) into settings.
pub fn translate_file(path: &Path) -> Result<Translation, ConfigError> {
    let mut reader = Reader::default();
    reader.read_file(path, false)?;
    reader.finish()
}

/// Reads mosquitto.conf text; `path` names the file in messages (an
/// `include_dir` in it is still read from disk).
pub fn translate(text: &str, path: &Path) -> Result<Translation, ConfigError> {
    let mut reader = Reader::default();
    reader.read_text(text, path, false)?;
    reader.finish()
}

/// Whether `text`, which failed to parse as TOML, reads like a
/// mosquitto.conf: its first setting is `name value` (no `=`, no table
/// header), so the user likely meant `-c`.
pub fn looks_like_mosquitto_conf(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return false;
    };
    let mut words = first.split_whitespace();
    let name = words.next().unwrap_or_default();
    !first.contains('=')
        && words.next().is_some()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
}

/// The reader's state between lines.
#[derive(Debug, Default)]
struct Reader {
    settings: toml::Table,
    /// The default listener's `port` / `bind_address` and the listener
    /// options given before any `listener` line.
    default_listener: ListenerDraft,
    /// `listener` lines, in order.
    listeners: Vec<ListenerDraft>,
    allow_anonymous: Option<bool>,
    persistence: Option<bool>,
    persistence_location: Option<(String, Origin)>,
    bridges: Vec<BridgeBlock>,
    warnings: Vec<Diagnostic>,
    notes: Vec<Diagnostic>,
    /// The first listener option before any `listener` line.
    default_options_at: Option<Origin>,
    /// The directive being read, which settings set now come from.
    current: Option<Source>,
    sources: BTreeMap<String, Source>,
}

/// A line's error: `path:line: message`.
fn at(origin: &Origin, message: impl Into<String>) -> ConfigError {
    ConfigError::Line {
        path: origin.path.clone(),
        line: origin.line,
        message: message.into(),
    }
}

impl Reader {
    fn read_file(&mut self, path: &Path, included: bool) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.read_text(&text, path, included)
    }

    fn read_text(&mut self, text: &str, path: &Path, included: bool) -> Result<(), ConfigError> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let origin = Origin {
                path: path.to_owned(),
                line: index + 1,
            };
            let (name, value) = match line.split_once(char::is_whitespace) {
                Some((n, v)) => (n, v.trim()),
                None => (line, ""),
            };
            self.directive(name, value, origin, included)?;
        }
        Ok(())
    }

    /// The listener that a listener option at `origin` applies to: the
    /// last `listener` line's, or the default listener's before any (where
    /// the first such line is remembered, to warn if no `port` or
    /// `bind_address` opens that listener).
    fn listener_option(&mut self, origin: &Origin) -> &mut ListenerDraft {
        match self.listeners.last_mut() {
            Some(l) => l,
            None => {
                self.default_options_at
                    .get_or_insert_with(|| origin.clone());
                &mut self.default_listener
            }
        }
    }

    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.settings.insert(key.to_owned(), value.into());
        if let Some(source) = &self.current {
            self.sources.insert(key.to_owned(), source.clone());
        }
    }

    fn warn(&mut self, origin: Origin, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            origin,
            message: message.into(),
        });
    }

    fn note(&mut self, origin: Origin, message: impl Into<String>) {
        self.notes.push(Diagnostic {
            origin,
            message: message.into(),
        });
    }

    fn directive(
        &mut self,
        name: &str,
        value: &str,
        origin: Origin,
        included: bool,
    ) -> Result<(), ConfigError> {
        let source = Source {
            directive: name.to_owned(),
            origin: origin.clone(),
        };
        self.current = Some(source.clone());
        let v = Arg {
            name,
            value,
            origin: &origin,
        };
        match name {
            // The default listener and listeners.
            "port" => {
                let port = v.port()?;
                self.default_listener.set_port(port, source);
            }
            "bind_address" => {
                let bind = v.host()?;
                self.default_listener.set_bind(bind, source);
            }
            "listener" => {
                let mut words = value.split_whitespace();
                let port = Arg {
                    value: words.next().unwrap_or_default(),
                    ..v
                }
                .port()?;
                let bind = words.next();
                if words.next().is_some() {
                    return Err(at(
                        &origin,
                        format!("listener \"{value}\" has more than a port and an address"),
                    ));
                }
                let mut draft = ListenerDraft::named(port, source);
                match bind {
                    // mosquitto reads `listener 0 PATH` as a unix socket;
                    // port 0 with an IP address is ours: a free port
                    // (mosquitto refuses port 0 otherwise), which a
                    // socket path never looks like.
                    Some(path)
                        if path.contains('/')
                            || port == 0 && path.parse::<std::net::IpAddr>().is_err() =>
                    {
                        // The settings after it still belong to it, and
                        // are dropped with it.
                        draft.skip = true;
                        self.warn(
                            origin,
                            "unix socket listeners are not supported: this listener and its settings are skipped",
                        );
                    }
                    Some(host) => {
                        let host = Arg { value: host, ..v }.host()?;
                        draft.bind = Some(host);
                    }
                    None => {}
                }
                self.listeners.push(draft);
            }
            "protocol" => {
                let websockets = match value {
                    "mqtt" => false,
                    "websockets" => true,
                    _ => {
                        return Err(at(
                            &origin,
                            format!("protocol \"{value}\" is neither mqtt nor websockets"),
                        ));
                    }
                };
                self.listener_option(&origin).websockets = websockets;
            }
            "certfile" => self.listener_option(&origin).cert = Some(v.path()?),
            "keyfile" => self.listener_option(&origin).key = Some(v.path()?),
            "cafile" => self.listener_option(&origin).cafile = Some(v.path()?),
            "require_certificate" => {
                self.listener_option(&origin).require_certificate = Some(v.boolean()?);
            }
            "use_identity_as_username" => {
                self.listener_option(&origin).identity_as_username = Some(v.boolean()?);
            }
            "max_connections" => {
                // -1 (any negative, as mosquitto reads it) is unlimited.
                let n: i64 = v.number("a whole number, -1 for no limit")?;
                self.set("max-connections", n.max(0));
            }
            "socket_domain" | "bind_interface" | "mount_point" | "http_dir" | "capath"
            | "ciphers" | "ciphers_tls1.3" | "crlfile" | "dhparamfile" | "tls_version"
            | "tls_engine" | "tls_engine_kpass_sha1" | "tls_keyform" | "psk_hint"
            | "use_subject_as_username" | "max_qos" | "max_topic_alias" => self.warn(
                origin,
                format!("{name} is not supported: this listener ignores it"),
            ),

            // Security.
            "password_file" => {
                let path = v.path()?;
                self.set("password-file", path);
            }
            "acl_file" => {
                let path = v.path()?;
                self.set("acl-file", path);
            }
            "allow_anonymous" => self.allow_anonymous = Some(v.boolean()?),
            "use_username_as_clientid" => {
                let on = v.boolean()?;
                self.set("use-username-as-clientid", on);
            }
            "per_listener_settings" => {
                if v.boolean()? {
                    self.warn(
                        origin,
                        "per_listener_settings true is not supported: password_file, acl_file and allow_anonymous apply to every listener",
                    );
                }
            }

            // Persistence.
            "persistence" => self.persistence = Some(v.boolean()?),
            "persistence_location" => {
                let path = v.path()?;
                self.persistence_location = Some((path, origin));
            }
            "autosave_interval" => {
                let secs: u64 = v.number("a whole number of seconds")?;
                self.set("autosave-interval", int_value(secs, &origin)?);
            }
            "persistent_client_expiration" => {
                super::parse_expiration(value).map_err(|e| {
                    at(&origin, format!("persistent_client_expiration {e}"))
                })?;
                self.set("persistent-client-expiration", value);
            }

            // Queues and limits.
            "max_inflight_messages" => {
                let n: u16 = v.number("a number from 0 to 65535, 0 for no limit")?;
                self.set("max-inflight", i64::from(n));
            }
            "max_queued_messages" => {
                let n: u64 = v.number("a whole number, 0 for no limit")?;
                self.set("max-queued", int_value(n, &origin)?);
            }
            "max_queued_bytes" => {
                let n: u64 = v.number("a whole number of bytes, 0 for no limit")?;
                self.set("max-queued-bytes", int_value(n, &origin)?);
            }
            "max_packet_size" => {
                let n: u32 = v.number("a number of bytes, 0 for no limit")?;
                if n != 0 && n < 20 {
                    return Err(at(
                        &origin,
                        format!("max_packet_size {n} is below 20 bytes, as mosquitto refuses too: give 20 or more, or 0 for no limit"),
                    ));
                }
                // 0 is mosquitto's "no limit": the protocol's, our default.
                if n != 0 {
                    self.set("max-packet-size", i64::from(n));
                }
            }
            "queue_qos0_messages" => {
                let on = v.boolean()?;
                self.set("queue-qos0", on);
            }
            "sys_interval" => {
                let secs: u64 = v.number("a whole number of seconds, 0 for no $SYS")?;
                self.set("sys-interval", int_value(secs, &origin)?);
            }

            // Logging.
            "log_type" => {
                let verbose = match value {
                    "debug" | "all" => true,
                    "error" | "warning" | "notice" | "information" | "subscribe"
                    | "unsubscribe" | "websockets" | "none" => false,
                    _ => {
                        return Err(at(
                            &origin,
                            format!("log_type \"{value}\" is not one of debug, error, warning, notice, information, subscribe, unsubscribe, websockets, none, all"),
                        ));
                    }
                };
                if verbose {
                    self.set("verbose", true);
                } else if value != "none" {
                    self.note(
                        origin,
                        format!("log_type {value} is read as the default level (info); debug or all turn on debug logging"),
                    );
                }
            }
            "log_dest" | "log_facility" | "log_timestamp" | "log_timestamp_format"
            | "connection_messages" => {
                self.note(origin, format!("{name} is ignored: the broker logs to stderr"));
            }
            "user" => self.note(
                origin,
                "user is ignored: the broker runs as the user that starts it and drops no privileges",
            ),

            "include_dir" => {
                // mosquitto reads include_dir in the main file only and
                // skips it, silently, in an included one.
                if included {
                    self.warn(
                        origin,
                        "include_dir is read only in the main file, as mosquitto does: ignored here",
                    );
                    return Ok(());
                }
                self.include_dir(Path::new(value), &origin)?;
            }

            // Bridges: kept whole for the bridge module.
            "connection" => {
                if value.is_empty() {
                    return Err(at(&origin, "connection needs a name: connection NAME"));
                }
                self.bridges.push(BridgeBlock {
                    name: value.to_owned(),
                    origin,
                    directives: Vec::new(),
                });
            }
            _ if is_bridge_directive(name) => match self.bridges.last_mut() {
                Some(block) => block.directives.push(BridgeDirective {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    origin,
                }),
                None => {
                    return Err(at(
                        &origin,
                        format!("{name} is a bridge setting: put it after a `connection NAME` line"),
                    ));
                }
            },

            _ => self.warn(
                origin,
                format!("{name} is unknown or not supported by this broker: ignored"),
            ),
        }
        Ok(())
    }

    /// Reads every `*.conf` in `dir` in mosquitto's order: by name, case
    /// sensitive, each letter's upper case before its lower case
    /// (`A.conf`, `a.conf`, `B.conf`).
    fn include_dir(&mut self, dir: &Path, origin: &Origin) -> Result<(), ConfigError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| at(origin, format!("include_dir {}: {e}", dir.display())))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| at(origin, format!("include_dir {}: {e}", dir.display())))?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
                files.push(path);
            }
        }
        files.sort_by_key(|path| {
            path.file_name()
                .map(|n| {
                    n.as_encoded_bytes()
                        .iter()
                        .map(|b| (b.to_ascii_lowercase(), b.is_ascii_lowercase()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        for file in files {
            self.read_file(&file, true)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Translation, ConfigError> {
        self.current = None;
        if let (Some(at), false) = (
            self.default_options_at.take(),
            self.default_listener.is_opened(),
        ) {
            // mosquitto drops them silently; a certfile meant for the
            // listener below it is an easy mistake.
            self.warn(
                at,
                "this listener setting comes before any `listener` line, so it belongs to the default listener, which no `port` or `bind_address` opens: ignored; move it below its listener line",
            );
        }
        let listeners = listeners::collect(
            std::mem::take(&mut self.default_listener),
            std::mem::take(&mut self.listeners),
            &mut self.warnings,
        )?;
        // mosquitto 2.0: with no listener it serves localhost only and lets
        // anonymous clients in; once one is named, anonymous clients are
        // refused unless the file says otherwise.
        let allow_anonymous = self.allow_anonymous.unwrap_or(listeners.is_empty());
        self.set("allow-anonymous", allow_anonymous);
        let listener_origins = self.place_listeners(&listeners);
        match (self.persistence, self.persistence_location.take()) {
            (Some(true), Some((path, _))) => self.set("data-dir", path),
            // mosquitto writes mosquitto.db in its working directory.
            (Some(true), None) => self.set("data-dir", "."),
            (_, Some((_, origin))) => self.note(
                origin,
                "persistence_location is ignored: persistence is false (the default), so nothing is saved",
            ),
            (_, None) => {}
        }
        Ok(Translation {
            settings: self.settings,
            bridges: self.bridges,
            warnings: self.warnings,
            notes: self.notes,
            listeners: listener_origins,
            sources: self.sources,
        })
    }

    /// Puts the listeners into the settings. When they fit the flags'
    /// shape (at most one listener of each transport, all on one address,
    /// the TLS ones with the same certificate settings) they become `port`,
    /// `tls-port`, `ws-port`, `wss-port`, `bind` and the certificate keys,
    /// so `--port` and the other flags still win over them. Otherwise each
    /// becomes a `listener` table, and the listener flags are refused as
    /// they are beside a TOML file's `[[listener]]` sections. Returns where
    /// the tables' listeners are, in order.
    fn place_listeners(&mut self, listeners: &[Listener]) -> Vec<Origin> {
        if listeners.is_empty() {
            // Local-only mode: plain MQTT on localhost:1883, our defaults
            // for port and address; no TLS listener.
            self.set("no-ssl", true);
            return Vec::new();
        }
        if !fits_flags(listeners) {
            let tables = listeners.iter().map(|l| Value::Table(l.table())).collect();
            self.current = Some(Source {
                directive: "listener".into(),
                origin: listeners[0].source.origin.clone(),
            });
            self.set("listener", Value::Array(tables));
            self.current = None;
            return listeners.iter().map(|l| l.source.origin.clone()).collect();
        }
        let of = |transport: &str| listeners.iter().find(|l| l.transport() == transport);
        for (transport, key, off) in [
            ("mqtt", "port", Some("no-plain")),
            ("mqtt+tls", "tls-port", Some("no-ssl")),
            ("websockets", "ws-port", None),
            ("websockets+tls", "wss-port", None),
        ] {
            self.current = None;
            match of(transport) {
                Some(l) => {
                    self.current = Some(l.source.clone());
                    self.set(key, i64::from(l.port));
                    for (key, value) in l.tls_settings() {
                        self.set(key, value);
                    }
                }
                None => {
                    if let Some(off) = off {
                        self.set(off, true);
                    }
                }
            }
        }
        self.current = Some(listeners[0].source.clone());
        self.set("bind", listeners[0].bind_or_any().to_owned());
        self.current = None;
        Vec::new()
    }
}

/// Whether the listeners fit the flags' shape: one of each transport at
/// most, one address, one set of certificate settings.
fn fits_flags(listeners: &[Listener]) -> bool {
    let first = &listeners[0];
    let tls: Vec<_> = listeners
        .iter()
        .filter(|l| l.transport().ends_with("+tls"))
        .map(Listener::tls_settings)
        .collect();
    listeners.iter().enumerate().all(|(i, l)| {
        l.bind == first.bind
            && listeners[..i]
                .iter()
                .all(|other| other.transport() != l.transport())
    }) && tls.windows(2).all(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests;
