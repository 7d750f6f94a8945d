//! Benchmark of the result store, each figure in one run:
//!
//! 1. results committed per second to a `SqliteStore`, 1 KiB values (all queued, then a
//!    flush): from one writer, and from 64 concurrent writers;
//! 2. the cost of a store on a remote call's round trip: the same call (1 KiB result,
//!    on a local worker process over TCP) with `Runner::run` and with `Memoized::run`
//!    (a lookup that misses, the call, a commit), in alternating rounds;
//! 3. the cost of a store on the main job's shape: 64 integrals of the scan example on 4
//!    local worker processes (launched for each scan, as the scan does), without and
//!    with a store, in alternating rounds.
//!
//! ```text
//! cargo run --release --example bench_store
//! ```

use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyperion::cluster::{self, ClusterConfig, Master};
use hyperion::launch::LocalLauncher;
use hyperion::remote::{with_remote_runner, Memoized, RemoteCall, StoredCallError};
use hyperion::store::{Key, ResultMeta, ResultStore, SqliteStore};
use hyperion::{Node, NodeConfig, Process, RemoteTable};

// The scan example's work, I(a) = ∫₀¹⁰ exp(−a x²) cos(3x) dx by adaptive Simpson: the
// example's own job module (only its integral is used here).
#[path = "scan/job.rs"]
#[allow(dead_code)]
mod job;
use job::integrate;

const VALUE_BYTES: usize = 1024;
const COMMITS_SERIAL: u64 = 5_000;
const COMMITS_CONCURRENT: u64 = 6_400;
/// Enough 1 KiB results that the file outgrows SQLite's write-ahead log several times.
const COMMITS_SUSTAINED: u64 = 50_000;
const SCAN_TASKS: u64 = 64;
const SCAN_WORKERS: usize = 4;
const SCAN_ROUNDS: u64 = 15;
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
    table.register_call("integrate", |p: Process, a: f64| async move {
        Ok::<_, String>(p.run_blocking(move || integrate(a)).await)
    });
    table
}

/// One scan of `SCAN_TASKS` integrals (parameters from `first`) on `SCAN_WORKERS` new
/// workers, each result through `memo` if given; returns its wall time.
async fn scan_once(
    p: &Process,
    launcher: &Rc<LocalLauncher>,
    memo: Option<Rc<Memoized<SqliteStore>>>,
    first: u64,
) -> Duration {
    let started = Instant::now();
    let queue = Rc::new(std::cell::RefCell::new(
        (first..first + SCAN_TASKS).collect::<std::collections::VecDeque<u64>>(),
    ));
    let slots: Vec<_> = (0..SCAN_WORKERS)
        .map(|_| {
            let (launcher, memo, queue) = (launcher.clone(), memo.clone(), queue.clone());
            p.async_task(move |slot| async move {
                let slot = &slot;
                with_remote_runner(slot, &*launcher, |runner| {
                    let (memo, queue) = (memo.clone(), queue.clone());
                    async move {
                        loop {
                            let Some(n) = queue.borrow_mut().pop_front() else {
                                return Ok(());
                            };
                            // Distinct parameters every scan: stored calls always miss.
                            let a = 0.5 + n as f64 * 1e-3;
                            let call: RemoteCall<f64> =
                                RemoteCall::new("integrate", move || async move { a });
                            match &memo {
                                Some(memo) => memo.run(slot, &runner, &call).await.map_err(
                                    |err| match err {
                                        StoredCallError::Remote(err) => err,
                                        StoredCallError::Store(err) => panic!("{err}"),
                                    },
                                )?,
                                None => runner.run(slot, &call).await?,
                            };
                        }
                    }
                })
                .await
                .map_err(|err| err.to_string())
            })
        })
        .collect();
    for slot in &slots {
        if let hyperion::AsyncResult::Done(Err(err)) = slot.wait(p).await {
            panic!("a bench worker failed: {err}");
        }
    }
    started.elapsed()
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

/// Median per-call time of `CALLS_PER_ROUND` calls, plain and stored, rounds
/// alternating; then the median wall time of a 64-task scan, plain and stored.
async fn round_trips(
    p: &Process,
    master: &Master,
) -> Result<((Duration, Duration), (Duration, Duration)), String> {
    let launcher = Rc::new(
        LocalLauncher::current_exe()
            .map_err(|err| err.to_string())?
            .cookie_file(&master.cookie_file)
            .log_dir(&master.log_dir),
    );
    let store = Rc::new(master.open_store("bench").map_err(|err| err.to_string())?);
    let memo = Rc::new(Memoized::new(store));
    let in_block = memo.clone();
    let times = with_remote_runner(p, &*launcher, |runner| {
        let memo = in_block.clone();
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
    let (mut plain, mut stored) = (Vec::new(), Vec::new());
    for round in 0..SCAN_ROUNDS {
        let first = 1_000_000 + round * 2 * SCAN_TASKS;
        plain.push(scan_once(p, &launcher, None, first).await);
        stored.push(scan_once(p, &launcher, Some(memo.clone()), first + SCAN_TASKS).await);
    }
    plain.sort();
    stored.sort();
    let middle = plain.len() / 2;
    Ok((times, (plain[middle], stored[middle])))
}

fn run_master(master: Master) -> ExitCode {
    let scratch = master.run_dir.join("throughput");
    let serial = commits_per_second(&scratch, COMMITS_SERIAL, 1);
    let concurrent = commits_per_second(&scratch, COMMITS_CONCURRENT, WRITERS);
    let sustained = commits_per_second(&scratch, COMMITS_SUSTAINED, WRITERS);
    println!(
        "store commits (1 KiB values): 1 writer {serial:>6.0}/s | {WRITERS} concurrent writers {concurrent:>6.0}/s ({COMMITS_CONCURRENT} results), {sustained:>6.0}/s ({COMMITS_SUSTAINED} results, checkpoints included) (target >= 10,000/s)"
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
        Ok(Ok(((plain, stored), (scan_plain, scan_stored)))) => {
            println!(
                "remote call round trip (1 KiB result, local worker over TCP): plain {:>7.1} us | through the store {:>7.1} us | +{:.1} us per call, ratio {:.2} (median of {CALL_ROUNDS} alternating rounds of {CALLS_PER_ROUND})",
                plain.as_secs_f64() * 1e6,
                stored.as_secs_f64() * 1e6,
                (stored.as_secs_f64() - plain.as_secs_f64()) * 1e6,
                stored.as_secs_f64() / plain.as_secs_f64(),
            );
            println!(
                "scan of {SCAN_TASKS} integrals on {SCAN_WORKERS} local workers: plain {:>6.3} s | through the store {:>6.3} s | store adds {:+.1}% (median of {SCAN_ROUNDS} alternating rounds; target < 5%)",
                scan_plain.as_secs_f64(),
                scan_stored.as_secs_f64(),
                (scan_stored.as_secs_f64() / scan_plain.as_secs_f64() - 1.0) * 100.0,
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
        let _ = std::fs::remove_dir_all(runs);
    }
    code
}
