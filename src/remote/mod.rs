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
//! Inside, imports go one way: `errors` and `service_id` are leaves; `launcher` and
//! `service` use them; `call` uses those; `stored` and `worker` sit on top.

mod call;
mod errors;
mod launcher;
mod memo;
mod service;
mod service_id;
mod stored;
mod worker;

pub use call::{
    release_holds, with_remote_runner, CallEnvelope, ReleaseHold, RemoteCall, RemoteTask, Runner,
    RunnerError,
};
pub use errors::{LaunchError, RemoteError, RemoteErrorKind, ServiceError, TOO_LARGE_PREFIX};
pub use launcher::{JobState, OnRemoteError, RetryPolicy, WorkerLauncher};
pub use service::{with_service, WorkerHello, WorkerMessage};
pub use service_id::ServiceId;
pub use stored::{Memoized, StoredCallError};
pub use worker::{
    worker, WorkerConfig, WorkerExit, HANDSHAKE_ATTEMPTS_DEFAULT, HANDSHAKE_TIMEOUT_DEFAULT,
};
