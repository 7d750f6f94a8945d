//! Timers: deadlines on a node's clock, each waking one task.

use std::collections::BTreeMap;
use std::time::Duration;

use super::task::TaskId;

/// Identifies one armed timer, so that its owner can cancel it.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct TimerKey {
    deadline: Duration,
    sequence: u64,
}

/// Armed timers ordered by deadline, then by arming order (so that two timers with one
/// deadline fire in a reproducible order). Cancelling is `O(log n)`, so a receive with a
/// timeout that is satisfied early leaves nothing behind.
#[derive(Default)]
pub(crate) struct Timers {
    armed: BTreeMap<TimerKey, TaskId>,
    next_sequence: u64,
}

impl Timers {
    pub(crate) fn arm(&mut self, deadline: Duration, task: TaskId) -> TimerKey {
        let key = TimerKey {
            deadline,
            sequence: self.next_sequence,
        };
        self.next_sequence += 1;
        self.armed.insert(key, task);
        key
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) {
        self.armed.remove(&key);
    }

    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.armed.keys().next().map(|key| key.deadline)
    }

    /// Removes the first timer due at `now`, returning the task it wakes.
    pub(crate) fn pop_due(&mut self, now: Duration) -> Option<TaskId> {
        let entry = self.armed.first_entry()?;
        if entry.key().deadline > now {
            return None;
        }
        Some(entry.remove())
    }

    pub(crate) fn len(&self) -> usize {
        self.armed.len()
    }

    pub(crate) fn clear(&mut self) {
        self.armed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(index: u32) -> TaskId {
        TaskId {
            index,
            generation: 1,
        }
    }

    #[test]
    fn timers_fire_in_deadline_then_arming_order() {
        let mut timers = Timers::default();
        timers.arm(Duration::from_millis(20), task(1));
        timers.arm(Duration::from_millis(10), task(2));
        timers.arm(Duration::from_millis(10), task(3));
        assert_eq!(timers.pop_due(Duration::from_millis(5)), None);
        let now = Duration::from_millis(30);
        let order: Vec<_> = std::iter::from_fn(|| timers.pop_due(now)).collect();
        assert_eq!(order, vec![task(2), task(3), task(1)]);
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let mut timers = Timers::default();
        let key = timers.arm(Duration::from_millis(1), task(1));
        timers.cancel(key);
        assert_eq!(timers.pop_due(Duration::from_secs(1)), None);
        assert_eq!(timers.next_deadline(), None);
    }
}
