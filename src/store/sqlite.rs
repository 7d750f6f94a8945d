//! The real world's result store: one SQLite file per run, written on a thread of its
//! own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{Key, ResultMeta, ResultStore, RunLock, StoreError, StoreErrorKind, StoredResult};
use crate::process::Process;

/// The store's file name in a run directory.
pub const STORE_FILE_NAME: &str = "results.db";

/// The most requests the store's thread handles in one transaction. Under load, results
/// that arrive while a commit runs are committed together in the next one (group
/// commit): there is no added delay, and a batch is bounded so that one commit never
/// holds many results in flight.
pub const STORE_BATCH_MAX: usize = 512;

/// How long the store's thread lets writes gather before it commits them: it sleeps
/// through this window after a write rather than wake for each one (a wake between
/// threads costs the master tens of microseconds per result on a loaded machine, more
/// than the commit itself), and one commit then holds them all. A crash may lose the
/// results of this window and of the commit in progress. A read or a flush ends the
/// window at once: nobody waits for it.
pub const STORE_COMMIT_DELAY_MAX: Duration = Duration::from_millis(2);

/// Recorded in every store: a file without it is not ours.
const FORMAT: &str = "hyperion result store 1";

/// How long SQLite waits for another connection's lock (a user's `sqlite3` reading the
/// file) before a statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the node's processes ask of the store's thread.
enum Request {
    Get(
        Key,
        oneshot::Sender<Result<Option<StoredResult>, StoreErrorKind>>,
    ),
    /// Answered by no one: a failed commit is recorded for the next request to report.
    Put(Key, Vec<u8>, ResultMeta),
    Count(oneshot::Sender<Result<u64, StoreErrorKind>>),
    /// Answered once everything sent before it is committed.
    Flush(oneshot::Sender<Result<(), StoreErrorKind>>),
    /// Caps the file at its current size, so that the next write fails as on a full disk.
    FillDisk(oneshot::Sender<Result<(), StoreErrorKind>>),
}

/// A [`ResultStore`] in a SQLite file (real world only).
///
/// The file is in WAL mode with `synchronous=NORMAL`: a committed result survives the
/// death of the master's process (`kill -9` included); a power loss may lose the last
/// commits. Every read and write runs on the store's own thread, in order, so that the
/// node's thread never waits on the disk. A `put` resolves as soon as the write is
/// queued, so that a caller never waits for a commit: the thread commits what is queued
/// within [`STORE_COMMIT_DELAY_MAX`] of the first write of a batch (the results that
/// arrive meanwhile go in the same commit), so a result is on disk after at most that
/// delay and two commits' time, and
/// [`flush`](ResultStore::flush) waits for it. Reads see every write queued before them.
/// A failed commit fails every later request with its error. The store holds a
/// [`RunLock`] on its file for its whole life (and, when it resumed, on the file it
/// resumed from), so no second master can write to or resume from it meanwhile.
///
/// The store keeps the set of its keys in memory (about 50 bytes a result), so that
/// looking up a result that is not there, as every new call does, is answered at once,
/// without a trip to the store's thread.
///
/// The file is plain SQLite: `sqlite3 results.db 'select label, worker, attempts from
/// results'` reads it. Open it before the node runs (or from
/// [`Process::run_blocking`]): opening touches the disk on the caller's thread.
///
/// ```
/// use hyperion::store::SqliteStore;
/// let dir = std::env::temp_dir().join(format!("hyperion-sqlite-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = SqliteStore::open_run(&dir, "scan-v1", None).unwrap();
/// assert_eq!(store.path(), dir.join("results.db"));
/// # drop(store); std::fs::remove_dir_all(dir).unwrap();
/// ```
pub struct SqliteStore {
    path: PathBuf,
    version: String,
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    /// Every key stored or queued (read at open, added as puts are queued).
    keys: Arc<Mutex<BTreeSet<Key>>>,
    /// The first failed commit's error, set by the store's thread.
    failed: Arc<Mutex<Option<String>>>,
    _locks: Vec<RunLock>,
}

impl SqliteStore {
    /// Opens the store at `path` for a program of version `version`, creating it if the
    /// file does not exist. Refused if another master holds it
    /// ([`StoreErrorKind::Locked`]), if the file is not a database or is corrupt
    /// ([`StoreErrorKind::Open`]), is another program's database
    /// ([`StoreErrorKind::Foreign`]) or holds results of another version
    /// ([`StoreErrorKind::Version`]).
    pub fn open(path: &Path, version: &str) -> Result<SqliteStore, StoreError> {
        let lock = RunLock::acquire(path)?;
        let connection = Connection::open(path).map_err(|err| open_error(path, err))?;
        prepare(&connection, path, version, true)?;
        let keys = read_keys(&connection).map_err(|err| StoreError {
            path: path.to_path_buf(),
            kind: StoreErrorKind::Read(err.to_string()),
        })?;
        let (requests, queue) = mpsc::channel();
        let thread_path = path.to_path_buf();
        let failed: Arc<Mutex<Option<String>>> = Arc::default();
        let thread_failed = failed.clone();
        let thread = std::thread::Builder::new() // real-world only
            .name("hyperion-store".into())
            .spawn(move || serve(connection, &thread_path, queue, &thread_failed))
            .map_err(|err| StoreError {
                path: path.to_path_buf(),
                kind: StoreErrorKind::Open(format!("cannot start the store's thread: {err}")),
            })?;
        tracing::info!(path = %path.display(), version, "result store open");
        Ok(SqliteStore {
            path: path.to_path_buf(),
            version: version.to_string(),
            requests: Some(requests),
            thread: Some(thread),
            keys: Arc::new(Mutex::new(keys)),
            failed,
            _locks: vec![lock],
        })
    }

    /// Opens the store of the run in `run_dir` ([`STORE_FILE_NAME`] there). With
    /// `resume_from` (another run's directory, or a store file), the new store starts
    /// as a copy of that run's results, and that run stays locked while this store is
    /// open: a second master resuming it at the same time is refused.
    ///
    /// Why a copy, not the old file attached read-only: the new run is then whole by
    /// itself (it can be resumed, moved or deleted without its ancestors, and a chain of
    /// resumes never grows into a chain of attached files), the old run is left exactly
    /// as it was, and lookups read one file. The copy is made through SQLite (`VACUUM
    /// INTO`), which also takes the results a killed master left in the old file's
    /// write-ahead log, where a plain file copy would miss them. Its cost, a pass over
    /// the old file, is paid once per resume.
    pub fn open_run(
        run_dir: &Path,
        version: &str,
        resume_from: Option<&Path>,
    ) -> Result<SqliteStore, StoreError> {
        let path = run_dir.join(STORE_FILE_NAME);
        let Some(from) = resume_from else {
            return SqliteStore::open(&path, version);
        };
        let from = if from.is_dir() {
            from.join(STORE_FILE_NAME)
        } else {
            from.to_path_buf()
        };
        if !from.is_file() {
            return Err(StoreError {
                path: from,
                kind: StoreErrorKind::Open("no such file: is it a run directory?".into()),
            });
        }
        let from_lock = RunLock::acquire(&from)?;
        copy_store(&from, &path, version)?;
        let mut store = SqliteStore::open(&path, version)?;
        tracing::info!(from = %from.display(), to = %path.display(), "resumed from an earlier run's results");
        store._locks.push(from_lock);
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the next write fail as on a full disk (the file may not grow any more).
    #[doc(hidden)]
    pub fn fill_disk_for_testing(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::FillDisk(reply))?;
        futures::executor::block_on(answer)
            .map_err(|_| self.error(StoreErrorKind::Closed))?
            .map_err(|kind| self.error(kind))
    }

    /// The error of an earlier failed commit, if any.
    fn failure(&self) -> Result<(), StoreError> {
        match &*self.failed.lock().expect("no panics holding it") {
            None => Ok(()),
            Some(why) => Err(self.error(StoreErrorKind::Write(why.clone()))),
        }
    }

    fn error(&self, kind: StoreErrorKind) -> StoreError {
        StoreError {
            path: self.path.clone(),
            kind,
        }
    }

    fn send(&self, request: Request) -> Result<(), StoreError> {
        let write = matches!(request, Request::Put(..));
        let requests = self.requests.as_ref().expect("open until dropped");
        requests
            .send(request)
            .map_err(|_| self.error(StoreErrorKind::Closed))?;
        if !write {
            // Someone waits for this answer: end the thread's write window now.
            if let Some(thread) = &self.thread {
                thread.thread().unpark();
            }
        }
        Ok(())
    }

    /// Sends `request` (made with the reply sender) and waits for the store's answer.
    fn ask<'a, T: 'a>(
        &'a self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreErrorKind>>) -> Request,
    ) -> LocalBoxFuture<'a, Result<T, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self.failure().and_then(|()| self.send(request(reply)));
        async move {
            sent?;
            answer
                .await
                .map_err(|_| self.error(StoreErrorKind::Closed))?
                .map_err(|kind| self.error(kind))
        }
        .boxed_local()
    }
}

impl Drop for SqliteStore {
    /// Closes the store once every request sent to it is answered (its thread commits
    /// what is queued, then checkpoints the log into the file).
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl ResultStore for SqliteStore {
    fn version(&self) -> &str {
        &self.version
    }

    fn location(&self) -> PathBuf {
        self.path.clone()
    }

    fn get<'a>(
        &'a self,
        _p: &'a Process,
        key: Key,
    ) -> LocalBoxFuture<'a, Result<Option<StoredResult>, StoreError>> {
        if !self
            .keys
            .lock()
            .expect("no panics holding it")
            .contains(&key)
        {
            return async { Ok(None) }.boxed_local();
        }
        self.ask(move |reply| Request::Get(key, reply))
    }

    fn put<'a>(
        &'a self,
        _p: &'a Process,
        key: Key,
        value: Vec<u8>,
        meta: ResultMeta,
    ) -> LocalBoxFuture<'a, Result<(), StoreError>> {
        let queued = self.failure().and_then(|()| {
            // Known before it is committed: reads on the thread come after the write.
            self.keys.lock().expect("no panics holding it").insert(key);
            self.send(Request::Put(key, value, meta))
        });
        async move { queued }.boxed_local()
    }

    fn flush<'a>(&'a self, _p: &'a Process) -> LocalBoxFuture<'a, Result<(), StoreError>> {
        self.ask(Request::Flush)
    }

    fn count<'a>(&'a self, _p: &'a Process) -> LocalBoxFuture<'a, Result<u64, StoreError>> {
        self.ask(Request::Count)
    }
}

fn open_error(path: &Path, err: rusqlite::Error) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        kind: StoreErrorKind::Open(err.to_string()),
    }
}

/// Checks that the database at `path` is a store of `version` (making it one if it is
/// empty and `create`), and sets the journal mode. Another program's file is not
/// touched: it is checked before anything is written.
fn prepare(
    connection: &Connection,
    path: &Path,
    version: &str,
    create: bool,
) -> Result<(), StoreError> {
    let error = |kind| StoreError {
        path: path.to_path_buf(),
        kind,
    };
    let open = |err: rusqlite::Error| error(StoreErrorKind::Open(err.to_string()));
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
    // Reading the schema is the first read of the file: a corrupt or non-database file
    // fails here ("file is not a database").
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(open)?;
    if tables.is_empty() {
        if !create {
            return Err(error(StoreErrorKind::Foreign("it is empty".into())));
        }
        set_journal(connection).map_err(open)?;
        connection
            .execute_batch(
                "BEGIN;
                 CREATE TABLE hyperion_store (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE results (
                     key BLOB PRIMARY KEY,
                     label TEXT NOT NULL,
                     value BLOB NOT NULL,
                     worker TEXT NOT NULL,
                     duration_us INTEGER NOT NULL,
                     attempts INTEGER NOT NULL,
                     stored_at_ms INTEGER NOT NULL
                 );
                 COMMIT;",
            )
            .map_err(open)?;
        connection
            .execute(
                "INSERT INTO hyperion_store (name, value) VALUES ('format', ?1), ('version', ?2)",
                params![FORMAT, version],
            )
            .map_err(|err| error(StoreErrorKind::Write(err.to_string())))?;
        return Ok(());
    }
    if !tables.iter().any(|t| t == "hyperion_store") || !tables.iter().any(|t| t == "results") {
        return Err(error(StoreErrorKind::Foreign(format!(
            "its tables are {tables:?}"
        ))));
    }
    let setting = |name: &str| -> Result<Option<String>, StoreError> {
        connection
            .query_row(
                "SELECT value FROM hyperion_store WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| error(StoreErrorKind::Foreign(err.to_string())))
    };
    let format = setting("format")?;
    if format.as_deref() != Some(FORMAT) {
        return Err(error(StoreErrorKind::Foreign(format!(
            "its format is {format:?}, expected {FORMAT:?}"
        ))));
    }
    let found = setting("version")?.unwrap_or_default();
    if found != version {
        return Err(error(StoreErrorKind::Version {
            found,
            expected: version.to_string(),
        }));
    }
    set_journal(connection).map_err(open)
}

fn set_journal(connection: &Connection) -> rusqlite::Result<()> {
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "the result store could not use WAL mode");
    }
    // NORMAL: a commit is safe from a process crash without an fsync per commit. A
    // 64 MiB page cache keeps the key index in memory for stores of ~10^5 results.
    connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;")
}

/// Copies the store at `from` (checked to be a store of `version`) to `to`, which must
/// not exist.
fn copy_store(from: &Path, to: &Path, version: &str) -> Result<(), StoreError> {
    // Not created if missing, and never made into a store: it must be one.
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| open_error(from, err))?;
    prepare(&source, from, version, false)?;
    let target = to.to_str().ok_or_else(|| StoreError {
        path: to.to_path_buf(),
        kind: StoreErrorKind::Write("the path is not UTF-8".into()),
    })?;
    source
        .execute("VACUUM INTO ?1", [target])
        .map_err(|err| StoreError {
            path: to.to_path_buf(),
            kind: StoreErrorKind::Write(format!("copying {}: {err}", from.display())),
        })?;
    Ok(())
}

/// The store's thread: answers requests in order, a batch per transaction.
fn serve(
    connection: Connection,
    path: &Path,
    queue: mpsc::Receiver<Request>,
    failed: &Mutex<Option<String>>,
) {
    let mut batch = Vec::with_capacity(STORE_BATCH_MAX);
    while let Ok(first) = queue.recv() {
        // A write waits for company: the thread sleeps through the window rather than
        // wake for every write that arrives in it. Anything else is answered now: its
        // sender unparks the thread, ending the window early.
        if matches!(first, Request::Put(..)) {
            std::thread::park_timeout(STORE_COMMIT_DELAY_MAX); // real-world only
        }
        batch.push(first);
        while batch.len() < STORE_BATCH_MAX {
            match queue.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        run_batch(&connection, path, &mut batch, failed);
    }
    if let Err((_, err)) = connection.close() {
        tracing::warn!(path = %path.display(), %err, "closing the result store failed");
    }
}

/// What one request found, before the transaction's fate is known.
enum Found {
    Result(Option<StoredResult>),
    Done,
    Count(u64),
}

/// Runs `batch` in one transaction and answers every request once it is committed (a
/// failed commit fails every request of the batch: none of its writes happened; and,
/// if it held writes, every later request).
fn run_batch(
    connection: &Connection,
    path: &Path,
    batch: &mut Vec<Request>,
    failed: &Mutex<Option<String>>,
) {
    let outcome = transaction(connection, batch);
    if let Err(err) = &outcome {
        tracing::error!(path = %path.display(), %err, "a result store transaction failed");
        if batch.iter().any(|r| matches!(r, Request::Put(..))) {
            failed
                .lock()
                .expect("no panics holding it")
                .get_or_insert_with(|| err.to_string());
        }
    }
    for (index, request) in batch.drain(..).enumerate() {
        let found = match &outcome {
            Ok(found) => Ok(&found[index]),
            Err(err) => Err(err.to_string()),
        };
        match request {
            Request::Get(_, reply) => {
                let _ = reply.send(match found {
                    Ok(Found::Result(result)) => Ok(result.clone()),
                    Ok(_) => unreachable!("a get finds a result"),
                    Err(why) => Err(StoreErrorKind::Read(why)),
                });
            }
            Request::Put(..) => {}
            Request::Flush(reply) | Request::FillDisk(reply) => {
                let _ = reply.send(match found {
                    Ok(_) => Ok(()),
                    Err(why) => Err(StoreErrorKind::Write(why)),
                });
            }
            Request::Count(reply) => {
                let _ = reply.send(match found {
                    Ok(Found::Count(count)) => Ok(*count),
                    Ok(_) => unreachable!("a count counts"),
                    Err(why) => Err(StoreErrorKind::Read(why)),
                });
            }
        }
    }
}

fn transaction(connection: &Connection, batch: &[Request]) -> rusqlite::Result<Vec<Found>> {
    let transaction = connection.unchecked_transaction()?;
    let mut found = Vec::with_capacity(batch.len());
    for request in batch {
        found.push(match request {
            Request::Get(key, _) => Found::Result(read(&transaction, key)?),
            Request::Put(key, value, meta) => {
                let stored_at = SystemTime::now() // real-world only
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let inserted = transaction
                    .prepare_cached(
                        "INSERT OR IGNORE INTO results
                         (key, label, value, worker, duration_us, attempts, stored_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        &key.as_bytes()[..],
                        meta.label,
                        value,
                        meta.worker,
                        meta.duration.as_micros() as i64,
                        meta.attempts,
                        stored_at.as_millis() as i64,
                    ])?;
                if inserted == 0 {
                    tracing::warn!(%key, label = meta.label, "a result was stored already; kept the first");
                }
                Found::Done
            }
            Request::Flush(_) => Found::Done,
            Request::Count(_) => Found::Count(transaction.query_row(
                "SELECT count(*) FROM results",
                [],
                |row| row.get::<_, i64>(0),
            )? as u64),
            Request::FillDisk(_) => {
                let pages: i64 = transaction.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                transaction
                    .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
                Found::Done
            }
        });
    }
    transaction.commit()?;
    Ok(found)
}

fn read_keys(connection: &Connection) -> rusqlite::Result<BTreeSet<Key>> {
    let mut statement = connection.prepare("SELECT key FROM results")?;
    let keys = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
    let mut set = BTreeSet::new();
    for key in keys {
        // A key of another length was not written by us: it can never be asked for.
        if let Ok(bytes) = <[u8; 32]>::try_from(key?.as_slice()) {
            set.insert(Key::from_bytes(bytes));
        }
    }
    Ok(set)
}

fn read(connection: &Connection, key: &Key) -> rusqlite::Result<Option<StoredResult>> {
    connection
        .prepare_cached(
            "SELECT value, label, worker, duration_us, attempts, stored_at_ms
             FROM results WHERE key = ?1",
        )?
        .query_row([&key.as_bytes()[..]], |row| {
            Ok(StoredResult {
                value: row.get(0)?,
                meta: ResultMeta {
                    label: row.get(1)?,
                    worker: row.get(2)?,
                    duration: Duration::from_micros(row.get::<_, i64>(3)?.max(0) as u64),
                    attempts: row.get(4)?,
                },
                stored_at: Duration::from_millis(row.get::<_, i64>(5)?.max(0) as u64),
            })
        })
        .optional()
}
