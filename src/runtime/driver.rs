//! The real-world driver: one OS thread runs one node.
//!
//! It polls ready tasks in FIFO order, fires due timers, applies what other threads
//! posted to the node's inbox, and when there is nothing to do sleeps in `mio` (epoll)
//! until the next timer deadline, an I/O event, or a wake. Sockets registered with the
//! same `mio::Poll` are served on this thread, so a message crosses no thread between
//! the socket and the mailbox.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::node::LocalNode;

/// Tasks polled between two looks at the inbox and the timers, so that a busy node
/// still notices timers and outside work.
pub const TASKS_PER_TURN_MAX: usize = 256;

const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);

/// The event loop of one node.
pub struct Driver {
    poll: mio::Poll,
    events: mio::Events,
}

impl Driver {
    /// A new event loop, with its node's inbox wired to wake it.
    pub fn new(node: &LocalNode) -> io::Result<Driver> {
        let poll = mio::Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        node.inbox().set_notifier(Box::new(move || {
            if let Err(err) = waker.wake() {
                tracing::error!(%err, "cannot wake a node's event loop");
            }
        }));
        Ok(Driver {
            poll,
            events: mio::Events::with_capacity(256),
        })
    }

    /// Runs `node` until `stop` is set (and the inbox notified), then shuts it down.
    pub fn run(&mut self, node: &LocalNode, stop: &AtomicBool) -> io::Result<()> {
        loop {
            node.drain_inbox();
            if stop.load(Ordering::Acquire) {
                break;
            }
            node.fire_due_timers();
            let mut polled = 0;
            while polled < TASKS_PER_TURN_MAX && node.run_next() {
                polled += 1;
            }
            if node.ready_len() > 0 || !node.inbox().is_empty() {
                continue;
            }
            let timeout = node
                .next_deadline()
                .map(|deadline| deadline.saturating_sub(node.now()));
            if timeout == Some(Duration::ZERO) {
                continue;
            }
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        node.shutdown();
        Ok(())
    }
}
