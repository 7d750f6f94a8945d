//! The simulated world: nodes driven from one thread, the next task chosen by a seeded
//! RNG across all nodes, virtual time jumping to the next timer, delivery or fault when
//! nothing is ready.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyperion::mx::{mx_agent, mx_ready, mx_sink, MxAgent, MxEvent};
use hyperion::runtime::blocking::Inline;
use hyperion::transport::TransportEvent;
use hyperion::wire::{decode_frame, Frame};
use hyperion::{
    DiedReason, HeartbeatConfig, LocalNode, NodeEnv, NodeEvent, NodeId, Process, RemoteTable,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkers::{Checkers, Pending, Violation};
use crate::clock::{NodeClock, WorldTime};
use crate::faults::{Fault, Faults};
use crate::network::{Delivery, Network};
use crate::probes::{ProbeCount, WorldHooks};
use crate::trace::Trace;

/// The agent id under which [`Sim::trace_mx_events`] runs its agent on every node.
pub const SIM_TRACE_AGENT_ID: &str = "hyperion-sim.mx-trace";

/// Virtual time after which [`Sim::run_until`] gives up, unless changed.
pub const VIRTUAL_TIME_LIMIT_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// Why a simulated run did not produce its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The program's process died before returning.
    Died(DiedReason),
    /// Nothing could ever happen again (no ready task, no timer, nothing in flight),
    /// and the program had not returned: a deadlock.
    Stalled {
        /// Virtual time when the world stalled.
        at: Duration,
    },
    /// Virtual time passed the limit before the program returned.
    TimeLimit {
        /// The limit.
        limit: Duration,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Died(reason) => write!(f, "the program's process died: {reason}"),
            SimError::Stalled { at } => {
                write!(
                    f,
                    "the world stalled at {at:?}: nothing ready, nothing pending"
                )
            }
            SimError::TimeLimit { limit } => write!(f, "virtual time limit {limit:?} reached"),
        }
    }
}

impl std::error::Error for SimError {}

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

    /// Sets the boot function.
    pub fn boot(mut self, boot: impl Fn(&LocalNode) + 'static) -> NodeOptions {
        self.boot = Some(Rc::new(boot));
        self
    }
}

struct SimNode {
    node: LocalNode,
    clock: Rc<NodeClock>,
    options: NodeOptions,
    crashed: bool,
    poll_cost: Duration,
    busy_until: Duration,
    /// Until when the node is stopped, as by SIGSTOP (see [`Fault::Pause`]).
    paused_until: Duration,
    /// What the network delivered to the node while it was paused, in order.
    held: std::collections::VecDeque<Delivery>,
}

/// What code running inside the world asks of it, applied at the next step.
enum Request {
    AddNode(NodeOptions),
    Schedule(Duration, Fault),
}

/// A handle on the world for code running inside it (launchers, test processes): adds
/// nodes, schedules faults, shuts nodes down. Requests apply at the world's next step.
#[derive(Clone)]
pub struct SimHandle {
    requests: Rc<RefCell<std::collections::VecDeque<Request>>>,
    reserved: Rc<std::cell::Cell<usize>>,
    time: WorldTime,
}

impl SimHandle {
    /// Adds a node made as `options` say; returns the index it will have.
    pub fn add_node(&self, options: NodeOptions) -> usize {
        let index = self.reserved.get();
        self.reserved.set(index + 1);
        self.requests
            .borrow_mut()
            .push_back(Request::AddNode(options));
        index
    }

    /// The index the next node added through this handle will have.
    pub fn reserved_index(&self) -> usize {
        self.reserved.get()
    }

    /// Applies `fault` after `delay` of virtual time.
    pub fn schedule_in(&self, delay: Duration, fault: Fault) {
        let at = self.time.now() + delay;
        self.requests
            .borrow_mut()
            .push_back(Request::Schedule(at, fault));
    }

    /// Shuts a node down cleanly, now (see [`Fault::Stop`]).
    pub fn shutdown_node(&self, index: usize) {
        self.schedule_in(Duration::ZERO, Fault::Stop(index));
    }
}

/// A simulated world of nodes, reproducible from its seed.
///
/// ```
/// use hyperion_sim::Sim;
/// use std::time::Duration;
///
/// let mut sim = Sim::new(42);
/// let node = sim.add_node();
/// let waited = sim.run_until(&node, |p| async move {
///     p.sleep(Duration::from_secs(3600)).await; // an hour, in no wall-clock time
///     "done"
/// });
/// assert_eq!(waited, Ok("done"));
/// ```
pub struct Sim {
    handle: SimHandle,
    seed: u64,
    rng: ChaCha8Rng,
    time: WorldTime,
    faults: Faults,
    network: Network,
    nodes: Vec<SimNode>,
    scheduled: BTreeMap<(Duration, u64), Fault>,
    next_scheduled: u64,
    next_random_fault: Option<Duration>,
    heartbeat: HeartbeatConfig,
    trace: Rc<RefCell<Trace>>,
    checkers: Rc<RefCell<Checkers>>,
    virtual_time_limit: Duration,
    steps: u64,
    trace_mx: bool,
    /// Per-step scratch: each node's ready count.
    ready_scratch: Vec<usize>,
    /// Coverage probes and buggify decisions, installed while the world runs code.
    hooks: Rc<WorldHooks>,
    /// Whether [`Sim::shutdown`] ran (a dropped world shuts itself down otherwise).
    shut_down: bool,
}

impl Sim {
    /// A world with no nodes, all of whose choices derive from `seed`, with fault rates
    /// drawn from the seed too ([`Faults::swarm`]).
    pub fn new(seed: u64) -> Sim {
        Sim::with_faults(seed, Faults::swarm(seed))
    }

    /// A world with the given fault plan.
    pub fn with_faults(seed: u64, faults: Faults) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let time = WorldTime::default();
        let network = Network::new(
            time.clone(),
            ChaCha8Rng::seed_from_u64(rng.next_u64()),
            faults.clone(),
        );
        let handle = SimHandle {
            requests: Rc::default(),
            reserved: Rc::default(),
            time: time.clone(),
        };
        let trace = Rc::new(RefCell::new(Trace::new(false)));
        let hooks = Rc::new(WorldHooks::new(seed, time.clone(), trace.clone()));
        let mut sim = Sim {
            handle,
            seed,
            rng,
            time,
            faults,
            network,
            nodes: Vec::new(),
            scheduled: BTreeMap::new(),
            next_scheduled: 0,
            next_random_fault: None,
            heartbeat: HeartbeatConfig::default(),
            trace,
            checkers: Rc::default(),
            virtual_time_limit: VIRTUAL_TIME_LIMIT_DEFAULT,
            steps: 0,
            trace_mx: false,
            ready_scratch: Vec::new(),
            hooks,
            shut_down: false,
        };
        sim.plan_random_fault();
        sim
    }

    /// Replaces the fault plan (before nodes are added).
    pub fn faults(mut self, faults: Faults) -> Sim {
        self.network = Network::new(
            self.time.clone(),
            ChaCha8Rng::seed_from_u64(self.rng.next_u64()),
            faults.clone(),
        );
        self.faults = faults;
        self.plan_random_fault();
        self
    }

    /// Turns buggify on: every [`hyperion::buggify!`] point met by the world's code is
    /// enabled for the run with some probability, decided from the seed and the call
    /// site, and an enabled point then fires on some of its calls (see
    /// [`BUGGIFY_SITE_PROBABILITY`](crate::BUGGIFY_SITE_PROBABILITY)). Off by default, so
    /// that a world's trace does not depend on the buggify points in the code.
    ///
    /// ```
    /// let mut sim = hyperion_sim::Sim::new(3).buggify();
    /// let node = sim.add_node();
    /// let fired = sim.run_until(&node, |_p| async move {
    ///     (0..100).filter(|_| hyperion::buggify!()).count()
    /// });
    /// assert!(fired.is_ok());
    /// ```
    pub fn buggify(mut self) -> Sim {
        self.set_buggify(true);
        self
    }

    /// [`buggify`](Sim::buggify) on a world in use: on or off from now on.
    pub fn set_buggify(&mut self, on: bool) {
        self.hooks.buggify_on.set(on);
    }

    /// The coverage probes ([`hyperion::sometimes!`], [`hyperion::reached!`]) the run
    /// evaluated so far, by name.
    pub fn probes(&self) -> BTreeMap<&'static str, ProbeCount> {
        self.hooks.probes()
    }

    /// Records a coverage probe from scenario code running outside the world (between
    /// runs); code inside the world uses [`hyperion::sometimes!`].
    pub fn sometimes(&self, name: &'static str, condition: bool) {
        hyperion::probe::SimHooks::probe(&*self.hooks, name, condition);
    }

    /// How often each enabled buggify site fired so far, by `file:line:column`.
    pub fn buggify_fired(&self) -> BTreeMap<&'static str, u64> {
        self.hooks.buggify_fired()
    }

    /// Installs the world's probe and buggify hooks on this thread while the world runs
    /// code (scenario code outside the world, between runs, sees none).
    fn enter(&self) -> hyperion::probe::HooksGuard {
        hyperion::probe::install(self.hooks.clone())
    }

    /// Records every event (for printing, snapshots, and divergence reports).
    pub fn record_trace(self) -> Sim {
        *self.trace.borrow_mut() = Trace::new(true);
        self
    }

    /// Copies every node's management events ([`MxEvent`]) into the trace: each node,
    /// including nodes added later and every restarted incarnation, runs an agent
    /// (registered as [`SIM_TRACE_AGENT_ID`], before the node's boot code) that chains
    /// each event it takes into the trace's hash and, when recording, adds an entry
    /// `mx <event>` at the virtual time the agent handled it. The agents are processes
    /// of their nodes, scheduled like any other, so a seed's trace stays reproducible
    /// (though not the same as without them).
    pub fn trace_mx_events(mut self) -> Sim {
        self.set_trace_mx_events();
        self
    }

    /// [`trace_mx_events`](Sim::trace_mx_events) on a world in use (a scenario given
    /// `&mut Sim`, as [`check_determinism`](crate::check_determinism) gives it).
    pub fn set_trace_mx_events(&mut self) {
        if self.trace_mx {
            return;
        }
        self.trace_mx = true;
        let nodes: Vec<(usize, LocalNode)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.crashed)
            .map(|(index, n)| (index, n.node.clone()))
            .collect();
        for (index, node) in nodes {
            self.start_mx_trace_agent(index, &node);
        }
    }

    fn start_mx_trace_agent(&self, index: usize, node: &LocalNode) {
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

    /// Heartbeat settings of nodes added from now on.
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> Sim {
        self.heartbeat = heartbeat;
        self
    }

    /// Sets the virtual time after which [`run_until`](Sim::run_until) gives up.
    pub fn virtual_time_limit(mut self, limit: Duration) -> Sim {
        self.virtual_time_limit = limit;
        self
    }

    /// [`virtual_time_limit`](Sim::virtual_time_limit) on a world in use.
    pub fn set_virtual_time_limit(&mut self, limit: Duration) {
        self.virtual_time_limit = limit;
    }

    /// The seed this world was made from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The fault plan.
    pub fn fault_plan(&self) -> &Faults {
        &self.faults
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.time.now()
    }

    /// Tasks polled so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Frames the network delivered so far.
    pub fn frames_delivered(&self) -> u64 {
        self.network.state.borrow().frames_delivered
    }

    /// The run's trace.
    pub fn trace(&self) -> std::cell::Ref<'_, Trace> {
        self.trace.borrow()
    }

    /// Guarantees the run broke so far (empty if all held).
    pub fn violations(&self) -> Vec<Violation> {
        self.checkers.borrow().violations.clone()
    }

    /// A handle for code inside the world (launchers) to add nodes and schedule faults.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    fn apply_requests(&mut self) {
        loop {
            let request = self.handle.requests.borrow_mut().pop_front();
            let Some(request) = request else { break };
            match request {
                Request::AddNode(options) => {
                    self.add_node_with(options);
                }
                Request::Schedule(at, fault) => self.schedule(at, fault),
            }
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
            held: std::collections::VecDeque::new(),
        });
        self.handle.reserved.set(self.nodes.len());
        self.start_mx_trace_agent(index, &node);
        if let Some(boot) = self.nodes[index].options.boot.clone() {
            boot(&node);
        }
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

    /// Schedules `fault` at virtual time `at`.
    pub fn schedule(&mut self, at: Duration, fault: Fault) {
        self.scheduled.insert((at, self.next_scheduled), fault);
        self.next_scheduled += 1;
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn total_fault_rate(&self) -> f64 {
        self.faults.break_rate + self.faults.partition_rate + self.faults.crash_rate
    }

    fn plan_random_fault(&mut self) {
        let rate = self.total_fault_rate();
        self.next_random_fault = (rate > 0.0).then(|| {
            let wait = -self.unit().max(1e-12).ln() / rate;
            self.time.now() + Duration::from_secs_f64(wait.min(1e6))
        });
    }

    fn random_fault(&mut self) {
        self.plan_random_fault();
        let alive: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !self.nodes[*i].crashed)
            .collect();
        if alive.len() < 2 {
            return;
        }
        let pick = |sim: &mut Sim, among: &[usize]| {
            among[(sim.rng.next_u64() % among.len() as u64) as usize]
        };
        let mut roll = self.unit() * self.total_fault_rate();
        if roll < self.faults.break_rate {
            let a = pick(self, &alive);
            let b = pick(self, &alive);
            if a != b {
                self.apply(Fault::Break(a, b));
            }
            return;
        }
        roll -= self.faults.break_rate;
        if roll < self.faults.partition_rate {
            let (a, b) = (pick(self, &alive), pick(self, &alive));
            if a == b {
                return;
            }
            let both_ways = self.unit() >= self.faults.one_way_probability;
            self.apply(Fault::Partition {
                from: a,
                to: b,
                both_ways,
            });
            let (low, high) = self.faults.partition_duration;
            let span = high.saturating_sub(low).mul_f64(self.unit());
            let heal_at = self.time.now() + low + span;
            self.schedule(heal_at, Fault::HealAll);
            // A silent cut: only heartbeats can notice it, within their bound.
            let bound = self.death_report_bound();
            if both_ways && low + span > bound {
                let (a, b) = (self.nodes[a].node.id(), self.nodes[b].node.id());
                self.checkers
                    .borrow_mut()
                    .on_cut(self.time.now(), a, b, bound);
            }
            return;
        }
        let crashable: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|i| self.nodes[*i].options.crashable)
            .collect();
        if crashable.is_empty() {
            return;
        }
        let victim = pick(self, &crashable);
        self.apply(Fault::Crash(victim));
        if self.nodes[victim].options.no_restart {
            return;
        }
        if let Some((low, high)) = self.faults.restart_delay {
            let delay = low + high.saturating_sub(low).mul_f64(self.unit());
            let at = self.time.now() + delay;
            self.schedule(at, Fault::Restart(victim));
        }
    }

    /// Applies a fault now.
    pub fn apply(&mut self, fault: Fault) {
        let _hooks = self.enter();
        let now = self.time.now();
        self.trace
            .borrow_mut()
            .event(now, None, 3, format!("{fault:?}").as_bytes(), || {
                format!("fault {fault:?}")
            });
        tracing::debug!(?fault, at = ?now, "fault");
        match fault {
            Fault::Break(a, b) => {
                let (a, b) = (self.nodes[a].node.id(), self.nodes[b].node.id());
                self.network
                    .state
                    .borrow_mut()
                    .break_connection(a, b, &[a, b]);
            }
            Fault::Partition {
                from,
                to,
                both_ways,
            } => {
                let (a, b) = (self.nodes[from].node.id(), self.nodes[to].node.id());
                let mut network = self.network.state.borrow_mut();
                network.partition(a.address, b.address);
                if both_ways {
                    network.partition(b.address, a.address);
                }
            }
            Fault::HealAll => {
                self.network.state.borrow_mut().heal_all();
                self.checkers.borrow_mut().on_heal(now, false);
            }
            Fault::Crash(index) => self.crash(index),
            Fault::Stop(index) => {
                if let Some(slot) = self.nodes.get_mut(index) {
                    if !slot.crashed {
                        slot.crashed = true;
                        slot.node.shutdown();
                        self.checkers.borrow_mut().on_stop(slot.node.id());
                    }
                }
            }
            Fault::Restart(index) => self.restart(index),
            Fault::Slow(index, cost) => self.nodes[index].poll_cost = cost,
            Fault::Pause(index, duration) => self.pause(index, duration),
        }
    }

    fn crash(&mut self, index: usize) {
        if self.nodes[index].crashed {
            return;
        }
        let reset = self.unit() < self.faults.crash_reset_probability;
        let id = self.nodes[index].node.id();
        self.network.state.borrow_mut().crash(id, reset);
        self.nodes[index].crashed = true;
        self.nodes[index].node.crash();
        let bound = self.death_report_bound();
        self.checkers
            .borrow_mut()
            .on_crash(self.time.now(), id, bound);
    }

    /// The world time within which every node that knew a crashed node must report it
    /// lost: the heartbeat bound on the slowest clock, plus network delays and a slow
    /// node's backlog.
    fn death_report_bound(&self) -> Duration {
        let local = self.heartbeat.detection_bound() + self.heartbeat.interval;
        let slowest = self
            .nodes
            .iter()
            .map(|n| n.clock.world_span(local))
            .max()
            .unwrap_or(local);
        slowest + 2 * self.faults.latency_bound() + self.faults.slow_poll_cost * 1000
    }

    fn restart(&mut self, index: usize) {
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
    }

    /// Runs one step: polls one ready task chosen at random across all nodes, or, if
    /// none is ready, advances virtual time to the next timer, delivery or fault and
    /// applies everything due then. Returns `false` when nothing can ever happen again.
    pub fn step(&mut self) -> bool {
        let _hooks = self.enter();
        if !self.handle.requests.borrow().is_empty() {
            self.apply_requests();
        }
        let now = self.time.now();
        // Each node's ready count, read once per step (0 for nodes that cannot run).
        let mut ready = std::mem::take(&mut self.ready_scratch);
        ready.clear();
        let mut ready_total = 0;
        for sim_node in &self.nodes {
            let len = if sim_node.crashed {
                0
            } else {
                sim_node.node.drain_inbox();
                if sim_node.busy_until <= now {
                    sim_node.node.ready_len()
                } else {
                    0
                }
            };
            ready.push(len);
            ready_total += len;
        }
        if ready_total > 0 {
            let mut pick = (self.rng.next_u64() % ready_total as u64) as usize;
            for (index, sim_node) in self.nodes.iter_mut().enumerate() {
                let len = ready[index];
                if pick < len {
                    self.ready_scratch = ready;
                    let pid = sim_node.node.run_ready_at(pick);
                    sim_node.busy_until = now + sim_node.poll_cost;
                    self.steps += 1;
                    let local = pid.map_or(0, |pid| pid.local);
                    self.trace.borrow_mut().event(
                        now,
                        Some(index),
                        0,
                        &local.to_le_bytes(),
                        || format!("poll pid {local}"),
                    );
                    return true;
                }
                pick -= len;
            }
            unreachable!("the pick is below the total");
        }
        self.ready_scratch = ready;
        let Some(next) = self.next_event_time() else {
            return false;
        };
        self.time.advance_to(next);
        self.apply_due();
        true
    }

    /// Hands paused nodes that resumed what the network delivered while they slept.
    fn release_held(&mut self, now: Duration) {
        for index in 0..self.nodes.len() {
            if self.nodes[index].paused_until > now || self.nodes[index].held.is_empty() {
                continue;
            }
            let held = std::mem::take(&mut self.nodes[index].held);
            for delivery in held {
                self.deliver(now, delivery);
            }
        }
    }

    /// Stops node `index` for `duration`, as SIGSTOP does: it runs nothing, fires no
    /// timer and reads nothing, while its connections stay open; then it resumes. Its
    /// peers hear nothing from it, so only their heartbeats can notice: a pause longer
    /// than the heartbeat bound must be reported by every node that knew it, in time.
    fn pause(&mut self, index: usize, duration: Duration) {
        let now = self.time.now();
        let Some(slot) = self.nodes.get_mut(index) else {
            return;
        };
        if slot.crashed {
            return;
        }
        slot.paused_until = slot.paused_until.max(now + duration);
        slot.busy_until = slot.busy_until.max(now + duration);
        let (id, until) = (slot.node.id(), slot.paused_until);
        let bound = self.death_report_bound();
        let mut checkers = self.checkers.borrow_mut();
        checkers.on_pause(id, until);
        if duration > bound {
            checkers.on_silence(now, id, bound);
        }
    }

    fn next_event_time(&self) -> Option<Duration> {
        fn earliest(next: &mut Option<Duration>, at: Duration) {
            *next = Some(next.map_or(at, |next| next.min(at)));
        }
        let mut next: Option<Duration> = None;
        let mut consider = |at: Duration| earliest(&mut next, at);
        for sim_node in &self.nodes {
            if sim_node.crashed {
                continue;
            }
            if let Some(deadline) = sim_node.node.next_deadline() {
                consider(sim_node.clock.to_world(deadline).max(sim_node.paused_until));
            }
            if sim_node.node.ready_len() > 0 {
                consider(sim_node.busy_until);
            }
            if !sim_node.held.is_empty() {
                consider(sim_node.paused_until);
            }
        }
        if let Some(due) = self.network.state.borrow().next_due() {
            consider(due);
        }
        if let Some((at, _)) = self.scheduled.keys().next() {
            consider(*at);
        }
        if !self.handle.requests.borrow().is_empty() {
            consider(self.time.now());
        }
        // Random faults alone do not keep a finished world going.
        if next.is_some() {
            if let Some(at) = self.next_random_fault {
                earliest(&mut next, at);
            }
        }
        next
    }

    fn apply_due(&mut self) {
        let now = self.time.now();
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let fault = entry.remove();
            self.apply(fault);
        }
        if self.next_random_fault.is_some_and(|at| at <= now) {
            self.random_fault();
        }
        self.release_held(now);
        loop {
            let delivery = self.network.state.borrow_mut().pop_due(now);
            let Some(delivery) = delivery else { break };
            self.deliver(now, delivery);
        }
        let fifo: Vec<String> =
            std::mem::take(&mut self.network.state.borrow_mut().fifo_violations);
        for detail in fifo {
            self.checkers.borrow_mut().on_frame_fifo(now, detail);
        }
        for (index, sim_node) in self.nodes.iter().enumerate() {
            if sim_node.crashed || sim_node.paused_until > now {
                continue;
            }
            let fired = sim_node.node.fire_due_timers();
            if fired > 0 {
                self.trace.borrow_mut().event(
                    now,
                    Some(index),
                    2,
                    &(fired as u64).to_le_bytes(),
                    || format!("{fired} timer(s) fired"),
                );
            }
        }
        self.checkers.borrow_mut().check_deadlines(now);
    }

    fn deliver(&mut self, now: Duration, delivery: Delivery) {
        let Some(index) = self
            .nodes
            .iter()
            .position(|n| !n.crashed && n.node.id() == delivery.to)
        else {
            return;
        };
        if self.nodes[index].paused_until > now {
            self.nodes[index].held.push_back(delivery);
            return;
        }
        let mut trace = self.trace.borrow_mut();
        match &delivery.event {
            TransportEvent::Received(from, bytes) => {
                trace.event(now, Some(index), 1, bytes, || describe_frame(*from, bytes))
            }
            other => trace.event(now, Some(index), 1, format!("{other:?}").as_bytes(), || {
                format!("transport {other:?}")
            }),
        }
        drop(trace);
        if let TransportEvent::Received(from, _) = &delivery.event {
            let mut checkers = self.checkers.borrow_mut();
            if checkers.awaiting() {
                checkers.on_heard(now, delivery.to, *from);
            }
        }
        self.nodes[index]
            .node
            .handle_transport_event(delivery.event);
    }

    /// Runs `body` as a process on the only node of a fresh, fault-free world seeded
    /// with `seed`, until it returns; then shuts the node down. The shortest way to test
    /// code of one node under virtual time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let slept = hyperion_sim::Sim::run_alone(7, |p| async move {
    ///     p.sleep(Duration::from_secs(3600)).await; // virtual: instant
    ///     "done"
    /// });
    /// assert_eq!(slept.unwrap(), "done");
    /// ```
    pub fn run_alone<F, Fut, T>(seed: u64, body: F) -> Result<T, SimError>
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let node = sim.add_node();
        let result = sim.run_until(&node, body);
        node.shutdown();
        result
    }

    /// Spawns `body` on `node` and runs the world until it returns.
    pub fn run_until<F, Fut, T>(&mut self, node: &LocalNode, body: F) -> Result<T, SimError>
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        let outcome: Rc<RefCell<Option<Result<T, DiedReason>>>> = Rc::default();
        let slot = outcome.clone();
        node.spawn_with_result(body, move |result| *slot.borrow_mut() = Some(result));
        loop {
            if let Some(result) = outcome.borrow_mut().take() {
                return result.map_err(SimError::Died);
            }
            if self.time.now() > self.virtual_time_limit {
                return Err(SimError::TimeLimit {
                    limit: self.virtual_time_limit,
                });
            }
            if !self.step() {
                return Err(SimError::Stalled { at: self.now() });
            }
        }
    }

    /// Runs the world for `duration` of virtual time (or until nothing can happen).
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now() + duration;
        loop {
            let now = self.now();
            let ready = self
                .nodes
                .iter()
                .any(|n| !n.crashed && n.busy_until <= now && n.node.ready_len() > 0);
            if !ready && self.next_event_time().is_none_or(|next| next > until) {
                self.time.advance_to(until);
                return;
            }
            if !self.step() {
                return;
            }
        }
    }

    /// Shuts every node down and lets the world settle; returns what is left anywhere
    /// (processes, timers, channels, names, connections, frames in flight). A scenario
    /// that leaks shows it here.
    pub fn shutdown(&mut self) -> Leftovers {
        let _hooks = self.enter();
        self.shut_down = true;
        for sim_node in &self.nodes {
            if !sim_node.crashed {
                sim_node.node.shutdown();
            }
        }
        for sim_node in &mut self.nodes {
            sim_node.crashed = true;
        }
        let mut leftovers = Leftovers::default();
        for sim_node in &self.nodes {
            let resources = sim_node.node.resources();
            leftovers.processes += resources.processes;
            leftovers.timers += resources.timers;
            leftovers.channels += resources.channels;
            leftovers.names += resources.names;
            leftovers.agents += hyperion::mx::mx_agents(&sim_node.node).len();
        }
        leftovers.connections = self.network.state.borrow().connection_count();
        leftovers
    }

    /// The liveness phase, run after a scenario's fault phase (as TigerBeetle's simulator
    /// does): random faults stop, scheduled crashes, breaks, partitions and slowdowns
    /// are dropped (scheduled stops, restarts and heals still happen), every partition
    /// heals, paused nodes resume and slow nodes recover; then the world runs for
    /// [`liveness_bound`](Sim::liveness_bound) of virtual time, within which every
    /// loss must have been noticed and every notification delivered.
    pub fn liveness_phase(&mut self) {
        self.next_random_fault = None;
        self.faults.break_rate = 0.0;
        self.faults.partition_rate = 0.0;
        self.faults.crash_rate = 0.0;
        self.scheduled.retain(|_, fault| {
            matches!(fault, Fault::Stop(_) | Fault::Restart(_) | Fault::HealAll)
        });
        self.apply(Fault::HealAll);
        let now = self.now();
        for sim_node in &mut self.nodes {
            sim_node.poll_cost = Duration::ZERO;
            // Paused nodes resume (their held deliveries arrive at the next step).
            sim_node.paused_until = sim_node.paused_until.min(now);
            sim_node.busy_until = sim_node.busy_until.min(now);
        }
        self.checkers.borrow_mut().on_heal(now, true);
        let bound = self.liveness_bound();
        self.run_for(bound);
    }

    /// How long the liveness phase runs: time for any node to notice any loss (the
    /// heartbeat bound on the slowest clock, plus delays), for a failed connection
    /// attempt to be reported, and for the notifications to arrive.
    pub fn liveness_bound(&self) -> Duration {
        self.death_report_bound() + crate::network::CONNECT_TIMEOUT + 2 * self.heartbeat.interval
    }

    /// The checker of silence: every monitor and link still owed a notification must
    /// have a live target (and a live watcher; a dead watcher is owed nothing). Meant
    /// for the end of a run, after [`liveness_phase`](Sim::liveness_phase); returns the
    /// violations it added.
    pub fn check_silence(&mut self) -> Vec<Violation> {
        let now = self.now();
        let pending = self.checkers.borrow().pending();
        let mut found = Vec::new();
        for owed in pending {
            let (watcher, target, what) = match owed {
                Pending::Monitor(monitor_ref, watcher) => (
                    watcher,
                    monitor_ref.target,
                    format!("monitor {monitor_ref:?}"),
                ),
                Pending::Link(linker, target) => (linker, target, "link".to_string()),
            };
            if target.local == 0 || !self.is_alive(watcher) || self.is_alive(target) {
                continue;
            }
            found.push(Violation {
                at: now,
                rule: "a monitor or link fires once its target is gone",
                detail: format!("{watcher} was never told of the death of {target} ({what})"),
            });
        }
        self.checkers
            .borrow_mut()
            .violations
            .extend(found.iter().cloned());
        found
    }

    /// Whether process `pid` is alive in the world now.
    pub fn is_alive(&self, pid: hyperion::ProcessId) -> bool {
        self.nodes
            .iter()
            .any(|n| !n.crashed && n.node.id() == pid.node && n.node.is_alive(pid))
    }

    /// Ends a run as the runners do: the [`liveness_phase`](Sim::liveness_phase), the
    /// [checker of silence](Sim::check_silence), then [`shutdown`](Sim::shutdown),
    /// after which nothing may be left (a leftover is a violation). Returns the
    /// violations of the whole run.
    pub fn finish(&mut self) -> Vec<Violation> {
        self.liveness_phase();
        self.check_silence();
        let leftovers = self.shutdown();
        if leftovers != Leftovers::default() {
            let now = self.now();
            self.checkers.borrow_mut().violate(
                now,
                "nothing is left after shutdown",
                format!("{leftovers:?}"),
            );
        }
        self.violations()
    }

    /// Breaks the simulator on purpose: jitter may reorder frames on a connection. Only
    /// for proving that the FIFO checker catches such a bug.
    #[doc(hidden)]
    pub fn break_fifo_for_testing(&mut self) {
        self.network.state.borrow_mut().reorder_for_testing = true;
    }

    /// Breaks the simulator on purpose: every frame is delivered twice. Only for proving
    /// that the FIFO checker catches such a bug.
    #[doc(hidden)]
    pub fn duplicate_frames_for_testing(&mut self) {
        self.network.state.borrow_mut().duplicate_for_testing = true;
    }

    /// Frames and events in flight on the network.
    pub fn in_flight(&self) -> usize {
        self.network.state.borrow().in_flight_count()
    }
}

/// What a world still held after [`Sim::shutdown`]; all zero if nothing leaked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Live processes.
    pub processes: usize,
    /// Armed timers.
    pub timers: usize,
    /// Open channels.
    pub channels: usize,
    /// Registered names.
    pub names: usize,
    /// Open connections.
    pub connections: usize,
    /// Running management agents.
    pub agents: usize,
}

impl Drop for Sim {
    /// A world dropped without [`Sim::shutdown`] shuts its nodes down, so their
    /// processes end and the finalizers of their management agents run.
    fn drop(&mut self) {
        // While unwinding from a panic, a second panic (a finalizer's) would abort the
        // test run: the first panic tells the story, so leave the world as it is.
        if !self.shut_down && !std::thread::panicking() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.shutdown()));
        }
    }
}

fn describe_frame(from: NodeId, bytes: &[u8]) -> String {
    match decode_frame(bytes) {
        Ok(Frame::Data {
            to,
            from: sender,
            fingerprint,
            ..
        }) => format!("data {sender} -> {to} ({fingerprint:?})"),
        Ok(Frame::ChannelData { port, .. }) => format!("channel data for {port:?}"),
        Ok(Frame::NamedData { name, from, .. }) => format!("named data {from} -> {name:?}"),
        Ok(Frame::Control(control)) => format!("control from {from}: {control:?}"),
        Ok(Frame::KeepAlive) => format!("keep-alive from {from}"),
        Err(err) => format!("bad frame from {from}: {err}"),
    }
}
