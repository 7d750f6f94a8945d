//! The main job: a parameter scan of a numerical integral, run in parallel on workers.
//!
//! ```text
//! cargo run --release --example scan -- --workers 4                  # local worker processes over TCP
//! cargo run --release --example scan -- --launcher sim --seed 7      # the simulator, with faults
//! cargo run --release --example scan -- --launcher slurm --workers 2 # Slurm jobs
//! ```
//!
//! For each `a` in the scan it computes I(a) = ∫₀¹⁰ exp(−a x²) cos(3x) dx by adaptive
//! Simpson quadrature on a worker, and checks it against the closed form
//! ½ √(π/a) exp(−9/(4a)). Failed workers are replaced and their tasks retried. Results go
//! to a CSV file.
//!
//! It prints its status page's address first (`status: http://127.0.0.1:PORT/?token=…`).
//! With `--hold`, a failed task waits on the page for someone to press "retry" instead
//! of being retried at once; `--fail-once K` makes task K fail its first attempt (to
//! see that happen).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hyperion::cluster::{self, Master};
use hyperion::launch::{LocalLauncher, SlurmLauncher, SlurmOptions};
use hyperion::remote::{
    with_remote_runner, LaunchError, OnRemoteError, RemoteCall, RemoteError, RetryPolicy,
    ServiceId, WorkerLauncher,
};
use hyperion::status::StatusBoard;
use hyperion::transport::tcp::TcpConfig;
use hyperion::NodeId;
use hyperion::{Node, NodeConfig, Process, RemoteTable};
use hyperion_sim::{Sim, SimLauncher};
use indicatif::{ProgressBar, ProgressStyle};

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
    // The same work, failing its first attempt: the first call creates `marker`.
    table.register_call(
        "integrate_flaky",
        |p: Process, (a, marker): (f64, String)| async move {
            let first = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker)
                .is_ok();
            if first {
                return Err(format!("injected failure: first attempt of a = {a}"));
            }
            Ok::<_, String>(p.run_blocking(move || integrate(a)).await)
        },
    );
    table
}

/// A launcher whose failures are held for an operator (the status page's "retry")
/// rather than retried by the inner launcher's policy.
struct Holding<L>(L);

impl<L: WorkerLauncher> WorkerLauncher for Holding<L> {
    type JobId = L::JobId;

    async fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<L::JobId, LaunchError> {
        self.0.launch(p, master, service).await
    }

    fn connection_timeout(&self) -> Option<Duration> {
        self.0.connection_timeout()
    }

    fn on_remote_error(&self, _error: &RemoteError, _retries_so_far: u32) -> OnRemoteError {
        OnRemoteError::Hold
    }

    fn cancel(&self, job: &L::JobId) {
        self.0.cancel(job)
    }

    fn on_exit(&self, job: &L::JobId) {
        self.0.on_exit(job)
    }
}

struct Options {
    workers: usize,
    tasks: usize,
    launcher: String,
    seed: u64,
    out: Option<String>,
    pause_ms: u64,
    hold: bool,
    fail_once: Option<usize>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workers: 4,
        tasks: 64,
        launcher: "local".into(),
        seed: 1,
        out: None,
        pause_ms: 0,
        hold: false,
        fail_once: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--hold" {
            options.hold = true;
            continue;
        }
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
            "--fail-once" => options.fail_once = Some(number()? as usize),
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

/// The master: `workers` services pull parameters from a shared queue until it is
/// empty. A failed worker's task goes back on the queue; the launcher's policy starts a
/// replacement.
/// What the scan runs: the parameters, and how each call behaves.
struct Work {
    params: Vec<f64>,
    pause_ms: u64,
    /// A task that fails its first attempt, and the marker file that records it.
    fail_once: Option<(usize, String)>,
    /// Whether failed tasks wait for the status page (the launcher holds) rather than
    /// going back on the queue.
    hold: bool,
}

/// The key of task `i` on the status page.
fn key(i: usize, a: f64) -> String {
    format!("{i:03} a={a:.4}")
}

/// What every worker slot shares.
struct Shared {
    queue: RefCell<VecDeque<usize>>,
    results: RefCell<Vec<Option<f64>>>,
    calls: Vec<RemoteCall<f64>>,
    keys: Vec<String>,
    progress: Rc<Progress>,
    board: StatusBoard,
    hold: bool,
}

async fn scan<L: WorkerLauncher + 'static>(
    p: &Process,
    launcher: Rc<L>,
    work: Work,
    workers: usize,
    progress: Rc<Progress>,
    board: StatusBoard,
) -> Vec<Option<f64>> {
    let Work {
        params,
        pause_ms,
        fail_once,
        hold,
    } = work;
    let keys: Vec<String> = params.iter().enumerate().map(|(i, &a)| key(i, a)).collect();
    let calls: Vec<RemoteCall<f64>> = params
        .iter()
        .enumerate()
        .map(|(i, &a)| match &fail_once {
            Some((k, marker)) if *k == i => {
                let marker = marker.clone();
                RemoteCall::new("integrate_flaky", move || async move { (a, marker) })
            }
            _ if pause_ms == 0 => RemoteCall::new("integrate", move || async move { a }),
            _ => RemoteCall::new("integrate_slowly", move || async move { (a, pause_ms) }),
        })
        .collect();
    for (key, call) in keys.iter().zip(&calls) {
        board.task_queued(p, key, call.label());
    }
    let shared = Rc::new(Shared {
        queue: RefCell::new((0..params.len()).collect()),
        results: RefCell::new(vec![None; params.len()]),
        calls,
        keys,
        progress,
        board,
        hold,
    });
    let slots: Vec<_> = (0..workers)
        .map(|_| {
            let (launcher, shared) = (launcher.clone(), shared.clone());
            p.async_task(move |slot| async move {
                let slot = &slot;
                // The task this slot's last worker failed, retried first when held.
                let retry_first: Rc<Cell<Option<usize>>> = Rc::new(Cell::new(None));
                let outcome = with_remote_runner(slot, &*launcher, |runner| {
                    let (shared, retry_first) = (shared.clone(), retry_first.clone());
                    async move {
                        let progress = &shared.progress;
                        progress.alive.set(progress.alive.get() + 1);
                        progress.show();
                        let outcome = serve_tasks(slot, &runner, &shared, &retry_first).await;
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
    shared.progress.bar.finish();
    let done = shared.results.borrow().clone();
    done
}

async fn serve_tasks(
    p: &Process,
    runner: &hyperion::remote::Runner,
    shared: &Shared,
    retry_first: &Cell<Option<usize>>,
) -> Result<(), RemoteError> {
    loop {
        let next = retry_first.take();
        let Some(task) = next.or_else(|| shared.queue.borrow_mut().pop_front()) else {
            return Ok(());
        };
        let key = &shared.keys[task];
        if shared.board.is_cancelled(key) {
            continue;
        }
        shared.board.task_started(p, key, runner.service_id());
        match runner.run(p, &shared.calls[task]).await {
            Ok(value) => {
                shared.results.borrow_mut()[task] = Some(value);
                shared.board.task_done(p, key);
                shared.progress.bar.inc(1);
            }
            Err(err) => {
                shared.board.task_failed(p, key, &err.to_string());
                if shared.hold {
                    retry_first.set(Some(task));
                } else {
                    shared.board.task_queued(p, key, shared.calls[task].label());
                    shared.queue.borrow_mut().push_back(task);
                }
                return Err(err);
            }
        }
    }
}

fn params(tasks: usize) -> Vec<f64> {
    (0..tasks)
        .map(|i| A_MIN + (A_MAX - A_MIN) * i as f64 / (tasks.max(2) - 1) as f64)
        .collect()
}

fn report(
    params: &[f64],
    results: &[Option<f64>],
    out: &std::path::Path,
    elapsed: Duration,
) -> ExitCode {
    let mut csv = String::from("a,integral,exact,error\n");
    let mut worst: f64 = 0.0;
    let mut missing = 0;
    for (a, value) in params.iter().zip(results) {
        match value {
            Some(value) => {
                let error = (value - exact(*a)).abs();
                worst = worst.max(error);
                csv.push_str(&format!("{a},{value},{},{error:e}\n", exact(*a)));
            }
            None => missing += 1,
        }
    }
    if let Err(err) = std::fs::write(out, csv) {
        eprintln!("cannot write {}: {err}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "scan: {} of {} integrals in {:.2} s, worst error {worst:.1e}, results in {}",
        params.len() - missing,
        params.len(),
        elapsed.as_secs_f64(),
        out.display()
    );
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
            eprintln!("{why}\nusage: scan [--workers N] [--tasks N] [--launcher local|sim|slurm] [--seed S] [--out FILE] [--pause-ms MS] [--hold] [--fail-once K] [--status-addr IP:PORT | --no-status]");
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
    let work = {
        let (params, pause_ms, hold) = (params.clone(), options.pause_ms, options.hold);
        let marker = |k: usize| {
            (
                k,
                master
                    .run_dir
                    .join(format!("failed-once-{k}"))
                    .display()
                    .to_string(),
            )
        };
        let fail_once = options.fail_once.filter(|&k| k < params.len()).map(marker);
        move || Work {
            params,
            pause_ms,
            fail_once,
            hold,
        }
    };
    let board = master.status.clone();
    board.set_launcher(&options.launcher);
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
            let (work, workers) = (work(), options.workers);
            let results = sim.run_until(&node, move |p| async move {
                let progress = Rc::new(Progress::new(0, false));
                scan(&p, launcher, work, workers, progress, board).await
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
            let (work, workers, launcher_kind, hold) = (
                work(),
                options.workers,
                options.launcher.clone(),
                options.hold,
            );
            let (cookie, log_dir) = (master.cookie_file.clone(), master.log_dir.clone());
            let job_output = master.job_dir.join("%j.out");
            let tasks = params.len();
            let outcome = node.run(move |p| async move {
                board.attach(&p);
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
                        Ok(launcher) if hold => {
                            let launcher = Rc::new(Holding(launcher));
                            Ok(scan(&p, launcher, work, workers, progress, board).await)
                        }
                        Ok(launcher) => {
                            Ok(scan(&p, Rc::new(launcher), work, workers, progress, board).await)
                        }
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
                        Ok(launcher) if hold => {
                            let launcher = Rc::new(Holding(launcher));
                            Ok(scan(&p, launcher, work, workers, progress, board).await)
                        }
                        Ok(launcher) => {
                            Ok(scan(&p, Rc::new(launcher), work, workers, progress, board).await)
                        }
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
