//! Typed channels, as in Cloud Haskell: a [`SendPort`] anyone may hold (it is
//! serializable), a [`ReceivePort`] that stays on its node, and merged ports.
//!
//! A channel belongs to the process that created it and lives as long as that process;
//! sends to a channel whose owner died are dropped. Messages on one channel arrive in
//! the order they were sent by any one sender.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

pub(crate) use crate::node::channels::PortSource;

pub use crate::types::id::SendPortId;

/// The sending end of a typed channel. Cheap to copy, and serializable: send it to
/// another process (on any node) so that it can reply on the channel.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SendPort<T> {
    id: SendPortId,
    #[serde(skip)]
    _type: PhantomData<fn(T)>,
}

impl<T> SendPort<T> {
    pub(crate) fn new(id: SendPortId) -> SendPort<T> {
        SendPort {
            id,
            _type: PhantomData,
        }
    }

    /// The port's id.
    pub fn id(&self) -> SendPortId {
        self.id
    }
}

impl<T> Clone for SendPort<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPort<T> {}

impl<T> fmt::Debug for SendPort<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SendPort({}/{})", self.id.owner, self.id.channel)
    }
}

impl<T> PartialEq for SendPort<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl<T> Eq for SendPort<T> {}

/// The receiving end of one channel, or of several merged ones.
///
/// It cannot leave its node. A merged port ([`ReceivePort::merge_biased`],
/// [`ReceivePort::merge_round_robin`]) takes from the ports it merges, each with its own
/// policy: a round-robin merge of biased merges takes from the inner ports in turn, and
/// from each inner port by its bias (as Cloud Haskell's merged ports do).
pub struct ReceivePort<T> {
    pub(crate) source: PortSource,
    _type: PhantomData<fn() -> T>,
}

impl<T> ReceivePort<T> {
    pub(crate) fn new(channel: u64) -> ReceivePort<T> {
        ReceivePort {
            source: PortSource::Channel(channel),
            _type: PhantomData,
        }
    }

    /// Merges ports into one that always takes from the first port with a message, in
    /// the order given (Cloud Haskell's `mergePortsBiased`). Each port keeps its own
    /// policy if it is itself a merge.
    pub fn merge_biased(ports: Vec<ReceivePort<T>>) -> ReceivePort<T> {
        Self::merge(ports, false)
    }

    /// Merges ports into one that takes from them in turn, starting after the port it
    /// took from last (Cloud Haskell's `mergePortsRR`). Each port keeps its own policy if
    /// it is itself a merge.
    pub fn merge_round_robin(ports: Vec<ReceivePort<T>>) -> ReceivePort<T> {
        Self::merge(ports, true)
    }

    fn merge(ports: Vec<ReceivePort<T>>, round_robin: bool) -> ReceivePort<T> {
        ReceivePort {
            source: PortSource::Merged {
                ports: ports.into_iter().map(|port| port.source).collect(),
                round_robin,
                next: Cell::new(0),
            },
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ReceivePort<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceivePort({:?})", self.source)
    }
}
