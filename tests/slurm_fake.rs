//! The Slurm launcher against a fake Slurm: `sbatch`, `squeue` and `scancel` shell
//! scripts written into a temporary directory, keeping a queue of job files. They
//! produce what a one-node Slurm cannot (unreadable `sbatch` output, `SUSPENDED`, a job
//! that vanishes, long transient pending reasons); after every scenario the fake queue
//! must hold no job.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hyperion::launch::{SlurmJob, SlurmLauncher, SlurmOptions};
use hyperion::remote::{JobState, LaunchError, Resources, ServiceId, WorkerLauncher};
use hyperion_sim::Sim;

const SBATCH: &str = r#"#!/bin/sh
S="$(dirname "$0")"
echo "sbatch $*" >> "$S/calls"
name=""; last=""
for a in "$@"; do
    case "$a" in
        --job-name=*) name="${a#--job-name=}";;
        --array=*) last="${a#--array=0-}"; last="${last%%%*}";;
    esac
done
if [ -n "$last" ] && [ -f "$S/refuse_arrays" ]; then
    cat > /dev/null
    echo "sbatch: error: Batch job submission failed: Invalid job array specification" >&2
    exit 1
fi
id=$(cat "$S/counter" 2>/dev/null || echo 100)
echo $((id + 1)) > "$S/counter"
cat > "$S/script-$id"
if [ -n "$last" ]; then
    for i in $(seq 0 "$last"); do
        states="$S/initial"; [ -f "$S/initial_$i" ] && states="$S/initial_$i"
        { echo "$name"; cat "$states"; } > "$S/jobs/${id}_$i"
    done
else
    { echo "$name"; cat "$S/initial"; } > "$S/jobs/$id"
fi
if [ -f "$S/sbatch_output" ]; then cat "$S/sbatch_output"; else echo "$id"; fi
"#;

const SQUEUE: &str = r#"#!/bin/sh
S="$(dirname "$0")"
echo "squeue $*" >> "$S/calls"
job=""; name=""
for a in "$@"; do case "$a" in --jobs=*) job="${a#--jobs=}";; --name=*) name="${a#--name=}";; esac; done
if [ -n "$job" ]; then
    found=""
    for j in $(echo "$job" | tr ',' ' '); do
        f="$S/jobs/$j"
        if [ ! -f "$f" ] || [ "$(sed -n 2p "$f")" = "GONE" ]; then rm -f "$f"; continue; fi
        line="$(sed -n 2p "$f")"
        state="${line%% *}"; reason="${line#* }"; [ "$reason" = "$line" ] && reason=""
        base="${j%%_*}"; task="N/A"; case "$j" in *_*) task="${j#*_}";; esac
        echo "$base|$task|$state|$reason"
        found=1
        if [ "$(wc -l < "$f")" -gt 2 ]; then sed -i 2d "$f"; fi
    done
    if [ -z "$found" ]; then
        echo "slurm_load_jobs error: Invalid job id specified" >&2
        exit 1
    fi
    exit 0
fi
if [ -f "$S/squeue_fails" ]; then echo "squeue: error: slurm_load_jobs: Socket timed out" >&2; exit 1; fi
for f in "$S"/jobs/*; do
    [ -f "$f" ] && [ "$(head -n 1 "$f")" = "$name" ] && basename "$f"
done
exit 0
"#;

/// Accounting is off, as on the local Slurm, unless the test writes `accounted`
/// (`sacct --parsable2` lines).
const SACCT: &str = r#"#!/bin/sh
S="$(dirname "$0")"
echo "sacct $*" >> "$S/calls"
if [ -f "$S/accounted" ]; then cat "$S/accounted"; exit 0; fi
echo "Slurm accounting storage is disabled" >&2
exit 1
"#;

const SCANCEL: &str = r#"#!/bin/sh
S="$(dirname "$0")"
echo "scancel $*" >> "$S/calls"
for a in "$@"; do
    case "$a" in
        --name=*)
            n="${a#--name=}"
            for f in "$S"/jobs/*; do
                [ -f "$f" ] && [ "$(head -n 1 "$f")" = "$n" ] && rm -f "$f"
            done;;
        *) rm -f "$S/jobs/$a";;
    esac
done
exit 0
"#;

/// A fake Slurm in a temporary directory; each new job goes through `states` (one
/// `STATE REASON` line per `squeue`, the last one repeating; `GONE`: the job vanishes).
struct FakeSlurm {
    dir: tempfile::TempDir,
}

impl FakeSlurm {
    fn new(states: &[&str]) -> FakeSlurm {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("hyperion-fake-slurm-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("jobs")).unwrap();
        std::fs::write(dir.path().join("initial"), states.join("\n") + "\n").unwrap();
        for (name, text) in [
            ("sbatch", SBATCH),
            ("squeue", SQUEUE),
            ("sacct", SACCT),
            ("scancel", SCANCEL),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeSlurm { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `sbatch` prints `text` instead of the job id.
    fn sbatch_prints(&self, text: &str) {
        std::fs::write(self.path("sbatch_output"), text).unwrap();
    }

    /// `sbatch` refuses job arrays (as with `MaxArraySize=0`).
    fn refuse_arrays(&self) {
        std::fs::write(self.path("refuse_arrays"), "").unwrap();
    }

    /// `squeue --name` fails.
    fn squeue_by_name_fails(&self) {
        std::fs::write(self.path("squeue_fails"), "").unwrap();
    }

    fn launcher(&self) -> SlurmLauncher {
        let options = SlurmOptions {
            sbatch: self.path("sbatch"),
            squeue: self.path("squeue"),
            sacct: self.path("sacct"),
            scancel: self.path("scancel"),
            ..SlurmOptions::default().job_name("fake-run")
        };
        SlurmLauncher::new(options).unwrap().program("/bin/true")
    }

    /// Job ids in the fake queue.
    fn queue(&self) -> Vec<String> {
        let mut jobs: Vec<String> = std::fs::read_dir(self.path("jobs"))
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        jobs.sort();
        jobs
    }

    fn submissions(&self) -> usize {
        calls(self.dir.path())
            .lines()
            .filter(|line| line.starts_with("sbatch"))
            .count()
    }

    /// Waits (real time: `scancel` runs on a thread) until the queue is empty.
    fn assert_queue_drains(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.queue().is_empty() {
            assert!(
                Instant::now() < deadline,
                "jobs left in the queue: {:?}\ncalls:\n{}",
                self.queue(),
                calls(self.dir.path())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn calls(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
}

/// Runs one launch in the simulator (virtual time: the launcher's polling is instant).
fn launch(launcher: &Rc<SlurmLauncher>) -> Result<SlurmJob, LaunchError> {
    launch_with_seed(launcher, 1)
}

/// [`launch`] in a world of this seed (service ids differ between seeds).
fn launch_with_seed(launcher: &Rc<SlurmLauncher>, seed: u64) -> Result<SlurmJob, LaunchError> {
    let launcher = launcher.clone();
    Sim::run_alone(seed, move |p| async move {
        let service = ServiceId::fresh(&p);
        launcher.launch(&p, p.self_node(), &service).await
    })
    .unwrap()
}

#[test]
fn unreadable_sbatch_output_finds_the_job_by_name_instead_of_resubmitting() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    slurm.sbatch_prints("Submitted batch job, id withheld\n");
    let launcher = Rc::new(slurm.launcher());
    let job = launch(&launcher).expect("the job was found by name");
    assert_eq!(
        job,
        SlurmJob {
            job: 100,
            task: None
        }
    );
    assert_eq!(slurm.submissions(), 1, "{}", calls(slurm.dir.path()));
    launcher.cancel(&job);
    slurm.assert_queue_drains();
}

#[test]
fn when_squeue_cannot_tell_the_unclear_jobs_are_cancelled_by_name() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    slurm.sbatch_prints("garbage\n");
    slurm.squeue_by_name_fails();
    let launcher = Rc::new(slurm.launcher());
    let error = launch(&launcher).expect_err("no job id could be found");
    assert!(error.why.contains("garbage"), "{error}");
    slurm.assert_queue_drains();
}

#[test]
fn a_suspended_job_fails_the_launch_and_is_cancelled() {
    let slurm = FakeSlurm::new(&["PENDING Priority", "SUSPENDED None"]);
    let launcher = Rc::new(slurm.launcher());
    let error = launch(&launcher).expect_err("a suspended job fails the launch");
    assert!(error.why.contains("SUSPENDED"), "{error}");
    slurm.assert_queue_drains();
    assert!(launcher.jobs().is_empty());
}

#[test]
fn a_vanishing_job_fails_the_launch() {
    let slurm = FakeSlurm::new(&["PENDING Priority", "GONE"]);
    let launcher = Rc::new(slurm.launcher());
    let error = launch(&launcher).expect_err("a vanished job fails the launch");
    assert!(error.why.contains("ended"), "{error}");
    slurm.assert_queue_drains();
    assert!(launcher.jobs().is_empty());
}

#[test]
fn transient_pending_reasons_keep_the_launch_waiting() {
    let slurm = FakeSlurm::new(&[
        "PENDING ReqNodeNotAvail",
        "PENDING Resources",
        "PENDING Priority",
        "CONFIGURING None",
        "RUNNING None",
    ]);
    let launcher = Rc::new(slurm.launcher());
    let job = launch(&launcher).expect("the job ran in the end");
    launcher.cancel(&job);
    slurm.assert_queue_drains();
}

#[test]
fn a_launch_killed_while_its_job_waits_cancels_the_job() {
    let slurm = FakeSlurm::new(&["PENDING Priority"]);
    let launcher = Rc::new(slurm.launcher());
    let in_sim = launcher.clone();
    Sim::run_alone(2, move |p| async move {
        let launching = p.spawn_local(move |s| async move {
            let service = ServiceId::fresh(&s);
            let _ = in_sim.launch(&s, s.self_node(), &service).await;
        });
        p.sleep(Duration::from_secs(30)).await;
        p.kill(launching, "the test kills the launching process");
        p.sleep(Duration::from_secs(1)).await;
    })
    .unwrap();
    slurm.assert_queue_drains();
    assert!(launcher.jobs().is_empty(), "the slot is free again");
}

#[test]
fn every_job_gets_its_own_name() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    let launcher = Rc::new(slurm.launcher());
    let first = launch_with_seed(&launcher, 1).unwrap();
    let second = launch_with_seed(&launcher, 2).unwrap();
    let names: Vec<String> = [first, second]
        .iter()
        .map(|job| {
            let text = std::fs::read_to_string(slurm.path("jobs").join(job.to_string())).unwrap();
            text.lines().next().unwrap().to_string()
        })
        .collect();
    assert_ne!(names[0], names[1]);
    assert!(
        names
            .iter()
            .all(|name| name.starts_with("fake-run-service-")),
        "{names:?}"
    );
    drop(launcher);
    slurm.assert_queue_drains();
}

/// Launches `count` workers from as many processes at once, as a scan's slots do.
fn launch_together(
    launcher: &Rc<SlurmLauncher>,
    count: usize,
) -> Vec<Result<SlurmJob, LaunchError>> {
    let launcher = launcher.clone();
    Sim::run_alone(3, move |p| async move {
        let me = p.self_pid();
        for slot in 0..count {
            let launcher = launcher.clone();
            p.spawn_local(move |s| async move {
                let service = ServiceId::fresh(&s);
                let launched = launcher.launch(&s, s.self_node(), &service).await;
                s.send(me, (slot, launched.map_err(|err| err.to_string())));
            });
        }
        let mut results = Vec::new();
        for _ in 0..count {
            results.push(p.expect::<(usize, Result<SlurmJob, String>)>().await);
        }
        results.sort_by_key(|(slot, _)| *slot);
        results
            .into_iter()
            .map(|(_, launched)| {
                launched.map_err(|why| LaunchError {
                    what: "launch".into(),
                    why,
                })
            })
            .collect()
    })
    .unwrap()
}

#[test]
fn launches_started_together_share_one_job_array_one_task_each() {
    let slurm = FakeSlurm::new(&["PENDING Priority", "RUNNING None"]);
    let launcher = Rc::new(slurm.launcher().max_jobs(8).job_arrays(true));
    let jobs: Vec<SlurmJob> = launch_together(&launcher, 3)
        .into_iter()
        .map(|launched| launched.expect("every task runs"))
        .collect();
    assert_eq!(slurm.submissions(), 1, "{}", calls(slurm.dir.path()));
    assert!(
        calls(slurm.dir.path()).contains("--array=0-2%8"),
        "{}",
        calls(slurm.dir.path())
    );
    let mut tasks: Vec<Option<u32>> = jobs.iter().map(|job| job.task).collect();
    tasks.sort();
    assert_eq!(tasks, [Some(0), Some(1), Some(2)]);
    assert!(jobs.iter().all(|job| job.job == jobs[0].job));
    // Each task runs its own worker: three services in the script's three branches.
    let script = std::fs::read_to_string(slurm.path(&format!("script-{}", jobs[0].job))).unwrap();
    for task in 0..3 {
        assert!(
            script.contains(&format!("{task}) exec '/bin/true' 'worker'")),
            "{script}"
        );
    }
    // A task is cancelled alone.
    launcher.cancel(&jobs[1]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while slurm.queue().len() > 2 {
        assert!(Instant::now() < deadline, "{:?}", slurm.queue());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !slurm.queue().contains(&jobs[1].to_string()),
        "{:?}",
        slurm.queue()
    );
    drop(launcher);
    slurm.assert_queue_drains();
}

#[test]
fn an_array_task_that_ends_before_running_fails_only_its_launch() {
    let slurm = FakeSlurm::new(&["PENDING Priority", "RUNNING None"]);
    // Task 1 of an array vanishes while it waits.
    std::fs::write(slurm.path("initial_1"), "PENDING Priority\nGONE\n").unwrap();
    let launcher = Rc::new(slurm.launcher().job_arrays(true));
    let results = launch_together(&launcher, 2);
    assert_eq!(slurm.submissions(), 1, "{}", calls(slurm.dir.path()));
    // Which process got which task is the scheduler's choice: one runs, one fails.
    let ran: Vec<SlurmJob> = results.iter().flatten().copied().collect();
    let failed: Vec<&LaunchError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(ran.len(), 1, "{results:?}");
    let first = ran[0];
    assert_eq!(first.task, Some(0));
    assert!(
        failed[0].why.contains(&format!("job {}_1", first.job))
            && failed[0].why.contains("ended before its worker connected"),
        "{}",
        failed[0]
    );
    assert_eq!(launcher.jobs(), [first]);
    launcher.cancel(&first);
    slurm.assert_queue_drains();
}

#[test]
fn a_refused_array_falls_back_to_one_job_per_worker() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    slurm.refuse_arrays();
    let launcher = Rc::new(slurm.launcher().job_arrays(true));
    let jobs: Vec<SlurmJob> = launch_together(&launcher, 2)
        .into_iter()
        .map(|launched| launched.expect("single jobs run"))
        .collect();
    assert!(jobs.iter().all(|job| job.task.is_none()), "{jobs:?}");
    let sbatch_calls = calls(slurm.dir.path());
    let array_calls = sbatch_calls
        .lines()
        .filter(|line| line.starts_with("sbatch") && line.contains("--array"))
        .count();
    assert!(array_calls >= 1, "{sbatch_calls}");
    assert_eq!(slurm.submissions() - array_calls, 2, "{sbatch_calls}");
    // Refused once, never asked again.
    let later = launch(&launcher).expect("a single job runs");
    assert!(later.task.is_none());
    let sbatch_calls = calls(slurm.dir.path());
    assert_eq!(
        sbatch_calls
            .lines()
            .filter(|line| line.starts_with("sbatch") && line.contains("--array"))
            .count(),
        array_calls,
        "{sbatch_calls}"
    );
    drop(launcher);
    slurm.assert_queue_drains();
}

/// Asks `launcher` for `job`'s state until it has ended (the answers come from polls on
/// a thread: real time), failing at a generous deadline.
fn await_ended(slurm: &FakeSlurm, launcher: &SlurmLauncher, job: &SlurmJob) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match launcher.job_state(job) {
            JobState::Ended(why) => return why,
            state => assert!(
                Instant::now() < deadline,
                "{job} still {state:?}; calls:\n{}",
                calls(slurm.dir.path())
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_job_that_leaves_the_queue_has_ended_for_the_master() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    let launcher = Rc::new(slurm.launcher());
    let job = launch(&launcher).expect("the job runs");
    assert_eq!(launcher.job_state(&job), JobState::Running);
    // Cancelled (or dead) before its worker's hello: gone from the queue.
    std::fs::remove_file(slurm.path(&format!("jobs/{job}"))).unwrap();
    let why = await_ended(&slurm, &launcher, &job);
    assert!(why.contains("left the queue"), "{why}");
    launcher.cancel(&job);
    slurm.assert_queue_drains();
}

#[test]
fn an_array_task_that_fails_after_running_has_ended_and_sacct_says_how() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    // Task 1 runs, then its state is OUT_OF_MEMORY's end.
    std::fs::write(
        slurm.path("initial_1"),
        "RUNNING None\nRUNNING None\nGONE\n",
    )
    .unwrap();
    let launcher = Rc::new(slurm.launcher().job_arrays(true));
    let jobs: Vec<SlurmJob> = launch_together(&launcher, 2)
        .into_iter()
        .map(|launched| launched.expect("both tasks run"))
        .collect();
    let failing = *jobs.iter().find(|job| job.task == Some(1)).unwrap();
    let other = *jobs.iter().find(|job| job.task == Some(0)).unwrap();
    std::fs::write(
        slurm.path("accounted"),
        format!("{failing}|OUT_OF_MEMORY\n{failing}.batch|OUT_OF_MEMORY\n"),
    )
    .unwrap();
    let why = await_ended(&slurm, &launcher, &failing);
    assert!(why.contains("OUT_OF_MEMORY"), "{why}");
    // The other task of the array still runs.
    assert_eq!(launcher.job_state(&other), JobState::Running);
    drop(launcher);
    slurm.assert_queue_drains();
}

#[test]
fn a_cancelled_job_still_listed_has_ended() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    let launcher = Rc::new(slurm.launcher());
    let job = launch(&launcher).expect("the job runs");
    std::fs::write(
        slurm.path(&format!("jobs/{job}")),
        "fake-run\nCANCELLED None\n",
    )
    .unwrap();
    let why = await_ended(&slurm, &launcher, &job);
    assert!(why.contains("CANCELLED"), "{why}");
    launcher.cancel(&job);
    slurm.assert_queue_drains();
}

#[test]
fn a_worker_asking_resources_gets_them_as_sbatch_flags_in_a_job_of_its_own() {
    let slurm = FakeSlurm::new(&["RUNNING None"]);
    let launcher = Rc::new(slurm.launcher().job_arrays(true));
    let in_sim = launcher.clone();
    let job = Sim::run_alone(1, move |p| async move {
        let service = ServiceId::fresh(&p);
        let big = Resources::default()
            .cpus(2)
            .memory_mb(4096)
            .time_limit(Duration::from_secs(600))
            .partition("bigmem");
        in_sim.launch_with(&p, p.self_node(), &service, &big).await
    })
    .unwrap()
    .expect("the job runs");
    assert_eq!(job.task, None, "a job of its own, not an array task");
    let sbatch = calls(slurm.dir.path());
    let sbatch = sbatch.lines().find(|l| l.starts_with("sbatch")).unwrap();
    for flag in [
        "--cpus-per-task=2",
        "--mem=4096M",
        "--time=10",
        "--partition=bigmem",
    ] {
        assert!(sbatch.contains(flag), "{flag} missing: {sbatch}");
    }
    assert!(!sbatch.contains("--array"), "{sbatch}");
    launcher.cancel(&job);
    slurm.assert_queue_drains();
}
