//! Services: a master's registration for one worker, and the bracket around its use.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::errors::{LaunchError, ServiceError};
use super::launcher::{JobState, WorkerLauncher};
use super::resources::Resources;
use super::service_id::ServiceId;
use super::status_notice::{notify, StatusNotice};
use crate::build_id::{refusal_text, BuildId};
use crate::match_if;
use crate::process::channel::SendPort;
use crate::process::Process;
use crate::types::id::{NodeId, ProcessId};

/// What a master tells its worker.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum WorkerMessage {
    /// The handshake is accepted: serve closures until `ShutDown`.
    Connected,
    /// The service is over: stop.
    ShutDown,
    /// The worker runs another build of the program than the master: stop (the
    /// master reports both builds).
    Refused,
}

/// A worker's hello to its master: who it is, which service it is for, and where to
/// reply.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WorkerHello {
    /// The worker's process.
    pub pid: ProcessId,
    /// The service it was launched for.
    pub service: ServiceId,
    /// Where the master answers `Connected`.
    pub reply: SendPort<WorkerMessage>,
    /// The build of the program the worker runs; the master refuses another build.
    pub build: BuildId,
}

/// Sends `ShutDown` to the worker and runs the launcher's exit hook when dropped, so
/// that both happen however the user's block ends (return, error, panic, kill).
struct ShutdownGuard<'a, L: WorkerLauncher> {
    p: &'a Process,
    launcher: &'a L,
    job: L::JobId,
    worker: ProcessId,
    service: &'a ServiceId,
}

impl<L: WorkerLauncher> Drop for ShutdownGuard<'_, L> {
    fn drop(&mut self) {
        tracing::info!(service = %self.service, job = ?self.job, "worker finished; shutting it down");
        // A connection break since the last data sent to the worker would make the
        // reconnect rule drop `ShutDown` silently: acknowledge any break first, so it
        // goes out on a fresh connection if there is none. (A worker that saw the break
        // has stopped already, having lost its master.)
        self.p.reconnect(self.worker);
        if !crate::planted::is_planted(crate::planted::Defect::ShutDownNotSent) {
            self.p.send(self.worker, WorkerMessage::ShutDown);
        }
        self.launcher.on_exit(&self.job);
        notify(
            self.p,
            StatusNotice::Ended {
                service: self.service.to_string(),
            },
        );
    }
}

/// Cancels a launched job when dropped, unless its worker connected first: between the
/// launch and the worker's hello the service owns the job, so a timeout, or the calling
/// process being killed while it waits, never leaves the job running.
struct CancelUnlessConnected<'a, L: WorkerLauncher> {
    launcher: &'a L,
    job: Option<L::JobId>,
}

impl<L: WorkerLauncher> CancelUnlessConnected<'_, L> {
    /// The worker connected: the shutdown guard owns the job from here.
    fn connected(mut self) -> L::JobId {
        self.job
            .take()
            .expect("the job is held until the worker connects")
    }
}

impl<L: WorkerLauncher> Drop for CancelUnlessConnected<'_, L> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            tracing::warn!(?job, "no worker connected for this job; cancelling it");
            self.launcher.cancel(&job);
        }
    }
}

/// Unregisters the service id when dropped.
struct Registration<'a> {
    p: &'a Process,
    service: &'a ServiceId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let _ = self.p.unregister(self.service.as_str());
    }
}

/// Starts a worker with `launcher`, waits for it to connect, and runs `block` with the
/// worker's node and the service id (hyperion's `withService`). `ShutDown` is always
/// sent to the worker and the launcher's exit hook always runs when the block ends,
/// however it ends. Only a handshake naming this service is taken (others stay for
/// their own services, so concurrent services of one process never steal each other's
/// workers). No handshake within the launcher's connection timeout is
/// [`ServiceError::WorkerConnectionTimeout`]; the job is cancelled then, and also if
/// the calling process is killed before the worker connects.
pub async fn with_service<L, F, Fut, T>(
    p: &Process,
    launcher: &L,
    block: F,
) -> Result<T, ServiceError>
where
    L: WorkerLauncher,
    F: FnOnce(NodeId, ServiceId) -> Fut,
    Fut: Future<Output = T>,
{
    with_service_using(p, launcher, &Resources::default(), block).await
}

/// [`with_service`] with a worker started with `resources` (the launcher's
/// [`launch_with`](WorkerLauncher::launch_with); one that cannot reserve them fails the
/// service with a [`ServiceError::Launch`] that says so).
pub async fn with_service_using<L, F, Fut, T>(
    p: &Process,
    launcher: &L,
    resources: &Resources,
    block: F,
) -> Result<T, ServiceError>
where
    L: WorkerLauncher,
    F: FnOnce(NodeId, ServiceId) -> Fut,
    Fut: Future<Output = T>,
{
    serve(p, launcher, resources, |worker, service| {
        block(worker.node, service)
    })
    .await
}

/// [`with_service_using`], handing the block the worker's process rather than its node.
pub(crate) async fn serve<L, F, Fut, T>(
    p: &Process,
    launcher: &L,
    resources: &Resources,
    block: F,
) -> Result<T, ServiceError>
where
    L: WorkerLauncher,
    F: FnOnce(ProcessId, ServiceId) -> Fut,
    Fut: Future<Output = T>,
{
    let service = ServiceId::fresh(p);
    p.register(service.as_str(), p.self_pid())
        .map_err(|err| ServiceError::Registration(err.to_string()))?;
    let _registration = Registration {
        p,
        service: &service,
    };
    let job = launcher
        .launch_with(p, p.self_node(), &service, resources)
        .await
        .map_err(ServiceError::Launch)?;
    tracing::info!(%service, ?job, "deployed worker");
    notify(
        p,
        StatusNotice::Launched {
            service: service.to_string(),
            job: format!("{job:?}"),
        },
    );
    let pending = CancelUnlessConnected {
        launcher,
        job: Some(job),
    };
    let job_state = || match &pending.job {
        Some(job) => launcher.job_state(job),
        None => JobState::Unknown,
    };
    let hello = match await_worker(p, &service, launcher.connection_timeout(), job_state).await {
        Awaited::Hello(hello) => hello,
        Awaited::TimedOut => {
            tracing::warn!(%service, "worker did not connect in time");
            return Err(ServiceError::WorkerConnectionTimeout(service.clone()));
        }
        Awaited::JobEnded(why) => {
            crate::reached!("remote.worker_ended_before_connecting");
            tracing::warn!(%service, %why, "worker ended before connecting");
            return Err(ServiceError::WorkerEndedBeforeConnecting {
                service: service.clone(),
                why,
            });
        }
    };
    if !p.build_id().compatible(&hello.build) {
        // Refused, not retried: a relaunch would start the same other build. The
        // pending guard cancels the job.
        let why = refusal_text(p.build_id(), &hello.build);
        crate::reached!("remote.worker_of_another_build");
        tracing::info!(%service, worker = %hello.pid, "{why}");
        crate::notice::notice(&format!("worker {} for {service}: {why}", hello.pid));
        p.send_chan(hello.reply, WorkerMessage::Refused);
        return Err(ServiceError::Launch(LaunchError {
            what: format!("worker {} for {service}", hello.pid),
            why,
        }));
    }
    let job = pending.connected();
    tracing::info!(%service, ?job, worker = %hello.pid, "acquired worker");
    p.send_chan(hello.reply, WorkerMessage::Connected);
    notify(
        p,
        StatusNotice::Connected {
            service: service.to_string(),
            worker: hello.pid,
            owner: p.self_pid(),
        },
    );
    let _shutdown = ShutdownGuard {
        p,
        launcher,
        job,
        worker: hello.pid,
        service: &service,
    };
    Ok(block(hello.pid, service.clone()).await)
}

/// How waiting for a worker's hello ended.
enum Awaited {
    Hello(WorkerHello),
    TimedOut,
    /// The launcher says the worker's job has ended: it will never connect.
    JobEnded(String),
}

/// How often the master asks the launcher whether a job it waits for still runs (only
/// launchers that can tell are asked; see [`WorkerLauncher::job_state`]).
const JOB_CHECK_PERIOD: Duration = Duration::from_millis(250);

/// Waits for the hello of this service's worker. Only that hello is taken: a hello for
/// another live service of this process (a concurrent `with_service` in the same
/// process) stays in the mailbox for it. A hello for a service that has ended (its name
/// no longer registered to this process) is dropped, so stale hellos do not pile up.
/// Meanwhile `job_state` is asked every [`JOB_CHECK_PERIOD`] until it answers
/// [`JobState::Unknown`].
async fn await_worker(
    p: &Process,
    service: &ServiceId,
    timeout: Option<Duration>,
    job_state: impl Fn() -> JobState,
) -> Awaited {
    // A timeout beyond the clock's range (`Duration::MAX`) is no timeout.
    let deadline = timeout.and_then(|timeout| p.now().checked_add(timeout));
    let me = p.self_pid();
    // A launcher that cannot tell is never asked again: waiting then sets no timer
    // beyond the connection timeout's (the simulator's traces stay as they were).
    let mut checking = match job_state() {
        JobState::Ended(why) => return Awaited::JobEnded(why),
        JobState::Running => true,
        JobState::Unknown => false,
    };
    loop {
        let matches = vec![
            match_if(
                |hello: &WorkerHello| hello.service == *service,
                |hello: WorkerHello| Some(hello),
            ),
            match_if(
                move |hello: &WorkerHello| p.whereis(hello.service.as_str()) != Some(me),
                |hello: WorkerHello| {
                    crate::reached!("remote.hello_from_unknown_service");
                    tracing::info!(got = %hello.service, worker = %hello.pid, "dropping a handshake for a service that has ended");
                    None
                },
            ),
        ];
        let left = deadline.map(|deadline| deadline.saturating_sub(p.now()));
        // The sooner of the deadline and the next job check; neither: wait for ever.
        let wait = left
            .into_iter()
            .chain(checking.then_some(JOB_CHECK_PERIOD))
            .min();
        let taken = match wait {
            None => p.receive_wait(matches).await,
            Some(wait) => match p.receive_timeout(wait, matches).await {
                Some(taken) => taken,
                None => {
                    if deadline.is_some_and(|deadline| p.now() >= deadline) {
                        return Awaited::TimedOut;
                    }
                    match job_state() {
                        JobState::Ended(why) => return Awaited::JobEnded(why),
                        JobState::Running => {}
                        JobState::Unknown => checking = false,
                    }
                    None
                }
            },
        };
        if let Some(hello) = taken {
            return Awaited::Hello(hello);
        }
    }
}
