//! Asynchronous work and concurrency helpers (Cloud Haskell's
//! distributed-process-async, and what hyperion's users build on it).
//!
//! An [`Async`] is a process computing a value; its owner can [`wait`](Async::wait)
//! for it, [`wait_timeout`](Async::wait_timeout), [`poll`](Async::poll) or
//! [`cancel`](Async::cancel) it. The outcome is an [`AsyncResult`]: done, failed (the
//! process died first, with its reason), link failed, cancelled, or still pending.

mod any;
mod linked;
mod other_waiter;

pub use any::{wait_any, wait_any_timeout};

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kernel::Abandoned;
use crate::message::{Message, Serializable};
use crate::node::LocalNode;
use crate::process::Process;
use crate::types::id::{DiedReason, MonitorRef, ProcessId};
use crate::types::signals::ProcessMonitorNotification;
use crate::{match_if, Match};

/// The outcome of an [`Async`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AsyncResult<T> {
    /// It finished with this value.
    Done(T),
    /// Its process died before answering.
    Failed(DiedReason),
    /// A process it depended on (linked to) died.
    LinkFailed(DiedReason),
    /// It was cancelled.
    Cancelled,
    /// It has not finished yet (from `poll` or a timeout).
    Pending,
}

impl<T> AsyncResult<T> {
    /// The value, if done.
    pub fn done(self) -> Option<T> {
        match self {
            AsyncResult::Done(value) => Some(value),
            _ => None,
        }
    }
}

/// The message an async process sends its owner when it finishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncReply<T> {
    /// Which async this answers.
    pub id: u64,
    /// The value.
    pub value: T,
}

/// A computation running in its own process, owned by the process that started it.
///
/// Dropping an `Async` that has not settled (a `race` loser, a handle nobody waits
/// for) leaves nothing behind in its owner's mailbox: its reply and its monitor
/// notification, queued or still to come, are dropped. The computation itself runs on
/// unless [`cancel`](Async::cancel)led.
pub struct Async<T> {
    pid: ProcessId,
    id: u64,
    monitor: MonitorRef,
    cancelled: std::cell::Cell<bool>,
    outcome: RefCell<Option<AsyncResult<T>>>,
    /// Where a local task leaves its value for waiters other than its owner.
    value: Option<other_waiter::ValueCell<T>>,
    /// The owner's node and id, to clean up after a drop; `None` once nothing is
    /// pending (settled at creation).
    owner: Option<(LocalNode, ProcessId)>,
    /// Whether a message is this async's reply (`T` is not known to `Drop`).
    is_reply: fn(&mut Message, u64) -> bool,
}

impl<T> std::fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Async")
            .field("pid", &self.pid)
            .field("id", &self.id)
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

fn is_reply_of<T: Serializable>(message: &mut Message, id: u64) -> bool {
    message
        .peek::<AsyncReply<T>>()
        .is_some_and(|reply| reply.id == id)
}

impl<T: Serializable + Clone> Async<T> {
    /// Wraps a process (already started, monitored by `monitor` from `owner`) that will
    /// send an [`AsyncReply`] with `id` to `owner`. Used by remote calls; most users
    /// call [`Process::async_task`].
    pub fn from_parts(owner: &Process, pid: ProcessId, id: u64, monitor: MonitorRef) -> Async<T> {
        Async {
            pid,
            id,
            monitor,
            cancelled: std::cell::Cell::new(false),
            outcome: RefCell::new(None),
            value: None,
            owner: Some((owner.local_node().clone(), owner.self_pid())),
            is_reply: is_reply_of::<T>,
        }
    }

    /// An async whose outcome is already known (it never started).
    pub fn settled(pid: ProcessId, outcome: AsyncResult<T>) -> Async<T> {
        Async {
            pid,
            id: 0,
            monitor: MonitorRef { target: pid, id: 0 },
            cancelled: std::cell::Cell::new(false),
            outcome: RefCell::new(Some(outcome)),
            value: None,
            owner: None,
            is_reply: is_reply_of::<T>,
        }
    }

    /// The process computing the value.
    pub fn pid(&self) -> ProcessId {
        self.pid
    }

    fn matches<'a>(&self) -> Vec<Match<'a, AsyncResult<T>>> {
        let id = self.id;
        let monitor = self.monitor;
        vec![
            match_if(
                move |reply: &AsyncReply<T>| reply.id == id,
                |reply: AsyncReply<T>| AsyncResult::Done(reply.value),
            ),
            match_if(
                move |n: &ProcessMonitorNotification| n.monitor_ref == monitor,
                |n: ProcessMonitorNotification| AsyncResult::Failed(n.reason),
            ),
        ]
    }

    fn settle(&self, p: &Process, outcome: AsyncResult<T>) -> AsyncResult<T> {
        let outcome = match outcome {
            AsyncResult::Failed(_) if self.cancelled.get() => AsyncResult::Cancelled,
            other => other,
        };
        if !matches!(outcome, AsyncResult::Pending) {
            p.unmonitor(self.monitor);
            *self.outcome.borrow_mut() = Some(outcome.clone());
        }
        outcome
    }

    /// Waits for the outcome. Any process of the owner's node may wait (share the
    /// `Async` with an `Rc`), as in Cloud Haskell.
    pub async fn wait(&self, p: &Process) -> AsyncResult<T> {
        if !self.is_owner(p) {
            return self.wait_as_other(p, None).await;
        }
        self.wait_with(p, None, Vec::new()).await
    }

    /// Waits at most `timeout`; [`AsyncResult::Pending`] if it is not done by then.
    pub async fn wait_timeout(&self, p: &Process, timeout: Duration) -> AsyncResult<T> {
        if !self.is_owner(p) {
            return self.wait_as_other(p, Some(timeout)).await;
        }
        self.wait_with(p, Some(timeout), Vec::new()).await
    }

    /// Waits for the outcome, or for one of `also` (other ways the wait can end, such
    /// as a process the computation depends on dying).
    pub(crate) async fn wait_with<'a>(
        &'a self,
        p: &'a Process,
        timeout: Option<Duration>,
        also: Vec<Match<'a, AsyncResult<T>>>,
    ) -> AsyncResult<T> {
        if let Some(outcome) = self.outcome.borrow().clone() {
            return outcome;
        }
        let mut matches = self.matches();
        matches.extend(also);
        let outcome = match timeout {
            None => p.receive_wait(matches).await,
            Some(timeout) => p
                .receive_timeout(timeout, matches)
                .await
                .unwrap_or(AsyncResult::Pending),
        };
        self.settle(p, outcome)
    }

    /// The outcome if it is already there, [`AsyncResult::Pending`] otherwise.
    pub async fn poll(&self, p: &Process) -> AsyncResult<T> {
        self.wait_timeout(p, Duration::ZERO).await
    }

    /// Stops the computation; a later `wait` reports [`AsyncResult::Cancelled`] (unless
    /// it had already finished).
    pub fn cancel(&self, p: &Process) {
        if self.outcome.borrow().is_none() {
            self.cancelled.set(true);
            linked::unlink_if_linked(p, self.pid);
            p.kill(self.pid, "cancelled");
        }
    }
}

impl Process {
    /// Runs `body` in a new process on this node and returns a handle to its outcome
    /// (Cloud Haskell's `async`).
    ///
    /// ```
    /// use hyperion::AsyncResult;
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let task = p.async_task(|_| async move { 6 * 7u64 });
    /// assert_eq!(task.wait(&p).await, AsyncResult::Done(42));
    /// # }).unwrap();
    /// ```
    pub fn async_task<T, F, Fut>(&self, body: F) -> Async<T>
    where
        T: Serializable + Clone,
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
    {
        let owner = self.self_pid();
        let id = self.random_u64();
        let cell = other_waiter::ValueCell::default();
        let cell_in_task = cell.clone();
        let pid = self.spawn_local(move |child| {
            let node = child.local_node().clone();
            let me = child.self_pid();
            let future = body(child);
            async move {
                let value = future.await;
                cell_in_task.put(value.clone());
                node.send_as(me, owner, AsyncReply { id, value });
            }
        });
        let cell_on_exit = cell.clone();
        self.local_node()
            .on_exit(pid, Box::new(move |reason| cell_on_exit.ended(reason)));
        let monitor = self.monitor(pid);
        let mut task = Async::from_parts(self, pid, id, monitor);
        task.value = Some(cell);
        task
    }
}

impl<T> Drop for Async<T> {
    fn drop(&mut self) {
        if self.outcome.get_mut().is_some() {
            return;
        }
        let Some((node, owner)) = self.owner.take() else {
            return;
        };
        let (id, is_reply) = (self.id, self.is_reply);
        let abandoned = Abandoned {
            monitor_ref: self.monitor,
            is_reply: Box::new(move |message| is_reply(message, id)),
        };
        // A drop while the node is busy is the owner itself being torn down: its
        // mailbox goes with it.
        let state = node.inner.state.try_borrow_mut();
        if let Ok(mut state) = state {
            state.abandon(owner, abandoned);
        }
    }
}

/// Runs `f` on every item concurrently (one process each) and returns the outcomes in
/// the items' order.
///
/// ```
/// use hyperion::{concurrency::map_concurrently, AsyncResult};
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// let squares = map_concurrently(&p, vec![1u64, 2, 3], |_, n| async move { n * n }).await;
/// assert_eq!(squares, vec![AsyncResult::Done(1), AsyncResult::Done(4), AsyncResult::Done(9)]);
/// # }).unwrap();
/// ```
pub async fn map_concurrently<I, T, F, Fut>(p: &Process, items: Vec<I>, f: F) -> Vec<AsyncResult<T>>
where
    I: 'static,
    T: Serializable + Clone,
    F: Fn(Process, I) -> Fut + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let tasks: Vec<Async<T>> = items
        .into_iter()
        .map(|item| {
            let f = f.clone();
            p.async_task(move |child| f(child, item))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in &tasks {
        outcomes.push(task.wait(p).await);
    }
    outcomes
}

/// Runs `f` on every item concurrently, for its effects; returns how each ended.
pub async fn for_concurrently<I, F, Fut>(p: &Process, items: Vec<I>, f: F) -> Vec<AsyncResult<()>>
where
    I: 'static,
    F: Fn(Process, I) -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    map_concurrently(p, items, f).await
}

/// Which side of a [`race`] finished first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

/// Runs two computations concurrently; returns the first outcome to arrive and kills
/// the loser.
pub async fn race<A, B>(
    p: &Process,
    left: Async<A>,
    right: Async<B>,
) -> Either<AsyncResult<A>, AsyncResult<B>>
where
    A: Serializable + Clone,
    B: Serializable + Clone,
{
    let mut matches: Vec<Match<'_, Either<AsyncResult<A>, AsyncResult<B>>>> = Vec::new();
    for m in left.matches() {
        matches.push(m.map(Either::Left));
    }
    for m in right.matches() {
        matches.push(m.map(Either::Right));
    }
    let first = p.receive_wait(matches).await;
    match first {
        Either::Left(outcome) => {
            right.cancel(p);
            Either::Left(left.settle(p, outcome))
        }
        Either::Right(outcome) => {
            left.cancel(p);
            Either::Right(right.settle(p, outcome))
        }
    }
}
