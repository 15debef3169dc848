//! mosquitto.conf's listeners: the default one (`port`, `bind_address`)
//! and each `listener PORT [ADDRESS]`, with the options that follow it
//! (`protocol`, `certfile`, `keyfile`, `cafile`, `require_certificate`,
//! `use_identity_as_username`), checked and turned into the settings'
//! listener keys.

use toml::Value;

use super::{Diagnostic, Source, at};
use crate::config::ConfigError;

/// A listener as the file builds it, line by line.
#[derive(Debug, Default)]
pub(super) struct ListenerDraft {
    /// The `listener` line, or the default listener's first `port` or
    /// `bind_address` line; `None` for a default listener never asked for.
    source: Option<Source>,
    port: Option<u16>,
    pub(super) bind: Option<String>,
    pub(super) websockets: bool,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    pub(super) cafile: Option<String>,
    pub(super) require_certificate: Option<bool>,
    pub(super) identity_as_username: Option<bool>,
    /// A listener the broker cannot open (a unix socket), warned about and
    /// left out with its options.
    pub(super) skip: bool,
}

impl ListenerDraft {
    /// The listener a `listener PORT` line starts.
    pub(super) fn named(port: u16, source: Source) -> Self {
        Self {
            source: Some(source),
            port: Some(port),
            ..Self::default()
        }
    }

    /// `port`: the default listener's port.
    pub(super) fn set_port(&mut self, port: u16, source: Source) {
        self.port = Some(port);
        self.source.get_or_insert(source);
    }

    /// Whether `port` or `bind_address` (or a `listener` line) opened it.
    pub(super) fn is_opened(&self) -> bool {
        self.source.is_some()
    }

    /// `bind_address`: the default listener's address.
    pub(super) fn set_bind(&mut self, bind: String, source: Source) {
        self.bind = Some(bind);
        self.source.get_or_insert(source);
    }
}

/// A checked listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listener {
    /// The line that opened it.
    pub(super) source: Source,
    pub(super) port: u16,
    /// `None`: every interface, as mosquitto binds without an address.
    pub(super) bind: Option<String>,
    websockets: bool,
    /// Certificate and key: TLS on.
    cert_and_key: Option<(String, String)>,
    cafile: Option<String>,
    require_certificate: bool,
    identity_as_username: bool,
}

/// The address for "every interface": `::`, which takes IPv4 clients too
/// where the OS allows (Linux does unless `net.ipv6.bindv6only` is set),
/// as mosquitto's listener without an address takes both.
const ANY: &str = "::";

impl Listener {
    /// Checks a draft; client-certificate options on a listener without
    /// TLS are dropped with a warning in `warnings` (mosquitto ignores
    /// them silently).
    fn check(
        mut draft: ListenerDraft,
        source: Source,
        warnings: &mut Vec<Diagnostic>,
    ) -> Result<Self, ConfigError> {
        let origin = &source.origin;
        let cert_and_key = match (draft.cert, draft.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(at(
                    origin,
                    "this listener has certfile but no keyfile: give both to turn TLS on",
                ));
            }
            (None, Some(_)) => {
                return Err(at(
                    origin,
                    "this listener has keyfile but no certfile: give both to turn TLS on",
                ));
            }
        };
        if cert_and_key.is_none()
            && (draft.cafile.is_some()
                || draft.require_certificate.is_some()
                || draft.identity_as_username.is_some())
        {
            warnings.push(Diagnostic {
                origin: origin.clone(),
                message: "this listener has no certfile and keyfile, so no TLS: its cafile, require_certificate and use_identity_as_username are ignored".into(),
            });
            draft.cafile = None;
            draft.require_certificate = None;
            draft.identity_as_username = None;
        }
        let require_certificate = draft.require_certificate.unwrap_or(false);
        let identity_as_username = draft.identity_as_username.unwrap_or(false);
        if require_certificate && draft.cafile.is_none() {
            return Err(at(
                origin,
                "this listener has require_certificate true but no cafile: give the CA that signs client certificates",
            ));
        }
        if identity_as_username && !require_certificate {
            return Err(at(
                origin,
                "this listener has use_identity_as_username true without require_certificate true: there may be no certificate to take the name from",
            ));
        }
        Ok(Self {
            source,
            port: draft.port.unwrap_or(1883),
            bind: draft.bind,
            websockets: draft.websockets,
            cert_and_key,
            cafile: draft.cafile,
            require_certificate,
            identity_as_username,
        })
    }

    /// The settings' transport name.
    pub(super) fn transport(&self) -> &'static str {
        match (self.websockets, self.cert_and_key.is_some()) {
            (false, false) => "mqtt",
            (false, true) => "mqtt+tls",
            (true, false) => "websockets",
            (true, true) => "websockets+tls",
        }
    }

    pub(super) fn bind_or_any(&self) -> &str {
        self.bind.as_deref().unwrap_or(ANY)
    }

    /// Certificate settings under the settings' keys.
    pub(super) fn tls_settings(&self) -> Vec<(&'static str, Value)> {
        let mut out: Vec<(&'static str, Value)> = Vec::new();
        if let Some((cert, key)) = &self.cert_and_key {
            out.push(("cert", cert.as_str().into()));
            out.push(("key", key.as_str().into()));
        }
        if let Some(ca) = &self.cafile {
            out.push(("cafile", ca.as_str().into()));
        }
        if self.require_certificate {
            out.push(("require-certificate", true.into()));
        }
        if self.identity_as_username {
            out.push(("identity-as-username", true.into()));
        }
        out
    }

    /// The listener as a `[[listener]]` table.
    pub(super) fn table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert("port".into(), i64::from(self.port).into());
        t.insert("bind".into(), self.bind_or_any().into());
        t.insert("transport".into(), self.transport().into());
        for (key, value) in self.tls_settings() {
            t.insert(key.into(), value);
        }
        t
    }
}

/// The listeners the file opens, in mosquitto's order: the default one
/// first when `port` or `bind_address` asked for it (port 1883 unless
/// given), then each `listener` line that is not skipped.
pub(super) fn collect(
    default: ListenerDraft,
    named: Vec<ListenerDraft>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Vec<Listener>, ConfigError> {
    std::iter::once(default)
        .chain(named)
        .filter(|d| !d.skip)
        .filter_map(|d| d.source.clone().map(|o| (d, o)))
        .map(|(d, o)| Listener::check(d, o, warnings))
        .collect()
}
