//! The node's registry of names (Cloud Haskell's `register`, `unregister`, `whereis`,
//! `nsend`), as the node runs it: the table itself is `Registry` (`node::names`);
//! here is what a change means for the rest of the node (a holder's list of names, the
//! management events, a monitor on a remote holder). A name is removed when its process
//! dies.
//!
//! A name may be held by a process of another node (Cloud Haskell allows it): `nsend`
//! to it crosses the network, and the registry monitors the holder, so the name goes
//! (with an `Unregistered` event) when the holder dies or the connection to its node
//! is lost.

use super::local::NodeState;
use crate::message::Message;
use crate::types::id::{MonitorRef, NodeId, ProcessId};
use crate::types::registry::{RegistryAction, RegistryError};
use crate::wire::Control;

impl NodeState {
    /// Registers `name` for `pid`: refused if taken, or if `pid` is a dead process of
    /// this node. The name is freed when the process dies (a remote holder is monitored
    /// for that).
    pub(crate) fn register(&mut self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        self.check_alive_here(pid)?;
        self.registry.insert(name, pid)?;
        self.name_taken(name, pid);
        Ok(())
    }

    /// Gives a name someone holds to `pid` instead (Cloud Haskell's `reregister`):
    /// refused if nobody holds it, or if `pid` is a dead process of this node.
    pub(crate) fn reregister(&mut self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        self.check_alive_here(pid)?;
        let previous = self
            .registry
            .replace(name, pid)
            .ok_or_else(|| RegistryError::NotRegistered(name.to_string()))?;
        self.name_dropped(name, previous);
        self.name_taken(name, pid);
        Ok(())
    }

    /// Removes `name` from the registry; returns who held it.
    pub(crate) fn unregister(&mut self, name: &str) -> Result<ProcessId, RegistryError> {
        let pid = self
            .registry
            .remove(name)
            .ok_or_else(|| RegistryError::NotRegistered(name.to_string()))?;
        self.name_dropped(name, pid);
        Ok(pid)
    }

    fn check_alive_here(&self, pid: ProcessId) -> Result<(), RegistryError> {
        match self.local_task(pid) {
            Some(task) if self.kernel.slot(task).is_none() => {
                Err(RegistryError::ProcessNotAlive(pid))
            }
            _ => Ok(()),
        }
    }

    /// Bookkeeping once `pid` holds `name`: the event, and the holder's side (a local
    /// process's list of names, or the registry's monitor on a remote one).
    fn name_taken(&mut self, name: &str, pid: ProcessId) {
        self.mx_registered(pid, name); // mx hook
        match self.local_task(pid) {
            Some(task) => {
                if let Some(slot) = self.kernel.slot_mut(task) {
                    slot.relations().names.push(name.to_string());
                }
            }
            None => self.watch_remote_holder(pid),
        }
    }

    /// Bookkeeping once `pid` no longer holds `name` (unregistered or reregistered).
    fn name_dropped(&mut self, name: &str, pid: ProcessId) {
        self.mx_unregistered(pid, name); // mx hook
        match self.local_task(pid) {
            Some(task) => {
                if let Some(slot) = self.kernel.slot_mut(task) {
                    slot.relations().names.retain(|held| held != name);
                }
            }
            None => {
                if self.registry.names_of(pid).is_empty() {
                    self.unwatch_remote_holder(pid);
                }
            }
        }
    }

    /// The pseudo-process that watches remote holders for the registry: number 0 is
    /// never a process's (generations start at 1), so nothing else answers to it.
    pub(crate) fn registry_watcher(&self) -> ProcessId {
        ProcessId {
            node: self.id,
            local: 0,
        }
    }

    /// Monitors a remote holder (once, however many names it holds), as Cloud Haskell's
    /// node controller does: its death, or the loss of its node, frees its names.
    fn watch_remote_holder(&mut self, pid: ProcessId) {
        if self.registry.remote_watches.contains_key(&pid) {
            return;
        }
        let monitor_ref = MonitorRef {
            target: pid,
            id: self.unique(),
        };
        let watcher = self.registry_watcher();
        let Some(network) = &mut self.network else {
            // No transport: the holder can never be reached nor heard of.
            return;
        };
        network.peer(pid.node).monitors.push((monitor_ref, watcher));
        network.send_control(
            pid.node,
            Control::Monitor {
                monitor_ref,
                watcher,
            },
        );
        self.registry.remote_watches.insert(pid, monitor_ref);
    }

    fn unwatch_remote_holder(&mut self, pid: ProcessId) {
        let Some(monitor_ref) = self.registry.remote_watches.remove(&pid) else {
            return;
        };
        if let Some(network) = &mut self.network {
            network
                .peer(pid.node)
                .monitors
                .retain(|(held, _)| *held != monitor_ref);
            network.send_control(pid.node, Control::Unmonitor { monitor_ref });
        }
    }

    /// A monitor notification for the registry's watcher: if it is the registry's
    /// monitor on `monitor_ref.target`, that holder died and its names go.
    pub(crate) fn remote_holder_died(&mut self, monitor_ref: MonitorRef) {
        let pid = monitor_ref.target;
        if self.registry.remote_watches.get(&pid) != Some(&monitor_ref) {
            return;
        }
        self.registry.remote_watches.remove(&pid);
        if crate::planted::is_planted(crate::planted::Defect::NameKeptAfterHolderDied) {
            return;
        }
        for name in self.registry.names_of(pid) {
            self.registry.remove(&name);
            tracing::debug!(%pid, name, "name released: its remote holder died");
            self.mx_unregistered(pid, &name); // mx hook
        }
    }

    /// The connection to `node` is lost: names held by its processes go, as in Cloud
    /// Haskell (they may be alive, but nothing sent to them can be known to arrive).
    pub(crate) fn peer_names_lost(&mut self, node: NodeId) {
        self.registry
            .remote_watches
            .retain(|holder, _| holder.node != node);
        for (name, pid) in self.registry.names_on(node) {
            self.registry.remove(&name);
            tracing::debug!(%pid, name, "name released: its holder's node was lost");
            self.mx_unregistered(pid, &name); // mx hook
        }
    }

    /// Applies a registry change another node asked for.
    pub(crate) fn apply_registry_action(
        &mut self,
        name: &str,
        action: RegistryAction,
    ) -> Result<(), RegistryError> {
        match action {
            RegistryAction::Register(pid) => self.register(name, pid),
            RegistryAction::Reregister(pid) => self.reregister(name, pid),
            RegistryAction::Unregister => self.unregister(name).map(|_| ()),
        }
    }

    /// Sends to the holder of a name, wherever it lives. A remote holder is reached as
    /// named sends are: reconnecting implicitly (Cloud Haskell's `nsend`).
    pub(crate) fn send_to_holder(&mut self, from: ProcessId, holder: ProcessId, message: Message) {
        if holder.node == self.id {
            self.deliver_here(holder.local, message);
        } else if let Some(network) = &mut self.network {
            if let Err(err) = network.send_message(from, holder, &message) {
                self.mx_message_refused(
                    from,
                    crate::bus::events::MxRecipient::Process(holder),
                    &err,
                );
            }
        }
    }
}
