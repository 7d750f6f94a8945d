//! What a node reports to its observer: [`NodeEvent`], the facts the simulator's
//! checkers and its trace's hash chain read, and the [`Observer`] that receives them.
//! They are emitted, with the management bus's events, by the node's one event source,
//! `node::emit`.

use std::rc::Rc;

use crate::types::id::{DiedReason, MonitorRef, NodeId, ProcessId};

/// A callback told of node events (see [`NodeEvent`]). It runs while the node is busy:
/// it must not call back into the node.
pub type Observer = Rc<dyn Fn(&NodeEvent)>;

/// What a node reports to its observer (see [`NodeEnv::observer`](crate::node::local::NodeEnv::observer)): the facts the
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
    /// A process stopped monitoring another (`unmonitor`): no notification is due.
    MonitorRemoved {
        /// The monitor.
        monitor_ref: MonitorRef,
        /// Who monitored.
        watcher: ProcessId,
    },
    /// A monitor notification entered a mailbox (counted where it is received, so a
    /// notification queued twice is seen even if the node decided to fire once).
    MonitorNotificationQueued {
        /// The monitor.
        monitor_ref: MonitorRef,
        /// Whose mailbox.
        watcher: ProcessId,
    },
    /// A process linked itself to another.
    LinkCreated {
        /// Who hears of the target's death.
        linker: ProcessId,
        /// The process linked to.
        target: ProcessId,
    },
    /// A link signal reached a live local linker (it traps it, or dies of it, or ignores
    /// a normal exit).
    LinkFired {
        /// The linker.
        linker: ProcessId,
        /// The process that died.
        target: ProcessId,
        /// The reason given.
        reason: DiedReason,
    },
    /// A process removed its link (`unlink`): no signal is due.
    LinkRemoved {
        /// The linker.
        linker: ProcessId,
        /// The process it was linked to.
        target: ProcessId,
    },
    /// A data message from a local process was handed to the transport for a process of
    /// another node (named and control sends are not data).
    DataSent {
        /// The sender.
        from: ProcessId,
        /// The receiver.
        to: ProcessId,
    },
    /// A process acknowledged the breaks of its connection to `node` (`reconnect`), for
    /// data to `to` or, if `None`, to every process of `node` it sent to.
    Reconnected {
        /// The process.
        from: ProcessId,
        /// The peer node.
        node: NodeId,
        /// The one process it reconnects to, if only one.
        to: Option<ProcessId>,
    },
    /// A connection to a peer came up.
    PeerConnected(NodeId),
    /// A connection to a peer was lost (or the peer declared dead by heartbeat).
    PeerLost(NodeId),
}
