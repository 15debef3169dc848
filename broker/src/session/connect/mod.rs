//! The CONNECT rules (§3.1, §3.2) as plain functions over values.
//!
//! What the first packet must be, which client ids are taken, who is let in,
//! what becomes of the will, and what CONNACK says: all decided here, with no
//! socket and no clock of its own, so a test calls it with packets and an
//! instant. The listener does the I/O around it: the TLS handshake, reading
//! the first packet within the connect timeout, the router's takeover wait,
//! and writing what [`check`] and [`Accepted::start`] return.

use std::time::Instant;

use tracing::warn;

use super::{Message, Session};
use crate::auth::Authenticator;
use crate::mutant;
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, Packet, PacketType, ProtocolLevel,
};

/// Who may connect, and what the listener knows about the connection
/// beyond its CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The password file and anonymous rule.
    pub auth: &'a Authenticator,
    /// `--identity-as-username` on the listener this connection came in on
    /// (TLS only): the client certificate's name replaces the user name the
    /// client sent, and needs no password.
    pub identity_as_username: bool,
    /// The Common Name of the client's certificate, if it sent one.
    pub certificate_name: Option<&'a str>,
    /// `--use-username-as-clientid`: the user name replaces the client id
    /// the client sent, and a client without one is refused.
    pub use_username_as_clientid: bool,
}

/// A CONNECT that passed the rules, waiting for the router to attach its
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The client id: the one sent, one assigned [MQTT-3.1.3-6], or the
    /// user name with `--use-username-as-clientid`.
    pub client_id: String,
    /// The user the broker verified (a password file's user, or a client
    /// certificate's name with `--identity-as-username`); `None` when
    /// nobody checks user names or the client is anonymous. A session
    /// belongs to this user: see [`may_take_over`].
    pub user: Option<String>,
    /// The name the client goes by, verified or not: the one it sent, or
    /// its certificate's with `--identity-as-username`. The ACL's rules are
    /// chosen by it, as mosquitto's are.
    pub username: Option<String>,
    /// Clean Session as asked [MQTT-3.1.2-6].
    pub clean_session: bool,
    /// Keep Alive in seconds, 0 for none; a client silent for 1.5× this is
    /// disconnected [MQTT-3.1.2-24].
    pub keep_alive: u16,
    /// The will, published when the connection ends without DISCONNECT
    /// [MQTT-3.1.2-8] and discarded with DISCONNECT [MQTT-3.1.2-10]. Boxed: most clients set no will, and those that do
    /// pay for it alone.
    pub will: Option<Box<Message>>,
    /// The CONNECT's protocol level carried the bridge bit (0x83/0x84, as
    /// mosquitto's bridges send with `try_private`): the router sends none
    /// of its own messages back to it and keeps RETAIN as published.
    pub bridge: bool,
}

/// Why a connection ends before an accepting CONNACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The first packet was not CONNECT: closed without CONNACK
    /// [MQTT-3.1.0-1].
    #[error("first packet is {packet}, not CONNECT [MQTT-3.1.0-1]")]
    NotConnect {
        /// The packet that came first.
        packet: PacketType,
    },
    /// A CONNECT for a protocol name or level this broker does not speak:
    /// refused with 0x01 [MQTT-3.1.2-2].
    #[error("unacceptable protocol: {0}")]
    UnacceptableProtocol(DecodeError),
    /// The first bytes were not a valid packet: closed without CONNACK
    /// [MQTT-4.8.0-1].
    #[error("malformed packet before CONNECT: {0}")]
    Malformed(DecodeError),
    /// An empty client id where none may be assigned: refused with 0x02
    /// [MQTT-3.1.3-8].
    #[error("empty client id refused with {code} ({protocol})")]
    ClientId {
        /// The return code (0x02).
        code: ConnectReturnCode,
        /// The protocol the CONNECT spoke.
        protocol: ProtocolLevel,
    },
    /// `--use-username-as-clientid` and no user name to use: refused with
    /// 0x05, as mosquitto does.
    #[error("no user name to use as the client id, refused with {code}")]
    NoUserName {
        /// The return code (0x05).
        code: ConnectReturnCode,
    },
    /// The client id belongs to a session of another verified user: refused
    /// with 0x05 rather than handing that user's session and queued
    /// messages over (see [`may_take_over`]).
    #[error("client id '{client_id}' is held by another user's session, refused with {code}")]
    HeldByAnotherUser {
        /// The return code (0x05).
        code: ConnectReturnCode,
        /// The contested client id.
        client_id: String,
    },
    /// The credentials were refused: 0x04 or 0x05.
    #[error("credentials of {} refused with {code}", who(username.as_deref()))]
    Credentials {
        /// The return code.
        code: ConnectReturnCode,
        /// The user name sent, if any.
        username: Option<String>,
    },
}

/// "user 'name'", or that none was given.
fn who(username: Option<&str>) -> String {
    match username {
        Some(u) => format!("user '{u}'"),
        None => "a client with no user name".to_owned(),
    }
}

impl ConnectError {
    /// The CONNACK return code to refuse with before closing
    /// [MQTT-3.2.2-5], or `None` when the connection closes with no CONNACK.
    pub fn refusal(&self) -> Option<ConnectReturnCode> {
        match self {
            ConnectError::NotConnect { .. } | ConnectError::Malformed(_) => None,
            ConnectError::UnacceptableProtocol(_) => {
                Some(ConnectReturnCode::UnacceptableProtocolVersion)
            }
            ConnectError::ClientId { code, .. }
            | ConnectError::Credentials { code, .. }
            | ConnectError::NoUserName { code }
            | ConnectError::HeldByAnotherUser { code, .. } => Some(*code),
        }
    }

    /// Logs why the connection is refused, in the connection's span.
    pub fn log(&self) {
        match self {
            ConnectError::NotConnect { packet } => {
                warn!(packet = %packet, "first packet is not CONNECT, closing [MQTT-3.1.0-1]");
            }
            ConnectError::UnacceptableProtocol(e) => {
                warn!(error = %e, "refusing CONNECT with return code 0x01");
            }
            ConnectError::Malformed(e) => {
                warn!(error = %e, statement = e.statement().unwrap_or("-"), "malformed packet before CONNECT, closing");
            }
            ConnectError::ClientId { code, protocol } => {
                warn!(code = %code, protocol = %protocol, "empty client id refused: it needs clean session [MQTT-3.1.3-8], and MQTT 3.1 allows none");
            }
            ConnectError::NoUserName { code } => {
                warn!(code = %code, "refusing a client without a user name: --use-username-as-clientid needs one");
            }
            ConnectError::HeldByAnotherUser { code, client_id } => {
                warn!(code = %code, contested = %client_id, "refusing CONNECT: the client id belongs to another user's session");
            }
            ConnectError::Credentials { code, username } => {
                warn!(code = %code, username = username.as_deref().unwrap_or(""), "refusing credentials");
            }
        }
    }
}

/// Applies the CONNECT rules to the first packet a connection sent (or the
/// error decoding it).
///
/// - It must be CONNECT [MQTT-3.1.0-1]; a CONNECT for another protocol
///   level is refused with 0x01 [MQTT-3.1.2-2].
/// - The client id is resolved (see [`super::resolve_client_id`]) and
///   recorded in the current tracing span, the connection's, so every later
///   line carries it.
/// - The credentials are checked against `policy`; with
///   `--identity-as-username` a TLS client needs a certificate instead
///   (0x05 without one).
/// - The will is kept, its payload copied: it lives as long as the
///   connection and should not pin the buffer the CONNECT was read into.
pub fn check(
    first: Result<Packet, DecodeError>,
    policy: &Policy<'_>,
) -> Result<Accepted, ConnectError> {
    let connect = match first {
        Ok(Packet::Connect(c)) => c,
        Ok(other) => {
            return Err(ConnectError::NotConnect {
                packet: other.packet_type(),
            });
        }
        Err(e) if e.is_unacceptable_protocol() && !mutant::active("unsupported-level-closed") => {
            return Err(ConnectError::UnacceptableProtocol(e));
        }
        Err(e) => return Err(ConnectError::Malformed(e)),
    };
    accept(connect, policy)
}

/// The rules after the packet type: client id, credentials, will.
fn accept(connect: Connect, policy: &Policy<'_>) -> Result<Accepted, ConnectError> {
    let client_id =
        super::resolve_client_id(&connect.client_id, connect.clean_session, connect.protocol)
            .map_err(|code| ConnectError::ClientId {
                code,
                protocol: connect.protocol,
            })?;
    tracing::Span::current().record("client_id", client_id.as_str());

    // With --identity-as-username the certificate's name replaces the user
    // name the client sent (and needs no password).
    let auth = match (policy.certificate_name, policy.identity_as_username) {
        (Some(_), true) => Ok(()),
        (None, true) => Err(ConnectReturnCode::NotAuthorized),
        _ => policy
            .auth
            .check(connect.username.as_deref(), connect.password.as_deref()),
    };
    if let Err(code) = auth {
        return Err(ConnectError::Credentials {
            code,
            username: connect.username,
        });
    }
    // The name the client goes by: the certificate's with
    // --identity-as-username, else the one it sent.
    let name = match (policy.certificate_name, policy.identity_as_username) {
        (Some(cert), true) => Some(cert.to_owned()),
        _ => connect.username,
    };
    // Only a name someone checked identifies a user; with no password file
    // any client may send any name.
    let verified = policy.identity_as_username || policy.auth.verifies_users();
    let user = name.clone().filter(|_| verified);
    let client_id = if policy.use_username_as_clientid {
        // mosquitto (handle_connect.c) refuses an MQTT 3.1.1 client without
        // a user name here with 0x05, not authorized.
        let name = name.clone().ok_or(ConnectError::NoUserName {
            code: ConnectReturnCode::NotAuthorized,
        })?;
        tracing::Span::current().record("client_id", name.as_str());
        name
    } else {
        client_id
    };

    // Copy the payload: the will lives as long as the connection and
    // should not pin the buffer the CONNECT was read into.
    let will = connect.will.map(|w| Box::new(w.with_own_payload()));
    Ok(Accepted {
        client_id,
        user,
        username: name,
        clean_session: connect.clean_session,
        keep_alive: connect.keep_alive,
        will,
        bridge: connect.protocol.is_bridge(),
    })
}

impl Accepted {
    /// Starts the connection on the session the router attached: sets its
    /// Clean Session flag and keep-alive, heard at `now`, and returns what
    /// to write, in order: CONNACK accepting, with Session Present as the
    /// router found it [MQTT-3.2.2-2] [MQTT-3.2.2-3], then the flows in
    /// flight resumed in their original order [MQTT-4.4.0-1].
    pub fn start(&self, session: &mut Session, session_present: bool, now: Instant) -> Vec<Packet> {
        session.attach(self.clean_session, self.keep_alive, now);
        let mut packets = Vec::with_capacity(1 + session.outgoing().len());
        packets.push(Packet::ConnAck(ConnAck {
            session_present: session_present && !mutant::active("session-present-always-0"),
            code: ConnectReturnCode::Accepted,
        }));
        packets.extend(session.resume());
        if mutant::active("resend-reversed") {
            packets[1..].reverse();
        }
        packets
    }
}

/// Whether a connection of `newcomer` may take over a client id whose
/// session (connected or parked) belongs to `holder`: only when both are
/// the same user, or no one verified either (no password file, or an
/// anonymous session). Otherwise one user could take over another's
/// session and read its queued messages; [MQTT-3.1.4-2]'s takeover is
/// meant for the same client reconnecting. `None` is "nobody verified".
pub fn may_take_over(holder: Option<&str>, newcomer: Option<&str>) -> bool {
    holder.is_none() || holder == newcomer
}

/// The CONNACK refusing a connection with `code`. Session Present is 0 with
/// any refusal [MQTT-3.2.2-4].
pub fn refusal(code: ConnectReturnCode) -> Packet {
    Packet::ConnAck(ConnAck {
        session_present: mutant::active("refusal-session-present"),
        code,
    })
}

#[cfg(test)]
mod tests;
