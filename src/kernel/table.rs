//! The table of live processes: each slot holds the process's task (its future), its
//! mailbox and its relations to other processes.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Waker;

use super::task::TaskId;
use crate::message::{Fingerprint, Message};
use crate::types::exit::ExitReason;
use crate::types::id::{DiedReason, MonitorRef, ProcessId};

pub(crate) type ProcessFuture = Pin<Box<dyn Future<Output = DiedReason>>>;
pub(crate) type ExitHook = Box<dyn FnOnce(&DiedReason)>;

/// One live process. Its pid is not kept: the node's id and the slot's task id make
/// it. The slot is kept small (rare parts boxed): a `spawn_monitor` loop holds a
/// million of them at once, and each is moved in and out of the table.
pub(crate) struct ProcessSlot {
    /// Taken out while the task is being polled.
    pub(crate) future: Option<ProcessFuture>,
    pub(crate) waker: Option<Waker>,
    /// In the ready queue (at most once).
    pub(crate) scheduled: bool,
    /// Blocked in a receive: a delivery to its mailbox or one of its channels wakes it.
    pub(crate) waiting_receive: bool,
    pub(crate) mailbox: VecDeque<Message>,
    /// Counts messages taken out of the mailbox, so a waiting receive knows whether its
    /// scan position is still valid.
    pub(crate) mailbox_removals: u64,
    /// Set when the process must die at its next turn (killed, an exit signal, a link).
    pub(crate) doom: Option<Box<DiedReason>>,
    pub(crate) trap_exits: bool,
    /// The oldest monitor on this process, if its watcher is a local process and no
    /// older monitor is still recorded in [`Relations::monitored_by`]. Most monitored
    /// processes have one watcher, here: a `spawn_monitor` child needs no
    /// [`Relations`] at all (their allocation was most of what a monitor cost).
    pub(crate) first_monitor: Option<LocalMonitor>,
    /// Allocated on first use: most processes never link, monitor or register.
    pub(crate) relations: Option<Box<Relations>>,
}

/// A monitor held on its target's slot ([`ProcessSlot::first_monitor`]): the target
/// is the slot's process and the watcher a process of the same node, so two numbers
/// say it all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LocalMonitor {
    /// The monitor's id ([`MonitorRef::id`]).
    pub(crate) id: u64,
    /// The watcher's local number ([`ProcessId::local`]).
    pub(crate) watcher: u64,
}

/// Who cares about a process, and whom it cares about; everything to undo at death.
#[derive(Default)]
pub(crate) struct Relations {
    /// Monitors on this process: (reference, the watcher), in creation order, all
    /// younger than [`ProcessSlot::first_monitor`] if that is set.
    pub(crate) monitored_by: Vec<(MonitorRef, ProcessId)>,
    /// Processes linked to this one: they get a link signal when it dies.
    pub(crate) linked_by: Vec<ProcessId>,
    /// This process's own monitors (on processes here or remote, and on nodes), removed
    /// from their targets at its death. Keyed by the monitor's id (unique on this node,
    /// increasing: iteration is creation order), so that a notification removes its
    /// entry in O(log n) however many monitors the watcher holds (a `spawn_monitor`
    /// loop would otherwise be quadratic); see [`MonitorSet`](super::MonitorSet).
    pub(crate) monitoring: super::MonitorSet,
    /// Local processes this one is linked to.
    pub(crate) linked_to: Vec<ProcessId>,
    pub(crate) names: Vec<String>,
    pub(crate) channels: Vec<u64>,
    pub(crate) exit_hooks: Vec<ExitHook>,
    /// For each remote process this one sent data to: the connection epoch it last
    /// acknowledged (first send or `reconnect`). Older than the node's epoch means a
    /// break happened since, and data is dropped until `reconnect`. One entry per
    /// destination, freed with this process (as Cloud Haskell keeps a connection per
    /// pair).
    pub(crate) peer_epochs: std::collections::BTreeMap<ProcessId, u64>,
    /// Its `catch_exit` handlers, and an exit signal one of them caught.
    pub(crate) exit_catchers: ExitCatchers,
    /// Asyncs this process dropped before they settled: their reply and monitor
    /// notification are dropped on arrival instead of staying queued forever.
    pub(crate) abandoned: Vec<Abandoned>,
}

/// The exit catchers of one process ([`Process::catch_exit`]), innermost last, and an
/// exit signal one of them caught, waiting for it to run.
///
/// [`Process::catch_exit`]: crate::Process::catch_exit
#[derive(Default)]
pub(crate) struct ExitCatchers {
    pub(crate) active: Vec<(u64, Fingerprint)>,
    pub(crate) caught: Option<(u64, ProcessId, ExitReason)>,
}

/// An async nobody waits for any more (see [`Relations::abandoned`]): messages for it
/// are dropped until its monitor notification, the last of them, arrives.
pub(crate) struct Abandoned {
    /// The monitor on the async's process; its notification ends the entry.
    pub(crate) monitor_ref: MonitorRef,
    /// Whether a message is the async's reply.
    pub(crate) is_reply: Box<dyn Fn(&mut Message) -> bool>,
}

impl ProcessSlot {
    pub(crate) fn relations(&mut self) -> &mut Relations {
        self.relations.get_or_insert_with(Default::default)
    }
}

/// The slots of live processes plus a generation per index, so that ids are never
/// reused: a freed index is reused (the last freed first, so the table stays dense)
/// with its generation bumped, and an index whose generation reached the largest a
/// [`TaskId`] holds is retired for good rather than wrapped. Retiring costs one empty
/// slot per 2^32 processes started in it; the 2^32 indices × 2^32 generations give ids
/// for the node's lifetime.
#[derive(Default)]
pub(crate) struct ProcessTable {
    slots: Vec<Option<ProcessSlot>>,
    /// The generation of the last process in each slot (0: none yet).
    generations: Vec<u32>,
    /// Free indices, the last freed on top.
    free: Vec<u32>,
    len: usize,
}

/// The last generation an index gets before it is retired.
const GENERATION_MAX: u32 = u32::MAX;

impl ProcessTable {
    /// The id the next inserted process will get.
    pub(crate) fn next_id(&self) -> TaskId {
        let index = match self.free.last() {
            Some(&index) => index as usize,
            None => self.slots.len(),
        };
        // A free index's generation is below the maximum: saturated ones are not freed.
        let generation = self.generations.get(index).copied().unwrap_or(0) + 1;
        TaskId {
            index: u32::try_from(index).expect("fewer than 2^32 process slots"),
            generation,
        }
    }

    pub(crate) fn insert(&mut self, slot: ProcessSlot) -> TaskId {
        let task = self.next_id();
        let index = task.index as usize;
        if self.free.pop().is_none() {
            self.slots.push(None);
            self.generations.push(0);
        }
        debug_assert!(self.slots[index].is_none());
        self.slots[index] = Some(slot);
        self.generations[index] = task.generation;
        self.len += 1;
        task
    }

    #[inline]
    pub(crate) fn get(&self, task: TaskId) -> Option<&ProcessSlot> {
        let index = task.index as usize;
        if self.generations.get(index) != Some(&task.generation) {
            return None;
        }
        self.slots[index].as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, task: TaskId) -> Option<&mut ProcessSlot> {
        let index = task.index as usize;
        if self.generations.get(index) != Some(&task.generation) {
            return None;
        }
        self.slots[index].as_mut()
    }

    pub(crate) fn remove(&mut self, task: TaskId) -> Option<ProcessSlot> {
        self.get(task)?;
        let slot = self.slots[task.index as usize].take();
        self.len -= 1;
        if task.generation < GENERATION_MAX {
            self.free.push(task.index);
        } else {
            tracing::debug!(
                index = task.index,
                "process slot retired: its generations are used up"
            );
        }
        slot
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every live slot, in index order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ProcessSlot> {
        self.slots.iter_mut().filter_map(Option::as_mut)
    }

    /// Every live task, in index order.
    pub(crate) fn tasks(&self) -> Vec<TaskId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.is_some())
            .map(|(index, _)| TaskId {
                index: index as u32,
                generation: self.generations[index],
            })
            .collect()
    }

    /// Makes the next process started in a fresh slot begin at `generation` (tests reach
    /// the end of a slot's generations this way, without 2^32 spawns).
    #[cfg(test)]
    pub(crate) fn start_next_slot_at_generation(&mut self, generation: u32) {
        assert!(self.free.is_empty(), "only a table without free slots");
        self.slots.push(None);
        self.generations.push(generation - 1);
        self.free.push((self.slots.len() - 1) as u32);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::rc::Rc;

    use crate::clock::SystemClock;
    use crate::kernel::blocking::Inline;
    use crate::kernel::TaskId;
    use crate::{DiedReason, LocalNode, NodeEnv, NodeId, ProcessMonitorNotification};

    fn test_node() -> LocalNode {
        let id = NodeId {
            address: "127.0.0.1:1".parse().unwrap(),
            incarnation: 1,
        };
        LocalNode::new(
            id,
            NodeEnv::new(Rc::new(SystemClock::new()), 7, Rc::new(Inline)),
        )
    }

    /// The notifications queued for `watcher`, in order: (monitor id, reason).
    fn notifications(node: &LocalNode, watcher: crate::ProcessId) -> Vec<(u64, DiedReason)> {
        let mut state = node.state();
        let slot = state
            .kernel
            .slot_mut(TaskId::from_u64(watcher.local))
            .expect("watcher alive");
        slot.mailbox
            .iter_mut()
            .filter_map(|m| m.peek::<ProcessMonitorNotification>())
            .map(|n| (n.monitor_ref.id, n.reason.clone()))
            .collect()
    }

    /// A process monitored by one local watcher (a `spawn_monitor` child) keeps the
    /// monitor in its slot: no relations are allocated for it, and the monitor still
    /// fires exactly once.
    #[test]
    fn a_local_monitor_is_held_in_its_target_slot_without_relations() {
        let node = test_node();
        let watcher = node.spawn(|p| async move {
            p.expect::<u8>().await;
        });
        let target = node.spawn(|p| async move {
            p.expect::<u8>().await;
        });
        while node.run_next() {}
        let monitor_ref = node.state().monitor(watcher, target);
        {
            let state = node.state();
            let slot = state
                .kernel
                .slot(TaskId::from_u64(target.local))
                .expect("target alive");
            assert!(
                slot.relations.is_none(),
                "relations allocated for a monitor"
            );
        }
        node.send_as(target, target, 1u8);
        while node.run_next() {}
        assert!(!node.is_alive(target));
        assert_eq!(
            notifications(&node, watcher),
            vec![(monitor_ref.id, DiedReason::Normal)]
        );
    }

    /// Monitors on one target fire in creation order, whichever are held in the slot
    /// and whichever in the list, and an unmonitored one (slot or list) never fires.
    #[test]
    fn monitors_on_one_target_fire_in_creation_order_after_unmonitors() {
        let node = test_node();
        let watcher = node.spawn(|p| async move {
            p.expect::<u8>().await;
        });
        let target = node.spawn(|p| async move {
            p.expect::<u8>().await;
        });
        while node.run_next() {}
        let mut state = node.state();
        let first = state.monitor(watcher, target);
        let second = state.monitor(watcher, target);
        state.unmonitor(watcher, first);
        let third = state.monitor(watcher, target);
        let fourth = state.monitor(watcher, target);
        state.unmonitor(watcher, third);
        drop(state);
        node.send_as(target, target, 1u8);
        while node.run_next() {}
        assert_eq!(
            notifications(&node, watcher),
            vec![
                (second.id, DiedReason::Normal),
                (fourth.id, DiedReason::Normal)
            ]
        );
    }

    /// A slot stays small: a `spawn_monitor` loop holds a million at once and moves
    /// each in and out of the table (it was 216 bytes with its pid and an unboxed doom).
    #[test]
    fn a_process_slot_stays_small() {
        let size = std::mem::size_of::<super::ProcessSlot>();
        assert!(size <= 128, "ProcessSlot is {size} bytes");
    }

    /// A spawn/exit loop in a slot near the end of its generations never hands out an
    /// id twice, and an old id never names a new process.
    #[test]
    fn process_ids_are_not_reused_when_a_slot_generation_runs_out() {
        let node = test_node();
        node.state()
            .kernel
            .start_next_slot_at_generation(u32::MAX - 2);
        let mut seen = BTreeSet::new();
        let mut previous = Vec::new();
        for _ in 0..6 {
            let pid = node.spawn(|p| async move {
                p.expect::<u8>().await;
            });
            assert!(seen.insert(pid), "{pid} handed out twice");
            for old in &previous {
                assert!(!node.is_alive(*old), "old id {old} names a live process");
            }
            assert!(node.is_alive(pid));
            while node.run_next() {}
            node.send_as(pid, pid, 1u8);
            while node.run_next() {}
            assert!(!node.is_alive(pid));
            previous.push(pid);
        }
    }
}
