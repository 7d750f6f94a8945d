//! Benchmark of the process runtime on one node, each figure beside its reference,
//! measured in the same run:
//!
//! 1. messages per second between two processes vs. `std::sync::mpsc` between two
//!    threads;
//! 2. spawn + exit cost per process vs. `std::thread::spawn` + `join`;
//! 3. heap memory per idle process (100,000 of them waiting in a receive, counted by a
//!    counting allocator) vs. the 1 KiB target.
//!
//! ```text
//! cargo run --release --example bench_local
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use hyperion::Node;

const MESSAGES: u64 = 5_000_000;
/// Sends between two yields of the sender: a producer that never yields would only
/// measure filling a queue.
const SEND_BATCH: u64 = 256;
/// Alternating rounds of the message benchmark and its reference.
const MESSAGE_ROUNDS: usize = 7;
const SPAWNS: u64 = 1_000_000;
const THREAD_SPAWNS: u64 = 2_000;
const IDLE_PROCESSES: usize = 100_000;

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

    // The two-thread reference is bimodal on a small machine (it depends on where the
    // threads land), so rounds alternate and the median ratio is the figure, with its
    // range beside it.
    let mut rounds: Vec<(Duration, Duration)> = (0..MESSAGE_ROUNDS)
        .map(|_| (hyperion_messages(&node), std_mpsc_messages()))
        .collect();
    let ratio =
        |(ours, reference): &(Duration, Duration)| reference.as_secs_f64() / ours.as_secs_f64();
    rounds.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    let median = rounds[rounds.len() / 2];
    println!(
        "local send+receive: hyperion {:>6.2} M msg/s | std::sync::mpsc (2 threads) {:>6.2} M msg/s | ratio {:.2}, median of {MESSAGE_ROUNDS} alternating rounds (range {:.2}-{:.2}; target >= 0.5)",
        rate(MESSAGES, median.0),
        rate(MESSAGES, median.1),
        ratio(&median),
        ratio(&rounds[0]),
        ratio(&rounds[rounds.len() - 1]),
    );

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

fn hyperion_messages(node: &Node) -> Duration {
    node.run(|p| async move {
        let me = p.self_pid();
        let started = Instant::now();
        let receiver = p.spawn_local(move |r| async move {
            let mut sum = 0u64;
            for _ in 0..MESSAGES {
                sum = sum.wrapping_add(r.expect::<u64>().await);
            }
            r.send(me, sum);
        });
        p.spawn_local(move |s| async move {
            for n in 0..MESSAGES {
                s.send(receiver, n);
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

fn std_mpsc_messages() -> Duration {
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel::<u64>();
    let receiver = std::thread::spawn(move || {
        let mut sum = 0u64;
        for _ in 0..MESSAGES {
            sum = sum.wrapping_add(rx.recv().expect("sender alive"));
        }
        sum
    });
    for n in 0..MESSAGES {
        tx.send(n).expect("receiver alive");
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
