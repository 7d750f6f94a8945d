//! The tracing bridge: an agent that forwards [`MxEvent::Log`] lines to the `tracing`
//! crate, so a node's management log lands wherever the program's logs go.

use super::agent::{mx_agent, mx_ready, mx_sink, MxAgent, MxAgentId};
use super::{MxError, MxHost};
use crate::bus::events::MxEvent;
use crate::types::id::ProcessId;

/// The id the tracing bridge registers under: one bridge per node.
pub const TRACING_BRIDGE_AGENT_ID: &str = "hyperion.tracing-bridge";

/// Starts the node's tracing bridge: every [`MxEvent::Log`] published on the node
/// (see [`mx_log`](super::mx_log)) becomes a `tracing` event at `INFO` level, target
/// `hyperion::mx`, with the node's id as field `node`. Other events are ignored.
///
/// ```
/// use hyperion::mx::{mx_log, start_tracing_bridge};
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// start_tracing_bridge(&p).unwrap();
/// mx_log(&p, "checkpoint reached"); // logged through `tracing` by the bridge
/// # }).unwrap();
/// ```
pub fn start_tracing_bridge(host: &impl MxHost) -> Result<ProcessId, MxError> {
    let node = host.mx_node().id();
    let sinks = vec![mx_sink(move |_: &mut MxAgent<'_, ()>, event: &MxEvent| {
        if let MxEvent::Log(text) = event {
            tracing::info!(target: "hyperion::mx", %node, "{text}");
        }
        mx_ready()
    })];
    mx_agent(host, MxAgentId::new(TRACING_BRIDGE_AGENT_ID), (), sinks)
}
