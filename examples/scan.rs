//! The main job: a parameter scan of a numerical integral, run in parallel on workers.
//!
//! ```text
//! cargo run --release --example scan -- --workers 4                  # local worker processes over TCP
//! cargo run --release --example scan -- --launcher sim --seed 7      # the simulator, with faults
//! cargo run --release --example scan -- --launcher slurm --workers 2 # Slurm jobs
//! cargo run --release --example scan -- --launcher slurm --job-arrays --workers 16 # one job array
//! cargo run --release --example scan -- --launcher auto --workers 8  # the allocation's CPUs, or Slurm jobs, or local
//! cargo run --release --example scan -- --workers 4 --resume         # after a kill: the rest only
//! cargo run --release --example scan -- --min-workers 1 --max-workers 8 # an adaptive pool of workers
//! ```
//!
//! For each `a` in the scan it computes I(a) = ∫₀¹⁰ exp(−a x²) cos(3x) dx by adaptive
//! Simpson quadrature on a worker, and checks it against the closed form
//! ½ √(π/a) exp(−9/(4a)). Failed workers are replaced and their tasks retried. Each result
//! is committed to the run's store (`results.db`) as it arrives and appended to
//! `results.csv`; `--resume` starts from the latest run's results and computes only what
//! is missing. With `--min-workers A --max-workers B` (instead of `--workers N`) the
//! workers are an adaptive pool: started while points wait, up to B, and stopped when
//! idle longer than `--idle-timeout`, down to A. `--help` lists the options. Ctrl-C (or SIGTERM) stops the workers and
//! writes the results finished so far.
//!
//! It prints its status page's address first (`status: http://127.0.0.1:PORT/?token=…`).
//! With `--hold`, a failed task waits on the page for someone to press "retry" instead
//! of being retried at once; `--fail-once K` makes task K fail its first attempt (to
//! see that happen).

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hyperion::cluster::{self, Master};
use hyperion::launch::{
    Allocation, AllocationLauncher, LauncherChoice, LocalLauncher, SlurmLauncher, SlurmOptions,
};
use hyperion::remote::{
    LaunchError, OnRemoteError, PoolConfig, PoolStats, RemoteCall, RemoteError, RetryPolicy,
    ServiceId, WorkerLauncher, WorkerPool,
};
use hyperion::status::StatusBoard;
use hyperion::store::{MemoryDisk, MemoryStore, ResultStore};
use hyperion::transport::tcp::TcpConfig;
use hyperion::{Node, NodeConfig, NodeId, Process, RemoteTable};
use hyperion_sim::{Sim, SimLauncher};
use indicatif::{ProgressBar, ProgressStyle};

// The integral, the workers' closures and the master's loop, shared with the
// simulator's `scan` scenario (which explores this very code under faults).
#[path = "scan/job.rs"]
mod job;
// The master's loop through an adaptive pool of workers (--min-workers/--max-workers).
#[path = "scan/pooled.rs"]
mod pooled;

use job::{exact, Settings, STORE_VERSION};

fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    job::register(&mut table);
    // The work, failing its first attempt: the first call creates `marker`.
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
            Ok::<_, String>(p.run_blocking(move || job::integrate(a)).await)
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

/// Most worker processes on this machine per CPU (`--launcher local`): more only
/// compete for the CPUs.
const LOCAL_WORKERS_PER_CPU: usize = 4;
/// Most simulated workers (`--launcher sim`).
const SIM_WORKERS_MAX: usize = 256;
/// Most Slurm jobs alive at once (`--launcher slurm`), the launcher's `max_jobs`.
const SLURM_JOBS_MAX: usize = 64;
/// Most tasks in one scan.
const TASKS_MAX: u64 = 1_000_000;

/// Where the workers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LauncherKind {
    /// Local worker processes over TCP.
    Local,
    /// The deterministic simulator, with faults drawn from --seed.
    Sim,
    /// Slurm batch jobs (run on a login node).
    Slurm,
    /// Inside a Slurm allocation (`salloc`, `sbatch`), job steps on its CPUs; else Slurm
    /// batch jobs if a Slurm controller answers; else local processes.
    Auto,
}

/// Where the workers run, `auto` resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    Local,
    Sim,
    Slurm,
    /// Job steps of the allocation the master runs in.
    Allocation(Allocation),
}

impl Place {
    /// `kind`, with `auto` decided from the environment (and said on the terminal).
    fn of(kind: LauncherKind) -> Result<Place, String> {
        Ok(match kind {
            LauncherKind::Local => Place::Local,
            LauncherKind::Sim => Place::Sim,
            LauncherKind::Slurm => Place::Slurm,
            LauncherKind::Auto => {
                let choice = LauncherChoice::detect()
                    .map_err(|err| format!("scan: --launcher auto: {err}"))?;
                match choice {
                    LauncherChoice::Allocation(allocation) => {
                        println!(
                            "scan: --launcher auto: inside Slurm job {} ({} CPUs on {} nodes): workers are job steps",
                            allocation.job_id,
                            allocation.total_cpus(),
                            allocation.nodes.len()
                        );
                        Place::Allocation(allocation)
                    }
                    LauncherChoice::Slurm => {
                        println!("scan: --launcher auto: Slurm answers: workers are batch jobs");
                        Place::Slurm
                    }
                    LauncherChoice::Local => {
                        println!("scan: --launcher auto: no Slurm: workers are local processes");
                        Place::Local
                    }
                }
            }
        })
    }

    /// The name the status page shows.
    fn name(&self) -> &'static str {
        match self {
            Place::Local => "local",
            Place::Sim => "sim",
            Place::Slurm => "slurm",
            Place::Allocation(_) => "allocation",
        }
    }
}

/// A parameter scan of ∫₀¹⁰ exp(−a x²) cos(3x) dx, each integral computed on a worker
/// and checked against its closed form.
#[derive(Parser, Debug)]
#[command(
    name = "scan",
    after_help = "--resume [RUN]  start from the results of the latest run (or of RUN, a run's name or path) and compute only the rest\n\nThe status page's address is printed first (status: http://127.0.0.1:PORT/?token=...)."
)]
struct Options {
    /// Workers at once (at least 1; capped at one per task and at what the launcher
    /// sustains).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    workers: u64,
    /// An adaptive pool of workers instead of a fixed count: at least this many while
    /// points wait (0 lets it empty; with --max-workers).
    #[arg(
        long,
        value_name = "A",
        requires = "max_workers",
        conflicts_with = "workers"
    )]
    min_workers: Option<u64>,
    /// An adaptive pool of workers instead of a fixed count: at most this many at once
    /// (at least 1, at least --min-workers; capped as --workers is).
    #[arg(long, value_name = "B", conflicts_with_all = ["workers", "hold"], value_parser = clap::value_parser!(u64).range(1..))]
    max_workers: Option<u64>,
    /// Seconds after which an idle worker of the adaptive pool is stopped (down to
    /// --min-workers).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 30,
        requires = "max_workers"
    )]
    idle_timeout: u64,
    /// Integrals to compute.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=TASKS_MAX))]
    tasks: u64,
    /// Where the workers run.
    #[arg(long, value_enum, default_value_t = LauncherKind::Local)]
    launcher: LauncherKind,
    /// The simulator's seed (--launcher sim).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The results file (default: results.csv in the run's directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// A pause before each integral, in milliseconds (to watch retries and kills).
    #[arg(long, default_value_t = 0)]
    pause_ms: u64,
    /// A failed task waits on the status page for "retry" instead of being retried at
    /// once (every launcher but sim).
    #[arg(long)]
    hold: bool,
    /// Slurm workers as the tasks of job arrays (`sbatch --array`, one submission for
    /// the workers started together) instead of one job each.
    #[arg(long)]
    job_arrays: bool,
    /// Task K fails its first attempt (to watch a retry or a hold).
    #[arg(long, value_name = "K")]
    fail_once: Option<u64>,
}

impl Options {
    /// Checks what clap cannot: the adaptive pool's minimum is at most its maximum.
    fn validate(&self) -> Result<(), clap::Error> {
        if let (Some(min), Some(max)) = (self.min_workers, self.max_workers) {
            if min > max {
                return Err(<Options as clap::CommandFactory>::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("--min-workers {min} exceeds --max-workers {max}"),
                ));
            }
        }
        Ok(())
    }

    /// The adaptive pool's bounds (`--max-workers` capped as `--workers` is), or `None`
    /// for a fixed count of workers.
    fn pool(&self, place: &Place) -> Option<PoolConfig> {
        let max = self.max_workers?;
        let max_workers = self.cap(max, "--max-workers", place);
        let min_workers = usize::try_from(self.min_workers.unwrap_or(0))
            .unwrap_or(usize::MAX)
            .min(max_workers);
        Some(PoolConfig {
            min_workers,
            max_workers,
            idle_timeout: Duration::from_secs(self.idle_timeout),
        })
    }

    /// The workers to run: as asked, but no more than tasks nor than the launcher
    /// sustains; says so on the terminal when it caps.
    fn workers(&self, place: &Place) -> usize {
        self.cap(self.workers, "--workers", place)
    }

    /// `asked` workers (by `option`), capped at one per task and at what the launcher
    /// sustains; says so on the terminal when it caps.
    fn cap(&self, asked: u64, option: &str, place: &Place) -> usize {
        let asked = usize::try_from(asked).unwrap_or(usize::MAX);
        let (launcher_max, why) = match place {
            Place::Local => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                (
                    cpus * LOCAL_WORKERS_PER_CPU,
                    format!("{LOCAL_WORKERS_PER_CPU} per CPU here"),
                )
            }
            Place::Sim => (SIM_WORKERS_MAX, "the simulator's most".to_string()),
            Place::Slurm => (SLURM_JOBS_MAX, "the most Slurm jobs at once".to_string()),
            // One CPU each: a worker beyond the allocation's CPUs would only wait for one.
            Place::Allocation(allocation) => (
                usize::try_from(allocation.total_cpus()).unwrap_or(usize::MAX),
                "one per CPU of the allocation".to_string(),
            ),
        };
        let tasks = usize::try_from(self.tasks).unwrap_or(usize::MAX);
        let (workers, why) = if tasks <= launcher_max {
            (asked.min(tasks), "one per task".to_string())
        } else {
            (asked.min(launcher_max), why)
        };
        if workers < asked {
            println!("scan: {option} {asked} capped to {workers} ({why})");
        }
        workers
    }
}

/// Progress shown while the scan runs: on the terminal, on the status page, and in the
/// results file (each result appended as it completes, so a killed scan keeps them).
struct Progress {
    bar: ProgressBar,
    alive: Cell<usize>,
    retries: Cell<usize>,
    /// The status page's board, to which each task's state is reported.
    board: StatusBoard,
    /// Each task's parameter, and its key on the status page.
    params: Vec<f64>,
    keys: Vec<String>,
    /// Taken back at the end, for the report.
    out: RefCell<Option<ResultsFile>>,
    /// The signal that stopped the scan.
    signal: Cell<Option<nix::sys::signal::Signal>>,
}

impl Progress {
    fn new(params: &[f64], visible: bool, board: StatusBoard, out: ResultsFile) -> Progress {
        let bar = if visible {
            ProgressBar::new(params.len() as u64)
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
            board,
            params: params.to_vec(),
            keys: params.iter().enumerate().map(|(i, &a)| key(i, a)).collect(),
            out: RefCell::new(Some(out)),
            signal: Cell::new(None),
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

impl job::Watch for Progress {
    fn queued(&self, p: &Process, task: usize, label: &str) {
        self.board.task_queued(p, &self.keys[task], label);
    }

    fn started(&self, p: &Process, task: usize, service: &ServiceId) {
        self.board.task_started(p, &self.keys[task], service);
    }

    fn done(&self, p: &Process, task: usize, value: f64, stored: bool) {
        if !stored {
            if let Some(out) = self.out.borrow_mut().as_mut() {
                out.append(self.params[task], value);
            }
        }
        self.board.task_done(p, &self.keys[task]);
        self.bar.inc(1);
    }

    fn failed(&self, p: &Process, task: usize, why: &str) {
        self.board.task_failed(p, &self.keys[task], why);
    }

    fn cancelled(&self, task: usize) -> bool {
        self.board.is_cancelled(&self.keys[task])
    }

    fn worker(&self, up: bool, failed: bool) {
        if up {
            self.alive.set(self.alive.get() + 1);
        } else {
            self.alive.set(self.alive.get() - 1);
        }
        if failed {
            self.retries.set(self.retries.get() + 1);
        }
        self.show();
    }

    fn interrupted(&self) -> bool {
        let signal = cluster::interrupted();
        if signal.is_some() {
            self.signal.set(signal);
        }
        signal.is_some()
    }
}

/// What the scan computes: the parameters, and a task that fails its first attempt
/// (`--fail-once`) with the marker file that records it.
struct Work {
    params: Vec<f64>,
    fail_once: Option<(usize, String)>,
    /// The pause before each integral.
    pause_ms: u64,
}

impl Work {
    /// Each task's remote call.
    fn calls(&self) -> Vec<RemoteCall<f64>> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, &a)| match &self.fail_once {
                Some((k, marker)) if *k == i => {
                    let marker = marker.clone();
                    RemoteCall::new("integrate_flaky", move || async move { (a, marker) })
                }
                _ => job::call(a, self.pause_ms),
            })
            .collect()
    }
}

/// The key of task `i` on the status page.
fn key(i: usize, a: f64) -> String {
    format!("{i:03} a={a:.4}")
}

/// How often the terminal shows the adaptive pool's workers.
const POOL_SHOW_INTERVAL: Duration = Duration::from_millis(500);

/// The master's loop ([`job::scan`] with a fixed count of workers, or
/// [`pooled::scan_pooled`] with an adaptive pool) with this program's progress, status
/// page and results file.
async fn scan<L: WorkerLauncher + 'static>(
    p: &Process,
    launcher: L,
    store: Rc<dyn ResultStore>,
    work: Work,
    settings: Settings,
    pool: Option<PoolConfig>,
    progress: Rc<Progress>,
) -> Scanned {
    let calls = work.calls();
    let scanned = match pool {
        None => {
            job::scan(
                p,
                Rc::new(launcher),
                store,
                calls,
                settings,
                progress.clone(),
            )
            .await
        }
        Some(config) => match WorkerPool::new(launcher, config.clone()) {
            Ok(pool) => {
                let shown = pool.clone();
                let shown_on = progress.clone();
                let show = p.spawn_local(move |s| async move {
                    loop {
                        let stats = shown.stats();
                        shown_on.alive.set(stats.workers);
                        shown_on.retries.set(stats.requeued as usize);
                        shown_on.show();
                        s.sleep(POOL_SHOW_INTERVAL).await;
                    }
                    // Ends when killed, at the scan's end.
                    #[allow(unreachable_code)]
                    ()
                });
                let scanned = pooled::scan_pooled(
                    p,
                    pool.clone(),
                    store,
                    calls,
                    config.max_workers,
                    settings.interrupt_poll,
                    progress.clone(),
                )
                .await;
                p.kill(show, "the scan ended");
                progress.bar.suspend(|| report_pool(&pool.stats(), &config));
                scanned
            }
            Err(why) => job::Scanned {
                results: vec![None; calls.len()],
                interrupted: false,
                from_store: 0,
                computed: 0,
                error: Some(format!("the worker pool: {why}")),
            },
        },
    };
    progress.bar.finish_and_clear();
    let out = progress
        .out
        .borrow_mut()
        .take()
        .expect("the results file is taken once");
    Scanned {
        interrupted: progress.signal.get().filter(|_| scanned.interrupted),
        scanned,
        out,
    }
}

/// Says what the adaptive pool did (the scan's tests read this line).
fn report_pool(stats: &PoolStats, config: &PoolConfig) {
    println!(
        "scan: adaptive pool: at most {} workers at once (--min-workers {} --max-workers {}), {} started, {} stopped idle, {} calls queued again",
        stats.workers_peak,
        config.min_workers,
        config.max_workers,
        stats.started,
        stats.stopped_idle,
        stats.requeued
    );
}

/// The results file: each result is appended as it completes (so a killed scan keeps
/// them); the report rewrites it in parameter order at the end.
struct ResultsFile {
    file: std::fs::File,
    path: PathBuf,
}

impl ResultsFile {
    const HEADER: &'static str = "a,integral,exact,error\n";

    /// Creates the file now, so that an unwritable path fails before the scan.
    fn create(path: PathBuf) -> Result<ResultsFile, String> {
        let mut file = std::fs::File::create(&path).map_err(|err| {
            format!(
                "scan: cannot write {}: {}",
                path.display(),
                cluster::io_cause(&err)
            )
        })?;
        file.write_all(Self::HEADER.as_bytes()).map_err(|err| {
            format!(
                "scan: cannot write {}: {}",
                path.display(),
                cluster::io_cause(&err)
            )
        })?;
        Ok(ResultsFile { file, path })
    }

    fn line(a: f64, value: f64) -> String {
        format!("{a},{value},{},{:e}\n", exact(a), (value - exact(a)).abs())
    }

    /// Appends one finished result.
    fn append(&mut self, a: f64, value: f64) {
        if let Err(err) = self.file.write_all(Self::line(a, value).as_bytes()) {
            tracing::error!(path = %self.path.display(), err = %cluster::io_cause(&err), "cannot write a result");
        }
    }

    /// Replaces the contents with every finished result in parameter order.
    fn rewrite(&mut self, params: &[f64], results: &[Option<f64>]) -> std::io::Result<()> {
        let mut csv = String::from(Self::HEADER);
        for (a, value) in params.iter().zip(results) {
            if let Some(value) = value {
                csv.push_str(&Self::line(*a, *value));
            }
        }
        self.file.set_len(0)?;
        std::io::Seek::rewind(&mut self.file)?;
        self.file.write_all(csv.as_bytes())
    }
}

/// What a scan computed, and whether a signal stopped it.
struct Scanned {
    scanned: job::Scanned,
    interrupted: Option<nix::sys::signal::Signal>,
    out: ResultsFile,
}

fn report(params: &[f64], scanned: Scanned, elapsed: Duration) -> ExitCode {
    let Scanned {
        scanned,
        interrupted,
        mut out,
    } = scanned;
    let mut worst: f64 = 0.0;
    let mut missing = 0;
    for (a, value) in params.iter().zip(&scanned.results) {
        match value {
            Some(value) => worst = worst.max((value - exact(*a)).abs()),
            None => missing += 1,
        }
    }
    if let Err(err) = out.rewrite(params, &scanned.results) {
        eprintln!(
            "scan: cannot write {}: {}",
            out.path.display(),
            cluster::io_cause(&err)
        );
        return ExitCode::FAILURE;
    }
    let out = &out.path;
    let done = params.len() - missing;
    if let Some(signal) = interrupted {
        println!(
            "scan: interrupted by {signal}: {done} of {} integrals done, {missing} not computed; finished results in {}",
            params.len(),
            out.display()
        );
        return ExitCode::from(128 + signal as u8);
    }
    println!(
        "scan: {done} of {} integrals in {:.2} s ({} from the store, {} computed), worst error {worst:.1e}, results in {}",
        params.len(),
        elapsed.as_secs_f64(),
        scanned.from_store,
        scanned.computed,
        out.display()
    );
    if let Some(error) = &scanned.error {
        eprintln!("scan: {error}");
        return ExitCode::FAILURE;
    }
    if missing == 0 && worst < job::ERROR_MAX {
        ExitCode::SUCCESS
    } else {
        eprintln!("scan: incomplete or inaccurate: {missing} missing, worst error {worst:.1e}");
        ExitCode::FAILURE
    }
}

/// A real-world scan, waiting for its launcher.
struct Run {
    store: Rc<dyn ResultStore>,
    work: Work,
    settings: Settings,
    /// The adaptive pool's bounds, or `None` for a fixed count of workers.
    pool: Option<PoolConfig>,
    progress: Rc<Progress>,
}

impl Run {
    /// Scans with `launcher`; with `hold`, failed tasks wait for the status page.
    async fn with<L: WorkerLauncher + 'static>(
        self,
        p: &Process,
        launcher: L,
        hold: bool,
    ) -> Scanned {
        let Run {
            store,
            work,
            settings,
            pool,
            progress,
        } = self;
        if hold {
            let launcher = Holding(launcher);
            scan(p, launcher, store, work, settings, pool, progress).await
        } else {
            scan(p, launcher, store, work, settings, pool, progress).await
        }
    }
}

fn run_master(master: Master, options: Options) -> ExitCode {
    if let Err(err) = options.validate() {
        err.exit();
    }
    let tasks = usize::try_from(options.tasks).expect("--tasks is at most TASKS_MAX");
    let params = job::params(tasks);
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| master.run_dir.join("results.csv"));
    let out = match ResultsFile::create(out) {
        Ok(file) => file,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::FAILURE;
        }
    };
    let place = match Place::of(options.launcher) {
        Ok(place) => place,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::FAILURE;
        }
    };
    let pool = options.pool(&place);
    let workers = if pool.is_some() {
        0
    } else {
        options.workers(&place)
    };
    // Task K's marker file: its first attempt creates it and fails.
    let fail_once = options
        .fail_once
        .and_then(|k| usize::try_from(k).ok())
        .filter(|&k| k < tasks)
        .map(|k| {
            let marker = master.run_dir.join(format!("failed-once-{k}"));
            (k, marker.display().to_string())
        });
    let work = Work {
        params: params.clone(),
        fail_once,
        pause_ms: options.pause_ms,
    };
    let board = master.status.clone();
    board.set_launcher(place.name());
    let started = Instant::now();
    let scanned = match place {
        Place::Sim => {
            let mut sim = Sim::new(options.seed);
            let node = sim.add_node();
            let launcher = SimLauncher::new(sim.handle(), table()).retry_policy(RetryPolicy {
                max_retries: None,
                pause: Duration::from_millis(200),
                pause_max: Duration::from_secs(5),
            });
            // The simulator keeps results in memory (a simulated disk).
            let store: Rc<dyn ResultStore> =
                Rc::new(MemoryStore::new(MemoryDisk::new(), STORE_VERSION));
            let scanned = sim.run_until(&node, move |p| async move {
                let progress = Rc::new(Progress::new(&work.params, false, board, out));
                let settings = Settings {
                    workers,
                    hold: false,
                    interrupt_poll: None,
                };
                scan(&p, launcher, store, work, settings, pool, progress).await
            });
            println!(
                "scan: simulated with seed {} ({} frames, {:.1} s of virtual time, faults drawn from the seed)",
                options.seed,
                sim.frames_delivered(),
                sim.now().as_secs_f64(),
            );
            match scanned {
                Ok(scanned) => scanned,
                Err(err) => {
                    eprintln!(
                        "scan: simulation failed: {err}; replay with --seed {}",
                        options.seed
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        place @ (Place::Local | Place::Slurm | Place::Allocation(_)) => {
            if let Err(err) = cluster::catch_interrupts() {
                tracing::warn!(%err, "cannot catch SIGINT and SIGTERM; they will end the scan at once");
            }
            // Opened here, before the node runs: opening touches the disk.
            let store = match master.open_store(STORE_VERSION) {
                Ok(store) => store,
                Err(err) => {
                    eprintln!("scan: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let local = place == Place::Local;
            let transport = TcpConfig::bind(if local { "127.0.0.1:0" } else { "0.0.0.0:0" })
                .cookie_file(&master.cookie_file);
            let node = match Node::tcp(transport, NodeConfig::default()) {
                Ok(node) => node,
                Err(err) => {
                    eprintln!("scan: cannot start the master's node: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let hold = options.hold;
            let job_arrays = options.job_arrays;
            let (cookie, log_dir) = (master.cookie_file.clone(), master.log_dir.clone());
            let binary = master.worker_binary();
            let job_output = master.job_dir.join("%j.out");
            let outcome = node.run(move |p| async move {
                board.attach(&p);
                let store: Rc<dyn ResultStore> = Rc::new(store);
                let progress = Rc::new(Progress::new(&work.params, true, board, out));
                let settings = Settings {
                    workers,
                    hold,
                    interrupt_poll: Some(cluster::INTERRUPT_POLL_INTERVAL),
                };
                let bar = progress.bar.clone();
                cluster::print_notices_with(move |line| {
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.println(line);
                    }
                });
                let policy = RetryPolicy {
                    max_retries: Some(20),
                    pause: Duration::from_millis(200),
                    pause_max: Duration::from_secs(5),
                };
                let run = Run {
                    store,
                    work,
                    settings,
                    pool,
                    progress,
                };
                match place {
                    Place::Local => {
                        let launcher = LocalLauncher::program(binary)
                            .cookie_file(cookie)
                            .log_dir(log_dir)
                            .retry_policy(policy);
                        Ok(run.with(&p, launcher, hold).await)
                    }
                    Place::Allocation(allocation) => {
                        let launcher = AllocationLauncher::new(allocation, binary)
                            .cookie_file(cookie)
                            .log_dir(log_dir)
                            .retry_policy(policy);
                        Ok(run.with(&p, launcher, hold).await)
                    }
                    _ => {
                        let options = SlurmOptions {
                            output: Some(job_output),
                            ..SlurmOptions::default().job_name("hyperion-scan")
                        };
                        match SlurmLauncher::new(options) {
                            Ok(launcher) => {
                                let launcher = launcher
                                    .program(binary)
                                    .cookie_file(cookie)
                                    .log_dir(log_dir)
                                    .retry_policy(policy)
                                    .max_jobs(SLURM_JOBS_MAX)
                                    .job_arrays(job_arrays);
                                Ok(run.with(&p, launcher, hold).await)
                            }
                            Err(err) => Err(format!("scan: cannot find this program: {err}")),
                        }
                    }
                }
            });
            match outcome {
                Ok(Ok(scanned)) => scanned,
                Ok(Err(why)) => {
                    eprintln!("{why}");
                    return ExitCode::FAILURE;
                }
                Err(reason) => {
                    eprintln!("scan: the master died: {reason}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    report(&params, scanned, started.elapsed())
}

fn main() -> ExitCode {
    cluster::main_with_options(table(), run_master)
}
