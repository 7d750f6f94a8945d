//! Benchmark of the process runtime on one node, each figure beside its reference,
//! measured in the same run:
//!
//! 1. messages per second between two processes vs. `std::sync::mpsc` between two
//!    threads, for a `u64` (held in the envelope itself) and for a 24-byte struct
//!    (boxed); beside them the cost of taking a boxed value out of its envelope, an
//!    `unsafe` `Box::from_raw` against a checked `Box<dyn Any>` downcast;
//! 2. spawn + exit cost per process vs. `std::thread::spawn` + `join`;
//! 3. heap memory per idle process (100,000 of them waiting in a receive, counted by a
//!    counting allocator) vs. the 1 KiB target;
//! 4. `spawn_monitor` of N processes that return at once, the clock stopping when the
//!    last `ProcessMonitorNotification` arrives (the twin of Erlang's
//!    `[spawn_monitor(fun() -> ok end) || ...]` then N `'DOWN'` receives), at 10,000,
//!    100,000 and 1,000,000, beside spawn+exit without monitors at the same N (target:
//!    at most 1 µs per process at 100,000, flat across N). With `erl` on the `PATH`
//!    the same loop runs in Erlang too and the ratio is printed.
//!
//! ```text
//! cargo run --release --example bench_local            # everything
//! cargo run --release --example bench_local messages   # 1. alone
//! cargo run --release --example bench_local monitors   # 4. alone
//! cargo run --release --example bench_local monitors 100000   # 4. at one size
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::any::{Any, TypeId};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use hyperion::{Node, ProcessMonitorNotification};
use serde::{Deserialize, Serialize};

const MESSAGES: u64 = 5_000_000;
/// Sends between two yields of the sender: a producer that never yields would only
/// measure filling a queue.
const SEND_BATCH: u64 = 256;
/// Alternating rounds of the message benchmark and its reference.
const MESSAGE_ROUNDS: usize = 7;
const SPAWNS: u64 = 1_000_000;
const THREAD_SPAWNS: u64 = 2_000;
const IDLE_PROCESSES: usize = 100_000;
/// Process counts of the `spawn_monitor` benchmark.
const MONITORED_SPAWNS: [u64; 3] = [10_000, 100_000, 1_000_000];

/// Counts live heap bytes, so memory per process is measured exactly rather than read
/// off page-granular resident-set figures.
struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Counting is on only while memory is measured, so the throughput runs pay nothing.
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(bytes: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() {
    let node = Node::new().expect("start a node");
    // `bench_local monitors [N ...]` runs the spawn_monitor benchmark alone, at the
    // default sizes or those given.
    if std::env::args().nth(1).as_deref() == Some("monitors") {
        let sizes: Vec<u64> = std::env::args()
            .skip(2)
            .map(|size| size.parse().expect("a process count"))
            .collect();
        if sizes.is_empty() {
            spawn_monitor_figures(&node, &MONITORED_SPAWNS);
        } else {
            spawn_monitor_figures(&node, &sizes);
        }
        return;
    }
    // `bench_local messages` runs the message benchmarks alone.
    let messages_only = std::env::args().nth(1).as_deref() == Some("messages");

    message_figures(
        "u64",
        || hyperion_messages(&node, |n| n),
        || std_mpsc_messages(|n| n),
    );
    message_figures(
        "24-byte struct",
        || hyperion_messages(&node, Triple::of),
        || std_mpsc_messages(Triple::of),
    );
    envelope_cast_figures();
    if messages_only {
        return;
    }

    let ours = best_of(3, || hyperion_spawns(&node));
    let reference = best_of(3, thread_spawns);
    let ours_each = ours.as_secs_f64() / SPAWNS as f64;
    let reference_each = reference.as_secs_f64() / THREAD_SPAWNS as f64;
    println!(
        "spawn+exit:         hyperion {:>8.1} ns/process | std::thread spawn+join {:>8.1} ns/thread | ratio {:.4} (target < 1 us)",
        ours_each * 1e9,
        reference_each * 1e9,
        ours_each / reference_each
    );

    let bytes = idle_process_bytes(&node);
    println!(
        "idle process:       hyperion {:>8.0} bytes/process (heap, {IDLE_PROCESSES} waiting in a receive) | target 1024 bytes | ratio {:.2}",
        bytes,
        bytes / 1024.0
    );

    spawn_monitor_figures(&node, &MONITORED_SPAWNS);
}

/// A message type too large to be held in the envelope: it is boxed.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Triple(u64, u64, u64);

impl Triple {
    fn of(n: u64) -> Triple {
        Triple(n, 1, 2)
    }
}

/// A value the benchmarks can sum, whatever its type.
trait Summable: hyperion::Serializable + Copy {
    fn summand(self) -> u64;
}

impl Summable for u64 {
    fn summand(self) -> u64 {
        self
    }
}

impl Summable for Triple {
    fn summand(self) -> u64 {
        self.0
    }
}

/// Local send+receive of `what` against `std::sync::mpsc` one-way, in alternating rounds.
fn message_figures(
    what: &str,
    mut ours: impl FnMut() -> Duration,
    mut reference: impl FnMut() -> Duration,
) {
    // The two-thread reference is bimodal on a small machine (it depends on where the
    // threads land), so rounds alternate and the median ratio is the figure, with its
    // range beside it.
    let mut rounds: Vec<(Duration, Duration)> =
        (0..MESSAGE_ROUNDS).map(|_| (ours(), reference())).collect();
    let ratio =
        |(ours, reference): &(Duration, Duration)| reference.as_secs_f64() / ours.as_secs_f64();
    rounds.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    let median = rounds[rounds.len() / 2];
    println!(
        "local send+receive ({what}): hyperion {:>6.2} M msg/s | std::sync::mpsc (2 threads) {:>6.2} M msg/s | ratio {:.2}, median of {MESSAGE_ROUNDS} alternating rounds (range {:.2}-{:.2}; target >= 0.7)",
        rate(MESSAGES, median.0),
        rate(MESSAGES, median.1),
        ratio(&median),
        ratio(&rounds[0]),
        ratio(&rounds[rounds.len() - 1]),
    );
}

/// What a boxed local value looks like in the envelope (the library's `LocalValue`,
/// reduced to what taking the value out needs).
trait Erased: Send {
    fn value_type(&self) -> TypeId;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Send + 'static> Erased for T {
    fn value_type(&self) -> TypeId {
        TypeId::of::<T>()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Boxes and takes back `CASTS` values, checking the type as a receive does, then
/// taking the value out `unsafe`ly (the type already checked) or by a checked downcast.
fn envelope_casts(checked: bool) -> Duration {
    const CASTS: u64 = 20_000_000;
    let started = Instant::now();
    let mut sum = 0u64;
    for n in 0..CASTS {
        let boxed: Box<dyn Erased> = black_box(Box::new(Triple::of(n)));
        if boxed.value_type() != TypeId::of::<Triple>() {
            continue;
        }
        let value = if checked {
            match boxed.into_any().downcast::<Triple>() {
                Ok(value) => *value,
                Err(_) => unreachable!("type checked"),
            }
        } else {
            let raw = Box::into_raw(boxed) as *mut Triple;
            // SAFETY: the type was checked above (this is the cast the library made).
            *unsafe { Box::from_raw(raw) }
        };
        sum = sum.wrapping_add(black_box(value).0);
    }
    black_box(sum);
    started.elapsed() / CASTS as u32
}

/// The two ways of taking a boxed value out of its envelope, in alternating rounds.
fn envelope_cast_figures() {
    let mut rounds: Vec<(Duration, Duration)> = (0..MESSAGE_ROUNDS)
        .map(|_| (envelope_casts(false), envelope_casts(true)))
        .collect();
    let difference = |(raw, checked): &(Duration, Duration)| {
        checked.as_secs_f64() * 1e9 - raw.as_secs_f64() * 1e9
    };
    rounds.sort_by(|a, b| difference(a).total_cmp(&difference(b)));
    let median = rounds[rounds.len() / 2];
    println!(
        "envelope cast (box + type check + take out): unsafe Box::from_raw {:>5.2} ns | checked Box<dyn Any> downcast {:>5.2} ns | difference {:+.2} ns, median of {MESSAGE_ROUNDS} alternating rounds (range {:+.2} to {:+.2})",
        median.0.as_secs_f64() * 1e9,
        median.1.as_secs_f64() * 1e9,
        difference(&median),
        difference(&rounds[0]),
        difference(&rounds[rounds.len() - 1]),
    );
}

fn spawn_monitor_figures(node: &Node, sizes: &[u64]) {
    for &count in sizes {
        let monitored = best_of_timed(3, || hyperion_spawn_monitors(node, count));
        let plain = best_of_timed(3, || hyperion_spawns_of(node, count));
        let monitored_each = monitored.wall.as_secs_f64() / count as f64 * 1e6;
        let plain_each = plain.wall.as_secs_f64() / count as f64 * 1e6;
        let erlang = erlang_spawn_monitors(count)
            .map(|erlang_each| {
                format!(
                    " | Erlang spawn_monitor {erlang_each:>6.3} us/process | ratio {:.2}",
                    monitored_each / erlang_each
                )
            })
            .unwrap_or_default();
        println!(
            "spawn_monitor x{count:<9} hyperion {monitored_each:>6.3} us/process (until the last notification) | spawn+exit without monitor {plain_each:>6.3} us/process{erlang} (target <= 1 us at 100000)"
        );
        if let (Some(monitored_cpu), Some(plain_cpu)) = (monitored.cpu, plain.cpu) {
            println!(
                "  node thread's CPU time: spawn_monitor {:>6.3} us/process | spawn+exit {:>6.3} us/process",
                monitored_cpu.as_secs_f64() / count as f64 * 1e6,
                plain_cpu.as_secs_f64() / count as f64 * 1e6,
            );
        }
    }
}

/// A run's wall-clock time, and the CPU time its thread got (where the system says):
/// on a shared machine the wall clock also counts the time other programs ran.
#[derive(Clone, Copy)]
struct Timed {
    wall: Duration,
    cpu: Option<Duration>,
}

/// The CPU time the calling thread has run so far (`CLOCK_THREAD_CPUTIME_ID`, which
/// the C library std links already provides; Linux on 64-bit targets only).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_time() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: `time` is a valid `struct timespec` (two 64-bit fields on these targets).
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    (status == 0).then(|| {
        Duration::new(
            u64::try_from(time.seconds).unwrap_or(0),
            u32::try_from(time.nanoseconds).unwrap_or(0),
        )
    })
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// Times `run` by the wall clock and by its thread's CPU time.
async fn timed(run: impl std::future::Future<Output = ()>) -> Timed {
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    run.await;
    let wall = started.elapsed();
    let cpu = thread_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Timed { wall, cpu }
}

/// The best of `runs` timings, each figure on its own.
fn best_of_timed(runs: usize, mut measure: impl FnMut() -> Timed) -> Timed {
    let timings: Vec<Timed> = (0..runs).map(|_| measure()).collect();
    Timed {
        wall: timings
            .iter()
            .map(|t| t.wall)
            .min()
            .expect("at least one run"),
        cpu: timings.iter().map(|t| t.cpu).min().flatten(),
    }
}

/// `count` children spawned and monitored, each returning at once; the clock stops at
/// the last notification.
fn hyperion_spawn_monitors(node: &Node, count: u64) -> Timed {
    node.run(move |p| async move {
        timed(async {
            for _ in 0..count {
                p.spawn_monitor(|_| async {});
            }
            for _ in 0..count {
                let _: ProcessMonitorNotification = p.expect().await;
            }
        })
        .await
    })
    .expect("benchmark process")
}

/// [`hyperion_spawns`] for `count` processes.
fn hyperion_spawns_of(node: &Node, count: u64) -> Timed {
    node.run(move |p| async move {
        timed(async {
            for _ in 0..count {
                p.spawn_local(|_| async {});
            }
            p.yield_now().await;
            while p.local_node().process_count() > 1 {
                p.yield_now().await;
            }
        })
        .await
    })
    .expect("benchmark process")
}

/// The Erlang twin, compiled (the shell's `-eval` would interpret the funs).
const ERLANG_TWIN: &str = r#"
-module(hyperion_twin).
-export([run/1]).
run(N) ->
    Best = lists:min([once(N) || _ <- [1, 2, 3]]),
    io:format("~p~n", [Best / N / 1000]).
once(N) ->
    T0 = erlang:monotonic_time(nanosecond),
    [spawn_monitor(fun() -> ok end) || _ <- lists:seq(1, N)],
    wait(N),
    erlang:monotonic_time(nanosecond) - T0.
wait(0) -> ok;
wait(K) -> receive {'DOWN', _, process, _, _} -> wait(K - 1) end.
"#;

/// The same loop in Erlang, in µs per process (best of 3), if `erl` runs here.
fn erlang_spawn_monitors(count: u64) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("hyperion-erlang-twin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::write(dir.join("hyperion_twin.erl"), ERLANG_TWIN).ok()?;
    let dir_text = dir.to_str()?;
    let program = format!(
        "{{ok, _}} = compile:file(\"{dir_text}/hyperion_twin\", [{{outdir, \"{dir_text}\"}}]), \
         code:add_path(\"{dir_text}\"), hyperion_twin:run({count}), halt()."
    );
    let output = std::process::Command::new("erl")
        .args(["-noshell", "+P", "4000000", "-eval", &program])
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn best_of(runs: usize, mut measure: impl FnMut() -> Duration) -> Duration {
    (0..runs)
        .map(|_| measure())
        .min()
        .expect("at least one run")
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64() / 1e6
}

fn hyperion_messages<T: Summable>(node: &Node, make: fn(u64) -> T) -> Duration {
    node.run(move |p| async move {
        let me = p.self_pid();
        let started = Instant::now();
        let receiver = p.spawn_local(move |r| async move {
            let mut sum = 0u64;
            for _ in 0..MESSAGES {
                sum = sum.wrapping_add(r.expect::<T>().await.summand());
            }
            r.send(me, sum);
        });
        p.spawn_local(move |s| async move {
            for n in 0..MESSAGES {
                s.send(receiver, make(n));
                if n % SEND_BATCH == SEND_BATCH - 1 {
                    s.yield_now().await;
                }
            }
        });
        let sum: u64 = p.expect().await;
        assert_eq!(sum, (0..MESSAGES).sum::<u64>());
        started.elapsed()
    })
    .expect("benchmark process")
}

fn std_mpsc_messages<T: Summable>(make: fn(u64) -> T) -> Duration {
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<T>();
    let receiver = std::thread::spawn(move || {
        let mut sum = 0u64;
        for _ in 0..MESSAGES {
            sum = sum.wrapping_add(rx.recv().expect("sender alive").summand());
        }
        sum
    });
    for n in 0..MESSAGES {
        tx.send(make(n)).expect("receiver alive");
    }
    assert_eq!(receiver.join().unwrap(), (0..MESSAGES).sum::<u64>());
    started.elapsed()
}

fn hyperion_spawns(node: &Node) -> Duration {
    node.run(|p| async move {
        let started = Instant::now();
        for _ in 0..SPAWNS {
            p.spawn_local(|_| async {});
        }
        // The children run (and exit) once this process yields.
        p.yield_now().await;
        while p.local_node().process_count() > 1 {
            p.yield_now().await;
        }
        started.elapsed()
    })
    .expect("benchmark process")
}

fn thread_spawns() -> Duration {
    let started = Instant::now();
    for _ in 0..THREAD_SPAWNS {
        std::thread::spawn(|| {}).join().unwrap();
    }
    started.elapsed()
}

fn idle_process_bytes(node: &Node) -> f64 {
    node.run(|p| async move {
        COUNTING.store(true, Ordering::Relaxed);
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let idle: Vec<_> = (0..IDLE_PROCESSES)
            .map(|_| {
                p.spawn_local(|c| async move {
                    let () = c.expect().await;
                })
            })
            .collect();
        p.yield_now().await; // every process runs once and blocks in its receive
        let after = LIVE_BYTES.load(Ordering::Relaxed);
        COUNTING.store(false, Ordering::Relaxed);
        for pid in idle {
            p.send(pid, ());
        }
        (after - before) as f64 / IDLE_PROCESSES as f64
    })
    .expect("benchmark process")
}
