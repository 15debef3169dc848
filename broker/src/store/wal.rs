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
//! Layout: a header block (`mqttwal1`, the generation, a CRC), then from
//! byte [`HEADER`] on, records: `len:u32`, `crc:u32`, `generation:u64`
//! (little-endian), then `len` bytes of ops; the CRC covers length,
//! generation and ops. A checkpoint starts a new generation by rewriting
//! the header, and writing starts over at [`HEADER`] in place: the file
//! keeps its size, so a commit's `fdatasync` does not wait for a journal
//! commit of the file's length. Reading stops at the first record that is
//! short, fails its CRC, or belongs to another generation: the end of what
//! was written, or a write cut short by a crash (never acknowledged).

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
    /// The header was damaged (a crash while a checkpoint rewrote it):
    /// the records were read by the generation of the first one.
    pub(super) torn_header: bool,
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

/// Reads the log at `path` for replay. A file that is not a log at all
/// is an error (a string: the caller names the file); a missing one holds
/// nothing.
pub(super) fn read(path: &Path) -> io::Result<Result<Recovered, String>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(Recovered::default())),
        Err(e) => return Err(e),
    };
    if bytes.len() < HEADER as usize {
        // Created and cut short before its header was on disk: it never
        // held a record.
        return Ok(
            if bytes.iter().all(|&b| b == 0) || bytes.starts_with(MAGIC) {
                Ok(Recovered::default())
            } else {
                Err("it is not a broker write-ahead log (its header is wrong)".to_owned())
            },
        );
    }
    if !bytes.starts_with(MAGIC) {
        return Ok(Err(
            "it is not a broker write-ahead log (its header is wrong)".to_owned(),
        ));
    }
    let header = header_generation(&bytes);
    let first = frame_at(&bytes, HEADER as usize).map(|f| f.generation);
    let (generation, torn_header) = match (header, first) {
        (Some(g), _) => (g, false),
        // The header is cut (a crash during a checkpoint's restart, after
        // redb took every record): replaying what follows is harmless.
        (None, Some(g)) => (g, true),
        (None, None) => return Ok(Ok(Recovered::default())),
    };
    let mut records = Vec::new();
    let mut at = HEADER as usize;
    while let Some(f) = frame_at(&bytes, at).filter(|f| f.generation == generation) {
        records.push(f.ops.clone());
        at = f.ops.end;
    }
    Ok(Ok(Recovered {
        bytes,
        records,
        torn_header,
    }))
}

/// The generation a header holds, if it is whole.
fn header_generation(bytes: &[u8]) -> Option<u64> {
    let head = bytes.get(..20)?;
    let generation = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let crc = u32::from_le_bytes(head[16..20].try_into().ok()?);
    (head.starts_with(MAGIC) && crc32fast::hash(&head[..16]) == crc).then_some(generation)
}

fn header(generation: u64) -> [u8; 20] {
    let mut h = [0; 20];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[..16]);
    h[16..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A whole record found in a buffer.
struct Found {
    generation: u64,
    ops: std::ops::Range<usize>,
}

/// The record starting at `at` in `bytes`, if one is whole there.
fn frame_at(bytes: &[u8], at: usize) -> Option<Found> {
    let head = bytes.get(at..at.checked_add(FRAME)?)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(head[4..8].try_into().ok()?);
    let generation = u64::from_le_bytes(head[8..16].try_into().ok()?);
    let start = at + FRAME;
    let ops = bytes.get(start..start.checked_add(len)?)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&head[..4]);
    hasher.update(&head[8..16]);
    hasher.update(ops);
    (hasher.finalize() == crc).then_some(Found {
        generation,
        ops: start..start + len,
    })
}

/// The open log, while `--durability batched` writes it.
#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    path: PathBuf,
    generation: u64,
    /// Where the next record goes.
    end: u64,
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
            generation: 0,
            end: HEADER,
            broken: false,
            checkpoint_due: CHECKPOINT_BYTES,
            #[cfg(test)]
            full: None,
        };
        wal.restart()?;
        if let Some(dir) = path.parent() {
            // The file's name must survive a crash as well as its bytes.
            File::open(dir)?.sync_all()?;
        }
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
        if self.broken {
            self.file = open(&self.path, false)?;
            self.broken = false;
        }
        let len = u32::try_from(ops.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "log record too large"))?;
        let mut record = Vec::with_capacity(FRAME + ops.len());
        let generation = self.generation.to_le_bytes();
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len.to_le_bytes());
        hasher.update(&generation);
        hasher.update(ops);
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&hasher.finalize().to_le_bytes());
        record.extend_from_slice(&generation);
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
        let mut records = Vec::new();
        let mut at = HEADER as usize;
        while let Some(f) = frame_at(&bytes, at).filter(|f| f.generation == self.generation) {
            records.push(f.ops.clone());
            at = f.ops.end;
        }
        if at as u64 != self.end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the log does not read back as it was written",
            ));
        }
        Ok(Recovered {
            bytes,
            records,
            torn_header: false,
        })
    }

    /// Starts a new generation once redb holds every record: the header is
    /// rewritten in place and writing starts over at [`HEADER`].
    pub(super) fn restart(&mut self) -> io::Result<()> {
        if self.broken {
            self.file = open(&self.path, false)?;
            self.broken = false;
        }
        let next = self.generation + 1;
        let written = self
            .check()
            .and_then(|()| self.file.write_all_at(&header(next), 0))
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.generation = next;
                self.end = HEADER;
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

        // A header cut by a crash during that restart: the records of the
        // first one's generation are read (redb already holds them).
        let mut bytes = std::fs::read(&path).expect("reads");
        bytes[9] ^= 1;
        std::fs::write(&path, &bytes).expect("writes");
        let back = read(&path).expect("reads").expect("a log");
        assert!(back.torn_header);
        assert_eq!(back.records().collect::<Vec<_>>(), vec![&two[..]]);
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
