//! The write-ahead log of `--durability batched`: commits append here, and
//! redb is written behind it.
//!
//! Why (issue 14): a redb commit writes half a dozen pages at scattered
//! offsets and syncs them, and on a virtual disk each of those is a block
//! request the kernel submits at a cost in CPU. Held acknowledgements wait
//! on every commit, so with the 20 messages a publisher may have in
//! flight, that fixed cost capped `--durability batched` at about 40% of
//! the in-memory rate. Here a commit is one `pwrite` of one record at the
//! end of the log and one `fdatasync`; redb gets the log's changes, many
//! commits at a time, at a *checkpoint* (every `--autosave-interval`, when
//! the log passes [`CHECKPOINT_BYTES`], and at shutdown).
//!
//! The log holds the same changes a redb transaction would make, as
//! [`Op`]s: puts and removals of whole records. Applying a sequence of
//! them is idempotent (each key ends as its last op left it), so a crash
//! between a checkpoint's redb commit and the log's restart only replays
//! changes redb already has.
//!
//! Layout: two header slots at bytes 0 and 512 (`mqttwal1`, a generation
//! number, its random salt, a CRC), then from byte [`HEADER`] on, records:
//! `len:u32`, `crc:u32`, `generation:u64` (little-endian), then `len`
//! bytes of ops; the CRC covers length, generation, the generation's salt,
//! the record's offset in the file and its ops. The current generation is
//! the whole slot with the higher number. A checkpoint starts a new
//! generation by writing the other slot, and writing starts over at
//! [`HEADER`] in place: the file keeps its size, so a commit's
//! `fdatasync` does not wait for a journal commit of the file's length. A
//! crash while a slot is written leaves the other one whole (and redb
//! holding every record of its generation). Reading stops at the first
//! record that is short, fails its CRC or belongs to another generation:
//! the end of what was written, or a write cut short by a crash (never
//! acknowledged). Old records left further on, and bytes inside payloads,
//! cannot pass: the salt and the offset are in the CRC.

use std::fs::{File, OpenOptions};
use std::io;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The log's file in the data directory.
pub const WAL_FILE: &str = "broker.wal";

/// A checkpoint comes once the log holds this much.
pub(super) const CHECKPOINT_BYTES: u64 = 8 << 20;

const MAGIC: &[u8; 8] = b"mqttwal1";
/// Records start here; the header has its block to itself.
const HEADER: u64 = 4096;
/// A record's `len`, `crc` and `generation`.
const FRAME: usize = 16;

/// One change to the store's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op<'a> {
    /// A session record written.
    PutSession(&'a str, &'a [u8]),
    /// A session record removed.
    RemoveSession(&'a str),
    /// Every chunk of a session removed.
    ClearChunks(&'a str),
    /// A chunk of a session's messages written: client id, chunk number.
    PutChunk(&'a str, u64, &'a [u8]),
    /// A chunk removed.
    RemoveChunk(&'a str, u64),
    /// A retained message written, by topic.
    PutRetained(&'a str, &'a [u8]),
    /// A retained message cleared.
    RemoveRetained(&'a str),
}

impl<'a> Op<'a> {
    /// Appends the op to `out`: a tag byte, the key (`len:u32`, bytes; a
    /// chunk's number as `u64`), the value (`len:u32`, bytes), big-endian as
    /// the records are.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        fn put(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        match *self {
            Op::PutSession(id, value) => {
                out.push(1);
                put(out, id.as_bytes());
                put(out, value);
            }
            Op::RemoveSession(id) => {
                out.push(2);
                put(out, id.as_bytes());
            }
            Op::ClearChunks(id) => {
                out.push(3);
                put(out, id.as_bytes());
            }
            Op::PutChunk(id, no, value) => {
                out.push(4);
                put(out, id.as_bytes());
                out.extend_from_slice(&no.to_be_bytes());
                put(out, value);
            }
            Op::RemoveChunk(id, no) => {
                out.push(5);
                put(out, id.as_bytes());
                out.extend_from_slice(&no.to_be_bytes());
            }
            Op::PutRetained(topic, value) => {
                out.push(6);
                put(out, topic.as_bytes());
                put(out, value);
            }
            Op::RemoveRetained(topic) => {
                out.push(7);
                put(out, topic.as_bytes());
            }
        }
    }

    /// The ops of one record, in order; an error names what is wrong.
    pub(super) fn decode_all(mut bytes: &'a [u8]) -> Result<Vec<Op<'a>>, String> {
        let mut ops = Vec::new();
        while !bytes.is_empty() {
            ops.push(Self::decode(&mut bytes)?);
        }
        Ok(ops)
    }

    fn decode(bytes: &mut &'a [u8]) -> Result<Op<'a>, String> {
        fn take<'b>(bytes: &mut &'b [u8], n: usize, what: &str) -> Result<&'b [u8], String> {
            if bytes.len() < n {
                return Err(format!("a log record ends inside {what}"));
            }
            let (head, tail) = bytes.split_at(n);
            *bytes = tail;
            Ok(head)
        }
        fn u32_at(bytes: &mut &[u8], what: &str) -> Result<usize, String> {
            let b = take(bytes, 4, what)?;
            Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        }
        fn field<'b>(bytes: &mut &'b [u8], what: &str) -> Result<&'b [u8], String> {
            let n = u32_at(bytes, what)?;
            take(bytes, n, what)
        }
        fn key<'b>(bytes: &mut &'b [u8]) -> Result<&'b str, String> {
            std::str::from_utf8(field(bytes, "a key")?)
                .map_err(|_| "a log record's key is not UTF-8".to_owned())
        }
        fn number(bytes: &mut &[u8]) -> Result<u64, String> {
            let b = take(bytes, 8, "a chunk number")?;
            let mut n = [0; 8];
            n.copy_from_slice(b);
            Ok(u64::from_be_bytes(n))
        }
        let tag = take(bytes, 1, "an op")?[0];
        Ok(match tag {
            1 => Op::PutSession(key(bytes)?, field(bytes, "a session record")?),
            2 => Op::RemoveSession(key(bytes)?),
            3 => Op::ClearChunks(key(bytes)?),
            4 => {
                let id = key(bytes)?;
                let no = number(bytes)?;
                Op::PutChunk(id, no, field(bytes, "a chunk")?)
            }
            5 => {
                let id = key(bytes)?;
                Op::RemoveChunk(id, number(bytes)?)
            }
            6 => Op::PutRetained(key(bytes)?, field(bytes, "a retained message")?),
            7 => Op::RemoveRetained(key(bytes)?),
            other => return Err(format!("a log record holds an unknown op {other}")),
        })
    }
}

/// The ops of a run of records, less the writes a later op in the run
/// overwrites or removes: what redb must do to end as the whole run would
/// leave it. Most chunks a checkpoint sees were written and removed within
/// its run (their messages acknowledged meanwhile), and a session's record
/// is rewritten at most commits; applying only the last word on each key
/// keeps a checkpoint's transaction, and the pause it makes in commits,
/// small. Removals are all kept, in order: redb may hold the key from an
/// earlier run.
pub(super) fn last_words<'a>(ops: Vec<Op<'a>>) -> Vec<Op<'a>> {
    use std::collections::HashMap;
    /// A record's key: which table, the client id or topic, a chunk's
    /// number.
    #[derive(Hash, PartialEq, Eq)]
    enum Key<'k> {
        Session(&'k str),
        Chunk(&'k str, u64),
        Retained(&'k str),
    }
    fn key<'k>(op: &Op<'k>) -> Option<Key<'k>> {
        Some(match *op {
            Op::PutSession(id, _) | Op::RemoveSession(id) => Key::Session(id),
            Op::PutChunk(id, no, _) | Op::RemoveChunk(id, no) => Key::Chunk(id, no),
            Op::PutRetained(topic, _) | Op::RemoveRetained(topic) => Key::Retained(topic),
            Op::ClearChunks(_) => return None,
        })
    }
    let mut last: HashMap<Key<'a>, usize> = HashMap::new();
    let mut cleared: HashMap<&'a str, usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        match key(op) {
            Some(k) => {
                last.insert(k, i);
            }
            None => {
                if let Op::ClearChunks(id) = *op {
                    cleared.insert(id, i);
                }
            }
        }
    }
    let superseded = |i: usize, op: &Op<'a>| match *op {
        Op::PutSession(..) | Op::PutRetained(..) => key(op).and_then(|k| last.get(&k)) != Some(&i),
        Op::PutChunk(id, ..) => {
            key(op).and_then(|k| last.get(&k)) != Some(&i)
                || cleared.get(id).is_some_and(|&c| c > i)
        }
        _ => false,
    };
    ops.into_iter()
        .enumerate()
        .filter(|(i, op)| !superseded(*i, op))
        .map(|(_, op)| op)
        .collect()
}

/// What a log file held at start.
#[derive(Debug, Default)]
pub(super) struct Recovered {
    /// The whole file.
    bytes: Vec<u8>,
    /// Where its records are in `bytes`.
    records: Vec<std::ops::Range<usize>>,
}

impl Recovered {
    /// The ops of each record, in order.
    pub(super) fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.records.iter().map(|r| &self.bytes[r.clone()])
    }

    /// How many records there are.
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }
}

/// The log's current generation and its salt, as a header slot holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generation {
    number: u64,
    /// Random per generation, and in every record's CRC with the record's
    /// place in the file: a record of another generation, or bytes inside
    /// a payload laid out like a record, never pass for one of this
    /// generation.
    salt: u64,
}

/// Where header slot `n` (0 or 1) is. A checkpoint writes the slot the old
/// generation is not in, so a header cut by a crash leaves the other whole.
fn slot_offset(n: u64) -> u64 {
    (n % 2) * 512
}

/// Reads the log at `path` for replay. A file that is not a log at all
/// is an error (a string: the caller names the file); a missing one holds
/// nothing.
pub(super) fn read(path: &Path) -> io::Result<Result<Recovered, String>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(Recovered::default())),
        Err(e) => return Err(e),
    };
    let current = [0, 1]
        .into_iter()
        .filter_map(|n| slot_at(&bytes, slot_offset(n) as usize))
        .max_by_key(|g| g.number);
    let Some(current) = current else {
        // No whole header: created and cut short before its first header
        // was on disk, when it could hold no record yet.
        return Ok(if bytes.len() <= HEADER as usize {
            Ok(Recovered::default())
        } else {
            Err(
                "it is not a broker write-ahead log, or its header is damaged (no header slot is whole)"
                    .to_owned(),
            )
        });
    };
    let records = frames(&bytes, current);
    Ok(Ok(Recovered { bytes, records }))
}

/// The records of generation `current` from [`HEADER`] on, up to the first
/// that is not one.
fn frames(bytes: &[u8], current: Generation) -> Vec<std::ops::Range<usize>> {
    let mut records = Vec::new();
    let mut at = HEADER as usize;
    while let Some(ops) = frame_at(bytes, at, current) {
        at = ops.end;
        records.push(ops);
    }
    records
}

/// The generation a header slot at `at` holds, if it is whole.
fn slot_at(bytes: &[u8], at: usize) -> Option<Generation> {
    let head = bytes.get(at..at + 28)?;
    let number = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let salt = u64::from_le_bytes(head[16..24].try_into().ok()?);
    let crc = u32::from_le_bytes(head[24..28].try_into().ok()?);
    (head.starts_with(MAGIC) && crc32fast::hash(&head[..24]) == crc)
        .then_some(Generation { number, salt })
}

fn slot(generation: Generation) -> [u8; 28] {
    let mut h = [0; 28];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.number.to_le_bytes());
    h[16..24].copy_from_slice(&generation.salt.to_le_bytes());
    let crc = crc32fast::hash(&h[..24]);
    h[24..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A record's CRC: its length and generation as framed, the generation's
/// salt, its place in the file, its ops.
fn record_crc(len: &[u8], generation: Generation, at: u64, ops: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(&generation.number.to_le_bytes());
    hasher.update(&generation.salt.to_le_bytes());
    hasher.update(&at.to_le_bytes());
    hasher.update(ops);
    hasher.finalize()
}

/// The ops of the record of `current` starting at `at` in `bytes`, if a
/// whole one is there.
fn frame_at(bytes: &[u8], at: usize, current: Generation) -> Option<std::ops::Range<usize>> {
    let head = bytes.get(at..at.checked_add(FRAME)?)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let number = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let start = at + FRAME;
    let ops = bytes.get(start..start.checked_add(len)?)?;
    (number == current.number && record_crc(&head[..4], current, at as u64, ops) == crc)
        .then_some(start..start + len)
}

/// The open log, while `--durability batched` writes it.
#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    path: PathBuf,
    generation: Generation,
    /// Where the next record goes.
    end: u64,
    /// A checkpoint's new header did not reach the disk: nothing is
    /// appended until it does (redb holds every record already). Appending
    /// under the old generation meanwhile could leave records that a
    /// reader, finding the new header on disk after all, would skip.
    restart_pending: bool,
    /// A write or sync failed: the file is reopened before the next (after
    /// a failed `fdatasync` the kernel may have dropped the dirty pages'
    /// error; the next record rewrites the same changes from `end`).
    broken: bool,
    /// The log's length at which the next checkpoint is due.
    pub(super) checkpoint_due: u64,
    /// Writes fail with ENOSPC while set: a full disk, for tests.
    #[cfg(test)]
    pub(super) full: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Wal {
    /// Creates the log at `path` (0600), empty, its header and its
    /// directory entry on disk. An old file there must have been replayed.
    pub(super) fn create(path: &Path) -> io::Result<Self> {
        let file = open(path, true)?;
        file.set_len(0)?;
        let mut wal = Self {
            file,
            path: path.to_owned(),
            generation: Generation { number: 0, salt: 0 },
            end: HEADER,
            restart_pending: false,
            broken: false,
            checkpoint_due: CHECKPOINT_BYTES,
            #[cfg(test)]
            full: None,
        };
        wal.restart()?;
        super::private::sync_dir_of(path)?;
        Ok(wal)
    }

    /// Bytes of records since the last checkpoint.
    pub(super) fn len(&self) -> u64 {
        self.end - HEADER
    }

    fn check(&self) -> io::Result<()> {
        #[cfg(test)]
        if self
            .full
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    /// Appends one record holding `ops` (encoded [`Op`]s) and waits until it
    /// is on disk.
    pub(super) fn append(&mut self, ops: &[u8]) -> io::Result<()> {
        if self.restart_pending {
            self.restart()?;
        }
        if self.broken {
            self.file = open(&self.path, false)?;
            self.broken = false;
        }
        let len = u32::try_from(ops.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "log record too large"))?
            .to_le_bytes();
        let mut record = Vec::with_capacity(FRAME + ops.len());
        record.extend_from_slice(&len);
        record.extend_from_slice(&record_crc(&len, self.generation, self.end, ops).to_le_bytes());
        record.extend_from_slice(&self.generation.number.to_le_bytes());
        record.extend_from_slice(ops);
        let written = self
            .check()
            .and_then(|()| self.file.write_all_at(&record, self.end))
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.end += record.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// The records since the last checkpoint, for redb.
    pub(super) fn records(&self) -> io::Result<Recovered> {
        let mut bytes = vec![0; self.end as usize];
        self.file.read_exact_at(&mut bytes, 0)?;
        let records = frames(&bytes, self.generation);
        if records.last().map_or(HEADER as usize, |r| r.end) as u64 != self.end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the log does not read back as it was written",
            ));
        }
        Ok(Recovered { bytes, records })
    }

    /// Starts a new generation once redb holds every record: its header
    /// goes into the slot the current one is not in, with a new salt, and
    /// writing starts over at [`HEADER`]. Until that header is on disk,
    /// nothing more is appended (see `restart_pending`).
    pub(super) fn restart(&mut self) -> io::Result<()> {
        self.restart_pending = true;
        if self.broken {
            self.file = open(&self.path, false)?;
            self.broken = false;
        }
        let next = Generation {
            number: self.generation.number + 1,
            salt: rand::random(),
        };
        let written = self
            .check()
            .and_then(|()| {
                self.file
                    .write_all_at(&slot(next), slot_offset(next.number))
            })
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.generation = next;
                self.end = HEADER;
                self.restart_pending = false;
                Ok(())
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }
}

/// Opens the log for reading and writing; `create` makes it 0600.
fn open(path: &Path, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(create);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<Op<'static>> {
        vec![
            Op::PutSession("c", b"record"),
            Op::ClearChunks("c"),
            Op::PutChunk("c", 7, b"chunk"),
            Op::RemoveChunk("c", 6),
            Op::RemoveSession("gone"),
            Op::PutRetained("a/b", b"message"),
            Op::RemoveRetained("a/c"),
        ]
    }

    fn encoded(ops: &[Op<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for op in ops {
            op.encode(&mut out);
        }
        out
    }

    #[test]
    fn ops_read_back_as_written_and_never_panic_cut_short() {
        let bytes = encoded(&ops());
        assert_eq!(Op::decode_all(&bytes).expect("decodes"), ops());
        for cut in 0..bytes.len() {
            // Cut anywhere: an error or fewer ops, never a panic.
            let _ = Op::decode_all(&bytes[..cut]);
        }
        assert!(Op::decode_all(&[9]).is_err());
    }

    #[test]
    fn only_the_last_word_on_each_key_is_written() {
        let run = vec![
            Op::PutSession("a", b"1"),
            Op::PutChunk("a", 1, b"c1"),
            Op::PutChunk("a", 2, b"c2"),
            Op::RemoveChunk("a", 1),
            Op::PutSession("a", b"2"),
            Op::PutRetained("t", b"x"),
            Op::PutChunk("b", 1, b"b1"),
            Op::ClearChunks("b"),
            Op::PutChunk("b", 2, b"b2"),
            Op::RemoveRetained("t"),
            Op::PutRetained("u", b"y"),
        ];
        assert_eq!(
            last_words(run),
            vec![
                Op::PutChunk("a", 2, b"c2"),
                Op::RemoveChunk("a", 1),
                Op::PutSession("a", b"2"),
                Op::ClearChunks("b"),
                Op::PutChunk("b", 2, b"b2"),
                Op::RemoveRetained("t"),
                Op::PutRetained("u", b"y"),
            ]
        );
    }

    #[test]
    fn records_come_back_until_a_torn_one_and_a_checkpoint_empties_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(WAL_FILE);
        let mut wal = Wal::create(&path).expect("creates");
        let one = encoded(&ops()[..2]);
        let two = encoded(&ops()[2..]);
        wal.append(&one).expect("appends");
        wal.append(&two).expect("appends");
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&one[..], &two[..]]);
        assert_eq!(
            wal.records().expect("reads back").records().count(),
            2,
            "the open log reads its own records"
        );

        // A crash in the middle of the second record's write.
        let end = std::fs::metadata(&path).expect("metadata").len();
        for cut in [end - 1, end - two.len() as u64, end - two.len() as u64 - 8] {
            let file = OpenOptions::new().write(true).open(&path).expect("opens");
            file.set_len(cut).expect("cuts");
            let back = read(&path).expect("reads").expect("a log");
            assert_eq!(back.records().collect::<Vec<_>>(), vec![&one[..]]);
        }
        // A flipped bit in the second record ends the log there too.
        let mut wal = Wal::create(&path).expect("creates anew");
        wal.append(&one).expect("appends");
        wal.append(&two).expect("appends");
        let mut bytes = std::fs::read(&path).expect("reads");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("writes");
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.len(), 1);

        // A checkpoint starts a new generation: the old records, still in
        // the file, are not read again, and new ones overwrite them.
        let mut wal = Wal::create(&path).expect("creates anew");
        wal.append(&one).expect("appends");
        wal.append(&two).expect("appends");
        wal.restart().expect("restarts");
        assert_eq!(wal.len(), 0);
        assert_eq!(read(&path).expect("reads").expect("a log").len(), 0);
        wal.append(&two).expect("appends");
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&two[..]]);

        // The next checkpoint's header cut by a crash (garbage in the other
        // slot): the current generation and its records stand.
        let next = slot_offset(wal.generation.number + 1) as usize;
        let mut bytes = std::fs::read(&path).expect("reads");
        bytes[next..next + 28].copy_from_slice(&[0xa5; 28]);
        bytes[next..next + 8].copy_from_slice(MAGIC);
        std::fs::write(&path, &bytes).expect("writes");
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&two[..]]);
    }

    /// A record is bound to its generation's salt and to its place: the
    /// same bytes copied elsewhere in the file (as a client's payload
    /// could carry them) or left from an older generation are not read.
    #[test]
    fn a_record_elsewhere_or_from_an_older_generation_is_not_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(WAL_FILE);
        let mut wal = Wal::create(&path).expect("creates");
        let one = encoded(&ops()[..2]);
        wal.append(&one).expect("appends");
        let bytes = std::fs::read(&path).expect("reads");
        let record = bytes[HEADER as usize..].to_vec();
        // Copied right after itself: the copy is not a record.
        let mut doubled = bytes.clone();
        doubled.extend_from_slice(&record);
        std::fs::write(&path, &doubled).expect("writes");
        assert_eq!(read(&path).expect("reads").expect("a log").len(), 1);
        // A new generation (a checkpoint) with one short record: the old,
        // longer one after it is not read, though its generation's number
        // would match after enough restarts.
        wal.restart().expect("restarts");
        let short = encoded(&ops()[..1]);
        wal.append(&short).expect("appends");
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&short[..]]);
    }

    /// A checkpoint whose new header fails to reach the disk: nothing is
    /// appended until it does, so no record is written under a generation
    /// a reader could pass over.
    #[test]
    fn nothing_is_appended_until_a_failed_restart_is_done() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(WAL_FILE);
        let mut wal = Wal::create(&path).expect("creates");
        let full = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        wal.full = Some(std::sync::Arc::clone(&full));
        let one = encoded(&ops()[..2]);
        wal.append(&one).expect("appends");
        full.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(wal.restart().is_err());
        assert!(
            wal.append(&one).is_err(),
            "held while the restart is not done"
        );
        full.store(false, std::sync::atomic::Ordering::SeqCst);
        wal.append(&one).expect("appends once the restart is done");
        assert_eq!(
            wal.len() as usize,
            FRAME + one.len(),
            "in the new generation"
        );
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&one[..]]);
    }

    #[test]
    fn a_file_that_is_not_a_log_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(WAL_FILE);
        std::fs::write(&path, vec![b'x'; 5000]).expect("writes");
        assert!(read(&path).expect("reads").is_err());
        std::fs::write(&path, b"").expect("writes");
        assert_eq!(read(&path).expect("reads").expect("empty").len(), 0);
        assert_eq!(
            read(&dir.path().join("none"))
                .expect("reads")
                .expect("none")
                .len(),
            0
        );
    }

    #[test]
    fn a_failed_write_is_written_again_from_the_same_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(WAL_FILE);
        let mut wal = Wal::create(&path).expect("creates");
        let full = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        wal.full = Some(std::sync::Arc::clone(&full));
        let one = encoded(&ops()[..2]);
        assert!(wal.append(&one).is_err());
        assert_eq!(wal.len(), 0);
        full.store(false, std::sync::atomic::Ordering::SeqCst);
        wal.append(&one).expect("appends once there is room");
        let back = read(&path).expect("reads").expect("a log");
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&one[..]]);
    }
}
