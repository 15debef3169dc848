//! Persistent sessions and retained messages in `--data-dir`, kept in redb.
//!
//! redb is a pure-Rust embedded key-value store with ACID transactions and
//! copy-on-write pages: a save is one transaction, so a crash mid-save
//! leaves the previous state intact, and there is no C library to build.
//!
//! Three tables: `sessions` (client id → session record: subscriptions,
//! owner, in-flight flows, where its queue starts), `messages` ((client id,
//! chunk number) → a chunk of that session's queued or in-flight messages,
//! each with its [`Seq`](crate::session::Seq)) and `retained` (topic → message). Values use a
//! small versioned binary layout written and read here (module `record`).
//! A commit writes one chunk per changed session holding the messages
//! queued since the last one, and deletes the chunks whose messages are all
//! acknowledged or dropped, so its cost follows what changed, not the
//! length of a queue, and is a few records however many messages came and
//! went (issue 14: a persistent subscriber with a long queue cost the whole
//! queue at every commit). The store keeps only the numbers of what it
//! wrote (module `written`), never a second copy of a payload. The state is saved every
//! `--autosave-interval` seconds and at shutdown, as mosquitto does with
//! its autosave; a crash loses what changed since the last save. The
//! sessions of connected clients are saved too (their subscriptions and
//! queues; see [`Store::save`]), so they survive a crash after a save.

pub mod commit;
mod damage;
#[cfg(test)]
mod fault;
mod private;
mod record;
mod wal;
mod written;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::router::Router;
use wal::{Op, Wal};
use written::{Plan, Written};

const SESSIONS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("sessions");
const MESSAGES: TableDefinition<'static, (&str, u64), &[u8]> = TableDefinition::new("messages");
const RETAINED: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("retained");

/// The file inside the data directory.
pub const STORE_FILE: &str = "broker.redb";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory cannot be created.
    #[error("creating data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// redb failed.
    #[error("store {path}: {source}", path = path.display())]
    Db {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        source: Box<redb::Error>,
    },
    /// The store file is damaged (truncated, overwritten, half-written):
    /// redb reports it corrupt or fails inside its own code. The broker
    /// does not guess at what survives; the user moves the file aside.
    #[error(
        "store {path} is damaged: {reason}; to start anyway with an empty store, move it aside: mv {path} {path}.damaged",
        path = path.display()
    )]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// What is wrong, as redb or the record decoder says.
        reason: String,
    },
    /// The write-ahead log of `--durability batched` failed.
    #[error("write-ahead log {path}: {source}", path = path.display())]
    Wal {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The committer thread could not be started.
    #[error("starting the store's committer thread: {0}")]
    Committer(std::io::Error),
    /// A record cannot be decoded.
    #[error(
        "store {path}: {table} record '{key}' is corrupt: {reason}; to start anyway with an empty store, move it aside: mv {path} {path}.damaged",
        path = path.display()
    )]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Opens the database behind a store: the file itself, or (in tests) the
/// file through a backend that can fail on demand.
type Opener = Box<dyn Fn(&Path) -> Result<Database, redb::DatabaseError> + Send + Sync>;

/// The open store.
///
/// Saves are serialized inside (one writer at a time): the committer
/// thread, the expiry sweep and the shutdown may all call [`Store::save`].
pub struct Store {
    /// `None` after a failed write: redb keeps failing once an I/O error hit
    /// it, so the next save reopens the file first (issue 14: one ENOSPC
    /// poisoned the store until restart).
    db: Mutex<Option<Database>>,
    /// What the file holds of each persistent session's messages, and the
    /// sessions whose records must be written anew (read from an older
    /// version, or not as the broker writes them).
    written: Mutex<Written>,
    /// With `--durability batched`, the log commits go to before redb
    /// (module `wal`); `None` while saves write redb directly.
    wal: Mutex<Option<Wal>>,
    path: PathBuf,
    opener: Opener,
    /// The log's writes fail with ENOSPC while set: a full disk, for tests.
    #[cfg(test)]
    full: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What one [`Store::save`] wrote: records, not bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// Session records written.
    pub sessions: usize,
    /// Chunk records written (one per changed session at most).
    pub chunks: usize,
    /// Messages of sessions written (queued or in flight), in those chunks.
    pub messages: usize,
    /// Retained-message records written.
    pub retained: usize,
    /// Records removed (sessions gone, retained topics cleared, chunks
    /// whose messages were all acknowledged or dropped).
    pub removed: usize,
}

impl Saved {
    /// Records written or removed.
    pub fn keys(&self) -> usize {
        self.sessions + self.chunks + self.retained + self.removed
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// A directory or file created here is private to the broker's user
    /// (0700 and 0600 on Unix, as mosquitto keeps `mosquitto.db`): the store
    /// holds every retained message and queued payload. An existing file
    /// with looser permissions is left as it is, with a warning.
    ///
    /// A write-ahead log left by a broker that stopped without its last
    /// checkpoint (a crash, a kill) is replayed into the file first, then
    /// removed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, Box::new(|path| Database::create(path)))
    }

    fn open_with(dir: &Path, opener: Opener) -> Result<Self, StoreError> {
        private::create_dir(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        private::create_or_check_file(&path).map_err(|e| StoreError::Db {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let db = opener(&path).map_err(|e| StoreError::Db {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let store = Self {
            db: Mutex::new(None),
            written: Mutex::default(),
            wal: Mutex::default(),
            path,
            opener,
            #[cfg(test)]
            full: None,
        };
        store.recover(&db)?;
        *lock(&store.db) = Some(db);
        Ok(store)
    }

    /// The write-ahead log's file.
    pub fn wal_path(&self) -> PathBuf {
        self.path.with_file_name(wal::WAL_FILE)
    }

    fn wal_err(&self, source: std::io::Error) -> StoreError {
        StoreError::Wal {
            path: self.wal_path(),
            source,
        }
    }

    /// Replays a write-ahead log left in the data directory into `db`,
    /// then removes it. A log that is not one, or whose whole records do
    /// not decode, is [`StoreError::Damaged`] naming it.
    fn recover(&self, db: &Database) -> Result<(), StoreError> {
        let path = self.wal_path();
        let recovered = wal::read(&path)
            .map_err(|e| self.wal_err(e))?
            .map_err(|reason| StoreError::Damaged {
                path: path.clone(),
                reason,
            })?;
        if recovered.len() > 0 {
            let ops = self.replay(db, &recovered)?;
            tracing::info!(path = %path.display(), records = recovered.len(), ops, "replayed the write-ahead log into the store");
        }
        match std::fs::remove_file(&path) {
            // The removal on disk before anything newer is written to redb:
            // a log coming back after a power loss would be replayed over
            // newer state.
            Ok(()) => private::sync_dir_of(&path).map_err(|e| self.wal_err(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.wal_err(e)),
        }
    }

    /// Applies the log's records to `db` in one transaction. Returns how
    /// many ops there were.
    fn replay(&self, db: &Database, records: &wal::Recovered) -> Result<usize, StoreError> {
        let mut ops = Vec::new();
        for record in records.records() {
            ops.extend(
                Op::decode_all(record).map_err(|reason| StoreError::Damaged {
                    path: self.wal_path(),
                    reason,
                })?,
            );
        }
        let count = ops.len();
        let tx = db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut tables = Tables::open(&tx).map_err(|e| self.db_err(e))?;
            for op in wal::last_words(ops) {
                tables.apply(op).map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(count)
    }

    /// From now on saves append to a write-ahead log (one write and one
    /// `fdatasync` each), and redb is written at [`Store::checkpoint`]:
    /// what `--durability batched` commits with.
    pub fn write_ahead(&self) -> Result<(), StoreError> {
        #[cfg_attr(not(test), expect(unused_mut, reason = "set only in tests"))]
        let mut wal = Wal::create(&self.wal_path()).map_err(|e| self.wal_err(e))?;
        #[cfg(test)]
        wal.full.clone_from(&self.full);
        *lock(&self.wal) = Some(wal);
        Ok(())
    }

    /// Writes the write-ahead log's records into redb and empties the log.
    /// Nothing to do without a log, or with an empty one.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let mut guard = lock(&self.db);
        let mut wal = lock(&self.wal);
        match wal.as_mut() {
            Some(w) => self.checkpoint_into(&mut guard, w),
            None => Ok(()),
        }
    }

    fn checkpoint_into(&self, db: &mut Option<Database>, wal: &mut Wal) -> Result<(), StoreError> {
        if wal.len() == 0 {
            return Ok(());
        }
        if db.is_none() {
            *db = Some((self.opener)(&self.path).map_err(|e| self.db_err(e))?);
        }
        let records = wal.records().map_err(|e| self.wal_err(e))?;
        if let Err(e) = self.replay(db.as_ref().expect("opened above"), &records) {
            // redb keeps failing once an I/O error hit it: reopen next time.
            *db = None;
            return Err(e);
        }
        wal.restart().map_err(|e| self.wal_err(e))?;
        wal.checkpoint_due = wal::CHECKPOINT_BYTES;
        Ok(())
    }

    /// Opens (or creates) the store in `dir` on a file whose writes fail
    /// with ENOSPC while `full` is set: a full disk, for tests.
    #[cfg(test)]
    pub(crate) fn open_failing_when(
        dir: &Path,
        full: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Self, StoreError> {
        let backend_full = Arc::clone(&full);
        let mut store = Self::open_with(
            dir,
            Box::new(move |path| {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)?;
                let backend = fault::FullDisk {
                    inner: redb::backends::FileBackend::new(file)?,
                    full: Arc::clone(&backend_full),
                };
                redb::Builder::new().create_with_backend(backend)
            }),
        )?;
        store.full = Some(full);
        Ok(store)
    }

    /// Opens the store in `dir` and loads it into `router`, as the broker
    /// does at start. Returns the store and how many sessions and retained
    /// messages came back.
    ///
    /// A damaged file never panics: redb 4 panics on some corrupt pages
    /// (an unknown page type, a branch page where a leaf belongs), so the
    /// open and load run under a `catch_unwind` (module `damage`), and both a
    /// caught panic and redb's own "corrupted" errors become
    /// [`StoreError::Damaged`], which tells the user how to start anyway.
    /// After such an error `router` may hold part of the file's state;
    /// the broker does not start with it.
    pub fn open_and_load(
        dir: &Path,
        router: &Router,
        max_inflight: usize,
    ) -> Result<(Self, (usize, usize)), StoreError> {
        let path = dir.join(STORE_FILE);
        let result = damage::without_panicking(|| {
            let store = Self::open(dir)?;
            let counts = store.load(router, max_inflight)?;
            Ok((store, counts))
        });
        match result {
            Ok(Ok(opened)) => Ok(opened),
            Ok(Err(e)) => Err(damage::classify(e)),
            Err(reason) => Err(StoreError::Damaged { path, reason }),
        }
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source: Box::new(e.into()),
        }
    }

    /// Loads every stored session (parked, with its queue) and retained
    /// message into `router`. Returns how many of each.
    pub fn load(&self, router: &Router, max_inflight: usize) -> Result<(usize, usize), StoreError> {
        let guard = lock(&self.db);
        let Some(db) = guard.as_ref() else {
            return Ok((0, 0));
        };
        let tx = db.begin_read().map_err(|e| self.db_err(e))?;
        let corrupt = |table, key: &str, reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            reason,
        };
        let mut sessions = 0;
        let now = std::time::SystemTime::now();
        let mut written = lock(&self.written);
        match tx.open_table(SESSIONS) {
            Ok(table) => {
                let messages = match tx.open_table(MESSAGES) {
                    Ok(t) => Some(t),
                    Err(redb::TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(self.db_err(e)),
                };
                for item in table.iter().map_err(|e| self.db_err(e))? {
                    let (k, v) = item.map_err(|e| self.db_err(e))?;
                    let id = k.value();
                    let decoded = record::decode_session(id, v.value(), max_inflight, now)
                        .map_err(|r| corrupt("sessions", id, r))?;
                    let parked = match decoded {
                        record::SessionRecord::Whole(parked) => {
                            written.stale.push(Arc::from(id));
                            parked
                        }
                        record::SessionRecord::Split(split) => {
                            let chunks = match &messages {
                                Some(t) => self.chunks_of(t, id)?,
                                None => Vec::new(),
                            };
                            let held: Vec<(u64, u64, u64)> = chunks
                                .iter()
                                .map(|(no, m)| {
                                    let seqs = m.iter().map(|(seq, _)| seq.0);
                                    let low = seqs.clone().min().unwrap_or(0);
                                    (*no, low, seqs.max().unwrap_or(0))
                                })
                                .collect();
                            let (parked, as_written) = split
                                .assemble(chunks.into_iter().map(|(_, m)| m).collect())
                                .map_err(|r| corrupt("sessions", id, r))?;
                            if as_written {
                                written.loaded(id, &parked, v.value(), held);
                            } else {
                                written.stale.push(Arc::from(id));
                            }
                            parked
                        }
                    };
                    router.restore_session(parked);
                    sessions += 1;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.db_err(e)),
        }
        drop(written);
        let mut retained = 0;
        match tx.open_table(RETAINED) {
            Ok(table) => {
                for item in table.iter().map_err(|e| self.db_err(e))? {
                    let (k, v) = item.map_err(|e| self.db_err(e))?;
                    let message = record::decode_message_record(v.value())
                        .map_err(|r| corrupt("retained", k.value(), r))?;
                    router.restore_retained(&message);
                    retained += 1;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.db_err(e)),
        }
        Ok((sessions, retained))
    }

    /// The chunk records of client `client_id`'s session, in chunk order:
    /// each chunk's number and messages.
    fn chunks_of(
        &self,
        table: &redb::ReadOnlyTable<(&str, u64), &[u8]>,
        client_id: &str,
    ) -> Result<Vec<(u64, record::Chunk)>, StoreError> {
        let mut chunks = Vec::new();
        let range = table
            .range((client_id, 0)..=(client_id, u64::MAX))
            .map_err(|e| self.db_err(e))?;
        for item in range {
            let (k, v) = item.map_err(|e| self.db_err(e))?;
            let no = k.value().1;
            let messages =
                record::decode_chunk(v.value()).map_err(|reason| StoreError::Corrupt {
                    path: self.path.clone(),
                    table: "messages",
                    key: format!("{client_id} #{no}"),
                    reason,
                })?;
            chunks.push((no, messages));
        }
        Ok(chunks)
    }

    /// Writes what changed since the last save ([`Router::take_changes`]):
    /// for each changed persistent session its record (subscriptions,
    /// owner, queue start and, when known, in-flight flows) if that
    /// changed, one chunk with the messages queued for it since the last
    /// save, and the removal of its chunks whose messages are all
    /// acknowledged or dropped since; each changed retained message; and
    /// removes the records of sessions and retained topics that are gone.
    /// One transaction, committed with an fsync; when nothing changed,
    /// nothing is written at all (an idle broker with 100,000 retained
    /// messages writes nothing, issue 14).
    ///
    /// With `--durability batched` the changes are copied under the
    /// router's gate, so the commit is a consistent cut of the broker.
    ///
    /// A failed write puts the changes back to be written by the next save,
    /// and makes the next save reopen the file first: nothing changed
    /// before a failure is lost once the disk takes writes again.
    pub fn save(&self, router: &Router) -> Result<Saved, StoreError> {
        let mut guard = lock(&self.db);
        let mut wal = lock(&self.wal);
        if guard.is_none() && wal.is_none() {
            *guard = Some((self.opener)(&self.path).map_err(|e| self.db_err(e))?);
        }
        let mut written = lock(&self.written);
        let now = std::time::SystemTime::now();
        // Under the gate only copies (reference counts, no payload bytes),
        // and of each queue only what the file lacks, so connections wait
        // as little as possible; encoding comes after.
        let (changed, sessions, retained) = {
            let _cut = router.live_flows().then(|| router.gate_exclusive());
            let mut changed = router.take_changes();
            changed.sessions.extend(written.stale.drain(..));
            let sessions: Vec<(Arc<str>, Option<crate::router::StoredSession>)> = changed
                .sessions
                .iter()
                .map(|id| {
                    let from = written.queue_end(id);
                    (Arc::clone(id), router.session_for_store(id, now, from))
                })
                .collect();
            let retained: Vec<(mqtt_codec::topic::TopicName, Option<mqtt_codec::Message>)> =
                changed
                    .retained
                    .iter()
                    .map(|t| (t.clone(), router.retained_message(t)))
                    .collect();
            (changed, sessions, retained)
        };
        let sessions: Vec<(Arc<str>, Plan)> = sessions
            .into_iter()
            .map(|(id, stored)| {
                let plan = written.plan(&id, stored.as_ref());
                (id, plan)
            })
            .collect();
        let retained: Vec<(String, Option<Vec<u8>>)> = retained
            .into_iter()
            .map(|(t, m)| {
                (
                    t.as_str().to_owned(),
                    m.map(|m| record::encode_message_record(&m)),
                )
            })
            .collect();
        if changed.is_empty() {
            return Ok(Saved::default());
        }
        let result = match wal.as_mut() {
            Some(w) => self.log(w, &sessions, &retained),
            None => self.write(guard.as_ref().expect("opened above"), &sessions, &retained),
        };
        let saved = match result {
            Ok(saved) => saved,
            Err(e) => {
                router.restore_changes(changed);
                if wal.is_none() {
                    *guard = None;
                }
                return Err(e);
            }
        };
        for (id, plan) in sessions {
            written.committed(id, plan);
        }
        drop(written);
        if let Some(w) = wal.as_mut()
            && w.len() >= w.checkpoint_due
        {
            // What the log holds is on disk already: a checkpoint that
            // fails is tried again once the log has grown as much again.
            match self.checkpoint_into(&mut guard, w) {
                Ok(()) => {}
                Err(e) => {
                    router
                        .stats()
                        .store_write_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(error = %e, "writing the write-ahead log into the store failed; the log keeps every change and grows until it works");
                    w.checkpoint_due = w.len() + wal::CHECKPOINT_BYTES;
                }
            }
        }
        Ok(saved)
    }

    /// Appends the changes to the write-ahead log as one record.
    fn log(
        &self,
        wal: &mut Wal,
        sessions: &[(Arc<str>, Plan)],
        retained: &[(String, Option<Vec<u8>>)],
    ) -> Result<Saved, StoreError> {
        let mut ops = Vec::new();
        let saved = plan_ops(sessions, retained, |op| {
            op.encode(&mut ops);
            Ok::<bool, std::convert::Infallible>(true)
        })
        .unwrap_or_else(|never| match never {});
        wal.append(&ops).map_err(|e| self.wal_err(e))?;
        Ok(saved)
    }

    fn write(
        &self,
        db: &Database,
        sessions: &[(Arc<str>, Plan)],
        retained: &[(String, Option<Vec<u8>>)],
    ) -> Result<Saved, StoreError> {
        let tx = db.begin_write().map_err(|e| self.db_err(e))?;
        let saved = {
            let mut tables = Tables::open(&tx).map_err(|e| self.db_err(e))?;
            plan_ops(sessions, retained, |op| tables.apply(op)).map_err(|e| self.db_err(e))?
        };
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(saved)
    }
}

/// The changes of one save as [`Op`]s, in the order they apply, handed to
/// `apply` (which says whether each found something to write or remove);
/// returns what was written.
fn plan_ops<E>(
    sessions: &[(Arc<str>, Plan)],
    retained: &[(String, Option<Vec<u8>>)],
    mut apply: impl FnMut(Op<'_>) -> Result<bool, E>,
) -> Result<Saved, E> {
    let mut saved = Saved::default();
    for (id, plan) in sessions {
        let id: &str = id;
        if plan.anew() {
            // Whatever the file held of this client's messages goes: the
            // session is gone, or written whole from scratch.
            apply(Op::ClearChunks(id))?;
        }
        if let Some(bytes) = plan.record() {
            apply(Op::PutSession(id, bytes))?;
            saved.sessions += 1;
        } else if plan.is_removal() && apply(Op::RemoveSession(id))? {
            saved.removed += 1;
        }
        if let Some((no, bytes, count)) = plan.chunk() {
            apply(Op::PutChunk(id, no, bytes))?;
            saved.chunks += 1;
            saved.messages += count;
        }
        for &no in plan.delete() {
            if apply(Op::RemoveChunk(id, no))? {
                saved.removed += 1;
            }
        }
    }
    for (topic, record) in retained {
        match record {
            Some(bytes) => {
                apply(Op::PutRetained(topic, bytes))?;
                saved.retained += 1;
            }
            None => {
                if apply(Op::RemoveRetained(topic))? {
                    saved.removed += 1;
                }
            }
        }
    }
    Ok(saved)
}

/// The three tables inside one write transaction.
struct Tables<'tx> {
    sessions: redb::Table<'tx, &'static str, &'static [u8]>,
    messages: redb::Table<'tx, (&'static str, u64), &'static [u8]>,
    retained: redb::Table<'tx, &'static str, &'static [u8]>,
}

impl<'tx> Tables<'tx> {
    fn open(tx: &'tx redb::WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            sessions: tx.open_table(SESSIONS)?,
            messages: tx.open_table(MESSAGES)?,
            retained: tx.open_table(RETAINED)?,
        })
    }

    /// Applies one change; whether it wrote a record or found one to
    /// remove.
    fn apply(&mut self, op: Op<'_>) -> Result<bool, redb::Error> {
        Ok(match op {
            Op::PutSession(id, bytes) => {
                self.sessions.insert(id, bytes)?;
                true
            }
            Op::RemoveSession(id) => self.sessions.remove(id)?.is_some(),
            Op::ClearChunks(id) => {
                self.messages
                    .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
                true
            }
            Op::PutChunk(id, no, bytes) => {
                self.messages.insert((id, no), bytes)?;
                true
            }
            Op::RemoveChunk(id, no) => self.messages.remove((id, no))?.is_some(),
            Op::PutRetained(topic, bytes) => {
                self.retained.insert(topic, bytes)?;
                true
            }
            Op::RemoveRetained(topic) => self.retained.remove(topic)?.is_some(),
        })
    }
}

/// Locks a mutex, carrying on past a poisoned lock: a panic inside redb
/// leaves the handle to be reopened, not the broker stuck.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod tests;
