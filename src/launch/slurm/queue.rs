//! What Slurm says of worker jobs: the jobs of a name (`squeue --name`), each job's or
//! array task's state and pending reason (`squeue`), how a job that left the queue
//! ended (`sacct`, where accounting is on), and which of those mean a job will never
//! run its worker, or never connect it.

use std::collections::BTreeMap;
use std::path::Path;

use super::command::{run, SlurmError};
use super::SlurmJob;
use crate::remote::JobState;

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

/// States of a job that ran in which its worker may still say hello (a suspended or
/// requeued job runs again); any other state (`COMPLETING`, `CANCELLED`, `FAILED`,
/// `TIMEOUT`, `OUT_OF_MEMORY`, `NODE_FAIL`, ...) means the worker has ended.
const ALIVE_STATES: &[&str] = &[
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "SUSPENDED",
    "STOPPED",
    "RESIZING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
];

/// The `squeue` format read here: the array's job id (the job id for a job that is not
/// an array task), the task index (`N/A` then), the state and the reason, separated by
/// `|` because a reason may hold spaces.
const SQUEUE_FORMAT: &str = "%F|%K|%T|%r";

/// One job (or array task) in `squeue`'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct QueuedJob {
    pub(super) job: SlurmJob,
    /// `RUNNING`, `PENDING`, `CANCELLED`, ...
    pub(super) state: String,
    /// Why it waits (`Priority`, `Resources`, ...), `None` when it does not.
    pub(super) reason: String,
}

/// Reads one line of `squeue --format=%F|%K|%T|%r`.
pub(super) fn parse_squeue_line(line: &str) -> Result<QueuedJob, String> {
    let bad = |why: &str| format!("cannot read squeue line {line:?}: {why}");
    let mut fields = line.trim().splitn(4, '|');
    let (Some(job), Some(task), Some(state), Some(reason)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(bad("fewer than 4 fields"));
    };
    let job = job.trim().parse().map_err(|_| bad("no job id"))?;
    let task = match task.trim() {
        "N/A" => None,
        task => Some(task.parse().map_err(|_| bad("no task index"))?),
    };
    let state = state.trim();
    if state.is_empty() || !state.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(bad("no job state"));
    }
    Ok(QueuedJob {
        job: SlurmJob { job, task },
        state: state.to_string(),
        reason: reason.trim().to_string(),
    })
}

/// Reads `squeue`'s answer: each job it lists, by job. Blank lines are skipped, and so
/// are lines it cannot read (logged): one odd line must not hide the other jobs.
pub(super) fn parse_squeue(out: &str) -> BTreeMap<SlurmJob, QueuedJob> {
    let mut jobs = BTreeMap::new();
    for line in out.lines().filter(|line| !line.trim().is_empty()) {
        match parse_squeue_line(line) {
            Ok(queued) => {
                jobs.insert(queued.job, queued);
            }
            Err(why) => tracing::warn!(%why, "skipping a line of squeue's answer"),
        }
    }
    jobs
}

/// Reads `sacct --parsable2 --format=JobID,State`: each job's (or array task's) final
/// state, by job. Lines of job steps (`123.batch`), of pending array ranges
/// (`123_[4-9]`) and lines it cannot read are skipped.
pub(super) fn parse_sacct(out: &str) -> BTreeMap<SlurmJob, String> {
    let mut states = BTreeMap::new();
    for line in out.lines() {
        let Some((id, state)) = line.trim().split_once('|') else {
            continue;
        };
        let state = state.split('|').next().unwrap_or("").trim();
        if state.is_empty() || id.contains('.') {
            continue;
        }
        let job = match id.split_once('_') {
            None => id.parse().ok().map(|job| SlurmJob { job, task: None }),
            Some((job, task)) => {
                job.parse()
                    .ok()
                    .zip(task.parse().ok())
                    .map(|(job, task)| SlurmJob {
                        job,
                        task: Some(task),
                    })
            }
        };
        if let Some(job) = job {
            states.insert(job, state.to_string());
        }
    }
    states
}

/// What a worker job's state says of its worker, once the job ran: it may still
/// connect, or it has ended. `queued` is the job's line in `squeue` (`None`: the job
/// has left the queue), `accounted` its state in `sacct`, if known.
pub(super) fn worker_job_state(queued: Option<&QueuedJob>, accounted: Option<&str>) -> JobState {
    match queued {
        Some(queued) if ALIVE_STATES.contains(&queued.state.as_str()) => JobState::Running,
        Some(queued) => {
            JobState::Ended(format!("its Slurm job {} is {}", queued.job, queued.state))
        }
        None => match accounted {
            Some(state) => JobState::Ended(format!("its Slurm job ended ({state})")),
            None => JobState::Ended("its Slurm job has left the queue".into()),
        },
    }
}

/// Ids of the jobs named `name` in the queue (`squeue --name`), oldest first.
pub(super) fn jobs_named(squeue: &Path, name: &str) -> Result<Vec<u64>, SlurmError> {
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

/// `jobs` as one `--jobs=` list.
fn job_list(jobs: &[SlurmJob]) -> String {
    let ids: Vec<String> = jobs.iter().map(SlurmJob::to_string).collect();
    format!("--jobs={}", ids.join(","))
}

/// What `squeue` says of `jobs`, in one call: a job absent from the answer has left
/// the queue.
pub(super) fn queued_jobs(
    squeue: &Path,
    jobs: &[SlurmJob],
) -> Result<BTreeMap<SlurmJob, QueuedJob>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        // One line per array task, pending ones too.
        "--array".to_string(),
        "--states=all".to_string(),
        job_list(jobs),
        format!("--format={SQUEUE_FORMAT}"),
    ];
    match run(squeue, &args, None) {
        Ok(out) => Ok(parse_squeue(&out)),
        // squeue refuses a list of ids it no longer knows at all: they are all gone.
        Err(err) if err.stderr.contains("Invalid job id") => Ok(BTreeMap::new()),
        Err(err) => Err(err),
    }
}

/// A job's state from `squeue` (state, reason): `None` once the job is gone.
pub(super) fn job_state(
    squeue: &Path,
    job: SlurmJob,
) -> Result<Option<(String, String)>, SlurmError> {
    let mut queued = queued_jobs(squeue, &[job])?;
    Ok(queued
        .remove(&job)
        .map(|queued| (queued.state, queued.reason)))
}

/// How `jobs` ended, from `sacct` (an error where accounting is off).
pub(super) fn accounted_states(
    sacct: &Path,
    jobs: &[SlurmJob],
) -> Result<BTreeMap<SlurmJob, String>, SlurmError> {
    let args = vec![
        "--noheader".to_string(),
        "--parsable2".to_string(),
        job_list(jobs),
        "--format=JobID,State".to_string(),
    ];
    Ok(parse_sacct(&run(sacct, &args, None)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn squeue_lines_of_jobs_and_array_tasks_are_read() {
        let out = "151|2|PENDING|JobArrayTaskLimit\n151|0|RUNNING|None\n\n\
                   155|N/A|PENDING|ReqNodeNotAvail, UnavailableNodes:vm[1-2]\n";
        let jobs = parse_squeue(out);
        assert_eq!(jobs.len(), 3);
        let pending = &jobs[&SlurmJob {
            job: 155,
            task: None,
        }];
        assert_eq!(pending.state, "PENDING");
        assert_eq!(pending.reason, "ReqNodeNotAvail, UnavailableNodes:vm[1-2]");
        assert!(jobs.contains_key(&SlurmJob {
            job: 151,
            task: Some(0)
        }));
    }

    #[test]
    fn unreadable_squeue_lines_are_errors_and_skipped() {
        for line in [
            "",
            "151",
            "151|0|RUNNING",
            "x|0|RUNNING|None",
            "151|[2-3]|PENDING|None",
            "151|0||None",
            "151|0|running|None",
            "-1|N/A|RUNNING|None",
        ] {
            assert!(parse_squeue_line(line).is_err(), "{line:?}");
        }
        assert_eq!(parse_squeue("garbage\n7|N/A|RUNNING|None\n").len(), 1);
    }

    #[test]
    fn sacct_lines_of_steps_and_ranges_are_skipped() {
        let out = "151_0|CANCELLED by 0\n151_0.batch|CANCELLED\n151_[2-3]|PENDING\n\
                   152|OUT_OF_MEMORY\n152.extern|COMPLETED\nnonsense\n";
        let states = parse_sacct(out);
        assert_eq!(states.len(), 2, "{states:?}");
        assert_eq!(
            states[&SlurmJob {
                job: 151,
                task: Some(0)
            }],
            "CANCELLED by 0"
        );
        assert_eq!(
            states[&SlurmJob {
                job: 152,
                task: None
            }],
            "OUT_OF_MEMORY"
        );
    }

    #[test]
    fn a_job_that_left_the_queue_or_ended_has_ended_and_a_waiting_one_runs() {
        let queued = |state: &str| QueuedJob {
            job: SlurmJob { job: 1, task: None },
            state: state.into(),
            reason: "None".into(),
        };
        for state in ["RUNNING", "PENDING", "SUSPENDED", "CONFIGURING"] {
            assert_eq!(
                worker_job_state(Some(&queued(state)), None),
                JobState::Running
            );
        }
        for state in ["CANCELLED", "COMPLETING", "FAILED", "TIMEOUT", "NODE_FAIL"] {
            let JobState::Ended(why) = worker_job_state(Some(&queued(state)), None) else {
                panic!("{state} is an end");
            };
            assert!(why.contains(state), "{why}");
        }
        let JobState::Ended(why) = worker_job_state(None, Some("TIMEOUT")) else {
            panic!("a job gone from the queue has ended");
        };
        assert!(why.contains("TIMEOUT"), "{why}");
        assert!(matches!(worker_job_state(None, None), JobState::Ended(_)));
    }

    fn job() -> impl Strategy<Value = SlurmJob> {
        (
            prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
            proptest::option::of(prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()]),
        )
            .prop_map(|(job, task)| SlurmJob { job, task })
    }

    fn state() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("RUNNING".to_string()),
            Just("PENDING".to_string()),
            Just("OUT_OF_MEMORY".to_string()),
            "[A-Z_]{1,16}",
        ]
    }

    proptest! {
        // Every job squeue lists is read back as listed, whatever its reason holds.
        #[test]
        fn squeue_answers_are_read_back_as_written(
            listed in proptest::collection::vec((job(), state(), "[ -~]{0,40}"), 0..20)
        ) {
            let mut expected = BTreeMap::new();
            let mut out = String::new();
            for (job, state, reason) in &listed {
                let task = job.task.map_or("N/A".to_string(), |t| t.to_string());
                out.push_str(&format!("{}|{task}|{state}|{reason}\n", job.job));
                let reason = reason.trim().to_string();
                expected.insert(*job, QueuedJob { job: *job, state: state.clone(), reason });
            }
            prop_assert_eq!(parse_squeue(&out), expected);
        }

        // Every job's own line in sacct is read back; step lines never are.
        #[test]
        fn sacct_answers_are_read_back_as_written(
            listed in proptest::collection::vec((job(), state()), 0..20)
        ) {
            let mut expected = BTreeMap::new();
            let mut out = String::new();
            for (job, state) in &listed {
                out.push_str(&format!("{job}|{state}\n{job}.batch|STEP\n"));
                expected.insert(*job, state.clone());
            }
            prop_assert_eq!(parse_sacct(&out), expected);
        }

        // Any text at all is read without a panic.
        #[test]
        fn any_text_is_read_without_panicking(text in "[ -~\n|_]{0,200}") {
            let _ = parse_squeue(&text);
            let _ = parse_sacct(&text);
        }
    }
}
