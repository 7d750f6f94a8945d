//! The monitors one process holds ([`Relations::monitoring`](super::Relations)), keyed
//! by monitor id.
//!
//! Why not a `BTreeMap`: a `spawn_monitor` loop inserts ids in increasing order (they
//! come from one per-node counter) and removes them in about the same order (the
//! children end in the order they ran), and a tree pays node allocations and
//! rebalancing for order it already has. Here the monitors sit in a deque sorted by id:
//! an insert of the newest id is a push at the back, a lookup a binary search, and a
//! removal marks its entry; removed entries are popped from either end at once and
//! compacted away when they are the majority, so each removal costs O(log n) amortized
//! and the memory stays proportional to the live monitors. Iteration is in id order,
//! that is creation order, as the tree's was (no hashing: order is deterministic).

use std::collections::VecDeque;

use crate::types::id::MonitorRef;

/// Removed entries below which a set is never compacted: small sets just keep them.
const COMPACT_REMOVED_MIN: usize = 32;

/// A set of monitors keyed by [`MonitorRef::id`], in id order.
#[derive(Default)]
pub(crate) struct MonitorSet {
    /// Sorted by id, strictly increasing; `None` marks a removed entry (its id kept, so
    /// the order still holds for binary search).
    entries: VecDeque<(u64, Option<MonitorRef>)>,
    /// Entries that are not removed.
    live: usize,
}

impl MonitorSet {
    /// Adds `monitor_ref` under its id; `false` (and nothing changed) if a monitor of
    /// that id is held already.
    pub(crate) fn insert(&mut self, monitor_ref: MonitorRef) -> bool {
        let id = monitor_ref.id;
        // The common case: the newest id of the node's counter.
        if self.entries.back().is_none_or(|&(last, _)| last < id) {
            self.entries.push_back((id, Some(monitor_ref)));
            self.live += 1;
            return true;
        }
        match self.entries.binary_search_by_key(&id, |&(id, _)| id) {
            Ok(index) => {
                let entry = &mut self.entries[index].1;
                if entry.is_some() {
                    return false;
                }
                *entry = Some(monitor_ref);
            }
            Err(index) => self.entries.insert(index, (id, Some(monitor_ref))),
        }
        self.live += 1;
        true
    }

    /// Removes and returns the monitor of id `id`, if held.
    pub(crate) fn remove(&mut self, id: u64) -> Option<MonitorRef> {
        let index = self.position(id)?;
        let removed = self.entries[index].1.take();
        debug_assert!(removed.is_some(), "position finds live entries only");
        self.live -= 1;
        self.trim();
        removed
    }

    /// Whether a monitor of id `id` is held.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.position(id).is_some()
    }

    /// How many monitors are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// The monitors held, in id (creation) order.
    pub(crate) fn into_values(self) -> impl Iterator<Item = MonitorRef> {
        self.entries.into_iter().filter_map(|(_, entry)| entry)
    }

    /// Where the live entry of id `id` is.
    fn position(&self, id: u64) -> Option<usize> {
        // The oldest first: monitors mostly end in the order they were made, and a
        // binary search over a large deque costs a cache miss per probe.
        let index = if self.entries.front().is_some_and(|&(front, _)| front == id) {
            0
        } else {
            self.entries.binary_search_by_key(&id, |&(id, _)| id).ok()?
        };
        self.entries[index].1.is_some().then_some(index)
    }

    /// Drops removed entries at both ends, and all of them once they are most of the
    /// deque: the work is paid for by the removals that made them.
    fn trim(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|(_, entry)| entry.is_none())
        {
            self.entries.pop_front();
        }
        while self
            .entries
            .back()
            .is_some_and(|(_, entry)| entry.is_none())
        {
            self.entries.pop_back();
        }
        let removed = self.entries.len() - self.live;
        if removed >= COMPACT_REMOVED_MIN && removed > self.live {
            self.entries.retain(|(_, entry)| entry.is_some());
        }
        if self.entries.is_empty() && self.entries.capacity() > 0 {
            // A watcher that went through a large loop does not keep its peak memory.
            self.entries = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::types::id::{NodeId, ProcessId};

    fn monitor(id: u64) -> MonitorRef {
        MonitorRef {
            target: ProcessId {
                node: NodeId {
                    address: "127.0.0.1:1".parse().unwrap(),
                    incarnation: 1,
                },
                local: id * 3,
            },
            id,
        }
    }

    /// The set behaves as the map it replaces, whatever the order of inserts and
    /// removals (a small deterministic generator: no seed to print).
    #[test]
    fn a_monitor_set_behaves_as_a_map_keyed_by_id() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let mut set = MonitorSet::default();
            let mut model = BTreeMap::new();
            let mut newest = 0;
            for _ in 0..(round * 7 % 400) {
                match next() % 8 {
                    // Mostly the newest id, as the node's counter hands them out.
                    0..=3 => {
                        newest += 1 + next() % 3;
                        assert_eq!(
                            set.insert(monitor(newest)),
                            model.insert(newest, monitor(newest)).is_none()
                        );
                    }
                    // An older id (fresh or held).
                    4 => {
                        let id = next() % (newest + 1);
                        let fresh = !model.contains_key(&id);
                        assert_eq!(set.insert(monitor(id)), fresh);
                        model.entry(id).or_insert(monitor(id));
                    }
                    // The oldest held, as a spawn_monitor loop removes them.
                    5 | 6 => {
                        let id = model.keys().next().copied().unwrap_or(0);
                        assert_eq!(set.remove(id), model.remove(&id));
                    }
                    _ => {
                        let id = next() % (newest + 2);
                        assert_eq!(set.contains(id), model.contains_key(&id));
                        assert_eq!(set.remove(id), model.remove(&id));
                    }
                }
                assert_eq!(set.len(), model.len());
                assert!(set.entries.len() <= 2 * model.len() + COMPACT_REMOVED_MIN);
            }
            let values: Vec<MonitorRef> = set.into_values().collect();
            assert_eq!(values, model.into_values().collect::<Vec<_>>());
        }
    }

    /// Removing in creation order keeps the deque as short as the live monitors.
    #[test]
    fn removing_the_oldest_first_leaves_no_removed_entries() {
        let mut set = MonitorSet::default();
        for id in 1..=1000 {
            assert!(set.insert(monitor(id)));
        }
        for id in 1..=1000 {
            assert_eq!(set.remove(id), Some(monitor(id)));
            assert!(!set.contains(id));
            assert_eq!(set.entries.len(), set.len());
        }
        assert_eq!(set.entries.capacity(), 0);
    }
}
