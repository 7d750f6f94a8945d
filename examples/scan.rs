//! The main job: a parameter scan of a numerical integral, run in parallel on workers.
//!
//! ```text
//! cargo run --release --example scan -- --workers 4                  # local worker processes over TCP
//! cargo run --release --example scan -- --launcher sim --seed 7      # the simulator, with faults
//! cargo run --release --example scan -- --launcher slurm --workers 2 # Slurm jobs
//! cargo run --release --example scan -- --workers 4 --resume         # after a kill: the rest only
//! ```
//!
//! For each `a` in the scan it computes I(a) = ∫₀¹⁰ exp(−a x²) cos(3x) dx by adaptive
//! Simpson quadrature on a worker, and checks it against the closed form
//! ½ √(π/a) exp(−9/(4a)). Failed workers are replaced and their tasks retried. Each result
//! is committed to the run's store (`results.db`) as it arrives, and `results.csv` is
//! written from them; `--resume` starts from the latest run's results and computes only
//! what is missing.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hyperion::cluster::{self, Master};
use hyperion::launch::{LocalLauncher, SlurmLauncher, SlurmOptions};
use hyperion::remote::{
    with_remote_runner, Memoized, RemoteCall, RemoteError, RetryPolicy, StoredCallError,
    WorkerLauncher,
};
use hyperion::store::{MemoryDisk, MemoryStore, ResultStore};
use hyperion::transport::tcp::TcpConfig;
use hyperion::{Node, NodeConfig, Process, RemoteTable};
use hyperion_sim::{Sim, SimLauncher};
use indicatif::{ProgressBar, ProgressStyle};

/// The store's version tag: change it when the integrand or the quadrature changes, so
/// that old results are not reused.
const STORE_VERSION: &str = "scan-v1";

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

/// The work a worker does for one parameter.
fn integrate(a: f64) -> f64 {
    adaptive(a, 0.0, 10.0, simpson(a, 0.0, 10.0), 1e-13, 50)
}

fn exact(a: f64) -> f64 {
    0.5 * (std::f64::consts::PI / a).sqrt() * (-9.0 / (4.0 * a)).exp()
}

fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
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
    table
}

struct Options {
    workers: usize,
    tasks: usize,
    launcher: String,
    seed: u64,
    out: Option<String>,
    pause_ms: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workers: 4,
        tasks: 64,
        launcher: "local".into(),
        seed: 1,
        out: None,
        pause_ms: 0,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--workers" => options.workers = number()?.max(1) as usize,
            "--tasks" => options.tasks = number()?.max(1) as usize,
            "--launcher" => options.launcher = value.clone(),
            "--seed" => options.seed = number()?,
            "--out" => options.out = Some(value.clone()),
            "--pause-ms" => options.pause_ms = number()?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// Progress shown while the scan runs.
struct Progress {
    bar: ProgressBar,
    alive: Cell<usize>,
    retries: Cell<usize>,
}

impl Progress {
    fn new(tasks: usize, visible: bool) -> Progress {
        let bar = if visible {
            ProgressBar::new(tasks as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} tasks  {msg}")
                .expect("a valid template"),
        );
        Progress {
            bar,
            alive: Cell::new(0),
            retries: Cell::new(0),
        }
    }

    fn show(&self) {
        self.bar.set_message(format!(
            "workers alive {}  retries {}",
            self.alive.get(),
            self.retries.get()
        ));
    }
}

/// What a scan produced.
struct Outcome {
    results: Vec<Option<f64>>,
    /// Results read from the store (a resumed run's).
    from_store: u64,
    /// Results computed by workers in this run.
    computed: u64,
    /// Why the scan stopped early (the store failed).
    error: Option<String>,
}

/// The master: results already in the store are taken from it; `workers` services pull
/// the missing parameters from a shared queue until it is empty, each result committed
/// to the store as it arrives. A failed worker's task goes back on the queue; the
/// launcher's policy starts a replacement.
async fn scan<L: WorkerLauncher + 'static>(
    p: &Process,
    launcher: Rc<L>,
    store: Rc<dyn ResultStore>,
    params: Vec<f64>,
    workers: usize,
    pause_ms: u64,
    progress: Rc<Progress>,
) -> Outcome {
    let memo = Rc::new(Memoized::new(store));
    let queue: Rc<RefCell<VecDeque<usize>>> = Rc::default();
    let results: Rc<RefCell<Vec<Option<f64>>>> = Rc::new(RefCell::new(vec![None; params.len()]));
    let error: Rc<RefCell<Option<String>>> = Rc::default();
    let calls: Rc<Vec<RemoteCall<f64>>> = Rc::new(
        params
            .iter()
            .map(|&a| {
                if pause_ms == 0 {
                    RemoteCall::new("integrate", move || async move { a })
                } else {
                    RemoteCall::new("integrate_slowly", move || async move { (a, pause_ms) })
                }
            })
            .collect(),
    );
    // Only what the store lacks is queued, and only as many workers as it needs.
    for (task, call) in calls.iter().enumerate() {
        match memo.lookup(p, call).await {
            Ok(Some(value)) => {
                results.borrow_mut()[task] = Some(value);
                progress.bar.inc(1);
            }
            Ok(None) => queue.borrow_mut().push_back(task),
            Err(err) => *error.borrow_mut() = Some(err.to_string()),
        }
    }
    let workers = if error.borrow().is_some() {
        0
    } else {
        workers.min(queue.borrow().len())
    };
    let slots: Vec<_> = (0..workers)
        .map(|_| {
            let (launcher, queue, results, calls, progress, memo, error) = (
                launcher.clone(),
                queue.clone(),
                results.clone(),
                calls.clone(),
                progress.clone(),
                memo.clone(),
                error.clone(),
            );
            p.async_task(move |slot| async move {
                let slot = &slot;
                let outcome = with_remote_runner(slot, &*launcher, |runner| {
                    let (queue, results, calls, progress, memo, error) = (
                        queue.clone(),
                        results.clone(),
                        calls.clone(),
                        progress.clone(),
                        memo.clone(),
                        error.clone(),
                    );
                    async move {
                        progress.alive.set(progress.alive.get() + 1);
                        progress.show();
                        let tasks = Tasks {
                            queue: &queue,
                            results: &results,
                            calls: &calls,
                            memo: &memo,
                            error: &error,
                        };
                        let outcome = serve_tasks(slot, &runner, tasks, &progress).await;
                        progress.alive.set(progress.alive.get() - 1);
                        if outcome.is_err() {
                            progress.retries.set(progress.retries.get() + 1);
                        }
                        progress.show();
                        outcome
                    }
                })
                .await;
                outcome.map_err(|err| err.to_string())
            })
        })
        .collect();
    for slot in &slots {
        if let hyperion::AsyncResult::Done(Err(err)) = slot.wait(p).await {
            tracing::error!(%err, "a worker slot gave up");
        }
    }
    progress.bar.finish();
    let done = results.borrow().clone();
    let error = error.borrow_mut().take();
    Outcome {
        results: done,
        from_store: memo.hits(),
        computed: memo.runs(),
        error,
    }
}

/// What a worker slot works from.
struct Tasks<'a> {
    queue: &'a RefCell<VecDeque<usize>>,
    results: &'a RefCell<Vec<Option<f64>>>,
    calls: &'a [RemoteCall<f64>],
    memo: &'a Memoized<dyn ResultStore>,
    /// The store's failure, which stops the scan.
    error: &'a RefCell<Option<String>>,
}

async fn serve_tasks(
    p: &Process,
    runner: &hyperion::remote::Runner,
    tasks: Tasks<'_>,
    progress: &Progress,
) -> Result<(), RemoteError> {
    loop {
        let Some(task) = tasks.queue.borrow_mut().pop_front() else {
            return Ok(());
        };
        match tasks.memo.run(p, runner, &tasks.calls[task]).await {
            Ok(value) => {
                tasks.results.borrow_mut()[task] = Some(value);
                progress.bar.inc(1);
            }
            Err(StoredCallError::Remote(err)) => {
                tasks.queue.borrow_mut().push_back(task);
                return Err(err);
            }
            Err(StoredCallError::Store(err)) => {
                // Results can no longer be kept: stop, keeping what is stored.
                tracing::error!(%err, "the result store failed; stopping the scan");
                tasks.error.borrow_mut().get_or_insert(err.to_string());
                tasks.queue.borrow_mut().clear();
                return Ok(());
            }
        }
    }
}

fn params(tasks: usize) -> Vec<f64> {
    (0..tasks)
        .map(|i| A_MIN + (A_MAX - A_MIN) * i as f64 / (tasks.max(2) - 1) as f64)
        .collect()
}

/// Writes `out` (every result, each committed to the store already) and the summary.
fn write_csv(params: &[f64], results: &[Option<f64>], out: &std::path::Path) -> csv::Result<f64> {
    let mut csv = csv::Writer::from_path(out)?;
    csv.write_record(["a", "integral", "exact", "error"])?;
    let mut worst: f64 = 0.0;
    for (a, value) in params.iter().zip(results) {
        if let Some(value) = value {
            let error = (value - exact(*a)).abs();
            worst = worst.max(error);
            csv.write_record([
                a.to_string(),
                value.to_string(),
                exact(*a).to_string(),
                format!("{error:e}"),
            ])?;
        }
    }
    csv.flush()?;
    Ok(worst)
}

fn report(params: &[f64], outcome: &Outcome, out: &std::path::Path, elapsed: Duration) -> ExitCode {
    let results = &outcome.results;
    let missing = results.iter().filter(|r| r.is_none()).count();
    let worst = match write_csv(params, results, out) {
        Ok(worst) => worst,
        Err(err) => {
            eprintln!("cannot write {}: {err}", out.display());
            return ExitCode::FAILURE;
        }
    };
    println!(
        "scan: {} of {} integrals in {:.2} s ({} from the store, {} computed), worst error {worst:.1e}, results in {}",
        params.len() - missing,
        params.len(),
        elapsed.as_secs_f64(),
        outcome.from_store,
        outcome.computed,
        out.display()
    );
    if let Some(error) = &outcome.error {
        eprintln!("{error}");
        return ExitCode::FAILURE;
    }
    if missing == 0 && worst < 1e-9 {
        ExitCode::SUCCESS
    } else {
        eprintln!("scan incomplete or inaccurate: {missing} missing");
        ExitCode::FAILURE
    }
}

fn run_master(master: Master) -> ExitCode {
    let options = match parse(&master.args) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("{why}\nusage: scan [--workers N] [--tasks N] [--launcher local|sim|slurm] [--seed S] [--out FILE] [--pause-ms MS] [--resume [RUN]]");
            return ExitCode::from(2);
        }
    };
    let params = params(options.tasks);
    let out = options
        .out
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| master.run_dir.join("results.csv"));
    let started = Instant::now();
    let results = match options.launcher.as_str() {
        "sim" => {
            let mut sim = Sim::new(options.seed);
            let node = sim.add_node();
            let launcher = Rc::new(SimLauncher::new(sim.handle(), table()).retry_policy(
                RetryPolicy {
                    max_retries: None,
                    pause: Duration::from_millis(200),
                    pause_max: Duration::from_secs(5),
                },
            ));
            let (ps, workers, pause_ms) = (params.clone(), options.workers, options.pause_ms);
            // The simulator keeps results in memory (a simulated disk).
            let store: Rc<dyn ResultStore> =
                Rc::new(MemoryStore::new(MemoryDisk::new(), STORE_VERSION));
            let results = sim.run_until(&node, move |p| async move {
                scan(
                    &p,
                    launcher,
                    store,
                    ps,
                    workers,
                    pause_ms,
                    Rc::new(Progress::new(0, false)),
                )
                .await
            });
            println!(
                "simulated with seed {} ({} frames, {:?} virtual time, faults {:?})",
                options.seed,
                sim.frames_delivered(),
                sim.now(),
                sim.fault_plan()
            );
            match results {
                Ok(results) => results,
                Err(err) => {
                    eprintln!(
                        "simulation failed: {err}; replay with --seed {}",
                        options.seed
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        "local" | "slurm" => {
            // Opened here, before the node runs: opening touches the disk.
            let store = match master.open_store(STORE_VERSION) {
                Ok(store) => store,
                Err(err) => {
                    eprintln!("{err}");
                    return ExitCode::FAILURE;
                }
            };
            let transport = TcpConfig::bind(if options.launcher == "local" {
                "127.0.0.1:0"
            } else {
                "0.0.0.0:0"
            })
            .cookie_file(&master.cookie_file);
            let node = match Node::tcp(transport, NodeConfig::default()) {
                Ok(node) => node,
                Err(err) => {
                    eprintln!("cannot start the master's node: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let (ps, workers, launcher_kind, pause_ms) = (
                params.clone(),
                options.workers,
                options.launcher.clone(),
                options.pause_ms,
            );
            let (cookie, log_dir) = (master.cookie_file.clone(), master.log_dir.clone());
            let job_output = master.job_dir.join("%j.out");
            let tasks = params.len();
            let outcome = node.run(move |p| async move {
                let store: Rc<dyn ResultStore> = Rc::new(store);
                let progress = Rc::new(Progress::new(tasks, true));
                let policy = RetryPolicy {
                    max_retries: Some(20),
                    pause: Duration::from_millis(200),
                    pause_max: Duration::from_secs(5),
                };
                if launcher_kind == "local" {
                    let launcher = LocalLauncher::current_exe()
                        .map(|l| l.cookie_file(cookie).log_dir(log_dir).retry_policy(policy));
                    match launcher {
                        Ok(launcher) => Ok(scan(
                            &p,
                            Rc::new(launcher),
                            store,
                            ps,
                            workers,
                            pause_ms,
                            progress,
                        )
                        .await),
                        Err(err) => Err(err.to_string()),
                    }
                } else {
                    let options = SlurmOptions {
                        output: Some(job_output),
                        ..SlurmOptions::default().job_name("hyperion-scan")
                    };
                    let launcher = SlurmLauncher::new(options)
                        .map(|l| l.cookie_file(cookie).log_dir(log_dir).retry_policy(policy));
                    match launcher {
                        Ok(launcher) => Ok(scan(
                            &p,
                            Rc::new(launcher),
                            store,
                            ps,
                            workers,
                            pause_ms,
                            progress,
                        )
                        .await),
                        Err(err) => Err(err.to_string()),
                    }
                }
            });
            match outcome {
                Ok(Ok(results)) => results,
                Ok(Err(why)) => {
                    eprintln!("{why}");
                    return ExitCode::FAILURE;
                }
                Err(reason) => {
                    eprintln!("the master died: {reason}");
                    return ExitCode::FAILURE;
                }
            }
        }
        other => {
            eprintln!("unknown launcher {other:?} (local, sim or slurm)");
            return ExitCode::from(2);
        }
    };
    report(&params, &results, &out, started.elapsed())
}

fn main() -> ExitCode {
    cluster::main(table(), run_master)
}
