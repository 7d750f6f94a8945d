//! The simulated world: nodes driven from one thread, the next task chosen by a seeded
//! RNG across all nodes, virtual time jumping to the next timer when nothing is ready.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyperion::runtime::blocking::Inline;
use hyperion::{DiedReason, LocalNode, NodeEnv, NodeId, Process};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::{NodeClock, WorldTime};

/// Virtual time after which [`Sim::run_until`] gives up, unless changed.
pub const VIRTUAL_TIME_LIMIT_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// Why a simulated run did not produce its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// The program's process died before returning.
    Died(DiedReason),
    /// Nothing could ever happen again (no ready task, no timer), and the program had not
    /// returned: a deadlock.
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
                    "the world stalled at {at:?}: nothing ready and no timer armed"
                )
            }
            SimError::TimeLimit { limit } => write!(f, "virtual time limit {limit:?} reached"),
        }
    }
}

impl std::error::Error for SimError {}

struct SimNode {
    node: LocalNode,
    clock: Rc<NodeClock>,
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
///     p.now()
/// });
/// assert_eq!(waited, Ok(Duration::from_secs(3600)));
/// ```
pub struct Sim {
    seed: u64,
    rng: ChaCha8Rng,
    time: WorldTime,
    nodes: Vec<SimNode>,
    virtual_time_limit: Duration,
    steps: u64,
}

impl Sim {
    /// A world with no nodes, all of whose choices derive from `seed`.
    pub fn new(seed: u64) -> Sim {
        Sim {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            time: WorldTime::default(),
            nodes: Vec::new(),
            virtual_time_limit: VIRTUAL_TIME_LIMIT_DEFAULT,
            steps: 0,
        }
    }

    /// The seed this world was made from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Sets the virtual time after which [`run_until`](Sim::run_until) gives up.
    pub fn virtual_time_limit(mut self, limit: Duration) -> Sim {
        self.virtual_time_limit = limit;
        self
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.time.now()
    }

    /// Tasks polled so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Adds a node and returns it.
    pub fn add_node(&mut self) -> LocalNode {
        let index = self.nodes.len() as u32;
        let address = SocketAddr::from(([10, 0, (index >> 8) as u8, index as u8], 7000));
        let id = NodeId {
            address,
            incarnation: self.rng.next_u64(),
        };
        let clock = Rc::new(NodeClock::new(self.time.clone(), Duration::ZERO));
        let node = LocalNode::new(
            id,
            NodeEnv::new(clock.clone(), self.rng.next_u64(), Rc::new(Inline)),
        );
        self.nodes.push(SimNode {
            node: node.clone(),
            clock,
        });
        node
    }

    /// The world's nodes, in the order they were added.
    pub fn nodes(&self) -> Vec<LocalNode> {
        self.nodes.iter().map(|n| n.node.clone()).collect()
    }

    /// Runs one step: polls one ready task chosen at random across all nodes, or, if
    /// none is ready, fires the earliest timers (advancing virtual time to them).
    /// Returns `false` when nothing can ever happen again.
    pub fn step(&mut self) -> bool {
        for sim_node in &self.nodes {
            sim_node.node.drain_inbox();
        }
        let ready = self.ready_len();
        if ready > 0 {
            let mut pick = (self.rng.next_u64() % ready as u64) as usize;
            for sim_node in &self.nodes {
                let len = sim_node.node.ready_len();
                if pick < len {
                    sim_node.node.run_ready_at(pick);
                    self.steps += 1;
                    return true;
                }
                pick -= len;
            }
            unreachable!("the pick is below the total");
        }
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.time.advance_to(next);
        for sim_node in &self.nodes {
            sim_node.node.fire_due_timers();
        }
        true
    }

    fn ready_len(&self) -> usize {
        self.nodes.iter().map(|n| n.node.ready_len()).sum()
    }

    /// The world time of the earliest armed timer on any node.
    fn next_deadline(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .filter_map(|n| n.node.next_deadline().map(|d| n.clock.to_world(d)))
            .min()
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
            if self.ready_len() == 0 && self.next_deadline().is_none_or(|next| next > until) {
                self.time.advance_to(until);
                return;
            }
            if !self.step() {
                return;
            }
        }
    }
}
