//! The channel table of a node: every open channel's queue and reader, and where a
//! [`ReceivePort`](crate::ReceivePort) takes from (one channel, or a merge of ports).
//! The typed ends, `SendPort` and `ReceivePort`, are the process layer's
//! (`process::channel`).

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use crate::kernel::TaskId;
use crate::message::Message;

/// Where a [`ReceivePort`](crate::ReceivePort) takes from: one channel, or a merge of other ports that keeps
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
