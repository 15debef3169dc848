//! Persistent sessions and retained messages in `--data-dir`, kept in redb.
//!
//! redb is a pure-Rust embedded key-value store with ACID transactions and
//! copy-on-write pages: a save is one transaction, so a crash mid-save
//! leaves the previous state intact, and there is no C library to build.
//!
//! Two tables, both keyed by text: `sessions` (client id → session record)
//! and `retained` (topic → message). Values use a small versioned binary
//! layout written and read here (module `record`). The state is saved every
//! `--autosave-interval` seconds and at shutdown, as mosquitto does with
//! its autosave; a crash loses what changed since the last save. The
//! sessions of connected clients are saved too (their subscriptions and
//! queues; see [`Store::save`]), so they survive a crash after a save.

mod damage;
mod private;
mod record;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::router::Router;

const SESSIONS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("sessions");
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
    /// A record cannot be decoded.
    #[error(
        "store {path}: {table} record {key:?} is corrupt: {reason}; to start anyway with an empty store, move it aside: mv {path} {path}.damaged",
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

/// The open store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// A directory or file created here is private to the broker's user
    /// (0700 and 0600 on Unix, as mosquitto keeps `mosquitto.db`): the store
    /// holds every retained message and queued payload. An existing file
    /// with looser permissions is left as it is, with a warning.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        private::create_dir(dir).map_err(|source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(STORE_FILE);
        private::create_or_check_file(&path).map_err(|e| StoreError::Db {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        let db = Database::create(&path).map_err(|e| StoreError::Db {
            path: path.clone(),
            source: Box::new(e.into()),
        })?;
        Ok(Self { db, path })
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
        let tx = self.db.begin_read().map_err(|e| self.db_err(e))?;
        let corrupt = |table, key: &str, reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            reason,
        };
        let mut sessions = 0;
        let now = std::time::SystemTime::now();
        match tx.open_table(SESSIONS) {
            Ok(table) => {
                for item in table.iter().map_err(|e| self.db_err(e))? {
                    let (k, v) = item.map_err(|e| self.db_err(e))?;
                    let parked = record::decode_session(k.value(), v.value(), max_inflight, now)
                        .map_err(|r| corrupt("sessions", k.value(), r))?;
                    router.restore_session(parked);
                    sessions += 1;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(self.db_err(e)),
        }
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

    /// Saves the router's persistent state in one transaction: every
    /// persistent session with its queue, and the retained messages.
    /// Sessions a connection holds right now are written as the router
    /// knows them (subscriptions and queue; their in-flight window is
    /// written when the connection ends and parks them, as at shutdown),
    /// so a kill after a save keeps a connected client's session (issue
    /// 14). Records of sessions that no longer exist are removed.
    pub fn save(&self, router: &Router) -> Result<(), StoreError> {
        let crate::router::StoredSessions { parked } = router.sessions_for_store();
        let retained = router.retained_messages();
        let tx = self.db.begin_write().map_err(|e| self.db_err(e))?;
        {
            let mut table = tx.open_table(SESSIONS).map_err(|e| self.db_err(e))?;
            let keep: HashSet<Arc<str>> = parked
                .iter()
                .map(|p| Arc::clone(p.session.client_id()))
                .collect();
            table
                .retain(|k, _| keep.contains(k))
                .map_err(|e| self.db_err(e))?;
            for p in &parked {
                let bytes = record::encode_session(p);
                table
                    .insert(&**p.session.client_id(), bytes.as_slice())
                    .map_err(|e| self.db_err(e))?;
            }
        }
        {
            tx.delete_table(RETAINED).map_err(|e| self.db_err(e))?;
            let mut table = tx.open_table(RETAINED).map_err(|e| self.db_err(e))?;
            for m in &retained {
                let bytes = record::encode_message_record(m);
                table
                    .insert(m.topic.as_str(), bytes.as_slice())
                    .map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod tests;
