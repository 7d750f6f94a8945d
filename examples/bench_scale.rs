//! Benchmark of a master with many workers (issue 16 item 5):
//!
//! 1. 64 local worker processes (copies of this binary) over TCP: the time from the
//!    first launch to all 64 connected at once, then tasks per second through the
//!    master (tiny calls, every worker pulling from one queue);
//! 2. if a Slurm answers (`sinfo` works): 16 workers started with one job array
//!    (`sbatch --array`) and with one `sbatch` each, side by side in the same run: the
//!    time from the first submission to every worker having connected, the whole run's
//!    tasks per second, and the ratio of the two ways.
//!
//! On Slurm a worker does not wait for the others (a small cluster may run fewer jobs
//! at once than there are workers: each takes tasks as soon as it connects and ends
//! when the queue is empty), so its figure is what it costs to get every worker
//! through the queue, not a count at once.
//!
//! ```text
//! cargo run --release --example bench_scale -- [--local-workers 64] [--slurm-workers 16] [--tasks-per-worker 100] [--no-slurm]
//! ```

use std::cell::Cell;
use std::process::{Command, ExitCode};
use std::rc::Rc;
use std::time::Duration;

use hyperion::cluster::{self, Master};
use hyperion::concurrency::map_concurrently;
use hyperion::launch::{LocalLauncher, SlurmLauncher, SlurmOptions};
use hyperion::remote::{with_remote_runner, RemoteCall, RetryPolicy, WorkerLauncher};
use hyperion::transport::tcp::TcpConfig;
use hyperion::{AsyncResult, Node, NodeConfig, Process, RemoteTable};

/// The benchmark's options.
#[derive(clap::Parser)]
struct Options {
    /// Local worker processes, all connected at once.
    #[arg(long, default_value_t = 64)]
    local_workers: usize,
    /// Slurm workers, each way (array, one sbatch each).
    #[arg(long, default_value_t = 16)]
    slurm_workers: usize,
    /// Tasks per worker (tiny calls).
    #[arg(long, default_value_t = 100)]
    tasks_per_worker: u64,
    /// Skip the Slurm part even if a Slurm answers.
    #[arg(long)]
    no_slurm: bool,
}

/// The call every task makes: the smallest work, so the master's cost shows.
fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("next", |_p: Process, x: u64| async move {
        Ok::<_, String>(x + 1)
    });
    table
}

/// What one measurement saw.
#[derive(Clone, Copy, Debug)]
struct Figures {
    /// From the first launch to the last worker's connection.
    connected: Duration,
    /// From the first launch to the last task's answer.
    total: Duration,
    /// From every worker connected to the last task's answer (`hold` only).
    tasks_time: Duration,
    tasks: u64,
}

impl Figures {
    fn tasks_per_second(&self, over: Duration) -> f64 {
        self.tasks as f64 / over.as_secs_f64().max(1e-9)
    }
}

/// `workers` workers from `launcher` take `tasks` tasks from one queue. With `hold`,
/// each waits (up to 10 minutes) until all are connected before taking any, so the
/// tasks time is all of them at once.
async fn measure<L: WorkerLauncher + 'static>(
    p: &Process,
    launcher: Rc<L>,
    workers: usize,
    tasks: u64,
    hold: bool,
) -> Result<Figures, String> {
    let start = p.now();
    let next_task = Rc::new(Cell::new(0u64));
    let connected = Rc::new(Cell::new(0usize));
    let all_connected_at = Rc::new(Cell::new(None::<Duration>));
    let (in_workers, at) = (connected.clone(), all_connected_at.clone());
    let outcomes = map_concurrently(p, (0..workers).collect(), move |slot, _i: usize| {
        let (launcher, connected, at, next_task) = (
            launcher.clone(),
            in_workers.clone(),
            at.clone(),
            next_task.clone(),
        );
        async move {
            let slot = &slot;
            with_remote_runner(slot, &*launcher, |runner| {
                let (connected, at, next_task) = (connected.clone(), at.clone(), next_task.clone());
                async move {
                    connected.set(connected.get() + 1);
                    if connected.get() == workers {
                        at.set(Some(slot.now()));
                    }
                    if hold {
                        let deadline = slot.now() + Duration::from_secs(600);
                        while connected.get() < workers && slot.now() < deadline {
                            slot.sleep(Duration::from_millis(10)).await;
                        }
                    }
                    let mut done = 0u64;
                    loop {
                        let x = next_task.get();
                        if x >= tasks {
                            break;
                        }
                        next_task.set(x + 1);
                        let call: RemoteCall<u64> =
                            RemoteCall::new("next", move || async move { x });
                        let answer = runner.run(slot, &call).await?;
                        assert_eq!(answer, x + 1, "a wrong answer");
                        done += 1;
                    }
                    Ok(done)
                }
            })
            .await
            .map_err(|err| err.to_string())
        }
    })
    .await;
    let end = p.now();
    let mut done = 0;
    for outcome in outcomes {
        match outcome {
            AsyncResult::Done(Ok(n)) => done += n,
            other => return Err(format!("a worker failed: {other:?}")),
        }
    }
    let connected_at = all_connected_at
        .get()
        .ok_or_else(|| format!("only {} of {workers} workers connected", connected.get()))?;
    Ok(Figures {
        connected: connected_at - start,
        total: end - start,
        tasks_time: end - connected_at,
        tasks: done,
    })
}

/// Whether a Slurm answers here.
fn slurm_up() -> bool {
    // real-world only: asks the machine.
    Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false)
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: Some(3),
        pause: Duration::from_millis(200),
        pause_max: Duration::from_secs(2),
    }
}

fn run(master: Master, options: Options) -> ExitCode {
    let slurm = !options.no_slurm && slurm_up();
    // Slurm's jobs reach the master over the network; local workers over loopback.
    let bind = if slurm { "0.0.0.0:0" } else { "127.0.0.1:0" };
    let node = match Node::tcp(
        TcpConfig::bind(bind).cookie_file(&master.cookie_file),
        NodeConfig::default(),
    ) {
        Ok(node) => node,
        Err(err) => {
            eprintln!("bench_scale: cannot start the master's node: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (binary, cookie, logs) = (
        master.worker_binary(),
        master.cookie_file.clone(),
        master.log_dir.clone(),
    );
    let job_output = master.job_dir.join("%j.out");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default(); // real-world only
    println!(
        "bench_scale: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()), // real-world only
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let outcome = node.run(move |p| async move {
        let local = Rc::new(
            LocalLauncher::program(binary.clone())
                .cookie_file(cookie.clone())
                .log_dir(logs.clone())
                .retry_policy(policy()),
        );
        let workers = options.local_workers;
        let tasks = workers as u64 * options.tasks_per_worker;
        let figures = measure(&p, local, workers, tasks, true).await?;
        println!(
            "local: {workers} worker processes: all connected after {:.2} s; {tasks} tasks in {:.2} s = {:.0} tasks/s through the master",
            figures.connected.as_secs_f64(),
            figures.tasks_time.as_secs_f64(),
            figures.tasks_per_second(figures.tasks_time),
        );
        if !slurm {
            println!("slurm: skipped (no Slurm answers, or --no-slurm)");
            return Ok(());
        }
        let workers = options.slurm_workers;
        let tasks = workers as u64 * options.tasks_per_worker;
        let mut ways = Vec::new();
        for arrays in [true, false] {
            let slurm_options = SlurmOptions {
                output: Some(job_output.clone()),
                ..SlurmOptions::default().job_name("hyperion-bench-scale")
            };
            let launcher = SlurmLauncher::new(slurm_options)
                .map_err(|err| format!("cannot find this program: {err}"))?
                .program(binary.clone())
                .cookie_file(cookie.clone())
                .log_dir(logs.clone())
                .retry_policy(policy())
                .max_jobs(workers)
                .job_arrays(arrays);
            let figures = measure(&p, Rc::new(launcher), workers, tasks, false).await?;
            let way = if arrays { "one job array" } else { "one sbatch each" };
            println!(
                "slurm: {workers} workers, {way}: all connected after {:.2} s; {tasks} tasks in {:.2} s from the first submission = {:.0} tasks/s",
                figures.connected.as_secs_f64(),
                figures.total.as_secs_f64(),
                figures.tasks_per_second(figures.total),
            );
            ways.push(figures);
        }
        let (array, single) = (ways[0], ways[1]);
        println!(
            "slurm: one sbatch each / one job array: time to all connected {:.2}x, whole run {:.2}x",
            single.connected.as_secs_f64() / array.connected.as_secs_f64().max(1e-9),
            single.total.as_secs_f64() / array.total.as_secs_f64().max(1e-9),
        );
        Ok::<(), String>(())
    });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(why)) => {
            eprintln!("bench_scale: {why}");
            ExitCode::FAILURE
        }
        Err(reason) => {
            eprintln!("bench_scale: the master died: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    cluster::main_with_options(table(), run)
}
