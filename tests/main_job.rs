//! The README's main job, run the way a user runs it: the `scan` example binary (built
//! by `cargo test` alongside the tests), with local worker processes over TCP and in the
//! simulator.

mod common;

use common::{alive, scan_binary};

use std::path::Path;
use std::process::Command;

fn run_scan(args: &[&str]) -> (bool, String, Scratch) {
    run_scan_with_env(args, &[])
}

/// A test's directory: removed when dropped, also when the test fails.
struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

/// Runs the scan in a fresh directory, with `env` set; returns its success, its output
/// and the directory.
fn run_scan_with_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, Scratch) {
    let dir = Scratch(common::temp_dir("main-job"));
    let (ok, text) = run_scan_in(&dir, args, env);
    (ok, text, dir)
}

/// Runs the scan in `dir`; returns its success and its output.
fn run_scan_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(scan_binary())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("the scan example was built by cargo test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn the_main_job_runs_on_local_worker_processes() {
    let (ok, output, dir) = run_scan(&["--workers", "3", "--tasks", "40"]);
    assert!(ok, "{output}");
    assert!(output.contains("40 of 40 integrals"), "{output}");
    let results = std::fs::read_to_string(dir.join("hyperion-runs/run-0001/results.csv")).unwrap();
    assert_eq!(
        results.lines().count(),
        41,
        "a header and one line per task"
    );
    let logs = std::fs::read_dir(dir.join("hyperion-runs/run-0001"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("worker-")
        })
        .count();
    assert_eq!(logs, 3, "one log per worker");
}

/// The names in `dir` starting with `prefix`.
fn names_starting(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

#[test]
fn the_environment_moves_the_runs_and_the_logs() {
    let (ok, output, dir) = run_scan_with_env(
        &["--workers", "2", "--tasks", "12"],
        &[("HYPERION_RUNS_DIR", "data"), ("HYPERION_LOG_DIR", "logs")],
    );
    assert!(ok, "{output}");
    let results = std::fs::read_to_string(dir.join("data/run-0001/results.csv")).unwrap();
    assert_eq!(
        results.lines().count(),
        13,
        "a header and one line per task"
    );
    let logs = dir.join("logs/run-0001");
    assert_eq!(names_starting(&logs, "master"), ["master.log"]);
    assert_eq!(
        names_starting(&logs, "worker-").len(),
        2,
        "one log per worker"
    );
    assert!(names_starting(&dir.join("data/run-0001"), "worker-").is_empty());
    assert!(!dir.join("hyperion-runs").exists());
}

#[test]
fn the_main_job_runs_in_the_simulator() {
    for seed in ["1", "4", "9"] {
        let (ok, output, _) = run_scan(&["--launcher", "sim", "--seed", seed, "--tasks", "30"]);
        assert!(ok, "seed {seed}: {output}");
        assert!(
            output.contains("30 of 30 integrals"),
            "seed {seed}: {output}"
        );
    }
}

#[test]
fn a_bad_option_is_a_usage_error_and_creates_no_directory() {
    for args in [
        &["--workers", "many"][..],
        &["--workers", "0"],
        &["--tasks", "0"],
        &["--launcher", "nowhere"],
        &["--frobnicate"],
    ] {
        let (ok, output, dir) = run_scan(args);
        assert!(!ok, "{args:?}: {output}");
        assert!(output.contains("error:"), "{args:?}: {output}");
        assert!(output.contains("--help"), "{args:?}: {output}");
        assert!(
            !dir.join("hyperion-runs").exists(),
            "{args:?} made a run directory"
        );
    }
}

#[test]
fn help_answers_and_creates_no_directory() {
    for flag in ["--help", "-h"] {
        let (ok, output, dir) = run_scan(&[flag]);
        assert!(ok, "{flag}: {output}");
        assert!(output.contains("--workers"), "{flag}: {output}");
        assert!(!dir.join("hyperion-runs").exists());
    }
}

#[test]
fn help_lists_the_status_options_and_keeps_the_scans_description() {
    let (ok, output, _dir) = run_scan(&["--help"]);
    assert!(ok, "{output}");
    for option in [
        "--hold",
        "--fail-once",
        "--status-addr",
        "--no-status",
        "--status-linger",
        "--resume",
    ] {
        assert!(output.contains(option), "{option} missing: {output}");
    }
    assert!(output.starts_with("A parameter scan"), "{output}");
}

#[test]
fn a_bad_status_address_is_refused_before_any_directory() {
    let (ok, output, dir) = run_scan(&["--status-addr", "nowhere", "--launcher", "sim"]);
    assert!(!ok, "{output}");
    assert!(output.contains("--status-addr"), "{output}");
    assert!(!dir.join("hyperion-runs").exists(), "{output}");
}

#[test]
fn runs_are_numbered_after_the_highest_existing_one() {
    let (ok, output, dir) = run_scan(&["--launcher", "sim", "--tasks", "2"]);
    assert!(ok, "{output}");
    std::fs::create_dir(dir.join("hyperion-runs/run-0007")).unwrap();
    std::fs::remove_dir_all(dir.join("hyperion-runs/run-0001")).unwrap();
    let (ok, output) = run_scan_in(&dir, &["--launcher", "sim", "--tasks", "2"], &[]);
    assert!(ok, "{output}");
    assert!(
        dir.join("hyperion-runs/run-0008/results.csv").exists(),
        "{output}"
    );
    assert!(
        !dir.join("hyperion-runs/run-0001").exists(),
        "a gap was refilled"
    );
}

#[test]
fn an_empty_runs_variable_means_the_default() {
    let (ok, output, dir) = run_scan_with_env(
        &["--launcher", "sim", "--tasks", "2"],
        &[("HYPERION_RUNS_DIR", "")],
    );
    assert!(ok, "{output}");
    assert!(
        dir.join("hyperion-runs/run-0001/results.csv").exists(),
        "{output}"
    );
}

#[test]
fn a_runs_path_that_is_a_file_is_named_in_a_clear_error() {
    let dir = Scratch(common::temp_dir("main-job"));
    std::fs::write(dir.join("runs"), "a file").unwrap();
    let (ok, output) = run_scan_in(
        &dir,
        &["--launcher", "sim", "--tasks", "2"],
        &[("HYPERION_RUNS_DIR", "runs")],
    );
    assert!(!ok, "{output}");
    assert!(
        output.contains("runs") && output.contains("not a directory"),
        "{output}"
    );
    assert!(!output.contains("ClusterConfig"), "a Debug dump: {output}");
}

#[test]
fn an_unwritable_out_fails_before_the_scan() {
    let (ok, output, _) = run_scan(&[
        "--launcher",
        "sim",
        "--tasks",
        "2",
        "--out",
        "/nonexistent-dir/results.csv",
    ]);
    assert!(!ok, "{output}");
    assert!(output.contains("/nonexistent-dir/results.csv"), "{output}");
    assert!(
        !output.contains("simulated"),
        "the scan ran first: {output}"
    );
}

#[test]
fn the_summary_is_on_its_own_line_and_the_fault_plan_is_not_a_debug_dump() {
    let (ok, output, _) = run_scan(&["--launcher", "sim", "--tasks", "4"]);
    assert!(ok, "{output}");
    assert!(
        output.lines().any(|line| line.starts_with("scan: 4 of 4")),
        "{output}"
    );
    assert!(!output.contains("Faults {"), "{output}");
}

#[test]
fn an_absurd_worker_count_is_capped_and_said_so() {
    let (ok, output, _) = run_scan(&["--launcher", "sim", "--tasks", "4", "--workers", "100000"]);
    assert!(ok, "{output}");
    assert!(output.contains("capped"), "{output}");
}

#[test]
fn a_launcher_failure_is_shown_on_the_terminal_with_the_log_path() {
    // No sbatch on this PATH: every launch fails.
    let empty = common::temp_dir("no-slurm");
    let path = empty.path().to_str().unwrap().to_string();
    let (ok, output, _dir) = run_scan_with_env(
        &["--launcher", "slurm", "--tasks", "4", "--workers", "2"],
        &[("PATH", &path)],
    );
    assert!(!ok, "{output}");
    assert!(
        output.contains("sbatch"),
        "the cause is not shown: {output}"
    );
    assert!(
        output.contains("master.log"),
        "the log is not named: {output}"
    );
    let notices = output.matches("first of its kind").count();
    assert_eq!(notices, 1, "one notice per kind of failure: {output}");
}

#[test]
fn sigint_writes_the_finished_results_stops_the_workers_and_says_what_is_missing() {
    let dir = Scratch(common::temp_dir("main-job"));
    let master = Command::new(scan_binary())
        .args(["--workers", "2", "--tasks", "40", "--pause-ms", "300"])
        .current_dir(&*dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until some results are in (each is appended to results.csv as it completes).
    let run = dir.join("hyperion-runs/run-0001");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(run.join("results.csv")).map_or(0, |r| r.lines().count()) < 3 {
        assert!(std::time::Instant::now() < deadline, "no result came in");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(master.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = master.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{text}");
    let summary = text
        .lines()
        .find(|line| line.starts_with("scan: interrupted"))
        .unwrap_or_else(|| panic!("no summary: {text}"));
    assert!(summary.contains("not computed"), "{summary}");
    let results = std::fs::read_to_string(run.join("results.csv")).expect("results written");
    assert!(
        results.lines().count() > 1,
        "finished results kept: {results}"
    );
    assert!(results.lines().count() < 41, "{results}");
    // Every worker process stops (shut down, or killed by its launcher).
    let log = std::fs::read_to_string(run.join("master.log")).unwrap();
    let workers: Vec<u32> = log
        .lines()
        .filter(|line| line.contains("launched a local worker process"))
        .filter_map(|line| {
            line.split("pid=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(!workers.is_empty(), "{log}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while workers.iter().any(|pid| alive(*pid)) {
        assert!(
            std::time::Instant::now() < deadline,
            "a worker kept running: {workers:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
