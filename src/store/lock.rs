//! The lock that keeps one master per result store.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{StoreError, StoreErrorKind};

/// An exclusive lock on a store file, held by the master writing to it and by a master
/// resuming from it: two masters resuming one run at once would compute the missing
/// results twice, and a master resuming a run whose master still runs would copy a
/// store that is still growing. The second one is refused with
/// [`StoreErrorKind::Locked`].
///
/// It is an advisory `flock` on `<store>.lock`: the kernel releases it when the holder
/// dies, however it dies (`kill -9` included), so a crashed master never leaves a stale
/// lock behind. (Like SQLite's own locks, `flock` may not work across machines on some
/// network file systems; a run directory is meant to be used from one login node.)
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of the store at `store`, or says who holds it.
    ///
    /// ```
    /// use hyperion::store::RunLock;
    /// let dir = std::env::temp_dir().join(format!("hyperion-lock-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let store = dir.join("results.db");
    /// let held = RunLock::acquire(&store).unwrap();
    /// assert!(RunLock::acquire(&store).is_err()); // a second holder is refused
    /// drop(held);
    /// assert!(RunLock::acquire(&store).is_ok());
    /// ```
    pub fn acquire(store: &Path) -> Result<RunLock, StoreError> {
        let path = lock_path(store);
        let error = |kind| StoreError {
            path: store.to_path_buf(),
            kind,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| {
                error(StoreErrorKind::Open(format!(
                    "cannot open its lock {}: {err}",
                    path.display()
                )))
            })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(RunLock { _lock: lock, path }),
            Err((_, Errno::EWOULDBLOCK)) => Err(error(StoreErrorKind::Locked)),
            Err((_, errno)) => Err(error(StoreErrorKind::Open(format!(
                "cannot lock {}: {errno}",
                path.display()
            )))),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<store>.lock`, beside the store.
fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}
