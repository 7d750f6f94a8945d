//! One TCP connection: its socket, its framing buffers, and where it is in its life.

use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use super::admission::Source;
use crate::types::id::NodeId;
use crate::wire::framing::{FrameReader, FrameWriter};
use crate::wire::handshake::Handshake;

/// Where a connection is in its life.
pub(super) enum Phase {
    /// Our non-blocking connect to `target` has not completed.
    Connecting {
        /// The node dialed.
        target: NodeId,
    },
    /// The handshake runs; `target` is the node dialed, `None` for an inbound connection.
    Handshaking {
        handshake: Box<Handshake>,
        target: Option<NodeId>,
    },
    /// Carries frames to and from `peer`.
    Established {
        /// The peer, authenticated.
        peer: NodeId,
    },
    /// We declined the peer's connection (it will use ours): the verdict is written, and
    /// the socket stays open until the peer closes it, so the verdict is not lost to a
    /// reset. Everything read is discarded.
    Closing,
}

impl Connection {
    /// Whether this connection carries frames to and from `peer`.
    #[inline]
    pub(super) fn is_established_with(&self, peer: NodeId) -> bool {
        matches!(self.phase, Phase::Established { peer: established } if established == peer)
    }
}

impl Phase {
    /// Whether this is an inbound connection still in its handshake (they are limited).
    pub(super) fn is_inbound_handshake(&self) -> bool {
        matches!(self, Phase::Handshaking { target: None, .. })
    }
}

pub(super) struct Connection {
    pub(super) stream: TcpStream,
    /// The socket address at the other end, for logs.
    pub(super) remote: SocketAddr,
    pub(super) phase: Phase,
    pub(super) reader: FrameReader,
    pub(super) writer: FrameWriter,
    /// When the current phase times out (connecting, handshaking, closing).
    pub(super) deadline: Option<Instant>,
    /// For an inbound connection: when it was accepted.
    pub(super) accepted_at: Option<Instant>,
    /// For an inbound connection still in its handshake: the source whose slot it holds
    /// (released when it is established, declined or closed).
    pub(super) slot: Option<Source>,
    /// Whether the peer's hello arrived (an inbound connection without one by the hello
    /// timeout is closed, and is the first to give its slot up).
    pub(super) hello_received: bool,
    /// For an inbound connection answered "alive": the connection that answer vouched
    /// for, until another connection becomes the peer's route (a replace request on this
    /// one is honoured only until then: see [`Arbiter::on_replace`]).
    ///
    /// [`Arbiter::on_replace`]: crate::transport::arbitration::Arbiter::on_replace
    pub(super) vouched: Option<mio::Token>,
    /// Whether the connection is in the transport's list of connections to write at the
    /// next flush (so that a burst of sends adds it once, without a set lookup each).
    pub(super) in_flush_list: bool,
}
