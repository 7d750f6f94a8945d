//! The allocation launcher against a fake `srun`: a shell script in a temporary
//! directory that records its arguments and execs the worker command after them.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use futures::future::{select, Either};
use hyperion::launch::{AllocatedNode, Allocation, AllocationLauncher};
use hyperion::remote::{Resources, ServiceId, WorkerLauncher};
use hyperion_sim::Sim;

/// Records `srun ARGS` then runs what follows `-w NODE` (the worker command).
const SRUN: &str = r#"#!/bin/sh
S="$(dirname "$0")"
echo "srun $*" >> "$S/calls"
while [ "$#" -gt 0 ]; do
    case "$1" in
        -w) shift 2; exec "$@";;
        *) shift;;
    esac
done
exit 2
"#;

fn fake_srun() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("hyperion-fake-srun-")
        .tempdir()
        .unwrap();
    let srun = dir.path().join("srun");
    std::fs::write(&srun, SRUN).unwrap();
    std::fs::set_permissions(&srun, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, srun)
}

fn allocation(cpus: &[u32]) -> Allocation {
    Allocation {
        job_id: "42".into(),
        nodes: cpus
            .iter()
            .enumerate()
            .map(|(i, &cpus)| AllocatedNode {
                name: format!("n{}", i + 1),
                cpus,
            })
            .collect(),
    }
}

/// The `srun` lines recorded, waiting (real time, generous deadline) for `count`: the
/// script appends its line after it was spawned.
fn calls(dir: &Path, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        if lines.len() >= count || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn workers_run_as_job_steps_and_wait_for_free_cpus() {
    let (dir, srun) = fake_srun();
    // Two nodes of 2 CPUs, workers of 2 CPUs: two fit, the third waits.
    let launcher = Rc::new(
        AllocationLauncher::new(allocation(&[2, 2]), "/bin/true")
            .srun(&srun)
            .cpus_per_worker(2),
    );
    let in_sim = launcher.clone();
    let (first, second, third) = Sim::run_alone(1, move |p| async move {
        let launcher = in_sim;
        let first = launcher
            .launch(&p, p.self_node(), &ServiceId::fresh(&p))
            .await
            .unwrap();
        let second = launcher
            .launch(&p, p.self_node(), &ServiceId::fresh(&p))
            .await
            .unwrap();
        assert_eq!(launcher.cpus_in_use(), 4);
        // The third launch waits for CPUs: a minute of virtual time passes first.
        let service = ServiceId::fresh(&p);
        let waiting = Box::pin(launcher.launch(&p, p.self_node(), &service));
        let timer = Box::pin(p.sleep(Duration::from_secs(60)));
        assert!(
            matches!(select(waiting, timer).await, Either::Right(_)),
            "no CPUs were free"
        );
        assert_eq!(
            launcher.cpus_in_use(),
            4,
            "the abandoned launch holds no CPUs"
        );
        // When the first worker ends, its CPUs (on n1) serve the next launch.
        launcher.on_exit(&first);
        let third = launcher.launch(&p, p.self_node(), &service).await.unwrap();
        assert_eq!(launcher.cpus_in_use(), 4);
        (first, second, third)
    })
    .unwrap();
    let lines = calls(dir.path(), 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    // The scripts run concurrently: their lines may land in any order.
    assert!(
        lines.iter().all(
            |l| l.starts_with("srun --exact -N1 -n1 -c 2 --jobid 42 -w n")
                && l.contains(" /bin/true worker --master ")
                && l.contains(" --service ")
        ),
        "{lines:?}"
    );
    let on = |node: &str| {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" -w {node} ")))
            .count()
    };
    assert_eq!(
        (on("n1"), on("n2")),
        (2, 1),
        "the third worker got n1's CPUs back: {lines:?}"
    );
    launcher.cancel(&second);
    launcher.cancel(&third);
    assert_eq!(launcher.cpus_in_use(), 0);
    assert!(launcher.running().is_empty());
    let _ = first;
}

#[test]
fn a_worker_larger_than_every_node_fails_its_launch() {
    let (dir, srun) = fake_srun();
    let launcher = Rc::new(
        AllocationLauncher::new(allocation(&[2, 2]), "/bin/true")
            .srun(&srun)
            .cpus_per_worker(3),
    );
    let error = Sim::run_alone(1, move |p| async move {
        launcher
            .launch(&p, p.self_node(), &ServiceId::fresh(&p))
            .await
    })
    .unwrap()
    .expect_err("3 CPUs fit on no node");
    assert!(error.why.contains("largest node has 2"), "{error}");
    assert!(!dir.path().join("calls").exists(), "srun was never run");
}

#[test]
fn a_worker_asking_cpus_and_memory_gets_a_step_of_that_size_and_a_partition_is_refused() {
    let (dir, srun) = fake_srun();
    let launcher = Rc::new(AllocationLauncher::new(allocation(&[1, 4]), "/bin/true").srun(&srun));
    let in_sim = launcher.clone();
    let (sized, partitioned) = Sim::run_alone(1, move |p| async move {
        let big = Resources::default().cpus(3).memory_mb(512);
        let sized = in_sim
            .launch_with(&p, p.self_node(), &ServiceId::fresh(&p), &big)
            .await;
        let elsewhere = Resources::default().partition("gpu");
        let partitioned = in_sim
            .launch_with(&p, p.self_node(), &ServiceId::fresh(&p), &elsewhere)
            .await;
        (sized, partitioned)
    })
    .unwrap();
    let pid = sized.expect("3 CPUs fit on the second node");
    let line = calls(dir.path(), 1).join("\n");
    assert!(
        line.contains("-c 3") && line.contains("--mem=512M") && line.contains("-w n2"),
        "{line}"
    );
    let refused = partitioned.expect_err("no partition inside an allocation");
    assert!(refused.why.contains("job steps"), "{refused}");
    launcher.cancel(&pid);
}
