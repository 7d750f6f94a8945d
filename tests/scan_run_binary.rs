//! One program per run, for real: the scan's master puts its program into the run
//! directory, its local workers start from that copy, and each worker says in its log
//! which binary and build it runs; a rebuild of the program mid-run changes no worker.

mod common;

use common::{children_of, scan_binary, temp_dir};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The text of every worker log of a run.
fn worker_logs(run: &Path) -> Vec<String> {
    std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("worker-"))
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
        .collect()
}

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
    let run = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("hyperion-runs/run-0001");
    let copy_path = run.join("bin/scan");
    assert!(
        !copy_path.exists(),
        "the run's copy of the program is removed when the master ends"
    );
    let worker_logs = worker_logs(&run);
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

/// The user rebuilds the program while its scan runs (the new build is renamed over
/// the old file, as cargo and linkers do), and a worker dies: the worker launched in
/// its place runs the run's copy, the master's build, and the scan completes.
#[test]
fn a_rebuild_mid_run_changes_no_worker() {
    let dir = temp_dir("rebuild-mid-run");
    let root = dir.path().canonicalize().unwrap();
    let program = root.join("scan");
    std::fs::copy(scan_binary(), &program).unwrap();
    let master = Command::new(&program)
        .args(["--workers", "2", "--tasks", "8", "--pause-ms", "1000"])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the scan");
    // Both workers connected and computing: the rebuild happens mid-run.
    let master_log = root.join("hyperion-runs/run-0001/master.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers = loop {
        let log = std::fs::read_to_string(&master_log).unwrap_or_default();
        let children = children_of(master.id());
        if log.matches("acquired worker").count() >= 2 && children.len() >= 2 {
            break children;
        }
        assert!(Instant::now() < deadline, "the workers never connected");
        std::thread::sleep(Duration::from_millis(20));
    };

    // The "new build": a program that leaves a mark if anything ever starts it.
    let mark = root.join("the-new-build-ran");
    let new_build = root.join("scan.new");
    std::fs::write(
        &new_build,
        format!("#!/bin/sh\ntouch '{}'\nexit 3\n", mark.display()),
    )
    .unwrap();
    std::fs::set_permissions(&new_build, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&new_build, &program).unwrap();

    let killed = nix::unistd::Pid::from_raw(workers[0] as i32);
    nix::sys::signal::kill(killed, nix::sys::signal::Signal::SIGKILL).expect("kill a worker");

    let output = master.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let run = root.join("hyperion-runs/run-0001");
    let master_log = std::fs::read_to_string(run.join("master.log")).unwrap_or_default();
    assert!(output.status.success(), "{text}\nmaster log:\n{master_log}");
    assert!(text.contains("8 of 8 integrals"), "{text}");
    assert!(!mark.exists(), "a worker started the new build: {text}");
    let logs = worker_logs(&run);
    assert!(
        logs.len() >= 3,
        "a worker was launched in place of the killed one: {} worker logs\n{text}\nmaster log:\n{master_log}",
        logs.len()
    );
    let copy = run.join("bin/scan");
    for log in &logs {
        assert!(
            log.contains(&format!("{}", copy.display())),
            "a worker ran another binary than {}: {log}",
            copy.display()
        );
    }
}
