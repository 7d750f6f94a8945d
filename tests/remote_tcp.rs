//! hyperion's master/worker layer over real TCP with real OS processes: the `scan`
//! example binary serves as the worker program (it registers `integrate` and
//! `integrate_slowly`), this test process is the master.

mod common;

use common::{alive, children_of, scan_binary, temp_dir};

use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hyperion::concurrency::map_concurrently;
use hyperion::launch::LocalLauncher;
use hyperion::remote::{with_remote_runner, with_service, RemoteCall, RetryPolicy, ServiceError};
use hyperion::transport::tcp::TcpConfig;
use hyperion::{AsyncResult, BuildId, Node, NodeConfig};

fn exact(a: f64) -> f64 {
    0.5 * (std::f64::consts::PI / a).sqrt() * (-9.0 / (4.0 * a)).exp()
}

fn master_node(dir: &Path) -> Node {
    Node::tcp(
        TcpConfig::bind("127.0.0.1:0").cookie_file(dir.join("cookie")),
        NodeConfig {
            // This test plays the master of the scan program, whose workers it starts:
            // it declares the scan's build, which the workers' handshake is checked
            // against.
            build: Some(BuildId::of_file(&scan_binary()).expect("hash the scan example")),
            ..NodeConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn a_master_runs_8_closures_on_4_local_worker_processes() {
    let scratch = temp_dir("eight-on-four");
    let dir = scratch.path().to_path_buf();
    let node = master_node(&dir);
    let program = scan_binary();
    let (cookie, logs) = (dir.join("cookie"), dir.clone());
    let answers = node
        .run(move |p| async move {
            let launcher = Rc::new(
                LocalLauncher::program(program)
                    .cookie_file(cookie)
                    .log_dir(logs),
            );
            let pairs: Vec<(f64, f64)> = vec![(0.5, 0.75), (1.0, 1.25), (1.5, 1.75), (2.0, 2.25)];
            let outcomes = map_concurrently(&p, pairs, move |slot, (a, b)| {
                let launcher = launcher.clone();
                async move {
                    let slot = &slot;
                    with_remote_runner(slot, &*launcher, |runner| async move {
                        let first: RemoteCall<f64> =
                            RemoteCall::new("integrate", move || async move { a });
                        let second: RemoteCall<f64> =
                            RemoteCall::new("integrate", move || async move { b });
                        Ok(vec![
                            (a, runner.run(slot, &first).await?),
                            (b, runner.run(slot, &second).await?),
                        ])
                    })
                    .await
                    .map_err(|err| err.to_string())
                }
            })
            .await;
            outcomes
        })
        .unwrap();
    let mut count = 0;
    for outcome in answers {
        let AsyncResult::Done(Ok(pairs)) = outcome else {
            panic!("a service failed: {outcome:?}");
        };
        for (a, value) in pairs {
            assert!((value - exact(a)).abs() < 1e-9, "I({a}) = {value}");
            count += 1;
        }
    }
    assert_eq!(count, 8);
}

#[test]
fn a_worker_killed_with_sigkill_mid_call_is_retried_and_the_answer_is_right() {
    let scratch = temp_dir("sigkill");
    let dir = scratch.path().to_path_buf();
    let node = master_node(&dir);
    let program = scan_binary();
    let cookie = dir.join("cookie");
    let (answer, kills, workers) = node
        .run(move |p| async move {
            let launcher = LocalLauncher::program(program)
                .cookie_file(cookie)
                .retry_policy(RetryPolicy {
                    max_retries: Some(3),
                    pause: Duration::from_millis(100),
                    pause_max: Duration::from_secs(1),
                });
            let call: Rc<RemoteCall<f64>> =
                Rc::new(RemoteCall::new("integrate_slowly", || async {
                    (1.5f64, 2000u64)
                }));
            let kills = Rc::new(std::cell::Cell::new(0u32));
            let workers = Rc::new(std::cell::Cell::new(0u32));
            let (builds, kills_seen, workers_seen) = (call.clone(), kills.clone(), workers.clone());
            let p = &p;
            let launcher = &launcher;
            let answer = with_remote_runner(p, launcher, |runner| {
                let (call, kills, workers) = (call.clone(), kills.clone(), workers.clone());
                async move {
                    workers.set(workers.get() + 1);
                    // The call is running on the worker once `start` returns (the
                    // worker answered the spawn): kill the first worker then.
                    let task = runner.start(p, &call).await;
                    if kills.get() == 0 {
                        let pid = launcher.running()[0];
                        let pid = nix::unistd::Pid::from_raw(pid as i32);
                        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
                            .expect("kill the worker");
                        kills.set(1);
                    }
                    task.wait(p).await
                }
            })
            .await;
            assert_eq!(builds.builds(), 1, "the closure was built once");
            (
                answer.map_err(|e| e.to_string()),
                kills_seen.get(),
                workers_seen.get(),
            )
        })
        .unwrap();
    let value = answer.expect("retried to success");
    assert!((value - exact(1.5)).abs() < 1e-9);
    assert_eq!(
        (kills, workers),
        (1, 2),
        "one worker killed mid-call, one more launched"
    );
}

#[test]
fn no_worker_process_is_left_when_the_master_is_killed() {
    let scratch = temp_dir("killed-master");
    let dir = scratch.path().to_path_buf();
    let mut master = Command::new(scan_binary())
        .args(["--workers", "2", "--tasks", "200", "--pause-ms", "1000"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers = loop {
        let children = children_of(master.id());
        if children.len() >= 2 {
            break children;
        }
        assert!(Instant::now() < deadline, "the workers never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    master.kill().unwrap(); // SIGKILL: no destructor runs in the master
    master.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while workers.iter().any(|pid| alive(*pid)) {
        assert!(
            Instant::now() < deadline,
            "workers {workers:?} outlived their master"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Eight `with_service` calls running concurrently in one master process, over TCP with
/// real worker processes: each worker is accepted on its first hello (its log never
/// shows a second attempt), so no service stole another's hello.
#[test]
fn concurrent_services_in_one_process_each_get_their_worker_on_the_first_hello() {
    let scratch = temp_dir("concurrent-services");
    let dir = scratch.path().to_path_buf();
    let node = master_node(&dir);
    let program = scan_binary();
    let (cookie, logs) = (dir.join("cookie"), dir.clone());
    let outcomes = node
        .run(move |p| async move {
            let launcher = LocalLauncher::program(program)
                .cookie_file(cookie)
                .log_dir(logs);
            let p = &p;
            let launcher = &launcher;
            let services = (0..8).map(|_| async move {
                with_service(p, launcher, |node, _| async move { node })
                    .await
                    .map_err(|err| err.to_string())
            });
            futures::future::join_all(services).await
        })
        .unwrap();
    let mut nodes: Vec<_> = outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every service got a worker"))
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 8, "each service has its own worker");
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("worker-"))
        .collect();
    assert_eq!(logs.len(), 8, "one log per worker");
    for log in logs {
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert!(
            !text.contains("attempt=2"),
            "a worker needed a second hello:\n{text}"
        );
    }
}

/// A worker whose process dies before it connects (it crashed at start, was killed, a
/// library was missing) will never connect: the master learns it from its launcher and
/// fails the service at once with the exit status, even without a connection timeout
/// (where it used to wait forever).
#[test]
fn a_worker_that_dies_before_connecting_fails_its_service_at_once() {
    let scratch = temp_dir("dies-at-start");
    let dir = scratch.path().to_path_buf();
    let program = dir.join("crashes-at-start");
    std::fs::write(&program, "#!/bin/sh\nexit 7\n").unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let node = master_node(&dir);
    let cookie = dir.join("cookie");
    let (tx, rx) = std::sync::mpsc::channel();
    // The node waits in a thread, so that the old behaviour (waiting forever) fails
    // this test at the deadline instead of hanging it.
    std::thread::spawn(move || {
        let outcome = node
            .run(move |p| async move {
                let launcher = LocalLauncher::program(program)
                    .cookie_file(cookie)
                    .with_connection_timeout(None);
                with_service(&p, &launcher, |_, _| async {}).await
            })
            .unwrap();
        let _ = tx.send(outcome);
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the service failed instead of waiting forever");
    match outcome {
        Err(ServiceError::WorkerEndedBeforeConnecting { why, .. }) => {
            assert!(why.contains("exit status: 7"), "{why}");
        }
        other => panic!("expected WorkerEndedBeforeConnecting, got {other:?}"),
    }
}
