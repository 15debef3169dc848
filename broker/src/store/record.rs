//! The binary layout of stored records.
//!
//! All integers big-endian. A message is `flags:u8` (QoS in bits 0–1,
//! RETAIN in bit 2), `topic_len:u16`, topic, `payload_len:u32`, payload:
//! the value of a retained message's record.
//!
//! The queued and in-flight messages of a persistent session (from version
//! 4, issue 14) are in *chunk* records keyed by client id and a chunk
//! number counting up per session: each commit writes one chunk holding
//! the messages it adds (`count:u32`, each `seq:u64` and a message), and
//! deletes the chunks whose messages are all gone, so a commit costs what
//! came and went, never a whole queue again.
//!
//! A session record starts with a version byte (5), then when its client
//! went offline (`offline_since:u64`, milliseconds since the Unix epoch;
//! version 1 records lack it and count from when they are loaded), then
//! (from version 3) the user name (`user_flag:u8`, then unless 0
//! `user_len:u16`, user): 1 for the verified user owning it, so that
//! refusing another user's takeover survives a restart (issue 14), and (from
//! version 4) 2 for a name nobody verified, so that the ACL goes on
//! choosing the session's rules by it, then the subscriptions (`count:u32`, each
//! `filter_len:u16`, filter, `qos:u8`), the QoS 2 ids awaiting PUBREL
//! (`count:u32`, each `u16`), then (from version 4) the [`Seq`] of the first
//! queued message (`queue_start:u64`) and the in-flight messages
//! (`count:u32`, each `state:u8`, `packet_id:u16`, `seq:u64`). Its queue is
//! every chunked message numbered `queue_start` or later and not in flight;
//! the others in its chunks are gone. Version 5 adds at the end the
//! retained messages its SUBSCRIBEs still owe it (`count:u32`, each
//! `filter_len:u16`, filter, `qos:u8`, then the topic its walk goes on
//! after: `0`, or `1`, `topic_len:u16`, topic), so a restart or a crash
//! in the middle of sending them does not forget the rest (issue 14);
//! version 4 is read as owing nothing, and still written for a session
//! owing nothing (so the broker before this one reads such files). Versions 1 to 3 held each in-flight
//! message inline in place of its `seq`, then the queue (`count:u32`, each
//! a message); they are still read, and the next commit writes such a
//! session anew. Decoding checks every field and names what is wrong; it
//! never panics on bad bytes.

use bytes::{Buf, BufMut, Bytes};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::router::{Owed, ParkedSession, StoredSession};
use crate::session::{InFlight, OutState, Seq, Session};
use mqtt_codec::Message;
use mqtt_codec::topic::{TopicFilter, TopicName};
use mqtt_codec::{PacketId, QoS};

const VERSION: u8 = 5;

fn put_message(out: &mut Vec<u8>, m: &Message) {
    out.put_u8(m.qos.as_u8() | (u8::from(m.retain) << 2));
    out.put_u16(m.topic.as_str().len() as u16);
    out.put_slice(m.topic.as_str().as_bytes());
    out.put_u32(m.payload.len() as u32);
    out.put_slice(&m.payload);
}

/// A checked reader over a record.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn need(&self, n: usize, what: &str) -> Result<(), String> {
        if self.0.remaining() < n {
            Err(format!("ends inside {what}"))
        } else {
            Ok(())
        }
    }
    /// The next `N` bytes, as the big-endian integers below read them.
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let bytes = self.bytes(N, what)?;
        Ok(bytes.try_into().expect("bytes() returns exactly N bytes"))
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        self.array(what).map(u8::from_be_bytes)
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        self.array(what).map(u16::from_be_bytes)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array(what).map(u32::from_be_bytes)
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        self.array(what).map(u64::from_be_bytes)
    }
    fn bytes(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        self.need(n, what)?;
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn str(&mut self, n: usize, what: &str) -> Result<&str, String> {
        std::str::from_utf8(self.bytes(n, what)?).map_err(|_| format!("{what} is not UTF-8"))
    }
    fn qos(&mut self, bits: u8) -> Result<QoS, String> {
        QoS::from_bits(bits).ok_or_else(|| format!("QoS {bits} is not 0, 1 or 2"))
    }
    fn message(&mut self) -> Result<Message, String> {
        let flags = self.u8("message flags")?;
        let qos = self.qos(flags & 0b11)?;
        let len = usize::from(self.u16("topic length")?);
        let topic = TopicName::new(self.str(len, "topic")?).map_err(|e| e.to_string())?;
        let len = self.u32("payload length")? as usize;
        let payload = Bytes::copy_from_slice(self.bytes(len, "payload")?);
        Ok(Message {
            topic,
            payload,
            qos,
            retain: flags & 0b100 != 0,
        })
    }
    fn state(&mut self) -> Result<OutState, String> {
        match self.u8("in-flight state")? {
            1 => Ok(OutState::AwaitPubAck),
            2 => Ok(OutState::AwaitPubRec),
            3 => Ok(OutState::AwaitPubComp),
            other => Err(format!("in-flight state {other} is not 1, 2 or 3")),
        }
    }
    fn packet_id(&mut self) -> Result<PacketId, String> {
        PacketId::new(self.u16("packet id")?).ok_or_else(|| "packet id 0".to_owned())
    }
    fn finish(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the last field", self.0.len()))
        }
    }
}

/// A retained message's record.
pub fn encode_message_record(m: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.size() + 7);
    put_message(&mut out, m);
    out
}

/// Reads a retained message's record.
pub fn decode_message_record(bytes: &[u8]) -> Result<Message, String> {
    let mut r = Reader(bytes);
    let m = r.message()?;
    r.finish()?;
    Ok(m)
}

/// A session's record, without its messages (they have their own).
pub fn encode_session(stored: &StoredSession) -> Vec<u8> {
    let StoredSession {
        session,
        offline_since,
        user,
        username,
        ..
    } = stored;
    let mut out = Vec::new();
    // Version 4 while nothing is owed: a broker of the version before
    // reads the file still, unless some session owes retained messages.
    let owes = !stored.retained_owed.is_empty();
    out.put_u8(if owes { VERSION } else { 4 });
    let name = match (user, username) {
        (Some(user), _) => Some((USER_VERIFIED, &**user)),
        (None, Some(name)) => Some((USER_UNVERIFIED, &**name)),
        (None, None) => None,
    };
    put_head(&mut out, *offline_since, name, session);
    out.put_u64(stored.queue.start);
    out.put_u32(session.outgoing().len() as u32);
    for e in session.outgoing().iter() {
        out.put_u8(state_byte(e.state));
        out.put_u16(e.packet_id.get());
        out.put_u64(e.seq.0);
    }
    if !owes {
        return out;
    }
    out.put_u32(stored.retained_owed.len() as u32);
    for owed in &stored.retained_owed {
        // Filters and topics come from packets: at most 65,535 bytes.
        out.put_u16(owed.filter.as_str().len() as u16);
        out.put_slice(owed.filter.as_str().as_bytes());
        out.put_u8(owed.granted.as_u8());
        match &owed.after {
            Some(topic) => {
                out.put_u8(1);
                out.put_u16(topic.len() as u16);
                out.put_slice(topic.as_bytes());
            }
            None => out.put_u8(0),
        }
    }
    out
}

/// The user flag of a verified user's name.
const USER_VERIFIED: u8 = 1;
/// The user flag (version 4) of a name nobody verified.
const USER_UNVERIFIED: u8 = 2;

/// What every version after 1 starts with after its version byte, and the
/// subscriptions and awaiting-PUBREL ids after that; `user` is the user
/// flag and name, if any.
fn put_head(
    out: &mut Vec<u8>,
    offline_since: SystemTime,
    user: Option<(u8, &str)>,
    session: &Session,
) {
    let millis = offline_since
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    out.put_u64(millis);
    match user {
        // A user name comes from a CONNECT or a certificate: at most
        // 65,535 bytes, as the protocol's string length allows.
        Some((flag, u)) => {
            out.put_u8(flag);
            out.put_u16(u.len() as u16);
            out.put_slice(u.as_bytes());
        }
        None => out.put_u8(0),
    }
    // In filter order, so the same subscriptions make the same bytes (the
    // store skips a session record equal to the one it holds).
    let mut subscriptions: Vec<_> = session.subscriptions().iter().collect();
    subscriptions.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    out.put_u32(subscriptions.len() as u32);
    for (filter, qos) in subscriptions {
        out.put_u16(filter.as_str().len() as u16);
        out.put_slice(filter.as_str().as_bytes());
        out.put_u8(qos.as_u8());
    }
    out.put_u32(session.awaiting_rel().len() as u32);
    for id in session.awaiting_rel().iter() {
        out.put_u16(id.get());
    }
}

fn state_byte(state: OutState) -> u8 {
    match state {
        OutState::AwaitPubAck => 1,
        OutState::AwaitPubRec => 2,
        OutState::AwaitPubComp => 3,
    }
}

/// A session record of version 3, with its messages inline: what older
/// brokers wrote, for the tests of reading it.
#[cfg(test)]
pub fn encode_session_v3(parked: &ParkedSession) -> Vec<u8> {
    let mut out = vec![3];
    put_head(
        &mut out,
        parked.offline_since,
        parked.user.as_deref().map(|u| (USER_VERIFIED, u)),
        &parked.session,
    );
    out.put_u32(parked.session.outgoing().len() as u32);
    for e in parked.session.outgoing().iter() {
        out.put_u8(state_byte(e.state));
        out.put_u16(e.packet_id.get());
        put_message(&mut out, &e.message);
    }
    out.put_u32(parked.queued.len() as u32);
    for m in &parked.queued {
        put_message(&mut out, m);
    }
    out
}

/// A session record as read back.
#[derive(Debug)]
pub enum SessionRecord {
    /// Version 1 to 3: the messages were inline, and are here numbered
    /// afresh; the store holds none of them under these numbers.
    Whole(ParkedSession),
    /// Version 4: the messages are in their own records, to be joined
    /// with [`Split::assemble`].
    Split(Split),
}

/// A version 4 or 5 session record, before its messages are joined to it.
#[derive(Debug)]
pub struct Split {
    retained_owed: Vec<Owed>,
    session: Session,
    queue_start: Seq,
    in_flight: Vec<(OutState, PacketId, Seq)>,
    offline_since: SystemTime,
    user: Option<Box<str>>,
    username: Option<Box<str>>,
}

impl Split {
    /// Joins the messages of the session's chunks (`chunks`, in chunk
    /// order): those the in-flight entries name go in flight, those
    /// numbered from the queue's start on are the queue, the others are
    /// gone. Returns the session, and whether the queue's numbers follow one
    /// another from its start as the broker writes them (if not, they are
    /// numbered again, and the store must write the session anew).
    pub fn assemble(self, chunks: Vec<Chunk>) -> Result<(ParkedSession, bool), String> {
        let Split {
            retained_owed,
            mut session,
            queue_start,
            in_flight,
            offline_since,
            user,
            username,
        } = self;
        // A message written twice (again in a later chunk) is the same.
        let mut by_seq: std::collections::BTreeMap<Seq, Message> =
            chunks.into_iter().flatten().collect();
        for (state, packet_id, seq) in in_flight {
            let message = by_seq
                .remove(&seq)
                .ok_or_else(|| format!("in-flight message {} has no record", seq.0))?;
            session.outgoing_mut().restore(InFlight {
                packet_id,
                seq,
                message,
                state,
            });
        }
        let queued = by_seq.split_off(&queue_start);
        let as_written = queued
            .keys()
            .enumerate()
            .all(|(i, seq)| queue_start.0.checked_add(i as u64) == Some(seq.0))
            && queue_start.0.checked_add(queued.len() as u64).is_some();
        let queue_start = if as_written {
            queue_start
        } else {
            Seq(crate::router::outbox::fresh_head())
        };
        Ok((
            ParkedSession {
                session,
                queued: queued.into_values().collect(),
                queue_start,
                offline_since,
                user,
                username,
                retained_owed,
            },
            as_written,
        ))
    }
}

/// The messages of one chunk record, each with its number.
pub type Chunk = Vec<(Seq, Message)>;

/// A chunk record: messages of one session with their numbers.
pub fn encode_chunk(messages: &[(Seq, &Message)]) -> Vec<u8> {
    let size: usize = messages.iter().map(|(_, m)| m.size() + 15).sum();
    let mut out = Vec::with_capacity(size + 4);
    out.put_u32(messages.len() as u32);
    for (seq, m) in messages {
        out.put_u64(seq.0);
        put_message(&mut out, m);
    }
    out
}

/// Reads a chunk record.
pub fn decode_chunk(bytes: &[u8]) -> Result<Chunk, String> {
    let mut r = Reader(bytes);
    let count = r.u32("chunk length")?;
    let mut messages = Vec::new();
    for _ in 0..count {
        let seq = Seq(r.u64("message seq")?);
        messages.push((seq, r.message()?));
    }
    r.finish()?;
    Ok(messages)
}

/// Reads a session's record for `client_id`; `now` stands in for the time
/// its client went offline in a version 1 record, which does not hold it.
pub fn decode_session(
    client_id: &str,
    bytes: &[u8],
    max_inflight: usize,
    now: SystemTime,
) -> Result<SessionRecord, String> {
    let mut r = Reader(bytes);
    let version = r.u8("version")?;
    let offline_since = match version {
        1 => now,
        2..=VERSION => UNIX_EPOCH + Duration::from_millis(r.u64("offline time")?),
        _ => {
            return Err(format!(
                "version {version}, this broker reads versions 1 to {VERSION}"
            ));
        }
    };
    // Before version 4 only a verified user's name was kept.
    let (user, username) = if version >= 3 {
        let most = if version >= 4 {
            USER_UNVERIFIED
        } else {
            USER_VERIFIED
        };
        match r.u8("user flag")? {
            0 => (None, None),
            flag if flag <= most => {
                let len = usize::from(r.u16("user length")?);
                let name: Box<str> = Box::from(r.str(len, "user")?);
                let user = (flag == USER_VERIFIED).then(|| name.clone());
                (user, Some(name))
            }
            other => return Err(format!("user flag {other} is not 0 to {most}")),
        }
    } else {
        (None, None)
    };
    let mut session = Session::new(client_id, false, max_inflight);
    for _ in 0..r.u32("subscription count")? {
        let len = usize::from(r.u16("filter length")?);
        let filter = TopicFilter::new(r.str(len, "filter")?).map_err(|e| e.to_string())?;
        let bits = r.u8("granted QoS")?;
        let qos = r.qos(bits)?;
        session.subscribed(filter, qos);
    }
    for _ in 0..r.u32("awaiting-PUBREL count")? {
        let id = r.packet_id()?;
        session.restore_awaiting_rel(id);
    }
    if version >= 4 {
        let queue_start = Seq(r.u64("queue start")?);
        let mut in_flight = Vec::new();
        for _ in 0..r.u32("in-flight count")? {
            let state = r.state()?;
            let packet_id = r.packet_id()?;
            let seq = Seq(r.u64("in-flight seq")?);
            in_flight.push((state, packet_id, seq));
        }
        let mut retained_owed = Vec::new();
        if version >= 5 {
            for _ in 0..r.u32("owed retained count")? {
                let len = usize::from(r.u16("owed filter length")?);
                let filter = TopicFilter::new(r.str(len, "owed filter")?)
                    .map_err(|e| format!("owed filter: {e}"))?;
                let bits = r.u8("owed QoS")?;
                let granted = r.qos(bits).map_err(|e| format!("owed QoS: {e}"))?;
                let after = match r.u8("owed resume flag")? {
                    0 => None,
                    1 => {
                        let len = usize::from(r.u16("owed resume topic length")?);
                        Some(Box::from(r.str(len, "owed resume topic")?))
                    }
                    other => return Err(format!("owed resume flag {other} is not 0 or 1")),
                };
                retained_owed.push(Owed {
                    filter,
                    granted,
                    after,
                });
            }
        }
        r.finish()?;
        return Ok(SessionRecord::Split(Split {
            retained_owed,
            session,
            queue_start,
            in_flight,
            offline_since,
            user,
            username,
        }));
    }
    // Older versions: numbers from a fresh range, in flight first.
    let mut next = crate::router::outbox::fresh_head();
    for _ in 0..r.u32("in-flight count")? {
        let state = r.state()?;
        let packet_id = r.packet_id()?;
        let message = r.message()?;
        session.outgoing_mut().restore(InFlight {
            packet_id,
            seq: Seq(next),
            message,
            state,
        });
        next += 1;
    }
    let count = r.u32("queue length")?;
    let mut queued = Vec::new();
    for _ in 0..count {
        queued.push(r.message()?);
    }
    r.finish()?;
    Ok(SessionRecord::Whole(ParkedSession {
        session,
        queued,
        queue_start: Seq(next),
        offline_since,
        user,
        username,
        retained_owed: Vec::new(),
    }))
}
