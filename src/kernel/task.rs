//! The scheduler's parts the kernel runs processes with: [`TaskId`] (a slab index and
//! its generation) and the ready queue. No I/O and no threads of its own: a *driver*
//! polls the kernel.
//!
//! Two drivers exist. The real one (`runtime::driver`) runs one node on one OS thread
//! and sleeps in `mio` (epoll) until a timer, a socket or a wake. The simulator's (in
//! the `hyperion-sim` crate) drives every node of a world from one thread, choosing the
//! next ready task across nodes with a seeded RNG and jumping virtual time to the next
//! timer. Both use the same [`LocalNode`](crate::node::LocalNode) methods: `run_next`,
//! `run_ready_at`, `fire_due_timers`, `next_deadline`, `drain_inbox`.

use std::collections::VecDeque;

/// The scheduler's name for a task: a slab index and the generation of that slot, so a
/// stale id (a process that died, a slot reused) is recognised and ignored.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TaskId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl TaskId {
    /// The id as one number, as it appears in a [`ProcessId`](crate::ProcessId).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The inverse of [`TaskId::to_u64`].
    pub fn from_u64(raw: u64) -> TaskId {
        TaskId {
            index: raw as u32,
            generation: (raw >> 32) as u32,
        }
    }
}

/// Tasks ready to be polled, oldest first. A task is in the queue at most once: the
/// process table keeps a `scheduled` flag beside each task.
#[derive(Default)]
pub(crate) struct ReadyQueue {
    queue: VecDeque<TaskId>,
}

impl ReadyQueue {
    pub(crate) fn push(&mut self, task: TaskId) {
        self.queue.push_back(task);
    }
    pub(crate) fn pop(&mut self) -> Option<TaskId> {
        self.queue.pop_front()
    }
    /// Takes the task at `index` (the simulator picks one at random).
    pub(crate) fn take_at(&mut self, index: usize) -> Option<TaskId> {
        self.queue.remove(index)
    }
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}
