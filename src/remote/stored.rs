//! Remote calls whose results are kept in a [`ResultStore`] (hyperion's
//! `memoizeWithMap`): a call already answered, in this run or in the run this one
//! resumed, is not run again.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::call::{RemoteCall, Runner, RunnerError};
use super::errors::RemoteError;
use super::launcher::WorkerLauncher;
use super::pool::{PoolAnswer, WorkerPool};
use crate::message::{decode, encode, Serializable};
use crate::process::Process;
use crate::store::{Key, ResultMeta, ResultStore, StoreError, StoreErrorKind};

/// Why a stored call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredCallError {
    /// The call ran and failed (the launcher's policy may retry it with a new worker).
    Remote(RemoteError),
    /// The store failed (a write error, a stored value that does not decode): an error
    /// of the run, since results can no longer be kept.
    Store(StoreError),
}

impl fmt::Display for StoredCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredCallError::Remote(err) => err.fmt(f),
            StoredCallError::Store(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for StoredCallError {}

/// Why a stored call run through a [`WorkerPool`] failed
/// ([`Memoized::run_pooled`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PooledCallError {
    /// The pool gave the call up (the launcher's policy, or no worker could start).
    Pool(RunnerError),
    /// The store failed: an error of the run, since results can no longer be kept.
    Store(StoreError),
}

impl fmt::Display for PooledCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PooledCallError::Pool(err) => err.fmt(f),
            PooledCallError::Store(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for PooledCallError {}

impl From<RemoteError> for StoredCallError {
    fn from(err: RemoteError) -> StoredCallError {
        StoredCallError::Remote(err)
    }
}

impl From<StoreError> for StoredCallError {
    fn from(err: StoreError) -> StoredCallError {
        StoredCallError::Store(err)
    }
}

/// Runs [`RemoteCall`]s through a [`ResultStore`]: the call's key (its label, its
/// encoded argument and the store's version tag, see [`Key::new`]) is looked up first,
/// and the closure runs on the worker only on a miss; its result is put in the store
/// before the caller gets it (committed soon after: call
/// [`ResultStore::flush`] before declaring the run done). Concurrent calls with one key (from processes of
/// this master, on any runners) run it once: the others wait and read the stored
/// answer. If the running call fails, one of the waiters runs it instead.
///
/// Only successes are stored: a failed call runs again when asked again.
///
/// ```
/// use std::rc::Rc;
/// use hyperion::remote::Memoized;
/// use hyperion::store::{MemoryDisk, MemoryStore};
/// let memo = Memoized::new(Rc::new(MemoryStore::new(MemoryDisk::new(), "scan-v1")));
/// assert_eq!((memo.hits(), memo.runs()), (0, 0));
/// ```
pub struct Memoized<S: ResultStore + ?Sized> {
    store: Rc<S>,
    /// Keys a process of this master is working on, with the processes waiting for it.
    running: RefCell<BTreeMap<Key, Vec<Waker>>>,
    /// Calls started per key not yet stored (for [`ResultMeta::attempts`]).
    attempts: RefCell<BTreeMap<Key, u32>>,
    hits: Cell<u64>,
    runs: Cell<u64>,
}

impl<S: ResultStore + ?Sized> Memoized<S> {
    /// Calls through `store`.
    pub fn new(store: Rc<S>) -> Memoized<S> {
        Memoized {
            store,
            running: RefCell::default(),
            attempts: RefCell::default(),
            hits: Cell::new(0),
            runs: Cell::new(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &Rc<S> {
        &self.store
    }

    /// Results found in the store (by [`run`](Memoized::run) or
    /// [`lookup`](Memoized::lookup)).
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// Calls that ran on a worker and were stored.
    pub fn runs(&self) -> u64 {
        self.runs.get()
    }

    /// The key of `call` (building its argument if it is not built yet); `None` if the
    /// argument cannot be built.
    pub async fn key<R: Serializable + Clone>(&self, call: &RemoteCall<R>) -> Option<Key> {
        let argument = call.argument().await.ok()?;
        Some(Key::new(call.label(), self.store.version(), &argument))
    }

    /// The stored result of `call`, if there is one; runs nothing. A master uses it to
    /// launch workers only for what is missing.
    pub async fn lookup<R: Serializable + Clone>(
        &self,
        p: &Process,
        call: &RemoteCall<R>,
    ) -> Result<Option<R>, StoreError> {
        let Some(key) = self.key(call).await else {
            return Ok(None);
        };
        self.read(p, key).await
    }

    /// The result of `call`: from the store if it is there, else run on `runner`'s
    /// worker and stored.
    pub async fn run<R: Serializable + Clone>(
        &self,
        p: &Process,
        runner: &Runner,
        call: &RemoteCall<R>,
    ) -> Result<R, StoredCallError> {
        let ran = self
            .run_by(p, call, || async {
                let started = p.now();
                let value = runner.run(p, call).await?;
                Ok::<_, RemoteError>(PoolAnswer {
                    value,
                    worker: runner.worker_node(),
                    attempts: 1,
                    duration: p.now().saturating_sub(started),
                })
            })
            .await?;
        Ok(ran?)
    }

    /// The result of `call`: from the store if it is there, else run on a worker of
    /// `pool` (which retries it per its launcher's policy) and stored.
    pub async fn run_pooled<L, R>(
        &self,
        p: &Process,
        pool: &WorkerPool<L, R>,
        call: Rc<RemoteCall<R>>,
    ) -> Result<R, PooledCallError>
    where
        L: WorkerLauncher + 'static,
        R: Serializable + Clone,
    {
        let ran = self
            .run_by(p, &call.clone(), || pool.run_detailed(p, call))
            .await
            .map_err(PooledCallError::Store)?;
        ran.map_err(PooledCallError::Pool)
    }

    /// The result of `call` from the store, else from `run` (then stored): the outer
    /// error is the store's, the inner one `run`'s. Concurrent callers with one key run
    /// it once (see the type's documentation).
    async fn run_by<R, E, F, Fut>(
        &self,
        p: &Process,
        call: &RemoteCall<R>,
        run: F,
    ) -> Result<Result<R, E>, StoreError>
    where
        R: Serializable + Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<PoolAnswer<R>, E>>,
    {
        let Some(key) = self.key(call).await else {
            // The argument cannot be built: the run reports why, as it would unstored.
            return Ok(run().await.map(|ran| ran.value));
        };
        let _claim = loop {
            if let Some(claim) = self.claim(key) {
                break claim;
            }
            self.wait_unclaimed(key).await;
        };
        // Looked up only once the key is ours, so that a call that finished while we
        // waited is found here rather than run twice.
        if let Some(value) = self.read(p, key).await? {
            return Ok(Ok(value));
        }
        let attempts = {
            let mut attempts = self.attempts.borrow_mut();
            let count = attempts.entry(key).or_insert(0);
            *count += 1;
            *count
        };
        let ran = match run().await {
            Ok(ran) => ran,
            Err(err) => return Ok(Err(err)),
        };
        let meta = ResultMeta {
            label: call.label().to_string(),
            worker: ran.worker.to_string(),
            duration: ran.duration,
            // A pool's own retries add to the ones this master made through `run`.
            attempts: attempts - 1 + ran.attempts,
        };
        let encoded = encode(&ran.value).map_err(|err| StoreError {
            path: self.store.location(),
            kind: StoreErrorKind::Write(format!("cannot encode the result: {err}")),
        })?;
        self.store.put(p, key, encoded, meta).await?;
        self.attempts.borrow_mut().remove(&key);
        self.runs.set(self.runs.get() + 1);
        Ok(Ok(ran.value))
    }

    async fn read<R: Serializable + Clone>(
        &self,
        p: &Process,
        key: Key,
    ) -> Result<Option<R>, StoreError> {
        let Some(stored) = self.store.get(p, key).await? else {
            return Ok(None);
        };
        let value = decode::<R>(&stored.value).map_err(|err| StoreError {
            path: self.store.location(),
            kind: StoreErrorKind::Decode(err.to_string()),
        })?;
        self.hits.set(self.hits.get() + 1);
        Ok(Some(value))
    }

    /// Makes this process the one working on `key`, unless another one is.
    fn claim(&self, key: Key) -> Option<Claim<'_, S>> {
        let mut running = self.running.borrow_mut();
        if running.contains_key(&key) {
            return None;
        }
        running.insert(key, Vec::new());
        Some(Claim { memo: self, key })
    }

    /// Waits until no process works on `key`.
    async fn wait_unclaimed(&self, key: Key) {
        poll_fn(|cx| match self.running.borrow_mut().get_mut(&key) {
            None => Poll::Ready(()),
            Some(waiters) => {
                if !waiters.iter().any(|waiter| waiter.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// A process's claim on a key; released however its call ends (a result, an error, the
/// process killed), waking the processes waiting for the key.
struct Claim<'a, S: ResultStore + ?Sized> {
    memo: &'a Memoized<S>,
    key: Key,
}

impl<S: ResultStore + ?Sized> Drop for Claim<'_, S> {
    fn drop(&mut self) {
        let waiters = self.memo.running.borrow_mut().remove(&self.key);
        for waiter in waiters.into_iter().flatten() {
            waiter.wake();
        }
    }
}
