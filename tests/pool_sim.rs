//! The adaptive worker pool in the simulator, over seeds and faults: never above its
//! maximum, never below its minimum while calls wait, idle workers stopped, and no call
//! lost when a worker is stopped or lost.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::concurrency::map_concurrently;
use hyperion::remote::{PoolConfig, PoolStats, RemoteCall, RetryPolicy, WorkerPool};
use hyperion::{AsyncResult, Process, RemoteTable};
use hyperion_sim::{Faults, Sim, SimLauncher};
use proptest::prelude::*;

fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("slow_square", |p: Process, x: u64| async move {
        p.sleep(Duration::from_secs(5)).await;
        Ok::<_, String>(x * x)
    });
    table
}

const CONFIG: PoolConfig = PoolConfig {
    min_workers: 1,
    max_workers: 4,
    idle_timeout: Duration::from_secs(30),
};

/// Runs `xs` through the pool at once; each answer, in order.
async fn wave(p: &Process, pool: &WorkerPool<SimLauncher, u64>, xs: Vec<u64>) -> Vec<Option<u64>> {
    let pool = pool.clone();
    map_concurrently(p, xs, move |c, x| {
        let pool = pool.clone();
        async move {
            let call = Rc::new(RemoteCall::new("slow_square", move || async move { x }));
            pool.run(&c, call).await.ok()
        }
    })
    .await
    .into_iter()
    .map(|outcome| match outcome {
        AsyncResult::Done(answer) => answer,
        _ => None,
    })
    .collect()
}

/// What one run saw: every answer in order, the stats after a rest longer than the
/// idle timeout, at the end (after `close`), and sampled every half second.
struct Run {
    answers: Vec<Option<u64>>,
    rested: PoolStats,
    end: PoolStats,
    samples: Vec<PoolStats>,
}

/// 12 calls at once, a rest of 120 s (idle timeout 30 s), 6 more calls, `close`.
fn run(seed: u64, faults: Faults) -> Result<Run, String> {
    let mut sim = Sim::with_faults(seed, faults);
    let master = sim.add_node();
    let launcher = SimLauncher::new(sim.handle(), table())
        .with_connection_timeout(Some(Duration::from_secs(60)))
        .retry_policy(RetryPolicy {
            max_retries: None,
            pause: Duration::from_secs(1),
            pause_max: Duration::from_secs(8),
        });
    let samples: Rc<RefCell<Vec<PoolStats>>> = Rc::default();
    let in_sim = samples.clone();
    let outcome = sim.run_until(&master, move |p| async move {
        let pool: WorkerPool<SimLauncher, u64> = WorkerPool::new(launcher, CONFIG).unwrap();
        let sampled = pool.clone();
        let sampler = p.spawn_local(move |s| async move {
            loop {
                in_sim.borrow_mut().push(sampled.stats());
                s.sleep(Duration::from_millis(500)).await;
            }
            #[allow(unreachable_code)]
            ()
        });
        let first = wave(&p, &pool, (1..=12).collect()).await;
        p.sleep(Duration::from_secs(120)).await;
        let rested = pool.stats();
        let second = wave(&p, &pool, (13..=18).collect()).await;
        pool.close(&p).await;
        p.kill(sampler, "done");
        (first, rested, second, pool.stats())
    });
    let (first, rested, second, end) = outcome.map_err(|e| format!("seed {seed}: {e}"))?;
    let samples = samples.borrow().clone();
    Ok(Run {
        answers: first.into_iter().chain(second).collect(),
        rested,
        end,
        samples,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    // Sampled every half second of virtual time, the pool never has more workers than
    // its maximum, nor fewer than its minimum while calls wait; after a pause longer
    // than the idle timeout it is back at its minimum or below (workers may be lost
    // while no call waits); every call is answered, right; close leaves no worker.
    #[test]
    fn the_pool_scales_within_its_bounds_and_loses_no_call(seed in any::<u64>(), faults in Faults::rates_strategy()) {
        let Run { answers, rested, end, samples } =
            run(seed, faults).map_err(TestCaseError::fail)?;
        let expected: Vec<Option<u64>> = (1..=18u64).map(|x| Some(x * x)).collect();
        prop_assert_eq!(answers, expected, "seed {}: a call was lost or wrong", seed);
        for sample in &samples {
            prop_assert!(sample.workers <= CONFIG.max_workers, "seed {seed}: {sample:?}");
            if sample.waiting > 0 {
                prop_assert!(sample.workers >= CONFIG.min_workers, "seed {seed}: {sample:?}");
            }
        }
        prop_assert!(end.workers_peak <= CONFIG.max_workers, "seed {seed}: {end:?}");
        prop_assert!(end.workers_peak > CONFIG.min_workers, "seed {seed}: never scaled up: {end:?}");
        // At rest no call waits: a worker lost then need not be replaced.
        prop_assert!(rested.workers <= CONFIG.min_workers, "seed {seed}: idle workers kept: {rested:?}");
        prop_assert_eq!(end.workers, 0, "seed {}: workers left after close: {:?}", seed, end);
        prop_assert_eq!(end.finished, 18);
    }
}

/// Without faults: 12 calls of 5 s scale the pool to its maximum, the rest stops every
/// worker above the minimum by its idle timeout (none is lost), and close the last.
#[test]
fn idle_workers_above_the_minimum_are_stopped() {
    for seed in 0..4 {
        let run = run(seed, Faults::none()).unwrap();
        let expected: Vec<Option<u64>> = (1..=18u64).map(|x| Some(x * x)).collect();
        assert_eq!(run.answers, expected, "seed {seed}");
        assert_eq!(
            run.end.workers_peak, CONFIG.max_workers,
            "seed {seed}: {:?}",
            run.end
        );
        assert_eq!(
            run.rested.workers, CONFIG.min_workers,
            "seed {seed}: {:?}",
            run.rested
        );
        assert_eq!(
            run.rested.stopped_idle as usize,
            CONFIG.max_workers - CONFIG.min_workers,
            "seed {seed}: {:?}",
            run.rested
        );
        assert_eq!(run.end.requeued, 0, "seed {seed}: {:?}", run.end);
        assert_eq!(run.end.workers, 0, "seed {seed}: {:?}", run.end);
    }
}
