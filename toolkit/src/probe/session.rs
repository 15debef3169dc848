//! One MQTT connection driven by rumqttc, with waits that end in a reason
//! rather than hanging: every wait is bounded by the probe's `--timeout`, and
//! every failure is a [`Failure`] with its exit status.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, Incoming, LastWill,
    MqttOptions, Outgoing, QoS, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{TlsSwitch, tls};
use crate::exit::{Failure, Status};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS client configuration, for a TLS listener.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Client identifier [MQTT-3.1.3-3].
    pub client_id: String,
    /// User name and password, if any.
    pub credentials: Option<(String, String)>,
    /// Bound on every wait.
    pub timeout: Duration,
    /// The flag that turns TLS on, for hints.
    pub switch: TlsSwitch,
    /// Keep-alive, clean session and will.
    pub options: ClientOptions,
}

/// What CONNECT asks for beyond who and where: `probe` uses the defaults,
/// `pub` and `sub` take them from their flags.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Keep-alive interval; zero turns keep-alive off [MQTT-3.1.2-24].
    pub keep_alive: Duration,
    /// Clean session flag [MQTT-3.1.2-6]; `false` needs a client id.
    pub clean_session: bool,
    /// The will message [MQTT-3.1.2-8].
    pub will: Option<LastWill>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(30),
            clean_session: true,
            will: None,
        }
    }
}

impl Endpoint {
    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A received PUBLISH.
#[derive(Debug, Clone)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// The QoS it was delivered at.
    pub qos: QoS,
    /// Its retain flag.
    pub retain: bool,
    /// Its packet identifier (0 at QoS 0).
    pub packet_id: u16,
    /// When it arrived.
    pub at: Instant,
}

/// What CONNACK said.
#[derive(Debug, Clone, Copy)]
pub struct ConnAckInfo {
    /// Session present flag.
    pub session_present: bool,
    /// Time from starting to connect to CONNACK (TCP and TLS included).
    pub elapsed: Duration,
}

/// The largest packet MQTT 3.1.1 can frame: a remaining length of at most
/// 268,435,455 bytes (§2.2.3), plus five bytes of fixed header.
const MAX_PACKET: usize = 268_435_455 + 5;

/// What the shell does with each incoming message.
type MessageHandler = Box<dyn FnMut(&Message) + Send>;

/// A connected client. Incoming messages are queued in arrival order, or
/// handed to `on_message` when one is set (the interactive shell prints them
/// as they come).
pub struct Session {
    client: AsyncClient,
    events: mpsc::Receiver<Result<Event, ConnectionError>>,
    driver: JoinHandle<()>,
    endpoint: Endpoint,
    inbox: VecDeque<Message>,
    on_message: Option<MessageHandler>,
    /// Packet ids of QoS 2 messages received whose PUBREL has not come.
    unreleased: HashSet<u16>,
    closed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .field("queued", &self.inbox.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(endpoint: Endpoint) -> Result<(Self, ConnAckInfo), Failure> {
        let mut options = MqttOptions::new(&endpoint.client_id, &endpoint.host, endpoint.port);
        // rumqttc panics on a keep-alive under a second, and on clean
        // session off with an empty client id: refuse both as a failure.
        let keep_alive = endpoint.options.keep_alive;
        if !keep_alive.is_zero() && keep_alive < Duration::from_secs(1) {
            return Err(Failure::new(
                Status::Usage,
                "the keep-alive must be 0 (off) or at least 1 second",
            ));
        }
        if !endpoint.options.clean_session && endpoint.client_id.is_empty() {
            return Err(Failure::new(
                Status::Usage,
                "a session that is kept (clean session off) needs a client id: give -i ID",
            ));
        }
        options.set_clean_session(endpoint.options.clean_session);
        options.set_keep_alive(keep_alive);
        if let Some(will) = &endpoint.options.will {
            options.set_last_will(will.clone());
        }
        // Any packet MQTT allows, both ways: rumqttc's default of 10 KiB
        // would refuse a file `pub -f` sends or a large message `sub` gets.
        options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if let Some((user, password)) = &endpoint.credentials {
            options.set_credentials(user, password);
        }
        if let Some(config) = &endpoint.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                config.clone(),
            )));
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut network = eventloop.network_options();
        // rumqttc counts whole seconds; our own deadline below is the real bound.
        network.set_connection_timeout(endpoint.timeout.as_secs().max(1) + 1);
        // Small packets one at a time: without this, Nagle's algorithm and
        // delayed ACKs add ~40 ms to round trips and CONNACK.
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (tx, events) = mpsc::channel(256);
        let started = Instant::now();
        let span = tracing::info_span!(
            "connection",
            peer = %endpoint.addr(),
            client_id = %endpoint.client_id,
            tls = endpoint.tls.is_some()
        );
        let driver = tokio::spawn(tracing::Instrument::instrument(drive(eventloop, tx), span));
        let mut session = Self {
            client,
            events,
            driver,
            endpoint,
            inbox: VecDeque::new(),
            on_message: None,
            unreleased: HashSet::new(),
            closed: false,
        };
        let connack = session
            .wait_for("CONNACK", |event| match event {
                Event::Incoming(Incoming::ConnAck(ack)) => Some(ack.session_present),
                _ => None,
            })
            .await;
        match connack {
            Ok(session_present) => {
                let elapsed = started.elapsed();
                Ok((
                    session,
                    ConnAckInfo {
                        session_present,
                        elapsed,
                    },
                ))
            }
            Err(failure) => {
                session.driver.abort();
                Err(failure)
            }
        }
    }

    /// Hands every later message to `f` instead of queueing it.
    pub fn set_on_message(&mut self, f: impl FnMut(&Message) + Send + 'static) {
        self.on_message = Some(Box::new(f));
    }

    /// The endpoint this session connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Subscribes and waits for SUBACK; returns the granted QoS. A refusal
    /// (return code 0x80) is a failure with [`Status::Refused`].
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<QoS, Failure> {
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(|e| request_failed("SUBSCRIBE", &e))?;
        let codes = self
            .wait_for("SUBACK", |event| match event {
                Event::Incoming(Incoming::SubAck(ack)) => Some(ack.return_codes.clone()),
                _ => None,
            })
            .await?;
        match codes.first() {
            Some(SubscribeReasonCode::Success(granted)) => Ok(*granted),
            _ => Err(Failure::new(
                Status::Refused,
                format!(
                    "the broker refused the subscription to {filter:?} (SUBACK 0x80): check its access control for this client and topic"
                ),
            )),
        }
    }

    /// Unsubscribes and waits for UNSUBACK.
    pub async fn unsubscribe(&mut self, filter: &str) -> Result<(), Failure> {
        self.client
            .unsubscribe(filter)
            .await
            .map_err(|e| request_failed("UNSUBSCRIBE", &e))?;
        self.wait_for("UNSUBACK", |event| {
            matches!(event, Event::Incoming(Incoming::UnsubAck(_))).then_some(())
        })
        .await
    }

    /// Publishes and waits until the broker has taken it: PUBACK at QoS 1,
    /// PUBCOMP at QoS 2, the packet written at QoS 0. Returns how long that took.
    pub async fn publish(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<Duration, Failure> {
        let started = Instant::now();
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .map_err(|e| request_failed("PUBLISH", &e))?;
        let packet_id = self
            .wait_for("the PUBLISH to be sent", |event| match event {
                Event::Outgoing(Outgoing::Publish(id)) => Some(*id),
                _ => None,
            })
            .await?;
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                self.wait_for("PUBACK", |event| match event {
                    Event::Incoming(Incoming::PubAck(ack)) if ack.pkid == packet_id => Some(()),
                    _ => None,
                })
                .await?;
            }
            QoS::ExactlyOnce => {
                self.wait_for("PUBCOMP", |event| match event {
                    Event::Incoming(Incoming::PubComp(ack)) if ack.pkid == packet_id => Some(()),
                    _ => None,
                })
                .await?;
            }
        }
        Ok(started.elapsed())
    }

    /// The next message for which `wanted` holds, waiting at most the
    /// timeout; other messages stay queued. `None` when none came in time.
    pub async fn receive(
        &mut self,
        wanted: impl Fn(&Message) -> bool,
    ) -> Result<Option<Message>, Failure> {
        let deadline = tokio::time::Instant::now() + self.endpoint.timeout;
        loop {
            if let Some(i) = self.inbox.iter().position(&wanted) {
                return Ok(self.inbox.remove(i));
            }
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Err(_) => return Ok(None),
                Ok(event) => {
                    event?;
                }
            }
        }
    }

    /// The oldest message queued by [`Self::next_event`], if any (`sub`
    /// reads events itself, to see each PUBREL too).
    pub fn take_message(&mut self) -> Option<Message> {
        self.inbox.pop_front()
    }

    /// Waits for the next event of any kind and handles it: messages go to
    /// the queue (or `on_message`). For the shell's idle loop.
    pub async fn next_event(&mut self) -> Result<Event, Failure> {
        let Some(result) = self.events.recv().await else {
            self.closed = true;
            return Err(Failure::new(
                Status::Closed,
                format!("the connection to {} has ended", self.endpoint.addr()),
            ));
        };
        match result {
            Ok(event) => {
                match &event {
                    Event::Incoming(Incoming::Publish(p)) if p.qos == QoS::ExactlyOnce => {
                        self.unreleased.insert(p.pkid);
                    }
                    Event::Incoming(Incoming::PubRel(rel)) => {
                        self.unreleased.remove(&rel.pkid);
                    }
                    _ => {}
                }
                if let Event::Incoming(Incoming::Publish(p)) = &event {
                    let message = Message {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        qos: p.qos,
                        retain: p.retain,
                        packet_id: p.pkid,
                        at: Instant::now(),
                    };
                    match &mut self.on_message {
                        Some(f) => f(&message),
                        None => self.inbox.push_back(message),
                    }
                }
                Ok(event)
            }
            Err(err) => {
                self.closed = true;
                Err(classify_connection(&err, &self.endpoint))
            }
        }
    }

    /// Waits, within the timeout, for the PUBREL of every QoS 2 message
    /// received (rumqttc answers each with PUBCOMP), so that disconnecting
    /// leaves no exchange half done on the broker's side [MQTT-4.3.3-2].
    /// Messages arriving meanwhile are queued as usual.
    pub async fn finish_qos2(&mut self) {
        let deadline = tokio::time::Instant::now() + self.endpoint.timeout;
        while !self.unreleased.is_empty() && !self.closed {
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }

    /// Sends DISCONNECT and waits (bounded) for it to go out.
    pub async fn disconnect(mut self) {
        if !self.closed && self.client.disconnect().await.is_ok() {
            let _ = self
                .wait_for("DISCONNECT to be sent", |event| {
                    matches!(event, Event::Outgoing(Outgoing::Disconnect)).then_some(())
                })
                .await;
        }
        self.driver.abort();
    }

    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, Failure> {
        let deadline = tokio::time::Instant::now() + self.endpoint.timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Err(_) => {
                    return Err(Failure::new(
                        Status::Timeout,
                        format!(
                            "no {what} from {} within {}: the broker is slow or stuck; raise --timeout or check its log",
                            self.endpoint.addr(),
                            humantime::format_duration(self.endpoint.timeout)
                        ),
                    ));
                }
                Ok(event) => {
                    if let Some(value) = pick(&event?) {
                        return Ok(value);
                    }
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Polls the event loop and forwards what happens until the connection ends
/// (rumqttc would reconnect if polled after an error; the probe must not).
async fn drive(mut eventloop: EventLoop, tx: mpsc::Sender<Result<Event, ConnectionError>>) {
    loop {
        let result = eventloop.poll().await;
        let stop = result.is_err();
        if let Ok(event) = &result {
            tracing::debug!(?event, "mqtt event");
        }
        if tx.send(result).await.is_err() || stop {
            return;
        }
    }
}

fn request_failed(what: &str, err: &rumqttc::ClientError) -> Failure {
    Failure::new(
        Status::Closed,
        format!("cannot send {what}: the connection has ended ({err})"),
    )
}

/// Explains why a connection failed or ended, with what to try.
pub fn classify_connection(err: &ConnectionError, endpoint: &Endpoint) -> Failure {
    let addr = endpoint.addr();
    match err {
        ConnectionError::ConnectionRefused(code) => {
            let (number, words, hint) = connack_words(*code);
            Failure::new(
                Status::Refused,
                format!("the broker refused the connection: CONNACK {number} ({words}): {hint}"),
            )
        }
        ConnectionError::Tls(rumqttc::TlsError::TLS(tls_err)) => tls::classify_tls(
            tls_err,
            &endpoint.host,
            endpoint.port,
            endpoint.switch,
            None,
        ),
        // I/O errors come wrapped in several layers (state, codec, TLS).
        _ if io_source(err).is_some() => match io_source(err) {
            Some(io) => classify_io(io, endpoint),
            None => closed(endpoint, "the connection failed"),
        },
        ConnectionError::Tls(other) => Failure::new(
            Status::Handshake,
            format!("TLS with {addr} failed: {other}"),
        ),
        ConnectionError::MqttState(rumqttc::StateError::ConnectionAborted) => {
            closed(endpoint, "the broker closed the connection")
        }
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => Failure::new(
            Status::Timeout,
            format!(
                "{addr} did not answer within {}: raise --timeout, or check the broker is up",
                humantime::format_duration(endpoint.timeout)
            ),
        ),
        ConnectionError::NotConnAck(packet) => Failure::new(
            Status::Closed,
            format!(
                "{addr} answered CONNECT with {} instead of CONNACK: is it an MQTT 3.1.1 broker?",
                packet_name(packet)
            ),
        ),
        // A broker that does not speak what we sent (TLS to a plain port,
        // plain to a TLS port) may answer with bytes that are not MQTT.
        other => closed(endpoint, &format!("the connection failed ({other})")),
    }
}

/// A packet's type as the specification writes it (`PUBACK`), for messages;
/// issue 12: the whole packet's debug text (`PubAck(PubAck { pkid: 21584 })`)
/// was printed, which names rumqttc's fields rather than what arrived.
fn packet_name(packet: &rumqttc::Packet) -> String {
    // rumqttc's packets have no Display; their Debug text starts with the
    // variant's name, which is the packet type in CamelCase.
    let debug = format!("{packet:?}");
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
}

/// The first I/O error in `err`'s source chain.
fn io_source(err: &ConnectionError) -> Option<&std::io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

fn classify_io(io: &std::io::Error, endpoint: &Endpoint) -> Failure {
    use std::io::ErrorKind::*;
    let addr = endpoint.addr();
    if endpoint.tls.is_some()
        && io
            .get_ref()
            .is_some_and(|e| e.downcast_ref::<rustls::Error>().is_some())
    {
        return tls::classify_io(io, &endpoint.host, endpoint.port, endpoint.switch, None);
    }
    match io.kind() {
        ConnectionRefused => Failure::new(
            Status::Connect,
            format!(
                "connection to {addr} refused: nothing listens there; check --host and --port (MQTT is usually 1883, TLS 8883)"
            ),
        ),
        HostUnreachable | NetworkUnreachable | AddrNotAvailable => Failure::new(
            Status::Connect,
            format!("{addr} is unreachable ({io}): check --host and the network"),
        ),
        TimedOut => Failure::new(
            Status::Connect,
            format!(
                "connecting to {addr} timed out: the host is down or a firewall drops the packets"
            ),
        ),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => closed(
            endpoint,
            &format!("the broker closed the connection ({io})"),
        ),
        _ => Failure::new(Status::Connect, format!("cannot connect to {addr}: {io}")),
    }
}

fn closed(endpoint: &Endpoint, what: &str) -> Failure {
    let hint = if endpoint.tls.is_some() {
        "check the broker's log (a client certificate may be required: --cert and --key)".to_owned()
    } else {
        format!(
            "if this is a TLS port {}; otherwise check the broker's log",
            endpoint.switch.add()
        )
    };
    Failure::new(
        Status::Closed,
        format!("{what} at {}: {hint}", endpoint.addr()),
    )
}

/// CONNACK return code: number, words, and what to try [MQTT-3.2.2-4]..
pub fn connack_words(code: ConnectReturnCode) -> (u8, &'static str, &'static str) {
    match code {
        ConnectReturnCode::Success => (0, "connection accepted", "nothing to fix"),
        ConnectReturnCode::RefusedProtocolVersion => (
            1,
            "unacceptable protocol version",
            "the broker does not speak MQTT 3.1.1",
        ),
        ConnectReturnCode::BadClientId => (
            2,
            "identifier rejected",
            "try another --client-id (1 to 23 letters and digits is always allowed)",
        ),
        ConnectReturnCode::ServiceUnavailable => (
            3,
            "server unavailable",
            "the broker is up but not accepting clients; check its log",
        ),
        ConnectReturnCode::BadUserNamePassword => (
            4,
            "bad user name or password",
            "check --username and --password",
        ),
        ConnectReturnCode::NotAuthorized => (
            5,
            "not authorized",
            "the broker needs credentials or denies this client: pass --username and --password, or a client certificate",
        ),
    }
}
