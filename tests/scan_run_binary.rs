//! One program per run, for real: the scan's master puts its program into the run
//! directory, its local workers start from that copy, and each worker says in its log
//! which binary and build it runs.

mod common;

use common::{scan_binary, temp_dir};

use std::process::Command;

#[test]
fn workers_start_from_the_runs_copy_of_the_program() {
    let dir = temp_dir("run-binary");
    let output = Command::new(scan_binary())
        .args(["--workers", "2", "--tasks", "6", "--pause-ms", "0"])
        .current_dir(dir.path())
        .output()
        .expect("the scan example was built by cargo test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    let run = dir.path().join("hyperion-runs/run-0001");
    let copy = run.join("bin/scan");
    assert_eq!(
        std::fs::read(&copy).expect("the run holds its copy of the program"),
        std::fs::read(scan_binary()).unwrap(),
        "the copy is the master's build"
    );
    let copy_path = copy.canonicalize().unwrap();
    let worker_logs: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("worker-"))
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
        .collect();
    assert!(
        !worker_logs.is_empty(),
        "no worker logs in {}",
        run.display()
    );
    for log in &worker_logs {
        assert!(
            log.contains(&format!("{}", copy_path.display())),
            "a worker ran another binary than {}: {log}",
            copy_path.display()
        );
    }
}
