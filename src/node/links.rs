//! Links, monitors and exit signals, the node's owner of who watches whom: how a
//! process learns that another died, and how one process stops another, on one node or
//! across nodes. [`Process`](crate::Process) calls these through the node; the kernel
//! calls [`release_relations`](NodeState::release_relations) when a process ends.
//!
//! Guarantees (Cloud Haskell's): each monitor produces exactly one
//! [`ProcessMonitorNotification`] unless removed first; monitoring or linking a process
//! that is already dead reports [`DiedReason::UnknownProcess`]; losing the connection
//! to a process's node reports [`DiedReason::Disconnect`]. A link is one-way:
//! `a.link(b)` makes `a` hear of `b`'s death; if `a` does not trap exits it dies too,
//! unless `b` ended normally.

use super::event::NodeEvent;
use super::local::NodeState;
use crate::kernel::TaskId;
use crate::kernel::{Abandoned, ExitHook, LocalMonitor, Relations};
use crate::message::Message;
use crate::types::exit::ExitReason;
use crate::types::id::{DiedReason, MonitorRef, NodeId, ProcessId};
use crate::types::signals::{
    NodeMonitorNotification, ProcessExitSignal, ProcessLinkSignal, ProcessMonitorNotification,
};
use crate::wire::Control;

impl NodeState {
    pub(crate) fn local_task(&self, pid: ProcessId) -> Option<TaskId> {
        (pid.node == self.id).then(|| TaskId::from_u64(pid.local))
    }

    pub(crate) fn is_alive(&self, pid: ProcessId) -> bool {
        self.local_task(pid)
            .is_some_and(|task| self.kernel.slot(task).is_some())
    }

    pub(crate) fn relations_of(&mut self, pid: ProcessId) -> Option<&mut Relations> {
        let task = self.local_task(pid)?;
        Some(self.kernel.slot_mut(task)?.relations())
    }

    pub(crate) fn monitor(&mut self, watcher: ProcessId, target: ProcessId) -> MonitorRef {
        let monitor_ref = MonitorRef {
            target,
            id: self.unique(),
        };
        self.observe(NodeEvent::MonitorCreated {
            monitor_ref,
            watcher,
        });
        if target.node != self.id {
            match &mut self.network {
                Some(network) => {
                    network
                        .peer(target.node)
                        .monitors
                        .push((monitor_ref, watcher));
                    network.send_control(
                        target.node,
                        Control::Monitor {
                            monitor_ref,
                            watcher,
                        },
                    );
                    if let Some(relations) = self.relations_of(watcher) {
                        let fresh = relations.monitoring.insert(monitor_ref);
                        debug_assert!(fresh, "monitor id {} reused", monitor_ref.id);
                    }
                }
                None => self.notify_monitor(watcher, monitor_ref, DiedReason::Disconnect),
            }
            return monitor_ref;
        }
        self.add_watcher(target, monitor_ref, watcher);
        if let Some(relations) = self.relations_of(watcher) {
            let fresh = relations.monitoring.insert(monitor_ref);
            debug_assert!(fresh, "monitor id {} reused", monitor_ref.id);
        }
        monitor_ref
    }

    /// Records a monitor on a local target, or reports at once that it is dead.
    pub(crate) fn add_watcher(
        &mut self,
        target: ProcessId,
        monitor_ref: MonitorRef,
        watcher: ProcessId,
    ) {
        debug_assert_eq!(monitor_ref.target, target, "a monitor names its target");
        let here = self.id;
        let slot = self
            .local_task(target)
            .and_then(|task| self.kernel.slot_mut(task));
        let Some(slot) = slot else {
            self.notify_monitor(watcher, monitor_ref, DiedReason::UnknownProcess);
            return;
        };
        // A monitor is recorded once on its target: one notification. (Two nodes may
        // hold equal references: each numbers its own.)
        debug_assert!(
            slot.first_monitor
                .is_none_or(|m| m.id != monitor_ref.id || watcher.node != here)
                && slot.relations.as_ref().is_none_or(|relations| !relations
                    .monitored_by
                    .iter()
                    .any(|(r, w)| *r == monitor_ref && w.node == watcher.node)),
            "monitor {monitor_ref:?} of {watcher} recorded twice on {target}"
        );
        // The slot holds the oldest monitor only, so that notifications still go out
        // in creation order: slot first, then the list.
        let older_listed = slot
            .relations
            .as_ref()
            .is_some_and(|relations| !relations.monitored_by.is_empty());
        if watcher.node == here && slot.first_monitor.is_none() && !older_listed {
            slot.first_monitor = Some(LocalMonitor {
                id: monitor_ref.id,
                watcher: watcher.local,
            });
            return;
        }
        let relations = slot.relations();
        // Most processes have one watcher at most: no room for four (`Vec`'s first
        // growth) for a second one.
        relations.monitored_by.reserve_exact(1);
        relations.monitored_by.push((monitor_ref, watcher));
    }

    /// Removes the monitor `monitor_ref` of a watcher on `watcher_node` from its local
    /// target (if that is alive). Monitor ids are unique per node only: the watcher's
    /// node tells apart two monitors that share one.
    pub(crate) fn remove_watcher(&mut self, monitor_ref: MonitorRef, watcher_node: NodeId) {
        let here = self.id;
        let Some(slot) = self
            .local_task(monitor_ref.target)
            .and_then(|task| self.kernel.slot_mut(task))
        else {
            return;
        };
        if watcher_node == here && slot.first_monitor.is_some_and(|m| m.id == monitor_ref.id) {
            slot.first_monitor = None;
            return;
        }
        if let Some(relations) = slot.relations.as_mut() {
            relations
                .monitored_by
                .retain(|(r, watcher)| *r != monitor_ref || watcher.node != watcher_node);
        }
    }

    pub(crate) fn unmonitor(&mut self, watcher: ProcessId, monitor_ref: MonitorRef) {
        self.observe(NodeEvent::MonitorRemoved {
            monitor_ref,
            watcher,
        });
        self.forget_monitor(monitor_ref);
        if let Some(relations) = self.relations_of(watcher) {
            relations.monitoring.remove(monitor_ref.id);
        }
        // A notification already delivered is withdrawn: after unmonitor, none arrives.
        self.flush_mailbox(watcher, |message| {
            message.inspect(|n: &ProcessMonitorNotification| n.monitor_ref == monitor_ref)
                == Some(true)
        });
    }

    /// Removes a monitor from its target's side (locally, or by telling the peer).
    fn forget_monitor(&mut self, monitor_ref: MonitorRef) {
        let target = monitor_ref.target;
        if target.node == self.id {
            self.remove_watcher(monitor_ref, self.id);
        } else if let Some(network) = &mut self.network {
            let peer = network.peer(target.node);
            peer.monitors.retain(|(r, _)| *r != monitor_ref);
            peer.node_monitors.retain(|(r, _)| *r != monitor_ref);
            if monitor_ref.target.local != 0 {
                network.send_control(target.node, Control::Unmonitor { monitor_ref });
            }
        }
    }

    pub(crate) fn monitor_node(&mut self, watcher: ProcessId, node: NodeId) -> MonitorRef {
        let monitor_ref = MonitorRef {
            target: ProcessId { node, local: 0 },
            id: self.unique(),
        };
        if node == self.id {
            return monitor_ref;
        }
        match &mut self.network {
            Some(network) => {
                network
                    .peer(node)
                    .node_monitors
                    .push((monitor_ref, watcher));
                // Make sure a connection exists, so that its loss can be noticed.
                let _ = network.send_frame(node, &crate::wire::Frame::KeepAlive); // always fits
                if let Some(relations) = self.relations_of(watcher) {
                    let fresh = relations.monitoring.insert(monitor_ref);
                    debug_assert!(fresh, "monitor id {} reused", monitor_ref.id);
                }
            }
            None => self.deliver(
                watcher,
                Message::new(NodeMonitorNotification {
                    monitor_ref,
                    node,
                    reason: DiedReason::Disconnect,
                }),
            ),
        }
        monitor_ref
    }

    pub(crate) fn link(&mut self, linker: ProcessId, target: ProcessId) {
        if linker == target {
            return;
        }
        self.observe(NodeEvent::LinkCreated { linker, target });
        if target.node != self.id {
            match &mut self.network {
                Some(network) => {
                    let peer = network.peer(target.node);
                    if !peer.links.contains(&(linker, target)) {
                        peer.links.push((linker, target));
                        network.send_control(target.node, Control::Link { linker, target });
                    }
                    if let Some(relations) = self.relations_of(linker) {
                        relations.linked_to.push(target);
                    }
                }
                None => self.link_signal(linker, target, DiedReason::Disconnect),
            }
            return;
        }
        self.add_linker(target, linker);
        if let Some(relations) = self.relations_of(linker) {
            if !relations.linked_to.contains(&target) {
                relations.linked_to.push(target);
            }
        }
    }

    /// Records a link to a local target, or signals at once that it is dead.
    pub(crate) fn add_linker(&mut self, target: ProcessId, linker: ProcessId) {
        match self.relations_of(target) {
            Some(relations) => {
                if !relations.linked_by.contains(&linker) {
                    relations.linked_by.push(linker);
                }
            }
            None => self.link_signal(linker, target, DiedReason::UnknownProcess),
        }
    }

    pub(crate) fn unlink(&mut self, linker: ProcessId, target: ProcessId) {
        self.observe(NodeEvent::LinkRemoved { linker, target });
        self.forget_link(linker, target);
        if let Some(relations) = self.relations_of(linker) {
            relations.linked_to.retain(|pid| *pid != target);
        }
        self.flush_mailbox(linker, |message| {
            message
                .peek::<ProcessLinkSignal>()
                .is_some_and(|signal| signal.pid == target)
        });
    }

    fn forget_link(&mut self, linker: ProcessId, target: ProcessId) {
        if target.node == self.id {
            if let Some(relations) = self.relations_of(target) {
                relations.linked_by.retain(|pid| *pid != linker);
            }
        } else if let Some(network) = &mut self.network {
            network
                .peer(target.node)
                .links
                .retain(|link| *link != (linker, target));
            network.send_control(target.node, Control::Unlink { linker, target });
        }
    }

    /// A trappable exit signal from `from` to `target`.
    pub(crate) fn exit_signal(&mut self, from: ProcessId, target: ProcessId, reason: String) {
        if target.node != self.id {
            if let Some(network) = &mut self.network {
                network.send_control(
                    target.node,
                    Control::Exit {
                        from,
                        target,
                        reason,
                    },
                );
            }
            return;
        }
        let Some(task) = self.local_task(target) else {
            return;
        };
        if self.kernel.slot(task).is_none() {
            return;
        }
        let caught = ExitReason::text_reason(reason.clone());
        if self.catch_exit_signal(target, from, &caught) {
            return;
        }
        let Some(slot) = self.kernel.slot(task) else {
            return;
        };
        if slot.trap_exits {
            self.deliver(target, Message::new(ProcessExitSignal { from, reason }));
        } else {
            self.doom(
                task,
                DiedReason::Exception(format!("exit from {from}: {reason}")),
            );
        }
    }

    /// An untrappable kill.
    pub(crate) fn kill(&mut self, from: ProcessId, target: ProcessId, reason: String) {
        if target.node != self.id {
            if let Some(network) = &mut self.network {
                network.send_control(
                    target.node,
                    Control::Kill {
                        from,
                        target,
                        reason,
                    },
                );
            }
            return;
        }
        if let Some(task) = self.local_task(target) {
            self.doom(
                task,
                DiedReason::Exception(format!("killed by {from}: {reason}")),
            );
        }
    }

    /// Tells a watcher (here or on its node) that a monitored process died.
    pub(crate) fn notify_monitor(
        &mut self,
        watcher: ProcessId,
        monitor_ref: MonitorRef,
        reason: DiedReason,
    ) {
        if watcher.node != self.id {
            if let Some(network) = &mut self.network {
                network.send_control(
                    watcher.node,
                    Control::MonitorNotification {
                        watcher,
                        monitor_ref,
                        reason,
                    },
                );
            }
            return;
        }
        if !self.is_alive(watcher)
            || crate::planted::is_planted(crate::planted::Defect::MonitorNeverFires)
        {
            return;
        }
        self.observe(NodeEvent::MonitorFired {
            monitor_ref,
            watcher,
            reason: reason.clone(),
        });
        if let Some(relations) = self.relations_of(watcher) {
            relations.monitoring.remove(monitor_ref.id);
        }
        if crate::planted::is_planted(crate::planted::Defect::MonitorFiresTwice) {
            let twice = self.monitor_notification(monitor_ref, reason.clone());
            self.deliver(watcher, twice);
        }
        let notification = self.monitor_notification(monitor_ref, reason);
        self.deliver(watcher, notification);
    }

    /// The message of a monitor notification: packed for a normal exit of a process of
    /// this node (a `spawn_monitor` loop sends one per process; see `message`), boxed
    /// otherwise.
    fn monitor_notification(&self, monitor_ref: MonitorRef, reason: DiedReason) -> Message {
        if reason.is_normal() && monitor_ref.target.node == self.id {
            return Message::packed::<ProcessMonitorNotification>(
                self.shared_id.clone(),
                [monitor_ref.target.local, monitor_ref.id],
            );
        }
        Message::new(ProcessMonitorNotification {
            monitor_ref,
            pid: monitor_ref.target,
            reason,
        })
    }

    /// Tells a linker (here or on its node) that a process it linked to died.
    pub(crate) fn link_signal(&mut self, linker: ProcessId, dead: ProcessId, reason: DiedReason) {
        if linker.node != self.id {
            if let Some(network) = &mut self.network {
                network.send_control(
                    linker.node,
                    Control::LinkSignal {
                        linker,
                        pid: dead,
                        reason,
                    },
                );
            }
            return;
        }
        if self.is_alive(linker) {
            self.observe(NodeEvent::LinkFired {
                linker,
                target: dead,
                reason: reason.clone(),
            });
        }
        let Some(task) = self.local_task(linker) else {
            return;
        };
        let Some(slot) = self.kernel.slot_mut(task) else {
            return;
        };
        if let Some(relations) = slot.relations.as_mut() {
            relations.linked_to.retain(|pid| *pid != dead);
        }
        if slot.trap_exits {
            self.deliver(
                linker,
                Message::new(ProcessLinkSignal { pid: dead, reason }),
            );
        } else if !reason.is_normal() {
            self.doom(
                task,
                DiedReason::Exception(format!("linked process {dead} died: {reason}")),
            );
        }
    }

    /// `watcher` gives up on the async whose process `monitor_ref` watches: its reply
    /// and notification, queued or yet to come, are dropped. Once the notification is
    /// in (the process ended; nothing from it can follow), nothing is left to watch for.
    pub(crate) fn abandon(&mut self, watcher: ProcessId, abandoned: Abandoned) {
        let monitor_ref = abandoned.monitor_ref;
        let mut ended = false;
        self.flush_mailbox(watcher, |message| {
            let notified = message
                .inspect(|n: &ProcessMonitorNotification| n.monitor_ref == monitor_ref)
                == Some(true);
            ended |= notified;
            notified || (abandoned.is_reply)(message)
        });
        if !ended {
            if let Some(relations) = self.relations_of(watcher) {
                relations.abandoned.push(abandoned);
            }
        }
    }

    /// Whether `message`, arriving for a process with abandoned asyncs, belongs to one
    /// of them (and is to be dropped). Its notification retires the entry.
    pub(crate) fn is_for_abandoned(relations: &mut Relations, message: &mut Message) -> bool {
        if let Some(monitor_ref) = message.inspect(|n: &ProcessMonitorNotification| n.monitor_ref) {
            if let Some(index) = relations
                .abandoned
                .iter()
                .position(|a| a.monitor_ref == monitor_ref)
            {
                relations.abandoned.swap_remove(index);
                return true;
            }
            return false;
        }
        relations.abandoned.iter().any(|a| (a.is_reply)(message))
    }

    /// Withdraws a queued node notification for `monitor_ref`.
    pub(crate) fn flush_node_notifications(&mut self, watcher: ProcessId, monitor_ref: MonitorRef) {
        self.flush_mailbox(watcher, |message| {
            message
                .peek::<NodeMonitorNotification>()
                .is_some_and(|n| n.monitor_ref == monitor_ref)
        });
    }

    fn flush_mailbox(&mut self, pid: ProcessId, mut unwanted: impl FnMut(&mut Message) -> bool) {
        let Some(task) = self.local_task(pid) else {
            return;
        };
        if let Some(slot) = self.kernel.slot_mut(task) {
            let before = slot.mailbox.len();
            slot.mailbox.retain_mut(|message| !unwanted(message));
            if slot.mailbox.len() != before {
                slot.mailbox_removals += 1;
            }
        }
    }

    /// Undoes a dead process's relations: notifies its monitors and links, withdraws its
    /// own monitors and links, frees its names and channels. Returns its exit hooks, to
    /// run once the node is no longer borrowed.
    pub(crate) fn release_relations(
        &mut self,
        pid: ProcessId,
        first_monitor: Option<LocalMonitor>,
        relations: Option<Box<Relations>>,
        reason: &DiedReason,
    ) -> Vec<ExitHook> {
        // The slot's monitor is older than the listed ones: it is notified first.
        if let Some(LocalMonitor { id, watcher }) = first_monitor {
            let monitor_ref = MonitorRef { target: pid, id };
            let watcher = ProcessId {
                node: self.id,
                local: watcher,
            };
            self.notify_monitor(watcher, monitor_ref, reason.clone());
        }
        let Some(relations) = relations else {
            return Vec::new();
        };
        let Relations {
            monitored_by,
            linked_by,
            monitoring,
            linked_to,
            names,
            channels,
            exit_hooks,
            peer_epochs,
            exit_catchers: _,
            abandoned: _,
        } = *relations;
        // Every monitor and link recorded on a process names it as target: the
        // notifications below go out for this process only, once per watcher.
        debug_assert!(
            monitored_by.iter().all(|(r, _)| r.target == pid),
            "a monitor of another process recorded on {pid}"
        );
        debug_assert!(
            linked_by
                .iter()
                .all(|linker| linked_by.iter().filter(|l| *l == linker).count() == 1),
            "a linker recorded twice on {pid}"
        );
        if let Some(network) = &mut self.network {
            // Each destination this process sent to no longer needs its peer's epoch.
            for node in peer_epochs.into_keys().map(|pid| pid.node) {
                if let Some(peer) = network.peers.get_mut(&node) {
                    debug_assert!(peer.senders > 0, "sender count of {node} out of step");
                    peer.senders = peer.senders.saturating_sub(1);
                }
                network.forget_if_unused(node);
            }
        }
        for (monitor_ref, watcher) in monitored_by {
            self.notify_monitor(watcher, monitor_ref, reason.clone());
        }
        for linker in linked_by {
            self.link_signal(linker, pid, reason.clone());
        }
        for monitor_ref in monitoring.into_values() {
            self.forget_monitor(monitor_ref);
        }
        for target in linked_to {
            self.forget_link(pid, target);
        }
        for name in names {
            if self.registry.remove_if_held(&name, pid) {
                self.mx_unregistered(pid, &name); // mx hook
            }
        }
        for channel in channels {
            self.channels.close(channel);
        }
        exit_hooks
    }
}

impl NodeState {
    /// Hands an exit signal to the innermost catcher of `target` (a local process) for
    /// the reason's type; whether one took it. A caught signal wakes the process, whose
    /// catcher then runs its handler instead of the body.
    pub(crate) fn catch_exit_signal(
        &mut self,
        target: ProcessId,
        from: ProcessId,
        reason: &ExitReason,
    ) -> bool {
        let Some(task) = self.local_task(target) else {
            return false;
        };
        let Some(slot) = self.kernel.slot_mut(task) else {
            return false;
        };
        let Some(relations) = slot.relations.as_mut() else {
            return false;
        };
        let catchers = &mut relations.exit_catchers;
        if catchers.caught.is_some() {
            // One signal at a time: the catcher that took the first one is unwinding.
            return false;
        }
        let Some(&(id, _)) = catchers
            .active
            .iter()
            .rev()
            .find(|(_, fingerprint)| *fingerprint == reason.fingerprint)
        else {
            return false;
        };
        catchers.caught = Some((id, from, reason.clone()));
        self.schedule(task);
        true
    }

    /// A typed exit signal from `from` to `target`, wherever `target` lives: caught by
    /// a catcher for its type, delivered as a [`ProcessExitSignal`] (its text) to a
    /// process that traps exits, or the death of `target` with the reason.
    ///
    /// [`ProcessExitSignal`]: crate::ProcessExitSignal
    pub(crate) fn exit_signal_with(
        &mut self,
        from: ProcessId,
        target: ProcessId,
        reason: ExitReason,
    ) {
        if target.node != self.id {
            if let Some(network) = &mut self.network {
                network.send_control(
                    target.node,
                    Control::ExitWith {
                        from,
                        target,
                        reason,
                    },
                );
            }
            return;
        }
        if self.catch_exit_signal(target, from, &reason) {
            return;
        }
        let Some(task) = self.local_task(target) else {
            return;
        };
        let Some(slot) = self.kernel.slot(task) else {
            return;
        };
        if slot.trap_exits {
            let signal = crate::ProcessExitSignal {
                from,
                reason: reason.text().to_string(),
            };
            self.deliver(target, Message::new(signal));
        } else {
            self.doom(task, DiedReason::Exit(reason));
        }
    }
}
