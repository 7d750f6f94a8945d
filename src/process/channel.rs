//! Typed channels, as in Cloud Haskell: a [`SendPort`] anyone may hold (it is
//! serializable), a [`ReceivePort`] that stays on its node, and merged ports.
//!
//! A channel belongs to the process that created it and lives as long as that process;
//! sends to a channel whose owner died are dropped. Messages on one channel arrive in
//! the order they were sent by any one sender.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::id::ProcessId;
use crate::message::Message;
use crate::runtime::TaskId;

/// Names a channel: the owning process and a number unique on its node.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct SendPortId {
    /// The process that created the channel (and receives from it).
    pub owner: ProcessId,
    /// The channel's number on the owner's node.
    pub channel: u64,
}

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

/// Where a [`ReceivePort`] takes from: one channel, or a merge of other ports that keeps
/// each one's own policy (a tree, not a flat list of channels).
pub(crate) enum PortSource {
    /// One channel, by number.
    Channel(u64),
    /// Ports merged under one policy.
    Merged {
        ports: Vec<PortSource>,
        round_robin: bool,
        /// Where a round-robin merge starts looking next.
        next: Cell<usize>,
    },
}

impl fmt::Debug for PortSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSource::Channel(channel) => write!(f, "{channel}"),
            PortSource::Merged {
                ports, round_robin, ..
            } => {
                let policy = if *round_robin {
                    "round-robin"
                } else {
                    "biased"
                };
                write!(f, "{policy}{ports:?}")
            }
        }
    }
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

pub(crate) struct ChannelQueue {
    /// The task to wake on a delivery: the owner, or whoever last waited on the channel.
    pub(crate) reader: TaskId,
    pub(crate) messages: VecDeque<Message>,
}

/// Every channel of a node, by number.
#[derive(Default)]
pub(crate) struct Channels {
    queues: BTreeMap<u64, ChannelQueue>,
}

impl Channels {
    pub(crate) fn open(&mut self, channel: u64, owner: TaskId) {
        self.queues.insert(
            channel,
            ChannelQueue {
                reader: owner,
                messages: VecDeque::new(),
            },
        );
    }

    pub(crate) fn close(&mut self, channel: u64) {
        self.queues.remove(&channel);
    }

    /// Appends to a channel; returns the task to wake, or `None` if the channel is gone.
    pub(crate) fn push(&mut self, channel: u64, message: Message) -> Option<TaskId> {
        let queue = self.queues.get_mut(&channel)?;
        queue.messages.push_back(message);
        Some(queue.reader)
    }

    /// Takes the next message from a (possibly merged) port, each merge level by its
    /// own policy, and records `reader` as the task to wake for every channel looked at.
    pub(crate) fn take(&mut self, source: &PortSource, reader: TaskId) -> Option<Message> {
        match source {
            PortSource::Channel(channel) => {
                let queue = self.queues.get_mut(channel)?;
                queue.reader = reader;
                queue.messages.pop_front()
            }
            PortSource::Merged {
                ports,
                round_robin,
                next,
            } => {
                let count = ports.len();
                let start = if *round_robin {
                    next.get() % count.max(1)
                } else {
                    0
                };
                for offset in 0..count {
                    let position = (start + offset) % count;
                    if let Some(message) = self.take(&ports[position], reader) {
                        if *round_robin {
                            next.set(position + 1);
                        }
                        return Some(message);
                    }
                }
                None
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }
}
