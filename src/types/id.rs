//! Names of nodes, processes and monitors, and why a process died.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A node: the address it is reached at plus an incarnation number, so that a node
/// restarted at the same address is a different node (nothing meant for the old one
/// reaches the new one).
///
/// Two ids are equal when every field is, an IPv6 address's flow info and scope id
/// included; so every encoding of an id carries them (the handshake's hello, and
/// frames), and an id survives any trip over the wire unchanged.
///
/// ```
/// use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
/// use hyperion::{message, NodeId};
/// let scoped = SocketAddrV6::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1), 7000, 0, 2);
/// let id = NodeId { address: SocketAddr::V6(scoped), incarnation: 9 };
/// let bytes = message::encode(&id).unwrap();
/// assert_eq!(message::decode::<NodeId>(&bytes), Ok(id));
/// ```
#[derive(Copy, Clone, Eq, PartialOrd, Ord)]
pub struct NodeId {
    /// Where the node's transport listens (for a node without transport, a placeholder).
    pub address: SocketAddr,
    /// Chosen at random when the node starts.
    pub incarnation: u64,
}

/// Both fields, the incarnation first: it tells two nodes apart far more cheaply than
/// the address, and every message sent asks whether its destination is this node.
impl PartialEq for NodeId {
    #[inline]
    fn eq(&self, other: &NodeId) -> bool {
        self.incarnation == other.incarnation && self.address == other.address
    }
}

/// The fields in declaration order, as a derived `Hash` would (equal ids hash alike).
impl std::hash::Hash for NodeId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.address.hash(state);
        self.incarnation.hash(state);
    }
}

/// How a [`NodeId`] is encoded in frames: serde's own `SocketAddr` leaves out an IPv6
/// address's flow info and scope id, which would make an id read from a frame differ
/// from the same id read from a hello (and from the node's own id), so the id is
/// written through this mirror, which keeps them. An IPv4 id's bytes are what serde's
/// `SocketAddr` writes.
#[derive(Serialize, Deserialize)]
enum WireAddress {
    V4([u8; 4], u16),
    V6([u8; 16], u16, u32, u32),
}

/// The encoded form of a [`NodeId`] (see [`WireAddress`]).
#[derive(Serialize, Deserialize)]
#[serde(rename = "NodeId")]
pub(crate) struct WireNodeId {
    address: WireAddress,
    incarnation: u64,
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let address = match self.address {
            SocketAddr::V4(address) => WireAddress::V4(address.ip().octets(), address.port()),
            SocketAddr::V6(address) => WireAddress::V6(
                address.ip().octets(),
                address.port(),
                address.flowinfo(),
                address.scope_id(),
            ),
        };
        WireNodeId {
            address,
            incarnation: self.incarnation,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<NodeId, D::Error> {
        let wire = WireNodeId::deserialize(deserializer)?;
        let address = match wire.address {
            WireAddress::V4(ip, port) => SocketAddr::from((ip, port)),
            WireAddress::V6(ip, port, flowinfo, scope_id) => SocketAddr::V6(
                std::net::SocketAddrV6::new(ip.into(), port, flowinfo, scope_id),
            ),
        };
        Ok(NodeId {
            address,
            incarnation: wire.incarnation,
        })
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{:x}", self.address, self.incarnation)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for NodeId {
    type Err = String;

    /// Parses the `Display` form, `address#incarnation` (incarnation in hex), as a worker
    /// reads its master's id from its command line.
    ///
    /// ```
    /// use hyperion::NodeId;
    /// let id: NodeId = "127.0.0.1:4000#2a".parse().unwrap();
    /// assert_eq!(id.incarnation, 42);
    /// assert_eq!(id.to_string(), "127.0.0.1:4000#2a");
    /// assert!("127.0.0.1:4000".parse::<NodeId>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<NodeId, String> {
        let (address, incarnation) = text
            .rsplit_once('#')
            .ok_or_else(|| format!("{text:?} is not a node id (address#incarnation)"))?;
        Ok(NodeId {
            address: address
                .parse()
                .map_err(|err| format!("{address:?} is not a socket address: {err}"))?,
            incarnation: u64::from_str_radix(incarnation, 16)
                .map_err(|err| format!("{incarnation:?} is not a hex incarnation: {err}"))?,
        })
    }
}

/// A process: its node and a number local to that node, never reused by the node.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcessId {
    /// The node the process runs on.
    pub node: NodeId,
    /// The process's number on its node.
    pub local: u64,
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid://{}/{}", self.node, self.local)
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Names one monitor, as returned by [`Process::monitor`](crate::Process::monitor);
/// the notification carries it back.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct MonitorRef {
    /// The monitored process.
    pub target: ProcessId,
    /// Unique on the monitoring node.
    pub id: u64,
}

/// Why a process is no longer running, as links and monitors report it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum DiedReason {
    /// It returned normally.
    Normal,
    /// It failed: returned an error, panicked, was killed or exited by a signal. The text
    /// says which.
    Exception(String),
    /// The connection to its node broke; it may still be running.
    Disconnect,
    /// Its node died or shut down.
    NodeDown,
    /// It did not exist (or had already died) when the link or monitor was made.
    UnknownProcess,
    /// It ended with a reason of some serializable type ([`Process::die_with`],
    /// [`Process::terminate`], [`Process::exit_with`]); match it by type with
    /// [`DiedReason::reason_as`].
    ///
    /// [`Process::die_with`]: crate::Process::die_with
    /// [`Process::terminate`]: crate::Process::terminate
    /// [`Process::exit_with`]: crate::Process::exit_with
    Exit(super::exit::ExitReason),
}

impl DiedReason {
    /// Whether this is [`DiedReason::Normal`].
    pub fn is_normal(&self) -> bool {
        matches!(self, DiedReason::Normal)
    }

    /// The reason as a `T`, if the process ended with one: an [`DiedReason::Exit`]
    /// reason of type `T`, or (for `T = String`) the text of an exception.
    pub fn reason_as<T: crate::message::Serializable>(&self) -> Option<T> {
        match self {
            DiedReason::Exit(reason) => reason.get(),
            DiedReason::Exception(text) => super::exit::ExitReason::text_reason(text.clone()).get(),
            _ => None,
        }
    }
    /// How a process that panicked died: `Exception("panicked: <message>")`.
    pub fn from_panic(panic: &(dyn std::any::Any + Send)) -> DiedReason {
        DiedReason::Exception(panic_text(panic))
    }
}

/// A panic's payload as text, `panicked: <message>`, for reports (a process's death, a
/// remote call's error). The one place that reads panic payloads.
///
/// ```
/// let panic = std::panic::catch_unwind(|| panic!("boom")).unwrap_err();
/// assert_eq!(hyperion::process::id::panic_text(panic.as_ref()), "panicked: boom");
/// ```
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.as_str()
    } else {
        "a panic with a non-text payload"
    };
    format!("panicked: {text}")
}

impl fmt::Display for DiedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiedReason::Normal => write!(f, "normal"),
            DiedReason::Exception(text) => write!(f, "exception: {text}"),
            DiedReason::Disconnect => write!(f, "disconnected"),
            DiedReason::NodeDown => write!(f, "node down"),
            DiedReason::UnknownProcess => write!(f, "unknown process"),
            DiedReason::Exit(reason) => write!(f, "exit: {reason}"),
        }
    }
}

/// What a process's future may return; it decides the [`DiedReason`] the process dies
/// with.
///
/// `()` is a normal exit, `Ok(())` too, `Err(e)` an exception with `e`'s text.
pub trait ProcessOutcome {
    /// The reason this outcome stands for.
    fn into_reason(self) -> DiedReason;
}

impl ProcessOutcome for () {
    fn into_reason(self) -> DiedReason {
        DiedReason::Normal
    }
}

impl ProcessOutcome for DiedReason {
    fn into_reason(self) -> DiedReason {
        self
    }
}

impl<E: fmt::Display> ProcessOutcome for Result<(), E> {
    fn into_reason(self) -> DiedReason {
        match self {
            Ok(()) => DiedReason::Normal,
            Err(err) => DiedReason::Exception(err.to_string()),
        }
    }
}

/// Names a channel: the owning process and a number unique on its node.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SendPortId {
    /// The process that created the channel (and receives from it).
    pub owner: ProcessId,
    /// The channel's number on the owner's node.
    pub channel: u64,
}
