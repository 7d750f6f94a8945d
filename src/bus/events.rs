//! The system events a node publishes on its management bus ([`MxEvent`]), and the
//! descriptions of messages they carry.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message::{self, Fingerprint, Message};
use crate::types::id::SendPortId;
use crate::types::id::{DiedReason, NodeId, ProcessId};
use crate::Serializable;

/// What happened on a node, as its management bus reports it (Cloud Haskell's
/// `MxEvent`, with the same constructors and fields).
///
/// Every running agent receives every event published after it started; a sink of type
/// `MxEvent` sees them. Events are published by the node itself, when their cause
/// happens, on the node where it happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MxEvent {
    /// A process started on this node (`MxSpawned`).
    Spawned(ProcessId),
    /// A name was registered on this node (`MxRegistered`).
    Registered {
        /// The process the name now stands for.
        pid: ProcessId,
        /// The name.
        name: String,
    },
    /// A name was removed from this node's registry, by `unregister` or because its
    /// process died (`MxUnRegistered`).
    Unregistered {
        /// The process that held the name.
        pid: ProcessId,
        /// The name.
        name: String,
    },
    /// A process of this node died (`MxProcessDied`).
    ProcessDied {
        /// The process.
        pid: ProcessId,
        /// Why, as links and monitors report it.
        reason: DiedReason,
    },
    /// A connected peer node was lost: its connection broke, it crashed, or it stayed
    /// silent beyond the heartbeat timeout (`MxNodeDied`; the reason is always
    /// [`DiedReason::Disconnect`], as in Cloud Haskell).
    NodeDied {
        /// The peer.
        node: NodeId,
        /// Why.
        reason: DiedReason,
    },
    /// A process of this node sent a message (`MxSent`): to a local process, or to a
    /// remote one (published even if the connection then drops it).
    Sent {
        /// The receiver.
        to: ProcessId,
        /// The sender.
        from: ProcessId,
        /// What was sent (its type, not its body: see [`MxMessageInfo`]).
        message: MxMessageInfo,
    },
    /// A process of this node sent a message to a registered name, here or on another
    /// node (`MxSentToName`; `nsend`, `nsend_remote`).
    SentToName {
        /// The name.
        name: String,
        /// The sender.
        from: ProcessId,
        /// What was sent.
        message: MxMessageInfo,
    },
    /// A process of this node sent a message on a typed channel (`MxSentToPort`).
    SentToPort {
        /// The sender.
        from: ProcessId,
        /// The channel.
        port: SendPortId,
        /// What was sent.
        message: MxMessageInfo,
    },
    /// A message entered the mailbox of a live process of this node, from a local
    /// sender or from another node (`MxReceived`).
    Received {
        /// The receiver.
        pid: ProcessId,
        /// What was received.
        message: MxMessageInfo,
    },
    /// A message entered a typed channel of a live process of this node
    /// (`MxReceivedPort`).
    ReceivedPort {
        /// The channel.
        port: SendPortId,
        /// What was received.
        message: MxMessageInfo,
    },
    /// A connection to a peer node came up (`MxConnected`).
    Connected {
        /// The connection's number on this node (unique per node, never reused).
        connection: u64,
        /// The peer.
        node: NodeId,
    },
    /// The connection to a peer node broke (`MxDisconnected`); `connection` is the
    /// number its [`MxEvent::Connected`] carried.
    Disconnected {
        /// The connection's number on this node.
        connection: u64,
        /// The peer.
        node: NodeId,
    },
    /// A process of this node sent a message (or a spawn request) longer than the
    /// transport's frame limit: it was refused before it was queued, and the connection
    /// stays up (no Cloud Haskell equivalent).
    MessageRefused {
        /// The sender.
        from: ProcessId,
        /// Where it was going.
        to: MxRecipient,
        /// The encoded frame's length, in bytes.
        bytes: u64,
        /// The frame limit, in bytes.
        limit: u64,
    },
    /// A user-defined trace event, from [`mx_trace_message`](crate::mx::mx_trace_message)
    /// (`MxUser`).
    User(MxPayload),
    /// A log line, from [`mx_log`](crate::mx::mx_log) (`MxLog`).
    Log(String),
    /// One poll of `pid` held the node's thread for `held` or longer, more than the
    /// watchdog's `bound` (real-world nodes only; see
    /// [`NodeConfig::poll_warning`](crate::NodeConfig::poll_warning)). Nothing else ran
    /// on the node meanwhile, heartbeats included (no Cloud Haskell equivalent).
    SlowPoll {
        /// The process polled.
        pid: ProcessId,
        /// How long the watchdog saw the poll run (at least this long).
        held: std::time::Duration,
        /// The bound it exceeded.
        bound: std::time::Duration,
    },
}

impl MxEvent {
    /// The event's kind (its constructor without fields).
    pub fn kind(&self) -> MxEventKind {
        match self {
            MxEvent::Spawned(_) => MxEventKind::Spawned,
            MxEvent::Registered { .. } => MxEventKind::Registered,
            MxEvent::Unregistered { .. } => MxEventKind::Unregistered,
            MxEvent::ProcessDied { .. } => MxEventKind::ProcessDied,
            MxEvent::NodeDied { .. } => MxEventKind::NodeDied,
            MxEvent::Sent { .. } => MxEventKind::Sent,
            MxEvent::SentToName { .. } => MxEventKind::SentToName,
            MxEvent::SentToPort { .. } => MxEventKind::SentToPort,
            MxEvent::Received { .. } => MxEventKind::Received,
            MxEvent::ReceivedPort { .. } => MxEventKind::ReceivedPort,
            MxEvent::Connected { .. } => MxEventKind::Connected,
            MxEvent::Disconnected { .. } => MxEventKind::Disconnected,
            MxEvent::MessageRefused { .. } => MxEventKind::MessageRefused,
            MxEvent::User(_) => MxEventKind::User,
            MxEvent::Log(_) => MxEventKind::Log,
            MxEvent::SlowPoll { .. } => MxEventKind::SlowPoll,
        }
    }

    /// The process the event is about, if it is about one (Cloud Haskell's
    /// `resolveToPid`, extended): the spawned, dead or receiving process, a message's
    /// sender, a name's holder, a channel's owner.
    pub fn pid(&self) -> Option<ProcessId> {
        match self {
            MxEvent::Spawned(pid)
            | MxEvent::ProcessDied { pid, .. }
            | MxEvent::Received { pid, .. }
            | MxEvent::Registered { pid, .. }
            | MxEvent::Unregistered { pid, .. }
            | MxEvent::SlowPoll { pid, .. } => Some(*pid),
            MxEvent::Sent { from, .. }
            | MxEvent::SentToName { from, .. }
            | MxEvent::SentToPort { from, .. }
            | MxEvent::MessageRefused { from, .. } => Some(*from),
            MxEvent::ReceivedPort { port, .. } => Some(port.owner),
            MxEvent::NodeDied { .. }
            | MxEvent::Connected { .. }
            | MxEvent::Disconnected { .. }
            | MxEvent::User(_)
            | MxEvent::Log(_) => None,
        }
    }
}

/// The kinds of [`MxEvent`], for filters (see [`TraceFlags`](crate::mx::TraceFlags)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MxEventKind {
    /// [`MxEvent::Spawned`].
    Spawned,
    /// [`MxEvent::Registered`].
    Registered,
    /// [`MxEvent::Unregistered`].
    Unregistered,
    /// [`MxEvent::ProcessDied`].
    ProcessDied,
    /// [`MxEvent::NodeDied`].
    NodeDied,
    /// [`MxEvent::Sent`].
    Sent,
    /// [`MxEvent::SentToName`].
    SentToName,
    /// [`MxEvent::SentToPort`].
    SentToPort,
    /// [`MxEvent::Received`].
    Received,
    /// [`MxEvent::ReceivedPort`].
    ReceivedPort,
    /// [`MxEvent::Connected`].
    Connected,
    /// [`MxEvent::Disconnected`].
    Disconnected,
    /// [`MxEvent::MessageRefused`].
    MessageRefused,
    /// [`MxEvent::User`].
    User,
    /// [`MxEvent::Log`].
    Log,
    /// [`MxEvent::SlowPoll`].
    SlowPoll,
}

impl MxEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [MxEventKind; 16] = [
        MxEventKind::Spawned,
        MxEventKind::Registered,
        MxEventKind::Unregistered,
        MxEventKind::ProcessDied,
        MxEventKind::NodeDied,
        MxEventKind::Sent,
        MxEventKind::SentToName,
        MxEventKind::SentToPort,
        MxEventKind::Received,
        MxEventKind::ReceivedPort,
        MxEventKind::Connected,
        MxEventKind::Disconnected,
        MxEventKind::MessageRefused,
        MxEventKind::User,
        MxEventKind::Log,
        MxEventKind::SlowPoll,
    ];

    /// The kind's name in traces: `spawned`, `registered`, ... (snake case).
    pub fn name(self) -> &'static str {
        match self {
            MxEventKind::Spawned => "spawned",
            MxEventKind::Registered => "registered",
            MxEventKind::Unregistered => "unregistered",
            MxEventKind::ProcessDied => "process_died",
            MxEventKind::NodeDied => "node_died",
            MxEventKind::Sent => "sent",
            MxEventKind::SentToName => "sent_to_name",
            MxEventKind::SentToPort => "sent_to_port",
            MxEventKind::Received => "received",
            MxEventKind::ReceivedPort => "received_port",
            MxEventKind::Connected => "connected",
            MxEventKind::Disconnected => "disconnected",
            MxEventKind::MessageRefused => "message_refused",
            MxEventKind::User => "user",
            MxEventKind::Log => "log",
            MxEventKind::SlowPoll => "slow_poll",
        }
    }

    /// The kind's bit in a set of kinds.
    pub(crate) const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Where a refused message was going ([`MxEvent::MessageRefused`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MxRecipient {
    /// A process (for a typed channel, its owner).
    Process(ProcessId),
    /// The process registered under `name` on `node`.
    Name {
        /// The node.
        node: NodeId,
        /// The name.
        name: String,
    },
    /// A node itself (a spawn request).
    Node(NodeId),
}

impl fmt::Display for MxRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MxRecipient::Process(pid) => write!(f, "{pid}"),
            MxRecipient::Name { node, name } => write!(f, "{name:?}@{node}"),
            MxRecipient::Node(node) => write!(f, "{node}"),
        }
    }
}

/// What a [`MxEvent::Sent`] or [`MxEvent::Received`] says about its message: its type.
///
/// Cloud Haskell's events carry the message itself, which is free in Haskell (values
/// are shared). Here the body moves into the receiver's mailbox; copying it for the
/// bus would mean encoding every message sent while an agent runs. The event
/// therefore names the type: by name for a value sent on this node, by fingerprint
/// for bytes that came from another node and are not decoded yet.
///
/// ```
/// use hyperion::message::{Fingerprint, Message};
/// use hyperion::mx::MxMessageInfo;
///
/// let fingerprint = Fingerprint::of::<u64>();
/// let info = MxMessageInfo::of(&Message::new(7u64));
/// assert!(info.is::<u64>());
/// assert_eq!(info.type_name(), Some("u64"));
/// assert_eq!(info.fingerprint(), fingerprint);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxMessageInfo {
    kind: InfoKind,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
enum InfoKind {
    Named(Cow<'static, str>),
    Encoded(Fingerprint),
}

impl MxMessageInfo {
    /// Describes `message` (cheap: no encoding, no hashing).
    #[inline]
    pub fn of(message: &Message) -> MxMessageInfo {
        Info::of_message(message).into()
    }

    /// The type's full name, when the message was a local value.
    pub fn type_name(&self) -> Option<&str> {
        match &self.kind {
            InfoKind::Named(name) => Some(name),
            InfoKind::Encoded(_) => None,
        }
    }

    /// The type's fingerprint. For a local value it is looked up by the type's name
    /// ([`Fingerprint::of_type_name`]): equal to [`Fingerprint::of`] for its type once
    /// this process computed that (any type sent to or received from another node).
    pub fn fingerprint(&self) -> Fingerprint {
        match &self.kind {
            InfoKind::Named(name) => Fingerprint::of_type_name(name),
            InfoKind::Encoded(fingerprint) => *fingerprint,
        }
    }

    /// Whether the message was a `T`.
    pub fn is<T: Serializable>(&self) -> bool {
        match &self.kind {
            InfoKind::Named(name) => name == std::any::type_name::<T>(),
            InfoKind::Encoded(fingerprint) => *fingerprint == Fingerprint::of::<T>(),
        }
    }
}

impl fmt::Debug for MxMessageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            InfoKind::Named(name) => write!(f, "MxMessageInfo({name})"),
            InfoKind::Encoded(fingerprint) => write!(f, "MxMessageInfo({fingerprint:?})"),
        }
    }
}

/// What the bus keeps of a message's type until an agent asks: two words, `Copy`.
#[derive(Copy, Clone)]
pub(crate) enum Info {
    Named(&'static str),
    Encoded(Fingerprint),
}

impl Info {
    #[inline(always)]
    pub(crate) fn of<T: Serializable>() -> Info {
        Info::Named(std::any::type_name::<T>())
    }

    #[inline(always)]
    pub(crate) fn of_message(message: &Message) -> Info {
        match message.type_name() {
            Some(name) => Info::Named(name),
            None => Info::Encoded(message.fingerprint()),
        }
    }
}

impl From<Info> for MxMessageInfo {
    #[inline(always)]
    fn from(info: Info) -> MxMessageInfo {
        let kind = match info {
            Info::Named(name) => InfoKind::Named(Cow::Borrowed(name)),
            Info::Encoded(fingerprint) => InfoKind::Encoded(fingerprint),
        };
        MxMessageInfo { kind }
    }
}

/// The value of a user trace event ([`MxEvent::User`]), encoded once when published so
/// that every agent can decode its own copy.
///
/// ```
/// use hyperion::mx::MxPayload;
/// let payload = MxPayload::new(&("job".to_string(), 3u32)).unwrap();
/// assert_eq!(payload.decode::<(String, u32)>(), Some(("job".to_string(), 3)));
/// assert_eq!(payload.decode::<u64>(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxPayload {
    fingerprint: Fingerprint,
    type_name: String,
    bytes: Vec<u8>,
}

impl MxPayload {
    /// Encodes `value`.
    pub fn new<T: Serializable>(value: &T) -> Result<MxPayload, message::CodecError> {
        Ok(MxPayload {
            fingerprint: Fingerprint::of::<T>(),
            type_name: std::any::type_name::<T>().to_string(),
            bytes: message::encode(value)?,
        })
    }

    /// The value, if it is a `T` (and decodes as one).
    pub fn decode<T: Serializable>(&self) -> Option<T> {
        if self.fingerprint != Fingerprint::of::<T>() {
            return None;
        }
        message::decode(&self.bytes).ok()
    }

    /// The fingerprint of the value's type.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The full name of the value's type (as the publishing node spelled it).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The encoded value.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for MxPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MxPayload({}, {} bytes)",
            self.type_name,
            self.bytes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Local(u8);

    #[test]
    fn the_fingerprint_of_a_named_type_equals_the_message_fingerprint() {
        let fingerprint = Fingerprint::of::<Local>();
        let info = MxMessageInfo::of(&Message::new(Local(1)));
        assert_eq!(info.fingerprint(), fingerprint);
        assert!(info.is::<Local>());
        assert!(!info.is::<u8>());
    }

    #[test]
    fn an_encoded_message_is_described_by_its_fingerprint() {
        // (A primitive would be decoded on arrival: see `Message::from_encoded`.)
        let (fingerprint, bytes) = Message::new("five".to_string()).encode().unwrap();
        let info = MxMessageInfo::of(&Message::from_encoded(fingerprint, bytes));
        assert_eq!(info.type_name(), None);
        assert!(info.is::<String>());
    }

    #[test]
    fn every_kind_has_its_own_bit() {
        let bits: u32 = MxEventKind::ALL.iter().map(|k| k.bit()).sum();
        assert_eq!(bits.count_ones() as usize, MxEventKind::ALL.len());
    }
}
