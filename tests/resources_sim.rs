//! Per-call resources in the simulator: a call runs only on a worker started with at
//! least what it asks; a service asks its launcher for such a worker; a pool runs a
//! call on an idle worker that fits it before it starts one.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyperion::concurrency::map_concurrently;
use hyperion::remote::{
    with_remote_runner, with_remote_runner_using, PoolConfig, RemoteCall, RemoteErrorKind,
    Resources, RunnerError, WorkerPool, DOES_NOT_FIT_PREFIX,
};
use hyperion::{AsyncResult, Process, RemoteTable};
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

/// A table whose `work` call sleeps `secs` seconds, then answers `x`.
fn work_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("work", |p: Process, (x, secs): (u64, u64)| async move {
        p.sleep(Duration::from_secs(secs)).await;
        Ok::<_, String>(x)
    });
    table
}

/// A call of `work` answering `x` after `secs` seconds, needing `cpus` CPUs (1: asks
/// nothing).
fn work(x: u64, secs: u64, cpus: u32) -> Rc<RemoteCall<u64>> {
    let call = RemoteCall::new("work", move || async move { (x, secs) });
    Rc::new(if cpus > 1 {
        call.with_resources(Resources::default().cpus(cpus))
    } else {
        call
    })
}

/// Runs `calls` through `pool` at once; each answer, in order.
async fn pooled(
    p: &Process,
    pool: &WorkerPool<SimLauncher, u64>,
    calls: Vec<Rc<RemoteCall<u64>>>,
) -> Vec<Option<u64>> {
    let pool = pool.clone();
    map_concurrently(p, calls, move |c, call| {
        let pool = pool.clone();
        async move { pool.run(&c, call).await.ok() }
    })
    .await
    .into_iter()
    .map(|outcome| match outcome {
        AsyncResult::Done(answer) => answer,
        _ => None,
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    // A pool holding an idle 2-CPU worker and an idle 1-CPU worker runs a 1-CPU call
    // and a 2-CPU call on them, starting no third worker: each call goes to the
    // smallest idle worker that fits it (a 1-CPU call on the 2-CPU worker would leave
    // the 2-CPU call none). No faults: a crashed worker would be replaced.
    #[test]
    fn calls_reuse_the_idle_workers_that_fit_them_before_starting_one(seed in any::<u64>()) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let master = sim.add_node();
        let launcher = SimLauncher::new(sim.handle(), work_table());
        let config = PoolConfig { min_workers: 0, max_workers: 3, idle_timeout: Duration::from_secs(600) };
        let outcome = sim
            .run_until(&master, move |p| async move {
                let pool: WorkerPool<SimLauncher, u64> = WorkerPool::new(launcher, config).unwrap();
                // The 2-CPU worker ends its call first: it is the first idle one.
                let first = pooled(&p, &pool, vec![work(1, 5, 2), work(2, 10, 1)]).await;
                let started = pool.stats().started;
                let second = pooled(&p, &pool, vec![work(3, 5, 1), work(4, 5, 2)]).await;
                let stats = pool.stats();
                pool.close(&p).await;
                (first, started, second, stats)
            })
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;
        let (first, started, second, stats) = outcome;
        prop_assert_eq!(first, vec![Some(1), Some(2)], "seed {}", seed);
        prop_assert_eq!(second, vec![Some(3), Some(4)], "seed {}", seed);
        prop_assert_eq!(started, 2, "seed {}: {:?}", seed, stats);
        prop_assert_eq!(stats.started, 2, "seed {}: a worker was started beside idle ones that fit: {:?}", seed, stats);
    }

    // A full pool (2 of 2 workers, both idle with 1 CPU, kept at its minimum) given a
    // call needing 2 CPUs stops an idle worker that fits no waiting call and starts one
    // that fits, rather than leave the call waiting forever.
    #[test]
    fn a_full_pool_replaces_an_idle_worker_that_fits_no_waiting_call(seed in any::<u64>()) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let master = sim.add_node();
        let launcher = SimLauncher::new(sim.handle(), work_table());
        let outcome = sim
            .run_until(&master, move |p| async move {
                let pool: WorkerPool<SimLauncher, u64> =
                    WorkerPool::new(launcher, PoolConfig::fixed(2)).unwrap();
                let small = pooled(&p, &pool, vec![work(1, 5, 1), work(2, 5, 1)]).await;
                let in_task = pool.clone();
                let big = p.async_task(move |c| async move { in_task.run(&c, work(3, 5, 2)).await.ok() });
                // Ample virtual time: the call needs 5 s once a worker fits it.
                let answer = big.wait_timeout(&p, Duration::from_secs(600)).await;
                let stats = pool.stats();
                big.cancel(&p);
                pool.cancel_waiting(&p);
                pool.close(&p).await;
                (small, answer, stats)
            })
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;
        let (small, answer, stats) = outcome;
        prop_assert_eq!(small, vec![Some(1), Some(2)], "seed {}", seed);
        prop_assert!(matches!(answer, AsyncResult::Done(Some(3))), "seed {seed}: the 2-CPU call: {answer:?}, {stats:?}");
        prop_assert!(stats.workers_peak <= 2, "seed {seed}: {stats:?}");
        prop_assert_eq!(stats.replaced, 1, "seed {}: {:?}", seed, stats);
    }
}
