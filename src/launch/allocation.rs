//! Workers as job steps inside the Slurm allocation the master runs in: each worker
//! gets K CPUs from a [`CpuPool`] and runs as
//! `srun --exact -N1 -n1 -c K --jobid JOB -w NODE PROGRAM worker --master ADDR --service ID`.
//!
//! CPUs go back to the pool when the service ends or the launch is cancelled; the step
//! may take a moment more to exit, and Slurm itself holds a new step (`--exact`) until
//! its CPUs are free, so the allocation is never oversubscribed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::child::{child_state, reap_in_background, spawn_off_the_loop};
use super::worker_options::worker_option_builders;
use super::{Allocation, CpuGrant, CpuPool, CpuRequestId, WorkerOptions};
use crate::process::Process;
use crate::remote::{
    JobState, LaunchError, OnRemoteError, RemoteError, Resources, ServiceId, WorkerLauncher,
};
use crate::types::id::NodeId;

/// How often a launch waiting for CPUs looks at the pool again.
pub const CPU_POOL_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long the master waits for a job step's worker to connect, by default: a step
/// starts at once on CPUs the allocation holds, so this is only the program's start-up.
pub const ALLOCATION_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a job step may take to exit after its service ended before it is killed.
pub const STEP_EXIT_GRACE: Duration = Duration::from_secs(5);

/// Launches workers as job steps of the current allocation, through a [`CpuPool`].
pub struct AllocationLauncher {
    allocation: Allocation,
    srun: PathBuf,
    program: PathBuf,
    cpus_per_worker: u32,
    worker: WorkerOptions,
    pool: RefCell<CpuPool>,
    /// Grants taken from the pool, until their launch picks them up.
    grants: RefCell<BTreeMap<CpuRequestId, CpuGrant>>,
    /// Running `srun` steps by PID, with the CPUs they hold.
    steps: RefCell<BTreeMap<u32, (Child, CpuRequestId)>>,
}

impl AllocationLauncher {
    /// Runs `program` (which understands the `worker` subcommand) as job steps of
    /// `allocation`, one CPU each, with `srun` from `PATH`.
    pub fn new(allocation: Allocation, program: impl Into<PathBuf>) -> AllocationLauncher {
        AllocationLauncher {
            pool: RefCell::new(CpuPool::new(&allocation)),
            allocation,
            srun: PathBuf::from("srun"),
            program: program.into(),
            cpus_per_worker: 1,
            worker: WorkerOptions::new(Some(ALLOCATION_CONNECT_TIMEOUT)),
            grants: RefCell::new(BTreeMap::new()),
            steps: RefCell::new(BTreeMap::new()),
        }
    }

    /// CPUs of every worker (`srun -c`); default 1.
    pub fn cpus_per_worker(mut self, cpus: u32) -> AllocationLauncher {
        self.cpus_per_worker = cpus;
        self
    }

    /// The `srun` program to run (default: `srun` from `PATH`).
    pub fn srun(mut self, srun: impl Into<PathBuf>) -> AllocationLauncher {
        self.srun = srun.into();
        self
    }

    worker_option_builders!(AllocationLauncher);

    /// CPUs held by workers now.
    pub fn cpus_in_use(&self) -> u64 {
        self.pool.borrow().cpus_in_use()
    }

    /// PIDs of `srun` steps still running.
    pub fn running(&self) -> Vec<u32> {
        self.steps.borrow().keys().copied().collect()
    }

    fn command(
        &self,
        grant: &CpuGrant,
        (master, service): (NodeId, &ServiceId),
        resources: &Resources,
    ) -> Command {
        let mut command = Command::new(&self.srun);
        command
            .args(["--exact", "-N1", "-n1", "-c"])
            .arg(grant.cpus.to_string());
        if let Some(mb) = resources.memory_mb {
            command.arg(format!("--mem={mb}M"));
        }
        if let Some(limit) = resources.time_limit {
            command.arg(format!("--time={}", limit.as_secs().div_ceil(60).max(1)));
        }
        command
            .arg("--jobid")
            .arg(&self.allocation.job_id)
            .arg("-w")
            .arg(&grant.node)
            .arg(&self.program)
            .args(self.worker.worker_args(master, service))
            .stdin(Stdio::null());
        command
    }

    /// Moves new grants out of the pool; true if `request` has one.
    fn collect_grants(&self, request: CpuRequestId) -> Option<CpuGrant> {
        let mut grants = self.grants.borrow_mut();
        for grant in self.pool.borrow_mut().take_grants() {
            grants.insert(grant.request, grant);
        }
        grants.remove(&request)
    }

    /// Ends a step and returns its CPUs.
    fn end_step(&self, pid: u32, kill: bool) {
        let Some((mut child, request)) = self.steps.borrow_mut().remove(&pid) else {
            return;
        };
        if kill {
            let _ = child.kill();
        }
        // A worker sent ShutDown exits by itself; a lingering one is killed after the
        // grace.
        reap_in_background(child, pid, STEP_EXIT_GRACE, "job step");
        if let Err(err) = self.pool.borrow_mut().release(request) {
            tracing::error!(pid, %err, "CPUs of a job step were not in the pool");
        }
    }
}

/// Withdraws a CPU request whose launch was dropped while waiting.
struct PendingRequest<'a> {
    launcher: &'a AllocationLauncher,
    request: Option<CpuRequestId>,
}

impl Drop for PendingRequest<'_> {
    fn drop(&mut self) {
        if let Some(request) = self.request {
            self.launcher.grants.borrow_mut().remove(&request);
            let _ = self.launcher.pool.borrow_mut().release(request);
        }
    }
}

impl WorkerLauncher for AllocationLauncher {
    type JobId = u32;

    async fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<u32, LaunchError> {
        self.launch_with(p, master, service, &Resources::default())
            .await
    }

    /// A job step with the CPUs asked (else [`cpus_per_worker`](Self::cpus_per_worker))
    /// from the pool, which waits until one node has them free; memory and time limit
    /// as `srun` flags. A partition cannot be had inside an allocation: refused.
    async fn launch_with(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
        resources: &Resources,
    ) -> Result<u32, LaunchError> {
        let cpus = resources.cpus.unwrap_or(self.cpus_per_worker);
        if let Some(partition) = &resources.partition {
            return Err(LaunchError {
                what: format!("a worker in partition {partition}"),
                why: format!(
                    "workers are job steps of Slurm job {}, in its own partition",
                    self.allocation.job_id
                ),
            });
        }
        let request = self
            .pool
            .borrow_mut()
            .request(cpus)
            .map_err(|err| LaunchError {
                what: format!("{cpus} CPUs in Slurm job {}", self.allocation.job_id),
                why: err.to_string(),
            })?;
        let mut pending = PendingRequest {
            launcher: self,
            request: Some(request),
        };
        let grant = loop {
            if let Some(grant) = self.collect_grants(request) {
                break grant;
            }
            p.sleep(CPU_POOL_POLL_INTERVAL).await;
        };
        let command = self.command(&grant, (master, service), resources);
        let child = spawn_off_the_loop(p, command).await?;
        pending.request = None;
        let pid = child.id();
        tracing::info!(pid, node = %grant.node, cpus = grant.cpus, %service, "launched a worker as a job step");
        self.steps.borrow_mut().insert(pid, (child, request));
        Ok(pid)
    }

    fn connection_timeout(&self) -> Option<Duration> {
        self.worker.connection_timeout
    }

    fn on_remote_error(&self, _error: &RemoteError, retries_so_far: u32) -> OnRemoteError {
        self.worker.retry_policy.decide(retries_so_far)
    }

    fn cancel(&self, job: &u32) {
        self.end_step(*job, true);
    }

    fn on_exit(&self, job: &u32) {
        self.end_step(*job, false);
    }

    fn job_state(&self, job: &u32) -> JobState {
        let mut steps = self.steps.borrow_mut();
        let step = steps.get_mut(job).map(|(child, _)| child);
        child_state(step, &format!("the job step (srun pid {job})"))
    }
}

impl Drop for AllocationLauncher {
    fn drop(&mut self) {
        for (pid, (mut child, _)) in std::mem::take(&mut *self.steps.borrow_mut()) {
            tracing::warn!(pid, "killing a job step left at the launcher's end");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
