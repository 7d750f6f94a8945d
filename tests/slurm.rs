//! End-to-end on a real (local) Slurm: worker jobs submitted with sbatch run the `scan`
//! example binary, which connects back over TCP.
//!
//! These tests are `#[ignore]`d, so a plain `cargo test` lists them as ignored rather
//! than passing them without Slurm. Run them with a Slurm up
//! (`scripts/local-slurm.sh` starts a one-node one; `.ci/run` does it):
//! `cargo test --test slurm -- --include-ignored`. Run so without Slurm, they fail.

mod common;

use common::{require_slurm, scan_binary, temp_dir};

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyperion::launch::{SlurmJob, SlurmLauncher, SlurmOptions};
use hyperion::remote::{
    with_service, JobState, LaunchError, OnRemoteError, RemoteError, ServiceError, ServiceId,
    WorkerLauncher,
};
use hyperion::transport::tcp::TcpConfig;
use hyperion::{Node, NodeConfig, NodeId, Process};

/// The cluster has two CPUs: one test at a time.
static SLURM: Mutex<()> = Mutex::new(());

/// Job ids of our jobs still in the queue.
/// (Each job is named `hyperion-scan-<service id>`.)
fn our_jobs() -> Vec<String> {
    let output = Command::new("squeue")
        .args(["-h", "-o", "%j %i"])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().split_once(' '))
        .filter(|(name, _)| name.starts_with("hyperion-scan"))
        .map(|(_, id)| id.to_string())
        .collect()
}

fn assert_queue_drains() {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !our_jobs().is_empty() {
        assert!(
            Instant::now() < deadline,
            "jobs left in squeue: {:?}",
            our_jobs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn the_main_job_completes_on_slurm_and_leaves_no_job() {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("main-job");
    let dir = scratch.path().to_path_buf();
    let output = Command::new(scan_binary())
        .args(["--launcher", "slurm", "--workers", "2", "--tasks", "30"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("30 of 30 integrals"), "{text}");
    assert_queue_drains();
    // Slurm's own output goes to the run's job directory, not the working directory.
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(
        !names(&dir).iter().any(|n| n.ends_with(".out")),
        "{:?}",
        names(&dir)
    );
    let jobs = names(&dir.join("hyperion-runs/run-0001/jobs"));
    assert!(
        jobs.len() >= 2 && jobs.iter().all(|n| n.ends_with(".out")),
        "{jobs:?}"
    );
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn a_worker_job_cancelled_mid_call_is_retried() {
    a_worker_cancelled_mid_call_is_retried(&[]);
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn an_array_task_cancelled_mid_call_is_retried() {
    let log = a_worker_cancelled_mid_call_is_retried(&["--job-arrays"]);
    assert!(log.contains("submitted a job array of workers"), "{log}");
}

/// Runs the scan with 2 workers, `scancel`s one worker's job once both are connected,
/// and checks the call was retried and the scan completed; returns the master's log.
fn a_worker_cancelled_mid_call_is_retried(extra_args: &[&str]) -> String {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("scancel");
    let dir = scratch.path().to_path_buf();
    let master = Command::new(scan_binary())
        .args([
            "--launcher",
            "slurm",
            "--workers",
            "2",
            "--tasks",
            "8",
            "--pause-ms",
            "1500",
        ])
        .args(extra_args)
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once every worker has connected (each then runs four 1.5 s calls in a row), cancel
    // a job: it is mid-call.
    let run_dir = dir.join("hyperion-runs").join("run-0001");
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected_workers(&run_dir) < 2 {
        assert!(Instant::now() < deadline, "the workers never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    let victim = our_jobs().first().cloned().expect("a running job");
    let cancelled = Command::new("scancel").arg(&victim).status().unwrap();
    assert!(cancelled.success());
    let output = master.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("8 of 8 integrals"), "{text}");
    let log = std::fs::read_to_string(run_dir.join("master.log")).unwrap();
    assert!(
        log.contains("retrying with a new worker"),
        "no retry in the master's log"
    );
    assert_queue_drains();
    log
}

/// Workers whose log says they connected to their master.
fn connected_workers(run_dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("worker-"))
        .filter(|entry| {
            std::fs::read_to_string(entry.path())
                .is_ok_and(|log| log.contains("connected to master"))
        })
        .count()
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn a_job_that_can_never_start_fails_with_a_clear_error() {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("impossible");
    let dir = scratch.path().to_path_buf();
    let node = Node::tcp(
        TcpConfig::bind("0.0.0.0:0").cookie_file(dir.join("cookie")),
        NodeConfig::default(),
    )
    .unwrap();
    let program = scan_binary();
    let outcome = node
        .run(move |p| async move {
            let launcher = SlurmLauncher::new(SlurmOptions {
                cpus_per_task: Some(100_000),
                ..SlurmOptions::default().job_name("hyperion-scan")
            })
            .unwrap()
            .program(program);
            with_service(&p, &launcher, |_, _| async {}).await
        })
        .unwrap();
    match outcome {
        Err(ServiceError::Launch(error)) => {
            assert!(
                error.what.contains("sbatch") || error.what.contains("job"),
                "{error}"
            );
        }
        other => panic!("expected a launch error, got {other:?}"),
    }
    assert_queue_drains();
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn an_interrupted_scan_leaves_no_job_and_keeps_its_results() {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("interrupted");
    let dir = scratch.path().to_path_buf();
    let master = Command::new(scan_binary())
        .args([
            "--launcher",
            "slurm",
            "--workers",
            "2",
            "--tasks",
            "40",
            "--pause-ms",
            "500",
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let results = dir.join("hyperion-runs/run-0001/results.csv");
    let deadline = Instant::now() + Duration::from_secs(90);
    while std::fs::read_to_string(&results).map_or(0, |r| r.lines().count()) < 3 {
        assert!(Instant::now() < deadline, "no result came in");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(master.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let output = master.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{text}");
    assert!(text.contains("scan: interrupted by SIGTERM"), "{text}");
    assert!(std::fs::read_to_string(&results).unwrap().lines().count() >= 3);
    assert_queue_drains();
}

/// Steps of `job` running now, the batch script's own step left out.
fn worker_steps(job: &str) -> usize {
    let output = Command::new("squeue")
        .args(["-h", "-s", "-j", job, "-o", "%i"])
        .output()
        .expect("squeue");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|step| !step.is_empty() && !step.ends_with(".batch") && !step.ends_with(".extern"))
        .count()
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn a_master_inside_an_allocation_runs_workers_as_job_steps_within_its_cpus() {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("allocation");
    let dir = scratch.path().to_path_buf();
    let out = dir.join("master.out");
    // The master asks for more workers than the job's 2 CPUs: the pool must hold it
    // to 2 job steps at once.
    let command = format!(
        "{} --launcher auto --workers 4 --tasks 12 --pause-ms 300; echo \"master exit $?\"",
        scan_binary().display()
    );
    let submitted = Command::new("sbatch")
        .args(["--parsable", "-c", "2", "-J", "hyperion-scan-master", "-o"])
        .arg(&out)
        .arg("--chdir")
        .arg(&dir)
        .args(["--wrap", &command])
        .output()
        .unwrap();
    assert!(
        submitted.status.success(),
        "{}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let job = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut steps_max = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while our_jobs().contains(&job) {
        assert!(Instant::now() < deadline, "the master's job never ended");
        steps_max = steps_max.max(worker_steps(&job));
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(text.contains("master exit 0"), "{text}");
    assert!(text.contains("workers are job steps"), "{text}");
    assert!(text.contains("--workers 4 capped to 2"), "{text}");
    assert!(text.contains("12 of 12 integrals"), "{text}");
    assert!(
        (1..=2).contains(&steps_max),
        "{steps_max} worker steps at once on 2 CPUs"
    );
    assert_queue_drains();
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn the_main_job_completes_with_its_workers_in_one_job_array() {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("array");
    let dir = scratch.path().to_path_buf();
    let output = Command::new(scan_binary())
        .args([
            "--launcher",
            "slurm",
            "--job-arrays",
            "--workers",
            "4",
            "--tasks",
            "30",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("30 of 30 integrals"), "{text}");
    let log = std::fs::read_to_string(dir.join("hyperion-runs/run-0001/master.log")).unwrap();
    assert!(log.contains("submitted a job array of workers"), "{log}");
    let submitted = log.matches("submitted a job array of workers").count();
    assert_eq!(
        submitted, 1,
        "the 4 workers started together share one array: {log}"
    );
    assert_queue_drains();
}

/// A program that never says hello: the job runs, its worker never connects.
fn silent_worker(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("silent-worker");
    std::fs::write(&path, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A Slurm launcher whose jobs are cancelled as soon as they run, before their worker
/// can say hello (as an operator, or a failing node, would).
struct CancelledOnceRunning(SlurmLauncher);

impl WorkerLauncher for CancelledOnceRunning {
    type JobId = SlurmJob;

    async fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<SlurmJob, LaunchError> {
        let job = self.0.launch(p, master, service).await?;
        let cancelled = Command::new("scancel").arg(job.to_string()).status();
        assert!(cancelled.expect("scancel runs").success());
        Ok(job)
    }

    fn connection_timeout(&self) -> Option<Duration> {
        self.0.connection_timeout()
    }

    fn on_remote_error(&self, error: &RemoteError, retries_so_far: u32) -> OnRemoteError {
        self.0.on_remote_error(error, retries_so_far)
    }

    fn cancel(&self, job: &SlurmJob) {
        self.0.cancel(job)
    }

    fn on_exit(&self, job: &SlurmJob) {
        self.0.on_exit(job)
    }

    fn job_state(&self, job: &SlurmJob) -> JobState {
        self.0.job_state(job)
    }
}

#[test]
#[ignore = "needs Slurm: scripts/local-slurm.sh, then --include-ignored"]
fn a_worker_job_cancelled_before_its_hello_fails_its_service_before_the_timeout() {
    let _one_at_a_time = SLURM.lock().unwrap_or_else(|p| p.into_inner());
    require_slurm();
    let scratch = temp_dir("cancelled-before-hello");
    let dir = scratch.path().to_path_buf();
    let node = Node::tcp(
        TcpConfig::bind("0.0.0.0:0").cookie_file(dir.join("cookie")),
        NodeConfig::default(),
    )
    .unwrap();
    let program = silent_worker(&dir);
    // Slurm's own log of the job goes to the scratch directory, not the working one.
    let options = SlurmOptions {
        output: Some(dir.join("slurm-%j.out")),
        ..SlurmOptions::default().job_name("hyperion-scan")
    };
    // The timeout is far off: only the job's state can end the wait in time.
    let outcome = node
        .run(move |p| async move {
            let launcher = SlurmLauncher::new(options)
                .unwrap()
                .program(program)
                .with_connection_timeout(Some(Duration::from_secs(90)));
            with_service(&p, &CancelledOnceRunning(launcher), |_, _| async {}).await
        })
        .unwrap();
    match outcome {
        Err(ServiceError::WorkerEndedBeforeConnecting { why, .. }) => {
            assert!(why.contains("Slurm job"), "{why}");
        }
        other => panic!("expected the worker's end before connecting, got {other:?}"),
    }
    assert_queue_drains();
}
