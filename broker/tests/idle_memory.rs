//! What an idle connection costs the broker in heap memory, counted by a
//! global allocator rather than timed (issue 6: memory per idle connection
//! within 2× of mosquitto's 0.7 KiB).
//!
//! The broker runs in this process on its own runtime thread; the clients
//! are blocking `std` sockets, which allocate nothing, so every byte that
//! stays allocated while they sit idle is the broker's: the connection's
//! task, its socket registration, its router slot and client id. Heap
//! bytes, not RSS: allocator overhead comes on top (`just bench` measures
//! the release broker's RSS).

use std::alloc::System;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cap::Cap;
use common::in_process::InProcessBroker;

mod common;

/// Counts the bytes allocated and not yet freed, process-wide.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The heap bytes one idle connection may hold: measured 1,136 here (a
/// 640-byte task, a 256-byte socket registration, a 144-byte router slot,
/// the client id and its share of the router's map), where main before
/// issue 6's work held about 3,000. Connection state that grows past this
/// should be allocated only when used.
const MAX_BYTES_PER_IDLE_CONNECTION: usize = 1_300;

const CLIENTS: usize = 300;

/// CONNECT with clean session, keep-alive 60 s and client id `idle-NNNN`.
fn connect_packet(i: usize) -> Vec<u8> {
    let id = format!("idle-{i:04}");
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

/// Opens a client and waits for its CONNACK (accepted).
fn open(addr: SocketAddr, i: usize) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.write_all(&connect_packet(i)).expect("send CONNECT");
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("read CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
    s
}

#[test]
fn an_idle_connection_holds_little_heap() {
    let broker = InProcessBroker::start(&[]);
    let addr = broker.addr();

    // Warm up: the first connection sets up thread-locals and spare buffers
    // that later ones reuse.
    drop(open(addr, 9_999));
    let mut warm: Vec<TcpStream> = (0..20).map(|i| open(addr, 5_000 + i)).collect();
    let before = ALLOCATOR.allocated();
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|i| open(addr, i)).collect();
    let after = ALLOCATOR.allocated();
    let per_connection = after.saturating_sub(before) / CLIENTS;
    eprintln!("heap per idle connection: {per_connection} bytes");
    assert!(
        per_connection <= MAX_BYTES_PER_IDLE_CONNECTION,
        "an idle connection holds {per_connection} bytes of heap (at most {MAX_BYTES_PER_IDLE_CONNECTION})"
    );

    drop(clients);
    warm.clear();
    drop(broker);
}
