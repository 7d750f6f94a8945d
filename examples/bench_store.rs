//! Benchmark of the result store, each figure in one run:
//!
//! 1. results committed per second to a `SqliteStore`, 1 KiB values: one writer that
//!    waits for each commit, and 64 concurrent writers (whose results the store's thread
//!    commits together);
//! 2. the cost of a store on a remote call's round trip: the same call (1 KiB result,
//!    on a local worker process over TCP) with `Runner::run` and with `Memoized::run`
//!    (a lookup that misses, the call, a commit), in alternating rounds.
//!
//! ```text
//! cargo run --release --example bench_store
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperion::cluster::{self, ClusterConfig, Master};
use hyperion::launch::LocalLauncher;
use hyperion::remote::{with_remote_runner, Memoized, RemoteCall, StoredCallError};
use hyperion::store::{Key, ResultMeta, ResultStore, SqliteStore};
use hyperion::{Node, NodeConfig, Process, RemoteTable};

const VALUE_BYTES: usize = 1024;
const COMMITS_SERIAL: u64 = 5_000;
const COMMITS_CONCURRENT: u64 = 6_400;
const WRITERS: u64 = 64;
const CALL_ROUNDS: u64 = 9;
const CALLS_PER_ROUND: u64 = 300;

fn table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("kib", |_p: Process, n: u64| async move {
        let mut value = vec![0u8; VALUE_BYTES];
        value[..8].copy_from_slice(&n.to_le_bytes());
        Ok::<_, String>(value)
    });
    table
}

fn meta() -> ResultMeta {
    ResultMeta {
        label: "kib".into(),
        worker: "bench".into(),
        duration: Duration::from_micros(100),
        attempts: 1,
    }
}

/// Commits `count` 1 KiB results from `writers` processes; returns commits per second.
fn commits_per_second(dir: &std::path::Path, count: u64, writers: u64) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch directory");
    let store = Arc::new(SqliteStore::open_run(dir, "bench", None).expect("open the store"));
    let node = Node::new().expect("a node");
    let started = Instant::now();
    let in_node = store.clone();
    node.run(move |p| async move {
        let store = Rc::new(in_node);
        let me = p.self_pid();
        let each = count / writers;
        for writer in 0..writers {
            let store = store.clone();
            p.spawn_local(move |w| async move {
                for n in 0..each {
                    let key = Key::new("kib", "bench", &(writer * each + n).to_le_bytes());
                    let value = vec![7u8; VALUE_BYTES];
                    store.put(&w, key, value, meta()).await.expect("commit");
                }
                w.send(me, ());
            });
        }
        for _ in 0..writers {
            let () = p.expect().await;
        }
    })
    .expect("the writers finish");
    let elapsed = started.elapsed();
    count as f64 / elapsed.as_secs_f64()
}

/// Median per-call time of `CALLS_PER_ROUND` calls, plain and stored, rounds alternating.
async fn round_trips(p: &Process, master: &Master) -> Result<(Duration, Duration), String> {
    let launcher = LocalLauncher::current_exe()
        .map_err(|err| err.to_string())?
        .cookie_file(&master.cookie_file)
        .log_dir(&master.log_dir);
    let store = Rc::new(master.open_store("bench").map_err(|err| err.to_string())?);
    let memo = Rc::new(Memoized::new(store));
    let times = with_remote_runner(p, &launcher, |runner| {
        let memo = memo.clone();
        async move {
            let (mut plain, mut stored) = (Vec::new(), Vec::new());
            for round in 0..CALL_ROUNDS {
                for stored_round in [false, true] {
                    let started = Instant::now();
                    for n in 0..CALLS_PER_ROUND {
                        // A fresh argument per call: every stored call misses and commits.
                        let argument = (round * 2 + stored_round as u64) * CALLS_PER_ROUND + n;
                        let call: RemoteCall<Vec<u8>> =
                            RemoteCall::new("kib", move || async move { argument });
                        if stored_round {
                            memo.run(p, &runner, &call).await.map_err(|err| match err {
                                StoredCallError::Remote(err) => err,
                                StoredCallError::Store(err) => panic!("{err}"),
                            })?;
                        } else {
                            runner.run(p, &call).await?;
                        }
                    }
                    let each = started.elapsed() / CALLS_PER_ROUND as u32;
                    if stored_round {
                        stored.push(each);
                    } else {
                        plain.push(each);
                    }
                }
            }
            plain.sort();
            stored.sort();
            Ok((plain[plain.len() / 2], stored[stored.len() / 2]))
        }
    })
    .await
    .map_err(|err| err.to_string())?;
    Ok(times)
}

fn run_master(master: Master) -> ExitCode {
    let scratch = master.run_dir.join("throughput");
    let serial = commits_per_second(&scratch, COMMITS_SERIAL, 1);
    let concurrent = commits_per_second(&scratch, COMMITS_CONCURRENT, WRITERS);
    println!(
        "store commits (1 KiB values): 1 writer awaiting each commit {serial:>8.0}/s | {WRITERS} concurrent writers {concurrent:>8.0}/s (target >= 10,000/s)"
    );
    let _ = std::fs::remove_dir_all(&scratch);
    let node = match Node::tcp(
        hyperion::transport::tcp::TcpConfig::bind("127.0.0.1:0").cookie_file(&master.cookie_file),
        NodeConfig::default(),
    ) {
        Ok(node) => node,
        Err(err) => {
            eprintln!("cannot start the master's node: {err}");
            return ExitCode::FAILURE;
        }
    };
    match node.run(move |p| async move { round_trips(&p, &master).await }) {
        Ok(Ok((plain, stored))) => {
            println!(
                "remote call round trip (1 KiB result, local worker over TCP): plain {:>7.1} us | through the store {:>7.1} us | +{:.1} us per call, ratio {:.2} (median of {CALL_ROUNDS} alternating rounds of {CALLS_PER_ROUND})",
                plain.as_secs_f64() * 1e6,
                stored.as_secs_f64() * 1e6,
                (stored.as_secs_f64() - plain.as_secs_f64()) * 1e6,
                stored.as_secs_f64() / plain.as_secs_f64(),
            );
            ExitCode::SUCCESS
        }
        Ok(Err(why)) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
        Err(reason) => {
            eprintln!("the master died: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let runs = std::env::temp_dir().join(format!("hyperion-bench-store-{}", std::process::id()));
    let config = ClusterConfig {
        runs_dir: runs.clone(),
        ..ClusterConfig::default()
    };
    let code = cluster::main_with_config(config, table(), run_master);
    // Only the master removes the runs (a worker runs this same main).
    if std::env::args().nth(1).as_deref() != Some("worker") {
        let _ = std::fs::remove_dir_all(PathBuf::from(runs));
    }
    code
}
