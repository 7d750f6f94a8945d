//! What links, monitors and exit signals deliver, as messages.

use serde::{Deserialize, Serialize};

use super::id::{DiedReason, MonitorRef, NodeId, ProcessId};

/// Sent to a monitoring process when the process it monitors dies (or when it did not
/// exist to begin with). Exactly one per monitor, unless the monitor was removed first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProcessMonitorNotification {
    /// The reference [`Process::monitor`](crate::Process::monitor) returned.
    pub monitor_ref: MonitorRef,
    /// The process that died.
    pub pid: ProcessId,
    /// Why.
    pub reason: DiedReason,
}

/// The notification of a normal exit, packed in its envelope without an allocation
/// (`spawn_monitor` loops send them by the hundred thousand): the node's id is shared,
/// the words are the process's local number and the monitor's id.
impl crate::message::Packable for ProcessMonitorNotification {
    type Shared = NodeId;

    fn unpack(node: &NodeId, [local, id]: [u64; 2]) -> Self {
        let pid = ProcessId { node: *node, local };
        ProcessMonitorNotification {
            monitor_ref: MonitorRef { target: pid, id },
            pid,
            reason: DiedReason::Normal,
        }
    }
}

/// Delivered as a message to a process that traps exits when a process it linked to
/// dies (any reason, normal included). A process that does not trap exits instead dies
/// itself, unless the reason was [`DiedReason::Normal`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProcessLinkSignal {
    /// The linked process that died.
    pub pid: ProcessId,
    /// Why.
    pub reason: DiedReason,
}

/// Delivered as a message to a process that traps exits when another process calls
/// [`Process::exit`](crate::Process::exit) on it. A process that does not trap exits
/// dies instead.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProcessExitSignal {
    /// Who sent the signal.
    pub from: ProcessId,
    /// The reason it gave.
    pub reason: String,
}

/// Sent to a process monitoring a node ([`Process::monitor_node`]) when the connection
/// to that node is lost.
///
/// [`Process::monitor_node`]: crate::Process::monitor_node
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeMonitorNotification {
    /// The reference `monitor_node` returned.
    pub monitor_ref: MonitorRef,
    /// The node.
    pub node: NodeId,
    /// [`DiedReason::Disconnect`] for a lost connection.
    pub reason: DiedReason,
}

/// The answer to a remote spawn request, delivered to the requester's mailbox (the
/// runtime's own reply; [`Process::spawn`](crate::Process::spawn) consumes it).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SpawnReply {
    /// The request answered.
    pub request: u64,
    /// The new process, or why none was started.
    pub result: Result<ProcessId, String>,
}

/// The answer to a remote registry change, delivered to the requester's mailbox
/// ([`Process::register_remote`](crate::Process::register_remote) consumes it).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RegistryReply {
    /// The request answered.
    pub request: u64,
    /// Done, or why not.
    pub result: Result<(), super::registry::RegistryError>,
}

/// The answer to a remote registry query, delivered to the requester's mailbox
/// ([`Process::whereis_remote`](crate::Process::whereis_remote) consumes it).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WhereIsReply {
    /// The request answered.
    pub request: u64,
    /// The process holding the name, if any.
    pub pid: Option<ProcessId>,
}
