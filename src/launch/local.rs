//! Workers as local OS processes: the current executable (or a configured program) run
//! with `worker --master ADDR --service ID`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::child::{child_state, reap_in_background, spawn_off_the_loop};
use super::worker_options::worker_option_builders;
use super::{LaunchPacer, WorkerOptions};
use crate::process::Process;
use crate::remote::{
    JobState, LaunchError, OnRemoteError, RemoteError, Resources, ServiceId, WorkerLauncher,
};
use crate::types::id::NodeId;

/// How long a worker process may take to exit after `ShutDown` before it is killed.
pub const WORKER_EXIT_GRACE: Duration = Duration::from_secs(5);

/// The least time between two worker processes started after a burst of
/// [`LAUNCH_BURST_DEFAULT`](super::LAUNCH_BURST_DEFAULT) (at most 20 a second), by
/// default: a master asked for thousands of workers does not fork them all at once.
pub const LOCAL_LAUNCH_INTERVAL: Duration = Duration::from_millis(50);

/// Launches each worker as a child OS process. Children are killed if they outlive
/// their service (cancelled, or still running when the launcher is dropped), and on
/// Linux they are also killed if the master process dies (`PR_SET_PDEATHSIG`), so no
/// worker is left behind even when the master is killed.
pub struct LocalLauncher {
    program: PathBuf,
    worker: WorkerOptions,
    pacer: LaunchPacer,
    children: RefCell<BTreeMap<u32, Child>>,
}

impl LocalLauncher {
    /// Runs the current executable as workers.
    pub fn current_exe() -> std::io::Result<LocalLauncher> {
        Ok(LocalLauncher::program(std::env::current_exe()?))
    }

    /// Runs `program` as workers (it must call [`crate::cluster::main`] or otherwise
    /// understand the `worker` subcommand).
    pub fn program(program: impl Into<PathBuf>) -> LocalLauncher {
        LocalLauncher {
            program: program.into(),
            worker: WorkerOptions::new(Some(Duration::from_secs(30))),
            pacer: LaunchPacer::new(LOCAL_LAUNCH_INTERVAL),
            children: RefCell::new(BTreeMap::new()),
        }
    }

    worker_option_builders!(LocalLauncher);

    /// The least time between two launches after the burst (default
    /// [`LOCAL_LAUNCH_INTERVAL`]).
    pub fn launch_interval(mut self, interval: Duration) -> LocalLauncher {
        self.pacer = LaunchPacer::new(interval);
        self
    }

    /// PIDs of worker processes still running.
    pub fn running(&self) -> Vec<u32> {
        self.children.borrow().keys().copied().collect()
    }

    fn command(&self, master: NodeId, service: &ServiceId) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(self.worker.worker_args(master, service))
            .stdin(Stdio::null());
        die_with_parent(&mut command);
        command
    }

    /// Waits up to `grace` for a worker to exit, then kills it. The wait happens on a
    /// reaper thread: the node's event loop must not block.
    fn reap(&self, pid: u32, grace: Duration) {
        if let Some(child) = self.children.borrow_mut().remove(&pid) {
            reap_in_background(child, pid, grace, "worker process");
        }
    }
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // The "parent" whose death kills the child is the thread that forked it: a thread
    // of the node's blocking pool (see `spawn_off_the_loop`), which lives as long as the
    // node, as the node's own thread does.
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // prctl, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

impl WorkerLauncher for LocalLauncher {
    type JobId = u32;

    async fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<u32, LaunchError> {
        self.pacer.wait_turn(p).await;
        let child = spawn_off_the_loop(p, self.command(master, service)).await?;
        let pid = child.id();
        tracing::info!(pid, %service, "launched a local worker process");
        self.children.borrow_mut().insert(pid, child);
        Ok(pid)
    }

    /// A local process shares this machine: CPUs up to the machine's are granted (not
    /// reserved: every worker process may use every CPU), memory and time limits are
    /// not enforced; a partition, or more CPUs than the machine has, is refused.
    async fn launch_with(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
        resources: &Resources,
    ) -> Result<u32, LaunchError> {
        // real-world only: the machine's CPUs.
        let machine = std::thread::available_parallelism().map_or(1, |n| n.get());
        let too_many = resources
            .cpus
            .is_some_and(|cpus| usize::try_from(cpus).map_or(true, |cpus| cpus > machine));
        if too_many || resources.partition.is_some() {
            return Err(LaunchError {
                what: format!("a local worker with {resources}"),
                why: format!("this machine has {machine} CPUs and no Slurm partitions"),
            });
        }
        self.launch(p, master, service).await
    }

    fn connection_timeout(&self) -> Option<Duration> {
        self.worker.connection_timeout
    }

    fn on_remote_error(&self, _error: &RemoteError, retries_so_far: u32) -> OnRemoteError {
        self.worker.retry_policy.decide(retries_so_far)
    }

    fn cancel(&self, job: &u32) {
        self.reap(*job, Duration::ZERO);
    }

    fn on_exit(&self, job: &u32) {
        self.reap(*job, WORKER_EXIT_GRACE);
    }

    fn job_state(&self, job: &u32) -> JobState {
        let mut children = self.children.borrow_mut();
        child_state(children.get_mut(job), &format!("the worker process {job}"))
    }
}

impl Drop for LocalLauncher {
    fn drop(&mut self) {
        for (pid, mut child) in std::mem::take(&mut *self.children.borrow_mut()) {
            tracing::warn!(pid, "killing a worker process left at the launcher's end");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// Starting an OS process (fork and exec: tens to hundreds of milliseconds each on a
    /// loaded machine) happens off the node's thread, so that the node goes on running
    /// its other processes meanwhile: accepting and answering the workers launched
    /// before, sending heartbeats. Measured in turns of another process, not in time.
    #[test]
    fn other_processes_run_while_a_worker_process_starts() {
        let node = crate::Node::new().expect("a node");
        let turns_during_launch = node
            .run(|p| async move {
                let (turns, done) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(false)));
                let (counted, stop) = (turns.clone(), done.clone());
                p.spawn_local(move |q| async move {
                    while !stop.get() {
                        counted.set(counted.get() + 1);
                        q.yield_now().await;
                    }
                });
                p.yield_now().await;
                let launcher = LocalLauncher::program("/bin/true");
                let before = turns.get();
                let service = ServiceId::from_text("off-the-loop");
                let job = launcher.launch(&p, p.self_node(), &service).await;
                let during = turns.get() - before;
                done.set(true);
                if let Ok(job) = job {
                    launcher.cancel(&job);
                }
                during
            })
            .expect("the node runs");
        assert!(
            turns_during_launch > 0,
            "the node ran nothing else while a worker process started"
        );
    }
}
