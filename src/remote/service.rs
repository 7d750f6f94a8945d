//! Services: a master's registration for one worker, and the bracket around its use.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::launcher::{LaunchError, WorkerLauncher};
use crate::match_type;
use crate::process::channel::SendPort;
use crate::process::id::{NodeId, ProcessId};
use crate::process::Process;
use crate::status::StatusNotice;

/// Names one master/worker pairing. Unique across every master of a cluster: it joins
/// the master's node address, its incarnation, a per-process counter and a random
/// number (from the node's seeded source, so it is reproducible in the simulator).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ServiceId(String);

impl ServiceId {
    /// A fresh id for a service of `p`'s node.
    pub fn fresh(p: &Process) -> ServiceId {
        let node = p.self_node();
        ServiceId(format!(
            "service-{}-{:x}-{}-{:08x}",
            node.address,
            node.incarnation,
            p.self_pid().local,
            p.random_u64() as u32
        ))
    }

    /// The id as text (it is also the name registered on the master).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id from text (a worker reads it from its command line).
    pub fn from_text(text: &str) -> ServiceId {
        ServiceId(text.to_string())
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a master tells its worker.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum WorkerMessage {
    /// The handshake is accepted: serve closures until `ShutDown`.
    Connected,
    /// The service is over: stop.
    ShutDown,
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
}

/// Why a service could not run the user's block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// The launcher could not start a worker.
    Launch(LaunchError),
    /// No worker connected within the launcher's connection timeout.
    WorkerConnectionTimeout(ServiceId),
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
            ServiceError::Registration(why) => write!(f, "cannot register the service: {why}"),
        }
    }
}

impl std::error::Error for ServiceError {}

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
        self.p.send(self.worker, WorkerMessage::ShutDown);
        self.launcher.on_exit(&self.job);
        crate::status::notify(
            self.p,
            StatusNotice::Ended {
                service: self.service.to_string(),
            },
        );
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
/// however it ends. A handshake for another service is ignored; no handshake within the
/// launcher's connection timeout is [`ServiceError::WorkerConnectionTimeout`] (and the
/// job is cancelled).
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
    serve(p, launcher, |worker, service| block(worker.node, service)).await
}

/// [`with_service`], handing the block the worker's process rather than its node.
pub(crate) async fn serve<L, F, Fut, T>(
    p: &Process,
    launcher: &L,
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
        .launch(p, p.self_node(), &service)
        .await
        .map_err(ServiceError::Launch)?;
    tracing::info!(%service, ?job, "deployed worker");
    crate::status::notify(
        p,
        StatusNotice::Launched {
            service: service.to_string(),
            job: format!("{job:?}"),
        },
    );
    let Some(hello) = await_worker(p, &service, launcher.connection_timeout()).await else {
        tracing::warn!(%service, ?job, "worker did not connect in time; cancelling it");
        launcher.cancel(&job);
        return Err(ServiceError::WorkerConnectionTimeout(service.clone()));
    };
    tracing::info!(%service, ?job, worker = %hello.pid, "acquired worker");
    p.send_chan(hello.reply, WorkerMessage::Connected);
    crate::status::notify(
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

/// Waits for the hello of this service's worker, ignoring others'.
async fn await_worker(
    p: &Process,
    service: &ServiceId,
    timeout: Option<Duration>,
) -> Option<WorkerHello> {
    let deadline = timeout.map(|timeout| p.now() + timeout);
    loop {
        let hello = match deadline {
            None => {
                p.receive_wait(vec![match_type(|hello: WorkerHello| hello)])
                    .await
            }
            Some(deadline) => {
                let left = deadline.saturating_sub(p.now());
                p.receive_timeout(left, vec![match_type(|hello: WorkerHello| hello)])
                    .await?
            }
        };
        if hello.service == *service {
            return Some(hello);
        }
        tracing::info!(expected = %service, got = %hello.service, worker = %hello.pid, "ignoring a handshake for another service");
    }
}
