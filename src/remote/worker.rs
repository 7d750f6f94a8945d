//! The worker's side of the handshake.

use std::time::Duration;

use super::service::{WorkerHello, WorkerMessage};
use super::service_id::ServiceId;
use crate::process::channel::ReceivePort;
use crate::process::Process;
use crate::types::id::NodeId;
use crate::types::signals::NodeMonitorNotification;
use crate::{match_chan, match_if, match_type};

/// Handshake attempts a worker makes by default (hyperion's 5).
pub const HANDSHAKE_ATTEMPTS_DEFAULT: u32 = 5;
/// How long a worker waits for `Connected` after each hello, by default (10 s).
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// The least time between two hellos of one attempt, when the connection that carried
/// the first broke before an answer came: a master whose node refuses connections at
/// once is not flooded with them.
pub const HELLO_AGAIN_PAUSE: Duration = Duration::from_millis(500);

/// How a worker connects to its master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Hellos sent before giving up.
    pub attempts: u32,
    /// Wait for `Connected` after each hello. A hello whose connection broke before the
    /// answer (it may have been lost with it) is said again within the same attempt,
    /// [`HELLO_AGAIN_PAUSE`] after the break, until this runs out.
    pub attempt_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            attempts: HANDSHAKE_ATTEMPTS_DEFAULT,
            attempt_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
        }
    }
}

/// How a worker's service ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// The master sent `ShutDown`.
    ShutDown,
    /// Nobody answered any hello.
    NoMaster,
    /// The master refused this worker: it runs another build of the program.
    Refused,
    /// The master's node died or its connection was lost while serving: the worker stops
    /// rather than live on orphaned until its wall-time.
    MasterLost,
}

/// The worker entry point (hyperion's `worker`): says hello to the process registered
/// as `service` on `master` (up to `config.attempts` times, waiting
/// `config.attempt_timeout` for `Connected` after each), then serves — the node runs the
/// closures the master spawns on it — until `ShutDown`, or until the master's node is
/// lost.
///
/// An attempt counts the master's silence, not the network's losses: when the
/// connection to the master's node breaks during an attempt (a connection refused,
/// or dropped by a handshake timeout while a loaded master was slow to accept it), the
/// hello may have been lost with it, so the worker says it again on a fresh connection
/// within the same attempt rather than wait out the attempt for an answer that cannot
/// come. A worker still gives up after `attempts × attempt_timeout` at the latest.
pub async fn worker(
    p: &Process,
    master: NodeId,
    service: ServiceId,
    config: WorkerConfig,
) -> WorkerExit {
    let (reply, replies) = p.new_chan::<WorkerMessage>();
    let hello = WorkerHello {
        pid: p.self_pid(),
        service: service.clone(),
        reply,
        build: p.build_id().clone(),
    };
    let mut connected = false;
    for attempt in 1..=crate::planted::handshake_attempts(config.attempts) {
        tracing::info!(%master, %service, attempt, "connecting to master");
        crate::sometimes!("remote.handshake_retried", attempt > 1);
        // A simulator may slow a handshake step down, as a loaded login node does.
        if crate::buggify!() {
            crate::reached!("remote.buggify.slow_handshake");
            p.sleep(Duration::from_millis(p.random_u64() % 15_000))
                .await;
        }
        match attempt_handshake(p, master, &hello, &replies, config.attempt_timeout).await {
            Some(WorkerMessage::Connected) => {
                connected = true;
                break;
            }
            Some(WorkerMessage::Refused) => {
                tracing::error!(%master, %service, build = %p.build_id(), "the master refused this worker: it runs another build of the program; stopping");
                return WorkerExit::Refused;
            }
            _ => {}
        }
    }
    if !connected {
        tracing::warn!(%master, %service, "could not connect to master; stopping");
        return WorkerExit::NoMaster;
    }
    tracing::info!(%master, %service, "connected to master");
    let watch = p.monitor_node(master);
    loop {
        let event = p
            .receive_wait(vec![
                match_type(|message: WorkerMessage| Some(message)),
                // A late `Connected` answering an earlier hello: nothing to do.
                match_chan(&replies, |_: WorkerMessage| None),
                match_if(
                    move |n: &NodeMonitorNotification| n.monitor_ref == watch,
                    |_| Some(WorkerMessage::Connected),
                ),
            ])
            .await;
        match event {
            None => continue,
            Some(WorkerMessage::ShutDown) | Some(WorkerMessage::Refused) => {
                tracing::info!(%service, "shutting down");
                return WorkerExit::ShutDown;
            }
            Some(WorkerMessage::Connected) => {
                tracing::warn!(%master, %service, "lost the master; stopping");
                return WorkerExit::MasterLost;
            }
        }
    }
}

/// One attempt: says `hello` and waits up to `timeout` for the master's answer, saying
/// it again (after [`HELLO_AGAIN_PAUSE`]) whenever the connection to `master` breaks
/// first. `None`: no answer in time.
async fn attempt_handshake(
    p: &Process,
    master: NodeId,
    hello: &WorkerHello,
    replies: &ReceivePort<WorkerMessage>,
    timeout: Duration,
) -> Option<WorkerMessage> {
    let deadline = p.now().saturating_add(timeout);
    loop {
        // Watched before the hello goes out, so a break of the connection that carries
        // it is seen whenever it happens.
        let watch = p.monitor_node(master);
        p.nsend_remote(master, hello.service.as_str(), hello.clone());
        let event = p
            .receive_timeout(
                deadline.saturating_sub(p.now()),
                vec![
                    match_chan(replies, Some),
                    match_if(
                        move |n: &NodeMonitorNotification| n.monitor_ref == watch,
                        |_| None,
                    ),
                ],
            )
            .await;
        p.unmonitor_node(watch);
        match event {
            Some(Some(answer)) => return Some(answer),
            None => return None,
            Some(None) => {
                crate::reached!("remote.hello_said_again");
                tracing::info!(%master, service = %hello.service, "the connection to the master broke before it answered; saying hello again");
                let left = deadline.saturating_sub(p.now());
                p.sleep(HELLO_AGAIN_PAUSE.min(left)).await;
                if p.now() >= deadline {
                    return None;
                }
            }
        }
    }
}
