//! Waiting on an [`Async`] from a process other than its owner (Cloud Haskell allows
//! it): the owner's mailbox gets the reply, so another waiter watches the task's
//! process instead, and reads the value the task left in a cell shared on the node.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::{Async, AsyncResult};
use crate::match_if;
use crate::message::Serializable;
use crate::process::Process;
use crate::types::id::DiedReason;
use crate::types::signals::ProcessMonitorNotification;

/// How a local task ended, for waiters other than its owner: its value, or why its
/// process died first (kept, so a waiter that comes late still learns it).
pub(super) struct ValueCell<T>(Rc<RefCell<Option<AsyncResult<T>>>>);

impl<T> Default for ValueCell<T> {
    fn default() -> Self {
        ValueCell(Rc::default())
    }
}

impl<T> std::fmt::Debug for ValueCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.borrow().is_some() {
            "ended"
        } else {
            "running"
        };
        write!(f, "ValueCell({state})")
    }
}

impl<T> Clone for ValueCell<T> {
    fn clone(&self) -> Self {
        ValueCell(self.0.clone())
    }
}

impl<T: Clone> ValueCell<T> {
    /// The task computed `value`.
    pub(super) fn put(&self, value: T) {
        *self.0.borrow_mut() = Some(AsyncResult::Done(value));
    }

    /// The task's process ended with `reason` (after `put`, if it got that far).
    pub(super) fn ended(&self, reason: &DiedReason) {
        let mut outcome = self.0.borrow_mut();
        if outcome.is_none() {
            *outcome = Some(AsyncResult::Failed(reason.clone()));
        }
    }

    fn get(&self) -> Option<AsyncResult<T>> {
        self.0.borrow().clone()
    }
}

impl<T: Serializable + Clone> Async<T> {
    /// Whether `p` started this task (it holds the task's monitor). A settled task
    /// has no monitor; anyone gets its outcome at once.
    pub(super) fn is_owner(&self, p: &Process) -> bool {
        if self.outcome.borrow().is_some() {
            return true;
        }
        p.local_node()
            .state()
            .relations_of(p.self_pid())
            .is_some_and(|relations| relations.monitoring.contains(self.monitor.id))
    }

    /// Waits as a process other than the owner: watches the task's process, and when
    /// it ends normally takes the value it left. The owner's own view is untouched.
    pub(super) async fn wait_as_other(
        &self,
        p: &Process,
        timeout: Option<Duration>,
    ) -> AsyncResult<T> {
        let Some(cell) = &self.value else {
            // A task on another node answers its owner only.
            return AsyncResult::Failed(DiedReason::Exception(
                "only the owner can wait on a task of another node".to_string(),
            ));
        };
        let cancelled = |outcome: AsyncResult<T>| match outcome {
            AsyncResult::Failed(_) if self.cancelled.get() => AsyncResult::Cancelled,
            other => other,
        };
        if let Some(outcome) = cell.get() {
            return cancelled(outcome);
        }
        let watch = p.monitor(self.pid);
        let wanted = vec![match_if(
            move |n: &ProcessMonitorNotification| n.monitor_ref == watch,
            |n: ProcessMonitorNotification| n.reason,
        )];
        let reason = match timeout {
            None => Some(p.receive_wait(wanted).await),
            Some(timeout) => p.receive_timeout(timeout, wanted).await,
        };
        let Some(reason) = reason else {
            p.unmonitor(watch);
            return AsyncResult::Pending;
        };
        // The task's exit hook has run by the time its monitor fires.
        cancelled(cell.get().unwrap_or(AsyncResult::Failed(reason)))
    }
}
