//! The scan's master through an adaptive [`WorkerPool`] (`--min-workers`/`--max-workers`):
//! the pool starts workers while points wait and stops workers idle too long, where
//! [`job::scan`](super::job::scan) keeps a fixed number of worker slots. Results go
//! through the same store (`results.db`), so `--resume` works alike; the same
//! [`Watch`] reports progress.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{Memoized, PooledCallError, RemoteCall, WorkerLauncher, WorkerPool};
use hyperion::store::ResultStore;
use hyperion::{AsyncResult, Process};

use super::job::{Scanned, Watch};

/// The scan's state, shared by its feeders.
struct Shared {
    queue: RefCell<VecDeque<usize>>,
    results: RefCell<Vec<Option<f64>>>,
    calls: Vec<Rc<RemoteCall<f64>>>,
    /// The first failure that stopped the scan or left a point without a result.
    error: RefCell<Option<String>>,
    watch: Rc<dyn Watch>,
}

/// Results already in the store are taken from it; the missing points are handed to
/// `pool` by `feeders` processes (as many calls in the pool at once: the pool scales up
/// to its maximum only if that many wait), each result committed to the store as it
/// arrives. A point the pool gives up (its launcher's policy, or no worker could start)
/// is left without a result and the reason reported. The pool is closed at the end
/// (every worker gets `ShutDown`).
pub async fn scan_pooled<L: WorkerLauncher + 'static>(
    p: &Process,
    pool: WorkerPool<L, f64>,
    store: Rc<dyn ResultStore>,
    calls: Vec<RemoteCall<f64>>,
    feeders: usize,
    interrupt_poll: Option<Duration>,
    watch: Rc<dyn Watch>,
) -> Scanned {
    let memo = Rc::new(Memoized::new(store));
    let shared = Rc::new(Shared {
        queue: RefCell::default(),
        results: RefCell::new(vec![None; calls.len()]),
        calls: calls.into_iter().map(Rc::new).collect(),
        error: RefCell::default(),
        watch,
    });
    for (task, call) in shared.calls.iter().enumerate() {
        shared.watch.queued(p, task, call.label());
        match memo.lookup(p, call).await {
            Ok(Some(value)) => {
                shared.results.borrow_mut()[task] = Some(value);
                shared.watch.done(p, task, value, true);
            }
            Ok(None) => shared.queue.borrow_mut().push_back(task),
            Err(err) => *shared.error.borrow_mut() = Some(err.to_string()),
        }
    }
    if shared.error.borrow().is_some() {
        shared.queue.borrow_mut().clear();
    }
    let feeders = feeders.max(1).min(shared.queue.borrow().len());
    let tasks: Vec<_> = (0..feeders)
        .map(|_| {
            let (pool, shared, memo) = (pool.clone(), shared.clone(), memo.clone());
            p.async_task(move |feeder| async move { feed(&feeder, &pool, &shared, &memo).await })
        })
        .collect();
    let mut interrupted = false;
    'feeders: for task in &tasks {
        loop {
            let Some(poll) = interrupt_poll else {
                task.wait(p).await;
                break;
            };
            if shared.watch.interrupted() {
                interrupted = true;
                break 'feeders;
            }
            if !matches!(task.wait_timeout(p, poll).await, AsyncResult::Pending) {
                break;
            }
        }
    }
    if interrupted {
        tracing::warn!("interrupted; stopping the pool's workers");
        shared.queue.borrow_mut().clear();
        for task in &tasks {
            task.cancel(p);
        }
        pool.cancel_waiting(p);
    }
    pool.close(p).await;
    let results = shared.results.borrow().clone();
    let error = shared.error.borrow_mut().take();
    Scanned {
        results,
        interrupted,
        from_store: memo.hits(),
        computed: memo.runs(),
        error,
    }
}

/// One feeder: hands points to the pool one at a time until none is left.
async fn feed<L: WorkerLauncher + 'static>(
    p: &Process,
    pool: &WorkerPool<L, f64>,
    shared: &Shared,
    memo: &Memoized<dyn ResultStore>,
) {
    loop {
        let Some(task) = shared.queue.borrow_mut().pop_front() else {
            return;
        };
        if shared.watch.cancelled(task) {
            continue;
        }
        match memo.run_pooled(p, pool, shared.calls[task].clone()).await {
            Ok(value) => {
                shared.results.borrow_mut()[task] = Some(value);
                shared.watch.done(p, task, value, false);
            }
            Err(PooledCallError::Pool(err)) => {
                // The pool already retried it as the launcher's policy allows.
                shared.watch.failed(p, task, &err.to_string());
                tracing::error!(%err, task, "a point was given up");
                shared
                    .error
                    .borrow_mut()
                    .get_or_insert(format!("a point was given up: {err}"));
            }
            Err(PooledCallError::Store(err)) => {
                shared.watch.failed(p, task, &err.to_string());
                // Results can no longer be kept: stop, keeping what is stored.
                tracing::error!(%err, "the result store failed; stopping the scan");
                shared.error.borrow_mut().get_or_insert(err.to_string());
                shared.queue.borrow_mut().clear();
                return;
            }
        }
    }
}
