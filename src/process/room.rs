//! Backpressure between nodes: waiting until the queue to another node has room.
//!
//! Sending never blocks (Cloud Haskell's semantics): a message for another node is
//! queued by the transport at once. A producer that outruns its peer would grow that
//! queue until its hard limit (`TcpConfig::queued_bytes_max`), where the connection is
//! broken and every monitor fires `Disconnect`. [`Process::wait_for_room`] is the way
//! not to get there: awaited before a send, it suspends the process (never the node's
//! thread) while the queue to that node is at or above its high-water mark
//! (`TcpConfig::queued_bytes_high_water`), and resumes it once the socket took enough.
//! Nothing changes for a producer that does not call it.
//!
//! In the simulator, whose network has no queue of its own, there is always room.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Process;
use crate::process::id::NodeId;

impl Process {
    /// Waits until the queue of bytes to `node` is below the transport's high-water mark
    /// (`TcpConfig::queued_bytes_high_water`, 4 MiB by default), or the connection to it
    /// is gone (the loss is reported to monitors as usual; a later send reconnects or is
    /// dropped by the reconnect rule). Returns at once for this node, a node without a
    /// transport, or when there is room already.
    ///
    /// A producer that awaits this before each send to `node` never breaks its
    /// connection by outrunning the peer:
    ///
    /// ```no_run
    /// # use hyperion::{Process, ProcessId};
    /// async fn produce(p: Process, consumer: ProcessId) {
    ///     for n in 0..10_000_000u64 {
    ///         p.wait_for_room(consumer.node).await;
    ///         p.send(consumer, n);
    ///     }
    /// }
    /// ```
    pub fn wait_for_room(&self, node: NodeId) -> WaitForRoom<'_> {
        WaitForRoom {
            process: self,
            node,
        }
    }

    /// Bytes queued for `node` and not yet written to its connection (0 for this node,
    /// or without a transport).
    pub fn queued_bytes(&self, node: NodeId) -> usize {
        self.node().state().queued_bytes(node)
    }
}

/// The future of [`Process::wait_for_room`].
pub struct WaitForRoom<'a> {
    process: &'a Process,
    node: NodeId,
}

impl Future for WaitForRoom<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.process.node().state();
        if state.has_room_or_wake(this.node, cx.waker()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
