//! Per-call resources in the simulator: a call runs only on a worker started with at
//! least what it asks; a service asks its launcher for such a worker.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyperion::remote::{
    with_remote_runner, with_remote_runner_using, RemoteCall, RemoteErrorKind, Resources,
    RunnerError, DOES_NOT_FIT_PREFIX,
};
use hyperion::{Process, RemoteTable};
use hyperion_sim::{Faults, Sim, SimLauncher};
use proptest::prelude::*;

/// A table whose `heavy` call counts its runs in `runs`.
fn table(runs: Arc<AtomicU64>) -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("heavy", move |_p: Process, x: u64| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(x * 2)
        }
    });
    table
}

fn two_cpu_call() -> Rc<RemoteCall<u64>> {
    Rc::new(
        RemoteCall::new("heavy", || async { 21u64 }).with_resources(Resources::default().cpus(2)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    // A call needing 2 CPUs never runs on a worker started without asking (1 CPU): it
    // fails unrun, and is not retried on another worker of the same size. No faults: a
    // crash of the worker (`Sim::new` schedules some) ends the service before the check.
    #[test]
    fn a_call_needing_two_cpus_is_not_run_on_a_one_cpu_worker(seed in any::<u64>()) {
        let runs = Arc::new(AtomicU64::new(0));
        let mut sim = Sim::with_faults(seed, Faults::none());
        let master = sim.add_node();
        let launcher = Rc::new(SimLauncher::new(sim.handle(), table(runs.clone())));
        let (in_sim, call) = (launcher.clone(), two_cpu_call());
        let outcome = sim
            .run_until(&master, move |p| async move {
                with_remote_runner(&p, &*in_sim, |runner| {
                    let (p, call) = (&p, call.clone());
                    async move { runner.run(p, &call).await }
                })
                .await
            })
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;
        match outcome {
            Err(RunnerError::Remote(error)) => match &error.kind {
                RemoteErrorKind::Exception(text) => {
                    prop_assert!(text.starts_with(DOES_NOT_FIT_PREFIX), "seed {seed}: {text}");
                    prop_assert!(text.contains("2 CPUs"), "seed {seed}: {text}");
                }
                other => prop_assert!(false, "seed {seed}: {other:?}"),
            },
            other => prop_assert!(false, "seed {seed}: expected a refusal, got {other:?}"),
        }
        prop_assert_eq!(runs.load(Ordering::SeqCst), 0, "seed {}: the call ran", seed);
        prop_assert_eq!(launcher.launched().len(), 1, "seed {}: retried", seed);
    }

    // A service asking 2 CPUs gets workers (the first and any retry's) started with 2
    // CPUs, and the call runs there. No faults, as above: a crashed worker's service
    // ends before its call.
    #[test]
    fn a_service_asking_two_cpus_runs_the_call_on_a_two_cpu_worker(seed in any::<u64>()) {
        let runs = Arc::new(AtomicU64::new(0));
        let mut sim = Sim::with_faults(seed, Faults::none());
        let master = sim.add_node();
        let launcher = Rc::new(SimLauncher::new(sim.handle(), table(runs.clone())));
        let (in_sim, call) = (launcher.clone(), two_cpu_call());
        let outcome = sim
            .run_until(&master, move |p| async move {
                let two = Resources::default().cpus(2);
                with_remote_runner_using(&p, &*in_sim, &two, |runner| {
                    let (p, call) = (&p, call.clone());
                    async move { runner.run(p, &call).await }
                })
                .await
            })
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;
        prop_assert_eq!(outcome, Ok(42), "seed {}", seed);
        prop_assert!(runs.load(Ordering::SeqCst) >= 1);
        for worker in launcher.launched() {
            let given = launcher.resources_of(worker).expect("launched here");
            prop_assert_eq!(given.cpus, Some(2), "seed {}", seed);
        }
    }
}
