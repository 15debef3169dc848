//! A client announcing a packet of 256 MB (remaining length 268,435,455,
//! the protocol's largest) before CONNECT, or past `--max-packet-size`, is
//! refused from its fixed header, before the broker buffers any of it; a
//! connected client sending part of one (the default limit allows it, as
//! mosquitto's does) makes the broker hold what arrived, not reserve what
//! was announced (issue 14).
//!
//! The broker runs in this process so that a global allocator counts its
//! heap bytes; the clients are blocking `std` sockets, which allocate
//! nothing, so what stays allocated is the broker's.

#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::System;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cap::Cap;
use common::WAIT;
use common::blocking_client::{BlockingClient, open};
use common::in_process::{InProcessBroker, log};

/// Counts the bytes allocated and not yet freed, process-wide.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The protocol's largest remaining length, 268,435,455, as its four
/// variable-length bytes [MQTT-2.2.3].
const LARGEST_REMAINING_LENGTH: [u8; 4] = [0xFF, 0xFF, 0xFF, 0x7F];

/// What the broker may hold for a refused or trickling client beyond the
/// bytes it was sent: its connection's task, socket registration and a
/// read buffer that doubles as it fills. Far below the 256 MB announced.
const SLACK: usize = 256 * 1024;

/// The heap is counted process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sends the first bytes of a packet announcing 256 MB: the fixed header
/// with `first_byte` and the largest remaining length, then 1 KiB of body.
fn announce_256_mb(s: &mut TcpStream, first_byte: u8) {
    let mut bytes = vec![first_byte];
    bytes.extend_from_slice(&LARGEST_REMAINING_LENGTH);
    bytes.extend_from_slice(&[0u8; 1024]);
    s.write_all(&bytes).unwrap();
}

/// Asserts that the broker closes `s` (end of stream or a reset, since
/// bytes it never read were left in its socket) without sending anything;
/// a broker still waiting for the rest of the packet fails on the read
/// timeout.
fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) => {}
        Ok(n) => panic!("{what}: expected a close, got {:?}", &buf[..n]),
        Err(e) => panic!("{what}: expected a close within {WAIT:?}, got {e}"),
    }
}

/// Waits (at most `timeout`) until `line` is in the broker's log.
fn wait_for_log(line: &str) -> String {
    let log = log();
    let deadline = Instant::now() + WAIT;
    loop {
        let text = log.text();
        if text.contains(line) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {line:?} in the log:\n{text}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_first_packet_announcing_256_mb_is_refused_from_its_fixed_header() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    log();
    // The connect timeout is long, so that only the refusal can close it.
    let b = InProcessBroker::start(&["--connect-timeout", "600"]);
    drop(BlockingClient::connect(b.addr(), "warm-up", true).into_stream());

    let before = ALLOCATOR.allocated();
    let mut c = open(b.addr());
    announce_256_mb(&mut c, 0x10);
    assert_closed(&mut c, "a CONNECT announcing 256 MB");
    let grown = ALLOCATOR.allocated().saturating_sub(before);
    assert!(grown <= SLACK, "the broker's heap grew by {grown} bytes");
    wait_for_log("exceeds the maximum packet size of 327702 bytes");
}

#[test]
fn a_first_packet_that_is_not_connect_is_refused_from_its_first_byte() {
    // 100,000 bytes announced: under the first-packet limit, but a PUBLISH
    // cannot come first [MQTT-3.1.0-1], so none of it is waited for.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    log();
    let b = InProcessBroker::start(&["--connect-timeout", "600"]);
    let mut c = open(b.addr());
    let mut bytes = vec![0x30, 0xA0, 0x8D, 0x06];
    bytes.extend_from_slice(&[0u8; 1024]);
    c.write_all(&bytes).unwrap();
    assert_closed(&mut c, "a PUBLISH before CONNECT");
    wait_for_log("first packet is not CONNECT, closing [MQTT-3.1.0-1] packet=PUBLISH");
}

#[test]
fn a_packet_over_max_packet_size_is_refused_from_its_fixed_header() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    log();
    let b = InProcessBroker::start(&["--max-packet-size", "1048576"]);
    let mut c = BlockingClient::connect(b.addr(), "over-max", true).into_stream();
    let before = ALLOCATOR.allocated();
    announce_256_mb(&mut c, 0x30);
    assert_closed(&mut c, "a PUBLISH announcing 256 MB");
    let grown = ALLOCATOR.allocated().saturating_sub(before);
    assert!(grown <= SLACK, "the broker's heap grew by {grown} bytes");
    wait_for_log("exceeds the maximum packet size of 1048576 bytes");
}

#[test]
fn a_large_packet_is_buffered_as_it_arrives_not_reserved_up_front() {
    // The default --max-packet-size is the protocol's limit, as
    // mosquitto's: a connected client may send a 256 MB packet, and the
    // broker's memory grows with the bytes that arrive.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = InProcessBroker::start(&[]);
    let mut c = BlockingClient::connect(b.addr(), "trickle", true).into_stream();
    let stats = std::sync::Arc::clone(b.router().stats());
    let received = || stats.bytes_received.get();
    let before = ALLOCATOR.allocated();
    let start = received();
    announce_256_mb(&mut c, 0x30);
    const SENT: usize = 512 * 1024;
    let chunk = [0u8; 4096];
    for _ in 0..SENT / chunk.len() {
        c.write_all(&chunk).unwrap();
    }
    let sent = (SENT + 1024 + 5) as u64;
    let deadline = Instant::now() + WAIT;
    while received() - start < sent {
        assert!(
            Instant::now() < deadline,
            "the broker read {} of {sent} bytes",
            received() - start
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let grown = ALLOCATOR.allocated().saturating_sub(before);
    eprintln!("heap held for {sent} bytes of a 256 MB packet: {grown} bytes");
    assert!(
        grown <= 2 * SENT + SLACK,
        "the broker's heap grew by {grown} bytes for {sent} bytes received"
    );
    // Still connected, still waiting for the rest.
    c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(c.read(&mut buf), Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the connection stays open"
    );
}

#[test]
fn the_largest_connect_the_protocol_allows_is_accepted() {
    // The first-packet limit is the largest CONNECT there can be; one with
    // every field at its longest (65,535 bytes each) still gets in.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = InProcessBroker::start(&[]);
    let field = |byte: u8| {
        let mut f = u16::MAX.to_be_bytes().to_vec();
        f.extend(std::iter::repeat_n(byte, usize::from(u16::MAX)));
        f
    };
    // MQTT 3.1.1; user name, password, will (QoS 0), clean session.
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC6, 0, 0];
    for byte in [b'c', b'w', b'm', b'u', b'p'] {
        body.extend(field(byte));
    }
    assert_eq!(body.len(), 10 + 5 * 65_537);
    let mut packet = vec![0x10];
    let mut len = body.len();
    while len > 0 {
        let digit = u8::try_from(len % 128).unwrap();
        len /= 128;
        packet.push(if len > 0 { digit | 0x80 } else { digit });
    }
    packet.extend(body);
    let mut c = open(b.addr());
    c.write_all(&packet).unwrap();
    let mut connack = [0u8; 4];
    c.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
}
