//! The harness must catch broken brokers. Each test puts a small proxy
//! between the harness and a real mosquitto that breaks one rule (drops
//! PUBACKs, clears RETAIN, strips the will, lies about Session Present, sets
//! DUP on first deliveries, swallows malformed packets instead of closing,
//! never enforces keep-alive) and checks that the scenarios guarding that
//! rule fail, while a control scenario the fault does not touch still
//! passes. One proxy does nothing wrong by the spec — it lowers SUBACK grants,
//! as a broker may — and checks those scenarios become not applicable, while
//! deliveries above the (lowered) grant still fail.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use conformance::outcome::{ScenarioResult, Verdict};
use conformance::suite::Suite;
use conformance::target::Target;
use mqtt_codec::{Packet, PacketType, QoS, SubAckReturnCode, decode_slice};
use testsupport::{Mosquitto, MosquittoOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a fault does to one whole packet: `None` drops it.
type Fault = Arc<dyn Fn(Vec<u8>) -> Option<Vec<u8>> + Send + Sync>;

/// One direction's writer, shared so a fault can inject whole packets
/// between the ones it forwards.
type Writer = Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>;

fn kind(packet: &[u8]) -> Option<PacketType> {
    PacketType::from_nibble(packet.first()? >> 4)
}

/// The length of the packet at the front of `buf` from its Remaining Length
/// alone (type and flags unchecked, so malformed packets are framed too);
/// `None` until complete, `Some(Err)` for a length longer than four bytes.
fn frame_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let mut value = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        value |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let len = 2 + i + value;
            return (buf.len() >= len).then_some(Ok(len));
        }
    }
    Some(Err(()))
}

/// How a pump treats the boundaries of what it reads: as a broker must (a
/// byte stream), or as a broken broker that assumes one read is one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Packets are framed from the stream, whatever the reads were.
    Stream,
    /// Only the first packet of each read goes on; the rest of the read is
    /// lost (a broker that handles one packet per segment).
    FirstPacketPerRead,
    /// A packet that is not complete at the end of a read is thrown away (a
    /// broker that expects each packet to arrive in one segment).
    DropPartial,
}

/// Copies `from` to `to`, passing each complete packet through `fault`.
/// After bytes that cannot be framed the rest is forwarded untouched.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: Writer,
    fault: Fault,
    framing: Framing,
) {
    let mut buf = BytesMut::with_capacity(4096);
    let mut raw = false;
    loop {
        match from.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut out = BytesMut::new();
        loop {
            if raw {
                out.put(buf.split());
                break;
            }
            match frame_len(&buf) {
                Some(Ok(len)) => {
                    let packet = buf.split_to(len).to_vec();
                    if let Some(p) = fault(packet) {
                        out.put_slice(&p);
                    }
                    if framing == Framing::FirstPacketPerRead {
                        buf.clear();
                        break;
                    }
                }
                None => {
                    if framing == Framing::DropPartial {
                        buf.clear();
                    }
                    break;
                }
                Some(Err(())) => raw = true,
            }
        }
        if to.lock().await.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Starts a proxy to `upstream` that applies `to_client` to packets from the
/// broker and `to_broker` to packets from the client; with `ping_upstream`
/// it also sends the broker a PINGREQ every 400 ms on the client's behalf
/// (starting once the CONNECT has gone through). `framing` applies to what
/// the client sends. Returns its port.
async fn proxy(
    upstream: u16,
    to_client: Fault,
    to_broker: Fault,
    ping_upstream: bool,
    framing: Framing,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (to_client, to_broker) = (to_client.clone(), to_broker.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let sw: Writer = Arc::new(tokio::sync::Mutex::new(sw));
                let cw: Writer = Arc::new(tokio::sync::Mutex::new(cw));
                let pinger = ping_upstream.then(|| {
                    let sw = Arc::clone(&sw);
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                        loop {
                            if sw.lock().await.write_all(&[0xc0, 0x00]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                        }
                    })
                });
                let mut up = tokio::spawn(pump(cr, sw, to_broker, framing));
                let mut down = tokio::spawn(pump(sr, cw, to_client, Framing::Stream));
                // When either side ends, end both, so a dropped client looks
                // dropped to the broker and a closing broker closes the client.
                tokio::select! {
                    _ = &mut up => down.abort(),
                    _ = &mut down => up.abort(),
                }
                if let Some(p) = pinger {
                    p.abort();
                }
            });
        }
    });
    port
}

fn pass() -> Fault {
    Arc::new(Some)
}

/// Drops every packet of type `t`.
fn drop_all(t: PacketType) -> Fault {
    Arc::new(move |p| (kind(&p) != Some(t)).then_some(p))
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

/// Runs the named scenarios through a proxy with the given faults and
/// returns (name, passed) per scenario.
fn run_through(to_client: Fault, to_broker: Fault, names: &[&str]) -> Vec<(String, bool, String)> {
    run_through_proxy(to_client, to_broker, false, names)
}

fn run_through_proxy(
    to_client: Fault,
    to_broker: Fault,
    ping_upstream: bool,
    names: &[&str],
) -> Vec<(String, bool, String)> {
    results_through_proxy(to_client, to_broker, ping_upstream, names)
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

/// Runs the named scenarios through a proxy with the given faults.
fn results_through_proxy(
    to_client: Fault,
    to_broker: Fault,
    ping_upstream: bool,
    names: &[&str],
) -> Vec<ScenarioResult> {
    results_through(to_client, to_broker, ping_upstream, Framing::Stream, names)
}

fn results_through(
    to_client: Fault,
    to_broker: Fault,
    ping_upstream: bool,
    framing: Framing,
    names: &[&str],
) -> Vec<ScenarioResult> {
    let m = Mosquitto::start(MosquittoOptions::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let port = rt.block_on(proxy(
        m.port(),
        to_client,
        to_broker,
        ping_upstream,
        framing,
    ));
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let suite = Suite::builtin().unwrap().filter(&[], &names);
    assert_eq!(
        suite.scenarios.len(),
        names.len(),
        "a scenario name is wrong"
    );
    let target = Target::plain("127.0.0.1", port);
    let report = rt.block_on(conformance::suite::run(
        &suite,
        &target,
        &conformance::suite::RunOptions {
            jobs: 8,
            ..conformance::suite::RunOptions::default()
        },
        |_| {},
    ));
    report.results
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
    let drop_puback = drop_all(PacketType::PubAck);
    let fail = [
        "qos.qos1-delivery",
        "qos.puback-order",
        "qos.qos1-id-reuse-is-new-message",
        "retained.delivered-on-subscribe",
    ];
    let pass_ = ["qos.qos0-delivery", "qos.qos2-delivery"];
    assert_outcomes(&fail, &pass_, |names| {
        run_through(drop_puback, pass(), names)
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
    ];
    let pass_ = ["qos.qos1-delivery", "connect.accepted"];
    assert_outcomes(&fail, &pass_, |names| run_through(pass(), swallow, names));
}

#[test]
fn unenforced_keep_alive_is_caught() {
    // The proxy keeps every connection alive towards mosquitto and hides the
    // PINGRESPs, so to the harness the broker never enforces keep-alive.
    let hide_pingresp = drop_all(PacketType::PingResp);
    let fail = ["will.on-keepalive-timeout", "keepalive.timeout-closes"];
    let pass_ = ["qos.qos0-delivery", "will.on-drop"];
    assert_outcomes(&fail, &pass_, |names| {
        run_through_proxy(hide_pingresp, pass(), true, names)
    });
}

#[test]
fn lowered_grants_are_not_applicable_but_deliveries_above_the_grant_fail() {
    // Tells the client every grant is one lower than mosquitto's (2 -> 1,
    // 1 -> 0), which a broker may do [MQTT-3.8.4-6]; mosquitto still
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
    for r in results_through_proxy(lower_grants, pass(), false, &names) {
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
fn run_with_framing(framing: Framing, names: &[&str]) -> Vec<(String, bool, String)> {
    results_through(pass(), pass(), false, framing, names)
        .iter()
        .map(|r| (r.name.clone(), r.passed(), format!("{:?}", r.verdict)))
        .collect()
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
        run_with_framing(Framing::FirstPacketPerRead, names)
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
        run_with_framing(Framing::DropPartial, names)
    });
}
