//! [`shrink_if_sparse`]: giving memory back from maps that emptied out.
//!
//! A `HashMap` keeps its peak capacity after removals; a client that
//! subscribed to 100,000 filters and unsubscribed from all of them would
//! otherwise leave megabytes of empty buckets in its session and in the
//! subscription index for as long as both live (issue 14).

use std::collections::HashMap;
use std::hash::Hash;

/// Gives memory back once a map has shrunk to a quarter of its capacity, so a
/// burst of subscriptions does not pin its peak size forever.
pub(crate) fn shrink_if_sparse<A: Eq + Hash, B>(map: &mut HashMap<A, B>) {
    if map.capacity() > 16 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}
