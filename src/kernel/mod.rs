//! The kernel: what every node needs to run processes, behind one narrow API. It owns
//! the process table (each slot: the task's future, its mailbox, its relations), the
//! ready queue, the timers and the task being polled, built on the scheduler's parts
//! beside it: [`TaskId`] and the queue (`task`), the timer structure (`timers`), and
//! the executor of blocking jobs a node is given (`blocking`).
//!
//! It knows nothing of the network, the registry, links or management: the node
//! (`node::local`) composes it with those owners, which reach the processes only
//! through [`Kernel`]'s methods (spawn a slot, deliver, wake, arm or cancel a timer,
//! take the next ready task, poll one).
//!
//! Beside it: [`inbox`], the door from other threads (wakes, and jobs given the node,
//! a type parameter here), and [`PollMarks`], each poll's begin and end for the
//! real-world watchdog.

pub(crate) mod blocking;
pub(crate) mod inbox;
mod monitor_set;
mod poll_marks;
mod table;
mod task;
mod timers;

use std::time::Duration;

pub(crate) use monitor_set::MonitorSet;
pub(crate) use poll_marks::PollMarks;
pub(crate) use table::{Abandoned, ExitHook, LocalMonitor, ProcessFuture, ProcessSlot, Relations};
pub(crate) use task::ReadyQueue;
pub use task::TaskId;
pub(crate) use timers::{TimerKey, Timers};

use crate::message::Message;
use crate::types::id::{DiedReason, ProcessId};
use table::ProcessTable;

/// The processes of one node and what runs them. Every field is private: the owners
/// (links, registry, routing, events) and `Process` act on processes through the
/// methods below, so that the scheduling invariants hold in one place (a live task is
/// in the ready queue at most once, exactly when its `scheduled` flag is set; only the
/// task being polled may block).
#[derive(Default)]
pub(crate) struct Kernel {
    processes: ProcessTable,
    ready: ReadyQueue,
    timers: Timers,
    /// The task being polled, if any: a `Process` handle may only block in its own task.
    current: Option<TaskId>,
}

/// What became of a message given to [`Kernel::deliver`].
pub(crate) enum Delivery {
    /// In the mailbox (its reader woken if it waited in a receive).
    Queued,
    /// No such live process: the message comes back, to be dropped by the caller.
    NoProcess(Message),
    /// The caller's filter refused it: the message comes back.
    Refused(Message),
}

/// What [`Kernel::begin_poll`] found for a task taken from the ready queue.
pub(crate) enum PollStart {
    /// Nothing to poll: the task died, or its future is out (being built).
    Nothing,
    /// The process was doomed meanwhile: it must die with this reason, unpolled.
    Doomed(DiedReason),
    /// Poll this future with this waker; the task is now the current one.
    Poll(ProcessFuture, std::task::Waker),
}

impl Kernel {
    // ----- the process table -----

    /// Inserts a new process, ready to run, its future yet to come: `make` builds the
    /// slot from the task id it gets (the process id is derived from it).
    pub(crate) fn spawn_slot(&mut self, make: impl FnOnce(TaskId) -> ProcessSlot) -> TaskId {
        let task = self.processes.next_id();
        let mut slot = make(task);
        slot.scheduled = true;
        let inserted = self.processes.insert(slot);
        debug_assert_eq!(inserted, task);
        self.ready.push(task);
        task
    }

    /// Gives a spawned slot its future (ignored if the process died meanwhile).
    pub(crate) fn set_future(&mut self, task: TaskId, future: ProcessFuture) {
        if let Some(slot) = self.processes.get_mut(task) {
            slot.future = Some(future);
        }
    }

    /// The slot of a live task.
    #[inline]
    pub(crate) fn slot(&self, task: TaskId) -> Option<&ProcessSlot> {
        self.processes.get(task)
    }

    /// The slot of a live task, to change.
    #[inline]
    pub(crate) fn slot_mut(&mut self, task: TaskId) -> Option<&mut ProcessSlot> {
        self.processes.get_mut(task)
    }

    /// Whether `task` is a live process.
    #[inline]
    pub(crate) fn is_alive(&self, task: TaskId) -> bool {
        self.processes.get(task).is_some()
    }

    /// Takes a process out of the table (it is dead); its slot is the caller's to free.
    pub(crate) fn remove(&mut self, task: TaskId) -> Option<ProcessSlot> {
        self.processes.remove(task)
    }

    /// How many processes are alive.
    pub(crate) fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Every live task, in index order.
    pub(crate) fn tasks(&self) -> Vec<TaskId> {
        self.processes.tasks()
    }

    /// Every live slot, in index order.
    pub(crate) fn slots_mut(&mut self) -> impl Iterator<Item = &mut ProcessSlot> {
        self.processes.iter_mut()
    }

    // ----- mailboxes and wakes -----

    /// Puts `message` in the mailbox of `task` and wakes it if it waits in a receive,
    /// unless `refuse` (the caller's rule, such as "for an abandoned async") says no.
    #[inline]
    pub(crate) fn deliver(
        &mut self,
        task: TaskId,
        mut message: Message,
        refuse: impl FnOnce(&mut ProcessSlot, &mut Message) -> bool,
    ) -> Delivery {
        let Some(slot) = self.processes.get_mut(task) else {
            return Delivery::NoProcess(message);
        };
        if refuse(slot, &mut message) {
            return Delivery::Refused(message);
        }
        queue(&mut self.ready, task, slot, message);
        Delivery::Queued
    }

    /// [`deliver`](Kernel::deliver) of the message `make` builds, built only once it
    /// is known to go in (straight into the mailbox): if `task` is not alive or
    /// `plain` does not hold for its slot, nothing is built and `make` comes back.
    #[inline(always)]
    pub(crate) fn deliver_built<F: FnOnce() -> Message>(
        &mut self,
        task: TaskId,
        make: F,
        plain: impl FnOnce(&ProcessSlot) -> bool,
    ) -> Result<(), F> {
        let Some(slot) = self.processes.get_mut(task) else {
            return Err(make);
        };
        if !plain(slot) {
            return Err(make);
        }
        queue(&mut self.ready, task, slot, make());
        Ok(())
    }

    /// Puts a live task in the ready queue unless it is there already.
    #[inline]
    pub(crate) fn wake(&mut self, task: TaskId) {
        if let Some(slot) = self.processes.get_mut(task) {
            if !slot.scheduled {
                slot.scheduled = true;
                self.ready.push(task);
            }
        }
    }

    /// Wakes `task` if it waits in a receive (a value reached one of its channels).
    pub(crate) fn wake_receiver(&mut self, task: TaskId) {
        if self.slot(task).is_some_and(|slot| slot.waiting_receive) {
            self.wake(task);
        }
    }

    /// Marks a task as blocked in a receive: the next delivery to it wakes it.
    pub(crate) fn wait_for_delivery(&mut self, task: TaskId) {
        if let Some(slot) = self.processes.get_mut(task) {
            slot.waiting_receive = true;
        }
    }

    /// Marks a process to die with `reason` at its next turn, and gives it that turn.
    pub(crate) fn doom(&mut self, task: TaskId, reason: DiedReason) {
        if let Some(slot) = self.processes.get_mut(task) {
            slot.doom.get_or_insert_with(|| Box::new(reason));
            self.wake(task);
        }
    }

    // ----- the ready queue and polling -----

    /// The oldest ready task, taken out of the queue.
    pub(crate) fn next_ready(&mut self) -> Option<TaskId> {
        self.ready.pop()
    }

    /// The ready task at position `index` of the queue, taken out (the simulator picks
    /// one at random).
    pub(crate) fn take_ready_at(&mut self, index: usize) -> Option<TaskId> {
        self.ready.take_at(index)
    }

    /// How many tasks are ready.
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Starts the poll of a task taken from the ready queue: the task becomes the
    /// current one, and its future and waker are lent out until
    /// [`end_poll`](Kernel::end_poll).
    pub(crate) fn begin_poll(&mut self, task: TaskId) -> PollStart {
        let Some(slot) = self.processes.get_mut(task) else {
            return PollStart::Nothing;
        };
        // A live task comes out of the ready queue only if `wake` put it there (the
        // flag keeps it in the queue at most once).
        debug_assert!(slot.scheduled, "{task:?} ran without being scheduled");
        slot.scheduled = false;
        slot.waiting_receive = false;
        if let Some(reason) = slot.doom.take() {
            return PollStart::Doomed(*reason);
        }
        let (Some(future), Some(waker)) = (slot.future.take(), slot.waker.take()) else {
            return PollStart::Nothing;
        };
        self.current = Some(task);
        PollStart::Poll(future, waker)
    }

    /// Ends the poll of `task` that returned `Pending`: the future and waker go back to
    /// the slot, or, if the process was doomed while it ran (or died), come back with
    /// the reason it dies (none if it is gone already).
    pub(crate) fn end_poll_pending(
        &mut self,
        task: TaskId,
        future: ProcessFuture,
        waker: std::task::Waker,
    ) -> Result<(), (ProcessFuture, Option<DiedReason>)> {
        self.current = None;
        let Some(slot) = self.processes.get_mut(task) else {
            return Err((future, None));
        };
        match slot.doom.take() {
            None => {
                slot.future = Some(future);
                slot.waker = Some(waker);
                Ok(())
            }
            Some(reason) => Err((future, Some(*reason))),
        }
    }

    /// Ends a poll that finished the process (or panicked).
    pub(crate) fn end_poll(&mut self) {
        self.current = None;
    }

    /// The slot of `task`, which must be the task being polled: a `Process` handle
    /// moved into another process fails loudly rather than wait forever for wakes that
    /// go elsewhere.
    #[inline]
    pub(crate) fn running_slot(&mut self, task: TaskId, pid: ProcessId) -> &mut ProcessSlot {
        if self.current != Some(task) {
            awaited_elsewhere(pid);
        }
        self.processes
            .get_mut(task)
            .expect("a process is alive while it runs")
    }

    // ----- timers -----

    /// Arms a timer that wakes `task` at `at` on the node's clock.
    pub(crate) fn arm_timer(&mut self, at: Duration, task: TaskId) -> TimerKey {
        self.timers.arm(at, task)
    }

    /// Disarms a timer (a fired or unknown one is ignored).
    pub(crate) fn cancel_timer(&mut self, timer: TimerKey) {
        self.timers.cancel(timer);
    }

    /// Wakes the tasks of the timers due at `now`; returns how many fired.
    pub(crate) fn fire_due_timers(&mut self, now: Duration) -> usize {
        let mut fired = 0;
        while let Some(task) = self.timers.pop_due(now) {
            self.wake(task);
            fired += 1;
        }
        fired
    }

    /// The earliest armed timer's deadline.
    pub(crate) fn next_timer_deadline(&self) -> Option<Duration> {
        self.timers.next_deadline()
    }

    /// How many timers are armed.
    pub(crate) fn timer_count(&self) -> usize {
        self.timers.len()
    }

    /// Drops every timer and empties the ready queue (the node shut down).
    pub(crate) fn clear_schedule(&mut self) {
        self.timers.clear();
        while self.ready.pop().is_some() {}
    }

    /// Makes the next process started in a fresh slot begin at `generation` (tests).
    #[cfg(test)]
    pub(crate) fn start_next_slot_at_generation(&mut self, generation: u32) {
        self.processes.start_next_slot_at_generation(generation);
    }
}

/// Appends `message` to the mailbox of `task` (its `slot`) and makes the task ready if
/// it waits in a receive: what every delivery does once it is let in.
#[inline(always)]
fn queue(ready: &mut ReadyQueue, task: TaskId, slot: &mut ProcessSlot, message: Message) {
    slot.mailbox.push_back(message);
    if slot.waiting_receive && !slot.scheduled {
        slot.waiting_receive = false;
        slot.scheduled = true;
        ready.push(task);
    }
}

/// The panic of a `Process` handle used outside its own process, out of line: the
/// check sits on every receive.
#[cold]
#[inline(never)]
fn awaited_elsewhere(pid: ProcessId) -> ! {
    panic!("the Process handle of {pid} was awaited outside its own process")
}
