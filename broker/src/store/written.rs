//! What the store file holds of each persistent session: the numbers
//! ([`Seq`]) of its message records and a digest of its session record,
//! never a payload. A save compares a session as the router has it now
//! with this and plans the least it must write: the messages queued since,
//! the removal of those acknowledged or dropped since, and the session
//! record only when it changed (issue 14).
//!
//! A session's queue holds consecutive numbers (the outbox numbers what it
//! queues, and hands it out from the front), so what was written of it is
//! a range; its in-flight messages, taken from the queue's front and
//! acknowledged in any order, are a short list.

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
    /// The session is gone: its record and messages go.
    Remove,
    /// The session is written.
    Write {
        /// The file holds nothing usable of it: its message records go
        /// first, and all of its messages are written.
        anew: bool,
        /// The session record, when it changed.
        record: Option<Vec<u8>>,
        /// Message records to write.
        put: Vec<(Seq, Vec<u8>)>,
        /// Message records to remove.
        delete: Vec<Seq>,
        /// What the file holds once this is committed.
        next: Held,
    },
}

impl Plan {
    /// Whether every message record of the session goes first.
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

    /// The message records to write.
    pub(super) fn put(&self) -> &[(Seq, Vec<u8>)] {
        match self {
            Plan::Remove => &[],
            Plan::Write { put, .. } => put,
        }
    }

    /// The message records to remove.
    pub(super) fn delete(&self) -> &[Seq] {
        match self {
            Plan::Remove => &[],
            Plan::Write { delete, .. } => delete,
        }
    }
}

/// The digest and offline time of an encoded session record (version 4:
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
    /// its record `bytes`, and its messages numbered as `parked` holds them.
    pub(super) fn loaded(
        &mut self,
        client_id: &str,
        parked: &crate::router::ParkedSession,
        bytes: &[u8],
    ) {
        let start = parked.queue_start.0;
        let mut in_flight: Vec<u64> = parked.session.outgoing().iter().map(|e| e.seq.0).collect();
        in_flight.sort_unstable();
        let (digest, time) = digest(bytes);
        self.sessions.insert(
            Arc::from(client_id),
            Held {
                queue: start..start.saturating_add(parked.queued.len() as u64),
                in_flight,
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
        let mut put = Vec::new();
        for e in s.session.outgoing().iter() {
            if missing(e.seq) {
                put.push((e.seq, record::encode_message_record(&e.message)));
            }
        }
        for (seq, m) in &s.added {
            if missing(*seq) {
                put.push((*seq, record::encode_message_record(m)));
            }
        }
        #[cfg(feature = "mutants")]
        if crate::mutant::active("qos2-redeliver-after-restart") {
            // Planted bug: the completed QoS 2 messages are written as
            // queued, numbered past everything, so a restart sends them
            // again.
            let completed = s.session.outgoing().completed();
            for (i, m) in completed.iter().enumerate() {
                put.push((Seq(u64::MAX - i as u64), record::encode_message_record(m)));
            }
        }
        let mut in_flight: Vec<u64> = s.session.outgoing().iter().map(|e| e.seq.0).collect();
        in_flight.sort_unstable();
        let mut delete = Vec::new();
        if let Some(h) = held {
            // Taken from the queue's front since: in flight now, or gone.
            for seq in h.queue.start..h.queue.end.min(s.queue.start) {
                if in_flight.binary_search(&seq).is_err() {
                    delete.push(Seq(seq));
                }
            }
            for &seq in &h.in_flight {
                if in_flight.binary_search(&seq).is_err() && !s.queue.contains(&seq) {
                    delete.push(Seq(seq));
                }
            }
        }
        Plan::Write {
            anew: held.is_none(),
            record,
            put,
            delete,
            next: Held {
                queue: s.queue.clone(),
                in_flight,
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
