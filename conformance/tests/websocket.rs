//! The harness over WebSocket (issue 16, item 3): the built-in suite over
//! `ws://` and `wss://` against a real mosquitto 2.0 behind a real
//! WebSocket server (Debian's mosquitto has no WebSocket listener, so
//! `testsupport::WebSocketGateway` forwards to its TCP port), judged
//! against mosquitto's baseline as over TCP; raw writes reaching the
//! server as exactly their bytes, one binary frame per write; and the
//! handshake failures a user gets as one line.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use conformance::client::{ConnectError, Connection, Event, Transport};
use conformance::outcome::Verdict;
use conformance::suite::Suite;
use conformance::target::{Carrier, Target, WebSocketTarget};
use futures_util::StreamExt;
use testsupport::{GatewayOptions, Mosquitto, MosquittoOptions, WebSocketGateway};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// A server configuration for the gateway's `wss://` from the test's TLS
/// files.
fn server_config(files: &common::TlsFiles) -> Arc<rustls::ServerConfig> {
    let certs = credentials::tls::load_certs(&files.cert, "server certificate").unwrap();
    let key = credentials::tls::load_key(&files.key, "server key").unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(credentials::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// Every scenario that ran over TCP runs over the WebSocket too: only the
/// auth, client-certificate and restart scenarios may be skipped, as in
/// `mosquitto.rs`, and the suite's core areas passed.
fn assert_ran_over_websocket(report: &conformance::suite::RunReport) {
    for r in &report.results {
        if let Verdict::Skipped { reason } = &r.verdict {
            assert!(
                r.tags.contains(&"auth".to_owned())
                    || reason.contains("--cert")
                    || reason.contains("--tls-port")
                    || r.area == "restart",
                "{} was skipped: {reason}",
                r.name
            );
        }
    }
    let passed = |area: &str| {
        report
            .results
            .iter()
            .filter(|r| r.area == area && r.passed())
            .count()
    };
    assert!(
        passed("connect") > 5 && passed("qos") > 3 && passed("malformed") > 3,
        "too few passed"
    );
    assert!(
        report.broker_target.websocket.is_some(),
        "the report does not name the WebSocket URL"
    );
}

#[test]
fn builtin_suite_over_ws_matches_mosquitto_baseline() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let gateway = WebSocketGateway::start(m.addr(), GatewayOptions::default());
    let mut target = Target::plain("127.0.0.1", gateway.port());
    target.carrier = Carrier::WebSocket(WebSocketTarget::plain("/mqtt"));
    let suite = Suite::builtin().unwrap();
    let baseline = common::mosquitto_baseline(&suite);
    let report = common::run(&suite, &target);
    common::assert_matches_baseline(&report, &baseline, &m);
    assert_ran_over_websocket(&report);
}

#[test]
fn builtin_suite_over_wss_matches_mosquitto_baseline() {
    // wss:// on the main port, with the same TLS client set-up as the TLS
    // listener (mosquitto's own, on --tls-port), so the TLS scenarios run
    // too.
    let dir = tempfile::tempdir().unwrap();
    let (m, mut target) = common::mosquitto_with_tls(dir.path());
    let files = common::tls_files_in(dir.path());
    let gateway = WebSocketGateway::start(
        m.addr(),
        GatewayOptions {
            tls: Some(server_config(&files)),
            ..GatewayOptions::default()
        },
    );
    target.port = gateway.port();
    let tls = target.tls.as_ref().unwrap();
    target.carrier = Carrier::WebSocket(WebSocketTarget::secure("/mqtt", tls));
    let suite = Suite::builtin().unwrap();
    let baseline = common::mosquitto_baseline(&suite);
    let report = common::run(&suite, &target);
    common::assert_matches_baseline(&report, &baseline, &m);
    assert_ran_over_websocket(&report);
    assert!(
        report
            .broker_target
            .websocket
            .as_deref()
            .is_some_and(|url| url.starts_with("wss://")),
    );
}

/// A target on the gateway of `m` with `options`, reached at `path`.
fn gateway_target(
    m: &Mosquitto,
    options: GatewayOptions,
    path: &str,
) -> (WebSocketGateway, Target) {
    let gateway = WebSocketGateway::start(m.addr(), options);
    let mut target = Target::plain("127.0.0.1", gateway.port());
    target.carrier = Carrier::WebSocket(WebSocketTarget::plain(path));
    target.connect_timeout = Duration::from_secs(10);
    (gateway, target)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_wrong_path_is_one_line_naming_the_http_status() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let (_gateway, target) = gateway_target(&m, GatewayOptions::default(), "/ws");
    let err = runtime()
        .block_on(Connection::open(
            &target,
            Transport::Plain,
            Instant::now(),
            tracing::Span::none(),
        ))
        .unwrap_err();
    assert!(matches!(err, ConnectError::WebSocket(_)), "{err}");
    let line = err.to_string();
    assert!(
        line.contains("HTTP 404") && line.contains("--ws-path") && !line.contains('\n'),
        "{line}"
    );
}

#[test]
fn a_server_selecting_no_subprotocol_is_refused_naming_mqtt() {
    let m = Mosquitto::start(MosquittoOptions::default());
    let options = GatewayOptions {
        select_mqtt: false,
        ..GatewayOptions::default()
    };
    let (_gateway, target) = gateway_target(&m, options, "/mqtt");
    let err = runtime()
        .block_on(Connection::open(
            &target,
            Transport::Plain,
            Instant::now(),
            tracing::Span::none(),
        ))
        .unwrap_err();
    let line = err.to_string();
    assert!(
        line.contains("selected no subprotocol") && line.contains("MQTT-6.0.0-4"),
        "{line}"
    );
}

#[test]
#[allow(
    clippy::result_large_err,
    reason = "tungstenite's handshake callback returns its own ErrorResponse"
)]
fn each_write_is_one_binary_frame_holding_exactly_its_bytes() {
    // A bare WebSocket server that records the frames it receives and
    // answers with one frame holding a CONNACK split in the middle of
    // another frame, so both directions are checked: writes are never
    // merged nor cut, and reading does not assume frames align with
    // packets [MQTT-6.0.0-2].
    let rt = runtime();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let offers_mqtt = std::sync::Mutex::new(false);
            let check = |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                         mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                let offered = req
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .is_some_and(|v| v == "mqtt");
                *offers_mqtt.lock().unwrap() = offered;
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
                Ok(resp)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, check)
                .await
                .unwrap();
            let mut frames = Vec::new();
            for _ in 0..3 {
                match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                    Ok(Some(Ok(m))) => frames.push(m),
                    other => panic!("expected a frame, got {other:?}"),
                }
            }
            // CONNACK (20 02 00 00) then a PINGRESP (d0 00), cut as
            // [20 02 00] [00 d0 00].
            use futures_util::SinkExt;
            ws.send(Message::Binary(vec![0x20, 0x02, 0x00].into()))
                .await
                .unwrap();
            ws.send(Message::Binary(vec![0x00, 0xd0, 0x00].into()))
                .await
                .unwrap();
            ws.close(None).await.unwrap();
            let offered = *offers_mqtt.lock().unwrap();
            (frames, offered)
        });
        let mut target = Target::plain("127.0.0.1", port);
        target.carrier = Carrier::WebSocket(WebSocketTarget::plain("/mqtt"));
        let epoch = Instant::now();
        let mut conn = Connection::open(&target, Transport::Plain, epoch, tracing::Span::none())
            .await
            .unwrap();
        let writes: [&[u8]; 3] = [
            &[0x10, 0x0c, 0x00],
            &[0x04],
            b"MQTT\x04\x02\x00\x3c\x00\x00",
        ];
        for w in writes {
            conn.write(w).await.unwrap();
        }
        let (frames, offered) = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert!(offered, "the client did not offer the subprotocol mqtt");
        let got: Vec<Vec<u8>> = frames
            .into_iter()
            .map(|m| match m {
                Message::Binary(b) => b.to_vec(),
                other => panic!("not a binary frame: {other:?}"),
            })
            .collect();
        let want: Vec<Vec<u8>> = writes.iter().map(|w| w.to_vec()).collect();
        assert_eq!(got, want);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut kinds = Vec::new();
        while let Some(arrival) = conn.next(deadline).await {
            match arrival.event {
                Event::Packet { bytes, .. } => kinds.push(bytes.to_vec()),
                Event::Closed { .. } => {
                    kinds.push(b"closed".to_vec());
                    break;
                }
                Event::Garbage { error, .. } => panic!("garbage: {error}"),
            }
        }
        assert_eq!(
            kinds,
            vec![
                vec![0x20, 0x02, 0x00, 0x00],
                vec![0xd0, 0x00],
                b"closed".to_vec()
            ]
        );
    });
}
