//! # hyperion-sim
//!
//! A deterministic simulator for [`hyperion`] programs: every node of a world runs on
//! one thread, the next task to run is chosen by a seeded RNG across all nodes, and
//! virtual time jumps to the next timer, delivery or fault when nothing is ready. The
//! in-memory network injects faults (latency, breaks, partitions, crashes and restarts,
//! slow nodes, clock drift) while keeping TCP's contract, and built-in checkers verify
//! the runtime's guarantees on every run. Same seed, same trace.

#![warn(missing_docs)]

mod checkers;
pub mod clock;
pub mod coverage;
mod faults;
mod launcher;
mod network;
pub mod plan;
mod probes;
mod runner;
pub mod scenarios;
pub mod shrink;
mod trace;
mod world;

pub use checkers::Violation;
pub use faults::{Fault, Faults, PLAN_FAULTS_MAX, PLAN_NODES, PLAN_SPAN};
pub use launcher::SimLauncher;
pub use network::{SimTransport, CONNECT_TIMEOUT};
pub use plan::{Plan, PlanBuggify, PlanError, PlanFault, PlannedFault};
pub use probes::{ProbeCount, BUGGIFY_FIRE_PROBABILITY, BUGGIFY_SITE_PROBABILITY};
pub use runner::{
    check_determinism, check_seeds, run_checked, run_in, run_seed, seeds, Divergence, SeedFailure,
    SEEDS_VARIABLE, SEED_VARIABLE,
};
pub use trace::{Trace, TraceEntry};
pub use world::{
    Boot, Leftovers, NodeOptions, Sim, SimError, SimHandle, SIM_TRACE_AGENT_ID,
    VIRTUAL_TIME_LIMIT_DEFAULT,
};
