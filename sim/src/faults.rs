//! Fault plans: what can go wrong in a simulated world, and how often.
//!
//! Every fault honours the transport contract (frames on one connection are never
//! reordered or duplicated): links get latency and jitter, connections break,
//! partitions (one-way or two-way) come and heal, nodes crash (their processes and
//! in-flight frames vanish) and restart as new incarnations, nodes run slow, and clocks
//! drift.
//!
//! [`Faults::swarm`] draws the rates themselves from the seed (swarm testing, as
//! FoundationDB and TigerBeetle do): some seeds are calm, some brutal, so one test
//! explores many kinds of weather.

use std::time::Duration;

use proptest::prelude::*;

use crate::plan::{Plan, PlanFault, PlannedFault};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Rates and ranges of the faults injected at random into a world.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Range of the base one-way latency of each link (drawn once per link).
    pub latency: (Duration, Duration),
    /// Extra latency drawn per frame, up to this (never reorders a connection).
    pub jitter: Duration,
    /// Connection breaks per second of virtual time, world-wide.
    pub break_rate: f64,
    /// Partitions started per second of virtual time.
    pub partition_rate: f64,
    /// How long a partition lasts before it heals.
    pub partition_duration: (Duration, Duration),
    /// Chance that a partition blocks one direction only.
    pub one_way_probability: f64,
    /// Crashes of crashable nodes per second of virtual time.
    pub crash_rate: f64,
    /// Chance that a crash resets connections (peers notice at once, like a killed
    /// process); otherwise the host goes silent and heartbeats must notice.
    pub crash_reset_probability: f64,
    /// Delay before a crashed node restarts as a new incarnation (`None`: it stays down).
    pub restart_delay: Option<(Duration, Duration)>,
    /// Chance that a node is slow: each task it runs costs `slow_poll_cost` of time.
    pub slow_node_probability: f64,
    /// Virtual time a slow node spends per task.
    pub slow_poll_cost: Duration,
    /// Largest clock drift of a node, in parts per million (either way).
    pub clock_drift_ppm_max: u32,
}

impl Faults {
    /// No faults at all: fixed 100 µs links, no jitter.
    pub fn none() -> Faults {
        Faults {
            latency: (Duration::from_micros(100), Duration::from_micros(100)),
            jitter: Duration::ZERO,
            break_rate: 0.0,
            partition_rate: 0.0,
            partition_duration: (Duration::from_secs(1), Duration::from_secs(1)),
            one_way_probability: 0.0,
            crash_rate: 0.0,
            crash_reset_probability: 0.0,
            restart_delay: None,
            slow_node_probability: 0.0,
            slow_poll_cost: Duration::ZERO,
            clock_drift_ppm_max: 0,
        }
    }

    /// Realistic latencies and jitter, but nothing breaks.
    pub fn calm() -> Faults {
        Faults {
            latency: (Duration::from_micros(50), Duration::from_millis(5)),
            jitter: Duration::from_millis(1),
            ..Faults::none()
        }
    }

    /// Every kind of fault, often.
    pub fn brutal() -> Faults {
        Faults {
            latency: (Duration::from_micros(50), Duration::from_millis(50)),
            jitter: Duration::from_millis(20),
            break_rate: 2.0,
            partition_rate: 1.0,
            partition_duration: (Duration::from_millis(100), Duration::from_secs(10)),
            one_way_probability: 0.5,
            crash_rate: 0.5,
            crash_reset_probability: 0.5,
            restart_delay: Some((Duration::from_millis(100), Duration::from_secs(10))),
            slow_node_probability: 0.3,
            slow_poll_cost: Duration::from_millis(1),
            clock_drift_ppm_max: 100_000,
        }
    }

    /// Fault rates drawn from `seed`: each kind is off with some probability, and
    /// otherwise gets a rate anywhere between gentle and brutal.
    ///
    /// ```
    /// use hyperion_sim::Faults;
    /// assert_eq!(Faults::swarm(7), Faults::swarm(7));
    /// ```
    pub fn swarm(seed: u64) -> Faults {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ea5_0a1f_5ea5_0a1f);
        let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let brutal = Faults::brutal();
        let mut maybe = |rate: f64| {
            if unit() < 0.4 {
                0.0
            } else {
                rate * unit()
            }
        };
        let break_rate = maybe(brutal.break_rate);
        let partition_rate = maybe(brutal.partition_rate);
        let crash_rate = maybe(brutal.crash_rate);
        let slow_node_probability = maybe(brutal.slow_node_probability);
        let drift = maybe(brutal.clock_drift_ppm_max as f64) as u32;
        let latency_max = Duration::from_micros(100 + (unit() * 50_000.0) as u64);
        let jitter = latency_max.mul_f64(unit());
        let one_way_probability = unit();
        let crash_reset_probability = unit();
        let restart = unit() < 0.7;
        Faults {
            latency: (Duration::from_micros(50), latency_max),
            jitter,
            break_rate,
            partition_rate,
            partition_duration: brutal.partition_duration,
            one_way_probability,
            crash_rate,
            crash_reset_probability,
            restart_delay: restart.then_some((Duration::from_millis(100), Duration::from_secs(5))),
            slow_node_probability,
            slow_poll_cost: brutal.slow_poll_cost,
            clock_drift_ppm_max: drift,
        }
    }

    /// The largest one-way delay a frame can see on a healthy link.
    pub fn latency_bound(&self) -> Duration {
        self.latency.1 + self.jitter
    }

    /// A `proptest` strategy over explicit fault plans: up to [`PLAN_FAULTS_MAX`] timed
    /// faults (breaks, partitions with their duration, crashes with or without a
    /// restart, slow spells, silent pauses, clock drifts) among [`PLAN_NODES`] nodes
    /// within the first [`PLAN_SPAN`] of virtual time. Node 0 is, by convention, the
    /// test's own node (the one whose body `run_until` runs): it is never crashed nor
    /// paused. Follow a plan with [`Sim::follow_plan`](crate::Sim::follow_plan); when a
    /// property fails, proptest shrinks the plan itself (fewer faults, earlier, shorter,
    /// on lower nodes), so the failure it reports is a small list of named faults.
    ///
    /// ```
    /// use hyperion_sim::{Faults, Sim};
    /// use proptest::strategy::{Strategy, ValueTree};
    /// use proptest::test_runner::TestRunner;
    ///
    /// let plan = Faults::strategy().new_tree(&mut TestRunner::deterministic()).unwrap().current();
    /// assert!(plan.faults.len() <= hyperion_sim::PLAN_FAULTS_MAX);
    /// let mut sim = Sim::new(7).follow_plan(&plan);
    /// let node = sim.add_node();
    /// let slept = sim.run_until(&node, |p| async move { p.sleep(std::time::Duration::from_secs(1)).await });
    /// assert!(slept.is_ok());
    /// ```
    pub fn strategy() -> impl Strategy<Value = Plan> {
        Faults::plans(PLAN_NODES, PLAN_SPAN, PLAN_FAULTS_MAX)
    }

    /// [`strategy`](Faults::strategy) for `nodes` nodes (at least 2; node 0 never crashed
    /// nor paused), faults within the first `span` of virtual time, at most `faults_max`
    /// of them.
    pub fn plans(nodes: usize, span: Duration, faults_max: usize) -> impl Strategy<Value = Plan> {
        let nodes = nodes.max(2);
        let span_ms = (span.as_millis() as u64).max(1);
        let step = (0..span_ms, planned_fault(nodes)).prop_map(|(at_ms, fault)| PlanFault {
            // A clock's rate is set when its node is made: a drift has no time.
            at: match fault {
                PlannedFault::Drift { .. } => Duration::ZERO,
                _ => Duration::from_millis(at_ms),
            },
            fault,
        });
        proptest::collection::vec(step, 0..=faults_max).prop_map(|faults| Plan {
            scenario: String::new(),
            seed: 0,
            faults,
            buggify: Vec::new(),
        })
    }

    /// A `proptest` strategy over fault rates, from calm to brutal (swarm-drawn): random
    /// weather a seed decides, rather than a plan proptest can shrink.
    pub fn rates_strategy() -> impl Strategy<Value = Faults> {
        prop_oneof![
            1 => Just(Faults::none()),
            1 => Just(Faults::calm()),
            1 => Just(Faults::brutal()),
            5 => any::<u64>().prop_map(Faults::swarm),
        ]
    }
}

/// Nodes the plans of [`Faults::strategy`] name.
pub const PLAN_NODES: usize = 4;
/// Virtual time within which the plans of [`Faults::strategy`] inject their faults.
pub const PLAN_SPAN: Duration = Duration::from_secs(60);
/// Most faults in a plan of [`Faults::strategy`].
pub const PLAN_FAULTS_MAX: usize = 6;

/// One fault among `nodes` nodes; node 0 is never crashed nor paused. The variants come
/// in the order proptest shrinks towards (a break is the simplest fault), and every
/// number shrinks towards the mildest value.
fn planned_fault(nodes: usize) -> impl Strategy<Value = PlannedFault> {
    let millis = |low: u64, high: u64| (low..high).prop_map(Duration::from_millis);
    let pair = (0..nodes, 1..nodes).prop_map(move |(a, offset)| (a, (a + offset) % nodes));
    prop_oneof![
        pair.clone().prop_map(|(a, b)| PlannedFault::Break(a, b)),
        (pair, any::<bool>(), millis(100, 10_000)).prop_map(
            |((from, to), both_ways, heal_after)| {
                PlannedFault::Partition {
                    from,
                    to,
                    both_ways,
                    heal_after,
                }
            }
        ),
        (
            1..nodes,
            any::<bool>(),
            proptest::option::of(millis(100, 10_000))
        )
            .prop_map(|(index, reset, restart_after)| PlannedFault::Crash {
                index,
                reset,
                restart_after,
            }),
        (0..nodes, millis(1, 3), millis(100, 20_000)).prop_map(|(index, cost, lasting)| {
            PlannedFault::Slow {
                index,
                cost,
                lasting,
            }
        }),
        (1..nodes, millis(100, 20_000))
            .prop_map(|(index, duration)| PlannedFault::Pause { index, duration }),
        (0..nodes, -200_000i32..=200_000)
            .prop_map(|(index, ppm)| PlannedFault::Drift { index, ppm }),
    ]
}

impl Default for Faults {
    fn default() -> Self {
        Faults::calm()
    }
}

/// A fault a test schedules at a chosen virtual time (see [`Sim::schedule`]).
///
/// Nodes are named by their index in the order they were added.
///
/// [`Sim::schedule`]: crate::Sim::schedule
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Break the connection between two nodes, if there is one.
    Break(usize, usize),
    /// Block traffic from the first node to the second (and back, if `both_ways`).
    Partition {
        /// The sending side.
        from: usize,
        /// The receiving side.
        to: usize,
        /// Block the other direction too.
        both_ways: bool,
    },
    /// Lift every partition.
    HealAll,
    /// Crash a node: its processes and in-flight frames vanish.
    Crash(usize),
    /// Shut a node down cleanly: its processes die with `NodeDown`, its peers are told,
    /// and it stays down.
    Stop(usize),
    /// Restart a crashed node as a new incarnation (running its boot function).
    Restart(usize),
    /// Make a node spend this much virtual time per task.
    Slow(usize, Duration),
    /// Stop a node for a while, as SIGSTOP does: it runs nothing and reads nothing, its
    /// connections stay open, and its peers must notice by heartbeat alone.
    Pause(usize, Duration),
}
