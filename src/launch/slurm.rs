//! Workers as Slurm batch jobs: `sbatch --parsable` with the worker command in a
//! script on standard input, `scancel` when the service ends, `squeue` to notice a job
//! that ended (or can never start) before its worker connected. With job arrays on,
//! launches that arrive together share one `sbatch --array`, each worker one task.
//!
//! Size: about 890 lines of code and 90 of tests: sbatch, scancel and squeue, and
//! job arrays since issue 16. Splitting the array batching into its own file is the
//! next step.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use super::worker_options::worker_option_builders;
use super::{LaunchPacer, WorkerOptions};
use crate::process::Process;
use crate::remote::{LaunchError, OnRemoteError, RemoteError, ServiceId, WorkerLauncher};
use crate::types::id::NodeId;

/// Submissions tried before a transient `sbatch` failure is given up on.
pub const SUBMIT_ATTEMPTS_MAX: u32 = 4;
/// First pause between submission attempts (doubling, with jitter).
pub const SUBMIT_BACKOFF: Duration = Duration::from_millis(500);
/// How long a master waits, once a job runs, for its worker to say hello. The wait for
/// the job to start is separate and unbounded (a queue may hold a job for hours); a job
/// that dies after it started but before its worker connected must not hang the master.
pub const RUNNING_JOB_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// The least time between two submissions after a burst of
/// [`LAUNCH_BURST_DEFAULT`](super::LAUNCH_BURST_DEFAULT) (at most 5 a second), by
/// default: a master asked for many workers does not flood the scheduler.
pub const SLURM_LAUNCH_INTERVAL: Duration = Duration::from_millis(200);

/// How often a launch checks a submitted job's state until it runs.
pub const JOB_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// With job arrays on, how long the first launch of an array waits for others to join
/// it before the array is submitted: launches started together (a scan's workers) share
/// one submission.
pub const ARRAY_GATHER_WINDOW: Duration = Duration::from_millis(200);

/// Most tasks in one job array: below Slurm's default `MaxArraySize` (1001), so a
/// default configuration never refuses one; more launches start another array.
pub const ARRAY_TASKS_MAX: usize = 1000;

/// How often a launch that joined an array looks whether it was submitted.
const ARRAY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A worker's Slurm job: a batch job of its own, or one task of a job array. Its text
/// (`123`, `123_4`) is what `squeue --jobs` and `scancel` take.
///
/// ```
/// use hyperion::launch::SlurmJob;
/// assert_eq!(SlurmJob { job: 123, task: None }.to_string(), "123");
/// assert_eq!(SlurmJob { job: 123, task: Some(4) }.to_string(), "123_4");
/// assert_eq!(format!("{:?}", SlurmJob { job: 123, task: Some(4) }), "123_4");
/// ```
// Debug is the text Slurm takes: the status page and the logs show a job as `123_4`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SlurmJob {
    /// The job id (for an array task, the array's job id).
    pub job: u64,
    /// The task's index in its job array.
    pub task: Option<u32>,
}

impl fmt::Debug for SlurmJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SlurmJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task {
            Some(task) => write!(f, "{}_{task}", self.job),
            None => write!(f, "{}", self.job),
        }
    }
}

/// `sbatch` options for worker jobs. Every field maps to one `sbatch` option; `None`
/// leaves Slurm's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmOptions {
    /// `--job-name`.
    pub job_name: String,
    /// `--chdir`.
    pub working_dir: Option<PathBuf>,
    /// `--output` (Slurm's own log of the job).
    pub output: Option<PathBuf>,
    /// `--nodes`.
    pub nodes: Option<u32>,
    /// `--ntasks-per-node`.
    pub tasks_per_node: Option<u32>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// `--time` (rounded up to whole minutes).
    pub time_limit: Option<Duration>,
    /// `--mem` (e.g. `"4G"`).
    pub memory: Option<String>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--constraint`.
    pub constraint: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// `--mail-type`.
    pub mail_type: Option<String>,
    /// `--mail-user`.
    pub mail_user: Option<String>,
    /// `--no-requeue` (on by default: a requeued worker would talk to a finished
    /// service).
    pub no_requeue: bool,
    /// Lines run before the worker starts (e.g. `module load gcc`).
    pub preamble: Vec<String>,
    /// The `sbatch` program.
    pub sbatch: PathBuf,
    /// The `scancel` program.
    pub scancel: PathBuf,
    /// The `squeue` program.
    pub squeue: PathBuf,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            job_name: "hyperion-worker".into(),
            working_dir: None,
            output: None,
            nodes: Some(1),
            tasks_per_node: Some(1),
            cpus_per_task: None,
            time_limit: None,
            memory: None,
            partition: None,
            constraint: None,
            account: None,
            qos: None,
            mail_type: None,
            mail_user: None,
            no_requeue: true,
            preamble: Vec::new(),
            sbatch: "sbatch".into(),
            scancel: "scancel".into(),
            squeue: "squeue".into(),
        }
    }
}

impl SlurmOptions {
    /// Sets the job name.
    pub fn job_name(mut self, name: &str) -> SlurmOptions {
        self.job_name = name.to_string();
        self
    }

    /// The `sbatch` argument vector (no shell involved).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hyperion::launch::SlurmOptions;
    /// let options = SlurmOptions { cpus_per_task: Some(4), time_limit: Some(Duration::from_secs(90)), ..SlurmOptions::default() };
    /// let args = options.sbatch_args();
    /// assert!(args.contains(&"--parsable".to_string()));
    /// assert!(args.contains(&"--cpus-per-task=4".to_string()));
    /// assert!(args.contains(&"--time=2".to_string()));
    /// assert!(args.contains(&"--no-requeue".to_string()));
    /// ```
    pub fn sbatch_args(&self) -> Vec<String> {
        self.sbatch_args_named(&self.job_name)
    }

    /// [`sbatch_args`](SlurmOptions::sbatch_args) with another job name (the launcher
    /// gives each job its own, see [`SlurmLauncher::job_name`]).
    pub fn sbatch_args_named(&self, job_name: &str) -> Vec<String> {
        let mut args = vec!["--parsable".to_string(), format!("--job-name={job_name}")];
        let mut option = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{name}={value}"));
            }
        };
        option(
            "chdir",
            self.working_dir.as_ref().map(|p| p.display().to_string()),
        );
        option(
            "output",
            self.output.as_ref().map(|p| p.display().to_string()),
        );
        option("nodes", self.nodes.map(|n| n.to_string()));
        option(
            "ntasks-per-node",
            self.tasks_per_node.map(|n| n.to_string()),
        );
        option("cpus-per-task", self.cpus_per_task.map(|n| n.to_string()));
        option(
            "time",
            self.time_limit
                .map(|t| t.as_secs().div_ceil(60).max(1).to_string()),
        );
        option("mem", self.memory.clone());
        option("partition", self.partition.clone());
        option("constraint", self.constraint.clone());
        option("account", self.account.clone());
        option("qos", self.qos.clone());
        option("mail-type", self.mail_type.clone());
        option("mail-user", self.mail_user.clone());
        if self.no_requeue {
            args.push("--no-requeue".to_string());
        }
        args
    }
}

/// Reads the job id from `sbatch --parsable` output: `123` or `123;cluster`.
///
/// ```
/// use hyperion::launch::parse_job_id;
/// assert_eq!(parse_job_id("4242\n"), Ok(4242));
/// assert_eq!(parse_job_id("17;cluster-a\n"), Ok(17));
/// assert!(parse_job_id("Submitted batch job 5").is_err());
/// assert!(parse_job_id("").is_err());
/// ```
pub fn parse_job_id(stdout: &str) -> Result<u64, String> {
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let id = line.split(';').next().unwrap_or("");
    id.parse()
        .map_err(|_| format!("cannot read a job id from sbatch output {stdout:?}"))
}

/// Quotes `word` for a POSIX shell script.
///
/// ```
/// use hyperion::launch::shell_quote;
/// assert_eq!(shell_quote("plain"), "'plain'");
/// assert_eq!(shell_quote("it's"), "'it'\\''s'");
/// ```
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A failed `sbatch`, `scancel` or `squeue` run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmError {
    /// The command line.
    pub command: String,
    /// Exit status, or why it could not run.
    pub status: String,
    /// Its standard error.
    pub stderr: String,
}

impl fmt::Display for SlurmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({}): {}",
            self.command,
            self.status,
            self.stderr.trim()
        )
    }
}

fn run(program: &PathBuf, args: &[String], stdin: Option<&str>) -> Result<String, SlurmError> {
    let command = format!("{} {}", program.display(), args.join(" "));
    let failed = |status: String, stderr: String| SlurmError {
        command: command.clone(),
        status,
        stderr,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| failed(format!("cannot run: {err}"), String::new()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A command that exits without reading (a refused submission) closes the pipe:
        // what it printed says why, so keep going and report that.
        if let Err(err) = pipe.write_all(text.as_bytes()) {
            tracing::debug!(%err, command, "the command did not read its standard input");
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|err| failed(format!("cannot wait: {err}"), String::new()))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(failed(output.status.to_string(), stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Pending reasons after which a job will never start on its own. Other reasons
/// (`Priority`, `Resources`, `ReqNodeNotAvail` while a node is drained or rebooting,
/// ...) are transient: the launch keeps waiting.
const NEVER_STARTS: &[&str] = &[
    "PartitionNodeLimit",
    "PartitionConfig",
    "BadConstraints",
    "PartitionTimeLimit",
    "InvalidAccount",
    "InvalidQOS",
    "QOSMaxCpuPerJobLimit",
];

/// Job states in which a job may still run its worker: wait. Any other state (ended,
/// `SUSPENDED`, `PREEMPTED`, `REQUEUED`, ...) fails the launch and cancels the job.
const WAITING_STATES: &[&str] = &["PENDING", "CONFIGURING"];

/// Ids of the jobs named `name` in the queue (`squeue --name`), oldest first.
fn jobs_named(squeue: &PathBuf, name: &str) -> Result<Vec<u64>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        format!("--name={name}"),
        // The array's job id for an array task (one line per running task), the job id
        // for any other job.
        "--format=%F".to_string(),
    ];
    let out = run(squeue, &args, None)?;
    let mut ids: Vec<u64> = out
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// A job's state from `squeue`: `None` once the job is gone.
fn job_state(squeue: &PathBuf, job: SlurmJob) -> Result<Option<(String, String)>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        format!("--jobs={job}"),
        "--format=%T %r".to_string(),
    ];
    match run(squeue, &args, None) {
        Ok(out) => Ok(out.lines().next().map(|line| {
            let mut parts = line.split_whitespace();
            (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            )
        })),
        // squeue refuses ids it no longer knows: the job is gone.
        Err(err) if err.stderr.contains("Invalid job id") => Ok(None),
        Err(err) => Err(err),
    }
}

/// Launches each worker as a Slurm batch job running the current program (or a
/// configured one) in worker mode.
pub struct SlurmLauncher {
    options: SlurmOptions,
    program: PathBuf,
    /// The connection timeout is counted from when the job runs (default
    /// [`RUNNING_JOB_CONNECT_TIMEOUT`]; `None`: forever): the wait for the job to start
    /// is separate and ends when the job runs or ends.
    worker: WorkerOptions,
    max_jobs: usize,
    pacer: LaunchPacer,
    jobs: RefCell<BTreeSet<SlurmJob>>,
    /// Jobs whose service ended: their worker exits by itself; whatever is left of
    /// them is cancelled when the launcher is dropped.
    finished: RefCell<BTreeSet<SlurmJob>>,
    /// Whether launches that arrive together share one `sbatch --array`.
    arrays: bool,
    /// Set once Slurm refused an array (`MaxArraySize` 0 or too small): single jobs
    /// from then on.
    arrays_refused: Cell<bool>,
    /// The array gathering launches now, if any.
    gathering: RefCell<Option<Rc<ArrayBatch>>>,
    /// Job names whose submission had an unknown outcome that `squeue` could not
    /// settle: cancelled by name when the launcher is dropped.
    unsettled_names: RefCell<BTreeSet<String>>,
}

/// Owns a submitted job until its launch succeeds: if the launch fails, or its future
/// is dropped (the calling process was killed), the job is cancelled, so it never keeps
/// a `max_jobs` slot or runs a worker nobody waits for.
struct JobGuard<'a> {
    launcher: &'a SlurmLauncher,
    job: Option<SlurmJob>,
}

impl JobGuard<'_> {
    /// The launch succeeded: the service owns the job now.
    fn release(mut self) -> SlurmJob {
        self.job
            .take()
            .expect("a guard holds its job until released")
    }
}

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            tracing::info!(%job, "cancelling a job whose launch did not complete");
            self.launcher.scancel_later(job, Duration::ZERO);
        }
    }
}

impl SlurmLauncher {
    /// A launcher submitting the current executable as worker jobs.
    pub fn new(options: SlurmOptions) -> std::io::Result<SlurmLauncher> {
        Ok(SlurmLauncher {
            options,
            program: std::env::current_exe()?,
            worker: WorkerOptions::new(Some(RUNNING_JOB_CONNECT_TIMEOUT)),
            max_jobs: 64,
            pacer: LaunchPacer::new(SLURM_LAUNCH_INTERVAL),
            jobs: RefCell::new(BTreeSet::new()),
            finished: RefCell::new(BTreeSet::new()),
            arrays: false,
            arrays_refused: Cell::new(false),
            gathering: RefCell::new(None),
            unsettled_names: RefCell::new(BTreeSet::new()),
        })
    }

    /// The program the jobs run (in worker mode).
    pub fn program(mut self, program: impl Into<PathBuf>) -> SlurmLauncher {
        self.program = program.into();
        self
    }

    worker_option_builders!(SlurmLauncher);

    /// Most jobs alive at once; later launches wait for a slot.
    pub fn max_jobs(mut self, max: usize) -> SlurmLauncher {
        self.max_jobs = max.max(1);
        self
    }

    /// The least time between two submissions after the burst (default
    /// [`SLURM_LAUNCH_INTERVAL`]).
    pub fn launch_interval(mut self, interval: Duration) -> SlurmLauncher {
        self.pacer = LaunchPacer::new(interval);
        self
    }

    /// Launches that arrive together (within [`ARRAY_GATHER_WINDOW`] of the first) share
    /// one `sbatch --array=0-(N-1)%M` (M = [`max_jobs`](SlurmLauncher::max_jobs)), each
    /// worker one task, tracked and cancelled alone (`scancel JOB_TASK`); a task that
    /// ends before its worker's hello fails that worker's launch only. If Slurm refuses
    /// arrays, the launcher falls back to one job per worker. Off by default.
    pub fn job_arrays(mut self, on: bool) -> SlurmLauncher {
        self.arrays = on;
        self
    }

    /// Jobs submitted and not yet finished.
    pub fn jobs(&self) -> Vec<SlurmJob> {
        self.jobs.borrow().iter().copied().collect()
    }

    /// The job name of `service`'s worker: the configured name and the service id
    /// (unique to the run and the service), so that a job whose submission had an
    /// unknown outcome can be found in the queue by name.
    pub fn job_name(&self, service: &ServiceId) -> String {
        format!("{}-{service}", self.options.job_name)
    }

    /// The worker's command line, every word quoted for the shell.
    fn command_line(&self, master: NodeId, service: &ServiceId) -> String {
        let mut words = vec![shell_quote(&self.program.display().to_string())];
        words.extend(
            self.worker
                .worker_args(master, service)
                .iter()
                .map(|word| shell_quote(&word.to_string_lossy())),
        );
        words.join(" ")
    }

    /// The script's start: the shell, and the configured preamble.
    fn script_head(&self) -> String {
        let mut script = String::from("#!/bin/sh\nset -e\n");
        for line in &self.options.preamble {
            script.push_str(line);
            script.push('\n');
        }
        script
    }

    /// The batch script for one worker.
    pub fn script(&self, master: NodeId, service: &ServiceId) -> String {
        let mut script = self.script_head();
        script.push_str("exec ");
        script.push_str(&self.command_line(master, service));
        script.push('\n');
        script
    }

    /// The batch script of a job array: task `i` runs the worker of `services[i]`; a
    /// task whose launch was given up before the submission (`None`) exits at once.
    pub fn array_script(&self, master: NodeId, services: &[Option<ServiceId>]) -> String {
        let mut script = self.script_head();
        script.push_str("case \"$SLURM_ARRAY_TASK_ID\" in\n");
        for (task, service) in services.iter().enumerate() {
            if let Some(service) = service {
                let command = self.command_line(master, service);
                script.push_str(&format!("{task}) exec {command} ;;\n"));
            }
        }
        script.push_str("esac\nexit 0\n");
        script
    }

    /// Stops tracking `job` and cancels it after `grace` (on a thread: `scancel` must
    /// not block the node's event loop). Every path that stops tracking a job goes
    /// through here.
    fn scancel_later(&self, job: SlurmJob, grace: Duration) {
        self.jobs.borrow_mut().remove(&job);
        self.finished.borrow_mut().insert(job);
        let scancel = self.options.scancel.clone();
        // real-world only: Slurm is never simulated.
        let spawned = std::thread::Builder::new()
            .name(format!("hyperion-scancel-{job}"))
            .spawn(move || {
                std::thread::sleep(grace);
                if let Err(err) = run(&scancel, &[job.to_string()], None) {
                    tracing::warn!(%job, %err, "scancel failed");
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%job, %err, "cannot start a thread to cancel a job");
        }
    }

    /// Submits the job named `name`, retrying transient failures. When `sbatch`'s
    /// outcome is unknown (it failed, or its output has no readable id), the job may
    /// exist anyway: it is looked up by name before anything is resubmitted, so no
    /// job is ever left untracked.
    async fn submit(
        &self,
        p: &Process,
        name: &str,
        array: Option<String>,
        script: String,
    ) -> Result<u64, LaunchError> {
        let mut args = self.options.sbatch_args_named(name);
        args.extend(array);
        let what = || format!("{} {}", self.options.sbatch.display(), args.join(" "));
        let mut pause = SUBMIT_BACKOFF;
        let mut attempt = 1;
        loop {
            let (sbatch, sbatch_args, script) =
                (self.options.sbatch.clone(), args.clone(), script.clone());
            let submitted = p
                .run_blocking(move || run(&sbatch, &sbatch_args, Some(&script)))
                .await;
            let why = match submitted {
                Ok(out) => match parse_job_id(&out) {
                    Ok(job) => return Ok(job),
                    Err(why) => why,
                },
                // The program is missing: nothing was submitted, and retrying won't help.
                Err(err) if err.status.starts_with("cannot run") => {
                    return Err(LaunchError {
                        what: what(),
                        why: err.status,
                    })
                }
                Err(err) => err.to_string(),
            };
            if let Some(job) = self.find_submitted(p, name).await {
                tracing::warn!(job, %why, "sbatch's outcome was unclear; found the job by name");
                return Ok(job);
            }
            if attempt >= SUBMIT_ATTEMPTS_MAX {
                return Err(LaunchError { what: what(), why });
            }
            let jitter = Duration::from_millis(p.random_u64() % 250);
            tracing::warn!(attempt, %why, "sbatch failed; retrying");
            p.sleep(pause + jitter).await;
            pause *= 2;
            attempt += 1;
        }
    }

    /// The job named `name` if it is in the queue (extra ones, from earlier unclear
    /// submissions, are cancelled). If `squeue` cannot tell, every job of that name is
    /// cancelled, now and again when the launcher is dropped, so a resubmission cannot
    /// leave a twin running.
    async fn find_submitted(&self, p: &Process, name: &str) -> Option<u64> {
        let (squeue, owned) = (self.options.squeue.clone(), name.to_string());
        match p.run_blocking(move || jobs_named(&squeue, &owned)).await {
            Ok(ids) => {
                let (first, extra) = ids.split_first()?;
                for job in extra {
                    self.scancel_later(
                        SlurmJob {
                            job: *job,
                            task: None,
                        },
                        Duration::ZERO,
                    );
                }
                Some(*first)
            }
            Err(err) => {
                tracing::warn!(%err, name, "squeue cannot tell whether the job exists; cancelling it by name");
                self.unsettled_names.borrow_mut().insert(name.to_string());
                let (scancel, args) =
                    (self.options.scancel.clone(), vec![format!("--name={name}")]);
                if let Err(err) = p.run_blocking(move || run(&scancel, &args, None)).await {
                    tracing::warn!(%err, name, "scancel by name failed");
                }
                None
            }
        }
    }
}

/// Launches gathered into one job array: the task index of each is its place here.
struct ArrayBatch {
    master: NodeId,
    /// Each task's service; `None` once its launch was given up before the submission.
    services: RefCell<Vec<Option<ServiceId>>>,
    outcome: RefCell<Option<ArrayOutcome>>,
}

/// What became of an array's submission.
#[derive(Clone)]
enum ArrayOutcome {
    /// Submitted as this job id.
    Submitted(u64),
    /// Slurm refused the array itself: submit single jobs.
    Refused,
    /// The submission failed: every launch in the array fails with this error.
    Failed(LaunchError),
}

/// A launch's place in an array until the array is submitted: dropped before (the
/// calling process was killed), its task is left out of the script; the gathering
/// launch's guard also fails the array so that no launch waits for it forever.
struct ArrayPlace<'a> {
    launcher: &'a SlurmLauncher,
    batch: Rc<ArrayBatch>,
    task: usize,
    gathers: bool,
}

impl Drop for ArrayPlace<'_> {
    fn drop(&mut self) {
        if self.batch.outcome.borrow().is_some() {
            return;
        }
        if let Some(service) = self.batch.services.borrow_mut().get_mut(self.task) {
            *service = None;
        }
        if self.gathers {
            let mut gathering = self.launcher.gathering.borrow_mut();
            if gathering
                .as_ref()
                .is_some_and(|open| Rc::ptr_eq(open, &self.batch))
            {
                *gathering = None;
            }
            *self.batch.outcome.borrow_mut() = Some(ArrayOutcome::Failed(LaunchError {
                what: "a Slurm job array".into(),
                why: "the launch gathering it stopped before submitting it".into(),
            }));
        }
    }
}

impl SlurmLauncher {
    /// Launches not yet given a job: gathered into an array still open.
    fn gathered(&self) -> usize {
        self.gathering
            .borrow()
            .as_ref()
            .map_or(0, |batch| batch.services.borrow().iter().flatten().count())
    }

    /// Joins the array gathering launches now, or opens one; the first launch of an
    /// array waits [`ARRAY_GATHER_WINDOW`] and submits it. `None`: Slurm refuses
    /// arrays, submit a single job.
    async fn launch_in_array(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Option<Result<SlurmJob, LaunchError>> {
        let open = self.gathering.borrow().clone().filter(|batch| {
            batch.master == master && batch.services.borrow().len() < ARRAY_TASKS_MAX
        });
        let (batch, gathers) = match open {
            Some(batch) => (batch, false),
            None => {
                let batch = Rc::new(ArrayBatch {
                    master,
                    services: RefCell::new(Vec::new()),
                    outcome: RefCell::new(None),
                });
                *self.gathering.borrow_mut() = Some(batch.clone());
                (batch, true)
            }
        };
        let task = {
            let mut services = batch.services.borrow_mut();
            services.push(Some(service.clone()));
            services.len() - 1
        };
        let place = ArrayPlace {
            launcher: self,
            batch: batch.clone(),
            task,
            gathers,
        };
        if gathers {
            self.pacer.wait_turn(p).await;
            p.sleep(ARRAY_GATHER_WINDOW).await;
            self.gathering.borrow_mut().take();
            let services = batch.services.borrow().clone();
            let tasks = services.len();
            let array = format!("--array=0-{}%{}", tasks - 1, self.max_jobs);
            let script = self.array_script(master, &services);
            let outcome = match self
                .submit(p, &self.job_name(service), Some(array), script)
                .await
            {
                Ok(job) => {
                    tracing::info!(job, tasks, "submitted a job array of workers");
                    ArrayOutcome::Submitted(job)
                }
                Err(error) if error.why.to_ascii_lowercase().contains("array") => {
                    tracing::warn!(%error, "Slurm refused a job array; one job per worker from now on");
                    self.arrays_refused.set(true);
                    ArrayOutcome::Refused
                }
                Err(error) => ArrayOutcome::Failed(error),
            };
            *batch.outcome.borrow_mut() = Some(outcome);
        }
        let outcome = loop {
            if let Some(outcome) = batch.outcome.borrow().clone() {
                break outcome;
            }
            p.sleep(ARRAY_POLL_INTERVAL).await;
        };
        drop(place);
        match outcome {
            ArrayOutcome::Submitted(job) => {
                let task = u32::try_from(task).expect("at most ARRAY_TASKS_MAX tasks");
                let job = SlurmJob {
                    job,
                    task: Some(task),
                };
                Some(self.wait_running(p, job, service).await)
            }
            ArrayOutcome::Refused => None,
            ArrayOutcome::Failed(error) => Some(Err(error)),
        }
    }

    /// Tracks `job` and waits until it runs. A job that ends, can never start, or is in
    /// a state other than waiting fails the launch and is cancelled.
    async fn wait_running(
        &self,
        p: &Process,
        job: SlurmJob,
        service: &ServiceId,
    ) -> Result<SlurmJob, LaunchError> {
        self.jobs.borrow_mut().insert(job);
        let guard = JobGuard {
            launcher: self,
            job: Some(job),
        };
        tracing::info!(%job, %service, "submitted a worker job");
        loop {
            let squeue = self.options.squeue.clone();
            let state = p.run_blocking(move || job_state(&squeue, job)).await;
            match state {
                Ok(Some((state, _))) if state == "RUNNING" => return Ok(guard.release()),
                Ok(Some((state, reason)))
                    if WAITING_STATES.contains(&state.as_str())
                        && NEVER_STARTS.contains(&reason.as_str()) =>
                {
                    return Err(LaunchError {
                        what: format!("job {job}"),
                        why: format!("it can never start: {reason}"),
                    });
                }
                Ok(Some((state, reason))) if WAITING_STATES.contains(&state.as_str()) => {
                    tracing::debug!(%job, %state, %reason, "job waiting to start");
                }
                Ok(Some((state, reason))) => {
                    return Err(LaunchError {
                        what: format!("job {job}"),
                        why: format!("it is {state} {reason} before its worker connected")
                            .trim_end()
                            .to_string(),
                    });
                }
                Ok(None) => {
                    return Err(LaunchError {
                        what: format!("job {job}"),
                        why: "it ended before its worker connected".into(),
                    });
                }
                Err(err) => tracing::warn!(%job, %err, "squeue failed; will ask again"),
            }
            p.sleep(JOB_POLL_INTERVAL).await;
        }
    }
}

impl WorkerLauncher for SlurmLauncher {
    type JobId = SlurmJob;

    async fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<SlurmJob, LaunchError> {
        while self.jobs.borrow().len() + self.gathered() >= self.max_jobs {
            p.sleep(JOB_POLL_INTERVAL).await;
        }
        if self.arrays && !self.arrays_refused.get() {
            if let Some(launched) = self.launch_in_array(p, master, service).await {
                return launched;
            }
        }
        self.pacer.wait_turn(p).await;
        let name = self.job_name(service);
        let job = self
            .submit(p, &name, None, self.script(master, service))
            .await?;
        self.wait_running(p, SlurmJob { job, task: None }, service)
            .await
    }

    fn connection_timeout(&self) -> Option<Duration> {
        self.worker.connection_timeout
    }

    fn on_remote_error(&self, _error: &RemoteError, retries_so_far: u32) -> OnRemoteError {
        self.worker.retry_policy.decide(retries_so_far)
    }

    fn cancel(&self, job: &SlurmJob) {
        self.scancel_later(*job, Duration::ZERO);
    }

    fn on_exit(&self, job: &SlurmJob) {
        // The worker exits on ShutDown; the scancel only catches one that did not.
        self.scancel_later(*job, Duration::from_secs(5));
    }
}

impl Drop for SlurmLauncher {
    fn drop(&mut self) {
        let jobs: Vec<String> = self
            .jobs
            .borrow()
            .union(&self.finished.borrow())
            .map(SlurmJob::to_string)
            .collect();
        if !jobs.is_empty() {
            if let Err(err) = run(&self.options.scancel, &jobs, None) {
                tracing::warn!(%err, "scancel of remaining jobs failed");
            }
        }
        for name in self.unsettled_names.borrow().iter() {
            if let Err(err) = run(&self.options.scancel, &[format!("--name={name}")], None) {
                tracing::warn!(%err, name, "scancel by name failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_read_from_plain_and_clustered_output() {
        assert_eq!(parse_job_id("123\n"), Ok(123));
        assert_eq!(parse_job_id("123;cluster\n"), Ok(123));
        assert_eq!(parse_job_id("\n  77  \n"), Ok(77));
        assert!(parse_job_id("sbatch: error: Batch job submission failed").is_err());
        assert!(parse_job_id("-5").is_err());
    }

    #[test]
    fn every_option_becomes_one_argument_and_nothing_goes_through_a_shell() {
        let options = SlurmOptions {
            job_name: "name with spaces; rm -rf /".into(),
            working_dir: Some("/data/run 1".into()),
            output: Some("/logs/%j.out".into()),
            nodes: Some(2),
            tasks_per_node: Some(3),
            cpus_per_task: Some(4),
            time_limit: Some(Duration::from_secs(3601)),
            memory: Some("4G".into()),
            partition: Some("long".into()),
            constraint: Some("avx2".into()),
            account: Some("physics".into()),
            qos: Some("high".into()),
            mail_type: Some("END".into()),
            mail_user: Some("me@example.org".into()),
            no_requeue: true,
            ..SlurmOptions::default()
        };
        let args = options.sbatch_args();
        for expected in [
            "--parsable",
            "--job-name=name with spaces; rm -rf /",
            "--chdir=/data/run 1",
            "--output=/logs/%j.out",
            "--nodes=2",
            "--ntasks-per-node=3",
            "--cpus-per-task=4",
            "--time=61",
            "--mem=4G",
            "--partition=long",
            "--constraint=avx2",
            "--account=physics",
            "--qos=high",
            "--mail-type=END",
            "--mail-user=me@example.org",
            "--no-requeue",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "missing {expected} in {args:?}"
            );
        }
    }

    #[test]
    fn the_worker_script_quotes_every_word() {
        let launcher = SlurmLauncher::new(SlurmOptions {
            preamble: vec!["module load gcc".into()],
            ..SlurmOptions::default()
        })
        .unwrap()
        .program("/opt/my prog/bin")
        .cookie_file("/home/me/.cookie's");
        let master: NodeId = "10.0.0.1:7000#ab".parse().unwrap();
        let script = launcher.script(master, &ServiceId::from_text("svc-1"));
        assert!(script.contains("module load gcc\n"));
        assert!(script.contains("exec '/opt/my prog/bin' 'worker' '--master' '10.0.0.1:7000#ab' '--service' 'svc-1' '--cookie-file' '/home/me/.cookie'\\''s'"), "{script}");
    }

    #[test]
    fn a_failing_sbatch_is_an_error_naming_the_command_and_its_stderr() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let fake = dir.join("sbatch");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'sbatch: error: invalid partition' >&2\nexit 1\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let error = run(&fake, &["--parsable".into()], Some("#!/bin/sh\n")).unwrap_err();
        assert!(error.command.contains("sbatch --parsable"), "{error}");
        assert!(error.stderr.contains("invalid partition"), "{error}");
        let missing = run(&dir.join("no-such-sbatch"), &[], None).unwrap_err();
        assert!(missing.status.contains("cannot run"), "{missing}");
    }
}
