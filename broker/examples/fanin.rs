//! A small fan-in load generator: P publishers → 1 subscriber on one broker,
//! counting what arrives. Used to compare this broker with mosquitto before
//! `toolkit bench` exists (issue 6); it speaks raw packets through the codec.
//!
//! `cargo run --release -p broker --example fanin -- HOST:PORT [PUBLISHERS] [MESSAGES_EACH] [QOS] [PAYLOAD_BYTES]`
//!
//! Prints one line: delivered messages per second from the first publish to
//! the last delivery, and how many messages were lost (QoS 0 may drop under
//! overload; QoS 1 must not).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{
    Connect, Packet, PacketId, Publish, QoS, Subscribe, SubscribeFilter, decode_packet,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn connect(addr: SocketAddr, id: &str) -> Result<(TcpStream, BytesMut)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let c = Connect {
        client_id: id.into(),
        clean_session: true,
        keep_alive: 600,
        ..Connect::default()
    };
    s.write_all(&Packet::Connect(c).to_bytes()?).await?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if let Some(p) = decode_packet(&mut buf, usize::MAX)? {
            match p {
                Packet::ConnAck(_) => return Ok((s, buf)),
                other => return Err(format!("expected CONNACK, got {other:?}").into()),
            }
        }
        if s.read_buf(&mut buf).await? == 0 {
            return Err("closed during CONNECT".into());
        }
    }
}

fn id(v: u32) -> PacketId {
    PacketId::new((v % 65_535 + 1) as u16).unwrap_or(PacketId::new(1).expect("1 is non-zero"))
}

async fn publisher(addr: SocketAddr, n: usize, count: u64, qos: QoS, payload: Bytes) -> Result<()> {
    let (mut s, mut buf) = connect(addr, &format!("fanin-pub-{n}")).await?;
    let topic = TopicName::new(format!("bench/{n}"))?;
    const WINDOW: u64 = 200;
    let mut out = BytesMut::new();
    let mut sent = 0u64;
    while sent < count {
        let batch = WINDOW.min(count - sent);
        out.clear();
        for i in 0..batch {
            let seq = sent + i;
            Packet::Publish(Publish {
                dup: false,
                qos,
                retain: false,
                topic: topic.clone(),
                packet_id: (qos != QoS::AtMostOnce).then(|| id(seq as u32)),
                payload: payload.clone(),
            })
            .encode(&mut out)?;
        }
        s.write_all(&out).await?;
        sent += batch;
        if qos != QoS::AtMostOnce {
            let mut acked = 0;
            while acked < batch {
                while let Some(p) = decode_packet(&mut buf, usize::MAX)? {
                    if matches!(p, Packet::PubAck(_)) {
                        acked += 1;
                    }
                }
                if acked < batch && s.read_buf(&mut buf).await? == 0 {
                    return Err("publisher closed".into());
                }
            }
        }
    }
    // Let the broker read everything before the socket closes.
    s.write_all(&Packet::Disconnect.to_bytes()?).await?;
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read(&mut [0u8; 1])).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args
        .get(1)
        .ok_or("usage: fanin HOST:PORT [P] [N] [QOS] [BYTES]")?
        .parse()?;
    let publishers: usize = args.get(2).map_or(Ok(8), |s| s.parse())?;
    let each: u64 = args.get(3).map_or(Ok(200_000), |s| s.parse())?;
    let qos = QoS::from_bits(args.get(4).map_or(Ok(0), |s| s.parse())?).ok_or("QoS 0, 1 or 2")?;
    let size: usize = args.get(5).map_or(Ok(64), |s| s.parse())?;
    let payload = Bytes::from(vec![b'x'; size]);
    let expected = each * publishers as u64;

    let (mut sub, mut buf) = connect(addr, "fanin-sub").await?;
    sub.write_all(
        &Packet::Subscribe(Subscribe {
            packet_id: id(0),
            filters: vec![SubscribeFilter {
                filter: TopicFilter::new("bench/+")?,
                qos,
            }],
        })
        .to_bytes()?,
    )
    .await?;
    loop {
        if let Some(Packet::SubAck(_)) = decode_packet(&mut buf, usize::MAX)? {
            break;
        }
        if sub.read_buf(&mut buf).await? == 0 {
            return Err("subscriber closed".into());
        }
    }

    let start = Instant::now();
    let tasks: Vec<_> = (0..publishers)
        .map(|n| tokio::spawn(publisher(addr, n, each, qos, payload.clone())))
        .collect();
    let mut received = 0u64;
    let mut last = start;
    let mut acks = BytesMut::new();
    let idle = Duration::from_secs(3);
    while received < expected {
        while let Some(p) = decode_packet(&mut buf, usize::MAX)? {
            if let Packet::Publish(p) = p {
                received += 1;
                if let Some(pid) = p.packet_id {
                    Packet::PubAck(pid).encode(&mut acks)?;
                }
            }
        }
        if !acks.is_empty() {
            sub.write_all(&acks).await?;
            acks.clear();
        }
        last = Instant::now();
        if received >= expected {
            break;
        }
        match tokio::time::timeout(idle, sub.read_buf(&mut buf)).await {
            Ok(Ok(0)) => return Err("subscriber closed".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => break, // nothing for a while: the rest was dropped
        }
    }
    for t in tasks {
        t.await??;
    }
    let secs = last.duration_since(start).as_secs_f64().max(1e-9);
    println!(
        "fan-in qos={} publishers={publishers} payload={size}B: delivered {received}/{expected} in {secs:.2}s = {:.0} msg/s, lost {}",
        qos.as_u8(),
        received as f64 / secs,
        expected - received
    );
    Ok(())
}
