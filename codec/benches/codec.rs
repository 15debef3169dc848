//! Codec throughput: decoding 64-byte-payload PUBLISHes (packets/s and MB/s),
//! decoding a mixed stream of every packet type, and encoding.
//!
//! Each decode benchmark works on a buffer of many packets back to back, as a
//! socket delivers them, so the figures include the framing loop. Run with
//! `cargo bench -p broker --bench codec`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    ConnAck, Connect, ConnectReturnCode, Message, Packet, PacketId, Publish, QoS, SubAck,
    SubAckReturnCode, Subscribe, SubscribeFilter, Unsubscribe, decode_packet,
};

/// Packets per iteration: enough that per-iteration overhead vanishes.
const BATCH: usize = 1_000;

/// The largest packet the decoder accepts in these runs: a broker's
/// realistic limit, not the protocol's 256 MB.
const MAX_PACKET: usize = 1 << 20;

fn id(v: u16) -> PacketId {
    PacketId::new(v).unwrap_or_else(|| panic!("bench packet id {v} is zero"))
}

fn topic(s: &str) -> TopicName {
    TopicName::new(s).unwrap_or_else(|e| panic!("bench topic {s:?}: {e}"))
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap_or_else(|e| panic!("bench filter {s:?}: {e}"))
}

/// A PUBLISH with a 64-byte payload on a typical sensor topic.
fn publish_64(qos: QoS, n: u16) -> Packet {
    let payload = Bytes::from(vec![0x5a; 64]);
    let topic = topic("site/building-7/floor-3/room-12/temperature");
    Packet::Publish(match qos {
        QoS::AtMostOnce => Publish::at_most_once(topic, payload),
        _ => Publish::at_qos(topic, qos, id(n), payload),
    })
}

/// One of each kind a broker sees, weighted like traffic: mostly PUBLISH and
/// acknowledgements, some control packets.
fn mixed_packets() -> Vec<Packet> {
    let sub = Packet::Subscribe(Subscribe {
        packet_id: id(1),
        filters: vec![
            SubscribeFilter {
                filter: filter("site/+/floor-3/#"),
                qos: QoS::AtLeastOnce,
            },
            SubscribeFilter {
                filter: filter("$SYS/broker/#"),
                qos: QoS::AtMostOnce,
            },
        ],
    });
    let connect = Packet::Connect(Connect {
        client_id: "bench-client-0001".into(),
        keep_alive: 30,
        clean_session: false,
        will: Some(Message {
            topic: topic("clients/bench-client-0001/status"),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("bench".into()),
        password: Some(Bytes::from_static(b"secret")),
        ..Connect::default()
    });
    let mut one_round = vec![
        connect,
        Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        }),
        sub,
        Packet::SubAck(SubAck {
            packet_id: id(1),
            return_codes: vec![
                SubAckReturnCode::Granted(QoS::AtLeastOnce),
                SubAckReturnCode::Granted(QoS::AtMostOnce),
            ],
        }),
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(2),
            filters: vec![filter("site/+/floor-3/#")],
        }),
        Packet::UnsubAck(id(2)),
        Packet::PingReq,
        Packet::PingResp,
    ];
    for n in 0..8u16 {
        one_round.push(publish_64(QoS::AtMostOnce, n + 1));
        one_round.push(publish_64(QoS::AtLeastOnce, n + 1));
        one_round.push(Packet::PubAck(id(n + 1)));
        one_round.push(publish_64(QoS::ExactlyOnce, n + 100));
        one_round.push(Packet::PubRec(id(n + 100)));
        one_round.push(Packet::PubRel(id(n + 100)));
        one_round.push(Packet::PubComp(id(n + 100)));
    }
    one_round.push(Packet::Disconnect);
    one_round.iter().cycle().take(BATCH).cloned().collect()
}

fn encode_all(packets: &[Packet]) -> Bytes {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(&mut out)
            .unwrap_or_else(|e| panic!("bench packet {p:?}: {e}"));
    }
    out.freeze()
}

/// Decodes every packet of `stream`; the count proves none was skipped.
fn decode_stream(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while let Some(p) = decode_packet(buf, MAX_PACKET).unwrap_or_else(|e| panic!("{e}")) {
        black_box(&p);
        n += 1;
    }
    n
}

fn bench_decode_publish(c: &mut Criterion) {
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let packets: Vec<Packet> = (1..=BATCH as u16).map(|n| publish_64(qos, n)).collect();
        let stream = encode_all(&packets);
        let packet_len = stream.len() / BATCH;
        // Two groups over the same work: criterion reports one throughput
        // unit per group, and we want both packets/s and MB/s.
        for (unit, throughput) in [
            ("packets", Throughput::Elements(BATCH as u64)),
            ("bytes", Throughput::Bytes(stream.len() as u64)),
        ] {
            let mut group = c.benchmark_group(format!("decode_publish_64B_qos{qos}_{unit}"));
            group.throughput(throughput);
            group.bench_function(format!("{BATCH}x{packet_len}B"), |b| {
                b.iter_batched_ref(
                    || BytesMut::from(&stream[..]),
                    |buf| assert_eq!(decode_stream(buf), BATCH),
                    BatchSize::SmallInput,
                )
            });
            group.finish();
        }
    }
}

fn bench_decode_mixed(c: &mut Criterion) {
    let packets = mixed_packets();
    let stream = encode_all(&packets);
    for (unit, throughput) in [
        ("packets", Throughput::Elements(BATCH as u64)),
        ("bytes", Throughput::Bytes(stream.len() as u64)),
    ] {
        let mut group = c.benchmark_group(format!("decode_mixed_{unit}"));
        group.throughput(throughput);
        group.bench_function(format!("{BATCH}_packets_{}B", stream.len()), |b| {
            b.iter_batched_ref(
                || BytesMut::from(&stream[..]),
                |buf| assert_eq!(decode_stream(buf), BATCH),
                BatchSize::SmallInput,
            )
        });
        // The same with the stream arriving in 1460-byte TCP segments, as a
        // connection's read loop feeds it.
        group.bench_function(format!("{BATCH}_packets_segments"), |b| {
            let segments: Vec<Bytes> = stream.chunks(1460).map(Bytes::copy_from_slice).collect();
            b.iter(|| {
                let mut buf = BytesMut::with_capacity(8 * 1024);
                let mut n = 0;
                for seg in &segments {
                    buf.extend_from_slice(seg);
                    while let Some(p) =
                        decode_packet(&mut buf, MAX_PACKET).unwrap_or_else(|e| panic!("{e}"))
                    {
                        black_box(&p);
                        n += 1;
                    }
                }
                assert_eq!(n, BATCH);
            })
        });
        group.finish();
    }
}

fn bench_encode(c: &mut Criterion) {
    let publishes: Vec<Packet> = (1..=BATCH as u16)
        .map(|n| publish_64(QoS::AtLeastOnce, n))
        .collect();
    let mixed = mixed_packets();
    for (name, packets) in [("publish_64B_qos1", &publishes), ("mixed", &mixed)] {
        let bytes = encode_all(packets).len();
        for (unit, throughput) in [
            ("packets", Throughput::Elements(BATCH as u64)),
            ("bytes", Throughput::Bytes(bytes as u64)),
        ] {
            let mut group = c.benchmark_group(format!("encode_{name}_{unit}"));
            group.throughput(throughput);
            group.bench_function(format!("{BATCH}_packets_{bytes}B"), |b| {
                let mut out = BytesMut::with_capacity(bytes);
                b.iter(|| {
                    out.clear();
                    for p in packets.iter() {
                        p.encode(&mut out).unwrap_or_else(|e| panic!("{e}"));
                    }
                    assert_eq!(out.len(), bytes);
                    black_box(&out);
                })
            });
            group.finish();
        }
    }
}

criterion_group!(
    benches,
    bench_decode_publish,
    bench_decode_mixed,
    bench_encode
);
criterion_main!(benches);
