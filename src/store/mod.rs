//! Results that survive the master: a store of finished results keyed by what was
//! computed (hyperion's `memoizeWithMap` over a SQLite database per run).
//!
//! A [`ResultStore`] maps a [`Key`] (a content hash of a closure's label, its encoded
//! argument and a version tag chosen by the program) to the encoded result and a little
//! metadata ([`ResultMeta`]: which worker, how long, how many attempts, and when the
//! store committed it). [`Memoized`](crate::remote::Memoized) puts it in front of remote
//! calls: a call whose key is stored returns at once, a missing one runs once (however
//! many processes ask for it at the same time) and is stored as soon as it returns.
//!
//! Two implementations:
//! - [`SqliteStore`], the real world's: one SQLite file per run (`results.db` in the
//!   run directory), in WAL mode, written on a thread of its own so that the node's
//!   thread never waits on the disk. A result is committed as soon as the thread is
//!   free, so a master killed at any moment loses only results still in flight. A new run can
//!   start from an old run's results (resume): the old database is copied, see
//!   [`SqliteStore::open_run`].
//! - [`MemoryStore`], the simulator's: a map that outlives a crashed master, whose crash
//!   semantics are explicit: a write is committed in one step after a virtual commit
//!   delay, or lost if the master dies before that step; never half-written.
//!
//! What the store guarantees: a key is written at most once (the first result stored
//! stays; a second `put` of the same key is ignored); writes are committed in the order
//! they were made, each whole or not at all; once [`ResultStore::flush`] resolves, every
//! earlier write survives the death of the master's process; a failed write makes the
//! store fail every later request with an error naming its file. What it does not: a
//! `put` that returned may still be in flight (a crash then loses it, and a resumed run
//! computes it again); [`SqliteStore`] commits with SQLite's `synchronous=NORMAL`, so a
//! power loss (not a process crash) may lose the last commits.

mod key;
mod lock;
mod memory;
#[cfg(feature = "cluster")]
mod resume;
#[cfg(feature = "cluster")]
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::LocalBoxFuture;

use crate::process::Process;

pub use key::Key;
pub use lock::RunLock;
pub use memory::{MemoryDisk, MemoryStore, MEMORY_COMMIT_DELAY_DEFAULT};
#[cfg(feature = "cluster")]
pub use resume::{take_resume_flag, Resume};
#[cfg(feature = "cluster")]
pub use sqlite::{SqliteStore, STORE_BATCH_MAX, STORE_COMMIT_DELAY_MAX, STORE_FILE_NAME};

/// What the store keeps beside a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultMeta {
    /// The closure's label (for people reading the database; the key already covers it).
    pub label: String,
    /// The worker that computed it (its node).
    pub worker: String,
    /// How long the call took, seen from the master.
    pub duration: Duration,
    /// How many times the master started the call before it succeeded (1: first try).
    pub attempts: u32,
}

/// A result read back from a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    /// The encoded result.
    pub value: Vec<u8>,
    /// What was recorded with it.
    pub meta: ResultMeta,
    /// When the store committed it: time since the UNIX epoch for [`SqliteStore`], the
    /// master's virtual time for [`MemoryStore`].
    pub stored_at: Duration,
}

/// Why a store could not do what was asked. Every error names the store's file (or
/// `memory` for a [`MemoryStore`]), so that a run's error says where to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    /// The database file (or other location) concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: StoreErrorKind,
}

/// The ways a store can fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The file could not be opened or read as a database (missing, unreadable,
    /// corrupt: SQLite's text says which).
    Open(String),
    /// The file is a database, but not a hyperion result store (another program's).
    Foreign(String),
    /// The store's results were made under another version tag: the program changed,
    /// and reusing them would be wrong.
    Version {
        /// The tag recorded in the store.
        found: String,
        /// The tag of this program.
        expected: String,
    },
    /// Another master holds this run (it is running, or resuming from it).
    Locked,
    /// A result could not be written (disk full, read-only file system, ...).
    Write(String),
    /// A result could not be read.
    Read(String),
    /// A stored value does not decode as the type asked for: the result type changed
    /// without a new version tag.
    Decode(String),
    /// The store's thread is gone (the store was closed).
    Closed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            StoreErrorKind::Open(why) => write!(f, "cannot open the result store {path}: {why}"),
            StoreErrorKind::Foreign(why) => {
                write!(f, "{path} is not a hyperion result store: {why}")
            }
            StoreErrorKind::Version { found, expected } => write!(
                f,
                "the result store {path} holds results of version {found:?}, this program is \
                 version {expected:?}: start a fresh run (without --resume) or use the same version"
            ),
            StoreErrorKind::Locked => write!(
                f,
                "the result store {path} is in use by another master (running, or resuming from it)"
            ),
            StoreErrorKind::Write(why) => {
                write!(f, "cannot write to the result store {path}: {why}")
            }
            StoreErrorKind::Read(why) => write!(f, "cannot read the result store {path}: {why}"),
            StoreErrorKind::Decode(why) => write!(
                f,
                "a result in {path} does not decode ({why}): did the result type change \
                 without a new version tag?"
            ),
            StoreErrorKind::Closed => write!(f, "the result store {path} is closed"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A map from [`Key`] to a stored result, shared by the processes of one master.
///
/// Methods return futures so that an implementation may do its work elsewhere (SQLite
/// on its own thread) or take virtual time (the simulator's commit delay). They are
/// awaited by the calling process (`p`).
pub trait ResultStore {
    /// The program's version tag, part of every key (see [`Key::new`]).
    fn version(&self) -> &str;

    /// Where the store lives, for error messages.
    fn location(&self) -> PathBuf;

    /// The result stored under `key`, if any.
    fn get<'a>(
        &'a self,
        p: &'a Process,
        key: Key,
    ) -> LocalBoxFuture<'a, Result<Option<StoredResult>, StoreError>>;

    /// Stores `value` under `key` (if the key is stored already, the first value stays).
    /// Resolves once the write is accepted: later reads see it, and it is committed
    /// soon, in order ([`flush`](ResultStore::flush) waits for that). An error: this
    /// write or an earlier one failed.
    fn put<'a>(
        &'a self,
        p: &'a Process,
        key: Key,
        value: Vec<u8>,
        meta: ResultMeta,
    ) -> LocalBoxFuture<'a, Result<(), StoreError>>;

    /// Resolves once every write accepted before it is committed, or with the error of
    /// one that failed.
    fn flush<'a>(&'a self, p: &'a Process) -> LocalBoxFuture<'a, Result<(), StoreError>>;

    /// How many results are stored.
    fn count<'a>(&'a self, p: &'a Process) -> LocalBoxFuture<'a, Result<u64, StoreError>>;
}
