//! The node's table of live processes: each slot holds the process's task (its future),
//! its mailbox and its relations to other processes.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Waker;

use slab::Slab;

use super::id::{DiedReason, MonitorRef, ProcessId};
use crate::message::Message;
use crate::runtime::TaskId;

pub(crate) type ProcessFuture = Pin<Box<dyn Future<Output = DiedReason>>>;
pub(crate) type ExitHook = Box<dyn FnOnce(&DiedReason)>;

/// One live process.
pub(crate) struct ProcessSlot {
    pub(crate) pid: ProcessId,
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
    pub(crate) doom: Option<DiedReason>,
    pub(crate) trap_exits: bool,
    /// Allocated on first use: most processes never link, monitor or register.
    pub(crate) relations: Option<Box<Relations>>,
}

/// Who cares about a process, and whom it cares about; everything to undo at death.
#[derive(Default)]
pub(crate) struct Relations {
    /// Monitors on this process: (reference, the watcher).
    pub(crate) monitored_by: Vec<(MonitorRef, ProcessId)>,
    /// Processes linked to this one: they get a link signal when it dies.
    pub(crate) linked_by: Vec<ProcessId>,
    /// This process's own monitors on local processes, removed from them at its death.
    pub(crate) monitoring: Vec<MonitorRef>,
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
    pub(crate) exit_catchers: super::exit::ExitCatchers,
}

impl ProcessSlot {
    pub(crate) fn relations(&mut self) -> &mut Relations {
        self.relations.get_or_insert_with(Default::default)
    }
}

/// A slab of slots plus a generation per index, so that ids are never reused.
#[derive(Default)]
pub(crate) struct ProcessTable {
    slots: Slab<ProcessSlot>,
    generations: Vec<u32>,
}

impl ProcessTable {
    /// The id the next inserted process will get.
    pub(crate) fn next_id(&self) -> TaskId {
        let index = self.slots.vacant_key();
        let generation = self.generations.get(index).copied().unwrap_or(0) + 1;
        TaskId {
            index: u32::try_from(index).expect("fewer than 2^32 live processes"),
            generation,
        }
    }

    pub(crate) fn insert(&mut self, slot: ProcessSlot) -> TaskId {
        let task = self.next_id();
        let index = self.slots.insert(slot);
        debug_assert_eq!(index, task.index as usize);
        if index == self.generations.len() {
            self.generations.push(task.generation);
        } else {
            self.generations[index] = task.generation;
        }
        task
    }

    pub(crate) fn get(&self, task: TaskId) -> Option<&ProcessSlot> {
        let index = task.index as usize;
        if self.generations.get(index) != Some(&task.generation) {
            return None;
        }
        self.slots.get(index)
    }

    pub(crate) fn get_mut(&mut self, task: TaskId) -> Option<&mut ProcessSlot> {
        let index = task.index as usize;
        if self.generations.get(index) != Some(&task.generation) {
            return None;
        }
        self.slots.get_mut(index)
    }

    pub(crate) fn remove(&mut self, task: TaskId) -> Option<ProcessSlot> {
        self.get(task)?;
        Some(self.slots.remove(task.index as usize))
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every live slot, in index order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ProcessSlot> {
        self.slots.iter_mut().map(|(_, slot)| slot)
    }

    /// Every live task, in index order.
    pub(crate) fn tasks(&self) -> Vec<TaskId> {
        self.slots
            .iter()
            .map(|(index, _)| TaskId {
                index: index as u32,
                generation: self.generations[index],
            })
            .collect()
    }
}
