//! A master at scale in the simulator: one master, up to 1,000 simulated worker nodes
//! (the [`SimLauncher`] through a fixed [`WorkerPool`]), 10,000 tasks, under swarm
//! faults (worker nodes crash, links break and partition). Every task is answered
//! exactly once with the right value, and nothing is left after the pool closes.
//!
//! `cargo test` runs a smaller size over a few seeds (debug builds are slow); the full
//! size runs with `cargo test --release --test scale_sim -- --ignored --nocapture`.
//! Both print virtual, wall and CPU time per seed.

use std::rc::Rc;
use std::time::Duration;

use hyperion::concurrency::map_concurrently;
use hyperion::remote::{PoolConfig, PoolStats, RemoteCall, RetryPolicy, WorkerPool};
use hyperion::{AsyncResult, Process, RemoteTable};
use hyperion_sim::{Faults, Leftovers, Sim, SimLauncher};

fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    // A task takes a second of virtual time, so the workers overlap.
    table.register_call("task", |p: Process, x: u64| async move {
        p.sleep(Duration::from_secs(1)).await;
        Ok::<_, String>(x * 3 + 1)
    });
    table
}

/// What one seed saw.
struct Run {
    /// Each task's answers, in task order (exactly one expected).
    answers: Vec<Option<u64>>,
    stats: PoolStats,
    virtual_time: Duration,
    wall_time: Duration,
    /// CPU time of the thread that ran the world (the simulator runs on one), when the
    /// system tells it: on a shared machine wall time says more about the others' work.
    cpu_time: Option<Duration>,
    faults: Faults,
}

/// CPU time this thread has run so far (Linux's `/proc/thread-self/schedstat`).
fn thread_cpu_time() -> Option<Duration> {
    // real-world only: the test's own measurement.
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanoseconds = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanoseconds))
}

/// `tasks` tasks through a pool of `workers` simulated workers, under `Faults::swarm(seed)`.
fn run(seed: u64, workers: usize, tasks: u64) -> Result<Run, String> {
    let started = std::time::Instant::now(); // real-world only: the wall time printed
    let cpu_started = thread_cpu_time();
    let faults = Faults::swarm(seed);
    let mut sim = Sim::with_faults(seed, faults.clone());
    let master = sim.add_node();
    let launcher = SimLauncher::new(sim.handle(), table())
        .with_connection_timeout(Some(Duration::from_secs(60)))
        .retry_policy(RetryPolicy {
            max_retries: None,
            pause: Duration::from_secs(1),
            pause_max: Duration::from_secs(8),
        });
    let virtual_start = sim.now();
    let outcome = sim.run_until(&master, move |p| async move {
        let pool: WorkerPool<SimLauncher, u64> =
            WorkerPool::new(launcher, PoolConfig::fixed(workers)).expect("a valid pool");
        let in_tasks = pool.clone();
        let answers = map_concurrently(&p, (0..tasks).collect(), move |c, x| {
            let pool = in_tasks.clone();
            async move {
                let call = Rc::new(RemoteCall::new("task", move || async move { x }));
                pool.run(&c, call).await.ok()
            }
        })
        .await;
        pool.close(&p).await;
        (answers, pool.stats())
    });
    let (answers, stats) = outcome.map_err(|e| format!("seed {seed}: {e}"))?;
    let virtual_time = sim.now() - virtual_start;
    let answers = answers
        .into_iter()
        .map(|outcome| match outcome {
            AsyncResult::Done(answer) => answer,
            _ => None,
        })
        .collect();
    // Let stopped workers' nodes go, then check nothing is left anywhere.
    sim.run_for(Duration::from_secs(5));
    if !sim.violations().is_empty() {
        return Err(format!("seed {seed}: {:?}", sim.violations()));
    }
    let leftovers = sim.shutdown();
    if leftovers != Leftovers::default() {
        return Err(format!("seed {seed}: left after the run: {leftovers:?}"));
    }
    Ok(Run {
        answers,
        stats,
        virtual_time,
        wall_time: started.elapsed(),
        cpu_time: thread_cpu_time()
            .zip(cpu_started)
            .map(|(now, then)| now.saturating_sub(then)),
        faults,
    })
}

fn check(seeds: std::ops::Range<u64>, workers: usize, tasks: u64) {
    for seed in seeds {
        let run = run(seed, workers, tasks).unwrap();
        let wrong: Vec<(u64, Option<u64>)> = (0..tasks)
            .zip(run.answers.iter().copied())
            .filter(|&(x, answer)| answer != Some(x * 3 + 1))
            .take(5)
            .collect();
        assert!(
            wrong.is_empty(),
            "seed {seed}: tasks without their right answer (first 5): {wrong:?}"
        );
        assert_eq!(run.answers.len() as u64, tasks, "seed {seed}");
        assert_eq!(run.stats.finished, tasks, "seed {seed}: {:?}", run.stats);
        assert!(
            run.stats.workers_peak <= workers,
            "seed {seed}: {:?}",
            run.stats
        );
        assert_eq!(run.stats.workers, 0, "seed {seed}: {:?}", run.stats);
        println!(
            "seed {seed}: {workers} workers, {tasks} tasks: virtual {:?}, wall {:?}, CPU {}; {:?}; crash rate {:.4}, break rate {:.4}",
            run.virtual_time,
            run.wall_time,
            run.cpu_time
                .map_or_else(|| "unknown".to_string(), |cpu| format!("{cpu:?}")),
            run.stats,
            run.faults.crash_rate,
            run.faults.break_rate,
        );
    }
}

/// The size `cargo test` runs: 100 workers, 1,000 tasks, 3 seeds of swarm faults.
#[test]
fn a_hundred_workers_answer_a_thousand_tasks_under_swarm_faults() {
    check(0..3, 100, 1_000);
}

/// A knob of the full-size test from the environment, or its default.
fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name) // real-world only: the test's own knobs
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The full size: 1,000 workers, 10,000 tasks, over seeds (`SCALE_SEEDS`, default 3;
/// `SCALE_WORKERS` and `SCALE_TASKS` change the size). Slow in debug: run it with
/// `--release`.
#[test]
#[ignore = "the full size: run with --release --ignored"]
fn a_thousand_workers_answer_ten_thousand_tasks_under_swarm_faults() {
    let workers = knob("SCALE_WORKERS", 1_000) as usize;
    check(
        0..knob("SCALE_SEEDS", 3),
        workers,
        knob("SCALE_TASKS", 10_000),
    );
}
