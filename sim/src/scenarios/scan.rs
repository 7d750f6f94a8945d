//! The main job as a scenario: the scan example's own master loop, closures and
//! integral (its `job` module, included from `examples/scan/job.rs`, not copied), run
//! under the world's faults with a master that may crash and then resume from its
//! stored results.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{RetryPolicy, ServiceId, WorkerConfig};
use hyperion::store::{MemoryDisk, MemoryStore, ResultStore};
use hyperion::{Process, RemoteTable};

use super::SCENARIO_TIME_LIMIT;
use crate::faults::Fault;
use crate::launcher::SimLauncher;
use crate::world::{NodeOptions, Sim};

#[path = "../../../examples/scan/job.rs"]
mod job;

/// Points in the scan.
const TASKS: usize = 12;
/// Worker services at once.
const WORKERS: usize = 3;
/// The pause before each integral (the example's `--pause-ms`): long enough for a crash
/// or a break to land while a point is computed.
const PAUSE_MS: u64 = 300;
/// Latest virtual time at which the first master may crash.
const MASTER_CRASH_MS_MAX: u64 = 4_000;

/// What one master saw of each task, for the invariants.
#[derive(Default)]
struct Tally {
    /// Per task: results taken from the store, results computed, starts on a worker.
    stored: RefCell<Vec<u32>>,
    computed: RefCell<Vec<u32>>,
    started: RefCell<Vec<u32>>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            stored: RefCell::new(vec![0; TASKS]),
            computed: RefCell::new(vec![0; TASKS]),
            started: RefCell::new(vec![0; TASKS]),
        }
    }
}

impl job::Watch for Tally {
    fn queued(&self, _p: &Process, _task: usize, _label: &str) {}

    fn started(&self, _p: &Process, task: usize, _service: &ServiceId) {
        self.started.borrow_mut()[task] += 1;
    }

    fn done(&self, _p: &Process, task: usize, _value: f64, stored: bool) {
        let counts = if stored { &self.stored } else { &self.computed };
        counts.borrow_mut()[task] += 1;
    }

    fn failed(&self, _p: &Process, _task: usize, why: &str) {
        tracing::debug!(why, "a point failed; it is queued again");
    }

    fn cancelled(&self, _task: usize) -> bool {
        false
    }

    fn worker(&self, _up: bool, _failed: bool) {}

    fn interrupted(&self) -> bool {
        false
    }
}

/// The closures the workers run: the example's own.
fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    job::register(&mut table);
    table
}

fn launcher(sim: &Sim) -> Rc<SimLauncher> {
    // The example's simulated launcher: retries without end.
    Rc::new(
        SimLauncher::new(sim.handle(), table()).retry_policy(RetryPolicy {
            max_retries: None,
            pause: Duration::from_millis(200),
            pause_max: Duration::from_secs(5),
        }),
    )
}

/// One master's scan over `disk`; its results and what it saw.
fn master(
    sim: &mut Sim,
    node: &hyperion::LocalNode,
    disk: &MemoryDisk,
    launcher: &Rc<SimLauncher>,
    crash_self: bool,
) -> (Result<job::Scanned, String>, Rc<Tally>) {
    let tally = Rc::new(Tally::new());
    let store: Rc<dyn ResultStore> = Rc::new(MemoryStore::new(disk.clone(), job::STORE_VERSION));
    let (in_world, watch, handle) = (launcher.clone(), tally.clone(), sim.handle());
    let outcome = sim.run_until(node, move |p| async move {
        if crash_self {
            let at = Duration::from_millis(p.random_u64() % MASTER_CRASH_MS_MAX);
            // The first master is the world's first node.
            handle.schedule_in(at, Fault::Crash(0));
        }
        let calls = job::params(TASKS)
            .into_iter()
            .map(|a| job::call(a, PAUSE_MS))
            .collect();
        let settings = job::Settings {
            workers: WORKERS,
            hold: false,
            interrupt_poll: None,
        };
        job::scan(&p, in_world, store, calls, settings, watch).await
    });
    (outcome.map_err(|err| err.to_string()), tally)
}

/// The scan under swarm faults (worker crashes, breaks and partitions on the master's
/// links too, slow nodes, drift, buggify): a first master crashes at a random moment (or
/// finishes first), a second resumes from the results the first committed. The second
/// ends; every point is in its result exactly once and right (taken from the store, or
/// computed); no point committed before the crash starts again; the store holds each
/// point once; no worker of the second master outlives its scan, and every worker of
/// the crashed one stops by itself.
pub(super) fn scan(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let disk = MemoryDisk::new();
    let first_node = sim.add_node_with(NodeOptions {
        no_restart: true,
        ..NodeOptions::default()
    });
    let first_launcher = launcher(sim);
    let (first, _) = master(sim, &first_node, &disk, &first_launcher, true);
    if let Ok(scanned) = &first {
        // It finished before its crash: everything is committed.
        check_complete(scanned)?;
    }
    let committed = disk.len();

    let resumed_disk = disk.copy();
    let second_node = sim.add_node();
    let second_launcher = launcher(sim);
    let (second, tally) = master(sim, &second_node, &resumed_disk, &second_launcher, false);
    let scanned = second.map_err(|err| format!("the resumed scan did not end: {err}"))?;
    check_complete(&scanned)?;
    sim.sometimes("scan.resumed", scanned.from_store > 0);
    if scanned.from_store != committed as u64 {
        return Err(format!(
            "{committed} results were committed before the crash, but {} were read back",
            scanned.from_store
        ));
    }
    for task in 0..TASKS {
        let (stored, computed, started) = (
            tally.stored.borrow()[task],
            tally.computed.borrow()[task],
            tally.started.borrow()[task],
        );
        if stored + computed != 1 {
            return Err(format!(
                "point {task}: {stored} results from the store and {computed} computed, not one"
            ));
        }
        if stored == 1 && started > 0 {
            return Err(format!(
                "point {task} was committed before the crash, yet started again"
            ));
        }
    }
    if resumed_disk.len() != TASKS {
        return Err(format!(
            "the store holds {} of {TASKS} points",
            resumed_disk.len()
        ));
    }
    if resumed_disk.duplicates() > 0 {
        return Err(format!(
            "{} results were stored twice in one run",
            resumed_disk.duplicates()
        ));
    }
    check_workers_stopped(sim, &first_launcher, &second_launcher)
}

/// Every point has its result, and it is right.
fn check_complete(scanned: &job::Scanned) -> Result<(), String> {
    if let Some(error) = &scanned.error {
        return Err(format!("the scan stopped: {error}"));
    }
    if scanned.interrupted {
        return Err("a simulated scan was interrupted".to_string());
    }
    let params = job::params(TASKS);
    for (task, (a, value)) in params.iter().zip(&scanned.results).enumerate() {
        match value {
            None => return Err(format!("point {task} (a = {a}) has no result")),
            Some(value) if (value - job::exact(*a)).abs() > job::ERROR_MAX => {
                return Err(format!(
                    "point {task} (a = {a}) is {value}, not {}",
                    job::exact(*a)
                ))
            }
            Some(_) => {}
        }
    }
    if scanned.from_store + scanned.computed != TASKS as u64 {
        return Err(format!(
            "{} points from the store and {} computed, for {TASKS} points",
            scanned.from_store, scanned.computed
        ));
    }
    Ok(())
}

/// No worker outlives its scan: the second master's workers are stopped once their
/// services end (the launcher stops each node 1 s after its `ShutDown`, or at once when
/// cancelled); a worker of the crashed master stops by itself, having lost its master
/// (within the liveness bound, after its handshake if it was still saying hello).
fn check_workers_stopped(
    sim: &mut Sim,
    first: &SimLauncher,
    second: &SimLauncher,
) -> Result<(), String> {
    sim.run_for(Duration::from_secs(2));
    for index in second.launched() {
        if !sim.node(index).is_stopped() {
            return Err(format!(
                "the worker node {index} outlived the scan that launched it"
            ));
        }
    }
    sim.liveness_phase();
    let config = WorkerConfig::default();
    sim.run_for((config.attempt_timeout + Duration::from_secs(15)) * config.attempts);
    let exits = first.exits();
    for index in first.launched() {
        if !sim.node(index).is_stopped() && !exits.contains_key(&index) {
            return Err(format!(
                "the worker on node {index} still waits for a master that crashed"
            ));
        }
    }
    Ok(())
}
