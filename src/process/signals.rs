//! What links, monitors and exit signals deliver, as messages.

use serde::{Deserialize, Serialize};

use super::id::{DiedReason, MonitorRef, ProcessId};

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
