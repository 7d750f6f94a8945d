//! The world's timer queue: each node's next timer event in world time, kept in order,
//! so that finding the next event and the nodes whose timers are due does not ask every
//! node (it did, at every advance of time: a run's wall time grew with the square of
//! its number of nodes).
//!
//! A node's entry is read again from the node whenever the world touches it (a poll, a
//! delivery, its timers firing, a fault, an inbox drained), which is how its timers
//! change; every node is read again where code outside the world may have touched them
//! (each run's start, the liveness phase, the shutdown). Debug builds check the queue
//! against every node at each use.

use std::collections::BTreeSet;
use std::time::Duration;

use super::Sim;

/// Each node's next timer event, by node and in time order.
#[derive(Default)]
pub(super) struct TimerQueue {
    /// Each node's next timer event as last read (`None`: no timer, or the node is down).
    by_node: Vec<Option<Duration>>,
    /// The same events, ordered by time, then node index.
    ordered: BTreeSet<(Duration, usize)>,
}

impl TimerQueue {
    /// Records node `index`'s next timer event.
    fn set(&mut self, index: usize, at: Option<Duration>) {
        if self.by_node.len() <= index {
            self.by_node.resize(index + 1, None);
        }
        let former = std::mem::replace(&mut self.by_node[index], at);
        if former == at {
            return;
        }
        if let Some(former) = former {
            self.ordered.remove(&(former, index));
        }
        if let Some(at) = at {
            self.ordered.insert((at, index));
        }
    }

    /// The earliest timer event of any node.
    pub(super) fn first(&self) -> Option<Duration> {
        self.ordered.first().map(|&(at, _)| at)
    }

    /// The nodes whose timer event is at `now` or earlier.
    pub(super) fn due(&self, now: Duration) -> impl Iterator<Item = usize> + '_ {
        self.ordered
            .iter()
            .take_while(move |&&(at, _)| at <= now)
            .map(|&(_, index)| index)
    }
}

impl Sim {
    /// When node `index`'s next timer fires in world time: its earliest deadline, held
    /// back while the node is paused or its timers lag; `None` if it has none or is down.
    fn timer_event_of(&self, index: usize) -> Option<Duration> {
        let sim_node = &self.nodes[index];
        if sim_node.crashed {
            return None;
        }
        let deadline = sim_node.node.next_deadline()?;
        Some(
            sim_node
                .clock
                .to_world(deadline)
                .max(sim_node.paused_until)
                .max(sim_node.timers_late_until),
        )
    }

    /// Reads node `index`'s next timer event again (the world touched the node).
    pub(super) fn refresh_timer(&mut self, index: usize) {
        let at = self.timer_event_of(index);
        self.timers.set(index, at);
    }

    /// Reads every node's next timer event again (code outside the world may have
    /// touched any node).
    pub(super) fn refresh_all_timers(&mut self) {
        for index in 0..self.nodes.len() {
            self.refresh_timer(index);
        }
    }

    /// Debug builds: the queue holds every node's next timer event as the node says.
    pub(super) fn debug_check_timers(&self) {
        if cfg!(debug_assertions) {
            for index in 0..self.nodes.len() {
                let cached = self.timers.by_node.get(index).copied().flatten();
                debug_assert_eq!(
                    cached,
                    self.timer_event_of(index),
                    "the timer queue's entry for node {index} is stale: a change to the node's timers was not seen"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    // The queue's first event and due nodes follow each node's latest entry only: an
    // entry moved later or cleared no longer counts, and due nodes come in time order.
    #[test]
    fn the_queue_follows_each_nodes_latest_entry() {
        let mut queue = TimerQueue::default();
        assert_eq!(queue.first(), None);
        queue.set(3, Some(secs(5)));
        queue.set(1, Some(secs(2)));
        queue.set(0, Some(secs(9)));
        assert_eq!(queue.first(), Some(secs(2)));
        queue.set(1, Some(secs(7)));
        assert_eq!(queue.first(), Some(secs(5)));
        assert_eq!(queue.due(secs(7)).collect::<Vec<_>>(), vec![3, 1]);
        queue.set(3, None);
        queue.set(3, None);
        assert_eq!(queue.due(secs(8)).collect::<Vec<_>>(), vec![1]);
        assert_eq!(queue.first(), Some(secs(7)));
        queue.set(1, None);
        queue.set(0, None);
        assert_eq!(queue.first(), None);
    }
}
