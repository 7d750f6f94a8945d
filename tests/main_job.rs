//! The README's main job, run the way a user runs it: the `scan` example binary (built
//! by `cargo test` alongside the tests), with local worker processes over TCP and in the
//! simulator.

mod common;

use common::scan_binary;

use std::path::PathBuf;
use std::process::Command;

fn run_scan(args: &[&str]) -> (bool, String, PathBuf) {
    run_scan_with_env(args, &[])
}

/// Runs the scan in a fresh directory, with `env` set; returns its success, its output
/// and the directory.
fn run_scan_with_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "hyperion-main-job-{}-{}",
        std::process::id(),
        args.join("-").replace('/', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new(scan_binary())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .output()
        .expect("the scan example was built by cargo test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text, dir)
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
fn a_bad_option_is_a_usage_error() {
    let (ok, output, _) = run_scan(&["--workers", "many"]);
    assert!(!ok);
    assert!(output.contains("usage"), "{output}");
}
