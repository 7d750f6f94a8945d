//! The world's nodes: how they are made (clock, identity, transport, checkers' observer)
//! and remade as a new incarnation when they restart.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyperion::mx::{mx_agent, mx_ready, mx_sink, MxAgent, MxEvent};
use hyperion::runtime::blocking::Inline;
use hyperion::BuildId;
use hyperion::{LocalNode, NodeEnv, NodeEvent, NodeId, RemoteTable};
use rand_chacha::rand_core::RngCore;

use super::{Sim, SIM_TRACE_AGENT_ID};
use crate::clock::NodeClock;
use crate::network::Delivery;

/// Code run on a node when it starts (and restarts).
pub type Boot = Rc<dyn Fn(&LocalNode)>;

/// How a node of the world is made (and remade, when it restarts).
#[derive(Clone, Default)]
pub struct NodeOptions {
    /// Whether random faults may crash it (scheduled faults always can).
    pub crashable: bool,
    /// Whether a random restart may bring it back after a crash (a crashed batch job
    /// does not come back; a crashed server may).
    pub no_restart: bool,
    /// The closures it runs for others.
    pub remote_table: RemoteTable,
    /// Run on the node at its start and at every restart (register servers here).
    pub boot: Option<Boot>,
    /// The program build it runs; `None`: [`BuildId::fixed`], the same for every node.
    pub build: Option<BuildId>,
}

impl NodeOptions {
    /// Options for a node that random faults may crash.
    pub fn crashable() -> NodeOptions {
        NodeOptions {
            crashable: true,
            ..NodeOptions::default()
        }
    }

    /// Sets the remote table.
    pub fn remote_table(mut self, table: RemoteTable) -> NodeOptions {
        self.remote_table = table;
        self
    }

    /// Runs another build of the program (a worker started from a recompiled binary).
    pub fn build(mut self, build: BuildId) -> NodeOptions {
        self.build = Some(build);
        self
    }

    /// Sets the boot function.
    pub fn boot(mut self, boot: impl Fn(&LocalNode) + 'static) -> NodeOptions {
        self.boot = Some(Rc::new(boot));
        self
    }
}

/// A node of the world as the world sees it: its current incarnation and the faults on it.
pub(super) struct SimNode {
    pub(super) node: LocalNode,
    pub(super) clock: Rc<NodeClock>,
    pub(super) options: NodeOptions,
    pub(super) crashed: bool,
    pub(super) poll_cost: Duration,
    pub(super) busy_until: Duration,
    /// Until when the node is stopped, as by SIGSTOP (see [`Fault::Pause`]).
    pub(super) paused_until: Duration,
    /// Until when its due timers wait (a buggified late timer).
    pub(super) timers_late_until: Duration,
    /// Whether its last due timers were made late (the next ones are not).
    pub(super) timers_lagged: bool,
    /// What the network delivered to the node while it was paused, in order.
    pub(super) held: std::collections::VecDeque<Delivery>,
}

impl Sim {
    pub(super) fn start_mx_trace_agent(&self, index: usize, node: &LocalNode) {
        if !self.trace_mx {
            return;
        }
        let trace = self.trace.clone();
        let time = self.time.clone();
        let sink = mx_sink(move |_: &mut MxAgent<'_, ()>, event: &MxEvent| {
            let bytes = hyperion::message::encode(event).unwrap_or_default();
            trace
                .borrow_mut()
                .event(time.now(), Some(index), 6, &bytes, || {
                    format!("mx {event:?}")
                });
            mx_ready()
        });
        if let Err(err) = mx_agent(node, SIM_TRACE_AGENT_ID.into(), (), vec![sink]) {
            tracing::warn!(node = %node.id(), %err, "mx trace agent not started");
        }
    }

    /// Adds a node that random faults leave alone, and returns it.
    pub fn add_node(&mut self) -> LocalNode {
        self.add_node_with(NodeOptions::default())
    }

    /// Adds a node made as `options` say.
    pub fn add_node_with(&mut self, options: NodeOptions) -> LocalNode {
        let _hooks = self.enter();
        let index = self.nodes.len();
        let address = SocketAddr::from(([10, 0, (index >> 8) as u8, index as u8], 7000));
        let drift_max = i64::from(self.faults.clock_drift_ppm_max);
        let drift = if drift_max == 0 {
            0
        } else {
            (self.rng.next_u64() % (2 * drift_max as u64 + 1)) as i64 - drift_max
        };
        // A plan's drift replaces the draw (made all the same, so that the world's
        // generator draws alike either way).
        let drift = match self.planned_drift.get(&index) {
            Some(&ppm) => {
                let fault = crate::plan::PlannedFault::Drift { index, ppm };
                self.injected.push(crate::plan::PlanFault {
                    at: self.time.now(),
                    fault,
                });
                i64::from(ppm)
            }
            None => drift,
        };
        let offset = Duration::from_millis(self.rng.next_u64() % 1000);
        let slow = self.unit() < self.faults.slow_node_probability;
        let clock = Rc::new(NodeClock::new(self.time.clone(), offset, drift as i32));
        let node = self.make_node(index, address, &clock, &options);
        self.nodes.push(SimNode {
            node: node.clone(),
            clock,
            options,
            crashed: false,
            poll_cost: if slow {
                self.faults.slow_poll_cost
            } else {
                Duration::ZERO
            },
            busy_until: Duration::ZERO,
            paused_until: Duration::ZERO,
            timers_late_until: Duration::ZERO,
            timers_lagged: false,
            held: std::collections::VecDeque::new(),
        });
        self.handle.reserved.set(self.nodes.len());
        self.start_mx_trace_agent(index, &node);
        if let Some(boot) = self.nodes[index].options.boot.clone() {
            boot(&node);
        }
        self.refresh_timer(index);
        node
    }

    fn make_node(
        &mut self,
        index: usize,
        address: SocketAddr,
        clock: &Rc<NodeClock>,
        options: &NodeOptions,
    ) -> LocalNode {
        let id = NodeId {
            address,
            incarnation: self.rng.next_u64(),
        };
        self.network.state.borrow_mut().host_up(id);
        let checkers = self.checkers.clone();
        let trace = self.trace.clone();
        let time = self.time.clone();
        let env = NodeEnv::new(clock.clone(), self.rng.next_u64(), Rc::new(Inline))
            .transport(Box::new(self.network.transport(id)))
            .remote_table(options.remote_table.clone())
            .build(options.build.clone().unwrap_or_else(BuildId::fixed))
            .heartbeat(self.heartbeat)
            .observer(Rc::new(move |event| {
                let now = time.now();
                checkers.borrow_mut().on_node_event(now, id, event);
                // The events that only feed the checkers (removals, queued notifications,
                // data sends, reconnects) stay out of the trace: traces recorded before
                // they existed stay valid, and the hash chain stays cheap.
                let traced = matches!(
                    event,
                    NodeEvent::MonitorCreated { .. }
                        | NodeEvent::MonitorFired { .. }
                        | NodeEvent::RemoteDelivered { .. }
                        | NodeEvent::PeerConnected(_)
                        | NodeEvent::PeerLost(_)
                );
                if traced {
                    trace
                        .borrow_mut()
                        .event(now, Some(index), 4, &[], || format!("event {event:?}"));
                }
            }));
        self.trace.borrow_mut().event(
            self.time.now(),
            Some(index),
            5,
            &id.incarnation.to_le_bytes(),
            || format!("node up as {id}"),
        );
        LocalNode::new(id, env)
    }

    /// The node at `index` (its current incarnation).
    pub fn node(&self, index: usize) -> LocalNode {
        self.nodes[index].node.clone()
    }

    /// The world's nodes (current incarnations), in the order they were added.
    pub fn nodes(&self) -> Vec<LocalNode> {
        self.nodes.iter().map(|n| n.node.clone()).collect()
    }

    pub(super) fn restart(&mut self, index: usize) {
        if !self.nodes[index].crashed {
            return;
        }
        let address = self.nodes[index].node.id().address;
        let clock = self.nodes[index].clock.clone();
        let options = self.nodes[index].options.clone();
        let node = self.make_node(index, address, &clock, &options);
        let slot = &mut self.nodes[index];
        slot.node = node.clone();
        slot.crashed = false;
        slot.busy_until = self.time.now();
        self.start_mx_trace_agent(index, &node);
        if let Some(boot) = options.boot {
            boot(&node);
        }
        self.refresh_timer(index);
    }
}
