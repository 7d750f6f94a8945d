//! Management agents: processes that read the node's event bus and their own mailbox
//! through typed sinks, keep local state, and run a finalizer exactly once when they
//! stop.
//!
//! One idea per file: `id` names an agent, `action` is what a sink decides, `context`
//! is the agent as a sink sees it, `sink` the typed handlers, `finalize` how an agent
//! ends, `run_loop` the agent's process; this module starts agents and publishes on the
//! bus. Imports go one way: `id` and `action` are leaves, `run_loop` uses the rest.

mod action;
mod context;
mod finalize;
mod id;
mod run_loop;
mod sink;

use std::cell::RefCell;
use std::rc::{Rc, Weak};

pub use action::{
    mx_deactivate, mx_ready, mx_receive, mx_receive_chan, mx_skip, MxAction, MxSource,
};
pub use context::MxAgent;
pub use finalize::{MxAgentStop, MxFinalize};
pub use id::MxAgentId;
pub use run_loop::MX_AGENT_INPUTS_PER_TURN;
pub use sink::{mx_sink, mx_sink_events, MxSink};

use super::{MxError, MxHost};
use crate::bus::events::{MxEvent, MxEventKind};
use crate::bus::BusItem;
use crate::message::Message;
use crate::node::local::NodeInner;
use crate::node::LocalNode;
use crate::types::id::ProcessId;
use crate::Serializable;
use finalize::Shared;
use run_loop::AgentLoop;

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
    let pid = node.spawn(move |process| AgentLoop::new(process, loop_id, in_loop, sinks));
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
