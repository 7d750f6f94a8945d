//! The simulated world: nodes driven from one thread, the next task chosen by a seeded
//! RNG across all nodes, virtual time jumping to the next timer, delivery or fault when
//! nothing is ready.
//!
//! One file per concern: [`Sim`], its settings and what it reports live here; how nodes
//! are made and remade in `node`; the handle code inside the world uses in `handle`;
//! faults, random and scheduled, in `inject`; the scheduler's step (the next task, the
//! next event, deliveries) in `step`; the end of a run (liveness phase, checker of
//! silence, shutdown) in `end`.

mod end;
mod handle;
mod inject;
mod node;
mod step;
mod timers;

pub use end::Leftovers;
pub use handle::SimHandle;
pub use node::{Boot, NodeOptions};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use hyperion::{DiedReason, HeartbeatConfig, LocalNode};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkers::{Checkers, Violation};
use crate::clock::WorldTime;
use crate::faults::{Fault, Faults};
use crate::network::Network;
use crate::plan::{Plan, PlanFault};
use crate::probes::{ProbeCount, WorldHooks};
use crate::trace::Trace;
use node::SimNode;

/// The agent id under which [`Sim::trace_mx_events`] runs its agent on every node.
pub const SIM_TRACE_AGENT_ID: &str = "hyperion-sim.mx-trace";

/// Virtual time after which [`Sim::run_until`] gives up, unless changed.
pub const VIRTUAL_TIME_LIMIT_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// Mixed into the seed of the generator of random faults, so that it differs from the
/// world's own generator.
const FAULT_RNG_SALT: u64 = 0x6661_756c_7473_2121;

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
    /// Draws of random faults only: the world's generator (`rng`) then draws the same
    /// whether faults come at random or from a plan, so a plan replays the same world.
    fault_rng: ChaCha8Rng,
    /// Whether faults come from a plan ([`Sim::follow_plan`]) instead of at random.
    following_plan: bool,
    /// The plan's faults still to come, in time order.
    planned: std::collections::VecDeque<PlanFault>,
    /// The faults injected so far (random or planned), for [`Sim::injected`].
    injected: Vec<PlanFault>,
    /// The plan's clock drifts, by node index, applied as each node is made.
    planned_drift: BTreeMap<usize, i32>,
    heartbeat: HeartbeatConfig,
    trace: Rc<RefCell<Trace>>,
    checkers: Rc<RefCell<Checkers>>,
    virtual_time_limit: Duration,
    steps: u64,
    trace_mx: bool,
    /// Per-step scratch: each node's ready count.
    ready_scratch: Vec<usize>,
    /// Each node's next timer event, in time order (see `timers`).
    timers: timers::TimerQueue,
    /// Nodes holding deliveries that arrived while they were paused.
    holding: std::collections::BTreeSet<usize>,
    /// Nodes whose last due timers were made late (`SimNode::timers_lagged`).
    lagged: std::collections::BTreeSet<usize>,
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
            fault_rng: ChaCha8Rng::seed_from_u64(seed ^ FAULT_RNG_SALT),
            following_plan: false,
            planned: std::collections::VecDeque::new(),
            injected: Vec::new(),
            planned_drift: BTreeMap::new(),
            heartbeat: HeartbeatConfig::default(),
            trace,
            checkers: Rc::default(),
            virtual_time_limit: VIRTUAL_TIME_LIMIT_DEFAULT,
            steps: 0,
            trace_mx: false,
            ready_scratch: Vec::new(),
            timers: timers::TimerQueue::default(),
            holding: std::collections::BTreeSet::new(),
            lagged: std::collections::BTreeSet::new(),
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

    /// What the world injected so far, as an explicit [`Plan`]: the random faults (with
    /// every decision about each: which nodes, which way, how long) and the buggify
    /// firings. Faults the scenario itself applied or scheduled are not in it (the
    /// scenario applies them again when replayed).
    pub fn injected(&self) -> Plan {
        Plan {
            scenario: String::new(),
            seed: self.seed,
            faults: self.injected.clone(),
            buggify: self.hooks.buggify_log(),
        }
    }

    /// Injects `plan`'s faults and buggify firings instead of random ones: no random
    /// fault is drawn, each planned fault comes at its time, and a buggify site fires
    /// exactly on the calls the plan lists (when buggify is on). The world's other
    /// choices still come from its seed; replaying a failing run's
    /// [`injected`](Sim::injected) plan in a world of the same seed runs it again.
    ///
    /// ```
    /// use hyperion_sim::{Plan, Sim};
    /// let plan: Plan = "seed 5\nfault 1000000000 break 0 1\n".parse().unwrap();
    /// let mut sim = Sim::new(5).follow_plan(&plan);
    /// let (a, _b) = (sim.add_node(), sim.add_node());
    /// // Like random faults, planned ones do not keep an idle world going: sleep.
    /// let slept = sim.run_until(&a, |p| async move {
    ///     p.sleep(std::time::Duration::from_secs(2)).await
    /// });
    /// assert!(slept.is_ok());
    /// assert_eq!(sim.injected().faults, plan.faults);
    /// ```
    pub fn follow_plan(mut self, plan: &Plan) -> Sim {
        self.following_plan = true;
        self.next_random_fault = None;
        let mut faults = plan.faults.clone();
        faults.sort_by_key(|step| step.at);
        // A clock's rate is set when its node is made: drifts wait for their nodes.
        faults.retain(|step| match step.fault {
            crate::plan::PlannedFault::Drift { index, ppm } => {
                self.planned_drift.insert(index, ppm);
                false
            }
            _ => true,
        });
        self.planned = faults.into();
        self.hooks.follow_buggify(&plan.buggify);
        self
    }

    /// Makes connections as the TCP transport makes them, from now on (call it before the
    /// nodes talk): each node dials its own connection, two dials of a pair can cross,
    /// and the TCP transport's arbitration ([`hyperion::transport::arbitration`]) decides
    /// which one the pair keeps; closes arrive late, behind the frames sent before them;
    /// a break reaches each side after its own delay; a node that crashed silently leaves
    /// its peers' connections half-open until they send or their heartbeats give up.
    /// A world that two ends disagree on the kept connection reports a violation.
    ///
    /// Off by default: one shared connection per pair, closed at once, is faster and
    /// keeps the traces of existing seeds.
    ///
    /// ```
    /// let mut sim = hyperion_sim::Sim::new(1).arbitrated_connections();
    /// let (a, b) = (sim.add_node(), sim.add_node());
    /// let b_id = b.id();
    /// let sent = sim.run_until(&a, move |p| async move {
    ///     p.nsend_remote(b_id, "nobody", 1u8);
    /// });
    /// assert!(sent.is_ok());
    /// ```
    pub fn arbitrated_connections(mut self) -> Sim {
        self.set_arbitrated_connections();
        self
    }

    /// [`arbitrated_connections`](Sim::arbitrated_connections) on a world in use (a
    /// scenario's), before its nodes talk.
    pub fn set_arbitrated_connections(&mut self) {
        self.network.state.borrow_mut().arbitrate();
    }

    /// With [`arbitrated_connections`](Sim::arbitrated_connections): the pairs of nodes
    /// whose two ends now hold different connections as established (none once the
    /// world is at rest).
    pub fn arbitration_disagreements(&self) -> Vec<String> {
        let network = self.network.state.borrow();
        network
            .arbitrated
            .as_ref()
            .map(|arbitrated| arbitrated.disagreements())
            .unwrap_or_default()
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
