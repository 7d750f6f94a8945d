//! [`MxAgent`]: an agent as its sinks see it (local state, id, process, bus), and the
//! part of the loop it borrows (`AgentCore`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::action::{MxAction, Verdict};
use super::id::MxAgentId;
use crate::bus::BusItem;
use crate::message::Message;
use crate::process::Process;
use crate::Serializable;

type LiftFuture = Pin<Box<dyn Future<Output = ()>>>;

/// What an agent's loop owns besides its state.
pub(super) struct AgentCore {
    pub(super) process: Rc<Process>,
    pub(super) id: MxAgentId,
    /// Process actions queued by sinks, run in order before the next input.
    pub(super) lifts: VecDeque<LiftFuture>,
    /// The reason a sink gave to deactivate.
    pub(super) deactivation: Option<String>,
}

/// An agent as its sinks see it (Cloud Haskell's `MxAgent` monad): its local state,
/// its id, its process, and the bus.
pub struct MxAgent<'a, S> {
    pub(super) core: &'a mut AgentCore,
    pub(super) state: &'a mut S,
}

impl<S> MxAgent<'_, S> {
    /// What the loop needs of `action`; `None` passes the input on.
    #[inline]
    pub(super) fn verdict(&mut self, action: MxAction) -> Option<Verdict> {
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
    /// [`MX_AGENT_BACKLOG_MAX`]: crate::mx::MX_AGENT_BACKLOG_MAX
    pub fn events_dropped(&self) -> u64 {
        let node = self.core.process.local_node();
        let pid = self.core.process.self_pid();
        node.state()
            .mx
            .reader_mut(pid)
            .map_or(0, |reader| reader.dropped)
    }
}
