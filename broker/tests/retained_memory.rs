//! Retained messages are no denial-of-service lever (issue 14): a
//! SUBSCRIBE that owes one client 20 million retained copies does not make
//! them all at once.
//!
//! The broker runs in this process (see [`InProcessBroker`]) so a global
//! allocator counts its heap, and its peak: counted, not timed.

use std::alloc::System;

use cap::Cap;
use common::RawClient;
use common::in_process::InProcessBroker;
use common::retained::{FILTERS, RETAINED, expect_retained, load_retained, subscribe_big};

mod common;

/// Counts the bytes allocated and not yet freed, process-wide, and the peak.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// What the heap (the broker's and this test's clients') may grow by while
/// the broker owes those copies: measured 0.42 MB (the SUBSCRIBE's 2,048
/// filters decoded and held by the cursor, a few hundred messages in the
/// outbox, the write buffer, the client's read buffer). Main before
/// issue 14 made every copy at once: over a gigabyte (1.1 GB RSS in the
/// issue).
const MAX_HEAP_GROWTH: usize = 2 << 20;

#[tokio::test]
async fn overlapping_filters_over_many_retained_messages_keep_the_heap_bounded() {
    let broker = InProcessBroker::start(&[]);
    load_retained(&broker).await;
    let before = ALLOCATOR.allocated();
    let mut big = RawClient::connected(broker.addr(), "big").await;
    subscribe_big(&mut big).await;
    // The whole of the first filter's copies, and some of the second's:
    // the delivery is well under way.
    expect_retained(&mut big, 0..RETAINED).await;
    expect_retained(&mut big, 0..100).await;
    let grown = ALLOCATOR.max_allocated().saturating_sub(before);
    eprintln!("heap growth at most {grown} bytes while {FILTERS} x {RETAINED} copies are owed");
    assert!(
        grown <= MAX_HEAP_GROWTH,
        "the broker's heap grew by {grown} bytes (at most {MAX_HEAP_GROWTH})"
    );
}
