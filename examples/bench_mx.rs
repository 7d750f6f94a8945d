//! Benchmark of the management bus on the message hot path: local message throughput
//! between two processes with no agent, one agent and eight agents installed, measured
//! in one run and printed as ratios to the run with none.
//!
//! Each agent counts the messages sent (per sender, like `examples/mx_agent.rs`). Two
//! kinds of agent are measured: one whose sink takes every [`MxEvent`] (each message
//! then publishes a `Sent` and a `Received` event to it), and one whose sink takes
//! `Sent` events only ([`mx_sink_events`]; each message publishes one event to it).
//! The clock stops when the receiver has every message *and* every agent has handled
//! every event, so an agent's backlog is paid for, not hidden.
//!
//! ```text
//! cargo run --release --example bench_mx
//! cargo run --release --example bench_mx -- 1 1s   # chosen configurations only (profiling)
//! ```

use std::time::{Duration, Instant};

use hyperion::mx::{
    mx_agent, mx_deactivate, mx_ready, mx_sink, mx_sink_events, MxAction, MxAgent, MxEvent,
    MxEventKind, MxSink,
};
use hyperion::{Node, Process, ProcessId, ProcessMonitorNotification};
use serde::{Deserialize, Serialize};

const MESSAGES: u64 = 5_000_000;
/// Sends between two yields of the sender (as in `bench_local`).
const SEND_BATCH: u64 = 256;
/// Measurements of each configuration; the best is kept.
const ROUNDS: usize = 5;

#[derive(Serialize, Deserialize)]
enum Ask {
    /// Reply with the number of `Sent` events seen.
    Count(ProcessId),
    Stop,
}

/// Counts a `Sent` event.
fn count(agent: &mut MxAgent<'_, u64>, event: &MxEvent) -> MxAction {
    if let MxEvent::Sent { .. } = event {
        agent.mx_update_local(|n| *n += 1);
    }
    mx_ready()
}

fn counting_agent(sent_only: bool) -> Vec<MxSink<u64>> {
    vec![
        if sent_only {
            mx_sink_events(&[MxEventKind::Sent], count)
        } else {
            mx_sink(count)
        },
        mx_sink(|agent: &mut MxAgent<'_, u64>, ask: &Ask| match ask {
            Ask::Count(to) => {
                agent.process().send(*to, *agent.mx_get_local());
                mx_ready()
            }
            Ask::Stop => mx_deactivate("benchmark over"),
        }),
    ]
}

/// How many agents, and whether they take `Sent` events only.
#[derive(Clone, Copy)]
struct Configuration {
    agents: usize,
    sent_only: bool,
}

impl Configuration {
    fn parse(text: &str) -> Configuration {
        let sent_only = text.ends_with('s');
        let agents = text.trim_end_matches('s').parse().expect("an agent count");
        Configuration { agents, sent_only }
    }

    fn label(self) -> String {
        match (self.agents, self.sent_only) {
            (0, _) => "no agent".to_string(),
            (n, false) => format!("{n} agent(s), all events"),
            (n, true) => format!("{n} agent(s), Sent only"),
        }
    }
}

/// Sends `MESSAGES` messages between two processes with the configured agents.
async fn measure(p: Process, configuration: Configuration) -> Duration {
    let me = p.self_pid();
    let installed: Vec<ProcessId> = (0..configuration.agents)
        .map(|n| {
            let sinks = counting_agent(configuration.sent_only);
            mx_agent(&p, format!("counter-{n}").into(), 0u64, sinks).unwrap()
        })
        .collect();
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
    // An agent answers from its mailbox once its bus queue is empty: every event of
    // the run has been handled.
    for agent in &installed {
        p.send(*agent, Ask::Count(me));
        let seen: u64 = p.expect().await;
        assert!(seen >= MESSAGES, "an agent saw {seen} sends");
    }
    let elapsed = started.elapsed();
    for agent in installed {
        let watch = p.monitor(agent);
        p.send(agent, Ask::Stop);
        let died: ProcessMonitorNotification = p.expect().await;
        assert_eq!(died.monitor_ref, watch);
    }
    elapsed
}

fn rate(elapsed: Duration) -> f64 {
    MESSAGES as f64 / elapsed.as_secs_f64() / 1e6
}

fn main() {
    let node = Node::new().expect("start a node");
    let chosen: Vec<Configuration> = std::env::args()
        .skip(1)
        .map(|arg| Configuration::parse(&arg))
        .collect();
    let configurations = if chosen.is_empty() {
        ["0", "1", "1s", "8", "8s"]
            .map(Configuration::parse)
            .to_vec()
    } else {
        chosen
    };
    let mut best = vec![Duration::MAX; configurations.len()];
    // Interleaved rounds, so that drift of the machine hits every configuration alike.
    for _ in 0..ROUNDS {
        for (slot, configuration) in configurations.iter().enumerate() {
            let configuration = *configuration;
            let elapsed = node
                .run(move |p| measure(p, configuration))
                .expect("benchmark process");
            best[slot] = best[slot].min(elapsed);
        }
    }
    let none = best[0];
    println!("local send+receive between two processes, {MESSAGES} messages, best of {ROUNDS}:");
    for (slot, configuration) in configurations.iter().enumerate() {
        let slowdown = best[slot].as_secs_f64() / none.as_secs_f64() - 1.0;
        println!(
            "  {:<26} {:>6.2} M msg/s | {:>6.1} ns/msg | cost vs the first {:>+7.1}%{}",
            configuration.label(),
            rate(best[slot]),
            best[slot].as_secs_f64() * 1e9 / MESSAGES as f64,
            slowdown * 100.0,
            match configuration.agents {
                1 => " (target < 30%)",
                _ => "",
            }
        );
    }
}
