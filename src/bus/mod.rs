//! The node's management event bus: one queue per running agent, filled by the node's
//! publishing hooks (`node::mx_publish`), drained by the agents' loops; and what it
//! carries: the system events ([`events`], `MxEvent`) and what controls the tracer
//! ([`trace_control`]).
//!
//! The lower half of management (issue 19): the node publishes here, below the process
//! layer; the agents that read it (`crate::mx`) sit above `Process` and re-export these
//! types as `hyperion::mx::*`.
//!
//! The bus lives in the node's state, so publishing is a method call on the state the
//! node already holds: no lock, never blocking. When no agent takes an event kind, its
//! hook is one branch on a bitmask (the hooks are `#[inline(always)]`, the work behind
//! them is out of line). The events of the message path (`Sent` to a local process,
//! `Received`, or both in one item) travel as small `Copy` items and become
//! [`MxEvent`]s only in the agent that reads them. Agents are few (each is a process);
//! a `Vec` walked in start order keeps delivery reproducible.

pub(crate) mod events;
pub(crate) mod trace_control;

use std::collections::BTreeMap;

use self::events::{Info, MxEvent, MxEventKind};
use crate::kernel::TaskId;
use crate::message::Message;
use crate::types::id::{NodeId, ProcessId};

/// Most inputs one agent's bus queue holds; events published while it is full are
/// dropped for that agent (and counted, see
/// [`MxAgent::events_dropped`](crate::mx::MxAgent::events_dropped)). Publishing never
/// blocks, so a slow agent loses events rather than slowing the node down or growing
/// without bound.
pub const MX_AGENT_BACKLOG_MAX: usize = 1 << 16;

/// The bit of [`Bus::interest`] that says an observer (the simulator's checkers and
/// trace) reads the node's events; the event kinds' bits are below it.
pub(crate) const OBSERVED: u32 = 1 << 31;

/// One input waiting on the bus.
pub(crate) enum BusItem {
    /// [`MxEvent::Sent`] between two processes of this node, by local numbers.
    SentLocal { from: u64, to: u64, info: Info },
    /// [`MxEvent::Received`] by a process of this node.
    Received { pid: u64, info: Info },
    /// A message between two processes of this node: [`MxEvent::Sent`] then
    /// [`MxEvent::Received`], in one item (half the work of two).
    LocalSend { from: u64, to: u64, info: Info },
    /// Any other system event.
    Event(Box<MxEvent>),
    /// A value published with `mx_notify` or `mx_broadcast`.
    Message(Message),
}

impl BusItem {
    /// The kind of system event this is (`None` for a user's value).
    pub(crate) fn kind(&self) -> Option<MxEventKind> {
        match self {
            BusItem::SentLocal { .. } | BusItem::LocalSend { .. } => Some(MxEventKind::Sent),
            BusItem::Received { .. } => Some(MxEventKind::Received),
            BusItem::Event(event) => Some(event.kind()),
            BusItem::Message(_) => None,
        }
    }

    /// The system event, for an agent of node `node`; `Err` gives back a user value.
    #[inline]
    pub(crate) fn into_event(self, node: NodeId) -> Result<MxEvent, Message> {
        let local = |local| ProcessId { node, local };
        match self {
            BusItem::SentLocal { from, to, info } => Ok(MxEvent::Sent {
                to: local(to),
                from: local(from),
                message: info.into(),
            }),
            BusItem::Received { pid, info } => Ok(MxEvent::Received {
                pid: local(pid),
                message: info.into(),
            }),
            // Not reached: the agent's loop splits it first (`AgentLoop::pop_bus`).
            BusItem::LocalSend { from, to, info } => Ok(MxEvent::Sent {
                to: local(to),
                from: local(from),
                message: info.into(),
            }),
            BusItem::Event(event) => Ok(*event),
            BusItem::Message(message) => Err(message),
        }
    }

    /// A copy for another agent. A message is copied through its encoding (values of
    /// any serializable type need not be `Clone`); one that cannot be encoded is not
    /// copied.
    pub(crate) fn duplicate(&self) -> Option<BusItem> {
        match self {
            BusItem::SentLocal { from, to, info } => Some(BusItem::SentLocal {
                from: *from,
                to: *to,
                info: *info,
            }),
            BusItem::Received { pid, info } => Some(BusItem::Received {
                pid: *pid,
                info: *info,
            }),
            BusItem::LocalSend { from, to, info } => Some(BusItem::LocalSend {
                from: *from,
                to: *to,
                info: *info,
            }),
            BusItem::Event(event) => Some(BusItem::Event(event.clone())),
            BusItem::Message(message) => match message.encode() {
                Ok((fingerprint, bytes)) => {
                    Some(BusItem::Message(Message::from_encoded(fingerprint, bytes)))
                }
                Err(err) => {
                    tracing::error!(%err, "management notification not copied: cannot encode");
                    None
                }
            },
        }
    }
}

/// One agent's subscription.
pub(crate) struct Reader {
    pub(crate) pid: ProcessId,
    pub(crate) task: TaskId,
    /// The agent's id, as text (the bus needs no more of it).
    pub(crate) id: String,
    /// The event kinds its sinks take (bits of [`MxEventKind::bit`]): other system
    /// events are not queued for it at all, since no sink of it would take them.
    pub(crate) kinds: u32,
    /// Appended to by publishers, taken whole by the agent.
    pub(crate) queue: Vec<BusItem>,
    /// The agent waits for input: the next item queued for it schedules it.
    pub(crate) asleep: bool,
    pub(crate) dropped: u64,
}

impl Reader {
    /// Whether `item` is for this agent.
    #[inline(always)]
    pub(crate) fn takes(&self, kind: Option<MxEventKind>) -> bool {
        kind.is_none_or(|kind| self.kinds & kind.bit() != 0)
    }
}

/// A node's management bus and the bookkeeping its events need.
#[derive(Default)]
pub(crate) struct Bus {
    /// Running agents, in the order they started.
    pub(crate) readers: Vec<Reader>,
    /// The union of the readers' kinds.
    pub(crate) kinds: u32,
    /// Who reads the node's events, as one mask: `kinds`, plus [`OBSERVED`] if an
    /// observer is installed. The one number a hot path looks at, whoever listens.
    pub(crate) interest: u32,
    /// The number of each peer connection, from `Connected` to `Disconnected`.
    pub(crate) connections: BTreeMap<NodeId, u64>,
    pub(crate) next_connection: u64,
    /// The `Received` event of the message being delivered went out with its `Sent`
    /// (see `mx_sent_here_slow`): the delivery publishes nothing more.
    pub(crate) received_published: bool,
    /// Management control messages from other nodes refused (see `TraceControl`).
    pub(crate) remote_controls_refused: u64,
}

impl Bus {
    /// Whether any agent reads events of `kind`.
    #[inline(always)]
    pub(crate) fn wants(&self, kind: MxEventKind) -> bool {
        self.kinds & kind.bit() != 0
    }

    /// Whether any agent runs (user values are published only then).
    pub(crate) fn is_active(&self) -> bool {
        !self.readers.is_empty()
    }

    pub(crate) fn subscribe(&mut self, id: impl ToString, pid: ProcessId, kinds: u32) {
        self.readers.push(Reader {
            pid,
            task: TaskId::from_u64(pid.local),
            id: id.to_string(),
            kinds,
            queue: Vec::new(),
            asleep: false,
            dropped: 0,
        });
        self.kinds |= kinds;
        self.interest |= kinds;
    }

    pub(crate) fn unsubscribe(&mut self, pid: ProcessId) {
        self.readers.retain(|reader| reader.pid != pid);
        self.kinds = self.readers.iter().fold(0, |kinds, r| kinds | r.kinds);
        self.interest = self.kinds | (self.interest & OBSERVED);
    }

    /// A bus for a node that an observer reads (`observed`) or not.
    pub(crate) fn observed(observed: bool) -> Bus {
        let mut bus = Bus::default();
        bus.set_observed(observed);
        bus
    }

    /// Records that an observer reads the node's events (see [`OBSERVED`]).
    pub(crate) fn set_observed(&mut self, observed: bool) {
        self.interest = self.kinds | if observed { OBSERVED } else { 0 };
    }

    pub(crate) fn reader_mut(&mut self, pid: ProcessId) -> Option<&mut Reader> {
        self.readers.iter_mut().find(|reader| reader.pid == pid)
    }

    /// The running agents, in start order, with their ids (as `A`, an `MxAgentId`).
    pub(crate) fn agents<A: From<String>>(&self) -> Vec<(A, ProcessId)> {
        self.readers
            .iter()
            .map(|reader| (A::from(reader.id.clone()), reader.pid))
            .collect()
    }
}

/// Counts an item a full queue refused.
pub(crate) fn refuse(reader: &mut Reader) {
    if reader.dropped == 0 {
        tracing::warn!(agent = %reader.id, "management agent backlog full; events dropped");
    }
    reader.dropped += 1;
}
