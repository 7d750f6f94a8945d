//! The simulator's result store: a map that outlives a crashed master, with explicit
//! crash semantics.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use futures::FutureExt;

use super::{Key, ResultMeta, ResultStore, StoreError, StoreErrorKind, StoredResult};
use crate::process::Process;

/// Virtual time a [`MemoryStore`] write takes to commit, by default: long enough that a
/// crash can fall between a result's arrival and its commit.
pub const MEMORY_COMMIT_DELAY_DEFAULT: Duration = Duration::from_millis(2);

/// The "disk" of [`MemoryStore`]s: what has been committed. It is shared by handle and
/// lives outside any node, so it survives a master's crash; a test keeps one to resume
/// from and to inspect.
#[derive(Clone, Default, Debug)]
pub struct MemoryDisk {
    committed: Rc<RefCell<BTreeMap<Key, StoredResult>>>,
    /// Writes of a key that was committed already (each one is a result computed twice).
    duplicates: Rc<Cell<u64>>,
}

impl MemoryDisk {
    /// An empty disk.
    pub fn new() -> MemoryDisk {
        MemoryDisk::default()
    }

    /// The committed results, in key order.
    pub fn results(&self) -> BTreeMap<Key, StoredResult> {
        self.committed.borrow().clone()
    }

    /// How many results are committed.
    pub fn len(&self) -> usize {
        self.committed.borrow().len()
    }

    /// Whether nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.committed.borrow().is_empty()
    }

    /// How many writes found their key committed already.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.get()
    }

    /// A new disk holding a copy of this one's results (a resumed run's store: as
    /// [`SqliteStore`](super::SqliteStore), it copies rather than shares, so the old
    /// run stays as it was).
    pub fn copy(&self) -> MemoryDisk {
        MemoryDisk {
            committed: Rc::new(RefCell::new(self.results())),
            duplicates: Rc::default(),
        }
    }
}

/// A [`ResultStore`] in memory, for the simulator.
///
/// Crash semantics: [`put`](ResultStore::put) waits the commit delay (virtual time) and
/// then commits the whole result in one step, before it resolves (a slow disk, where
/// [`SqliteStore`](super::SqliteStore) queues and commits behind the caller's back). If the master's node crashes (or the
/// caller is killed) before that step, the write is lost entirely; after it, the result
/// is on the [`MemoryDisk`] for good. A write is never half-done. Reads see committed
/// results only.
///
/// ```
/// use hyperion::store::{MemoryDisk, MemoryStore};
/// let disk = MemoryDisk::new();
/// let store = MemoryStore::new(disk.clone(), "v1");
/// let resumed = MemoryStore::new(disk.copy(), "v1"); // a resumed run: a copy
/// ```
pub struct MemoryStore {
    disk: MemoryDisk,
    version: String,
    commit_delay: Duration,
    failing: Rc<Cell<bool>>,
}

impl MemoryStore {
    /// A store on `disk` for a program of version `version`.
    pub fn new(disk: MemoryDisk, version: &str) -> MemoryStore {
        MemoryStore {
            disk,
            version: version.to_string(),
            commit_delay: MEMORY_COMMIT_DELAY_DEFAULT,
            failing: Rc::default(),
        }
    }

    /// Sets the virtual time a write takes to commit.
    ///
    /// ```
    /// use hyperion::store::{MemoryDisk, MemoryStore};
    /// let store = MemoryStore::new(MemoryDisk::new(), "v1")
    ///     .commit_delay(std::time::Duration::from_millis(10));
    /// ```
    pub fn commit_delay(mut self, delay: Duration) -> MemoryStore {
        self.commit_delay = delay;
        self
    }

    /// Makes every later write fail, as a full disk would (true), or succeed again.
    pub fn fail_writes(&self, failing: bool) {
        self.failing.set(failing);
    }

    /// The disk.
    pub fn disk(&self) -> &MemoryDisk {
        &self.disk
    }
}

impl ResultStore for MemoryStore {
    fn version(&self) -> &str {
        &self.version
    }

    fn location(&self) -> PathBuf {
        PathBuf::from("memory")
    }

    fn get<'a>(
        &'a self,
        _p: &'a Process,
        key: Key,
    ) -> LocalBoxFuture<'a, Result<Option<StoredResult>, StoreError>> {
        let found = self.disk.committed.borrow().get(&key).cloned();
        async move { Ok(found) }.boxed_local()
    }

    fn put<'a>(
        &'a self,
        p: &'a Process,
        key: Key,
        value: Vec<u8>,
        meta: ResultMeta,
    ) -> LocalBoxFuture<'a, Result<(), StoreError>> {
        async move {
            // A crash during this wait loses the write: nothing is on the disk yet.
            p.sleep(self.commit_delay).await;
            if self.failing.get() {
                return Err(StoreError {
                    path: PathBuf::from("memory"),
                    kind: StoreErrorKind::Write("no space left on the simulated disk".into()),
                });
            }
            // The commit: one step, so it happens entirely or (crash before) not at all.
            let disk = &self.disk;
            let mut committed = disk.committed.borrow_mut();
            if committed.contains_key(&key) {
                disk.duplicates.set(disk.duplicates.get() + 1);
                return Ok(());
            }
            let stored_at = p.now();
            committed.insert(
                key,
                StoredResult {
                    value,
                    meta,
                    stored_at,
                },
            );
            Ok(())
        }
        .boxed_local()
    }

    /// Every write was committed before its `put` resolved: nothing to wait for.
    fn flush<'a>(&'a self, _p: &'a Process) -> LocalBoxFuture<'a, Result<(), StoreError>> {
        async { Ok(()) }.boxed_local()
    }

    fn count<'a>(&'a self, _p: &'a Process) -> LocalBoxFuture<'a, Result<u64, StoreError>> {
        let count = self.disk.len() as u64;
        async move { Ok(count) }.boxed_local()
    }
}
