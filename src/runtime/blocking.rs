//! Running blocking or CPU-heavy closures without stalling a node's event loop.
//!
//! In the real world a [`ThreadPool`] runs them; in the simulator an [`Inline`]
//! executor runs them on the spot, so a simulated run stays on one thread and
//! reproducible. Processes reach it through
//! [`Process::run_blocking`](crate::Process::run_blocking). The executor's trait and
//! [`Inline`] are the kernel's (the node below the runtime is given one); re-exported
//! here, where they always were.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

pub use crate::kernel::blocking::{BlockingExecutor, Inline, Job};

/// Most threads a [`ThreadPool`] starts unless configured otherwise.
pub const BLOCKING_THREADS_DEFAULT: usize = 16;

/// A pool of OS threads, started lazily up to a fixed maximum, that runs jobs in
/// submission order. Threads that find no work wait on a condition variable.
#[derive(Clone)]
pub struct ThreadPool {
    shared: Arc<PoolShared>,
}

struct PoolShared {
    state: Mutex<PoolState>,
    work_available: Condvar,
    threads_max: usize,
}

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    closed: bool,
}

impl ThreadPool {
    /// A pool of at most `threads_max` threads (at least one).
    ///
    /// ```
    /// use hyperion::runtime::blocking::{BlockingExecutor, ThreadPool};
    /// let pool = ThreadPool::new(2);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// pool.execute(Box::new(move || tx.send(6 * 7).unwrap()));
    /// assert_eq!(rx.recv().unwrap(), 42);
    /// ```
    pub fn new(threads_max: usize) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    closed: false,
                }),
                work_available: Condvar::new(),
                threads_max: threads_max.max(1),
            }),
        }
    }

    fn worker(shared: Arc<PoolShared>) {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // A panicking job reports through its own result slot; the thread lives on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            if state.closed {
                state.threads -= 1;
                return;
            }
            state.idle += 1;
            state = shared
                .work_available
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
            state.idle -= 1;
        }
    }
}

impl BlockingExecutor for ThreadPool {
    fn execute(&self, job: Job) {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.queue.push_back(job);
        // A waiting thread counts as idle until it wakes and takes a job, so a burst of
        // jobs would all be promised to one notified thread: start a thread whenever
        // the queued jobs outnumber the threads still waiting for one.
        if state.queue.len() > state.idle && state.threads < self.shared.threads_max {
            state.threads += 1;
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("hyperion-blocking".into())
                .spawn(move || ThreadPool::worker(shared)); // real-world only
            if let Err(err) = spawned {
                state.threads -= 1;
                tracing::error!(%err, "cannot start a blocking-pool thread; the job waits for a running one");
            }
        }
        if state.idle > 0 {
            self.shared.work_available.notify_one();
        }
    }
}

impl ThreadPool {
    /// Lets idle threads exit once the queue is empty.
    pub fn close(&self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.closed = true;
        self.shared.work_available.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Barrier};
    use std::time::Duration;

    /// Jobs that can only finish together (a barrier) all finish: a burst of jobs
    /// gets a thread each, up to the pool's size, even when a thread was idle.
    #[test]
    fn a_burst_of_jobs_that_wait_on_each_other_all_complete() {
        const JOBS: usize = 6;
        let pool = ThreadPool::new(JOBS);
        // One thread started and idle (waiting for work) when the burst comes.
        let (done_tx, done_rx) = mpsc::channel();
        let first = done_tx.clone();
        pool.execute(Box::new(move || first.send(()).unwrap()));
        done_rx.recv().unwrap();
        while pool.shared.state.lock().unwrap().idle == 0 {
            std::thread::yield_now();
        }
        let barrier = Arc::new(Barrier::new(JOBS));
        for _ in 0..JOBS {
            let (barrier, done) = (barrier.clone(), done_tx.clone());
            pool.execute(Box::new(move || {
                barrier.wait();
                done.send(()).unwrap();
            }));
        }
        for n in 0..JOBS {
            done_rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    panic!("only {n} of {JOBS} jobs finished: they queued behind one thread")
                });
        }
        pool.close();
    }
}
