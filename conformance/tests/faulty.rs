//! The harness must catch broken brokers. Each test puts the proxy engine
//! of `toolkit proxy` (`conformance::proxy`, its own faults or a packet
//! rewrite) between the harness and the reference broker, so that together
//! they break one rule (drops
//! PUBACKs, clears RETAIN, strips the will, lies about Session Present, sets
//! DUP on first deliveries, swallows malformed packets instead of closing,
//! never enforces keep-alive) and checks that the scenarios guarding that
//! rule fail, while a control scenario the fault does not touch still
//! passes. One proxy does nothing wrong by the spec — it lowers SUBACK grants,
//! as a broker may — and checks those scenarios become not applicable, while
//! deliveries above the (lowered) grant still fail. Two proxies add
//! deliveries: a QoS 2 message twice as new, which fails its scenario under
//! [MQTT-3.3.1-1] alone, and a PUBLISH on another scenario's topic, which is
//! set aside and fails nothing.

#![allow(clippy::unwrap_used)]

mod common;
mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;

use conformance::engine::{DUPLICATE_STATEMENT, STRAY_STATEMENT};
use conformance::outcome::{ScenarioResult, Verdict};
use conformance::proxy::spec::{self, RuleFlag};
use conformance::proxy::{Direction, Faults, Proxy, ProxyConfig, Rewrite, Segments};
use in_process::Reference;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{Packet, PacketType, Publish, QoS, SubAckReturnCode, decode_slice};
use testsupport::ReferenceOptions;

/// What a fault does to one whole packet: `None` drops it.
type Fault = Arc<dyn Fn(Vec<u8>) -> Option<Vec<u8>> + Send + Sync>;

fn kind(packet: &[u8]) -> Option<PacketType> {
    PacketType::from_nibble(packet.first()? >> 4)
}

/// Starts the proxy engine (`conformance::proxy`, the one behind `toolkit
/// proxy`) in front of `upstream`: packets from the broker pass through
/// `to_client` and packets from the client through `to_broker`, then
/// `faults` apply; `segments` says how the client's reads are taken.
async fn proxy(
    upstream: SocketAddr,
    to_client: Fault,
    to_broker: Fault,
    faults: Faults,
    segments: Segments,
) -> Proxy {
    let rewrite: Rewrite = Arc::new(move |direction, packet| {
        let fault = match direction {
            Direction::ToClient => &to_client,
            Direction::ToBroker => &to_broker,
        };
        fault(packet).into_iter().collect()
    });
    let mut config = ProxyConfig::plain("127.0.0.1", upstream.port(), faults);
    config.rewrite = Some(rewrite);
    config.segments = segments;
    Proxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .unwrap()
}

fn pass() -> Fault {
    Arc::new(Some)
}

/// Passes every packet on, changing those of type `t` with `change`.
fn rewrite(t: PacketType, change: impl Fn(&mut Vec<u8>) + Send + Sync + 'static) -> Fault {
    Arc::new(move |mut p| {
        if kind(&p) == Some(t) {
            change(&mut p);
        }
        Some(p)
    })
}

/// (name, passed, why it failed) per scenario.
fn summary(results: &[ScenarioResult]) -> Vec<(String, bool, String)> {
    results
        .iter()
        .map(|r| {
            let why = match &r.verdict {
                Verdict::Fail { failure } => format!(
                    "{}: expected {}; observed {}",
                    failure.step, failure.expected, failure.observed
                ),
                other => format!("{other:?}"),
            };
            (r.name.clone(), r.passed(), why)
        })
        .collect()
}

/// Runs the named scenarios through a proxy with the given rewrites and
/// returns (name, passed, why) per scenario.
fn run_through(to_client: Fault, to_broker: Fault, names: &[&str]) -> Vec<(String, bool, String)> {
    summary(&results_through_proxy(to_client, to_broker, names))
}

/// Runs the named scenarios through a proxy with the given rewrites.
fn results_through_proxy(
    to_client: Fault,
    to_broker: Fault,
    names: &[&str],
) -> Vec<ScenarioResult> {
    results_through(
        to_client,
        to_broker,
        Faults::default(),
        Segments::Stream,
        names,
    )
}

/// Runs the named scenarios through a proxy, with the given rewrites,
/// faults and reading of segments, in front of the reference broker.
fn results_through(
    to_client: Fault,
    to_broker: Fault,
    faults: Faults,
    segments: Segments,
    names: &[&str],
) -> Vec<ScenarioResult> {
    let broker = Reference::start(ReferenceOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(proxy(broker.addr(), to_client, to_broker, faults, segments));
    common::run_named(&rt, proxy.local_addr().port(), names, 8)
}

/// Runs the `must_fail` scenarios and the `must_pass` controls with `run`
/// and checks that each fails or passes as listed.
fn assert_outcomes(
    must_fail: &[&str],
    must_pass: &[&str],
    run: impl FnOnce(&[&str]) -> Vec<(String, bool, String)>,
) {
    let names: Vec<&str> = must_fail.iter().chain(must_pass).copied().collect();
    for (name, passed, why) in run(&names) {
        if must_fail.contains(&name.as_str()) {
            assert!(
                !passed,
                "{name} passed although the proxy breaks the rule it checks"
            );
        }
        if must_pass.contains(&name.as_str()) {
            assert!(passed, "control scenario {name} failed: {why}");
        }
    }
}

#[test]
fn dropped_pubacks_are_caught() {
    // The proxy's own fault, as `toolkit proxy --drop puback:to-client`.
    let drop_puback = Faults {
        rules: vec![spec::rule_flag(RuleFlag::Drop, "puback:to-client").unwrap()],
        ..Faults::default()
    };
    let fail = [
        "qos.qos1-delivery",
        "qos.puback-order",
        "qos.qos1-id-reuse-is-new-message",
        "retained.delivered-on-subscribe",
    ];
    let pass_ = ["qos.qos0-delivery", "qos.qos2-delivery"];
    assert_outcomes(&fail, &pass_, |names| {
        summary(&results_through(
            pass(),
            pass(),
            drop_puback,
            Segments::Stream,
            names,
        ))
    });
}

#[test]
fn cleared_retain_bit_is_caught() {
    let clear_retain = rewrite(PacketType::Publish, |p| p[0] &= !0x01);
    let fail = [
        "retained.delivered-on-subscribe",
        "retained.wildcard-subscribe",
        "will.retained",
        "retained.resubscribe-resends",
        "retained.cleared-by-empty-payload",
    ];
    let pass_ = [
        "retained.live-forward-clears-flag",
        "retained.non-retained-not-stored",
    ];
    assert_outcomes(&fail, &pass_, |names| {
        run_through(clear_retain, pass(), names)
    });
}

#[test]
fn stripped_will_is_caught() {
    // Rewrites every CONNECT without its will, as a broker that never
    // stores wills would behave.
    let strip_will: Fault = Arc::new(|p| {
        if let Ok(Some((Packet::Connect(mut c), _))) = decode_slice(&p) {
            c.will = None;
            return Some(Packet::Connect(c).to_bytes().unwrap().to_vec());
        }
        Some(p)
    });
    let fail = [
        "will.on-drop",
        "will.qos2",
        "will.on-protocol-violation",
        "will.on-bad-disconnect",
        "connect.all-payload-fields",
    ];
    let pass_ = ["will.not-after-disconnect", "will.none-without-flag"];
    assert_outcomes(&fail, &pass_, |names| {
        run_through(pass(), strip_will, names)
    });
}

#[test]
fn wrong_session_present_is_caught() {
    let no_session = rewrite(PacketType::ConnAck, |p| {
        if p.len() == 4 {
            p[2] = 0;
        }
    });
    let fail = [
        "session.present-flag",
        "session.subscriptions-kept",
        "session.qos1-queued-offline",
    ];
    let pass_ = ["connect.accepted", "session.clean-discards"];
    assert_outcomes(&fail, &pass_, |names| {
        run_through(no_session, pass(), names)
    });
}

#[test]
fn qos2_delivered_twice_as_new_fails_once_under_the_duplicate_statement() {
    // Each first QoS 2 delivery reaches the client twice, the copy as new
    // (DUP 0) under the same packet id, before the client acknowledged it.
    let twice: Fault = Arc::new(|p| {
        let first_qos2 =
            kind(&p) == Some(PacketType::Publish) && (p[0] >> 1) & 3 == 2 && p[0] & 0x08 == 0;
        Some(if first_qos2 {
            [p.clone(), p].concat()
        } else {
            p
        })
    });
    let results = results_through_proxy(twice, pass(), &["qos.qos2-delivery", "qos.qos1-delivery"]);
    let qos2 = results
        .iter()
        .find(|r| r.name == "qos.qos2-delivery")
        .unwrap();
    let Verdict::Fail { failure } = &qos2.verdict else {
        panic!("the duplicate was not caught: {:?}", qos2.verdict);
    };
    assert_eq!(failure.statements, [DUPLICATE_STATEMENT], "{failure:?}");
    let strays: Vec<(&str, bool)> = qos2
        .strays
        .iter()
        .map(|s| (s.statement.as_str(), s.own))
        .collect();
    assert_eq!(
        strays,
        [(DUPLICATE_STATEMENT, true)],
        "reported once, as the scenario's own"
    );
    let qos1 = results
        .iter()
        .find(|r| r.name == "qos.qos1-delivery")
        .unwrap();
    assert!(
        qos1.passed() && qos1.strays.is_empty(),
        "{:?}",
        qos1.verdict
    );
}

#[test]
fn a_stray_on_another_scenarios_topic_is_set_aside_and_fails_nothing() {
    // Before every SUBACK, a PUBLISH on a topic no scenario subscribes to:
    // it would be the first arrival the scenario's next `expect` looks at.
    let topic = b"mqc/elsewhere/x";
    let mut stray = vec![0x30, (2 + topic.len() + 5) as u8, 0x00, topic.len() as u8];
    stray.extend_from_slice(topic);
    stray.extend_from_slice(b"stray");
    let inject: Fault = Arc::new(move |p| {
        Some(if kind(&p) == Some(PacketType::SubAck) {
            [stray.clone(), p].concat()
        } else {
            p
        })
    });
    let names = [
        "qos.qos0-delivery",
        "qos.qos1-delivery",
        "subscribe.multiple-filters-each-active",
    ];
    for r in results_through_proxy(inject, pass(), &names) {
        assert!(r.passed(), "{} failed: {:?}", r.name, r.verdict);
        let strays: Vec<(&str, bool)> = r
            .strays
            .iter()
            .map(|s| (s.statement.as_str(), s.own))
            .collect();
        assert!(
            !strays.is_empty() && strays.iter().all(|s| *s == (STRAY_STATEMENT, false)),
            "{}: {strays:?}",
            r.name
        );
        assert!(
            r.transcript
                .iter()
                .any(|l| l.text.starts_with("stray delivery [MQTT-3.3.2-3]")),
            "{}: the transcript does not note the stray",
            r.name
        );
    }
}

#[test]
fn dup_on_first_delivery_is_caught() {
    let set_dup = rewrite(PacketType::Publish, |p| {
        if (p[0] >> 1) & 3 > 0 {
            p[0] |= 0x08;
        }
    });
    // session.qos1-redelivered-with-dup checks DUP 0 on the first delivery
    // before it checks DUP 1 on the redelivery, so it fails too.
    let fail = [
        "qos.qos1-delivery",
        "qos.qos2-delivery",
        "qos.dup-not-copied",
        "session.qos1-redelivered-with-dup",
    ];
    let pass_ = ["qos.qos0-delivery", "qos.downgrade-1-to-0"];
    assert_outcomes(&fail, &pass_, |names| run_through(set_dup, pass(), names));
}

#[test]
fn swallowed_malformed_packets_are_caught() {
    // A broker that silently ignores packets it cannot decode instead of
    // closing the connection [MQTT-4.8.0-1].
    let swallow: Fault = Arc::new(|p| decode_slice(&p).is_ok().then_some(p));
    let fail = [
        "malformed.subscribe-flags",
        "malformed.publish-qos3",
        "malformed.publish-topic-plus",
        "connect.reserved-flag",
        "malformed.subscribe-no-filters",
        // Issue 13's edges: U+0000 in filters and over-long strings.
        "malformed.subscribe-filter-null",
        "malformed.unsubscribe-filter-null",
        "malformed.connect-client-id-overlong",
        "malformed.connect-will-topic-overlong",
        "malformed.connect-will-message-overlong",
        "malformed.connect-username-overlong",
        "malformed.connect-password-overlong",
        "malformed.publish-topic-overlong",
        "malformed.subscribe-filter-overlong",
        "malformed.unsubscribe-filter-overlong",
    ];
    let pass_ = ["qos.qos1-delivery", "connect.accepted"];
    assert_outcomes(&fail, &pass_, |names| run_through(pass(), swallow, names));
}

/// The topic filters of a SUBSCRIBE (with their QoS bytes) or UNSUBSCRIBE
/// with every 0x00 byte inside them replaced by `_`, the packet's length
/// unchanged.
fn without_nul_in_filters(mut p: Vec<u8>) -> Vec<u8> {
    let qos_bytes = usize::from(kind(&p) == Some(PacketType::Subscribe));
    // Past the fixed header (type byte and Remaining Length) and packet id.
    let Some(rl_len) = p.iter().skip(1).take(4).position(|b| b & 0x80 == 0) else {
        return p;
    };
    let mut at = 1 + rl_len + 1 + 2;
    while at + 2 <= p.len() {
        let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
        let end = (at + 2 + len).min(p.len());
        for b in &mut p[at + 2..end] {
            if *b == 0 {
                *b = b'_';
            }
        }
        at = end + qos_bytes;
    }
    p
}

#[test]
fn accepted_nul_in_filters_is_caught() {
    // A broker that takes U+0000 in a filter as any other character: the
    // proxy hands the broker the filter with '_' in its place, so it grants
    // and acknowledges instead of closing [MQTT-1.5.3-2].
    let accept_nul: Fault = Arc::new(|p| match kind(&p) {
        Some(PacketType::Subscribe | PacketType::Unsubscribe) => Some(without_nul_in_filters(p)),
        _ => Some(p),
    });
    let fail = [
        "malformed.subscribe-filter-null",
        "malformed.unsubscribe-filter-null",
    ];
    let pass_ = [
        "malformed.subscribe-filter-invalid-utf8",
        "unsubscribe.stops-delivery",
    ];
    assert_outcomes(&fail, &pass_, |names| {
        run_through(pass(), accept_nul, names)
    });
}

/// `s` without a leading U+FEFF.
fn without_leading_bom(s: &str) -> &str {
    s.strip_prefix('\u{feff}').unwrap_or(s)
}

#[test]
fn stripped_leading_bom_is_caught() {
    // A broker that "cleans" a byte-order mark off the start of the topic
    // names and filters it receives [MQTT-1.5.3-3].
    let strip_bom: Fault = Arc::new(|p| match decode_slice(&p) {
        Ok(Some((Packet::Publish(publish), _))) => {
            let (delivery, dup) = (publish.delivery(), publish.dup);
            let mut message = publish.into_message();
            message.topic = TopicName::new(without_leading_bom(message.topic.as_str())).unwrap();
            let publish = Publish::new(delivery, message).with_dup(dup);
            Some(Packet::Publish(publish).to_bytes().unwrap().to_vec())
        }
        Ok(Some((Packet::Subscribe(mut subscribe), _))) => {
            for f in &mut subscribe.filters {
                f.filter = TopicFilter::new(without_leading_bom(f.filter.as_str())).unwrap();
            }
            Some(Packet::Subscribe(subscribe).to_bytes().unwrap().to_vec())
        }
        _ => Some(p),
    });
    let fail = ["topics.bom-leading-topic-name", "topics.bom-leading-filter"];
    // A BOM inside a topic is left alone, so the older scenario passes.
    let pass_ = ["topics.bom-kept", "qos.qos0-delivery"];
    assert_outcomes(&fail, &pass_, |names| run_through(pass(), strip_bom, names));
}

#[test]
fn truncated_long_client_ids_are_caught() {
    // A broker that keeps only the first 23 bytes of a client id (the
    // length every server must accept) instead of refusing longer ones.
    let truncate: Fault = Arc::new(|p| {
        if let Ok(Some((Packet::Connect(mut c), _))) = decode_slice(&p)
            && c.client_id.len() > 23
        {
            c.client_id.truncate(23);
            return Some(Packet::Connect(c).to_bytes().unwrap().to_vec());
        }
        Some(p)
    });
    let fail = ["connect.client-id-65535-bytes"];
    let pass_ = ["connect.client-id-23-characters", "session.present-flag"];
    assert_outcomes(&fail, &pass_, |names| run_through(pass(), truncate, names));
}

#[test]
fn unenforced_keep_alive_is_caught() {
    // The proxy hands the broker every CONNECT with keep-alive 0 (off), so
    // to the harness the broker never enforces the keep-alive it asked for.
    let keep_alive_off: Fault = Arc::new(|p| {
        if let Ok(Some((Packet::Connect(mut c), _))) = decode_slice(&p) {
            c.keep_alive = 0;
            return Some(Packet::Connect(c).to_bytes().unwrap().to_vec());
        }
        Some(p)
    });
    let fail = ["will.on-keepalive-timeout", "keepalive.timeout-closes"];
    let pass_ = ["qos.qos0-delivery", "will.on-drop"];
    assert_outcomes(&fail, &pass_, |names| {
        run_through(pass(), keep_alive_off, names)
    });
}

#[test]
fn lowered_grants_are_not_applicable_but_deliveries_above_the_grant_fail() {
    // Tells the client every grant is one lower than the broker's (2 -> 1,
    // 1 -> 0), which a broker may do [MQTT-3.8.4-6]; the broker still
    // delivers at its real grant, so to the harness the broker delivers
    // above what it granted.
    let lower_grants: Fault = Arc::new(|p| {
        if let Ok(Some((Packet::SubAck(mut s), _))) = decode_slice(&p) {
            for code in &mut s.return_codes {
                if let SubAckReturnCode::Granted(q) = *code {
                    *code = SubAckReturnCode::Granted(match q {
                        QoS::ExactlyOnce => QoS::AtLeastOnce,
                        _ => QoS::AtMostOnce,
                    });
                }
            }
            return Some(Packet::SubAck(s).to_bytes().unwrap().to_vec());
        }
        Some(p)
    });
    let not_applicable = [
        "qos.qos2-delivery",
        "qos.qos1-delivery",
        "subscribe.suback-codes-in-order",
        "session.qos2-queued-offline",
    ];
    let fail = ["qos.downgrade-2-to-1", "qos.delivered-at-granted-qos"];
    let pass_ = ["qos.qos0-delivery", "qos.downgrade-1-to-0"];
    let names: Vec<&str> = not_applicable
        .iter()
        .chain(&fail)
        .chain(&pass_)
        .copied()
        .collect();
    for r in results_through_proxy(lower_grants, pass(), &names) {
        let name = r.name.as_str();
        if not_applicable.contains(&name) {
            let Verdict::NotApplicable { reason } = &r.verdict else {
                panic!("{name} should be not applicable, got {:?}", r.verdict);
            };
            assert!(
                reason.contains("broker granted QoS"),
                "{name}: reason {reason:?} does not name the grant"
            );
        } else if fail.contains(&name) {
            let Verdict::Fail { failure } = &r.verdict else {
                panic!(
                    "{name} should fail (delivery above the grant), got {:?}",
                    r.verdict
                );
            };
            assert!(
                failure.observed.contains("qos is"),
                "{name} failed for another reason: {failure:?}"
            );
        } else {
            assert!(r.passed(), "control scenario {name}: {:?}", r.verdict);
        }
    }
}

/// The names and pass/fail of scenarios run through a proxy that frames
/// the client's bytes as `framing` says.
fn run_with_framing(segments: Segments, names: &[&str]) -> Vec<(String, bool, String)> {
    summary(&results_through(
        pass(),
        pass(),
        Faults::default(),
        segments,
        names,
    ))
}

#[test]
fn one_packet_per_read_is_caught() {
    // A broker that takes only the first packet of each segment loses what
    // clients pipeline behind it; a packet split over many reads still
    // arrives whole, and packets sent one write each are untouched.
    let fail = [
        "framing.connect-subscribe-one-write",
        "framing.connect-publish-qos1-one-write",
        "framing.publishes-qos0-one-write",
        "framing.publishes-qos1-one-write",
        "framing.publishes-mixed-qos-one-write",
        "framing.connect-then-malformed-one-write",
        "framing.connect-twice-one-write",
        "framing.publish-then-disconnect-one-write",
    ];
    let pass_ = [
        "framing.publish-split-bytes",
        "framing.connect-split-bytes",
        "qos.qos1-delivery",
    ];
    assert_outcomes(&fail, &pass_, |names| {
        run_with_framing(Segments::FirstPacketPerRead, names)
    });
}

#[test]
fn packets_split_over_reads_being_lost_is_caught() {
    // A broker that expects each packet in one segment never sees a packet
    // written a byte at a time; pipelined whole packets are untouched.
    let fail = ["framing.publish-split-bytes", "framing.connect-split-bytes"];
    let pass_ = [
        "framing.connect-subscribe-one-write",
        "framing.publishes-qos1-one-write",
        "qos.qos1-delivery",
    ];
    assert_outcomes(&fail, &pass_, |names| {
        run_with_framing(Segments::DropPartial, names)
    });
}
