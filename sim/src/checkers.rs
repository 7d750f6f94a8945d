//! Built-in checkers of the runtime's own guarantees, on in every simulated run:
//!
//! - frames on one connection are delivered in order, each at most once (hence
//!   messages between a pair of processes arrive in order, at most once);
//! - each monitor fires at most once;
//! - nothing is delivered from a process after its watcher was told it died;
//! - a crashed node is reported lost, by every node that knew it, within the heartbeat
//!   bound;
//! - silence is checked too: at the end of a run (after its liveness phase), every
//!   monitor has fired or its target is still alive, and every link likewise
//!   ([`Checkers::silent_monitors`]);
//! - what processes receive is counted: a monitor notification enters a mailbox at most
//!   once;
//! - data to a process of another node is sent only while its sender has acknowledged
//!   (`reconnect`) every break of that connection since its first send.

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
    /// What ends the wait besides the report.
    ends_on: Ending,
    /// The bound the deadline was set with.
    bound: Duration,
}

/// What a node is waited on for, besides the report of its loss.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Nothing: it is dead.
    Never,
    /// It is cut off: healing the partitions ends the silence.
    Heal,
    /// It is paused: resuming ends the silence.
    Resume,
}

/// A monitor or link still owed a notification, for the end-of-run check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// `watcher` monitors `target` (by `MonitorRef`).
    Monitor(MonitorRef, ProcessId),
    /// `linker` is linked to `target`.
    Link(ProcessId, ProcessId),
}

#[derive(Default)]
pub(crate) struct Checkers {
    fired: BTreeSet<(MonitorRef, ProcessId)>,
    /// Nodes paused (as by SIGSTOP), until when: they cannot report anything before.
    paused: BTreeMap<NodeId, Duration>,
    /// Monitors created and neither fired nor removed.
    pending_monitors: BTreeSet<(MonitorRef, ProcessId)>,
    /// Notifications that entered a mailbox.
    queued: BTreeSet<(MonitorRef, ProcessId)>,
    /// Links created and neither fired nor removed.
    pending_links: BTreeSet<(ProcessId, ProcessId)>,
    /// Connection losses each node saw of each peer (its epoch of that peer).
    losses: BTreeMap<(NodeId, NodeId), u64>,
    /// The epoch each sender last acknowledged for each receiver (first send, or
    /// `reconnect`).
    acknowledged: BTreeMap<(ProcessId, ProcessId), u64>,
    dead_notified: BTreeSet<(ProcessId, ProcessId)>,
    known_peers: BTreeMap<NodeId, BTreeSet<NodeId>>,
    deadlines: Vec<DeathDeadline>,
    pub(crate) violations: Vec<Violation>,
}

impl Checkers {
    pub(crate) fn on_node_event(&mut self, now: Duration, node: NodeId, event: &NodeEvent) {
        match event {
            NodeEvent::MonitorCreated {
                monitor_ref,
                watcher,
            } => {
                self.pending_monitors.insert((*monitor_ref, *watcher));
            }
            NodeEvent::MonitorRemoved {
                monitor_ref,
                watcher,
            } => {
                self.pending_monitors.remove(&(*monitor_ref, *watcher));
            }
            NodeEvent::MonitorNotificationQueued {
                monitor_ref,
                watcher,
            } => {
                if !self.queued.insert((*monitor_ref, *watcher)) {
                    self.violate(
                        now,
                        "a monitor notification reaches its watcher once",
                        format!("{watcher} received the notification of {monitor_ref:?} twice"),
                    );
                }
            }
            NodeEvent::LinkCreated { linker, target } => {
                self.pending_links.insert((*linker, *target));
            }
            NodeEvent::LinkRemoved { linker, target } => {
                self.pending_links.remove(&(*linker, *target));
            }
            NodeEvent::LinkFired { linker, target, .. } => {
                if !self.pending_links.remove(&(*linker, *target)) {
                    self.violate(
                        now,
                        "a link fires once",
                        format!("{linker} was signalled of {target}'s death with no link pending"),
                    );
                }
            }
            NodeEvent::DataSent { from, to } => {
                let epoch = self.losses.get(&(from.node, to.node)).copied().unwrap_or(0);
                let acknowledged = *self.acknowledged.entry((*from, *to)).or_insert(epoch);
                if acknowledged < epoch {
                    self.violate(
                        now,
                        "data after a break waits for reconnect",
                        format!(
                            "{from} sent data to {to} after {} break(s) it never acknowledged",
                            epoch - acknowledged
                        ),
                    );
                }
            }
            NodeEvent::Reconnected { from, node, to } => {
                let epoch = self.losses.get(&(from.node, *node)).copied().unwrap_or(0);
                match to {
                    Some(to) => {
                        self.acknowledged.insert((*from, *to), epoch);
                    }
                    None => self
                        .acknowledged
                        .range_mut(
                            (
                                *from,
                                ProcessId {
                                    node: *node,
                                    local: 0,
                                },
                            )..,
                        )
                        .take_while(|((sender, to), _)| sender == from && to.node == *node)
                        .for_each(|(_, seen)| *seen = epoch),
                }
            }
            NodeEvent::MonitorFired {
                monitor_ref,
                watcher,
                reason,
            } => {
                self.pending_monitors.remove(&(*monitor_ref, *watcher));
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
                *self.losses.entry((node, *peer)).or_insert(0) += 1;
                if let Some(peers) = self.known_peers.get_mut(&node) {
                    peers.remove(peer);
                }
                self.deadlines
                    .retain(|d| !(d.observer == node && d.dead == *peer));
            }
        }
    }

    pub(crate) fn on_arbitration(&mut self, now: Duration, detail: String) {
        self.violate(
            now,
            "a pair of nodes keeps one connection, the same at both ends",
            detail,
        );
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
        for observer in self.observers_of(dead) {
            self.await_report(now, observer, dead, Ending::Never, bound);
        }
    }

    /// `a` and `b` were cut off from each other at `now` (a two-way partition that
    /// holds frames and closes nothing), for longer than `bound`: each that knew the
    /// other must report it lost by `now + bound`.
    pub(crate) fn on_cut(&mut self, now: Duration, a: NodeId, b: NodeId, bound: Duration) {
        for (observer, dead) in [(a, b), (b, a)] {
            if self
                .known_peers
                .get(&observer)
                .is_some_and(|peers| peers.contains(&dead))
            {
                self.await_report(now, observer, dead, Ending::Heal, bound);
            }
        }
    }

    /// The nodes that know `node` (are connected to it).
    fn observers_of(&self, node: NodeId) -> Vec<NodeId> {
        self.known_peers
            .iter()
            .filter(|(observer, peers)| **observer != node && peers.contains(&node))
            .map(|(observer, _)| *observer)
            .collect()
    }

    /// `observer` must report `dead` lost within `bound` (from the end of its own pause,
    /// if it is paused).
    fn await_report(
        &mut self,
        now: Duration,
        observer: NodeId,
        dead: NodeId,
        ends_on: Ending,
        bound: Duration,
    ) {
        let from = self.paused_until(&observer).max(now);
        self.deadlines.push(DeathDeadline {
            deadline: from + bound,
            observer,
            dead,
            ends_on,
            bound,
        });
    }

    /// Partitions healed at `now` (and paused nodes resumed, if `resumed`): deadlines
    /// already passed are reported, and those of the silences that ended are dropped.
    pub(crate) fn on_heal(&mut self, now: Duration, resumed: bool) {
        self.check_deadlines(now);
        if resumed {
            self.paused.clear();
        }
        self.deadlines
            .retain(|d| !(d.ends_on == Ending::Heal || (resumed && d.ends_on == Ending::Resume)));
    }

    fn paused_until(&self, node: &NodeId) -> Duration {
        self.paused.get(node).copied().unwrap_or_default()
    }

    /// `node` is paused until `until`: deadlines it must meet move past its pause.
    pub(crate) fn on_pause(&mut self, node: NodeId, until: Duration) {
        self.paused.insert(node, until);
        for d in self.deadlines.iter_mut().filter(|d| d.observer == node) {
            d.deadline = d.deadline.max(until + d.bound);
        }
    }

    /// `observer` received something from `from` at `now`: a silent `from` was not
    /// silent then (frames held by a partition arrive at its heal), so the wait for its
    /// report starts again.
    pub(crate) fn on_heard(&mut self, now: Duration, observer: NodeId, from: NodeId) {
        for d in self.deadlines.iter_mut() {
            if d.observer == observer && d.dead == from && d.ends_on != Ending::Never {
                d.deadline = d.deadline.max(now + d.bound);
            }
        }
    }

    /// Whether any node is awaited to report a loss (a cheap test for the per-frame path).
    pub(crate) fn awaiting(&self) -> bool {
        !self.deadlines.is_empty()
    }

    /// `node` was shut down: it observes nothing any more (its peers are told at once,
    /// by the connections it closes).
    pub(crate) fn on_stop(&mut self, node: NodeId) {
        self.known_peers.remove(&node);
        self.deadlines.retain(|d| d.observer != node);
    }

    /// `silent` went silent at `now` without closing anything (paused): every node that
    /// knew it must report it lost by `now + bound`.
    pub(crate) fn on_silence(&mut self, now: Duration, silent: NodeId, bound: Duration) {
        for observer in self.observers_of(silent) {
            self.await_report(now, observer, silent, Ending::Resume, bound);
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

    /// Monitors and links still owed a notification (to check at the end of a run:
    /// each target must then be alive).
    pub(crate) fn pending(&self) -> Vec<Pending> {
        let monitors = self
            .pending_monitors
            .iter()
            .map(|(monitor_ref, watcher)| Pending::Monitor(*monitor_ref, *watcher));
        let links = self
            .pending_links
            .iter()
            .map(|(linker, target)| Pending::Link(*linker, *target));
        monitors.chain(links).collect()
    }

    /// Records a broken guarantee.
    pub(crate) fn violate(&mut self, at: Duration, rule: &'static str, detail: String) {
        self.violations.push(Violation { at, rule, detail });
    }
}
