//! The buggify point of blocking jobs: in a simulator with buggify on, a job run through
//! `run_blocking` may complete late (as a job stuck behind others on a busy pool does),
//! and the caller still gets its result.

use std::time::Duration;

use hyperion_sim::Sim;

/// Over enough seeds, some blocking job completes after virtual time has passed (the
/// stall fired, and its probe with it); every job still returns its own result.
#[test]
fn a_buggified_blocking_job_completes_late_with_its_result() {
    let mut stalled_seeds = 0;
    for seed in 0..40 {
        let mut sim = Sim::new(seed).buggify();
        let node = sim.add_node();
        let waited = sim
            .run_until(&node, |p| async move {
                let mut longest = Duration::ZERO;
                for n in 0..20u64 {
                    let before = p.now();
                    let doubled = p.run_blocking(move || n * 2).await;
                    assert_eq!(doubled, n * 2, "seed {seed}: a job's own result");
                    longest = longest.max(p.now() - before);
                }
                longest
            })
            .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        let probed = sim
            .probes()
            .get("runtime.buggify.blocking_job_stalls")
            .is_some_and(|count| count.reached > 0);
        assert_eq!(
            probed,
            waited > Duration::ZERO,
            "seed {seed}: the probe marks exactly the runs with a stalled job"
        );
        if probed {
            stalled_seeds += 1;
        }
    }
    assert!(stalled_seeds > 0, "no seed of 40 stalled a blocking job");
}

/// Outside buggify, a blocking job in the simulator completes at once (inline), so a
/// world's trace does not depend on the point.
#[test]
fn without_buggify_a_blocking_job_completes_at_once() {
    let mut sim = Sim::new(1);
    let node = sim.add_node();
    let waited = sim.run_until(&node, |p| async move {
        let before = p.now();
        for n in 0..20u64 {
            p.run_blocking(move || n).await;
        }
        p.now() - before
    });
    assert_eq!(waited, Ok(Duration::ZERO));
}
