//! `Faults::strategy()`: explicit fault plans that proptest generates and, when a
//! property fails, shrinks to a few named faults.

use std::time::Duration;

use hyperion::planted::{plant, Defect};
use hyperion::{Process, ProcessId};
use hyperion_sim::{Faults, Plan, PlannedFault, Sim, PLAN_NODES};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

/// Sleeps forever (a process to monitor).
async fn idle(p: Process) {
    loop {
        p.sleep(Duration::from_secs(3600)).await;
    }
}

/// The property: node 0 monitors a process on each other node for 90 s while the plan's
/// faults come and go; the world's checkers find no broken guarantee (among them: a
/// node crashed silently, paused, or cut off by a long partition is reported lost by
/// its peers within the heartbeat bound).
fn guarantees_hold(seed: u64, plan: &Plan) -> Result<(), TestCaseError> {
    let mut sim = Sim::with_faults(seed, Faults::calm()).follow_plan(plan);
    let nodes: Vec<_> = (0..PLAN_NODES).map(|_| sim.add_node()).collect();
    let targets: Vec<ProcessId> = nodes[1..].iter().map(|node| node.spawn(idle)).collect();
    sim.run_until(&nodes[0], move |p| async move {
        for target in &targets {
            p.monitor(*target);
        }
        p.sleep(Duration::from_secs(90)).await;
    })
    .map_err(|err| TestCaseError::fail(format!("seed {seed}: {err}")))?;
    let violations = sim.violations();
    prop_assert!(violations.is_empty(), "seed {seed}: {violations:?}");
    Ok(())
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(48))]

    /// Without a defect, the guarantees hold under every plan.
    #[test]
    fn the_guarantees_hold_under_explicit_plans(seed in any::<u64>(), plan in Faults::strategy()) {
        guarantees_hold(seed, &plan)?;
    }

    /// A plan written as text reads back the same (every kind of fault).
    #[test]
    fn a_generated_plan_reads_back_from_its_text(plan in Faults::strategy()) {
        let text = plan.to_string();
        prop_assert_eq!(text.parse::<Plan>().expect("a plan reads back"), plan);
    }
}

/// With a heartbeat timeout twice the configured one planted, proptest finds a failing
/// plan and shrinks it to at most 2 faults, one of them a silent one (a silent crash, a
/// pause, or a long two-way partition); the shrunk plan still fails, and passes once
/// the defect is gone.
#[test]
fn a_failing_plan_shrinks_to_at_most_two_faults() {
    let defect = plant(Defect::HeartbeatTimeoutDoubled);
    let mut runner = TestRunner::new(config(256));
    let outcome = runner.run(&(any::<u64>(), Faults::strategy()), |(seed, plan)| {
        guarantees_hold(seed, &plan)
    });
    let (why, (seed, minimal)) = match outcome {
        Err(TestError::Fail(why, minimal)) => (why, minimal),
        other => panic!("no plan of 256 revealed the planted defect: {other:?}"),
    };
    println!(
        "seed {seed}, shrunk to {} faults:\n{minimal}\n{why}",
        minimal.faults.len()
    );
    assert!(
        (1..=2).contains(&minimal.faults.len()),
        "shrunk to {} faults:\n{minimal}",
        minimal.faults.len()
    );
    let silent = minimal.faults.iter().any(|step| {
        matches!(
            step.fault,
            PlannedFault::Crash { reset: false, .. }
                | PlannedFault::Pause { .. }
                | PlannedFault::Partition {
                    both_ways: true,
                    ..
                }
        )
    });
    assert!(silent, "no silent fault kept:\n{minimal}");
    assert!(why.to_string().contains("heartbeat bound"), "{why}");
    assert!(guarantees_hold(seed, &minimal).is_err());
    drop(defect);
    assert!(guarantees_hold(seed, &minimal).is_ok());
}
