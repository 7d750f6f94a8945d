//! The one door into a node from outside its thread: wakes from `std::task::Waker`s
//! (a blocking job finished, a foreign future is ready) and closures to run on the node
//! (spawn from `main`, shut down).
//!
//! Generic over what a posted closure is given (`N`, the node: `node::Inbox` names
//! it), so that the kernel knows nothing of the node built on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Wake;

use super::task::TaskId;

/// Work posted to a node from any thread: a task to wake, or a closure to run with
/// the node (`N`).
pub(crate) enum InboxItem<N> {
    Wake(TaskId),
    Run(Box<dyn FnOnce(&N) + Send>),
}

/// A node's cross-thread queue. Posting to an empty inbox calls the node's notifier
/// (the real driver's `mio::Waker`), so a sleeping driver wakes exactly when needed.
pub struct Inbox<N> {
    items: Mutex<Vec<InboxItem<N>>>,
    /// Set when the node's thread is gone: nothing posted would ever run, so posts are
    /// refused (dropping the item tells a caller waiting on it that the node stopped).
    closed: AtomicBool,
    /// Mirrors "items is not empty", so drivers can look without taking the lock.
    pending: AtomicBool,
    notifier: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl<N> Inbox<N> {
    pub(crate) fn new() -> Arc<Inbox<N>> {
        Arc::new(Inbox {
            items: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            notifier: OnceLock::new(),
        })
    }

    /// Sets what to call when an item arrives in an empty inbox. Set once, by the driver.
    pub fn set_notifier(&self, notifier: Box<dyn Fn() + Send + Sync>) {
        let _ = self.notifier.set(notifier);
    }

    /// Posts `item`; `false` if the inbox is closed (the item is dropped at once).
    pub(crate) fn post(&self, item: InboxItem<N>) -> bool {
        let was_empty = {
            let mut items = self
                .items
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            // Checked under the lock: `close` empties the queue under it too, so no item
            // is left behind in a closed inbox.
            if self.closed.load(Ordering::Acquire) {
                drop(items);
                drop(item);
                return false;
            }
            items.push(item);
            self.pending.store(true, Ordering::Release);
            items.len() == 1
        };
        if was_empty {
            if let Some(notify) = self.notifier.get() {
                notify();
            }
        }
        true
    }

    /// Refuses every later post and drops what waits: the node's thread has ended.
    /// Callers waiting on a dropped item's reply learn that the node stopped.
    pub(crate) fn close(&self) {
        let left = {
            let mut items = self
                .items
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            self.closed.store(true, Ordering::Release);
            self.pending.store(false, Ordering::Release);
            std::mem::take(&mut *items)
        };
        // Outside the lock: dropping a job runs its captured values' destructors.
        drop(left);
    }

    pub(crate) fn take_all(&self) -> Vec<InboxItem<N>> {
        let mut items = self
            .items
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *items)
    }

    /// Whether anything may wait in the inbox, without taking the lock: `false` only
    /// if everything posted before (as seen by this thread) was taken already.
    pub(crate) fn may_have_items(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Whether anything waits in the inbox.
    pub fn is_empty(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .is_empty()
    }
}

/// The `std::task::Waker` of one task: waking posts the task id to its node's inbox.
/// Hyperion's own futures never use it (a delivery schedules its receiver directly);
/// it exists for foreign futures awaited inside a process.
pub(crate) struct TaskWaker<N> {
    pub(crate) task: TaskId,
    pub(crate) inbox: Arc<Inbox<N>>,
}

impl<N: 'static> Wake for TaskWaker<N> {
    fn wake(self: Arc<Self>) {
        self.inbox.post(InboxItem::Wake(self.task));
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.inbox.post(InboxItem::Wake(self.task));
    }
}
