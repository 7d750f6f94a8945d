//! Workers as Slurm batch jobs: `sbatch --parsable` with the worker command in a
//! script on standard input, `scancel` when the service ends, `squeue` to notice a job
//! that ended (or can never start) before its worker connected. With job arrays on,
//! launches that arrive together share one `sbatch --array`, each worker one task.
//!
//! One file per seam: [`options`] (the `sbatch` flags), [`script`] (the batch scripts),
//! [`command`] (running the Slurm commands), [`queue`] (reading `squeue`), [`array`]
//! (gathering launches into job arrays); this file holds the launcher itself.

mod array;
mod command;
mod options;
mod queue;
mod script;
mod watch;

pub use command::SlurmError;
pub use options::{parse_job_id, SlurmOptions};
pub use script::shell_quote;
pub use watch::JOB_STATE_POLL_INTERVAL;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use super::worker_options::worker_option_builders;
use super::{LaunchPacer, WorkerOptions};
use crate::process::Process;
use crate::remote::{
    JobState, LaunchError, OnRemoteError, RemoteError, Resources, ServiceId, WorkerLauncher,
};
use crate::types::id::NodeId;
use array::ArrayBatch;
use command::run;
use queue::{job_state, jobs_named, NEVER_STARTS, WAITING_STATES};
use watch::JobWatch;

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
    /// The states of jobs whose workers have not connected yet.
    watch: JobWatch,
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
            watch: JobWatch::new(options.squeue.clone(), options.sacct.clone()),
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
    /// job is ever left untracked. `resources` override the configured options.
    async fn submit(
        &self,
        p: &Process,
        name: &str,
        (array, resources): (Option<String>, &Resources),
        script: String,
    ) -> Result<u64, LaunchError> {
        let mut args = self
            .options
            .with_resources(resources)
            .sbatch_args_named(name);
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

impl SlurmLauncher {
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
        self.launch_with(p, master, service, &Resources::default())
            .await
    }

    /// A job with the resources as `sbatch` flags (`--cpus-per-task`, `--mem`,
    /// `--time`, `--partition`) over the configured ones. Workers asking resources of
    /// their own get a job each; the others may share job arrays.
    async fn launch_with(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
        resources: &Resources,
    ) -> Result<SlurmJob, LaunchError> {
        while self.jobs.borrow().len() + self.gathered() >= self.max_jobs {
            p.sleep(JOB_POLL_INTERVAL).await;
        }
        if self.arrays && !self.arrays_refused.get() && resources.is_default() {
            if let Some(launched) = self.launch_in_array(p, master, service).await {
                return launched;
            }
        }
        self.pacer.wait_turn(p).await;
        let name = self.job_name(service);
        let job = self
            .submit(p, &name, (None, resources), self.script(master, service))
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

    /// From `squeue` (and `sacct`), polled in the background at most every
    /// [`JOB_STATE_POLL_INTERVAL`]: a job or array task that ended before its worker's
    /// hello fails that launch at once.
    fn job_state(&self, job: &SlurmJob) -> JobState {
        self.watch.state(*job)
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
