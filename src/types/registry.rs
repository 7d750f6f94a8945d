//! The registry's vocabulary, as in Cloud Haskell (`register`, `unregister`, `whereis`,
//! `nsend`): why an operation is refused, and the changes another node may ask. The
//! registry itself (names to processes, freed when a holder dies) is owned by the node
//! (`node::registry`).
//!
//! A name may be held by a process of another node (Cloud Haskell allows it): `nsend`
//! to it crosses the network, and the registry monitors the holder, so the name goes
//! (with an `Unregistered` event) when the holder dies or the connection to its node
//! is lost.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::id::{NodeId, ProcessId};

/// Why a registry operation was refused.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
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
    /// `unregister` (or `reregister`) of a name nobody holds.
    NotRegistered(String),
    /// The connection to the node asked ([`Process::register_remote`] and friends) was
    /// lost before it answered.
    ///
    /// [`Process::register_remote`]: crate::Process::register_remote
    Disconnected(NodeId),
    /// The request could not be sent (a name longer than the frame limit allows).
    Unsendable(String),
}

/// A change to a node's registry asked by another node (`Control::Registry`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RegistryAction {
    /// `register`.
    Register(ProcessId),
    /// `reregister`.
    Reregister(ProcessId),
    /// `unregister`.
    Unregister,
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
            RegistryError::Unsendable(why) => write!(f, "registry request not sent: {why}"),
            RegistryError::Disconnected(node) => {
                write!(f, "connection to {node} lost before it answered")
            }
        }
    }
}

impl std::error::Error for RegistryError {}
