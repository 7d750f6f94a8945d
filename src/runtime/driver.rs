//! The real-world driver: one OS thread runs one node.
//!
//! It polls ready tasks in FIFO order, fires due timers, applies what other threads
//! posted to the node's inbox, and when there is nothing to do sleeps in `mio` (epoll)
//! until the next timer deadline, a socket event, or a wake. The node's TCP transport
//! (if any) is served on this same thread: a message crosses no thread between the
//! socket and the mailbox, and everything a turn's tasks sent leaves in one write per
//! connection at the end of the turn.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::busy_wait::BusyWait;
use crate::node::LocalNode;
use crate::transport::tcp::TcpTransport;
use crate::transport::TransportEvent;

/// Tasks polled between two looks at the inbox, the timers and the sockets, so that a
/// busy node still notices them.
pub const TASKS_PER_TURN_MAX: usize = 256;

const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);

/// The event loop of one node.
pub struct Driver {
    poll: mio::Poll,
    events: mio::Events,
    transport: Option<TcpTransport>,
    transport_events: Vec<TransportEvent>,
    busy_wait: BusyWait,
}

impl Driver {
    /// A new event loop, with its node's inbox wired to wake it and, if given, a TCP
    /// transport whose sockets it serves. Build it on the thread that will [`run`] it.
    ///
    /// [`run`]: Driver::run
    pub fn new(node: &LocalNode, transport: Option<TcpTransport>) -> io::Result<Driver> {
        let poll = mio::Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        node.inbox().set_notifier(Box::new(move || {
            if let Err(err) = waker.wake() {
                tracing::error!(%err, "cannot wake a node's event loop");
            }
        }));
        // Built on the node's thread, which runs `run`: `run` looks at the inbox after
        // every turn's work and before it polls, so its own posts need no wake.
        node.inbox().set_owner_thread();
        if let Some(transport) = &transport {
            transport.register(poll.registry())?;
        }
        Ok(Driver {
            poll,
            events: mio::Events::with_capacity(256),
            transport,
            transport_events: Vec::new(),
            busy_wait: BusyWait::new(Duration::ZERO),
        })
    }

    /// Keeps polling without sleeping for `window` after the loop's last work (a task
    /// ran, an event arrived), yielding the CPU between polls: a reply that comes within
    /// the window is seen without a sleep and a wake-up. `Duration::ZERO` (the default
    /// here; [`Node`](crate::Node) passes [`NodeConfig::busy_wait`](crate::NodeConfig))
    /// never spins.
    pub fn busy_wait(mut self, window: Duration) -> Driver {
        self.busy_wait = BusyWait::new(window);
        self
    }

    /// Hands what the transport reported to the node.
    fn dispatch(&mut self, node: &LocalNode) {
        if !self.transport_events.is_empty() {
            node.handle_transport_events(self.transport_events.drain(..));
        }
    }

    /// Runs `node` until `stop` is set (and the inbox notified), then shuts it down.
    pub fn run(&mut self, node: &LocalNode, stop: &AtomicBool) -> io::Result<()> {
        // Whether the last poll returned events: work for the busy wait, as a task run is.
        let mut events_arrived = false;
        loop {
            node.drain_inbox();
            if stop.load(Ordering::Acquire) {
                break;
            }
            node.fire_due_timers();
            if let Some(transport) = &self.transport {
                transport.on_timer(Instant::now(), &mut self.transport_events); // real-world only
            }
            self.dispatch(node);
            let mut polled = 0;
            while polled < TASKS_PER_TURN_MAX && node.run_next() {
                polled += 1;
            }
            // Handlers of what a flush reports may send again: flush until quiet.
            while let Some(transport) = &self.transport {
                transport.flush(&mut self.transport_events);
                if self.transport_events.is_empty() {
                    break;
                }
                self.dispatch(node);
            }
            if node.ready_len() > 0 || !node.inbox().is_empty() {
                continue;
            }
            let Some(mut timeout) = self.idle_timeout(node) else {
                continue;
            };
            let spinning = self.busy_wait.enabled() && {
                let now = Instant::now(); // real-world only
                if polled > 0 || events_arrived {
                    self.busy_wait.worked(now);
                }
                timeout = self.busy_wait.timeout(now, timeout);
                timeout == Some(Duration::ZERO)
            };
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
            events_arrived = !self.events.is_empty();
            if spinning && !events_arrived {
                // Polite spinning: another runnable thread on this CPU goes first.
                std::thread::yield_now();
            }
            if let Some(transport) = &self.transport {
                for event in self.events.iter() {
                    if event.token() != WAKE_TOKEN {
                        transport.on_event(event, &mut self.transport_events);
                    }
                }
            }
            self.dispatch(node);
        }
        node.shutdown();
        if let Some(transport) = &self.transport {
            transport.flush(&mut self.transport_events);
        }
        Ok(())
    }

    /// How long the loop may sleep: until the earliest node timer or transport timeout
    /// (`None` means "do not sleep, a deadline has passed").
    fn idle_timeout(&self, node: &LocalNode) -> Option<Option<Duration>> {
        let node_wait = node
            .next_deadline()
            .map(|deadline| deadline.saturating_sub(node.now()));
        let transport_wait = self
            .transport
            .as_ref()
            .and_then(TcpTransport::next_deadline)
            .map(|deadline| deadline.saturating_duration_since(Instant::now())); // real-world only
        let wait = match (node_wait, transport_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if wait == Some(Duration::ZERO) {
            return None;
        }
        Some(wait)
    }
}
