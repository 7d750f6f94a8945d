//! The errors of the remote layer, shared by the launchers, services and remote calls:
//! a leaf module (it imports nothing else from `remote/` but the [`ServiceId`] leaf), so
//! that `call`, `launcher` and `service` depend on it and never on each other in a circle.

use std::fmt;

use super::service_id::ServiceId;
use crate::types::id::DiedReason;

/// Why a worker could not be launched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchError {
    /// What was tried (a command line, a job submission).
    pub what: String,
    /// Why it failed.
    pub why: String,
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot launch a worker ({}): {}", self.what, self.why)
    }
}

impl std::error::Error for LaunchError {}

/// Why a service could not run the user's block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// The launcher could not start a worker.
    Launch(LaunchError),
    /// No worker connected within the launcher's connection timeout.
    WorkerConnectionTimeout(ServiceId),
    /// The worker's job ended before the worker connected (it crashed at start, was
    /// killed, or its batch job failed), with the launcher's reason.
    WorkerEndedBeforeConnecting {
        /// The service the worker was launched for.
        service: ServiceId,
        /// What the launcher knows (an exit status, a job state).
        why: String,
    },
    /// The service id could not be registered (it is taken).
    Registration(String),
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Launch(err) => err.fmt(f),
            ServiceError::WorkerConnectionTimeout(service) => {
                write!(f, "no worker connected for {service} in time")
            }
            ServiceError::WorkerEndedBeforeConnecting { service, why } => {
                write!(f, "the worker for {service} ended before connecting: {why}")
            }
            ServiceError::Registration(why) => write!(f, "cannot register the service: {why}"),
        }
    }
}

impl std::error::Error for ServiceError {}

/// How the text of a [`RemoteErrorKind::Exception`] starts when the call's argument
/// or its reply is longer than the transport's frame limit: a retry would fail the same
/// way (see [`RemoteError::is_retryable`]).
pub const TOO_LARGE_PREFIX: &str = "too large for the frame limit: ";

/// How the text of a [`RemoteErrorKind::Exception`] starts when the call asks for more
/// [`Resources`](crate::remote::Resources) than its worker was started with: it was not
/// run, and a retry on a worker of the same size would fail the same way (see
/// [`RemoteError::is_retryable`]).
pub const DOES_NOT_FIT_PREFIX: &str = "does not fit the worker: ";

/// How a remote call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteErrorKind {
    /// The process running the call died before answering (killed, its node crashed
    /// or was cut off: `Disconnect`).
    AsyncFailed(DiedReason),
    /// The worker serving the call died or was lost while the call ran.
    AsyncLinkFailed(DiedReason),
    /// The call was cancelled.
    Cancelled,
    /// The call had not finished when its timeout passed.
    Pending,
    /// The closure failed on the worker (an error, a panic, an unknown label, a bad
    /// argument); the text says how.
    Exception(String),
}

/// A failed remote call, with the service it ran in (hyperion's `RemoteError`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// The service (worker) the call ran in.
    pub service_id: ServiceId,
    /// How it failed.
    pub kind: RemoteErrorKind,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote call in {} failed: {:?}",
            self.service_id, self.kind
        )
    }
}

impl std::error::Error for RemoteError {}

impl RemoteError {
    /// Whether another attempt could succeed. A call whose argument or reply is longer
    /// than the frame limit (its text starts with [`TOO_LARGE_PREFIX`]) would fail the
    /// same way on every worker: [`with_remote_runner`](crate::remote::with_remote_runner) gives it up at once, whatever
    /// the launcher's policy.
    /// A call asking more resources than its worker has (its text starts with
    /// [`DOES_NOT_FIT_PREFIX`]) is not retried either.
    pub fn is_retryable(&self) -> bool {
        !matches!(&self.kind, RemoteErrorKind::Exception(text)
            if text.starts_with(TOO_LARGE_PREFIX) || text.starts_with(DOES_NOT_FIT_PREFIX))
    }
}
