//! Memoized remote calls and resume in the simulator: results in a `MemoryStore`
//! survive a master crash at any virtual time, and a resumed master finishes the work
//! without running any closure whose result was committed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyperion::message::encode;
use hyperion::remote::{
    with_remote_runner, Memoized, RemoteCall, RetryPolicy, StoredCallError, WorkerLauncher,
};
use hyperion::store::{Key, MemoryDisk, MemoryStore};
use hyperion::{AsyncResult, Process, RemoteTable};
use hyperion_sim::{Fault, Faults, Sim, SimLauncher};
use proptest::prelude::*;

const VERSION: &str = "squares-v1";
const TASKS: u64 = 16;
const WORKERS: usize = 3;

/// Which closures started on the workers: (phase, argument). Workers run in the
/// simulator's thread, but the remote table wants `Send + Sync` closures.
type Starts = Arc<Mutex<Vec<(u32, u64)>>>;

fn table(starts: Starts, phase: Arc<AtomicU32>) -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("slow_square", move |p: Process, x: u64| {
        starts
            .lock()
            .unwrap()
            .push((phase.load(Ordering::SeqCst), x));
        async move {
            p.sleep(Duration::from_millis(700)).await;
            Ok::<_, String>(x * x)
        }
    });
    table
}

fn key(x: u64) -> Key {
    Key::new("slow_square", VERSION, &encode(&x).unwrap())
}

/// A master as the scan example's: results already stored are read, the missing ones
/// are queued and served by `WORKERS` slots of `with_remote_runner`, through the store.
/// Returns each argument's result and how many came from the store.
async fn master<L: WorkerLauncher + 'static>(
    p: &Process,
    launcher: Rc<L>,
    store: Rc<MemoryStore>,
) -> Result<(BTreeMap<u64, u64>, u64), String> {
    let memo = Rc::new(Memoized::new(store));
    let calls: Rc<Vec<RemoteCall<u64>>> = Rc::new(
        (0..TASKS)
            .map(|x| RemoteCall::new("slow_square", move || async move { x }))
            .collect(),
    );
    let results: Rc<RefCell<BTreeMap<u64, u64>>> = Rc::default();
    let queue: Rc<RefCell<VecDeque<u64>>> = Rc::default();
    for x in 0..TASKS {
        match memo.lookup(p, &calls[x as usize]).await {
            Ok(Some(value)) => {
                results.borrow_mut().insert(x, value);
            }
            Ok(None) => queue.borrow_mut().push_back(x),
            Err(err) => return Err(err.to_string()),
        }
    }
    let from_store = memo.hits();
    let fatal: Rc<RefCell<Option<String>>> = Rc::default();
    let slots: Vec<_> = (0..WORKERS.min(queue.borrow().len()))
        .map(|_| {
            let (launcher, memo, calls, results, queue, fatal) = (
                launcher.clone(),
                memo.clone(),
                calls.clone(),
                results.clone(),
                queue.clone(),
                fatal.clone(),
            );
            p.async_task(move |slot| async move {
                let slot = &slot;
                with_remote_runner(slot, &*launcher, |runner| {
                    let (memo, calls, results, queue, fatal) = (
                        memo.clone(),
                        calls.clone(),
                        results.clone(),
                        queue.clone(),
                        fatal.clone(),
                    );
                    async move {
                        loop {
                            let Some(x) = queue.borrow_mut().pop_front() else {
                                return Ok(());
                            };
                            match memo.run(slot, &runner, &calls[x as usize]).await {
                                Ok(value) => {
                                    let again = results.borrow_mut().insert(x, value);
                                    assert_eq!(again, None, "{x} answered twice");
                                }
                                Err(StoredCallError::Remote(err)) => {
                                    queue.borrow_mut().push_back(x);
                                    return Err(err);
                                }
                                Err(StoredCallError::Store(err)) => {
                                    *fatal.borrow_mut() = Some(err.to_string());
                                    queue.borrow_mut().clear();
                                    return Ok(());
                                }
                            }
                        }
                    }
                })
                .await
                .map_err(|err| err.to_string())
            })
        })
        .collect();
    for slot in &slots {
        if let AsyncResult::Done(Err(err)) = slot.wait(p).await {
            return Err(err);
        }
    }
    if let Some(err) = fatal.borrow_mut().take() {
        return Err(err);
    }
    let results = results.borrow().clone();
    Ok((results, from_store))
}

fn launcher(sim: &Sim, starts: &Starts, phase: &Arc<AtomicU32>) -> Rc<SimLauncher> {
    Rc::new(
        SimLauncher::new(sim.handle(), table(starts.clone(), phase.clone())).retry_policy(
            RetryPolicy {
                max_retries: None,
                pause: Duration::from_millis(100),
                pause_max: Duration::from_secs(2),
            },
        ),
    )
}

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// A master crash at any virtual time, then a resumed master on a copy of the
    /// committed results: every argument gets its one right result, the store ends with
    /// each key once and no key written twice, and no closure whose result was committed
    /// before the crash starts again (worker nodes may crash too).
    #[test]
    fn a_master_crash_then_resume_yields_every_result_once_and_reruns_nothing_committed(
        seed in any::<u64>(),
        crash_ms in 0u64..5_000,
        worker_crashes in any::<bool>(),
    ) {
        let faults = Faults { crash_rate: if worker_crashes { 0.2 } else { 0.0 }, ..Faults::calm() };
        let mut sim = Sim::with_faults(seed, faults);
        let starts: Starts = Arc::default();
        let phase = Arc::new(AtomicU32::new(1));
        let disk = MemoryDisk::new();

        let first_master = sim.add_node();
        sim.schedule(Duration::from_millis(crash_ms), Fault::Crash(0));
        let (l, store) = (launcher(&sim, &starts, &phase), Rc::new(MemoryStore::new(disk.clone(), VERSION)));
        let first = sim.run_until(&first_master, move |p| async move { master(&p, l, store).await });
        let committed: BTreeSet<Key> = disk.results().keys().copied().collect();
        if let Ok(outcome) = &first {
            // It finished before the crash: everything is committed.
            prop_assert!(outcome.is_ok(), "seed {seed}: {outcome:?}");
            prop_assert_eq!(committed.len() as u64, TASKS, "seed {}", seed);
        }

        phase.store(2, Ordering::SeqCst);
        let resumed_disk = disk.copy();
        let second_master = sim.add_node();
        let (l, store) = (launcher(&sim, &starts, &phase), Rc::new(MemoryStore::new(resumed_disk.clone(), VERSION)));
        let second = sim.run_until(&second_master, move |p| async move { master(&p, l, store).await });
        let (results, from_store) = second
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))?;

        let expected: BTreeMap<u64, u64> = (0..TASKS).map(|x| (x, x * x)).collect();
        prop_assert_eq!(&results, &expected, "seed {}", seed);
        prop_assert_eq!(from_store, committed.len() as u64, "seed {}", seed);
        prop_assert_eq!(resumed_disk.len() as u64, TASKS, "seed {}", seed);
        prop_assert_eq!(resumed_disk.duplicates(), 0, "seed {}: a result was computed twice in one run", seed);
        for (phase, x) in starts.lock().unwrap().iter() {
            prop_assert!(*phase == 1 || !committed.contains(&key(*x)), "seed {seed}: {x} ran again after it was committed");
        }
    }
}

/// Concurrent calls with one key on different workers run the closure once; the other
/// callers get the stored answer.
#[test]
fn concurrent_calls_with_one_key_run_the_closure_once() {
    let mut sim = Sim::with_faults(3, Faults::calm());
    let starts: Starts = Arc::default();
    let phase = Arc::new(AtomicU32::new(1));
    let node = sim.add_node();
    let l = launcher(&sim, &starts, &phase);
    let disk = MemoryDisk::new();
    let store = Rc::new(MemoryStore::new(disk.clone(), VERSION));
    let answers = sim
        .run_until(&node, move |p| async move {
            let memo = Rc::new(Memoized::new(store));
            let call = Rc::new(RemoteCall::<u64>::new("slow_square", || async { 9u64 }));
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let (l, memo, call) = (l.clone(), memo.clone(), call.clone());
                    p.async_task(move |q| async move {
                        let q = &q;
                        with_remote_runner(q, &*l, |runner| {
                            let (memo, call) = (memo.clone(), call.clone());
                            async move {
                                memo.run(q, &runner, &call).await.map_err(|err| match err {
                                    StoredCallError::Remote(err) => err,
                                    StoredCallError::Store(err) => panic!("{err}"),
                                })
                            }
                        })
                        .await
                        .map_err(|err| err.to_string())
                    })
                })
                .collect();
            let mut answers = Vec::new();
            for task in &tasks {
                answers.push(task.wait(&p).await);
            }
            (answers, memo.runs(), memo.hits())
        })
        .unwrap();
    let (answers, runs, hits) = answers;
    for answer in answers {
        assert_eq!(answer, AsyncResult::Done(Ok(81)));
    }
    assert_eq!((runs, hits), (1, 2));
    assert_eq!(starts.lock().unwrap().len(), 1, "the closure ran once");
    assert_eq!(disk.len(), 1);
}

/// A write that fails (a full disk) ends the run with an error that names the store.
#[test]
fn a_failed_write_is_an_error_of_the_run() {
    let mut sim = Sim::with_faults(5, Faults::calm());
    let starts: Starts = Arc::default();
    let phase = Arc::new(AtomicU32::new(1));
    let node = sim.add_node();
    let l = launcher(&sim, &starts, &phase);
    let store = Rc::new(MemoryStore::new(MemoryDisk::new(), VERSION));
    store.fail_writes(true);
    let outcome = sim
        .run_until(&node, move |p| async move { master(&p, l, store).await })
        .unwrap();
    let err = outcome.unwrap_err();
    assert!(
        err.contains("cannot write to the result store memory"),
        "{err}"
    );
}
