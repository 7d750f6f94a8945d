//! Launchers: how a master gets a worker, and what it does when remote work fails.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::errors::{LaunchError, RemoteError};
use super::resources::Resources;
use super::service_id::ServiceId;
use crate::process::Process;
use crate::types::id::NodeId;

/// What to do after a [`RemoteError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnRemoteError {
    /// Start a new worker after this pause and run the block again (the closures it
    /// ships are not rebuilt).
    Retry {
        /// Pause before the new worker is launched.
        after: Duration,
    },
    /// Hold the failed block until someone calls
    /// [`release_holds`](crate::remote::release_holds) on the master's node (an
    /// operator fixed what broke), then retry it with a new worker.
    Hold,
    /// Give up: the error is returned to the caller.
    GiveUp,
}

/// A bounded retry policy: `max_retries` retries (unbounded if `None`), each after a
/// pause that doubles from `pause` up to `pause_max`.
///
/// ```
/// use std::time::Duration;
/// use hyperion::remote::{OnRemoteError, RetryPolicy};
/// let policy = RetryPolicy { max_retries: Some(2), pause: Duration::from_secs(1), pause_max: Duration::from_secs(8) };
/// assert_eq!(policy.decide(0), OnRemoteError::Retry { after: Duration::from_secs(1) });
/// assert_eq!(policy.decide(1), OnRemoteError::Retry { after: Duration::from_secs(2) });
/// assert_eq!(policy.decide(2), OnRemoteError::GiveUp);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most retries, or unbounded.
    pub max_retries: Option<u32>,
    /// First pause.
    pub pause: Duration,
    /// Longest pause.
    pub pause_max: Duration,
}

impl RetryPolicy {
    /// Never retry.
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            max_retries: Some(0),
            pause: Duration::ZERO,
            pause_max: Duration::ZERO,
        }
    }

    /// The decision after `retries_so_far` retries.
    pub fn decide(&self, retries_so_far: u32) -> OnRemoteError {
        if self.max_retries.is_some_and(|max| retries_so_far >= max) {
            return OnRemoteError::GiveUp;
        }
        let factor = 1u32.checked_shl(retries_so_far.min(20)).unwrap_or(u32::MAX);
        let after = self.pause.saturating_mul(factor).min(self.pause_max);
        OnRemoteError::Retry { after }
    }
}

impl Default for RetryPolicy {
    /// Up to 3 retries, 1 s then 2 s then 4 s apart.
    fn default() -> Self {
        RetryPolicy {
            max_retries: Some(3),
            pause: Duration::from_secs(1),
            pause_max: Duration::from_secs(60),
        }
    }
}

/// Starts workers for a master (hyperion's `WorkerLauncher`).
///
/// The launched worker must run [`worker`](crate::remote::worker) with the given
/// master node and service id.
pub trait WorkerLauncher {
    /// What identifies a launched worker (a PID, a Slurm job id, a simulated node).
    type JobId: fmt::Debug + Clone + 'static;

    /// Starts a worker that will connect to `master` for `service`.
    fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> impl Future<Output = Result<Self::JobId, LaunchError>>;

    /// Starts a worker with `resources` (CPUs, memory, time limit, partition) that
    /// will connect to `master` for `service`. Asking nothing is [`launch`](Self::launch);
    /// a launcher that cannot reserve resources (the default) refuses anything else
    /// with an error that says so, rather than start a worker that does not have them.
    fn launch_with(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
        resources: &Resources,
    ) -> impl Future<Output = Result<Self::JobId, LaunchError>> {
        async move {
            if !resources.is_default() {
                return Err(LaunchError {
                    what: format!("a worker with {resources}"),
                    why: "this launcher cannot reserve resources for a worker".into(),
                });
            }
            self.launch(p, master, service).await
        }
    }

    /// How long to wait for the worker to connect; `None` waits forever (for batch
    /// queues where a job may wait hours to start).
    fn connection_timeout(&self) -> Option<Duration>;

    /// What to do after the `retries_so_far + 1`-th failure of remote work.
    fn on_remote_error(&self, error: &RemoteError, retries_so_far: u32) -> OnRemoteError;

    /// Stops a worker that is no longer wanted (it failed to connect in time, or its
    /// service was abandoned). Called at most once per job.
    fn cancel(&self, job: &Self::JobId);

    /// Called once when the service using `job` has ended (after `ShutDown` was sent).
    fn on_exit(&self, job: &Self::JobId);

    /// Whether `job` still runs, asked while the master waits for its worker to
    /// connect: a job that has ended (a worker process that exited, a batch job that
    /// failed) will never connect, so the master stops waiting at once instead of at
    /// the connection timeout (or never, without one). A launcher that cannot tell
    /// answers [`JobState::Unknown`] (the default) and is not asked again.
    fn job_state(&self, _job: &Self::JobId) -> JobState {
        JobState::Unknown
    }
}

/// What a launcher knows of a launched job (see [`WorkerLauncher::job_state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// The job runs (or waits in a queue): its worker may still connect.
    Running,
    /// The job has ended, for this reason: its worker will never connect.
    Ended(String),
    /// The launcher cannot tell.
    Unknown,
}
