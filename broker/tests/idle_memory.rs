//! What an idle connection costs the broker in heap memory, counted by a
//! global allocator rather than timed (issue 6: memory per idle connection
//! within 2× of mosquitto's 0.7 KiB).
//!
//! The broker runs in this process on its own runtime thread; the clients
//! are blocking `std` sockets, which allocate nothing, so every byte that
//! stays allocated while they sit idle is the broker's: the parked client
//! (issue 15: an idle plain connection gives up its task and its tokio
//! socket registration), its router slot and client id. Heap
//! bytes, not RSS: allocator overhead comes on top (`just bench` measures
//! the release broker's RSS).

mod common;

use std::alloc::System;

use cap::Cap;
use common::blocking_client::{BlockingClient, open as open_socket};
use common::in_process::InProcessBroker;

/// Counts the bytes allocated and not yet freed, process-wide.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The heap bytes one idle (parked) connection may hold: measured 556
/// here once it parks (596 while a parked client kept its `Span` handle;
/// the log registry's share of a span is not counted, this test has no
/// log subscriber) (the boxed parked client, its waker in the slot, its
/// places in the lot's table and timer heap, a 208-byte router slot, the
/// client id and its share of the router's map). It was 1,176-1,196
/// before issue 15's parking (a 640-byte task and a 256-byte socket
/// registration on top), 1,216 before issue 15 boxed the slot's copy of a
/// persistent session's subscriptions, about 3,000 before issue 6's work.
/// Connection state that grows past this should be allocated only when
/// used. The broker's RSS per idle connection is higher (allocator
/// overhead; see docs/performance.md, "A million connections").
const MAX_BYTES_PER_IDLE_CONNECTION: usize = 640;

/// The heap bytes one socket that has not sent CONNECT may hold: measured
/// 122 here since such sockets wait in the parking lot without a task (an
/// entry in its table and its timer heap; issue 15), 1,751 before with a
/// task (a 768-byte opening future waiting for CONNECT, a 640-byte task, a
/// 256-byte socket registration), 4,329 before issue 14's work. 10,000 of
/// them must not cost much (see `tests/sockets_without_connect.rs`).
const MAX_BYTES_PER_SOCKET_WITHOUT_CONNECT: usize = 200;

const CLIENTS: usize = 300;

/// The heap is counted process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn an_idle_connection_holds_little_heap() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let broker = InProcessBroker::start(&[]);
    let addr = broker.addr();
    let open = |i: usize| BlockingClient::connect(addr, &format!("idle-{i:04}"), true);

    // Warm up: the first connection sets up thread-locals and spare buffers
    // that later ones reuse.
    drop(open(9_999));
    let mut warm: Vec<BlockingClient> = (0..20).map(|i| open(5_000 + i)).collect();
    broker.wait_parked(20);
    let mut clients = Vec::with_capacity(CLIENTS);
    let before = ALLOCATOR.allocated();
    clients.extend((0..CLIENTS).map(open));
    // Idle connections park within two seconds (`listener/park.rs`).
    broker.wait_parked(20 + CLIENTS as u64);
    let after = ALLOCATOR.allocated();
    let per_connection = after.saturating_sub(before) / CLIENTS;
    eprintln!("heap per idle connection: {per_connection} bytes");
    assert!(
        per_connection <= MAX_BYTES_PER_IDLE_CONNECTION,
        "an idle connection holds {per_connection} bytes of heap (at most {MAX_BYTES_PER_IDLE_CONNECTION})"
    );

    drop(clients);
    warm.clear();
}

#[test]
fn a_socket_without_connect_holds_little_heap() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = InProcessBroker::start(&["--connect-timeout", "600"]);
    let addr = b.addr();
    let open = |i: usize| BlockingClient::connect(addr, &format!("idle-{i:04}"), true);
    drop(open(9_999));
    let warm: Vec<_> = (0..20).map(|_| open_socket(addr)).collect();
    // A connected client after them marks that every socket before it was
    // accepted and its task started: one accept loop takes them in order,
    // and the runtime runs the tasks in the order they were spawned.
    let marker = open(9_998);
    let before = ALLOCATOR.allocated();
    let silent: Vec<_> = (0..CLIENTS).map(|_| open_socket(addr)).collect();
    let marker_after = open(9_997);
    let after = ALLOCATOR.allocated();
    // The second marker (an idle connection) is counted in too: at most
    // MAX_BYTES_PER_IDLE_CONNECTION / CLIENTS bytes a socket.
    let per_socket = after.saturating_sub(before) / CLIENTS;
    eprintln!("heap per socket without CONNECT: {per_socket} bytes");
    assert!(
        per_socket <= MAX_BYTES_PER_SOCKET_WITHOUT_CONNECT,
        "a socket without CONNECT holds {per_socket} bytes of heap (at most {MAX_BYTES_PER_SOCKET_WITHOUT_CONNECT})"
    );
    drop((warm, marker, silent, marker_after));
}
