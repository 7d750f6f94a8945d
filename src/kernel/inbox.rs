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
    /// The node's own thread, if its driver declared it: a post from it needs no
    /// notification (the driver looks at the inbox before it sleeps), which saves a
    /// system call per wake of a process by the node itself (a process waiting for
    /// room on a connection is woken from the transport, on the node's thread).
    owner: OnceLock<std::thread::ThreadId>,
}

impl<N> Inbox<N> {
    pub(crate) fn new() -> Arc<Inbox<N>> {
        Arc::new(Inbox {
            items: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            notifier: OnceLock::new(),
            owner: OnceLock::new(),
        })
    }

    /// Sets what to call when an item arrives in an empty inbox. Set once, by the driver.
    pub fn set_notifier(&self, notifier: Box<dyn Fn() + Send + Sync>) {
        let _ = self.notifier.set(notifier);
    }

    /// Declares the calling thread the node's own: its posts do not call the notifier.
    /// For a driver that looks at the inbox after running the node's work and before it
    /// sleeps (the real driver does), so that nothing posted from its thread waits.
    pub fn set_owner_thread(&self) {
        let _ = self.owner.set(std::thread::current().id());
    }

    /// Whether the calling thread is the one declared with
    /// [`set_owner_thread`](Inbox::set_owner_thread).
    fn posted_by_owner(&self) -> bool {
        self.owner
            .get()
            .is_some_and(|owner| *owner == std::thread::current().id())
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
        if was_empty && !self.posted_by_owner() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting_inbox() -> (Arc<Inbox<()>>, Arc<AtomicUsize>) {
        let inbox = Inbox::<()>::new();
        let notified = Arc::new(AtomicUsize::new(0));
        let count = notified.clone();
        inbox.set_notifier(Box::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
        }));
        (inbox, notified)
    }

    #[test]
    fn a_post_from_the_owner_thread_does_not_notify_but_one_from_another_does() {
        let (inbox, notified) = counting_inbox();
        inbox.set_owner_thread();
        assert!(inbox.post(InboxItem::Run(Box::new(|_| {}))));
        assert_eq!(
            notified.load(Ordering::SeqCst),
            0,
            "the owner's post notified"
        );
        assert_eq!(
            inbox.take_all().len(),
            1,
            "the owner's post is queued all the same"
        );
        let other = inbox.clone();
        // A post from another OS thread (a test of the real world, never simulated).
        std::thread::spawn(move || other.post(InboxItem::Run(Box::new(|_| {})))) // real-world only
            .join()
            .unwrap();
        assert_eq!(notified.load(Ordering::SeqCst), 1, "another thread's post");
    }

    #[test]
    fn without_an_owner_every_post_to_an_empty_inbox_notifies() {
        let (inbox, notified) = counting_inbox();
        inbox.post(InboxItem::Run(Box::new(|_| {})));
        inbox.post(InboxItem::Run(Box::new(|_| {})));
        assert_eq!(notified.load(Ordering::SeqCst), 1);
        inbox.take_all();
        inbox.post(InboxItem::Run(Box::new(|_| {})));
        assert_eq!(notified.load(Ordering::SeqCst), 2);
    }
}
