//! The accept loop when the broker runs out of file descriptors (issue 14):
//! every new client is closed at once rather than left hanging, the log
//! gets one line per interval rather than one per attempt, `$SYS` counts
//! the refusals, and clients get in again once descriptors are free.
//!
//! The real binary, with its descriptor limit lowered from outside
//! (`prlimit`) to what it holds now plus room for [`IDLE`] clients, so
//! filling it takes a few sockets, not thousands.

#![allow(clippy::unwrap_used)]

mod common;

use common::process::{leave_room_for, open_descriptors, wait_for_descriptors_at_most};
use common::*;
use mqtt_codec::{Packet, QoS};

/// Clients that fill the broker's descriptors.
const IDLE: u64 = 20;
/// Clients that come when there is no descriptor left for them.
const REFUSED: usize = 300;
const REFUSED_TOPIC: &str = "$SYS/broker/clients/refused";

/// Lines of the log about running out of descriptors.
fn descriptor_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("descriptors") || l.contains("accept failed"))
        .collect()
}

#[tokio::test]
async fn out_of_descriptors_new_clients_are_closed_at_once_and_logged_once() {
    let b = start(&["--sys-interval", "1"]);
    let mut watcher = RawClient::connected(b.addr(), "sys-watcher").await;
    watcher
        .subscribe(&[(REFUSED_TOPIC, QoS::AtMostOnce)], 1)
        .await;

    let before = open_descriptors(&b);
    leave_room_for(&b, IDLE);
    let mut idle = Vec::new();
    for i in 0..IDLE {
        idle.push(RawClient::connected(b.addr(), &format!("idle-{i}")).await);
    }

    // No descriptor left: each newcomer is accepted on the spare one and
    // closed, without a CONNACK, rather than left waiting in the backlog.
    for i in 0..REFUSED {
        let mut c = RawClient::open(b.addr())
            .await
            .named(format!("refused-{i}"));
        c.send(&Packet::Connect(connect_packet(
            &format!("refused-{i}"),
            true,
        )))
        .await;
        c.expect_closed().await;
    }
    assert!(
        b.wait_for_log("out of file descriptors", WAIT),
        "{}",
        b.log()
    );
    let log = b.log();
    let lines = descriptor_lines(&log);
    assert!(
        lines.len() <= 2,
        "{REFUSED} refusals took {} log lines:\n{}",
        lines.len(),
        lines.join("\n")
    );

    // `$SYS` counts them (published each second).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let p = watcher.recv_publish().await;
        let value = String::from_utf8_lossy(p.payload()).into_owned();
        if value.parse::<usize>().is_ok_and(|n| n == REFUSED) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{REFUSED_TOPIC} is {value}, expected {REFUSED}"
        );
    }

    // Descriptors free again: clients get in.
    drop(idle);
    wait_for_descriptors_at_most(&b, before, WAIT);
    let mut back = RawClient::connected(b.addr(), "back").await;
    back.send(&Packet::PingReq).await;
    assert_eq!(back.recv().await, Packet::PingResp);
    assert!(
        b.wait_for_log(
            &format!("accepting connections again refused_in_all={REFUSED}"),
            WAIT
        ),
        "{}",
        b.log()
    );
    let log = b.log();
    assert!(descriptor_lines(&log).len() <= 3, "{log}");
}
