//! What the store file holds of each persistent session: the numbers
//! ([`Seq`]) of its messages, which chunk records hold them, and a digest
//! of its session record, never a payload. A save compares a session as
//! the router has it now with this and plans the least it must write: one
//! chunk with the messages queued since, the removal of the chunks whose
//! messages are all acknowledged or dropped, and the session record only
//! when it changed (issue 14).
//!
//! A session's queue holds consecutive numbers (the outbox numbers what it
//! queues, and hands it out from the front), so what was written of it is
//! a range; its in-flight messages, taken from the queue's front and
//! acknowledged in any order, are a short list. A chunk is gone once all
//! of its numbers are below the queue's start and none is in flight.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::Arc;

use super::record;
use crate::router::StoredSession;
use crate::session::Seq;

/// A session record's offline time is rewritten at least this often
/// (milliseconds) while the rest of the record is unchanged: it stands for
/// when a connected client went away should the broker die, so a restart
/// counts its expiry from at most this long before the crash.
const OFFLINE_TIME_GRANULARITY_MS: u64 = 1_000;

/// What the file holds, by client id.
#[derive(Debug, Default)]
pub(super) struct Written {
    sessions: HashMap<Arc<str>, Held>,
    /// Sessions whose records the next save writes anew: read from an older
    /// version of the file, or not numbered as the broker numbers them.
    pub(super) stale: Vec<Arc<str>>,
}

/// What the file holds of one session.
#[derive(Debug)]
pub(super) struct Held {
    /// The numbers of its queued messages.
    queue: Range<u64>,
    /// The numbers of its in-flight messages, sorted.
    in_flight: Vec<u64>,
    /// Its chunk records: number, and the lowest and highest [`Seq`] in it.
    chunks: Vec<(u64, u64, u64)>,
    /// The number the next chunk gets.
    next_chunk: u64,
    /// A digest of the session record past its offline time.
    digest: u64,
    /// The record's offline time, milliseconds since the Unix epoch.
    time: u64,
}

impl Held {
    fn holds(&self, seq: Seq) -> bool {
        self.queue.contains(&seq.0) || self.in_flight.binary_search(&seq.0).is_ok()
    }
}

/// What one save writes of one session.
#[derive(Debug)]
pub(super) enum Plan {
    /// The session is gone: its record and chunks go.
    Remove,
    /// The session is written.
    Write {
        /// The file holds nothing usable of it: its chunks go first, and
        /// all of its messages are written.
        anew: bool,
        /// The session record, when it changed.
        record: Option<Vec<u8>>,
        /// The chunk to write (its number and bytes), with how many
        /// messages it holds.
        chunk: Option<(u64, Vec<u8>, usize)>,
        /// The chunks to remove, by number.
        delete: Vec<u64>,
        /// What the file holds once this is committed.
        next: Held,
    },
}

impl Plan {
    /// Whether every chunk of the session goes first.
    pub(super) fn anew(&self) -> bool {
        match self {
            Plan::Remove => true,
            Plan::Write { anew, .. } => *anew,
        }
    }

    /// Whether the session record goes.
    pub(super) fn is_removal(&self) -> bool {
        matches!(self, Plan::Remove)
    }

    /// The session record to write, if any.
    pub(super) fn record(&self) -> Option<&[u8]> {
        match self {
            Plan::Remove => None,
            Plan::Write { record, .. } => record.as_deref(),
        }
    }

    /// The chunk to write: its number, bytes and how many messages.
    pub(super) fn chunk(&self) -> Option<(u64, &[u8], usize)> {
        match self {
            Plan::Write {
                chunk: Some((no, bytes, count)),
                ..
            } => Some((*no, bytes, *count)),
            _ => None,
        }
    }

    /// The chunks to remove.
    pub(super) fn delete(&self) -> &[u64] {
        match self {
            Plan::Remove => &[],
            Plan::Write { delete, .. } => delete,
        }
    }
}

/// The digest and offline time of an encoded session record (from version 4:
/// the version byte, then the time, then the rest).
fn digest(record: &[u8]) -> (u64, u64) {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    record.get(9..).unwrap_or_default().hash(&mut h);
    let time = record
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    (h.finish(), time)
}

impl Written {
    /// The first queue number of `client_id`'s session the file lacks: the
    /// router copies the queued messages from there on.
    pub(super) fn queue_end(&self, client_id: &str) -> u64 {
        self.sessions.get(client_id).map_or(0, |h| h.queue.end)
    }

    /// Records a session read back from the file as the broker wrote it:
    /// its record `bytes`, its `chunks` (number, lowest and highest
    /// [`Seq`]), and its messages numbered as `parked` holds them.
    pub(super) fn loaded(
        &mut self,
        client_id: &str,
        parked: &crate::router::ParkedSession,
        bytes: &[u8],
        chunks: Vec<(u64, u64, u64)>,
    ) {
        let start = parked.queue_start.0;
        let mut in_flight: Vec<u64> = parked.session.outgoing().iter().map(|e| e.seq.0).collect();
        in_flight.sort_unstable();
        let (digest, time) = digest(bytes);
        let next_chunk = chunks
            .iter()
            .map(|c| c.0.saturating_add(1))
            .max()
            .unwrap_or(0);
        self.sessions.insert(
            Arc::from(client_id),
            Held {
                queue: start..start.saturating_add(parked.queued.len() as u64),
                in_flight,
                chunks,
                next_chunk,
                digest,
                time,
            },
        );
    }

    /// Plans what to write of `client_id`'s session, as the router has it
    /// now (`None`: it is gone). `stored` holds the queued messages from
    /// [`Written::queue_end`] on.
    pub(super) fn plan(&self, client_id: &str, stored: Option<&StoredSession>) -> Plan {
        let Some(s) = stored else {
            return Plan::Remove;
        };
        let held = self.sessions.get(client_id);
        let record = record::encode_session(s);
        let (digest, time) = digest(&record);
        let (record, time) = match held {
            Some(h)
                if h.digest == digest && time.abs_diff(h.time) < OFFLINE_TIME_GRANULARITY_MS =>
            {
                (None, h.time)
            }
            _ => (Some(record), time),
        };
        let missing = |seq: Seq| !held.is_some_and(|h| h.holds(seq));
        let mut add: Vec<(Seq, &mqtt_codec::Message)> = Vec::new();
        for e in s.session.outgoing().iter() {
            if missing(e.seq) {
                add.push((e.seq, &e.message));
            }
        }
        for (seq, m) in &s.added {
            if missing(*seq) {
                add.push((*seq, m));
            }
        }
        #[cfg(feature = "mutants")]
        if crate::mutant::active("qos2-redeliver-after-restart") {
            // Planted bug: the completed QoS 2 messages are written as
            // queued, numbered past everything, so a restart sends them
            // again.
            let completed = s.session.outgoing().completed();
            for (i, m) in completed.iter().enumerate() {
                add.push((Seq(u64::MAX - i as u64), m));
            }
        }
        let mut in_flight: Vec<u64> = s.session.outgoing().iter().map(|e| e.seq.0).collect();
        in_flight.sort_unstable();
        // A chunk stays while any of its numbers may still be queued or in
        // flight.
        let live = |&(_, low, high): &(u64, u64, u64)| {
            high >= s.queue.start || {
                let from = in_flight.partition_point(|&seq| seq < low);
                in_flight.get(from).is_some_and(|&seq| seq <= high)
            }
        };
        let (mut chunks, delete): (Vec<_>, Vec<_>) = held
            .map(|h| h.chunks.iter().copied().partition(|c| live(c)))
            .unwrap_or_default();
        let delete = delete.into_iter().map(|c: (u64, u64, u64)| c.0).collect();
        let mut next_chunk = held.map_or(0, |h| h.next_chunk);
        let chunk = (!add.is_empty()).then(|| {
            let low = add.iter().map(|(seq, _)| seq.0).min().unwrap_or(0);
            let high = add.iter().map(|(seq, _)| seq.0).max().unwrap_or(0);
            let no = next_chunk;
            next_chunk += 1;
            chunks.push((no, low, high));
            (no, record::encode_chunk(&add), add.len())
        });
        Plan::Write {
            anew: held.is_none(),
            record,
            chunk,
            delete,
            next: Held {
                queue: s.queue.clone(),
                in_flight,
                chunks,
                next_chunk,
                digest,
                time,
            },
        }
    }

    /// Notes that `plan` for `client_id` is committed.
    pub(super) fn committed(&mut self, client_id: Arc<str>, plan: Plan) {
        match plan {
            Plan::Remove => {
                self.sessions.remove(&client_id);
            }
            Plan::Write { next, .. } => {
                self.sessions.insert(client_id, next);
            }
        }
    }
}
