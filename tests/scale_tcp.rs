//! Scale over real TCP: 64 local worker processes (the `scan` example in worker mode)
//! connected to one master at once, on a 2-CPU machine, each serving a call, and each
//! connected on its first handshake attempt.
//!
//! The first-attempt check once failed under load (1-2 of 64 workers needed a second
//! attempt at a load of about 27): the master started each worker process on its
//! node's thread, 50-250 ms of fork and exec apiece, so the workers launched first
//! waited seconds for their connections to be accepted, and a connection dropped by a
//! handshake timeout took the worker's hello with it. Launches now run on the blocking
//! pool, and a worker says its hello again at once when the connection that carried it
//! broke.

mod common;

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use common::{scan_binary, temp_dir};
use hyperion::concurrency::map_concurrently;
use hyperion::launch::LocalLauncher;
use hyperion::remote::{with_remote_runner, RemoteCall};
use hyperion::transport::tcp::TcpConfig;
use hyperion::{AsyncResult, BuildId, Node, NodeConfig};

/// Workers connected at once.
const WORKERS: usize = 64;

/// The lines of each file under `dir` (the workers' logs), by file name.
fn worker_logs(dir: &Path) -> Vec<(String, Vec<String>)> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            logs.extend(worker_logs(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            logs.push((name, text.lines().map(String::from).collect()));
        }
    }
    logs
}

#[test]
fn sixty_four_local_workers_connect_on_their_first_attempt_and_serve_a_call_at_once() {
    let scratch = temp_dir("sixty-four");
    let dir = scratch.path().to_path_buf();
    let node = Node::tcp(
        TcpConfig::bind("127.0.0.1:0").cookie_file(dir.join("cookie")),
        NodeConfig {
            build: Some(BuildId::of_file(&scan_binary()).expect("hash the scan example")),
            ..NodeConfig::default()
        },
    )
    .unwrap();
    let (program, cookie, logs) = (scan_binary(), dir.join("cookie"), dir.join("logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let outcomes = node
        .run(move |p| async move {
            let launcher = Rc::new(
                LocalLauncher::program(program)
                    .cookie_file(cookie)
                    .log_dir(logs),
            );
            let connected = Rc::new(Cell::new(0usize));
            map_concurrently(&p, (0..WORKERS).collect(), move |slot, i| {
                let (launcher, connected) = (launcher.clone(), connected.clone());
                async move {
                    let slot = &slot;
                    with_remote_runner(slot, &*launcher, |runner| {
                        let connected = connected.clone();
                        async move {
                            connected.set(connected.get() + 1);
                            // Held until every worker is connected: 64 at once.
                            let deadline = slot.now() + Duration::from_secs(120);
                            while connected.get() < WORKERS && slot.now() < deadline {
                                slot.sleep(Duration::from_millis(50)).await;
                            }
                            let a = 0.5 + i as f64 / 64.0;
                            let call: RemoteCall<f64> =
                                RemoteCall::new("integrate", move || async move { a });
                            Ok((connected.get(), runner.run(slot, &call).await?))
                        }
                    })
                    .await
                    .map_err(|err| err.to_string())
                }
            })
            .await
        })
        .unwrap();
    for outcome in &outcomes {
        let AsyncResult::Done(Ok((connected, value))) = outcome else {
            panic!("a worker failed: {outcome:?}");
        };
        assert_eq!(
            *connected, WORKERS,
            "not all workers were connected at once"
        );
        assert!(value.is_finite());
    }
    // Each worker logs "connecting to master ... attempt=N" once per attempt (at the
    // info level: `RUST_LOG` unset or at least info); one log per worker, so no call
    // went to a replacement worker either.
    let logs = worker_logs(&dir.join("logs"));
    assert_eq!(logs.len(), WORKERS, "one worker log per worker");
    let mut retried = Vec::new();
    let mut said_again = 0;
    for (file, lines) in logs {
        said_again += lines
            .iter()
            .filter(|line| line.contains("saying hello again"))
            .count();
        let attempts = lines
            .iter()
            .filter(|line| line.contains("connecting to master"))
            .count();
        if attempts != 1 {
            retried.push(format!(
                "{file} ({attempts} attempts):\n{}",
                lines.join("\n")
            ));
        }
    }
    println!(
        "{} of {WORKERS} workers needed more than one handshake attempt; \
         {said_again} hellos said again after a broken connection",
        retried.len()
    );
    assert!(
        retried.is_empty(),
        "{} workers did not connect on their first attempt:\n{}",
        retried.len(),
        retried.join("\n\n")
    );
}
