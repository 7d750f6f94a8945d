//! Management: the node's event bus, management agents, system events and tracing
//! (Cloud Haskell's `Control.Distributed.Process.Management`).
//!
//! Every node has an event bus, started with the node. The node publishes
//! [`MxEvent`]s on it when their cause happens (a process spawned, died, sent or
//! received a message, a name registered, a peer connected or lost); any process may
//! publish its own values with [`mx_notify`], [`mx_log`] and [`mx_trace_message`].
//! *Agents* read the bus: an agent is a process, registered under a unique
//! [`MxAgentId`], whose typed [`MxSink`]s handle its inputs from the bus and from its
//! own mailbox, keeping local state.
//!
//! ```
//! use std::collections::BTreeMap;
//! use hyperion::mx::{mx_agent, mx_ready, mx_sink, MxAgent, MxEvent};
//! use hyperion::ProcessId;
//!
//! # hyperion::Node::new().unwrap().run(|p| async move {
//! // Counts the messages each process sends; answers a pid with the counts.
//! type Counts = BTreeMap<ProcessId, u64>;
//! let sinks = vec![
//!     mx_sink(|agent: &mut MxAgent<'_, Counts>, event: &MxEvent| {
//!         if let MxEvent::Sent { from, .. } = event {
//!             agent.mx_update_local(|counts| *counts.entry(*from).or_default() += 1);
//!         }
//!         mx_ready()
//!     }),
//!     mx_sink(|agent: &mut MxAgent<'_, Counts>, asker: &ProcessId| {
//!         agent.process().send(*asker, agent.mx_get_local().clone());
//!         mx_ready()
//!     }),
//! ];
//! let counter = mx_agent(&p, "message-counter".into(), Counts::new(), sinks).unwrap();
//! let me = p.self_pid();
//! p.send(me, "one".to_string());
//! p.send(me, "two".to_string());
//! p.send(counter, me); // the third message
//! let counts: Counts = p.expect().await;
//! assert_eq!(counts[&me], 3);
//! # }).unwrap();
//! ```
//!
//! Sinks are tried in order; the first whose type matches takes the input, unless it
//! returns [`mx_skip`], which passes the input to the next sink; an input no sink takes
//! is dropped. A sink ends with [`mx_ready`] (next input from the bus first, if both
//! sources have one), [`mx_receive`] (mailbox first), [`mx_receive_chan`] (bus first)
//! or [`mx_deactivate`] (stop). A finalizer given to [`mx_agent_with_finalize`] runs
//! exactly once however the agent stops.
//!
//! Guarantees:
//! - publishing never blocks and never fails the publisher; with no agent running it
//!   costs one branch (measured by `examples/bench_mx.rs`);
//! - every agent receives every value and event published on its node after it
//!   started that one of its sinks can take, in the order published, unless its queue
//!   holds [`MX_AGENT_BACKLOG_MAX`] inputs already (then new ones are dropped for it,
//!   and counted). Event kinds no sink of an agent takes are not sent to it at all
//!   (they would be dropped anyway): an [`mx_sink`] of `MxEvent` takes every kind,
//!   [`mx_sink_events`] the kinds it names, so a narrow agent costs the node less;
//! - a local message's `Sent` event comes before its `Received` event; the node's own
//!   events reach each agent in the order their causes happened;
//! - the finalizer runs exactly once.
//!
//! Not guaranteed, as in Cloud Haskell: the order in which agents run; whether an
//! agent takes a given input from its mailbox or the bus first when both have one
//! (priority is a hint that holds when both have input at the moment the agent
//! chooses, not an ordering between sources); that an event is seen by agents started
//! after it was published. Events describe a message's type, not its body
//! ([`MxMessageInfo`]). Departures from Cloud Haskell: state changes made by a sink
//! that then skips are kept (Cloud Haskell discards them); the finalizer runs after the
//! agent's process is gone, with its final state and the node ([`MxFinalize`]), not
//! inside the process; sinks are synchronous, and a process action that waits is
//! queued with [`MxAgent::lift_mx_async`].
//!
//! Tracing: [`start_tracer`] records events to memory or a JSON-lines file, switchable
//! at run time; [`start_tracing_bridge`] forwards [`MxEvent::Log`] lines to `tracing`.
//!
//! Layers: the bus and the events it carries (`crate::bus`) sit below the node, which
//! publishes on them; this module, the agents, sits above the process layer (an agent
//! is a process) and re-exports the bus's public types.

mod agent;
mod bridge;
mod tracer;

pub use crate::bus::events::{MxEvent, MxEventKind, MxMessageInfo, MxPayload, MxRecipient};
pub use crate::bus::trace_control::{TraceControl, TraceFlags, TraceTarget};
pub use crate::bus::MX_AGENT_BACKLOG_MAX;
pub use agent::{
    mx_agent, mx_agent_with_finalize, mx_agents, mx_deactivate, mx_log, mx_notify, mx_ready,
    mx_receive, mx_receive_chan, mx_sink, mx_sink_events, mx_skip, mx_trace_message, MxAction,
    MxAgent, MxAgentId, MxAgentStop, MxFinalize, MxSink, MxSource, MX_AGENT_INPUTS_PER_TURN,
};
pub use bridge::{start_tracing_bridge, TRACING_BRIDGE_AGENT_ID};
pub use tracer::{start_tracer, TraceRecord, Tracer, TRACER_AGENT_ID, TRACE_MEMORY_RECORDS_MAX};

use std::fmt;

use crate::node::LocalNode;
use crate::process::Process;
use crate::types::id::ProcessId;
use crate::RegistryError;

/// What management calls accept to find the node: a [`Process`] (from inside a
/// process) or a [`LocalNode`] (from a driver or boot code).
pub trait MxHost {
    /// The node whose bus is meant.
    fn mx_node(&self) -> &LocalNode;
}

impl MxHost for LocalNode {
    fn mx_node(&self) -> &LocalNode {
        self
    }
}

/// Management calls accept a process (here, not in `process/`, because management sits
/// above the process layer).
impl MxHost for Process {
    fn mx_node(&self) -> &LocalNode {
        self.local_node()
    }
}

/// Why a management call was refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MxError {
    /// An agent (or another process) is registered under this id already (Cloud
    /// Haskell's `DuplicateAgentId`).
    DuplicateAgentId {
        /// The id asked for.
        id: MxAgentId,
        /// The process holding it.
        holder: ProcessId,
    },
    /// The node has shut down.
    NodeStopped,
    /// The agent could not be registered under its id.
    Registry(RegistryError),
    /// A trace file could not be opened or written.
    Io(String),
}

impl fmt::Display for MxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MxError::DuplicateAgentId { id, holder } => {
                write!(f, "duplicate agent id {id:?}: already held by {holder}")
            }
            MxError::NodeStopped => write!(f, "the node has stopped"),
            MxError::Registry(err) => write!(f, "agent not registered: {err}"),
            MxError::Io(err) => write!(f, "trace file: {err}"),
        }
    }
}

impl std::error::Error for MxError {}
