//! Worker launchers for the real world: local OS processes running the current program
//! in worker mode, Slurm batch jobs, and job steps on the CPUs of the allocation the
//! master runs in; the options their workers share ([`WorkerOptions`]), and which of them
//! fits here ([`LauncherChoice`], `--launcher auto`). (The simulator's launcher lives in
//! `hyperion-sim`.)

mod allocation;
mod auto;
mod child;
mod cpu_pool;
mod local;
mod pace;
mod slurm;
mod slurm_env;
mod worker_options;

pub use allocation::{
    AllocationLauncher, ALLOCATION_CONNECT_TIMEOUT, CPU_POOL_POLL_INTERVAL, STEP_EXIT_GRACE,
};
pub use auto::LauncherChoice;
pub use cpu_pool::{CpuGrant, CpuPool, CpuPoolError, CpuRequestId};
pub use local::{LocalLauncher, LOCAL_LAUNCH_INTERVAL};
pub use pace::{LaunchPacer, LAUNCH_BURST_DEFAULT};
pub use slurm::{
    parse_job_id, shell_quote, SlurmError, SlurmJob, SlurmLauncher, SlurmOptions,
    ARRAY_GATHER_WINDOW, ARRAY_TASKS_MAX, JOB_POLL_INTERVAL, JOB_STATE_POLL_INTERVAL,
    RUNNING_JOB_CONNECT_TIMEOUT, SLURM_LAUNCH_INTERVAL, SUBMIT_ATTEMPTS_MAX, SUBMIT_BACKOFF,
};
pub use slurm_env::{
    expand_node_list, parse_cpus_per_node, AllocatedNode, Allocation, SlurmParseError,
    NODE_LIST_HOSTS_MAX,
};
pub use worker_options::WorkerOptions;
