//! hyperion's master/worker layer: services, the worker handshake, running closures on
//! workers, remote errors and retries.
//!
//! A master asks a [`WorkerLauncher`] to start a worker (a local OS process, a Slurm
//! job, a simulated node), told the master's node and a fresh [`ServiceId`]. The worker
//! says hello to the process registered under that id, up to 5 times with a 10 s
//! timeout each; the master answers `Connected`, runs the user's block with the
//! worker's node, and always sends `ShutDown` when the block ends ([`with_service`]).
//! [`with_remote_runner`] adds a [`Runner`] that ships memoized closures
//! ([`RemoteCall`]) to the worker, maps every way a call can fail to a [`RemoteError`],
//! and lets the launcher's [`WorkerLauncher::on_remote_error`] decide: retry with a new
//! worker after a pause, hold, or give up. [`Memoized`] runs calls through a
//! [`ResultStore`](crate::store::ResultStore): a result already stored (in this run or
//! the run it resumed) is not computed again.
//!
//! A call or a service may ask for [`Resources`] (CPUs, memory, time, partition): the
//! launcher starts a worker with them, and a call never runs on a worker it does not fit.
//!
//! Inside, imports go one way: `errors`, `resources`, `service_id` and `status_notice`
//! (what this layer tells the status agent, which sits above it) are leaves; `launcher`
//! and `service` use them; `call` uses those; `process_call` (`Process::call`, the
//! caller's side of `RemoteTable::register_call`), `stored` and `worker` sit on top.

mod call;
mod errors;
mod launcher;
mod memo;
mod pool;
mod process_call;
mod resources;
mod service;
mod service_id;
pub(crate) mod status_notice;
mod stored;
mod worker;

pub use call::{
    release_holds, with_remote_runner, with_remote_runner_using, CallEnvelope, ReleaseHold,
    RemoteCall, RemoteTask, Runner, RunnerError,
};
pub use errors::{
    LaunchError, RemoteError, RemoteErrorKind, ServiceError, DOES_NOT_FIT_PREFIX, TOO_LARGE_PREFIX,
};
pub use launcher::{JobState, OnRemoteError, RetryPolicy, WorkerLauncher};
pub use pool::{
    PoolAnswer, PoolConfig, PoolStats, WorkerPool, POOL_CLOSE_POLL_INTERVAL,
    POOL_LAUNCH_FAILURES_MAX,
};
pub use resources::Resources;
pub use service::{with_service, with_service_using, WorkerHello, WorkerMessage};
pub use service_id::ServiceId;
pub use stored::{Memoized, PooledCallError, StoredCallError};
pub use worker::{
    worker, WorkerConfig, WorkerExit, HANDSHAKE_ATTEMPTS_DEFAULT, HANDSHAKE_TIMEOUT_DEFAULT,
    HELLO_AGAIN_PAUSE,
};
