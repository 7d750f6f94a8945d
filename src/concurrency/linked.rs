//! An [`Async`] tied to its owner (distributed-process-async's `asyncLinked`), and
//! cancelling as one call (`cancelWait`, `cancelWith`).

use std::fmt;
use std::future::Future;
use std::rc::Rc;

use super::{Async, AsyncResult};
use crate::message::Serializable;
use crate::node::LocalNode;
use crate::process::Process;

impl Process {
    /// Like [`async_task`](Process::async_task), with the task and this process tied
    /// together: if the task fails, this process dies as a link makes it (or, trapping
    /// exits, gets a [`ProcessLinkSignal`]); when this process ends, however it ends,
    /// the task is killed. Cancelling the task does not count as a failure.
    ///
    /// [`ProcessLinkSignal`]: crate::ProcessLinkSignal
    pub fn async_linked<T, F, Fut>(&self, body: F) -> Async<T>
    where
        T: Serializable + Clone,
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
    {
        let task = self.async_task(body);
        let child = task.pid();
        let owner = self.self_pid();
        self.link(child);
        // Weak: the hook lives in the node's own state.
        let node = Rc::downgrade(&self.local_node().inner);
        self.local_node().on_exit(
            owner,
            Box::new(move |_| {
                if let Some(inner) = node.upgrade() {
                    LocalNode { inner }
                        .state()
                        .kill(owner, child, "its owner ended".to_string());
                }
            }),
        );
        task
    }
}

impl<T: Serializable + Clone> Async<T> {
    /// Cancels the task and waits for its outcome ([`AsyncResult::Cancelled`], unless
    /// it finished first): `cancel` and `wait` as one call (`cancelWait`).
    pub async fn cancel_wait(&self, p: &Process) -> AsyncResult<T> {
        self.cancel(p);
        self.wait(p).await
    }

    /// Asks the task to exit with `reason` ([`Process::exit_with`]) and waits for its
    /// outcome (`cancelWith`): [`AsyncResult::Cancelled`] if it died of it, its value if
    /// it caught the exit ([`Process::catch_exit`]) and returned one.
    pub async fn cancel_with<R: Serializable + fmt::Debug>(
        &self,
        p: &Process,
        reason: R,
    ) -> AsyncResult<T> {
        if self.outcome.borrow().is_none() {
            self.cancelled.set(true);
            unlink_if_linked(p, self.pid);
            p.exit_with(self.pid, reason);
        }
        self.wait(p).await
    }
}

/// Withdraws `p`'s link to a task it is about to stop on purpose (an
/// [`async_linked`](Process::async_linked) owner must not die of its own cancel).
pub(super) fn unlink_if_linked(p: &Process, task: crate::ProcessId) {
    let linked = p
        .local_node()
        .state()
        .relations_of(p.self_pid())
        .is_some_and(|relations| relations.linked_to.contains(&task));
    if linked {
        p.unlink(task);
    }
}
