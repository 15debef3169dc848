//! State kept across a real restart of the broker with `--data-dir`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use mqtt_codec::{Packet, QoS};
use testsupport::ReferenceOptions;

fn with_data_dir(dir: &std::path::Path) -> ReferenceOptions {
    ReferenceOptions {
        data_dir: Some(dir.to_owned()),
        ..ReferenceOptions::default()
    }
}

#[tokio::test]
async fn sessions_queued_messages_and_retained_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut b = start_with(with_data_dir(dir.path()));
        let (mut sub, _) = RawClient::connect(b.addr(), connect_packet("durable", false)).await;
        sub.subscribe(&[("d/#", QoS::ExactlyOnce)], 1).await;
        sub.send(&Packet::Disconnect).await;
        assert_eq!(sub.try_recv().await, None);

        let mut publisher = RawClient::connected(b.addr(), "p").await;
        publish_acked(&mut publisher, "d/1", 1, "while away").await;
        publisher
            .send(&publish("r", QoS::AtMostOnce, None, "retained", true))
            .await;
        publisher.send(&Packet::PingReq).await;
        assert_eq!(publisher.recv().await, Packet::PingResp);
        let status = b.terminate(WAIT).expect("exits");
        assert!(status.success(), "{status}\n{}", b.log());
        assert!(b.log().contains("state saved"), "{}", b.log());
    }
    let b = start_with(with_data_dir(dir.path()));
    assert!(b.log().contains("sessions=1"), "{}", b.log());
    let (mut sub, ack) = RawClient::connect(b.addr(), connect_packet("durable", false)).await;
    assert!(ack.session_present, "the session came back from disk");
    let p = sub.recv_publish().await;
    assert_eq!(
        (p.topic().as_str(), &p.payload()[..], p.qos()),
        ("d/1", &b"while away"[..], QoS::AtLeastOnce)
    );
    sub.send(&Packet::PubAck(p.packet_id().unwrap())).await;

    let mut other = subscribed(b.addr(), "o", &[("r", QoS::AtMostOnce)]).await;
    let r = other.recv_publish().await;
    assert!(r.retain());
    assert_eq!(&r.payload()[..], b"retained");
}
