//! The scan's job, shared by the example (`examples/scan.rs`) and the simulator's `scan`
//! scenario (`sim/src/scenarios/scan.rs` includes this file), so that the simulator
//! explores the very code the example runs: the integral each point computes, the
//! closures workers run, and the master's loop that serves the points to worker slots
//! through the result store. It uses `hyperion` and `std` only, so that it compiles in
//! both crates; what the example alone does (terminal, status page, results file,
//! signals) it reaches through [`Watch`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{
    with_remote_runner, Memoized, RemoteCall, RemoteError, Runner, RunnerError, ServiceError,
    ServiceId, StoredCallError, WorkerLauncher,
};
use hyperion::store::ResultStore;
use hyperion::{AsyncResult, Process, RemoteTable};

/// The store's version tag: change it when the integrand or the quadrature changes, so
/// that old results are not reused.
pub const STORE_VERSION: &str = "scan-v1";

/// The integrand's parameter range.
const A_MIN: f64 = 0.5;
const A_MAX: f64 = 4.0;

fn integrand(a: f64, x: f64) -> f64 {
    (-a * x * x).exp() * (3.0 * x).cos()
}

fn simpson(a: f64, lo: f64, hi: f64) -> f64 {
    let mid = 0.5 * (lo + hi);
    (hi - lo) / 6.0 * (integrand(a, lo) + 4.0 * integrand(a, mid) + integrand(a, hi))
}

fn adaptive(a: f64, lo: f64, hi: f64, whole: f64, tolerance: f64, depth: u32) -> f64 {
    let mid = 0.5 * (lo + hi);
    let (left, right) = (simpson(a, lo, mid), simpson(a, mid, hi));
    if depth == 0 || (left + right - whole).abs() <= 15.0 * tolerance {
        return left + right + (left + right - whole) / 15.0;
    }
    adaptive(a, lo, mid, left, tolerance / 2.0, depth - 1)
        + adaptive(a, mid, hi, right, tolerance / 2.0, depth - 1)
}

/// The work a worker does for one parameter: I(a) = ∫₀¹⁰ exp(−a x²) cos(3x) dx by
/// adaptive Simpson quadrature.
pub fn integrate(a: f64) -> f64 {
    adaptive(a, 0.0, 10.0, simpson(a, 0.0, 10.0), 1e-13, 50)
}

/// The closed form of [`integrate`]: ½ √(π/a) exp(−9/(4a)).
pub fn exact(a: f64) -> f64 {
    0.5 * (std::f64::consts::PI / a).sqrt() * (-9.0 / (4.0 * a)).exp()
}

/// Services in a row whose worker never came up (it ended before connecting, or did
/// not connect in time) after which a slot gives up while points remain. A launch that
/// fails (no `sbatch`, say) is not retried: it would fail the same way.
pub const SERVICE_FAILURES_MAX: u32 = 8;
/// Pause before a slot starts another service after one failed.
const SERVICE_RESTART_PAUSE: Duration = Duration::from_secs(1);

/// Largest distance from the closed form that counts as a right answer.
pub const ERROR_MAX: f64 = 1e-9;

/// The scan's parameters: `tasks` points spread over `[A_MIN, A_MAX]`.
pub fn params(tasks: usize) -> Vec<f64> {
    (0..tasks)
        .map(|i| A_MIN + (A_MAX - A_MIN) * i as f64 / (tasks.max(2) - 1) as f64)
        .collect()
}

/// Registers the closures a worker runs for a point: `integrate` (a parameter), and
/// `integrate_slowly` (a parameter and a pause before it, in milliseconds).
pub fn register(table: &mut RemoteTable) {
    table.register_call("integrate", |p: Process, a: f64| async move {
        if !(a.is_finite() && a > 0.0) {
            return Err(format!("parameter {a} out of range"));
        }
        Ok::<_, String>(p.run_blocking(move || integrate(a)).await)
    });
    // The same work, after a pause: for watching retries and kills happen.
    table.register_call(
        "integrate_slowly",
        |p: Process, (a, pause_ms): (f64, u64)| async move {
            p.sleep(Duration::from_millis(pause_ms)).await;
            Ok::<_, String>(p.run_blocking(move || integrate(a)).await)
        },
    );
}

/// The remote call that computes the point `a`, after `pause_ms` milliseconds.
pub fn call(a: f64, pause_ms: u64) -> RemoteCall<f64> {
    if pause_ms == 0 {
        RemoteCall::new("integrate", move || async move { a })
    } else {
        RemoteCall::new("integrate_slowly", move || async move { (a, pause_ms) })
    }
}

/// What the master tells as the scan goes on (the example: its terminal, status page
/// and results file; the scenario: the counts its invariants check). Tasks are named by
/// their index in the scan's calls.
pub trait Watch {
    /// Task `task` (the call `label`) waits for a worker.
    fn queued(&self, p: &Process, task: usize, label: &str);
    /// Task `task` started on the worker of `service`.
    fn started(&self, p: &Process, task: usize, service: &ServiceId);
    /// Task `task` has its result: read from the store (`stored`) or just computed.
    fn done(&self, p: &Process, task: usize, value: f64, stored: bool);
    /// Task `task` failed (it is queued again, or held).
    fn failed(&self, p: &Process, task: usize, why: &str);
    /// Whether someone cancelled task `task` (it is skipped).
    fn cancelled(&self, task: usize) -> bool;
    /// A slot's worker came up, or went (`failed`: its service ended by an error).
    fn worker(&self, up: bool, failed: bool);
    /// Whether the scan should stop now (a signal), polled while the slots run.
    fn interrupted(&self) -> bool;
}

/// How a scan runs.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Worker services at once.
    pub workers: usize,
    /// Whether a failed task waits for its slot's next worker (the launcher holds it
    /// for an operator) rather than going back on the queue.
    pub hold: bool,
    /// How often to ask [`Watch::interrupted`] (`None`: never; a simulated master).
    pub interrupt_poll: Option<Duration>,
}

/// What a scan computed.
#[derive(Clone, Debug)]
pub struct Scanned {
    /// Each task's result, if it has one.
    pub results: Vec<Option<f64>>,
    /// Whether [`Watch::interrupted`] stopped it.
    pub interrupted: bool,
    /// Results read from the store (a resumed run's).
    pub from_store: u64,
    /// Results computed by workers in this run.
    pub computed: u64,
    /// Why the scan stopped early (the store failed).
    pub error: Option<String>,
}

/// The master: results already in the store are taken from it; `workers` services pull
/// the missing tasks from a shared queue until it is empty, each result committed to
/// the store as it arrives. A failed worker's task goes back on the queue (or waits for
/// the slot's next worker, with `hold`); the launcher's policy starts a replacement.
pub async fn scan<L: WorkerLauncher + 'static>(
    p: &Process,
    launcher: Rc<L>,
    store: Rc<dyn ResultStore>,
    calls: Vec<RemoteCall<f64>>,
    settings: Settings,
    watch: Rc<dyn Watch>,
) -> Scanned {
    let memo = Rc::new(Memoized::new(store));
    let shared = Rc::new(Shared {
        queue: RefCell::default(),
        results: RefCell::new(vec![None; calls.len()]),
        calls,
        error: RefCell::default(),
        hold: settings.hold,
        watch,
    });
    // Only what the store lacks is queued, and only as many workers as it needs.
    for (task, call) in shared.calls.iter().enumerate() {
        shared.watch.queued(p, task, call.label());
        match memo.lookup(p, call).await {
            Ok(Some(value)) => {
                shared.results.borrow_mut()[task] = Some(value);
                shared.watch.done(p, task, value, true);
            }
            Ok(None) => shared.queue.borrow_mut().push_back(task),
            Err(err) => *shared.error.borrow_mut() = Some(err.to_string()),
        }
    }
    let workers = if shared.error.borrow().is_some() {
        0
    } else {
        settings.workers.min(shared.queue.borrow().len())
    };
    let slots: Vec<_> = (0..workers)
        .map(|_| {
            let (launcher, shared, memo) = (launcher.clone(), shared.clone(), memo.clone());
            p.async_task(move |slot| async move {
                let slot = &slot;
                // The task this slot's last worker failed, retried first when held.
                let retry_first: Rc<Cell<Option<usize>>> = Rc::default();
                let workers_started = Rc::new(Cell::new(0u32));
                // A service whose worker never comes up ends the runner (the launcher's
                // retry policy covers failures of remote work, not of the start): the
                // slot starts another while points remain, or its share is never done.
                let mut failures_in_a_row = 0;
                loop {
                    let started_before = workers_started.get();
                    let outcome = with_remote_runner(slot, &*launcher, |runner| {
                        let (shared, memo) = (shared.clone(), memo.clone());
                        let (retry_first, workers_started) =
                            (retry_first.clone(), workers_started.clone());
                        async move {
                            workers_started.set(workers_started.get() + 1);
                            hyperion::sometimes!(
                                "scan.worker_replaced",
                                workers_started.get() > 1
                            );
                            shared.watch.worker(true, false);
                            let outcome = serve(slot, &runner, &shared, &memo, &retry_first).await;
                            shared.watch.worker(false, outcome.is_err());
                            outcome
                        }
                    })
                    .await;
                    if workers_started.get() > started_before {
                        failures_in_a_row = 0;
                    }
                    let work_left =
                        !shared.queue.borrow().is_empty() || retry_first.get().is_some();
                    match outcome {
                        Err(RunnerError::Service(
                            err @ (ServiceError::WorkerConnectionTimeout(_)
                            | ServiceError::WorkerEndedBeforeConnecting { .. }),
                        )) if work_left && failures_in_a_row < SERVICE_FAILURES_MAX =>
                        {
                            failures_in_a_row += 1;
                            hyperion::reached!("scan.service_restarted");
                            tracing::warn!(%err, failures_in_a_row, "a worker never came up; starting another");
                            slot.sleep(SERVICE_RESTART_PAUSE).await;
                        }
                        outcome => break outcome.map_err(|err| err.to_string()),
                    }
                }
            })
        })
        .collect();
    let mut interrupted = false;
    'slots: for slot in &slots {
        let outcome = loop {
            let Some(poll) = settings.interrupt_poll else {
                break slot.wait(p).await;
            };
            if shared.watch.interrupted() {
                interrupted = true;
                break 'slots;
            }
            match slot.wait_timeout(p, poll).await {
                AsyncResult::Pending => continue,
                outcome => break outcome,
            }
        };
        if let AsyncResult::Done(Err(err)) = outcome {
            tracing::error!(%err, "a worker slot gave up");
        }
    }
    if interrupted {
        tracing::warn!("interrupted; stopping the workers");
        // Cancelling a slot ends its service: its worker gets ShutDown and its launcher
        // stops it.
        shared.queue.borrow_mut().clear();
        for slot in &slots {
            slot.cancel(p);
        }
    }
    let results = shared.results.borrow().clone();
    let error = shared.error.borrow_mut().take();
    Scanned {
        results,
        interrupted,
        from_store: memo.hits(),
        computed: memo.runs(),
        error,
    }
}

/// The scan's state, shared by its slots.
struct Shared {
    queue: RefCell<VecDeque<usize>>,
    results: RefCell<Vec<Option<f64>>>,
    calls: Vec<RemoteCall<f64>>,
    /// The store's failure, which stops the scan.
    error: RefCell<Option<String>>,
    hold: bool,
    watch: Rc<dyn Watch>,
}

/// One worker's service: takes tasks until the queue is empty, or the worker fails (its
/// task is then queued again, or held for the slot's next worker).
async fn serve(
    p: &Process,
    runner: &Runner,
    shared: &Shared,
    memo: &Memoized<dyn ResultStore>,
    retry_first: &Cell<Option<usize>>,
) -> Result<(), RemoteError> {
    loop {
        let next = retry_first.take();
        let Some(task) = next.or_else(|| shared.queue.borrow_mut().pop_front()) else {
            return Ok(());
        };
        if shared.watch.cancelled(task) {
            continue;
        }
        shared.watch.started(p, task, runner.service_id());
        match memo.run(p, runner, &shared.calls[task]).await {
            Ok(value) => {
                shared.results.borrow_mut()[task] = Some(value);
                shared.watch.done(p, task, value, false);
            }
            Err(StoredCallError::Remote(err)) => {
                shared.watch.failed(p, task, &err.to_string());
                hyperion::reached!("scan.point_retried");
                if shared.hold {
                    retry_first.set(Some(task));
                } else {
                    shared.watch.queued(p, task, shared.calls[task].label());
                    shared.queue.borrow_mut().push_back(task);
                }
                return Err(err);
            }
            Err(StoredCallError::Store(err)) => {
                shared.watch.failed(p, task, &err.to_string());
                // Results can no longer be kept: stop, keeping what is stored.
                tracing::error!(%err, "the result store failed; stopping the scan");
                shared.error.borrow_mut().get_or_insert(err.to_string());
                shared.queue.borrow_mut().clear();
                return Ok(());
            }
        }
    }
}
