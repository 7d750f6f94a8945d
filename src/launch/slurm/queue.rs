//! What `squeue` says of a worker's job: the jobs of a name, a job's state and pending
//! reason, and which of those mean a job will never run its worker.

use std::path::PathBuf;

use super::command::{run, SlurmError};
use super::SlurmJob;

/// Pending reasons after which a job will never start on its own. Other reasons
/// (`Priority`, `Resources`, `ReqNodeNotAvail` while a node is drained or rebooting,
/// ...) are transient: the launch keeps waiting.
pub(super) const NEVER_STARTS: &[&str] = &[
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
pub(super) const WAITING_STATES: &[&str] = &["PENDING", "CONFIGURING"];

/// Ids of the jobs named `name` in the queue (`squeue --name`), oldest first.
pub(super) fn jobs_named(squeue: &PathBuf, name: &str) -> Result<Vec<u64>, SlurmError> {
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
pub(super) fn job_state(
    squeue: &PathBuf,
    job: SlurmJob,
) -> Result<Option<(String, String)>, SlurmError> {
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
