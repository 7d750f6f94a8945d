//! Running simulation tests: many seeds, one seed from the environment for replay, and
//! the determinism check (one seed twice, traces compared).

use hyperion::process::id::panic_text;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::trace::TraceEntry;
use crate::world::Sim;

/// Environment variable naming the one seed to run (replay of a failure).
pub const SEED_VARIABLE: &str = "HYPERION_SEED";
/// Environment variable naming how many seeds [`check_seeds`] runs.
pub const SEEDS_VARIABLE: &str = "HYPERION_SEEDS";

/// A failed seed: what went wrong and how to replay it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// The scenario's error, a panic's text, or the broken guarantees.
    pub why: String,
}

/// Runs `scenario` in a fresh world made from `seed` ([`Sim::new`], swarm faults),
/// and fails if it returns an error, panics, or breaks a built-in guarantee. After the
/// scenario returns, the world goes through [`Sim::finish`] (liveness phase, checker of
/// silence, shutdown with nothing left), so the world handed back is shut down.
pub fn run_seed(
    seed: u64,
    scenario: &dyn Fn(&mut Sim) -> Result<(), String>,
) -> Result<Sim, SeedFailure> {
    run_in(Sim::new(seed), scenario)
}

/// [`run_seed`] in a world the caller made.
pub fn run_in(
    mut sim: Sim,
    scenario: &dyn Fn(&mut Sim) -> Result<(), String>,
) -> Result<Sim, SeedFailure> {
    let seed = sim.seed();
    match run_checked(&mut sim, scenario) {
        Ok(()) => Ok(sim),
        Err(why) => Err(SeedFailure { seed, why }),
    }
}

/// Runs `scenario` in `sim`, then [`Sim::finish`] if it returned `Ok`; the reason if it
/// returned an error, panicked, or broke a built-in guarantee. The world stays with
/// the caller (to read its probes, time and trace).
pub fn run_checked(
    sim: &mut Sim,
    scenario: &dyn Fn(&mut Sim) -> Result<(), String>,
) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| scenario(sim)));
    let why = match outcome {
        Ok(Ok(())) => {
            let violations = match catch_unwind(AssertUnwindSafe(|| sim.finish())) {
                Ok(violations) => violations,
                Err(panic) => return Err(panic_text(panic.as_ref())),
            };
            if violations.is_empty() {
                return Ok(());
            }
            let list: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
            format!("guarantees broken:\n  {}", list.join("\n  "))
        }
        Ok(Err(why)) => why,
        Err(panic) => panic_text(panic.as_ref()),
    };
    Err(why)
}

/// The seeds a test should run: the one in `HYPERION_SEED` if set, otherwise
/// `0..HYPERION_SEEDS` (default `default_count`).
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var(SEED_VARIABLE)
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var(SEEDS_VARIABLE)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_count);
    (0..count).collect()
}

/// The one-call runner for users' simulation tests: runs `scenario` for every seed of
/// [`seeds`], and panics at the first failure with its seed and the command that
/// replays it.
///
/// ```
/// use hyperion_sim::{check_seeds, Sim};
/// check_seeds("doc_example", 4, |sim: &mut Sim| {
///     let node = sim.add_node();
///     let answer = sim.run_until(&node, |p| async move { 6 * 7 }).map_err(|e| e.to_string())?;
///     if answer == 42 { Ok(()) } else { Err(format!("got {answer}")) }
/// });
/// ```
pub fn check_seeds(
    test_name: &str,
    default_count: u64,
    scenario: impl Fn(&mut Sim) -> Result<(), String>,
) {
    for seed in seeds(default_count) {
        if let Err(failure) = run_seed(seed, &scenario) {
            panic!(
                "{test_name}: seed {seed} failed: {}\n  replay: {SEED_VARIABLE}={seed} cargo test {test_name}",
                failure.why
            );
        }
    }
}

/// Where two runs of one seed first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The seed.
    pub seed: u64,
    /// Index of the first differing event.
    pub index: usize,
    /// The first run's event there (`None`: the first run ended).
    pub first: Option<TraceEntry>,
    /// The second run's event there.
    pub second: Option<TraceEntry>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show =
            |e: &Option<TraceEntry>| e.as_ref().map_or("(end)".to_string(), |e| e.to_string());
        write!(
            f,
            "seed {} diverged at event {}:\n  first run:  {}\n  second run: {}",
            self.seed,
            self.index,
            show(&self.first),
            show(&self.second)
        )
    }
}

/// Runs `scenario` twice with one seed, recording traces, and compares them event by
/// event. Same seed, same trace: any difference is reported at its first event.
pub fn check_determinism(
    seed: u64,
    scenario: impl Fn(&mut Sim) -> Result<(), String>,
) -> Result<(), Box<Divergence>> {
    let run = || {
        let mut sim = Sim::new(seed).record_trace();
        let _ = catch_unwind(AssertUnwindSafe(|| scenario(&mut sim)));
        let trace = sim.trace();
        let entries = trace
            .entries()
            .map(<[TraceEntry]>::to_vec)
            .unwrap_or_default();
        let hash = trace.hash();
        (hash, entries)
    };
    let (first_hash, first) = run();
    let (second_hash, second) = run();
    if first_hash == second_hash && first == second {
        return Ok(());
    }
    let index = first
        .iter()
        .zip(&second)
        .position(|(a, b)| a != b)
        .unwrap_or(first.len().min(second.len()));
    Err(Box::new(Divergence {
        seed,
        index,
        first: first.get(index).cloned(),
        second: second.get(index).cloned(),
    }))
}
