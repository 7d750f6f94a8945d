//! The [`Process`] handle itself: the node it runs on, its id and its task, and the
//! few accessors every part of `process/` needs (its slot, its clock). Kept apart from
//! `mod.rs` so that `receive` and `timer`, which take a `&Process`, do not import the
//! module that imports them (issue 19: no import cycle between files).

use std::time::Duration;

use crate::kernel::ProcessSlot;
use crate::kernel::TaskId;
use crate::node::local::{LocalNode, NodeState};
use crate::types::id::{NodeId, ProcessId};

/// The handle a process runs with: its identity and its way to act on the world.
///
/// A process body receives its `Process` by value; borrow it (`&p`) in futures that run
/// inside the same process. Blocking operations (receives, sleeps) may only be awaited
/// by the process the handle belongs to; using it from another process panics with a
/// clear message rather than hanging.
pub struct Process {
    pub(super) node: LocalNode,
    pub(super) pid: ProcessId,
    pub(super) task: TaskId,
}

impl Process {
    pub(crate) fn new(node: LocalNode, pid: ProcessId, task: TaskId) -> Process {
        Process { node, pid, task }
    }

    pub(crate) fn node(&self) -> &LocalNode {
        &self.node
    }

    /// A second handle on this process, for values that must act for it when dropped.
    pub(crate) fn clone_handle(&self) -> Process {
        Process::new(self.node.clone(), self.pid, self.task)
    }

    /// This process's slot, checking that it is the one being polled: a handle moved
    /// into another process must fail loudly, not wait forever for wakes that go
    /// elsewhere.
    #[inline]
    pub(crate) fn running_slot<'s>(&self, state: &'s mut NodeState) -> &'s mut ProcessSlot {
        state.running_slot(self.task, self.pid)
    }

    /// Panics unless this handle's own process is the one being polled.
    pub(crate) fn assert_running(&self) {
        self.running_slot(&mut self.node.state());
    }

    /// Marks the process as blocked in a receive, so that the next delivery wakes it.
    pub(crate) fn wait_for_delivery(&self) {
        self.node.state().wait_for_delivery(self.task);
    }

    /// This process's id (Cloud Haskell's `getSelfPid`).
    pub fn self_pid(&self) -> ProcessId {
        self.pid
    }

    /// The id of the node this process runs on (`getSelfNode`).
    pub fn self_node(&self) -> NodeId {
        self.pid.node
    }

    /// The node this process runs on.
    pub fn local_node(&self) -> &LocalNode {
        &self.node
    }

    /// The build of the program this node runs (see [`crate::build_id`]).
    pub fn build_id(&self) -> &crate::build_id::BuildId {
        self.node.build()
    }

    /// The node's clock: time since the node's epoch.
    pub fn now(&self) -> Duration {
        self.node.now()
    }
}
