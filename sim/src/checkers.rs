//! Built-in checkers of the runtime's own guarantees, on in every simulated run:
//!
//! - frames on one connection are delivered in order, each at most once (hence
//!   messages between a pair of processes arrive in order, at most once);
//! - each monitor fires at most once;
//! - nothing is delivered from a process after its watcher was told it died;
//! - a crashed node is reported lost, by every node that knew it, within the heartbeat
//!   bound.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use hyperion::{DiedReason, MonitorRef, NodeEvent, NodeId, ProcessId};

/// A guarantee the run broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time it was seen.
    pub at: Duration,
    /// Which guarantee.
    pub rule: &'static str,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}] {}: {}", self.at, self.rule, self.detail)
    }
}

struct DeathDeadline {
    deadline: Duration,
    observer: NodeId,
    dead: NodeId,
}

#[derive(Default)]
pub(crate) struct Checkers {
    fired: BTreeSet<(MonitorRef, ProcessId)>,
    dead_notified: BTreeSet<(ProcessId, ProcessId)>,
    known_peers: BTreeMap<NodeId, BTreeSet<NodeId>>,
    deadlines: Vec<DeathDeadline>,
    pub(crate) violations: Vec<Violation>,
}

impl Checkers {
    pub(crate) fn on_node_event(&mut self, now: Duration, node: NodeId, event: &NodeEvent) {
        match event {
            NodeEvent::MonitorCreated { .. } => {}
            NodeEvent::MonitorFired {
                monitor_ref,
                watcher,
                reason,
            } => {
                if !self.fired.insert((*monitor_ref, *watcher)) {
                    self.violate(
                        now,
                        "a monitor fires once",
                        format!("monitor {monitor_ref:?} of {watcher} fired twice"),
                    );
                }
                if !matches!(reason, DiedReason::Disconnect) {
                    self.dead_notified.insert((*watcher, monitor_ref.target));
                }
            }
            NodeEvent::RemoteDelivered { from, to } => {
                if self.dead_notified.contains(&(*to, *from)) {
                    self.violate(
                        now,
                        "nothing arrives from a process after its death notice",
                        format!("{to} received a message from {from} after being told it died"),
                    );
                }
            }
            NodeEvent::PeerConnected(peer) => {
                self.known_peers.entry(node).or_default().insert(*peer);
            }
            NodeEvent::PeerLost(peer) => {
                if let Some(peers) = self.known_peers.get_mut(&node) {
                    peers.remove(peer);
                }
                self.deadlines
                    .retain(|d| !(d.observer == node && d.dead == *peer));
            }
        }
    }

    pub(crate) fn on_frame_fifo(&mut self, now: Duration, detail: String) {
        self.violate(
            now,
            "frames on a connection arrive in order, at most once",
            detail,
        );
    }

    /// `dead` crashed at `now`: every node that knew it must report it lost by
    /// `now + bound`.
    pub(crate) fn on_crash(&mut self, now: Duration, dead: NodeId, bound: Duration) {
        self.known_peers.remove(&dead);
        self.deadlines.retain(|d| d.observer != dead);
        for (observer, peers) in &self.known_peers {
            if peers.contains(&dead) {
                self.deadlines.push(DeathDeadline {
                    deadline: now + bound,
                    observer: *observer,
                    dead,
                });
            }
        }
    }

    pub(crate) fn check_deadlines(&mut self, now: Duration) {
        if self.deadlines.iter().all(|d| d.deadline >= now) {
            return;
        }
        let (late, pending): (Vec<_>, Vec<_>) =
            self.deadlines.drain(..).partition(|d| d.deadline < now);
        self.deadlines = pending;
        for d in late {
            self.violate(
                now,
                "a node's death is reported within the heartbeat bound",
                format!(
                    "{} did not report {} lost by {:?}",
                    d.observer, d.dead, d.deadline
                ),
            );
        }
    }

    fn violate(&mut self, at: Duration, rule: &'static str, detail: String) {
        self.violations.push(Violation { at, rule, detail });
    }
}
