//! Nodes: [`LocalNode`], a node's state on the thread that drives it, and [`Node`], a
//! node running on its own thread in the real world, usable from ordinary code.

pub(crate) mod local;
pub mod network;
mod remote;
mod thread;

pub use local::{LocalNode, NodeEnv, NodeResources, Observer};
pub use network::HeartbeatConfig;
pub use thread::{Node, NodeConfig, NodeStopped};

use crate::process::id::{DiedReason, MonitorRef, NodeId, ProcessId};

/// What a node reports to its observer (see [`NodeEnv::observer`]): the facts the
/// simulator's checkers need to verify the runtime's guarantees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A process started monitoring another.
    MonitorCreated {
        /// The monitor.
        monitor_ref: MonitorRef,
        /// Who monitors.
        watcher: ProcessId,
    },
    /// A monitor notification entered a local watcher's mailbox.
    MonitorFired {
        /// The monitor.
        monitor_ref: MonitorRef,
        /// Who was told.
        watcher: ProcessId,
        /// The reason given.
        reason: DiedReason,
    },
    /// A message from another node entered a live local process's mailbox.
    RemoteDelivered {
        /// The sender.
        from: ProcessId,
        /// The receiver.
        to: ProcessId,
    },
    /// A connection to a peer came up.
    PeerConnected(NodeId),
    /// A connection to a peer was lost (or the peer declared dead by heartbeat).
    PeerLost(NodeId),
}
