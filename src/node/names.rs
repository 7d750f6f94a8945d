//! The registry's table: names to processes, with the registry's own monitors on remote
//! holders. A plain data structure; what a change means for the node is in
//! `node::registry`.

use std::collections::BTreeMap;

use crate::types::id::{MonitorRef, NodeId, ProcessId};
use crate::types::registry::RegistryError;

/// Names to processes. A `BTreeMap`, so any walk over it is reproducible.
#[derive(Default)]
pub(crate) struct Registry {
    names: BTreeMap<String, ProcessId>,
    /// The registry's own monitor on each remote process holding a name here.
    pub(crate) remote_watches: BTreeMap<ProcessId, MonitorRef>,
}

impl Registry {
    pub(crate) fn insert(&mut self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        if let Some(holder) = self.names.get(name) {
            return Err(RegistryError::AlreadyRegistered {
                name: name.to_string(),
                holder: *holder,
            });
        }
        self.names.insert(name.to_string(), pid);
        Ok(())
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<ProcessId> {
        self.names.remove(name)
    }

    /// Removes `name` only if `pid` still holds it; returns whether it did.
    pub(crate) fn remove_if_held(&mut self, name: &str, pid: ProcessId) -> bool {
        let held = self.names.get(name) == Some(&pid);
        if held {
            self.names.remove(name);
        }
        held
    }

    pub(crate) fn get(&self, name: &str) -> Option<ProcessId> {
        self.names.get(name).copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// Replaces the holder of a name someone holds; returns the previous holder.
    pub(crate) fn replace(&mut self, name: &str, pid: ProcessId) -> Option<ProcessId> {
        let held = self.names.get_mut(name)?;
        Some(std::mem::replace(held, pid))
    }

    /// The names `pid` holds, in name order.
    pub(crate) fn names_of(&self, pid: ProcessId) -> Vec<String> {
        self.names
            .iter()
            .filter(|(_, holder)| **holder == pid)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The names held by processes of `node`, in name order, with their holders.
    pub(crate) fn names_on(&self, node: NodeId) -> Vec<(String, ProcessId)> {
        self.names
            .iter()
            .filter(|(_, holder)| holder.node == node)
            .map(|(name, holder)| (name.clone(), *holder))
            .collect()
    }

    /// The processes holding names that start with `prefix`, in name order.
    pub(crate) fn with_prefix(&self, prefix: &str) -> Vec<ProcessId> {
        self.names
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(_, pid)| *pid)
            .collect()
    }
}
