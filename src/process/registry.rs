//! The node's registry of names, as in Cloud Haskell: `register`, `unregister`,
//! `whereis`, `nsend`. A name is removed when its process dies.

use std::collections::BTreeMap;
use std::fmt;

use super::id::ProcessId;

/// Why a registry operation was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RegistryError {
    /// The name is taken.
    AlreadyRegistered {
        /// The name asked for.
        name: String,
        /// The process holding it.
        holder: ProcessId,
    },
    /// The process to register is not alive.
    ProcessNotAlive(ProcessId),
    /// `unregister` of a name nobody holds.
    NotRegistered(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::AlreadyRegistered { name, holder } => {
                write!(f, "name {name:?} is already registered to {holder}")
            }
            RegistryError::ProcessNotAlive(pid) => {
                write!(f, "cannot register {pid}: it is not alive")
            }
            RegistryError::NotRegistered(name) => write!(f, "name {name:?} is not registered"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// Names to processes. A `BTreeMap`, so any walk over it is reproducible.
#[derive(Default)]
pub(crate) struct Registry {
    names: BTreeMap<String, ProcessId>,
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

    /// The processes holding names that start with `prefix`, in name order.
    pub(crate) fn with_prefix(&self, prefix: &str) -> Vec<ProcessId> {
        self.names
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(_, pid)| *pid)
            .collect()
    }
}

impl crate::node::local::NodeState {
    /// Registers `name` for `pid`: refused if taken, or if `pid` is a dead process of
    /// this node. The name is freed when the process dies.
    pub(crate) fn register(&mut self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        let task = self.local_task(pid);
        if let Some(task) = task {
            if self.processes.get(task).is_none() {
                return Err(RegistryError::ProcessNotAlive(pid));
            }
        }
        self.registry.insert(name, pid)?;
        self.mx_registered(pid, name); // mx hook
        if let Some(slot) = task.and_then(|task| self.processes.get_mut(task)) {
            slot.relations().names.push(name.to_string());
        }
        Ok(())
    }
}
