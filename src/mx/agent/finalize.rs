//! How an agent ends: why it stopped ([`MxAgentStop`]), what its finalizer receives
//! ([`MxFinalize`]), and the state the loop and the exit hook share so that the
//! finalizer runs exactly once.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{Deserialize, Serialize};

use super::id::MxAgentId;
use crate::bus::BusItem;
use crate::message::Message;
use crate::node::LocalNode;
use crate::types::id::{DiedReason, ProcessId};
use crate::Serializable;

/// How an agent stopped, as its finalizer is told.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MxAgentStop {
    /// A sink returned [`mx_deactivate`](super::action::mx_deactivate) with this reason.
    Deactivated(String),
    /// Its process died: a sink panicked, it was killed or exited, or its node shut
    /// down.
    Died(DiedReason),
}

/// What an agent's finalizer receives: the final local state, why the agent stopped,
/// and the node (the agent's process is gone; messages sent from here carry its pid).
pub struct MxFinalize<'a, S> {
    state: S,
    stop: MxAgentStop,
    id: MxAgentId,
    pid: ProcessId,
    node: &'a LocalNode,
}

impl<S> MxFinalize<'_, S> {
    /// The agent's local state when it stopped.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The local state, by value.
    pub fn into_state(self) -> S {
        self.state
    }

    /// Why the agent stopped.
    pub fn stop(&self) -> &MxAgentStop {
        &self.stop
    }

    /// The agent's id.
    pub fn id(&self) -> &MxAgentId {
        &self.id
    }

    /// The agent's (now dead) process id.
    pub fn pid(&self) -> ProcessId {
        self.pid
    }

    /// The node the agent ran on.
    pub fn node(&self) -> &LocalNode {
        self.node
    }

    /// Sends `value` to `to`, from the agent's pid.
    pub fn send<T: Serializable>(&self, to: ProcessId, value: T) {
        match self.node.inner.state.try_borrow_mut() {
            Ok(mut state) => state.send_from(self.pid, to, Message::new(value)),
            Err(_) => tracing::error!(agent = %self.id, "finalizer send dropped: node busy"),
        }
    }

    /// Publishes `value` on the node's event bus, for the agents still running.
    pub fn mx_broadcast<T: Serializable>(&self, value: T) {
        match self.node.inner.state.try_borrow_mut() {
            Ok(mut state) => {
                if state.mx.is_active() {
                    state.mx_publish(BusItem::Message(Message::new(value)));
                }
            }
            Err(_) => tracing::error!(agent = %self.id, "finalizer broadcast dropped: node busy"),
        }
    }
}

pub(super) type Finalizer<S> = Box<dyn for<'a> FnOnce(MxFinalize<'a, S>)>;

/// What the agent's loop and its exit hook share: whichever runs last with the state
/// free runs the finalizer, once.
pub(super) struct Shared<S> {
    pub(super) id: MxAgentId,
    pub(super) state: RefCell<Option<S>>,
    pub(super) finalizer: RefCell<Option<Finalizer<S>>>,
    /// Set by a sink's `mx_deactivate`, read by the exit hook.
    pub(super) deactivated: RefCell<Option<String>>,
    /// Set by the exit hook: the agent is dead.
    pub(super) stop: RefCell<Option<MxAgentStop>>,
}

impl<S> Shared<S> {
    /// Runs the finalizer if the agent has stopped and its state is not in use (a sink
    /// that shuts its own node down is still running: then the loop's drop does it).
    pub(super) fn try_finalize(&self, pid: ProcessId, node: &LocalNode) {
        let Some(stop) = self.stop.borrow().clone() else {
            return;
        };
        if crate::planted::is_planted(crate::planted::Defect::FinalizerSkippedOnKill)
            && matches!(&stop, MxAgentStop::Died(DiedReason::Exception(why)) if why.starts_with("killed"))
        {
            return;
        }
        let Ok(mut slot) = self.state.try_borrow_mut() else {
            return;
        };
        let Some(finalizer) = self.finalizer.borrow_mut().take() else {
            return;
        };
        let Some(state) = slot.take() else { return };
        drop(slot);
        let context = MxFinalize {
            state,
            stop,
            id: self.id.clone(),
            pid,
            node,
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| finalizer(context))) {
            let text = crate::types::id::panic_text(panic.as_ref());
            tracing::error!(agent = %self.id, %text, "management agent finalizer panicked");
        }
    }
}
