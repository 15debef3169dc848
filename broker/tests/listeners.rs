//! Listeners (issue 16): several per broker from `[[listener]]` sections or
//! flags, IPv6 and host names, and MQTT over WebSocket (plain and TLS):
//! packets split over frames and packed into one, ping, close, bad
//! upgrades, the subprotocol, counters.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use broker::config::{Config, FileSettings, Flags, ListenerTransport};
use broker::router::Router;
use broker::server::Broker;
use common::blocking_client::subscribe_packet;
use common::ws_client::{WsClient, raw_exchange};
use common::*;
use credentials::tls;
use mqtt_codec::{ConnectReturnCode, Packet, QoS};
use tokio_util::sync::CancellationToken;
use tungstenite::Message;

/// A broker running in this process until dropped.
struct Running {
    listeners: Vec<(ListenerTransport, SocketAddr)>,
    router: Arc<Router>,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    async fn start(config: Config) -> Self {
        let broker = Broker::bind(config).await.expect("binds");
        let listeners = broker.listeners();
        let router = Arc::clone(broker.router());
        let shutdown = CancellationToken::new();
        tokio::spawn(broker.run(shutdown.clone()));
        Self {
            listeners,
            router,
            shutdown,
        }
    }

    fn first(&self, transport: ListenerTransport) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("a {transport} listener in {:?}", self.listeners))
    }
}

fn from_toml(text: &str, data_dir: &Path) -> Config {
    let file = FileSettings::parse(text, Path::new("test.toml")).unwrap();
    let flags = Flags {
        data_dir: Some(data_dir.to_owned()),
        sys_interval: Some(0),
        ..Flags::default()
    };
    Config::resolve(flags, file).unwrap()
}

fn from_flags(args: &[&str]) -> Config {
    Config::from_args(std::iter::once("broker").chain(args.iter().copied())).unwrap()
}

fn client_tls(data_dir: &Path) -> Arc<rustls::ClientConfig> {
    let roots = tls::load_roots(&data_dir.join("tls").join("ca.pem"), "CA").unwrap();
    Arc::new(tls::client_config(tls::ServerVerification::Roots(roots), None).unwrap())
}

/// Runs a blocking WebSocket client off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A WebSocket client connected as `client_id`.
fn ws_connected(addr: SocketAddr, path: &str, client_id: &str) -> WsClient {
    let mut c = WsClient::open(addr, path, "mqtt");
    c.send(&Packet::Connect(connect_packet(client_id, true)));
    match c.recv() {
        Packet::ConnAck(a) => assert_eq!(a.code, ConnectReturnCode::Accepted),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    c
}

/// A broker from a config with three listeners on 127.0.0.1: mqtt,
/// mqtt+tls, and websockets on path `/mqtt`.
async fn three_listeners(data_dir: &Path) -> Running {
    Running::start(from_toml(
        r#"
        [[listener]]
        port = 0
        bind = "127.0.0.1"

        [[listener]]
        port = 0
        bind = "127.0.0.1"
        transport = "mqtt+tls"

        [[listener]]
        port = 0
        bind = "127.0.0.1"
        transport = "websockets"
        ws-path = "/mqtt"
        "#,
        data_dir,
    ))
    .await
}

/// Issue 16's "done when": a config with three listeners (mqtt, mqtt+tls,
/// websockets) serves all three, each to a real client.
#[tokio::test]
async fn three_listeners_from_the_config_file_serve_a_client_each() {
    let data = tempfile::tempdir().unwrap();
    let b = three_listeners(data.path()).await;
    let kinds: Vec<ListenerTransport> = b.listeners.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        kinds,
        [
            ListenerTransport::Mqtt,
            ListenerTransport::MqttTls,
            ListenerTransport::WebSockets
        ]
    );
    let mut plain = subscribed(
        b.first(ListenerTransport::Mqtt),
        "plain",
        &[("l/#", QoS::AtLeastOnce)],
    )
    .await;

    let mut over_tls = RawClient::open_tls(
        b.first(ListenerTransport::MqttTls),
        client_tls(data.path()),
        "localhost",
    )
    .await;
    over_tls.handshake(connect_packet("tls", true)).await;
    over_tls
        .send(&publish("l/tls", QoS::AtMostOnce, None, "from tls", false))
        .await;
    assert_eq!(
        &plain.recv_publish().await.message().payload[..],
        b"from tls"
    );

    let ws_addr = b.first(ListenerTransport::WebSockets);
    let mut ws = blocking(move || {
        let mut ws = ws_connected(ws_addr, "/mqtt", "ws");
        ws.send(&publish("l/ws", QoS::AtMostOnce, None, "from ws", false));
        ws
    })
    .await;
    assert_eq!(
        &plain.recv_publish().await.message().payload[..],
        b"from ws"
    );

    // And the WebSocket client receives: subscribed, it gets what the plain
    // client publishes.
    let subscribe = subscribe_packet(&[("back/ws", QoS::AtMostOnce)], 1);
    ws = blocking(move || {
        ws.send(&subscribe);
        assert!(matches!(ws.recv(), Packet::SubAck(_)));
        ws
    })
    .await;
    plain
        .send(&publish("back/ws", QoS::AtMostOnce, None, "to ws", false))
        .await;
    blocking(move || match ws.recv() {
        Packet::Publish(p) => assert_eq!(&p.message().payload[..], b"to ws"),
        other => panic!("expected PUBLISH, got {other:?}"),
    })
    .await;
}

/// Issue 15: only plain-TCP clients park. TLS and WebSocket clients that
/// sat idle longer than a plain one keep their tasks (the lot's count
/// holds the plain one alone), and still answer at once.
#[tokio::test]
async fn tls_and_websocket_clients_never_park() {
    let data = tempfile::tempdir().unwrap();
    let b = three_listeners(data.path()).await;
    let mut over_tls = RawClient::open_tls(
        b.first(ListenerTransport::MqttTls),
        client_tls(data.path()),
        "localhost",
    )
    .await;
    over_tls.handshake(connect_packet("tls", true)).await;
    let ws_addr = b.first(ListenerTransport::WebSockets);
    let mut ws = blocking(move || ws_connected(ws_addr, "/mqtt", "ws")).await;
    // Connected after them, the plain client parks after them too, were
    // they to park.
    let mut plain = RawClient::connected(b.first(ListenerTransport::Mqtt), "plain").await;
    let stats = Arc::clone(b.router.stats());
    blocking(move || {
        common::flood::wait_for("the plain client to park", || {
            stats.clients_parked.load(Relaxed) == 1
        });
    })
    .await;
    let stats = b.router.stats();
    assert_eq!(stats.connected_tls.load(Relaxed), 1);
    assert_eq!(stats.connected_ws.load(Relaxed), 1);
    // The one parked was the plain client: woken by its PINGREQ (the lot
    // counts it out before its task answers), it leaves none parked.
    plain.send(&Packet::PingReq).await;
    assert_eq!(plain.recv().await, Packet::PingResp);
    assert_eq!(stats.clients_parked.load(Relaxed), 0, "the plain one alone");
    over_tls.send(&Packet::PingReq).await;
    assert_eq!(over_tls.recv().await, Packet::PingResp);
    blocking(move || {
        ws.send(&Packet::PingReq);
        assert_eq!(ws.recv(), Packet::PingResp);
    })
    .await;
}

/// Issue 16: `mosquitto_pub -h ::1` works against the default listeners
/// (127.0.0.1 and ::1; free ports here).
#[tokio::test]
async fn mosquitto_pub_over_ipv6_reaches_the_default_listeners() {
    let has_ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let b = Running::start(from_flags(&[
        "--port",
        "0",
        "--no-ssl",
        "--sys-interval",
        "0",
    ]))
    .await;
    let v6 = b
        .listeners
        .iter()
        .find(|(_, a)| a.is_ipv6())
        .map(|(_, a)| *a);
    if !has_ipv6 {
        // The machine has no IPv6: the broker skips ::1 (with a note) and
        // still starts.
        assert_eq!(v6, None);
        return;
    }
    let v6 = v6.expect("a ::1 listener by default");
    assert_eq!(v6.ip().to_string(), "::1");
    let mut sub = subscribed(
        b.first(ListenerTransport::Mqtt),
        "sub",
        &[("v6/t", QoS::AtMostOnce)],
    )
    .await;
    let port = v6.port().to_string();
    let out = blocking(move || {
        Command::new("mosquitto_pub")
            .args(["-h", "::1", "-p", &port, "-t", "v6/t", "-m", "over ipv6"])
            .output()
            .expect("mosquitto_pub is installed (scripts/setup)")
    })
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        &sub.recv_publish().await.message().payload[..],
        b"over ipv6"
    );
}

/// `--bind localhost`: the name resolves at start and each address it
/// resolves to listens.
#[tokio::test]
async fn a_host_name_bind_listens_on_each_address_it_resolves_to() {
    let b = Running::start(from_flags(&[
        "--bind",
        "localhost",
        "--port",
        "0",
        "--no-ssl",
        "--sys-interval",
        "0",
    ]))
    .await;
    assert!(!b.listeners.is_empty());
    for (i, (t, addr)) in b.listeners.iter().enumerate() {
        assert_eq!(*t, ListenerTransport::Mqtt);
        assert!(addr.ip().is_loopback(), "{addr}");
        RawClient::connected(*addr, &format!("c{i}")).await;
    }
}

/// One plain and one WebSocket listener on free loopback ports, no `$SYS`.
const WS_FLAGS: &[&str] = &[
    "--bind",
    "127.0.0.1",
    "--port",
    "0",
    "--no-ssl",
    "--ws-port",
    "0",
    "--sys-interval",
    "0",
];

/// A WebSocket listener on flags: `--ws-port`, any path, counted.
async fn ws_broker() -> Running {
    Running::start(from_flags(
        &[WS_FLAGS, &["--connect-timeout", "1"]].concat(),
    ))
    .await
}

/// An MQTT packet split over several frames, and several packets in one
/// frame, decode as one byte stream.
#[tokio::test]
async fn websocket_packets_split_over_frames_and_packed_into_one() {
    let b = ws_broker().await;
    let addr = b.first(ListenerTransport::WebSockets);
    let mut plain = subscribed(
        b.first(ListenerTransport::Mqtt),
        "p",
        &[("f/#", QoS::AtMostOnce)],
    )
    .await;
    blocking(move || {
        let mut c = WsClient::open(addr, "/", "mqtt");
        assert_eq!(c.protocol.as_deref(), Some("mqtt"));
        // CONNECT cut into 1-byte, 2-byte and the remaining frames.
        c.send_cut(&[Packet::Connect(connect_packet("split", true))], &[1, 3]);
        assert!(matches!(c.recv(), Packet::ConnAck(_)));
        // Two PUBLISHes and a SUBSCRIBE in one frame.
        c.send_cut(
            &[
                publish("f/1", QoS::AtMostOnce, None, "one", false),
                publish("f/2", QoS::AtLeastOnce, Some(7), "two", false),
                subscribe_packet(&[("g", QoS::AtMostOnce)], 9),
            ],
            &[],
        );
        assert!(matches!(c.recv(), Packet::PubAck(_)));
        assert!(matches!(c.recv(), Packet::SubAck(_)));
    })
    .await;
    assert_eq!(&plain.recv_publish().await.message().payload[..], b"one");
    assert_eq!(&plain.recv_publish().await.message().payload[..], b"two");
}

/// Pings are answered with pongs; a Close is answered and ends the
/// connection (its will is published: no DISCONNECT came); the clients are
/// counted as WebSocket clients meanwhile.
#[tokio::test]
async fn websocket_ping_close_and_counters() {
    let b = ws_broker().await;
    let addr = b.first(ListenerTransport::WebSockets);
    let stats = Arc::clone(&b.router);
    let mut c = blocking(move || {
        let mut c = ws_connected(addr, "/any/path", "pinger");
        c.send_message(Message::Ping(b"hi".to_vec().into()));
        match c.recv_message().unwrap() {
            Message::Pong(p) => assert_eq!(&p[..], b"hi"),
            other => panic!("expected a pong, got {other:?}"),
        }
        c
    })
    .await;
    assert_eq!(stats.stats().connected_ws.load(Relaxed), 1);
    assert_eq!(stats.stats().connected_plain.load(Relaxed), 0);
    blocking(move || {
        c.send_message(Message::Close(None));
        c.expect_closed();
    })
    .await;
    let gauge = &stats.stats().connected_ws;
    tokio::time::timeout(WAIT, async {
        while gauge.load(Relaxed) != 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the WebSocket client is no longer counted");
}

/// `mqttv3.1` (MQTT 3.1 clients) is accepted too and echoed; a text frame
/// ends the connection.
#[tokio::test]
async fn websocket_old_subprotocol_accepted_and_text_frames_refused() {
    let b = ws_broker().await;
    let addr = b.first(ListenerTransport::WebSockets);
    blocking(move || {
        let mut c = WsClient::open(addr, "/mqtt", "mqttv3.1");
        assert_eq!(c.protocol.as_deref(), Some("mqttv3.1"));
        c.send_message(Message::Text("hello".into()));
        c.expect_closed();
    })
    .await;
}

/// A bad upgrade request gets HTTP 400 and the reason; a path other than
/// `ws-path`, 404; an upgrade that never comes is closed at the connect
/// timeout.
#[tokio::test]
async fn websocket_bad_upgrades_get_an_http_error() {
    let data = tempfile::tempdir().unwrap();
    let mut config = from_toml(
        "[[listener]]\nport = 0\nbind = \"127.0.0.1\"\ntransport = \"websockets\"\nws-path = \"/mqtt\"\n",
        data.path(),
    );
    config.connect_timeout = common::ws_client::UPGRADE_TIMEOUT;
    let b = Running::start(config).await;
    let addr = b.first(ListenerTransport::WebSockets);
    let (no_upgrade, wrong_path, not_http, silent) = blocking(move || {
        (
            raw_exchange(addr, b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n"),
            raw_exchange(
                addr,
                b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            ),
            raw_exchange(addr, &[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60]),
            raw_exchange(addr, b""),
        )
    })
    .await;
    assert!(
        no_upgrade.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{no_upgrade}"
    );
    assert!(
        no_upgrade.contains("not a WebSocket upgrade"),
        "{no_upgrade}"
    );
    assert!(
        wrong_path.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{wrong_path}"
    );
    assert!(wrong_path.contains("/other"), "{wrong_path}");
    assert!(
        not_http.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{not_http}"
    );
    assert_eq!(silent, "", "closed at the connect timeout, nothing sent");
}

/// MQTT over WebSocket over TLS, with the generated certificate.
#[tokio::test]
async fn websocket_over_tls_round_trip() {
    let data = tempfile::tempdir().unwrap();
    let b = Running::start(from_toml(
        "[[listener]]\nport = 0\nbind = \"127.0.0.1\"\n\n[[listener]]\nport = 0\nbind = \"127.0.0.1\"\ntransport = \"websockets+tls\"\n",
        data.path(),
    ))
    .await;
    let addr = b.first(ListenerTransport::WebSocketsTls);
    let mut plain = subscribed(
        b.first(ListenerTransport::Mqtt),
        "p",
        &[("wss/#", QoS::AtMostOnce)],
    )
    .await;
    let config = client_tls(data.path());
    let stats = Arc::clone(&b.router);
    let c = blocking(move || {
        let mut c = WsClient::open_tls(addr, "/mqtt", config);
        c.send(&Packet::Connect(connect_packet("wss", true)));
        assert!(matches!(c.recv(), Packet::ConnAck(_)));
        c.send(&publish(
            "wss/t",
            QoS::AtLeastOnce,
            Some(1),
            "secure",
            false,
        ));
        assert!(matches!(c.recv(), Packet::PubAck(_)));
        c
    })
    .await;
    assert_eq!(&plain.recv_publish().await.message().payload[..], b"secure");
    assert_eq!(stats.stats().connected_wss.load(Relaxed), 1);
    drop(c);
}

/// A WebSocket subscriber that does not read holds the broker to the same
/// bound as any other: its output stops at the socket, its queue stays full
/// and, past `--slow-client-timeout`, it is disconnected as slow while the
/// publisher waits. (Before the fix, each turn's output moved into the
/// framing's unbounded buffer whether the socket took it or not: the queue
/// kept draining, the whole flood was taken in, the client never counted
/// as slow.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_subscriber_that_never_reads_is_held_to_its_queue() {
    never_reading_subscriber(false).await;
}

/// The same over TLS, where a full TLS buffer once read as a closed stream
/// to the framing (rustls takes 0 bytes) and ended the connection with an
/// error instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_tls_subscriber_that_never_reads_is_held_to_its_queue() {
    never_reading_subscriber(true).await;
}

async fn never_reading_subscriber(tls: bool) {
    use common::blocking_client::BlockingClient;
    use common::flood::{Flood, numbered, wait_for};
    const COUNT: usize = 2_000;
    let data = tempfile::tempdir().unwrap();
    let port_flag = if tls { "--wss-port" } else { "--ws-port" };
    let b = Running::start(from_flags(&[
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-ssl",
        port_flag,
        "0",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--sys-interval",
        "0",
        "--max-queued",
        "10",
        "--slow-client-timeout",
        "1",
    ]))
    .await;
    let ws_addr = b
        .listeners
        .iter()
        .find(|(t, _)| t.is_websockets())
        .unwrap()
        .1;
    let plain = b.first(ListenerTransport::Mqtt);
    let stats = Arc::clone(b.router.stats());
    let config = tls.then(|| client_tls(data.path()));
    blocking(move || {
        let mut sub = if let Some(config) = config {
            WsClient::open_tls(ws_addr, "/mqtt", config)
        } else {
            WsClient::open(ws_addr, "/mqtt", "mqtt")
        };
        sub.send(&Packet::Connect(connect_packet("slow-ws", true)));
        assert!(matches!(sub.recv(), Packet::ConnAck(_)));
        sub.send(&subscribe_packet(&[("slow/t", QoS::AtMostOnce)], 1));
        assert!(matches!(sub.recv(), Packet::SubAck(_)));
        let publisher = BlockingClient::connect(plain, "flood", true);
        // 32 MB: far more than the loopback socket buffers hold.
        let packets = numbered("slow/t", QoS::AtMostOnce, COUNT, 16 * 1024);
        let flood = Flood::start(publisher.try_clone(), packets);
        wait_for(
            "the slow WebSocket client to be disconnected, or the flood to end",
            || stats.clients_slow.load(Relaxed) > 0 || flood.is_finished(),
        );
        assert_eq!(
            stats.clients_slow.load(Relaxed),
            1,
            "the subscriber that never reads is disconnected as slow"
        );
        // Rid of it, the publisher goes on.
        flood.finish();
        drop((sub, publisher));
    })
    .await;
}

/// `--bind ::` listens on every interface, IPv4 clients included where the
/// OS makes IPv6 sockets dual-stack (Linux unless `net.ipv6.bindv6only` is
/// set), as mosquitto's does.
#[tokio::test]
async fn bind_to_the_ipv6_wildcard_serves_ipv4_clients_where_the_os_allows() {
    let dual_stack =
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|v| v.trim() == "0");
    if !dual_stack || std::net::TcpListener::bind("[::1]:0").is_err() {
        // No IPv6, or IPv6 sockets take IPv6 only here: nothing to check.
        return;
    }
    let b = Running::start(from_flags(&[
        "--bind",
        "::",
        "--port",
        "0",
        "--no-ssl",
        "--sys-interval",
        "0",
    ]))
    .await;
    let addr = b.first(ListenerTransport::Mqtt);
    assert!(addr.ip().is_unspecified() && addr.is_ipv6(), "{addr}");
    let v4 = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()));
    RawClient::connected(v4, "over-ipv4").await;
    RawClient::connected(v6, "over-ipv6").await;
}

/// Bytes of pings a flooding client offers: more than the loopback socket
/// buffers on both sides can hold (the receive buffer may autotune up to
/// `tcp_rmem`'s 32 MiB), so all of it goes only where the broker reads on.
const PING_FLOOD: usize = 128 * 1024 * 1024;

/// A runtime let go of without waiting for its tasks, even when a test
/// fails: a wedged broker task must not hang the test that found it.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A broker on a runtime of its own, for tests whose clients must see a
/// wedged broker as a failure rather than wedge with it: the clients are
/// `std` sockets with timeouts, on the test's thread. The broker stops
/// before its runtime goes (declaration order: bind it after the runtime).
fn broker_on_own_runtime(args: &[&str]) -> (OwnRuntime, Running) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let b = rt.block_on(Running::start(from_flags(args)));
    (OwnRuntime(Some(rt)), b)
}

/// A client that upgrades to WebSocket and then only sends pings, never
/// reading their pongs nor sending CONNECT, is no longer read once a pong
/// cannot go out, and is closed at the connect timeout; a plain client
/// connects meanwhile. (Before the fix, pings did not count toward a
/// read's limit and each pong queued without bound: the broker read the
/// whole flood, its memory growing with it, long before the timeout.)
#[test]
fn a_ping_flood_before_connect_is_closed_at_the_connect_timeout() {
    let (rt, b) = broker_on_own_runtime(&[WS_FLAGS, &["--connect-timeout", "5"]].concat());
    let ws = b.first(ListenerTransport::WebSockets);
    let plain = b.first(ListenerTransport::Mqtt);
    let flooder = std::thread::spawn(move || {
        let mut tcp = common::ws_client::upgraded_socket(ws);
        let ping = common::ws_client::client_frame(0x9, &[b'p'; 125]);
        common::ws_client::flood(&mut tcp, &ping, PING_FLOOD, WAIT)
    });
    // Meanwhile a plain client is served (its reads time out after WAIT).
    let mut client = common::blocking_client::BlockingClient::connect(plain, "plain", true);
    client.ping();
    let (end, written) = flooder.join().unwrap();
    // Not all of it: the broker stopped reading, and the timeout ended the
    // connection (the flood's writes wait WAIT, longer than the timeout).
    assert_eq!(
        end,
        common::ws_client::FloodEnd::Closed,
        "the flood ends with the connection, after {written} bytes"
    );
    assert!(written < PING_FLOOD);
    drop((client, b, rt));
}

/// A connected WebSocket client that sends pings and never reads its pongs
/// is no longer read once a pong cannot be written: its writes stall with
/// the socket buffers full, the broker holding a pong or two. (Before the
/// fix, the broker read the whole flood, queueing every pong in an
/// unbounded write buffer: 128 MiB of pings, about as much memory.)
#[test]
fn a_ping_flood_that_never_reads_its_pongs_is_no_longer_read() {
    let (rt, b) = broker_on_own_runtime(WS_FLAGS);
    let ws = b.first(ListenerTransport::WebSockets);
    let mut tcp = common::ws_client::upgraded_socket(ws);
    // CONNECT (keep-alive off) in one binary frame, then its CONNACK.
    let mut connect = connect_packet("pinger", true);
    connect.keep_alive = 0;
    let bytes = common::blocking_client::encode(&Packet::Connect(connect));
    tcp.write_all(&common::ws_client::client_frame(0x2, &bytes))
        .unwrap();
    let mut connack = [0u8; 6];
    tcp.read_exact(&mut connack).unwrap();
    assert_eq!(
        connack,
        [0x82, 4, 0x20, 2, 0, 0],
        "a CONNACK in a binary frame"
    );
    let ping = common::ws_client::client_frame(0x9, &[b'p'; 125]);
    // The stall is seen when a write has waited WAIT: a broker that reads
    // on never makes one wait that long.
    let (end, written) = common::ws_client::flood(&mut tcp, &ping, PING_FLOOD, WAIT);
    assert_eq!(
        end,
        common::ws_client::FloodEnd::Stalled,
        "the broker stops reading ({written} bytes written)"
    );
    assert!(written < PING_FLOOD);
    drop((tcp, b, rt));
}

/// One `--connect-timeout` from the accept covers the TLS handshake, the
/// WebSocket upgrade and CONNECT: a client that waits 0.9 of it before each
/// step (each step within the timeout, all of them well past it) is closed
/// unanswered. (Before the fix each step had the whole timeout anew, and
/// the client was let in 2.7 timeouts after its connect.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_timeout_is_one_deadline_for_tls_upgrade_and_connect() {
    let data = tempfile::tempdir().unwrap();
    let b = Running::start(from_flags(&[
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-ssl",
        "--wss-port",
        "0",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--sys-interval",
        "0",
        "--connect-timeout",
        "1",
    ]))
    .await;
    let addr = b.first(ListenerTransport::WebSocketsTls);
    let config = client_tls(data.path());
    let answered = blocking(move || {
        let step = std::time::Duration::from_millis(900);
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        std::thread::sleep(step);
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(config, name).unwrap();
        while tls.is_handshaking() {
            if tls.complete_io(&mut tcp).is_err() {
                return "nothing: closed during the TLS handshake".to_owned();
            }
        }
        std::thread::sleep(step);
        let request = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://localhost:{}/mqtt",
            addr.port()
        ))
        .unwrap();
        let stream = rustls::StreamOwned::new(tls, tcp);
        let Ok((mut ws, _)) = tungstenite::client::client(request, stream) else {
            return "nothing: closed during the upgrade".to_owned();
        };
        std::thread::sleep(step);
        let connect =
            common::blocking_client::encode(&Packet::Connect(connect_packet("slow", true)));
        if ws.send(Message::Binary(connect.freeze())).is_err() {
            return "nothing: closed before CONNECT".to_owned();
        }
        match ws.read() {
            Ok(Message::Binary(b)) => format!("a binary frame of {} bytes", b.len()),
            Ok(other) => format!("nothing: {other}"),
            Err(e) => format!("nothing: {e}"),
        }
    })
    .await;
    assert!(
        answered.starts_with("nothing"),
        "a client past the connect deadline got {answered}"
    );
}
