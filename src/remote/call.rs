//! Running closures on a service's worker: memoized closures, remote errors, the
//! runner, and the retry loop.

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use super::errors::{
    RemoteError, RemoteErrorKind, ServiceError, DOES_NOT_FIT_PREFIX, TOO_LARGE_PREFIX,
};
use super::launcher::{OnRemoteError, WorkerLauncher};
use super::memo::{Builder, Memo};
use super::resources::Resources;
use super::service::serve;
use super::service_id::ServiceId;
use super::status_notice::{notify, StatusNotice};
use crate::closure::{Closure, RemoteTable};
use crate::concurrency::{Async, AsyncReply, AsyncResult};
use crate::message::{decode, encode, Serializable};
use crate::process::Process;
use crate::types::id::{panic_text, DiedReason, NodeId, ProcessId};
use crate::wire::WireError;
use crate::{match_if, match_type, ProcessMonitorNotification, SpawnError};

/// What the master puts in a call's closure: the encoded argument and where to answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEnvelope {
    /// The argument, encoded.
    pub argument: Vec<u8>,
    /// The process waiting for the answer.
    pub reply_to: ProcessId,
    /// Matches the answer to the call.
    pub call: u64,
}

impl RemoteTable {
    /// Registers a function that masters can call on this node with
    /// [`Runner::run`]: it gets the decoded argument and its result (or its error, or
    /// its panic, as text) is sent back to the caller.
    ///
    /// ```
    /// use hyperion::{Process, RemoteTable};
    /// let mut table = RemoteTable::new();
    /// table.register_call("square", |_p: Process, x: u64| async move { Ok::<_, String>(x * x) });
    /// ```
    pub fn register_call<A, R, E, F, Fut>(&mut self, label: &str, function: F) -> &mut Self
    where
        A: Serializable,
        R: Serializable + Clone,
        E: fmt::Display + 'static,
        F: Fn(Process, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + 'static,
    {
        let function = std::sync::Arc::new(function);
        self.register(label, move |p: Process, envelope: CallEnvelope| {
            let function = function.clone();
            async move {
                let node = p.local_node().clone();
                let me = p.self_pid();
                let value: Result<R, String> = match decode::<A>(&envelope.argument) {
                    Err(err) => Err(format!("bad argument: {err}")),
                    Ok(argument) => {
                        // A simulator may hold the answer back past the caller's timeouts.
                        if crate::buggify!() {
                            crate::reached!("remote.buggify.reply_delayed");
                            p.sleep(Duration::from_secs(30)).await;
                        }
                        // A simulator may make the closure panic, as user code can.
                        let panics = crate::buggify!();
                        let run = std::panic::AssertUnwindSafe(async move {
                            if panics {
                                crate::reached!("remote.buggify.closure_panics");
                                panic!("buggify: a remote closure panics");
                            }
                            function(p, argument).await
                        });
                        match run.catch_unwind().await {
                            Ok(Ok(value)) => Ok(value),
                            Ok(Err(err)) => Err(err.to_string()),
                            Err(panic) => Err(panic_text(panic.as_ref())),
                        }
                    }
                };
                if let Err(why) = &value {
                    tracing::error!(%why, "remote call failed on the worker");
                }
                let sent = node.try_send_as(
                    me,
                    envelope.reply_to,
                    AsyncReply {
                        id: envelope.call,
                        value,
                    },
                );
                if let Err(WireError::FrameTooLong { length, limit }) = sent {
                    // The caller would wait for an answer that never comes: tell it why.
                    let why = format!(
                        "{TOO_LARGE_PREFIX}the reply of {length} bytes exceeds the limit of \
                         {limit} bytes"
                    );
                    node.send_as(
                        me,
                        envelope.reply_to,
                        AsyncReply {
                            id: envelope.call,
                            value: Err::<R, String>(why),
                        },
                    );
                }
            }
        })
    }
}

/// A closure to run on a worker, built lazily and once (hyperion's
/// `SerializableClosureProcess`): the action that produces its argument runs the first
/// time a worker is ready, and a retry re-sends the memoized closure. Calls that share
/// it (an `Rc<RemoteCall>` used by several processes) wait for the first one's build;
/// if the process running the build stops before it ends, they fail with an error that
/// says so.
///
/// ```
/// use hyperion::remote::RemoteCall;
/// let call: RemoteCall<u64> = RemoteCall::new("square", || async { 7u64 });
/// assert_eq!(call.builds(), 0); // nothing built until a worker asks
/// ```
pub struct RemoteCall<R> {
    label: String,
    /// The encoded argument, or why it could not be built.
    argument: Memo<Result<Vec<u8>, String>>,
    /// What the call needs of its worker.
    resources: Resources,
    _result: std::marker::PhantomData<fn() -> R>,
}

impl<R: Serializable + Clone> RemoteCall<R> {
    /// A call of the table entry `label` (registered with
    /// [`RemoteTable::register_call`]) whose argument `build` produces.
    pub fn new<A, F, Fut>(label: &str, build: F) -> RemoteCall<R>
    where
        A: Serializable,
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = A> + 'static,
    {
        let builder: Builder<Result<Vec<u8>, String>> = Box::new(move || {
            Box::pin(async move { encode(&build().await).map_err(|err| err.to_string()) })
        });
        RemoteCall {
            label: label.to_string(),
            argument: Memo::new(builder),
            resources: Resources::default(),
            _result: std::marker::PhantomData,
        }
    }

    /// The call needs `resources` of its worker: it runs only on a worker started with
    /// at least those (see [`with_remote_runner_using`]); on a smaller one it fails,
    /// unrun, with an error starting with [`DOES_NOT_FIT_PREFIX`], never retried.
    ///
    /// ```
    /// use hyperion::remote::{RemoteCall, Resources};
    /// let call: RemoteCall<u64> =
    ///     RemoteCall::new("square", || async { 7u64 }).with_resources(Resources::default().cpus(2));
    /// assert_eq!(call.resources().cpus, Some(2));
    /// ```
    pub fn with_resources(mut self, resources: Resources) -> RemoteCall<R> {
        self.resources = resources;
        self
    }

    /// What the call needs of its worker.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// How many times the building action ran (0 or 1).
    pub fn builds(&self) -> u32 {
        self.argument.builds()
    }

    /// The table entry this call runs.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The encoded argument, building it on first use.
    pub(super) async fn argument(&self) -> Result<Vec<u8>, String> {
        self.argument
            .get(|| Err("the process building the closure stopped before it finished".into()))
            .await
    }
}

/// A call in progress on a worker. Dropped before its result is taken, it leaves
/// nothing queued for its caller (see [`Async`]): the call's reply and notifications
/// are dropped on arrival.
pub struct RemoteTask<R> {
    service_id: ServiceId,
    task: Async<Result<R, String>>,
    worker_watch: crate::MonitorRef,
    /// Whether `worker_watch` was removed (when the outcome was taken).
    worker_watch_removed: std::cell::Cell<bool>,
    /// The caller, to remove `worker_watch` if the task is dropped first.
    caller: Process,
}

impl<R> Drop for RemoteTask<R> {
    fn drop(&mut self) {
        if self.worker_watch_removed.get() {
            return;
        }
        let node = self.caller.local_node();
        // Busy: the caller itself is being torn down, and its monitors with it.
        let state = node.inner.state.try_borrow_mut();
        if let Ok(mut state) = state {
            state.unmonitor(self.caller.self_pid(), self.worker_watch);
        }
    }
}

impl<R: Serializable + Clone> RemoteTask<R> {
    fn outcome(
        &self,
        p: &Process,
        outcome: AsyncResult<Result<R, String>>,
    ) -> Result<R, RemoteError> {
        let kind = match outcome {
            AsyncResult::Done(Ok(value)) => {
                p.unmonitor(self.worker_watch);
                self.worker_watch_removed.set(true);
                return Ok(value);
            }
            AsyncResult::Done(Err(text)) => RemoteErrorKind::Exception(text),
            // A call that ended normally (or so fast that it was gone before the monitor
            // reached it) without an answer the caller recognises sent an answer of
            // another type: say so, rather than report a normal death.
            AsyncResult::Failed(DiedReason::Normal | DiedReason::UnknownProcess) => {
                RemoteErrorKind::Exception(format!(
                    "the remote call ended without an answer of type {}; does the registered \
                 function return that type?",
                    std::any::type_name::<R>()
                ))
            }
            AsyncResult::Failed(reason) => RemoteErrorKind::AsyncFailed(reason),
            // The worker's node was lost: the call's process, on that node, was lost
            // with it. That is the call failing, not a link.
            AsyncResult::LinkFailed(reason @ (DiedReason::Disconnect | DiedReason::NodeDown)) => {
                RemoteErrorKind::AsyncFailed(reason)
            }
            AsyncResult::LinkFailed(reason) => RemoteErrorKind::AsyncLinkFailed(reason),
            AsyncResult::Cancelled => RemoteErrorKind::Cancelled,
            AsyncResult::Pending => RemoteErrorKind::Pending,
        };
        if !matches!(kind, RemoteErrorKind::Pending) {
            p.unmonitor(self.worker_watch);
            self.worker_watch_removed.set(true);
        }
        Err(RemoteError {
            service_id: self.service_id.clone(),
            kind,
        })
    }

    /// Waits for the result.
    pub async fn wait(&self, p: &Process) -> Result<R, RemoteError> {
        let outcome = self.wait_or_worker_lost(p, None).await;
        self.outcome(p, outcome)
    }

    /// Waits at most `timeout`; `Pending` if the call is still running then.
    pub async fn wait_timeout(&self, p: &Process, timeout: Duration) -> Result<R, RemoteError> {
        let outcome = self.wait_or_worker_lost(p, Some(timeout)).await;
        self.outcome(p, outcome)
    }

    /// Cancels the call (its process on the worker is killed).
    pub fn cancel(&self, p: &Process) {
        self.task.cancel(p);
    }

    /// Waits for the call, or for the death of the worker serving it (a link failure:
    /// the call is then killed, as a linked process would be).
    async fn wait_or_worker_lost(
        &self,
        p: &Process,
        timeout: Option<Duration>,
    ) -> AsyncResult<Result<R, String>> {
        let watch = self.worker_watch;
        let worker_lost = match_if(
            move |n: &ProcessMonitorNotification| n.monitor_ref == watch,
            |n: ProcessMonitorNotification| AsyncResult::LinkFailed(n.reason),
        );
        let outcome = self.task.wait_with(p, timeout, vec![worker_lost]).await;
        crate::sometimes!(
            "remote.worker_monitor_disconnect_in_service",
            matches!(outcome, AsyncResult::LinkFailed(DiedReason::Disconnect))
        );
        if matches!(outcome, AsyncResult::LinkFailed(_)) {
            p.kill(self.task.pid(), "the worker serving this call was lost");
        }
        outcome
    }
}

/// Runs closures on one service's worker (hyperion's `RemoteProcessRunner`).
#[derive(Clone, Debug)]
pub struct Runner {
    pub(super) worker_node: NodeId,
    pub(super) worker: ProcessId,
    pub(super) service_id: ServiceId,
    /// What the worker was started with.
    pub(super) resources: Resources,
}

impl Runner {
    /// The worker's node.
    pub fn worker_node(&self) -> NodeId {
        self.worker_node
    }

    /// The worker's handshake process (it lives as long as the service).
    pub fn worker(&self) -> ProcessId {
        self.worker
    }

    /// The service id.
    pub fn service_id(&self) -> &ServiceId {
        &self.service_id
    }

    /// The resources the worker was started with.
    pub fn resources(&self) -> &Resources {
        &self.resources
    }

    /// Starts `call` on the worker (building its closure if this is the first time).
    pub async fn start<R: Serializable + Clone>(
        &self,
        p: &Process,
        call: &RemoteCall<R>,
    ) -> RemoteTask<R> {
        let worker_watch = p.monitor(self.worker);
        let id = p.random_u64();
        let settled = |kind: AsyncResult<Result<R, String>>| RemoteTask {
            service_id: self.service_id.clone(),
            task: Async::settled(self.worker, kind),
            worker_watch,
            worker_watch_removed: std::cell::Cell::new(false),
            caller: p.clone_handle(),
        };
        if !call.resources.fits_within(&self.resources) {
            crate::reached!("remote.call_does_not_fit");
            return settled(AsyncResult::Done(Err(format!(
                "{DOES_NOT_FIT_PREFIX}the call {} needs {}, its worker has {}",
                call.label, call.resources, self.resources
            ))));
        }
        let argument = match call.argument().await {
            Ok(argument) => argument,
            Err(why) => {
                return settled(AsyncResult::Done(Err(format!(
                    "cannot build the closure: {why}"
                ))))
            }
        };
        let envelope = CallEnvelope {
            argument,
            reply_to: p.self_pid(),
            call: id,
        };
        let closure = match encode(&envelope) {
            Ok(environment) => Closure {
                label: call.label.clone(),
                environment,
            },
            Err(err) => return settled(AsyncResult::Done(Err(err.to_string()))),
        };
        match p.spawn(self.worker_node, closure).await {
            Ok(pid) => {
                let monitor = p.monitor(pid);
                RemoteTask {
                    service_id: self.service_id.clone(),
                    task: Async::from_parts(p, pid, id, monitor),
                    worker_watch,
                    worker_watch_removed: std::cell::Cell::new(false),
                    caller: p.clone_handle(),
                }
            }
            Err(SpawnError::Refused(why)) => settled(AsyncResult::Done(Err(why))),
            Err(SpawnError::TooLarge { bytes, limit }) => settled(AsyncResult::Done(Err(format!(
                "{TOO_LARGE_PREFIX}the call's closure of {bytes} bytes exceeds the limit \
                     of {limit} bytes"
            )))),
            Err(SpawnError::Disconnected(_)) => {
                settled(AsyncResult::Failed(DiedReason::Disconnect))
            }
        }
    }

    /// Runs `call` on the worker and waits for its result.
    pub async fn run<R: Serializable + Clone>(
        &self,
        p: &Process,
        call: &RemoteCall<R>,
    ) -> Result<R, RemoteError> {
        self.start(p, call).await.wait(p).await
    }
}

/// Why [`with_remote_runner`] gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunnerError {
    /// No worker could be had.
    Service(ServiceError),
    /// Remote work failed and the launcher's policy said to give up.
    Remote(RemoteError),
}

impl fmt::Display for RunnerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunnerError::Service(err) => err.fmt(f),
            RunnerError::Remote(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for RunnerError {}

/// The message that releases held services (see [`release_holds`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseHold;

/// Prefix of the names under which held services wait.
const HOLD_PREFIX: &str = "hyperion.hold.";

/// Releases every service held after a remote error on this node (the launcher
/// answered [`OnRemoteError::Hold`]): each retries with a new worker.
pub fn release_holds(p: &Process) -> usize {
    let held = p.local_node().names_with_prefix(HOLD_PREFIX);
    for pid in &held {
        p.send(*pid, ReleaseHold);
    }
    held.len()
}

/// Starts a worker and runs `block` with a [`Runner`] for it (hyperion's
/// `withRemoteRunProcess`). If the block fails with a [`RemoteError`], the launcher's
/// `on_remote_error` decides: retry the whole block with a new worker (after a pause),
/// hold it until released, or give up. Closures built by the block's [`RemoteCall`]s
/// are built once across retries, so keep the calls outside the block (e.g. in an
/// `Rc`).
pub async fn with_remote_runner<L, F, Fut, T>(
    p: &Process,
    launcher: &L,
    block: F,
) -> Result<T, RunnerError>
where
    L: WorkerLauncher,
    F: Fn(Runner) -> Fut,
    Fut: Future<Output = Result<T, RemoteError>>,
{
    with_remote_runner_using(p, launcher, &Resources::default(), block).await
}

/// [`with_remote_runner`] with workers (the first and every retry's) started with
/// `resources`: calls asking at most those run on them
/// ([`RemoteCall::with_resources`]).
pub async fn with_remote_runner_using<L, F, Fut, T>(
    p: &Process,
    launcher: &L,
    resources: &Resources,
    block: F,
) -> Result<T, RunnerError>
where
    L: WorkerLauncher,
    F: Fn(Runner) -> Fut,
    Fut: Future<Output = Result<T, RemoteError>>,
{
    let block = Rc::new(block);
    let mut retries = 0;
    loop {
        let block = block.clone();
        let outcome = serve(p, launcher, resources, |worker, service_id| async move {
            block(Runner {
                worker_node: worker.node,
                worker,
                service_id,
                resources: resources.clone(),
            })
            .await
        })
        .await;
        let error = match outcome {
            Err(err) => return Err(RunnerError::Service(err)),
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => error,
        };
        if !error.is_retryable() {
            tracing::error!(%error, "remote work failed in a way no retry can fix; giving up");
            return Err(RunnerError::Remote(error));
        }
        match launcher.on_remote_error(&error, retries) {
            OnRemoteError::GiveUp => return Err(RunnerError::Remote(error)),
            OnRemoteError::Retry { after } => {
                crate::reached!("remote.retry");
                tracing::warn!(%error, retry = retries + 1, ?after, "remote work failed; retrying with a new worker");
                p.sleep(after).await;
            }
            OnRemoteError::Hold => {
                tracing::warn!(%error, "remote work failed; holding until released");
                let name = format!("{HOLD_PREFIX}{}", error.service_id);
                let _ = p.register(&name, p.self_pid());
                let (service, holder) = (error.service_id.to_string(), p.self_pid());
                let held = StatusNotice::Held {
                    service: service.clone(),
                    error: error.to_string(),
                    holder,
                };
                notify(p, held);
                p.receive_wait(vec![match_type(|_: ReleaseHold| ())]).await;
                let _ = p.unregister(&name);
                notify(p, StatusNotice::Released { service });
            }
        }
        retries += 1;
    }
}
