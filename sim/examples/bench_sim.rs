//! Benchmark of the simulator, each figure beside its target in the same run:
//!
//! 1. simulated messages delivered per wall-clock second, two nodes ping-ponging
//!    (no faults), beside the same ping-pong between two processes of one node (the
//!    runtime without the simulated network: the reference it cannot beat);
//! 2. seeds per second of the explorer on the five-node `monitors` scenario with swarm
//!    faults, and on the two-node `ping_pong` scenario.
//!
//! ```text
//! cargo run -p hyperion-sim --release --example bench_sim
//! ```

use std::time::{Duration, Instant};

use hyperion::{Process, ProcessId};
use hyperion_sim::{run_seed, scenarios, Faults, Sim};

const ROUND_TRIPS: u64 = 200_000;
const SEEDS: u64 = 1000;

async fn echo(p: Process) {
    loop {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.send(from, n);
    }
}

/// Runs `ROUND_TRIPS` pings from a client to `server_on_other_node ? node 1 : node 0`;
/// returns (messages, wall time).
fn ping_pong(two_nodes: bool) -> (u64, Duration) {
    let mut sim = Sim::with_faults(1, Faults::none());
    let client = sim.add_node();
    let server_node = if two_nodes {
        sim.add_node()
    } else {
        client.clone()
    };
    let server = server_node.spawn(echo);
    let started = Instant::now();
    sim.run_until(&client, move |p| async move {
        for n in 0..ROUND_TRIPS {
            p.send(server, (p.self_pid(), n));
            let back: u64 = p.expect().await;
            assert_eq!(back, n);
        }
    })
    .expect("ping-pong completes");
    (2 * ROUND_TRIPS, started.elapsed())
}

fn main() {
    let (messages, networked) = ping_pong(true);
    let (_, local) = ping_pong(false);
    let rate = messages as f64 / networked.as_secs_f64();
    let local_rate = messages as f64 / local.as_secs_f64();
    println!(
        "simulated messages: {:>6.2} M msg/s across 2 nodes | same ping-pong on 1 node {:>6.2} M msg/s | ratio {:.2} | target >= 1 M msg/s ({:.2}x)",
        rate / 1e6,
        local_rate / 1e6,
        rate / local_rate,
        rate / 1e6
    );
    for name in ["monitors", "ping_pong"] {
        let scenario = scenarios::find(name).expect("registered");
        let started = Instant::now();
        let mut failed = 0;
        for seed in 0..SEEDS {
            if run_seed(seed, &scenario.run).is_err() {
                failed += 1;
            }
        }
        let per_second = SEEDS as f64 / started.elapsed().as_secs_f64();
        println!(
            "explorer {name:<10} {per_second:>8.0} seeds/s ({SEEDS} seeds, swarm faults, {failed} failed) | target >= 1000 seeds/s ({:.2}x)",
            per_second / 1000.0
        );
    }
}
