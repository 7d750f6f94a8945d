//! The agent's process: a future that takes the next input (by priority, from the bus
//! or the mailbox), runs it through the sinks and acts on the verdict. The message
//! path's events go through a hot loop that reuses two built events ([`Scratch`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::action::{MxSource, Verdict};
use super::context::{AgentCore, MxAgent};
use super::finalize::Shared;
use super::id::MxAgentId;
use super::sink::{Input, MxSink};
use crate::bus::events::{Info, MxEvent, MxEventKind};
use crate::bus::BusItem;
use crate::kernel::TaskId;
use crate::process::Process;
use crate::types::id::{DiedReason, NodeId, ProcessId};

/// Inputs an agent handles in one turn before it lets other processes run. An agent
/// that handles the events its own sinks cause (a send per `Sent` event) would
/// otherwise never yield.
pub const MX_AGENT_INPUTS_PER_TURN: usize = 1024;

/// The two events of the message path, kept built: handing one to the sinks rewrites
/// three fields instead of building (and dropping) a whole event per message.
struct Scratch {
    sent: MxEvent,
    received: MxEvent,
}

impl Scratch {
    fn new(node: NodeId) -> Scratch {
        let pid = ProcessId { node, local: 0 };
        let message = Info::Named("").into();
        Scratch {
            sent: MxEvent::Sent {
                to: pid,
                from: pid,
                message: crate::mx::MxMessageInfo::clone(&message),
            },
            received: MxEvent::Received { pid, message },
        }
    }

    /// The `Sent` event from `from` to `to` (local numbers).
    #[inline(always)]
    fn sent(&mut self, from: u64, to: u64, info: Info) -> &MxEvent {
        if let MxEvent::Sent {
            to: to_pid,
            from: from_pid,
            message,
        } = &mut self.sent
        {
            to_pid.local = to;
            from_pid.local = from;
            *message = info.into();
        }
        &self.sent
    }

    /// The `Received` event of process `pid` (a local number).
    #[inline(always)]
    fn received(&mut self, pid: u64, info: Info) -> &MxEvent {
        if let MxEvent::Received { pid: to, message } = &mut self.received {
            to.local = pid;
            *message = info.into();
        }
        &self.received
    }
}

/// The agent's process: take the next input (by priority), run it through the sinks,
/// act on the result.
pub(super) struct AgentLoop<S> {
    core: AgentCore,
    shared: Rc<Shared<S>>,
    sinks: Vec<MxSink<S>>,
    pid: ProcessId,
    node: NodeId,
    task: TaskId,
    prefer: MxSource,
    /// Bus items taken from the agent's queue in one go; still "on the bus".
    buffer: VecDeque<BusItem>,
    /// The `Received` half of a `LocalSend` item whose `Sent` half was handled: the
    /// next bus input.
    pending_received: Option<(u64, Info)>,
    scratch: Scratch,
    /// An empty queue with capacity, traded for the full one at the next refill.
    spare: Vec<BusItem>,
    /// A sink deactivated the agent; it stops once its lifted actions are done.
    deactivated: bool,
}

impl<S> AgentLoop<S> {
    /// The loop of agent `id` running as `process`, offering inputs to `sinks`.
    pub(super) fn new(
        process: Process,
        id: MxAgentId,
        shared: Rc<Shared<S>>,
        sinks: Vec<MxSink<S>>,
    ) -> AgentLoop<S> {
        let pid = process.self_pid();
        AgentLoop {
            core: AgentCore {
                process: Rc::new(process),
                id,
                lifts: VecDeque::new(),
                deactivation: None,
            },
            shared,
            sinks,
            pid,
            node: pid.node,
            task: TaskId::from_u64(pid.local),
            prefer: MxSource::Bus,
            buffer: VecDeque::new(),
            pending_received: None,
            scratch: Scratch::new(pid.node),
            spare: Vec::new(),
            deactivated: false,
        }
    }

    /// The next input, the preferred source first; `None` (and set to be woken by
    /// either source) if there is none.
    fn next_input(&mut self) -> Option<Input> {
        if self.prefer == MxSource::Bus {
            if let Some(item) = self.pop_bus() {
                return Some(Input::from_bus(item, self.node));
            }
        }
        let process = self.core.process.clone();
        let mut guard = process.local_node().state();
        let state = &mut *guard;
        let slot = state.kernel.slot_mut(self.task)?;
        if self.prefer == MxSource::Mailbox {
            if let Some(message) = slot.mailbox.pop_front() {
                slot.mailbox_removals += 1;
                return Some(Input::Message(message));
            }
            if let Some(item) = self.pop_bus() {
                return Some(Input::from_bus(item, self.node));
            }
        }
        let reader = state.mx.reader_mut(self.pid)?;
        reader.asleep = false;
        if !reader.queue.is_empty() {
            // Trade queues: no copy (an empty `VecDeque` becomes a `Vec` and a `Vec` a
            // `VecDeque` in place), and both keep their capacity.
            let spare = Vec::from(std::mem::take(&mut self.buffer));
            debug_assert!(spare.is_empty());
            let full = std::mem::replace(&mut reader.queue, std::mem::take(&mut self.spare));
            self.spare = spare;
            self.buffer = VecDeque::from(full);
            return self.pop_bus().map(|item| Input::from_bus(item, self.node));
        }
        if let Some(message) = slot.mailbox.pop_front() {
            slot.mailbox_removals += 1;
            return Some(Input::Message(message));
        }
        reader.asleep = true;
        slot.waiting_receive = true;
        None
    }

    /// The next item taken from the bus, a `LocalSend` split in its two events.
    #[inline]
    fn pop_bus(&mut self) -> Option<BusItem> {
        if let Some((pid, info)) = self.pending_received.take() {
            return Some(BusItem::Received { pid, info });
        }
        match self.buffer.pop_front()? {
            BusItem::LocalSend { from, to, info } => {
                self.pending_received = Some((to, info));
                Some(BusItem::SentLocal { from, to, info })
            }
            item => Some(item),
        }
    }

    /// Whether bus items are waiting in the agent (not counting its queue on the bus).
    fn has_buffered(&self) -> bool {
        self.pending_received.is_some() || !self.buffer.is_empty()
    }

    /// Offers `input` to each sink in order; the first that takes it decides. An input
    /// no sink takes is dropped.
    #[inline]
    fn run_pipeline(
        core: &mut AgentCore,
        sinks: &mut [MxSink<S>],
        state: &mut S,
        input: &mut Input,
    ) -> Verdict {
        let mut agent = MxAgent { core, state };
        let found = match input.event() {
            Some(event) => {
                let kind = event.kind().bit();
                sinks
                    .iter_mut()
                    .find_map(|sink| sink.offer_event(&mut agent, event, kind))
            }
            None => sinks
                .iter_mut()
                .find_map(|sink| sink.offer_value(&mut agent, input)),
        };
        found.unwrap_or(Verdict::Ready)
    }

    /// [`Self::run_pipeline`] for a system event of kind bit `kind`: the agent's hot
    /// path, on the message path's events.
    #[inline(always)]
    fn run_event(
        core: &mut AgentCore,
        sinks: &mut [MxSink<S>],
        state: &mut S,
        event: &MxEvent,
        kind: u32,
    ) -> Verdict {
        let mut agent = MxAgent { core, state };
        for sink in sinks {
            if let Some(verdict) = sink.offer_event(&mut agent, event, kind) {
                return verdict;
            }
        }
        Verdict::Ready
    }

    /// Acts on a sink's decision about the next input.
    #[inline]
    fn apply(&mut self, verdict: Verdict) {
        match verdict {
            Verdict::Ready => self.prefer = MxSource::Bus,
            Verdict::Prioritise(source) => self.prefer = source,
            Verdict::Deactivate => {
                let reason = self.core.deactivation.take().unwrap_or_default();
                *self.shared.deactivated.borrow_mut() = Some(reason);
                self.deactivated = true;
            }
        }
    }

    /// Handles buffered bus items while the bus is preferred: the agent's hot loop,
    /// with the state borrowed once. Returns how many inputs it handled.
    fn run_buffered(&mut self, budget: usize) -> usize {
        const SENT: u32 = MxEventKind::Sent.bit();
        const RECEIVED: u32 = MxEventKind::Received.bit();
        let shared = self.shared.clone();
        let mut guard = shared.state.borrow_mut();
        let Some(state) = guard.as_mut() else {
            return 0;
        };
        let mut handled = 0;
        while handled < budget
            && self.prefer == MxSource::Bus
            && !self.deactivated
            && self.core.lifts.is_empty()
        {
            let item = match self.pending_received.take() {
                Some((pid, info)) => BusItem::Received { pid, info },
                None => match self.buffer.pop_front() {
                    Some(item) => item,
                    None => break,
                },
            };
            handled += 1;
            let (core, sinks, scratch) = (&mut self.core, &mut self.sinks, &mut self.scratch);
            let verdict = match item {
                BusItem::LocalSend { from, to, info } => {
                    let event = scratch.sent(from, to, info);
                    let verdict = Self::run_event(core, sinks, state, event, SENT);
                    // The `Received` half follows at once unless the agent must stop
                    // or turn to something else first.
                    if verdict == Verdict::Ready && handled < budget && core.lifts.is_empty() {
                        handled += 1;
                        let event = scratch.received(to, info);
                        Self::run_event(core, sinks, state, event, RECEIVED)
                    } else {
                        self.pending_received = Some((to, info));
                        verdict
                    }
                }
                BusItem::SentLocal { from, to, info } => {
                    let event = scratch.sent(from, to, info);
                    Self::run_event(core, sinks, state, event, SENT)
                }
                BusItem::Received { pid, info } => {
                    let event = scratch.received(pid, info);
                    Self::run_event(core, sinks, state, event, RECEIVED)
                }
                item => {
                    let mut input = Input::from_bus(item, self.node);
                    Self::run_pipeline(core, sinks, state, &mut input)
                }
            };
            self.apply(verdict);
        }
        handled
    }
}

impl<S> Future for AgentLoop<S> {
    type Output = DiedReason;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DiedReason> {
        let this = self.get_mut();
        let mut budget = MX_AGENT_INPUTS_PER_TURN;
        loop {
            while let Some(lift) = this.core.lifts.front_mut() {
                if lift.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.core.lifts.pop_front();
            }
            if this.deactivated {
                return Poll::Ready(DiedReason::Normal);
            }
            if budget == 0 {
                this.core.process.local_node().state().schedule(this.task);
                return Poll::Pending;
            }
            if this.prefer == MxSource::Bus && this.has_buffered() {
                budget -= this.run_buffered(budget);
                continue;
            }
            budget -= 1;
            let Some(mut input) = this.next_input() else {
                return Poll::Pending;
            };
            let verdict = {
                let shared = this.shared.clone();
                let mut guard = shared.state.borrow_mut();
                match guard.as_mut() {
                    Some(state) => {
                        Self::run_pipeline(&mut this.core, &mut this.sinks, state, &mut input)
                    }
                    None => Verdict::Ready,
                }
            };
            this.apply(verdict);
        }
    }
}

impl<S> Drop for AgentLoop<S> {
    fn drop(&mut self) {
        // Only does something if the exit hook found the state in use.
        let node = self.core.process.local_node().clone();
        self.shared.try_finalize(self.pid, &node);
    }
}
