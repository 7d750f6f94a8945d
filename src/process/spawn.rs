//! Spawning: how a body (`FnOnce(Process) -> Future`) becomes a process of a node. The
//! node inserts the slot and owns the task ([`LocalNode::insert_process`],
//! [`LocalNode::start_process`]); this module builds the [`Process`] handle and the
//! future, catching a panic while building, so the node itself never names `Process`.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use super::id::{DiedReason, ProcessId, ProcessOutcome};
use super::Process;
use crate::kernel::{ExitHook, ProcessFuture};
use crate::node::local::{LocalNode, NodeState};

impl LocalNode {
    /// Starts a process running `body`. It runs when the driver next polls this node.
    ///
    /// A panic in `body` (building the process's future) does not reach the caller: the
    /// process dies at once with [`DiedReason::Exception`] (`"panicked: ..."`), and its
    /// id is still returned.
    pub fn spawn<F, Fut>(&self, body: F) -> ProcessId
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        match self.spawn_inner(body, |_, _| {}) {
            Ok(pid) | Err((pid, _)) => pid,
        }
    }

    /// [`spawn`](LocalNode::spawn) with `setup` run on the new process's id before
    /// `body` (a link, a monitor, an exit hook: in place before a panic in `body` could
    /// end the process), saying whether `body` panicked: then the process is dead
    /// already and the error is the panic's text.
    pub(crate) fn spawn_inner<F, Fut>(
        &self,
        body: F,
        setup: impl FnOnce(&mut NodeState, ProcessId),
    ) -> Result<ProcessId, (ProcessId, String)>
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        let (task, pid) = self.insert_process(setup);
        // The body runs without the node borrowed: building the future may use the node.
        // It is user code: a panic in it ends this process, not the node's thread.
        let process = Process::new(self.clone(), pid, task);
        let built = catch_unwind(AssertUnwindSafe(move || {
            let future = body(process);
            let future: ProcessFuture = Box::pin(async move { future.await.into_reason() });
            future
        }));
        self.start_process(task, pid, built)
    }

    /// Spawns a process and calls `on_exit` with its result when it ends: `Ok` with the
    /// value its future returned, or `Err` with why it died first. This is how drivers
    /// run a program to completion (Cloud Haskell's `runProcess`).
    pub fn spawn_with_result<F, Fut, T>(
        &self,
        body: F,
        on_exit: impl FnOnce(Result<T, DiedReason>) + 'static,
    ) -> ProcessId
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        let result: Rc<RefCell<Option<T>>> = Rc::default();
        let result_in_process = result.clone();
        let hook: ExitHook = Box::new(move |reason| {
            let value = result.borrow_mut().take();
            on_exit(value.ok_or_else(|| reason.clone()));
        });
        let spawned = self.spawn_inner(
            move |process| {
                let future = body(process);
                async move {
                    let value = future.await;
                    *result_in_process.borrow_mut() = Some(value);
                }
            },
            |state, pid| state.add_exit_hook(pid, hook),
        );
        match spawned {
            Ok(pid) | Err((pid, _)) => pid,
        }
    }
}
