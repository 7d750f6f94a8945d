//! Management agents: processes that read the node's event bus and their own mailbox
//! through typed sinks, keep local state, and run a finalizer exactly once when they
//! stop.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};

use super::bus::BusItem;
use super::events::Info;
use super::events::{MxEvent, MxEventKind};
use super::{MxError, MxHost};
use crate::message::Message;
use crate::node::local::NodeInner;
use crate::node::LocalNode;
use crate::process::id::{DiedReason, NodeId, ProcessId};
use crate::process::Process;
use crate::runtime::TaskId;
use crate::Serializable;

/// Inputs an agent handles in one turn before it lets other processes run. An agent
/// that handles the events its own sinks cause (a send per `Sent` event) would
/// otherwise never yield.
pub const MX_AGENT_INPUTS_PER_TURN: usize = 1024;

/// The name of an agent, unique on its node (Cloud Haskell's `MxAgentId`). The agent
/// is also registered under this name in the node's registry, so other processes can
/// `nsend` to it.
///
/// ```
/// use hyperion::mx::MxAgentId;
/// let id = MxAgentId::new("message-counter");
/// assert_eq!(id.as_str(), "message-counter");
/// assert_eq!(id, MxAgentId::from("message-counter"));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct MxAgentId(String);

impl MxAgentId {
    /// An agent id.
    pub fn new(id: impl Into<String>) -> MxAgentId {
        MxAgentId(id.into())
    }

    /// The id as text (the registered name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MxAgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MxAgentId {
    fn from(id: &str) -> MxAgentId {
        MxAgentId::new(id)
    }
}

impl From<String> for MxAgentId {
    fn from(id: String) -> MxAgentId {
        MxAgentId(id)
    }
}

/// Where an agent looks first for its next input.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MxSource {
    /// Its own mailbox.
    Mailbox,
    /// The node's management event bus.
    Bus,
}

/// What a sink decides after handling an input (Cloud Haskell's `MxAction`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MxAction {
    /// Continue with the next input, from the bus first if both sources have one
    /// ([`mx_ready`]).
    Ready,
    /// Pass the input on to the next sink ([`mx_skip`]).
    Skip,
    /// Continue, taking the next input from `source` first if both have one
    /// ([`mx_receive`], [`mx_receive_chan`]).
    Prioritise(MxSource),
    /// Stop the agent ([`mx_deactivate`]): its finalizer runs and its process ends
    /// normally.
    Deactivate(String),
}

/// Continue with the next input (`mxReady`).
pub fn mx_ready() -> MxAction {
    MxAction::Ready
}

/// Pass this input on to the next sink (`mxSkip`): the only way two sinks can handle
/// the same type.
pub fn mx_skip() -> MxAction {
    MxAction::Skip
}

/// Continue, preferring the agent's mailbox for the next input (`mxReceive`).
pub fn mx_receive() -> MxAction {
    MxAction::Prioritise(MxSource::Mailbox)
}

/// Continue, preferring the event bus for the next input (`mxReceiveChan`).
pub fn mx_receive_chan() -> MxAction {
    MxAction::Prioritise(MxSource::Bus)
}

/// Stop the agent (`mxDeactivate`); `reason` reaches its finalizer.
pub fn mx_deactivate(reason: impl Into<String>) -> MxAction {
    MxAction::Deactivate(reason.into())
}

/// One input: a message (from the mailbox, or a user's value from the bus) or a
/// system event from the bus.
enum Input {
    Message(Message),
    Event(MxEvent),
}

impl Input {
    #[inline]
    fn from_bus(item: BusItem, node: NodeId) -> Input {
        match item.into_event(node) {
            Ok(event) => Input::Event(event),
            Err(message) => Input::Message(message),
        }
    }

    /// The system event, if the input is one from the bus.
    #[inline(always)]
    fn event(&self) -> Option<&MxEvent> {
        match self {
            Input::Message(_) => None,
            Input::Event(event) => Some(event),
        }
    }

    /// The input as a `T`, if it is one (decoding encoded bytes in place, once).
    #[inline]
    fn peek<T: Serializable>(&mut self) -> Option<&T> {
        match self {
            Input::Message(message) => message.peek::<T>(),
            Input::Event(event) => (event as &dyn Any).downcast_ref::<T>(),
        }
    }
}

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
                message: super::MxMessageInfo::clone(&message),
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

/// What the loop needs of a sink's [`MxAction`]: one byte (a deactivation's reason
/// waits in the agent's core).
#[derive(Copy, Clone, PartialEq, Eq)]
enum Verdict {
    Ready,
    Prioritise(MxSource),
    Deactivate,
}

type SinkFn<S> = dyn FnMut(&mut MxAgent<'_, S>, &mut Input) -> Option<Verdict>;
type EventFn<S> = dyn FnMut(&mut MxAgent<'_, S>, &MxEvent) -> Option<Verdict>;

/// How a sink takes its inputs.
enum Handler<S> {
    /// System events of the given kinds (bits of [`MxEventKind::bit`]), handed over
    /// with no check of their type.
    Events { kinds: u32, handle: Box<EventFn<S>> },
    /// Values of one type other than [`MxEvent`], from the mailbox or the bus.
    Typed(Box<SinkFn<S>>),
}

/// A typed handler of an agent's inputs, made by [`mx_sink`].
pub struct MxSink<S> {
    handler: Handler<S>,
}

impl<S> MxSink<S> {
    /// The event kinds it takes: an agent is sent only the system events some sink of
    /// it takes.
    fn kinds(&self) -> u32 {
        match self.handler {
            Handler::Events { kinds, .. } => kinds,
            Handler::Typed(_) => 0,
        }
    }

    /// Offers a system event from the bus, of kind bit `kind`; `None` passes it on (a
    /// sink of another type never takes an event).
    #[inline(always)]
    fn offer_event(
        &mut self,
        agent: &mut MxAgent<'_, S>,
        event: &MxEvent,
        kind: u32,
    ) -> Option<Verdict> {
        match &mut self.handler {
            Handler::Events { kinds, handle } if *kinds & kind != 0 => handle(agent, event),
            _ => None,
        }
    }

    /// Offers a value (from the mailbox, or a user's from the bus), which may be an
    /// event sent as a message; `None` passes it on.
    #[inline]
    fn offer_value(&mut self, agent: &mut MxAgent<'_, S>, input: &mut Input) -> Option<Verdict> {
        match &mut self.handler {
            Handler::Events { kinds, handle } => {
                let event = input.peek::<MxEvent>()?;
                if *kinds & event.kind().bit() == 0 {
                    return None;
                }
                handle(agent, event)
            }
            Handler::Typed(handle) => handle(agent, input),
        }
    }
}

impl<S> fmt::Debug for MxSink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MxSink")
    }
}

/// A sink for inputs of type `T`, from the bus or the mailbox alike (`mxSink`). Sinks
/// are tried in order; the first whose type matches handles the input, unless it
/// returns [`mx_skip`]. An input no sink takes is dropped.
///
/// A sink runs synchronously inside the agent's process; it reaches the process
/// through [`MxAgent::process`] / [`MxAgent::lift_mx`], and queues actions that must
/// wait (a receive, a sleep) with [`MxAgent::lift_mx_async`].
///
/// ```
/// use hyperion::mx::{mx_ready, mx_sink, MxAgent, MxEvent, MxSink};
/// let count_spawns: MxSink<u64> = mx_sink(|agent: &mut MxAgent<'_, u64>, event: &MxEvent| {
///     if let MxEvent::Spawned(_) = event {
///         agent.mx_update_local(|n| *n += 1);
///     }
///     mx_ready()
/// });
/// ```
pub fn mx_sink<S, T, F>(mut handler: F) -> MxSink<S>
where
    S: 'static,
    T: Serializable,
    F: FnMut(&mut MxAgent<'_, S>, &T) -> MxAction + 'static,
{
    if TypeId::of::<T>() == TypeId::of::<MxEvent>() {
        return mx_sink_events(&MxEventKind::ALL, move |agent, event| {
            // `T` is `MxEvent`: the cast cannot fail.
            match (event as &dyn Any).downcast_ref::<T>() {
                Some(event) => handler(agent, event),
                None => mx_skip(),
            }
        });
    }
    MxSink {
        handler: Handler::Typed(Box::new(move |agent, input| {
            let value = input.peek::<T>()?;
            let action = handler(agent, value);
            agent.verdict(action)
        })),
    }
}

/// A sink for system events of the given kinds only (an [`mx_sink`] of [`MxEvent`]
/// that passes other kinds on, as if their type did not match). An agent is sent only
/// the kinds its sinks take, so an agent that needs few kinds costs the node less: one
/// that takes [`MxEventKind::Sent`] alone costs nothing per message received.
///
/// ```
/// use hyperion::mx::{mx_ready, mx_sink_events, MxAgent, MxEvent, MxEventKind, MxSink};
/// let count_sends: MxSink<u64> = mx_sink_events(
///     &[MxEventKind::Sent],
///     |agent: &mut MxAgent<'_, u64>, _: &MxEvent| {
///         agent.mx_update_local(|n| *n += 1);
///         mx_ready()
///     },
/// );
/// ```
pub fn mx_sink_events<S, F>(kinds: &[MxEventKind], mut handler: F) -> MxSink<S>
where
    S: 'static,
    F: FnMut(&mut MxAgent<'_, S>, &MxEvent) -> MxAction + 'static,
{
    MxSink {
        handler: Handler::Events {
            kinds: kinds.iter().fold(0, |mask, kind| mask | kind.bit()),
            handle: Box::new(move |agent, event| {
                let action = handler(agent, event);
                agent.verdict(action)
            }),
        },
    }
}

type LiftFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What an agent's loop owns besides its state.
struct AgentCore {
    process: Rc<Process>,
    id: MxAgentId,
    /// Process actions queued by sinks, run in order before the next input.
    lifts: VecDeque<LiftFuture>,
    /// The reason a sink gave to deactivate.
    deactivation: Option<String>,
}

/// An agent as its sinks see it (Cloud Haskell's `MxAgent` monad): its local state,
/// its id, its process, and the bus.
pub struct MxAgent<'a, S> {
    core: &'a mut AgentCore,
    state: &'a mut S,
}

impl<S> MxAgent<'_, S> {
    /// What the loop needs of `action`; `None` passes the input on.
    #[inline]
    fn verdict(&mut self, action: MxAction) -> Option<Verdict> {
        match action {
            MxAction::Ready => Some(Verdict::Ready),
            MxAction::Skip => None,
            MxAction::Prioritise(source) => Some(Verdict::Prioritise(source)),
            MxAction::Deactivate(reason) => {
                self.core.deactivation = Some(reason);
                Some(Verdict::Deactivate)
            }
        }
    }

    /// The agent's id (`mxGetId`).
    pub fn mx_get_id(&self) -> &MxAgentId {
        &self.core.id
    }

    /// The agent's local state (`mxGetLocal`).
    pub fn mx_get_local(&self) -> &S {
        self.state
    }

    /// Replaces the agent's local state (`mxSetLocal`).
    pub fn mx_set_local(&mut self, state: S) {
        *self.state = state;
    }

    /// Changes the agent's local state in place (`mxUpdateLocal`), returning what
    /// `update` returns.
    pub fn mx_update_local<R>(&mut self, update: impl FnOnce(&mut S) -> R) -> R {
        update(self.state)
    }

    /// The agent's process handle: send, spawn, monitor, register... from a sink.
    pub fn process(&self) -> &Process {
        &self.core.process
    }

    /// Runs a process action now (`liftMX`) and returns its result.
    pub fn lift_mx<R>(&self, action: impl FnOnce(&Process) -> R) -> R {
        action(&self.core.process)
    }

    /// Queues a process action that waits (a receive, a sleep, a remote call): the agent
    /// runs it to completion before it takes its next input, as `liftMX` of a blocking
    /// action does. Inputs arriving meanwhile wait in the bus and the mailbox. Its
    /// result reaches the agent as a message if the action sends one.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use hyperion::mx::{mx_ready, mx_sink, MxAgent, MxSink};
    /// let slow: MxSink<()> = mx_sink(|agent: &mut MxAgent<'_, ()>, delay_ms: &u64| {
    ///     let delay = Duration::from_millis(*delay_ms);
    ///     agent.lift_mx_async(move |p| async move { p.sleep(delay).await });
    ///     mx_ready()
    /// });
    /// ```
    pub fn lift_mx_async<Fut>(&mut self, action: impl FnOnce(Rc<Process>) -> Fut)
    where
        Fut: Future<Output = ()> + 'static,
    {
        let future = action(self.core.process.clone());
        self.core.lifts.push_back(Box::pin(future));
    }

    /// Publishes `value` on the node's event bus (`mxBroadcast`): every agent,
    /// this one included, receives it.
    pub fn mx_broadcast<T: Serializable>(&self, value: T) {
        let node = self.core.process.local_node();
        node.state()
            .mx_publish(BusItem::Message(Message::new(value)));
    }

    /// Events this agent lost because its queue held [`MX_AGENT_BACKLOG_MAX`] already.
    ///
    /// [`MX_AGENT_BACKLOG_MAX`]: super::MX_AGENT_BACKLOG_MAX
    pub fn events_dropped(&self) -> u64 {
        let node = self.core.process.local_node();
        let pid = self.core.process.self_pid();
        node.state()
            .mx
            .reader_mut(pid)
            .map_or(0, |reader| reader.dropped)
    }
}

/// How an agent stopped, as its finalizer is told.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum MxAgentStop {
    /// A sink returned [`mx_deactivate`] with this reason.
    Deactivated(String),
    /// Its process died: a sink panicked, it was killed or exited, or its node shut
    /// down.
    Died(DiedReason),
}

/// What an agent's finalizer receives: the final local state, why the agent stopped,
/// and the node (the agent's process is gone; messages sent from here carry its pid).
pub struct MxFinalize<'a, S> {
    state: S,
    stop: MxAgentStop,
    id: MxAgentId,
    pid: ProcessId,
    node: &'a LocalNode,
}

impl<S> MxFinalize<'_, S> {
    /// The agent's local state when it stopped.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The local state, by value.
    pub fn into_state(self) -> S {
        self.state
    }

    /// Why the agent stopped.
    pub fn stop(&self) -> &MxAgentStop {
        &self.stop
    }

    /// The agent's id.
    pub fn id(&self) -> &MxAgentId {
        &self.id
    }

    /// The agent's (now dead) process id.
    pub fn pid(&self) -> ProcessId {
        self.pid
    }

    /// The node the agent ran on.
    pub fn node(&self) -> &LocalNode {
        self.node
    }

    /// Sends `value` to `to`, from the agent's pid.
    pub fn send<T: Serializable>(&self, to: ProcessId, value: T) {
        match self.node.inner.state.try_borrow_mut() {
            Ok(mut state) => state.send_from(self.pid, to, Message::new(value)),
            Err(_) => tracing::error!(agent = %self.id, "finalizer send dropped: node busy"),
        }
    }

    /// Publishes `value` on the node's event bus, for the agents still running.
    pub fn mx_broadcast<T: Serializable>(&self, value: T) {
        match self.node.inner.state.try_borrow_mut() {
            Ok(mut state) => {
                if state.mx.is_active() {
                    state.mx_publish(BusItem::Message(Message::new(value)));
                }
            }
            Err(_) => tracing::error!(agent = %self.id, "finalizer broadcast dropped: node busy"),
        }
    }
}

type Finalizer<S> = Box<dyn for<'a> FnOnce(MxFinalize<'a, S>)>;

/// What the agent's loop and its exit hook share: whichever runs last with the state
/// free runs the finalizer, once.
struct Shared<S> {
    id: MxAgentId,
    state: RefCell<Option<S>>,
    finalizer: RefCell<Option<Finalizer<S>>>,
    /// Set by a sink's `mx_deactivate`, read by the exit hook.
    deactivated: RefCell<Option<String>>,
    /// Set by the exit hook: the agent is dead.
    stop: RefCell<Option<MxAgentStop>>,
}

impl<S> Shared<S> {
    /// Runs the finalizer if the agent has stopped and its state is not in use (a sink
    /// that shuts its own node down is still running: then the loop's drop does it).
    fn try_finalize(&self, pid: ProcessId, node: &LocalNode) {
        let Some(stop) = self.stop.borrow().clone() else {
            return;
        };
        if crate::planted::is_planted(crate::planted::Defect::FinalizerSkippedOnKill)
            && matches!(&stop, MxAgentStop::Died(DiedReason::Exception(why)) if why.starts_with("killed"))
        {
            return;
        }
        let Ok(mut slot) = self.state.try_borrow_mut() else {
            return;
        };
        let Some(finalizer) = self.finalizer.borrow_mut().take() else {
            return;
        };
        let Some(state) = slot.take() else { return };
        drop(slot);
        let context = MxFinalize {
            state,
            stop,
            id: self.id.clone(),
            pid,
            node,
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| finalizer(context))) {
            let text = crate::process::id::panic_text(panic.as_ref());
            tracing::error!(agent = %self.id, %text, "management agent finalizer panicked");
        }
    }
}

/// The agent's process: take the next input (by priority), run it through the sinks,
/// act on the result.
struct AgentLoop<S> {
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
        let slot = state.processes.get_mut(self.task)?;
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

/// Starts an agent with no finalizer: [`mx_agent_with_finalize`] with one that does
/// nothing (`mxAgent`).
///
/// ```
/// use hyperion::mx::{mx_agent, mx_ready, mx_sink, MxAgent, MxError, MxEvent};
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// let sinks = vec![mx_sink(|agent: &mut MxAgent<'_, u64>, _: &MxEvent| {
///     agent.mx_update_local(|n| *n += 1);
///     mx_ready()
/// })];
/// let agent = mx_agent(&p, "event-counter".into(), 0u64, sinks).unwrap();
/// let again = mx_agent(&p, "event-counter".into(), 0u64, Vec::new());
/// assert!(matches!(again, Err(MxError::DuplicateAgentId { holder, .. }) if holder == agent));
/// # }).unwrap();
/// ```
pub fn mx_agent<S: 'static>(
    host: &impl MxHost,
    id: MxAgentId,
    state: S,
    sinks: Vec<MxSink<S>>,
) -> Result<ProcessId, MxError> {
    mx_agent_with_finalize(host, id, state, sinks, |_| {})
}

/// Starts an agent (`mxAgentWithFinalize`): a process on `host`'s node, registered as
/// `id`, that feeds every input from the node's event bus and from its own mailbox to
/// `sinks`, with `state` as its local state. `finalizer` runs exactly once when the
/// agent stops, however it stops: a sink deactivates it, a sink panics, it is killed
/// or exited, or its node shuts down.
///
/// The agent sees every event published after this call returns. Refused with
/// [`MxError::DuplicateAgentId`] if `id` (as a name) is taken on the node.
///
/// ```
/// use hyperion::mx::{mx_agent_with_finalize, mx_deactivate, mx_sink, MxAgent, MxAgentStop};
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// let me = p.self_pid();
/// let sinks = vec![mx_sink(|_: &mut MxAgent<'_, u32>, _: &String| mx_deactivate("asked"))];
/// let agent = mx_agent_with_finalize(&p, "once".into(), 7u32, sinks, move |stopped| {
///     // Runs exactly once, with the final state, however the agent stops.
///     stopped.send(me, (*stopped.state(), stopped.stop().clone()));
/// })
/// .unwrap();
/// p.send(agent, "stop".to_string());
/// let (state, stop): (u32, MxAgentStop) = p.expect().await;
/// assert_eq!((state, stop), (7, MxAgentStop::Deactivated("asked".into())));
/// # }).unwrap();
/// ```
pub fn mx_agent_with_finalize<S: 'static>(
    host: &impl MxHost,
    id: MxAgentId,
    state: S,
    sinks: Vec<MxSink<S>>,
    finalizer: impl for<'a> FnOnce(MxFinalize<'a, S>) + 'static,
) -> Result<ProcessId, MxError> {
    let node = host.mx_node();
    {
        let state = node.state();
        if state.stopped {
            return Err(MxError::NodeStopped);
        }
        if let Some(holder) = state.registry.get(id.as_str()) {
            return Err(MxError::DuplicateAgentId { id, holder });
        }
    }
    let shared = Rc::new(Shared {
        id: id.clone(),
        state: RefCell::new(Some(state)),
        finalizer: RefCell::new(Some(Box::new(finalizer))),
        deactivated: RefCell::new(None),
        stop: RefCell::new(None),
    });
    let in_loop = shared.clone();
    let loop_id = id.clone();
    let kinds = sinks.iter().fold(0, |kinds, sink| kinds | sink.kinds());
    let pid = node.spawn(move |process| {
        let pid = process.self_pid();
        AgentLoop {
            core: AgentCore {
                process: Rc::new(process),
                id: loop_id,
                lifts: VecDeque::new(),
                deactivation: None,
            },
            shared: in_loop,
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
    });
    // Subscribed before it first runs, so it misses nothing published from now on.
    node.state().mx.subscribe(id.clone(), pid, kinds);
    let weak: Weak<NodeInner> = Rc::downgrade(&node.inner);
    node.on_exit(
        pid,
        Box::new(move |reason| {
            let Some(inner) = weak.upgrade() else { return };
            let node = LocalNode { inner };
            node.state().mx.unsubscribe(pid);
            let stop = match shared.deactivated.borrow_mut().take() {
                Some(why) if reason.is_normal() => MxAgentStop::Deactivated(why),
                _ => MxAgentStop::Died(reason.clone()),
            };
            *shared.stop.borrow_mut() = Some(stop);
            shared.try_finalize(pid, &node);
        }),
    );
    node.register(id.as_str(), pid).map_err(MxError::Registry)?;
    Ok(pid)
}

/// Every agent running on `host`'s node, in the order they started.
pub fn mx_agents(host: &impl MxHost) -> Vec<(MxAgentId, ProcessId)> {
    host.mx_node().state().mx.agents()
}

/// Publishes `value` on the node's event bus (`mxNotify`): every running agent
/// receives it, in its sinks of type `T`. Any process (or code holding the node) may
/// notify; nothing happens if no agent runs.
///
/// ```
/// use hyperion::mx::{mx_agent, mx_notify, mx_ready, mx_sink, MxAgent};
/// use hyperion::ProcessId;
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// let sinks = vec![mx_sink(|agent: &mut MxAgent<'_, ()>, asker: &ProcessId| {
///     agent.process().send(*asker, "heard you".to_string());
///     mx_ready()
/// })];
/// mx_agent(&p, "listener".into(), (), sinks).unwrap();
/// mx_notify(&p, p.self_pid()); // through the bus, not the agent's mailbox
/// assert_eq!(p.expect::<String>().await, "heard you");
/// # }).unwrap();
/// ```
pub fn mx_notify<T: Serializable>(host: &impl MxHost, value: T) {
    let mut state = host.mx_node().state();
    if state.mx.is_active() {
        state.mx_publish(BusItem::Message(Message::new(value)));
    }
}

/// Publishes an [`MxEvent::Log`] line (Cloud Haskell's `traceLog`); the tracing
/// bridge forwards it to `tracing`.
pub fn mx_log(host: &impl MxHost, text: impl Into<String>) {
    host.mx_node()
        .state()
        .mx_event(MxEventKind::Log, || MxEvent::Log(text.into()));
}

/// Publishes an [`MxEvent::User`] trace event carrying `value` (Cloud Haskell's
/// `traceMessage`). A value that cannot be encoded is logged and not published.
pub fn mx_trace_message<T: Serializable>(host: &impl MxHost, value: &T) {
    let mut state = host.mx_node().state();
    if !state.mx.wants(MxEventKind::User) {
        return;
    }
    match super::MxPayload::new(value) {
        Ok(payload) => state.mx_publish(BusItem::Event(Box::new(MxEvent::User(payload)))),
        Err(err) => tracing::error!(%err, "user trace event not published: cannot encode"),
    }
}
