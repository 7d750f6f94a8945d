//! Links, monitors and exit signals: how a process learns that another died, and how
//! one process stops another.
//!
//! Guarantees (Cloud Haskell's): each monitor produces exactly one
//! [`ProcessMonitorNotification`] unless removed first; monitoring or linking a process
//! that is already dead reports [`DiedReason::UnknownProcess`] at once. A link is
//! one-way: `a.link(b)` makes `a` hear of `b`'s death; if `a` does not trap exits it
//! dies too, unless `b` ended normally.

use super::id::{DiedReason, MonitorRef, ProcessId};
use super::signals::{ProcessExitSignal, ProcessLinkSignal, ProcessMonitorNotification};
use super::table::{ExitHook, Relations};
use crate::message::Message;
use crate::node::local::NodeState;
use crate::runtime::TaskId;

impl NodeState {
    fn local_task(&self, pid: ProcessId) -> Option<TaskId> {
        (pid.node == self.id).then(|| TaskId::from_u64(pid.local))
    }

    fn is_alive(&self, pid: ProcessId) -> bool {
        self.local_task(pid)
            .is_some_and(|task| self.processes.get(task).is_some())
    }

    fn relations_of(&mut self, pid: ProcessId) -> Option<&mut Relations> {
        let task = self.local_task(pid)?;
        Some(self.processes.get_mut(task)?.relations())
    }

    pub(crate) fn monitor(&mut self, watcher: ProcessId, target: ProcessId) -> MonitorRef {
        let monitor_ref = MonitorRef {
            target,
            id: self.unique(),
        };
        if self.is_alive(target) {
            if let Some(relations) = self.relations_of(target) {
                relations.monitored_by.push((monitor_ref, watcher));
            }
            if let Some(relations) = self.relations_of(watcher) {
                relations.monitoring.push(monitor_ref);
            }
        } else {
            let reason = if target.node == self.id {
                DiedReason::UnknownProcess
            } else {
                // No transport reaches other nodes from here.
                DiedReason::Disconnect
            };
            self.notify_monitor(watcher, monitor_ref, reason);
        }
        monitor_ref
    }

    pub(crate) fn unmonitor(&mut self, watcher: ProcessId, monitor_ref: MonitorRef) {
        if let Some(relations) = self.relations_of(monitor_ref.target) {
            relations.monitored_by.retain(|(r, _)| *r != monitor_ref);
        }
        if let Some(relations) = self.relations_of(watcher) {
            relations.monitoring.retain(|r| *r != monitor_ref);
        }
        // A notification already delivered is withdrawn: after unmonitor, none arrives.
        self.flush_mailbox(watcher, |message| {
            message
                .peek::<ProcessMonitorNotification>()
                .is_some_and(|n| n.monitor_ref == monitor_ref)
        });
    }

    pub(crate) fn link(&mut self, linker: ProcessId, target: ProcessId) {
        if linker == target {
            return;
        }
        if self.is_alive(target) {
            if let Some(relations) = self.relations_of(target) {
                if !relations.linked_by.contains(&linker) {
                    relations.linked_by.push(linker);
                }
            }
            if let Some(relations) = self.relations_of(linker) {
                if !relations.linked_to.contains(&target) {
                    relations.linked_to.push(target);
                }
            }
        } else {
            let reason = if target.node == self.id {
                DiedReason::UnknownProcess
            } else {
                DiedReason::Disconnect
            };
            self.link_signal(linker, target, reason);
        }
    }

    pub(crate) fn unlink(&mut self, linker: ProcessId, target: ProcessId) {
        if let Some(relations) = self.relations_of(target) {
            relations.linked_by.retain(|pid| *pid != linker);
        }
        if let Some(relations) = self.relations_of(linker) {
            relations.linked_to.retain(|pid| *pid != target);
        }
        self.flush_mailbox(linker, |message| {
            message
                .peek::<ProcessLinkSignal>()
                .is_some_and(|signal| signal.pid == target)
        });
    }

    /// A trappable exit signal from `from` to `target`.
    pub(crate) fn exit_signal(&mut self, from: ProcessId, target: ProcessId, reason: String) {
        let Some(task) = self.local_task(target) else {
            tracing::debug!(%target, "exit signal to a remote process has no route; dropped");
            return;
        };
        let Some(slot) = self.processes.get(task) else {
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
        if let Some(task) = self.local_task(target) {
            self.doom(
                task,
                DiedReason::Exception(format!("killed by {from}: {reason}")),
            );
        }
    }

    fn notify_monitor(&mut self, watcher: ProcessId, monitor_ref: MonitorRef, reason: DiedReason) {
        let notification = ProcessMonitorNotification {
            monitor_ref,
            pid: monitor_ref.target,
            reason,
        };
        self.deliver(watcher, Message::new(notification));
    }

    fn link_signal(&mut self, linker: ProcessId, dead: ProcessId, reason: DiedReason) {
        let Some(task) = self.local_task(linker) else {
            return;
        };
        let Some(slot) = self.processes.get(task) else {
            return;
        };
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

    fn flush_mailbox(&mut self, pid: ProcessId, mut unwanted: impl FnMut(&mut Message) -> bool) {
        let Some(task) = self.local_task(pid) else {
            return;
        };
        if let Some(slot) = self.processes.get_mut(task) {
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
        relations: Relations,
        reason: &DiedReason,
    ) -> Vec<ExitHook> {
        let Relations {
            monitored_by,
            linked_by,
            monitoring,
            linked_to,
            names,
            channels,
            exit_hooks,
        } = relations;
        for (monitor_ref, watcher) in monitored_by {
            self.notify_monitor(watcher, monitor_ref, reason.clone());
        }
        for linker in linked_by {
            self.link_signal(linker, pid, reason.clone());
        }
        for monitor_ref in monitoring {
            if let Some(relations) = self.relations_of(monitor_ref.target) {
                relations.monitored_by.retain(|(r, _)| *r != monitor_ref);
            }
        }
        for target in linked_to {
            if let Some(relations) = self.relations_of(target) {
                relations.linked_by.retain(|linker| *linker != pid);
            }
        }
        for name in names {
            self.registry.remove_if_held(&name, pid);
        }
        for channel in channels {
            self.channels.close(channel);
        }
        exit_hooks
    }
}
