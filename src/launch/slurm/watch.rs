//! Watching the worker jobs a master waits for: the launcher's answer to
//! [`WorkerLauncher::job_state`](crate::remote::WorkerLauncher::job_state), so that a
//! job that ends before its worker's hello fails that launch at once rather than at the
//! connection timeout.
//!
//! The master asks often (every quarter second per waiting service) and must never
//! block its event loop, while Slurm's controller should be asked sparingly: answers
//! come from what the last poll saw, and a poll (one `squeue` for every job asked about
//! since the previous poll, plus one `sacct` for those that left the queue) runs on a
//! thread of its own at most every [`JOB_STATE_POLL_INTERVAL`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::queue::{accounted_states, queued_jobs, worker_job_state};
use super::SlurmJob;
use crate::remote::JobState;

/// The least time between two polls of Slurm for the state of jobs whose workers have
/// not connected yet: one `squeue` per interval, however many jobs are waited for.
pub const JOB_STATE_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What the polls saw, shared with the polling thread.
#[derive(Default)]
struct Seen {
    /// Each polled job's state at the last poll that asked about it.
    states: BTreeMap<SlurmJob, JobState>,
    /// Jobs asked about since the last poll started: the next poll's list.
    asked: BTreeSet<SlurmJob>,
    /// When the last poll started.
    polled_at: Option<Instant>,
    /// Whether a poll runs now.
    polling: bool,
}

/// The states of worker jobs, polled in the background (real world only: Slurm is
/// never simulated).
pub(super) struct JobWatch {
    squeue: PathBuf,
    sacct: PathBuf,
    seen: Arc<Mutex<Seen>>,
}

impl JobWatch {
    pub(super) fn new(squeue: PathBuf, sacct: PathBuf) -> JobWatch {
        JobWatch {
            squeue,
            sacct,
            seen: Arc::default(),
        }
    }

    /// `job`'s state as last seen (running until a poll says otherwise: the launch
    /// returned once it ran); starts a poll if the last one is old enough.
    // real-world only: a clock reading and a thread.
    pub(super) fn state(&self, job: SlurmJob) -> JobState {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.asked.insert(job);
        let answer = seen.states.get(&job).cloned().unwrap_or(JobState::Running);
        let due = seen
            .polled_at
            .is_none_or(|at| at.elapsed() >= JOB_STATE_POLL_INTERVAL);
        if due && !seen.polling {
            seen.polling = true;
            seen.polled_at = Some(Instant::now()); // real-world only: Slurm is never simulated
            let jobs: Vec<SlurmJob> = std::mem::take(&mut seen.asked).into_iter().collect();
            let (squeue, sacct, shared) =
                (self.squeue.clone(), self.sacct.clone(), self.seen.clone());
            let spawned = std::thread::Builder::new()
                .name("hyperion-squeue".into())
                .spawn(move || {
                    let states = poll(&squeue, &sacct, &jobs);
                    let mut seen = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    seen.polling = false;
                    // Only jobs still asked about are kept: the others' workers
                    // connected or their services ended.
                    if let Some(states) = states {
                        seen.states = states;
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(%err, "cannot start a thread to poll squeue");
                seen.polling = false;
            }
        }
        answer
    }
}

/// One poll: each job's state, or `None` if `squeue` could not tell.
fn poll(
    squeue: &std::path::Path,
    sacct: &std::path::Path,
    jobs: &[SlurmJob],
) -> Option<BTreeMap<SlurmJob, JobState>> {
    let queued = match queued_jobs(squeue, jobs) {
        Ok(queued) => queued,
        Err(err) => {
            tracing::warn!(%err, "squeue failed; the jobs' states stay as last seen");
            return None;
        }
    };
    let gone: Vec<SlurmJob> = jobs
        .iter()
        .filter(|job| !queued.contains_key(job))
        .copied()
        .collect();
    // Where accounting is off, sacct fails: a job gone from the queue has ended anyway.
    let accounted = if gone.is_empty() {
        BTreeMap::new()
    } else {
        accounted_states(sacct, &gone).unwrap_or_else(|err| {
            tracing::debug!(%err, "sacct cannot tell how the jobs ended");
            BTreeMap::new()
        })
    };
    let states = jobs
        .iter()
        .map(|job| {
            let state = worker_job_state(queued.get(job), accounted.get(job).map(String::as_str));
            if let JobState::Ended(why) = &state {
                tracing::info!(%job, %why, "a worker job ended before its worker connected");
            }
            (*job, state)
        })
        .collect();
    Some(states)
}
