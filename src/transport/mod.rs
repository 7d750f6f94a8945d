//! The `Transport` trait: how a node reaches other nodes.
//!
//! Modelled on Cloud Haskell's network-transport, reduced to what the node layer needs:
//! frames to a peer node, and events about peers. The contract is TCP's: frames to one
//! peer arrive complete, in order and at most once, until the connection breaks; a break
//! is reported ([`TransportEvent::PeerLost`]) and frames in flight may be lost. A
//! transport never reorders or duplicates frames to one peer.
//!
//! Two implementations exist: the in-memory simulated network of `hyperion-sim` (which
//! delays, breaks, partitions and crashes, reproducibly) and the production TCP
//! transport.

pub mod arbitration;
pub mod tcp;

use std::net::SocketAddr;
use std::task::Waker;

use crate::types::id::NodeId;
use crate::wire::{FrameBatch, WireError, FRAME_BYTES_MAX};

/// What a transport reports to its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A connection to `peer` is up (either side opened it).
    PeerConnected(NodeId),
    /// A frame body from `peer`, as given to [`Transport::send`] on its side.
    Received(NodeId, Vec<u8>),
    /// Several frame bodies from `peer`, in the order sent, as one read took them off
    /// a stream: the same as a [`Received`](TransportEvent::Received) per body, without
    /// a buffer per body (see [`FrameBatch`]).
    ReceivedBatch(NodeId, FrameBatch),
    /// The connection to `peer` broke, or could not be made; frames in flight may be
    /// lost. A later [`Transport::send`] to the peer opens a new connection.
    PeerLost(NodeId),
}

impl TransportEvent {
    /// The event as one event per frame: a [`ReceivedBatch`](Self::ReceivedBatch)
    /// becomes a [`Received`](Self::Received) per body (copied), in order; any other
    /// event stays as it is. For code that takes frames one at a time (tests, tools).
    ///
    /// ```
    /// use hyperion::transport::TransportEvent;
    /// let peer: hyperion::NodeId = "127.0.0.1:1#1".parse().unwrap();
    /// let lost = TransportEvent::PeerLost(peer);
    /// assert_eq!(lost.clone().one_per_frame(), [lost]);
    /// ```
    pub fn one_per_frame(self) -> Vec<TransportEvent> {
        match self {
            TransportEvent::ReceivedBatch(peer, batch) => batch
                .bodies()
                .map(|body| TransportEvent::Received(peer, body.to_vec()))
                .collect(),
            other => vec![other],
        }
    }
}

/// A node's way to the network.
pub trait Transport {
    /// The address other nodes reach this one at.
    fn local_address(&self) -> SocketAddr;

    /// Queues a frame body for `peer`, connecting first if there is no connection.
    /// Never blocks; a failure shows up later as [`TransportEvent::PeerLost`].
    fn send(&mut self, peer: NodeId, frame: Vec<u8>);

    /// Queues a frame body for `peer` that `write` appends to the end of a buffer,
    /// connecting first if there is no connection: a transport with a send queue of its
    /// own has the body written straight into it, without a buffer per frame. If
    /// `write` fails, or the body is longer than
    /// [`frame_bytes_max`](Transport::frame_bytes_max), nothing is queued, no
    /// connection is opened or touched, and the error is returned; otherwise the frame
    /// goes as with [`send`](Transport::send), failures showing up later as
    /// [`TransportEvent::PeerLost`]. The default writes into a fresh buffer and calls
    /// `send`.
    fn send_with(
        &mut self,
        peer: NodeId,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        let mut body = Vec::new();
        write(&mut body)?;
        let limit = self.frame_bytes_max();
        if body.len() > limit {
            return Err(WireError::FrameTooLong {
                length: body.len() as u64,
                limit,
            });
        }
        self.send(peer, body);
        Ok(())
    }

    /// The longest frame body this transport sends and accepts. The node encodes and
    /// decodes every frame under this one limit and refuses a longer one before
    /// [`send`](Transport::send): a transport given a longer body may break the
    /// connection. The default is [`FRAME_BYTES_MAX`].
    fn frame_bytes_max(&self) -> usize {
        FRAME_BYTES_MAX
    }

    /// Breaks the connection to `peer`, if any (the peer will see it lost).
    fn disconnect(&mut self, peer: NodeId);

    /// Closes every connection and stops accepting new ones; peers see them closed.
    fn shutdown(&mut self);

    /// Bytes queued for `peer` and not yet handed to the network. The default (a
    /// transport without a send queue of its own, like the simulator's) is 0.
    fn queued_bytes(&self, peer: NodeId) -> usize {
        let _ = peer;
        0
    }

    /// Whether the queue to `peer` is below the transport's high-water mark, so that a
    /// producer may send on without risking the queue's hard limit (which breaks the
    /// connection). The default is always.
    fn has_room(&self, peer: NodeId) -> bool {
        let _ = peer;
        true
    }

    /// Wakes `waker` once [`has_room`](Transport::has_room) holds for `peer` (at once if
    /// it holds now), or the peer's connection is gone. The default wakes it at once.
    fn wake_on_room(&mut self, peer: NodeId, waker: &Waker) {
        let _ = peer;
        waker.wake_by_ref();
    }
}
