//! # hyperion-sim
//!
//! A deterministic simulator for [`hyperion`] programs: every node of a world runs on
//! one thread, the next task to run is chosen by a seeded RNG across all nodes, and
//! virtual time jumps to the next timer when nothing is ready. Same seed, same run.

#![warn(missing_docs)]

pub mod clock;
mod world;

pub use world::{Sim, SimError, VIRTUAL_TIME_LIMIT_DEFAULT};
