//! The status agent: a process on the master's node, registered as
//! [`STATUS_AGENT_NAME`], that turns notices from the remote layer and commands from
//! the status server into changes of the [`StatusBoard`] and of the master (releasing
//! or cancelling a hold, killing a task's process).
//!
//! Commands from the server cross threads the way everything does into a node: posted
//! to the node's inbox as a message to the agent, so the server never waits for the
//! node and the node never waits for the server.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::snapshot::{Snapshot, StatusBoard};
use crate::node::local::{Inbox, InboxItem};
use crate::process::Process;
use crate::remote::status_notice::{StatusNotice, STATUS_AGENT_NAME};
use crate::remote::ReleaseHold;
use crate::types::id::ProcessId;
use crate::{match_type, Message};

/// A change asked for from the status page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusCommand {
    /// Retry one held call.
    Retry(String),
    /// Retry every held call.
    RetryAll,
    /// Cancel a held call: its work is given up and its tasks cancelled.
    CancelHeld(String),
    /// Cancel a task: its process (and so its worker) is stopped.
    CancelTask(String),
}

/// Where the agent runs: its node's inbox and its id.
struct AgentLink {
    inbox: Arc<Inbox>,
    agent: ProcessId,
}

/// What a board and its server share.
pub(crate) struct Shared {
    snapshot: Mutex<Snapshot>,
    agent: Mutex<Option<AgentLink>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusBoard")
    }
}

impl Shared {
    pub(crate) fn new(snapshot: Snapshot) -> Shared {
        Shared {
            snapshot: Mutex::new(snapshot),
            agent: Mutex::new(None),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding the lock leaves a consistent-enough snapshot to show.
        self.snapshot
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Why a command could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoAgent;

impl StatusBoard {
    /// Starts the status agent on `p`'s node (once per board; later calls do nothing),
    /// so that the remote layer's notices reach this board and the page's commands
    /// reach the master. Call it first thing in the master's program.
    pub fn attach(&self, p: &Process) {
        let mut link = self
            .shared
            .agent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if link.is_some() {
            return;
        }
        let board = self.clone();
        let agent = p.spawn_local(move |a| async move { run_agent(a, board).await });
        if let Err(err) = p.register(STATUS_AGENT_NAME, agent) {
            tracing::warn!(%err, "cannot register the status agent; the page will miss workers and holds");
        }
        *link = Some(AgentLink {
            inbox: p.local_node().inbox().clone(),
            agent,
        });
    }

    /// Sends `command` to the master's agent, without waiting.
    pub(crate) fn command(&self, command: StatusCommand) -> Result<(), NoAgent> {
        let link = self
            .shared
            .agent
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(link) = link.as_ref() else {
            return Err(NoAgent);
        };
        let agent = link.agent;
        link.inbox.post(InboxItem::Run(Box::new(move |node| {
            node.state().deliver(agent, Message::new(command));
        })));
        Ok(())
    }
}

enum Input {
    Notice(StatusNotice),
    Command(StatusCommand),
}

async fn run_agent(a: Process, board: StatusBoard) {
    loop {
        let input = a
            .receive_wait(vec![match_type(Input::Notice), match_type(Input::Command)])
            .await;
        match input {
            Input::Notice(notice) => apply_notice(&a, &board, notice),
            Input::Command(command) => apply_command(&a, &board, command),
        }
    }
}

fn apply_notice(a: &Process, board: &StatusBoard, notice: StatusNotice) {
    match notice {
        StatusNotice::Launched { service, job } => board.worker_launched(a, &service, job),
        StatusNotice::Connected {
            service,
            worker,
            owner,
        } => board.worker_connected(a, &service, worker, owner),
        StatusNotice::Ended { service } => board.worker_ended(a, &service),
        StatusNotice::Held {
            service,
            error,
            holder,
        } => board.held(a, &service, error, holder),
        StatusNotice::Released { service } => board.released(a, &service),
    }
}

fn apply_command(a: &Process, board: &StatusBoard, command: StatusCommand) {
    tracing::info!(?command, "status page command");
    match command {
        StatusCommand::Retry(id) => {
            let holder = board.lock().held.get(&id).map(|held| held.holder);
            if let Some(holder) = holder {
                a.send(holder, ReleaseHold);
            }
        }
        StatusCommand::RetryAll => {
            let holders: Vec<ProcessId> = board.lock().held.values().map(|h| h.holder).collect();
            for holder in holders {
                a.send(holder, ReleaseHold);
            }
        }
        StatusCommand::CancelHeld(id) => {
            if let Some(holder) = board.hold_cancelled(a, &id) {
                a.kill(holder, "held call cancelled from the status page");
            }
        }
        StatusCommand::CancelTask(key) => {
            for pid in board.task_cancelled(a, &key) {
                a.kill(pid, "task cancelled from the status page");
            }
        }
    }
}
