//! 10,000 sockets that connect and never send CONNECT (issue 14): the
//! broker holds them in bounded memory while they sit, and closes every
//! one once the connect timeout has passed.
//!
//! Why the binary and its resident memory, not the in-process broker and a
//! heap count: this process may hold 20,000 descriptors (the CI's hard
//! limit), and 10,000 client sockets plus the broker's 10,000 do not fit
//! in one process beside the runtime's own. The heap bytes of one such
//! socket are counted exactly, in process, on fewer sockets by
//! `tests/idle_memory.rs`; this test bounds what the 10,000 cost the
//! process as a whole (heap, allocator overhead, and all).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::process::{
    open_descriptors, resident_bytes, wait_for_descriptors_at_least, wait_for_descriptors_at_most,
};
use common::*;

const SOCKETS: u64 = 10_000;
/// Long enough for all the sockets to be opened (about 2 s on an idle
/// machine, 11 s on a loaded one) before the first is timed out, so that
/// the broker holds them all at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Sockets opened at a time, well within the broker's listen backlog.
const BATCH: u64 = 250;

/// Resident memory one silent socket may add to the broker: measured
/// 2,211 to 2,218 bytes (1,673 of heap counted by `tests/idle_memory.rs`,
/// plus the allocator's overhead), where it was 4,938 before issue 14's
/// work.
const MAX_RESIDENT_PER_SOCKET: u64 = 3 * 1024;

#[test]
fn ten_thousand_sockets_without_connect_are_held_cheaply_then_closed() {
    // Room for the clients here and, inherited, for the broker's side.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= SOCKETS + 1_000,
        "this test needs {} open descriptors, the hard limit allows {limit}",
        SOCKETS + 1_000
    );
    let b = start(&["--connect-timeout", &CONNECT_TIMEOUT.as_secs().to_string()]);
    // Warm up: the first connection sets up what later ones reuse.
    drop(RawClient::connected(b.addr(), "warm-up"));
    let idle_descriptors = open_descriptors(&b);
    let before = resident_bytes(&b);

    let t0 = std::time::Instant::now();
    // In batches, each waited for: connecting faster than the broker
    // accepts would overflow its listen backlog, and a dropped SYN costs
    // its client a second.
    let mut clients: Vec<TcpStream> = Vec::new();
    while (clients.len() as u64) < SOCKETS {
        let batch = BATCH.min(SOCKETS - clients.len() as u64);
        for _ in 0..batch {
            clients.push(TcpStream::connect_timeout(&b.addr(), WAIT).unwrap());
        }
        wait_for_descriptors_at_least(&b, idle_descriptors + clients.len() as u64, CONNECT_TIMEOUT);
    }
    eprintln!("{SOCKETS} sockets opened in {:?}", t0.elapsed());
    let per_socket = resident_bytes(&b).saturating_sub(before) / SOCKETS;
    eprintln!("resident memory per socket without CONNECT: {per_socket} bytes");
    assert!(
        per_socket <= MAX_RESIDENT_PER_SOCKET,
        "each silent socket costs the broker {per_socket} bytes of resident memory (at most {MAX_RESIDENT_PER_SOCKET})"
    );

    // Past the connect timeout each is closed, without a byte sent.
    for (i, mut c) in clients.into_iter().enumerate() {
        c.set_read_timeout(Some(CONNECT_TIMEOUT + WAIT)).unwrap();
        let mut buf = [0u8; 8];
        match c.read(&mut buf) {
            Ok(0) => {}
            other => {
                panic!("socket {i}: expected a close after the connect timeout, got {other:?}")
            }
        }
    }
    wait_for_descriptors_at_most(&b, idle_descriptors, WAIT);
    assert!(b.log().contains("no CONNECT in time, closing"));
}
