//! Plans: a run's injected faults and buggify firings, replayed and shrunk.

use hyperion::planted::{plant, Defect};
use hyperion_sim::shrink::{run_plan, shrink_seed};
use hyperion_sim::{run_checked, scenarios, Plan};

/// Replaying what a seed injected, as a plan, runs the same world: the trace is the
/// same, event for event, in every scenario.
#[test]
fn a_seeds_injected_plan_replays_its_trace() {
    for scenario in scenarios::all() {
        for seed in 0..6 {
            let mut original = scenario.world(seed).record_trace();
            let first = run_checked(&mut original, &scenario.run);
            let plan = original.injected();
            let mut replayed = scenario.world(seed).follow_plan(&plan).record_trace();
            let second = run_checked(&mut replayed, &scenario.run);
            assert_eq!(first, second, "{} seed {seed}", scenario.name);
            assert_eq!(
                original.trace().hash(),
                replayed.trace().hash(),
                "{} seed {seed}: the plan's replay diverged\n{plan}",
                scenario.name
            );
            assert_eq!(replayed.injected(), plan, "{} seed {seed}", scenario.name);
        }
    }
}

/// A planted defect's failing seed shrinks to a plan that still fails, and is smaller
/// than what the seed injected; the plan written to text reads back the same.
#[test]
fn a_planted_defects_failing_seed_shrinks_to_a_smaller_plan_that_still_fails() {
    let _defect = plant(Defect::MonitorFiresTwice);
    let monitors = scenarios::find("monitors").expect("registered");
    let shrunk = (0..200)
        .filter_map(|seed| shrink_seed(monitors, seed).ok())
        .find(|shrunk| !shrunk.original.is_empty())
        .expect("a failing seed that injected something");
    println!(
        "seed {}: {} injected steps shrunk to {}",
        shrunk.original.seed,
        shrunk.original.len(),
        shrunk.minimal.len()
    );
    assert!(shrunk.minimal.len() < shrunk.original.len());
    let written: Plan = shrunk
        .minimal
        .to_string()
        .parse()
        .expect("a plan reads back");
    assert_eq!(written, shrunk.minimal);
    let why = run_plan(monitors, &written).expect_err("the shrunk plan still fails");
    assert!(why.contains("twice"), "{why}");
    drop(_defect);
    assert_eq!(run_plan(monitors, &written), Ok(()));
}

/// A defect that only a fault reveals shrinks to a plan that keeps that fault: a
/// heartbeat timeout twice the configured one shows only when a node goes silent (a
/// crash without reset, or a long two-way partition), so the minimal plan keeps one.
#[test]
fn a_defect_revealed_by_a_fault_shrinks_to_a_plan_that_keeps_the_fault() {
    let _defect = plant(Defect::HeartbeatTimeoutDoubled);
    let monitors = scenarios::find("monitors").expect("registered");
    let shrunk = (0..200)
        .find_map(|seed| shrink_seed(monitors, seed).ok())
        .expect("a failing seed");
    println!(
        "seed {}: {} injected steps shrunk to {} in {} runs:\n{}",
        shrunk.original.seed,
        shrunk.original.len(),
        shrunk.minimal.len(),
        shrunk.runs,
        shrunk.minimal
    );
    assert!(!shrunk.minimal.faults.is_empty(), "{}", shrunk.minimal);
    assert!(shrunk.minimal.len() < shrunk.original.len());
    let why = run_plan(monitors, &shrunk.minimal).expect_err("the shrunk plan still fails");
    assert!(why.contains("heartbeat bound"), "{why}");
    drop(_defect);
    assert_eq!(run_plan(monitors, &shrunk.minimal), Ok(()));
}
