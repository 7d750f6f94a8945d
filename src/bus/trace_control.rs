//! What controls the tracer, kept apart from the tracer agent so that the node can
//! check, on every message from another node, that management control is local
//! ([`is_local_only`]) without depending on the agent.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::events::MxEventKind;
use crate::types::id::ProcessId;

/// Where the tracer writes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TraceTarget {
    /// Nowhere: events are ignored.
    Off,
    /// An in-memory list, read with [`Tracer::records`](crate::mx::Tracer::records) or [`TraceControl::Records`].
    Memory,
    /// A file, one JSON object per line, appended to (created if missing).
    File(PathBuf),
}

/// Which event kinds the tracer records (Cloud Haskell's trace flags, by kind).
///
/// ```
/// use hyperion::mx::{MxEventKind, TraceFlags};
/// let flags = TraceFlags::all().without(MxEventKind::Sent).without(MxEventKind::Received);
/// assert!(flags.contains(MxEventKind::Spawned));
/// assert!(!flags.contains(MxEventKind::Sent));
/// assert_eq!(TraceFlags::none().with(MxEventKind::Log), TraceFlags::of(&[MxEventKind::Log]));
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TraceFlags(u32);

impl TraceFlags {
    /// Every kind.
    pub fn all() -> TraceFlags {
        TraceFlags::of(&MxEventKind::ALL)
    }

    /// No kind.
    pub fn none() -> TraceFlags {
        TraceFlags(0)
    }

    /// Exactly these kinds.
    pub fn of(kinds: &[MxEventKind]) -> TraceFlags {
        kinds
            .iter()
            .fold(TraceFlags::none(), |flags, kind| flags.with(*kind))
    }

    /// These flags and `kind`.
    pub fn with(self, kind: MxEventKind) -> TraceFlags {
        TraceFlags(self.0 | kind.bit())
    }

    /// These flags without `kind`.
    pub fn without(self, kind: MxEventKind) -> TraceFlags {
        TraceFlags(self.0 & !kind.bit())
    }

    /// Whether `kind` is recorded.
    pub fn contains(self, kind: MxEventKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

impl Default for TraceFlags {
    fn default() -> Self {
        TraceFlags::all()
    }
}

/// A message to the tracer agent from a process of its own node (send it to
/// [`Tracer::pid`](crate::mx::Tracer::pid), or `nsend` it to [`TRACER_AGENT_ID`](crate::mx::TRACER_AGENT_ID)). Control messages are handled
/// before pending events. Errors (a file that cannot be opened) are logged; use
/// [`Tracer`](crate::mx::Tracer)'s methods to get them as values.
///
/// Management is local: it can make the node write to any file it may open and hands out
/// every recorded event, so a `TraceControl` that comes from another node (whatever
/// process it is addressed to) is refused when it arrives: logged, counted (see
/// [`LocalNode::remote_controls_refused`](crate::LocalNode::remote_controls_refused)),
/// and dropped.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TraceControl {
    /// Write to another target from now on.
    SetTarget(TraceTarget),
    /// Record these kinds from now on.
    SetFlags(TraceFlags),
    /// Flush the trace file.
    Flush,
    /// Send the in-memory records (a `Vec<TraceRecord>`) to this process.
    Records {
        /// Who gets them.
        reply_to: ProcessId,
    },
}

/// Whether a message of this type may only come from a process of the node it controls
/// (see [`TraceControl`]): checked on every message from another node.
pub(crate) fn is_local_only(fingerprint: crate::message::Fingerprint) -> bool {
    static LOCAL_ONLY: std::sync::OnceLock<crate::message::Fingerprint> =
        std::sync::OnceLock::new();
    fingerprint == *LOCAL_ONLY.get_or_init(crate::message::Fingerprint::of::<TraceControl>)
}
