//! The worker's side of the handshake.

use std::time::Duration;

use super::service::{WorkerHello, WorkerMessage};
use super::service_id::ServiceId;
use crate::process::Process;
use crate::types::id::NodeId;
use crate::types::signals::NodeMonitorNotification;
use crate::{match_chan, match_if, match_type};

/// Handshake attempts a worker makes by default (hyperion's 5).
pub const HANDSHAKE_ATTEMPTS_DEFAULT: u32 = 5;
/// How long a worker waits for `Connected` after each hello, by default (10 s).
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// How a worker connects to its master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Hellos sent before giving up.
    pub attempts: u32,
    /// Wait for `Connected` after each hello.
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
pub async fn worker(
    p: &Process,
    master: NodeId,
    service: ServiceId,
    config: WorkerConfig,
) -> WorkerExit {
    let (reply, replies) = p.new_chan::<WorkerMessage>();
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
        let hello = WorkerHello {
            pid: p.self_pid(),
            service: service.clone(),
            reply,
            build: p.build_id().clone(),
        };
        p.nsend_remote(master, service.as_str(), hello);
        match p
            .receive_chan_timeout(config.attempt_timeout, &replies)
            .await
        {
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
