//! Where a node runs blocking or CPU-heavy closures without stalling its event loop:
//! the [`BlockingExecutor`] the node is given, and [`Inline`], the simulator's (which
//! runs each job on the spot, so a simulated run stays on one thread and
//! reproducible). The real world's thread pool is the runtime's
//! (`runtime::blocking::ThreadPool`). Processes reach it through
//! [`Process::run_blocking`](crate::Process::run_blocking).

/// A job: a closure that must not block the node's thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// Where blocking jobs run.
pub trait BlockingExecutor {
    /// Runs `job` eventually, perhaps before returning.
    fn execute(&self, job: Job);
}

/// Runs each job immediately on the caller's thread: the simulator's executor.
#[derive(Debug, Default, Clone, Copy)]
pub struct Inline;

impl BlockingExecutor for Inline {
    fn execute(&self, job: Job) {
        job();
    }
}
