//! The proxy engine's own faults (what `toolkit proxy`'s flags set up) in
//! front of the reference broker, judged by the harness. Faults a correct
//! broker and client cope with (writes split into single bytes, delay and
//! jitter, a throttled link, a paused broker side) leave scenarios passing;
//! faults that break what a scenario checks (reordered deliveries,
//! duplicated QoS 2 deliveries, cuts) fail it while a control passes; each
//! injected fault is logged with its connection, direction and packet.

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::engine::DUPLICATE_STATEMENT;
use conformance::outcome::{ScenarioResult, Verdict};
use conformance::proxy::spec::{self, RuleFlag};
use conformance::proxy::{Direction, FaultEvent, Faults, Proxy, ProxyConfig};
use in_process::Reference;
use testsupport::ReferenceOptions;

/// The reference broker, a runtime, and a proxy configuration with
/// `faults` in front of the broker whose fault log goes to `events`.
struct Logged {
    _broker: Reference,
    rt: tokio::runtime::Runtime,
    config: ProxyConfig,
    events: Arc<Mutex<Vec<FaultEvent>>>,
}

fn logged(faults: Faults) -> Logged {
    let broker = Reference::start(ReferenceOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut config = ProxyConfig::plain("127.0.0.1", broker.addr().port(), faults);
    let log = Arc::clone(&events);
    config.on_fault = Arc::new(move |e: &FaultEvent| log.lock().unwrap().push(e.clone()));
    Logged {
        _broker: broker,
        rt,
        config,
        events,
    }
}

/// Runs the named scenarios through a proxy with `faults` in front of the
/// reference broker; returns their results and the fault log.
fn run(faults: Faults, names: &[&str]) -> (Vec<ScenarioResult>, Vec<FaultEvent>) {
    let Logged {
        _broker,
        rt,
        config,
        events,
    } = logged(faults);
    let proxy = rt
        .block_on(Proxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), config))
        .unwrap();
    let results = common::run_named(&rt, proxy.local_addr().port(), names, 4);
    drop(proxy);
    let events = events.lock().unwrap().clone();
    (results, events)
}

fn rule(kind: RuleFlag, value: &str) -> Faults {
    Faults {
        rules: vec![spec::rule_flag(kind, value).unwrap()],
        ..Faults::default()
    }
}

fn passed(results: &[ScenarioResult], name: &str) -> bool {
    let r = results.iter().find(|r| r.name == name).unwrap();
    r.passed()
}

#[test]
fn split_delayed_throttled_traffic_still_passes() {
    let faults = Faults {
        split_bytes: true,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(3),
        throttle: spec::rate("20kB/s").ok(),
        ..Faults::default()
    };
    let names = [
        "qos.qos1-delivery",
        "qos.qos2-delivery",
        "qos.order-qos1",
        "framing.publishes-qos1-one-write",
    ];
    let (results, events) = run(faults, &names);
    for r in &results {
        assert!(r.passed(), "{}: {:?}", r.name, r.verdict);
    }
    // One line per connection for the shaping, on both directions.
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e.direction, None);
        assert!(e.packet.is_none());
        assert_eq!(
            e.fault,
            "delay 5ms jitter 3ms; split writes into single bytes; throttle to 20000 bytes/s each way"
        );
    }
}

#[test]
fn a_paused_broker_side_holds_packets_but_loses_none() {
    let faults = rule(RuleFlag::PauseBroker, "publish:to-broker,nth=1,for=300ms");
    let (results, events) = run(faults, &["qos.qos1-delivery", "qos.qos2-delivery"]);
    for r in &results {
        assert!(r.passed(), "{}: {:?}", r.name, r.verdict);
    }
    assert!(
        events.iter().any(|e| e
            .fault
            .starts_with("pause broker side 300ms (rule 1, match 1)")),
        "{events:?}"
    );
}

#[test]
fn reordered_deliveries_fail_the_order_scenario() {
    let faults = Faults {
        reorder: spec::reorder("2:to-client").ok(),
        ..Faults::default()
    };
    // Ten QoS 0 publishes written back to back reach the subscriber in
    // pairs, each pair last first.
    let (results, events) = run(faults, &["qos.order-qos0", "qos.qos0-delivery"]);
    assert!(!passed(&results, "qos.order-qos0"), "{results:?}");
    assert!(passed(&results, "qos.qos0-delivery"), "{results:?}");
    assert!(
        events
            .iter()
            .any(|e| e.fault == "reorder 2 packets, last first"
                && e.direction == Some(Direction::ToClient)
                && e.packet.as_deref().is_some_and(|p| p.contains("PUBLISH"))),
        "{events:?}"
    );
}

#[test]
fn duplicated_qos2_deliveries_fail_under_the_duplicate_statement() {
    let faults = rule(RuleFlag::Duplicate, "publish:to-client");
    let (results, events) = run(faults, &["qos.qos2-delivery", "connect.accepted"]);
    let qos2 = results
        .iter()
        .find(|r| r.name == "qos.qos2-delivery")
        .unwrap();
    let Verdict::Fail { failure } = &qos2.verdict else {
        panic!("the duplicate was not caught: {:?}", qos2.verdict);
    };
    assert_eq!(failure.statements, [DUPLICATE_STATEMENT], "{failure:?}");
    assert!(passed(&results, "connect.accepted"));
    let dup = events
        .iter()
        .find(|e| e.fault == "duplicate (rule 1, match 1)")
        .unwrap();
    assert_eq!(dup.direction, Some(Direction::ToClient));
    assert!(
        dup.packet.as_deref().unwrap().starts_with("PUBLISH("),
        "{dup:?}"
    );
    assert!(
        dup.to_string()
            .contains(" to-client duplicate (rule 1, match 1): PUBLISH(")
    );
}

#[test]
fn a_cut_at_a_packet_fails_the_scenario_and_is_logged() {
    // Only QoS 2 flows carry PUBREC (not the harness's liveness probe).
    let faults = rule(RuleFlag::CutAt, "pubrec:to-client");
    let (results, events) = run(faults, &["qos.qos2-delivery", "qos.qos1-delivery"]);
    let qos2 = results
        .iter()
        .find(|r| r.name == "qos.qos2-delivery")
        .unwrap();
    assert!(
        matches!(qos2.verdict, Verdict::Fail { .. }),
        "{:?}",
        qos2.verdict
    );
    assert!(passed(&results, "qos.qos1-delivery"), "{results:?}");
    let cut = events.iter().find(|e| e.fault.starts_with("cut ")).unwrap();
    assert_eq!(cut.fault, "cut (rule 1, match 1)");
    assert_eq!(cut.direction, Some(Direction::ToClient));
    assert!(
        cut.packet.as_deref().unwrap().starts_with("PUBREC(id="),
        "{cut:?}"
    );
}

/// A proxy with `faults` in front of the reference broker, a raw TCP
/// client through it that sends a CONNECT; returns what the client read
/// before the proxy closed the connection, and the fault log.
fn connect_through(faults: Faults) -> (Vec<u8>, Vec<FaultEvent>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Logged {
        _broker,
        rt,
        config,
        events,
    } = logged(faults);
    let read = rt.block_on(async {
        let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .unwrap();
        let mut tcp = tokio::net::TcpStream::connect(proxy.local_addr())
            .await
            .unwrap();
        let connect = mqtt_codec::Packet::Connect(testsupport::connect_packet("px-cut", true));
        tcp.write_all(&connect.to_bytes().unwrap()).await.unwrap();
        let mut read = Vec::new();
        // Ends when the proxy closes the connection; bounded.
        tokio::time::timeout(testsupport::WAIT, tcp.read_to_end(&mut read))
            .await
            .expect("the proxy closed the connection")
            .unwrap();
        read
    });
    let events = events.lock().unwrap().clone();
    (read, events)
}

#[test]
fn a_cut_after_three_bytes_truncates_the_connect() {
    let faults = Faults {
        cut_after: spec::cut_after("bytes=3").ok(),
        ..Faults::default()
    };
    let (read, events) = connect_through(faults);
    assert!(
        read.is_empty(),
        "no CONNACK for a truncated CONNECT: {read:?}"
    );
    let cut = events
        .iter()
        .find(|e| e.fault == "cut after 3 bytes" && e.packet.is_some())
        .unwrap();
    assert_eq!(cut.direction, Some(Direction::ToBroker));
}

#[test]
fn a_cut_after_two_packets_passes_connect_and_connack_only() {
    let faults = Faults {
        cut_after: spec::cut_after("packets=2").ok(),
        ..Faults::default()
    };
    let (read, events) = connect_through(faults);
    // CONNACK, session not present, accepted.
    assert_eq!(read, [0x20, 0x02, 0x00, 0x00]);
    let cut = events
        .iter()
        .find(|e| e.fault == "cut after 2 packets" && e.packet.is_some())
        .unwrap();
    assert_eq!(cut.direction, Some(Direction::ToClient));
    assert!(
        cut.to_string()
            .contains("conn=1 to-client cut after 2 packets: CONNACK("),
        "{cut}"
    );
}

#[test]
fn a_delay_rule_holds_its_packet_and_the_scenario_still_passes() {
    let mut faults = Faults::default();
    faults.rules.push(
        spec::parse_file(
            std::path::Path::new("delay.toml"),
            "[[rule]]\naction = \"delay\"\npacket = \"suback\"\ndelay = \"200ms\"\n",
        )
        .unwrap()
        .rules
        .remove(0),
    );
    let (results, events) = run(faults, &["qos.qos1-delivery"]);
    assert!(passed(&results, "qos.qos1-delivery"), "{results:?}");
    let delayed = events
        .iter()
        .find(|e| e.fault == "delay 200ms (rule 1, match 1)")
        .unwrap();
    assert_eq!(delayed.direction, Some(Direction::ToClient));
    assert!(delayed.packet.as_deref().unwrap().starts_with("SUBACK("));
}
