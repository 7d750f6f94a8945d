//! The poll watchdog: a warning when one poll of a process holds the node's thread
//! longer than a bound. A process that computes without `.await` (a CPU-bound loop,
//! a blocking call) stops everything else on its node, heartbeats included, so its
//! peers may declare a healthy node dead; the warning names the process.
//!
//! The node thread marks each poll in a [`PollMarks`] (two relaxed stores per poll, no
//! clock read: the message path stays as fast). A watchdog thread, started only by a
//! real-world [`Node`](crate::Node) (never in the simulator, whose time is virtual and
//! whose runs must replay), looks at the marks a few times per bound; a poll still
//! running since a look at least a bound ago is reported once: a `tracing` warning
//! at once (the node's thread is still held), and an [`MxEvent::SlowPoll`] published
//! on the node's bus when the thread is free again.
//!
//! [`MxEvent::SlowPoll`]: crate::mx::MxEvent::SlowPoll

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::local::{Inbox, InboxItem, LocalNode};
use crate::kernel::PollMarks;
use crate::types::id::{NodeId, ProcessId};

/// How long one poll may hold a node's thread before the watchdog warns, unless
/// configured otherwise ([`NodeConfig::poll_warning`](crate::NodeConfig::poll_warning)).
pub const POLL_WARNING_DEFAULT: Duration = Duration::from_millis(100);

/// Looks the watchdog takes per bound: a poll is reported between one and
/// `1 + 1/POLL_LOOKS_PER_BOUND` bounds after it started.
const POLL_LOOKS_PER_BOUND: u32 = 4;

/// Starts the watchdog thread of a node (real world only). It ends by itself once the
/// node is gone (the marks are dropped with it).
pub(crate) fn start(node: NodeId, marks: &Arc<PollMarks>, inbox: Arc<Inbox>, bound: Duration) {
    let marks = Arc::downgrade(marks);
    let spawned = std::thread::Builder::new() // real-world only
        .name("hyperion-watchdog".to_string())
        .spawn(move || watch(node, marks, inbox, bound));
    if let Err(err) = spawned {
        tracing::warn!(%node, %err, "poll watchdog not started");
    }
}

fn watch(node: NodeId, marks: Weak<PollMarks>, inbox: Arc<Inbox>, bound: Duration) {
    let look = (bound / POLL_LOOKS_PER_BOUND).max(Duration::from_millis(1));
    // The poll seen running, since when, and whether it was reported.
    let mut seen: Option<(u64, Instant, bool)> = None;
    loop {
        std::thread::sleep(look); // real-world only
        let Some(marks) = marks.upgrade() else {
            return;
        };
        let Some((poll, local)) = marks.running() else {
            seen = None;
            continue;
        };
        let now = Instant::now(); // real-world only
        match &mut seen {
            Some((seen_poll, since, reported)) if *seen_poll == poll => {
                let held = now.duration_since(*since);
                if !*reported && held >= bound {
                    *reported = true;
                    report(node, &inbox, ProcessId { node, local }, held, bound);
                }
            }
            _ => seen = Some((poll, now, false)),
        }
    }
}

/// Warns now, and has the node publish the event once its thread is free.
fn report(node: NodeId, inbox: &Inbox, pid: ProcessId, held: Duration, bound: Duration) {
    tracing::warn!(
        %node,
        %pid,
        held_ms = held.as_millis() as u64,
        bound_ms = bound.as_millis() as u64,
        "a process holds the node's thread: nothing else runs on this node meanwhile \
         (heartbeats included, so peers may declare it lost); await, or use run_blocking"
    );
    inbox.post(InboxItem::Run(Box::new(move |node: &LocalNode| {
        node.state().mx_slow_poll(pid, held, bound);
    })));
}
