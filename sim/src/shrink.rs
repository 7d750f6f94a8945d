//! Shrinking a failing run to a small replayable [`Plan`]: delta debugging over the
//! faults and buggify firings the run injected (drop halves, then quarters, down to
//! single steps, while the failure persists), then shorter partitions and earlier
//! restarts.

use std::time::Duration;

use crate::plan::{Plan, PlannedFault};
use crate::runner::run_checked;
use crate::scenarios::Scenario;

/// Runs of the scenario one shrink may spend, so that a failure whose runs are slow
/// still ends in bounded time (the plan found so far is kept).
pub const SHRINK_RUNS_MAX: usize = 400;

/// What shrinking a failing seed found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// Everything the failing run injected.
    pub original: Plan,
    /// The smallest plan found that still fails.
    pub minimal: Plan,
    /// Why the minimal plan fails.
    pub why: String,
    /// Scenario runs spent.
    pub runs: usize,
}

/// Why a seed could not be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// The seed passes: nothing to shrink.
    Passes,
    /// The seed fails, but replaying what it injected, as a plan, passes: the failure
    /// hangs on something a plan does not name (e.g. the timing of a random fault
    /// relative to the world's other events at one instant).
    NotReplayable {
        /// Why the seed failed.
        why: String,
    },
}

impl std::fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShrinkError::Passes => write!(f, "the seed passes"),
            ShrinkError::NotReplayable { why } => write!(
                f,
                "the seed fails ({why}), but its plan replayed passes: not shrinkable"
            ),
        }
    }
}

/// Runs `scenario` in its world for `plan` (the plan's seed, its faults and firings in
/// place of random ones); why it fails, if it does.
pub fn run_plan(scenario: &Scenario, plan: &Plan) -> Result<(), String> {
    let mut sim = scenario.world(plan.seed).follow_plan(plan);
    run_checked(&mut sim, &scenario.run)
}

/// Runs `scenario` on `seed`; if it fails, records what the run injected and shrinks
/// it to a smaller plan that still fails.
pub fn shrink_seed(scenario: &Scenario, seed: u64) -> Result<Shrunk, ShrinkError> {
    let mut sim = scenario.world(seed);
    let failed = run_checked(&mut sim, &scenario.run);
    let Err(why) = failed else {
        return Err(ShrinkError::Passes);
    };
    let mut original = sim.injected();
    original.scenario = scenario.name.to_string();
    drop(sim);
    let mut runs = 1;
    let why = match run_plan(scenario, &original) {
        Err(why) => why,
        Ok(()) => return Err(ShrinkError::NotReplayable { why }),
    };
    let mut fails = |plan: &Plan| {
        runs += 1;
        run_plan(scenario, plan).err()
    };
    let (minimal, why) = shrink(&original, why, &mut fails);
    Ok(Shrunk {
        original,
        minimal,
        why,
        runs,
    })
}

/// Shrinks `plan`, which fails with `why`, while `fails` says a candidate still fails
/// (returning its reason), within [`SHRINK_RUNS_MAX`] candidates; returns the smallest
/// failing plan found and its reason.
pub fn shrink(
    plan: &Plan,
    why: String,
    fails: &mut dyn FnMut(&Plan) -> Option<String>,
) -> (Plan, String) {
    let mut best = (plan.clone(), why);
    let budget = std::cell::Cell::new(SHRINK_RUNS_MAX);
    let mut attempt = |candidate: &Plan, best: &mut (Plan, String)| -> bool {
        if budget.get() == 0 {
            return false;
        }
        budget.set(budget.get() - 1);
        match fails(candidate) {
            Some(why) => {
                *best = (candidate.clone(), why);
                true
            }
            None => false,
        }
    };
    // Delta debugging (ddmin, complements only): try the plan without each of n chunks;
    // on success keep the smaller plan and coarsen, otherwise refine.
    let mut chunks = 2;
    while !best.0.is_empty() {
        let steps = best.0.len();
        let chunks_now = chunks.min(steps);
        let size = steps.div_ceil(chunks_now);
        let mut reduced = false;
        for start in (0..steps).step_by(size) {
            let candidate = without(&best.0, start..(start + size).min(steps));
            if attempt(&candidate, &mut best) {
                reduced = true;
                break;
            }
        }
        if reduced {
            chunks = (chunks_now - 1).max(2);
        } else if chunks_now >= steps {
            break;
        } else {
            chunks = (chunks_now * 2).min(steps);
        }
        if budget.get() == 0 {
            break;
        }
    }
    // Shorter partitions, pauses and slow spells, earlier restarts: halve each duration
    // while it still fails.
    for index in 0..best.0.faults.len() {
        for _ in 0..8 {
            let mut candidate = best.0.clone();
            let shorter = match &mut candidate.faults[index].fault {
                PlannedFault::Partition { heal_after, .. } => halve(heal_after),
                PlannedFault::Crash {
                    restart_after: Some(after),
                    ..
                } => halve(after),
                PlannedFault::Slow { lasting, .. } => halve(lasting),
                PlannedFault::Pause { duration, .. } => halve(duration),
                _ => false,
            };
            if !shorter || !attempt(&candidate, &mut best) {
                break;
            }
        }
    }
    best
}

/// Halves `span` down to 1 ms; whether it changed.
fn halve(span: &mut Duration) -> bool {
    let half = (*span / 2).max(Duration::from_millis(1));
    let changed = half < *span;
    *span = half;
    changed
}

/// `plan` without its steps `range`, counting faults first, then buggify firings.
fn without(plan: &Plan, range: std::ops::Range<usize>) -> Plan {
    let faults = plan.faults.len();
    let mut reduced = plan.clone();
    reduced.faults = plan
        .faults
        .iter()
        .enumerate()
        .filter(|(k, _)| !range.contains(k))
        .map(|(_, step)| step.clone())
        .collect();
    reduced.buggify = plan
        .buggify
        .iter()
        .enumerate()
        .filter(|(k, _)| !range.contains(&(faults + k)))
        .map(|(_, firing)| firing.clone())
        .collect();
    reduced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanBuggify, PlanFault};

    fn plan_of(faults: usize, firings: usize) -> Plan {
        Plan {
            scenario: String::new(),
            seed: 1,
            faults: (0..faults)
                .map(|k| PlanFault {
                    at: Duration::from_secs(k as u64),
                    fault: PlannedFault::Partition {
                        from: k,
                        to: k + 1,
                        both_ways: true,
                        heal_after: Duration::from_secs(8),
                    },
                })
                .collect(),
            buggify: (0..firings)
                .map(|k| PlanBuggify {
                    site: "x.rs:1:1".into(),
                    call: k as u64,
                })
                .collect(),
        }
    }

    /// Shrinking keeps exactly the steps the failure needs: here, fault 3 with a
    /// partition of at least 2 s, and firing 5.
    #[test]
    fn shrinking_keeps_the_steps_the_failure_needs() {
        let plan = plan_of(10, 10);
        let mut fails = |candidate: &Plan| {
            let fault = candidate.faults.iter().any(|step| match step.fault {
                PlannedFault::Partition {
                    from, heal_after, ..
                } => from == 3 && heal_after >= Duration::from_secs(2),
                _ => false,
            });
            let firing = candidate.buggify.iter().any(|firing| firing.call == 5);
            (fault && firing).then(|| "failed".to_string())
        };
        let (minimal, why) = shrink(&plan, "failed".into(), &mut fails);
        assert_eq!(why, "failed");
        assert_eq!(minimal.faults.len(), 1);
        assert_eq!(minimal.buggify.len(), 1);
        assert_eq!(minimal.buggify[0].call, 5);
        assert_eq!(
            minimal.faults[0].fault,
            PlannedFault::Partition {
                from: 3,
                to: 4,
                both_ways: true,
                heal_after: Duration::from_secs(2),
            }
        );
    }

    #[test]
    fn a_failure_that_needs_nothing_shrinks_to_the_empty_plan() {
        let (minimal, _) = shrink(&plan_of(5, 3), "x".into(), &mut |_| Some("x".into()));
        assert!(minimal.is_empty());
    }
}
