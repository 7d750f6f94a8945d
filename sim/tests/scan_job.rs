//! The scan example's master loop (its `job` module, included as the `scan` scenario
//! includes it) in the simulator, under faults chosen by the test.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{RetryPolicy, ServiceId};
use hyperion::store::{MemoryDisk, MemoryStore, ResultStore};
use hyperion::{Process, RemoteTable};
use hyperion_sim::{Faults, Sim, SimLauncher};

#[path = "../../examples/scan/job.rs"]
mod job;

/// Counts each task's results.
struct Tally(RefCell<Vec<u32>>);

impl job::Watch for Tally {
    fn queued(&self, _p: &Process, _task: usize, _label: &str) {}
    fn started(&self, _p: &Process, _task: usize, _service: &ServiceId) {}
    fn done(&self, _p: &Process, task: usize, _value: f64, _stored: bool) {
        self.0.borrow_mut()[task] += 1;
    }
    fn failed(&self, _p: &Process, _task: usize, _why: &str) {}
    fn cancelled(&self, _task: usize) -> bool {
        false
    }
    fn worker(&self, _up: bool, _failed: bool) {}
    fn interrupted(&self) -> bool {
        false
    }
}

/// A slot whose worker never connects (its node crashes at launch, so the service
/// times out) starts another service while points remain: the scan still ends with
/// every point, each once, instead of leaving the slot's share undone.
#[test]
fn a_slot_whose_worker_never_connects_starts_another_and_the_scan_completes() {
    const TASKS: usize = 4;
    for seed in 0..8 {
        let mut sim = Sim::with_faults(seed, Faults::calm());
        let master = sim.add_node();
        let mut table = RemoteTable::new();
        job::register(&mut table);
        // The first two workers crash as they start: a lone slot sees two services
        // fail in a row before a worker connects.
        let launcher = Rc::new(
            SimLauncher::new(sim.handle(), table)
                .with_connection_timeout(Some(Duration::from_secs(10)))
                .retry_policy(RetryPolicy {
                    max_retries: None,
                    pause: Duration::from_millis(200),
                    pause_max: Duration::from_secs(5),
                })
                .crash_first(2, Duration::ZERO),
        );
        let tally = Rc::new(Tally(RefCell::new(vec![0; TASKS])));
        let watch = tally.clone();
        let store: Rc<dyn ResultStore> =
            Rc::new(MemoryStore::new(MemoryDisk::new(), job::STORE_VERSION));
        let scanned = sim
            .run_until(&master, move |p| async move {
                let calls = job::params(TASKS)
                    .into_iter()
                    .map(|a| job::call(a, 0))
                    .collect();
                let settings = job::Settings {
                    workers: 1,
                    hold: false,
                    interrupt_poll: None,
                };
                job::scan(&p, launcher, store, calls, settings, watch).await
            })
            .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        assert!(
            scanned.results.iter().all(Option::is_some),
            "seed {seed}: points left undone: {:?}",
            scanned.results
        );
        assert_eq!(*tally.0.borrow(), vec![1; TASKS], "seed {seed}");
        for (a, value) in job::params(TASKS).iter().zip(&scanned.results) {
            let value = value.expect("every point");
            assert!(
                (value - job::exact(*a)).abs() < job::ERROR_MAX,
                "seed {seed}: a = {a}"
            );
        }
        assert!(!scanned.interrupted && scanned.error.is_none());
        assert_eq!(scanned.from_store + scanned.computed, TASKS as u64);
    }
}
