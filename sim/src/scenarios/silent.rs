//! Scenario of silent failures and liveness: a node stops as by SIGSTOP, a partition
//! drops traffic without closing anything; peers must report the silent node lost
//! within the heartbeat bound (a built-in checker), and once everything heals the
//! system must converge within a bound of virtual time.

use std::time::Duration;

use hyperion::{match_type, NodeId, Process, ProcessId};

use super::SCENARIO_TIME_LIMIT;
use crate::faults::Fault;
use crate::world::{NodeOptions, Sim};

/// Answers every `(from, n)` with `(its node, n)`, acknowledging breaks first (a
/// server that answers whoever asks accepts that gaps happened).
async fn echo(p: Process) {
    loop {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.reconnect(from);
        p.send(from, (p.self_node(), n));
    }
}

/// Pings `server` until it answers, at most `attempts` times, one second apart.
async fn ping_until_answered(p: &Process, server: NodeId, n: u64, attempts: u32) -> bool {
    for _ in 0..attempts {
        p.reconnect_node(server);
        p.nsend_remote(server, "echo", (p.self_pid(), n));
        let deadline = p.now() + Duration::from_secs(1);
        while p.now() < deadline {
            let left = deadline - p.now();
            let reply = p
                .receive_timeout(left, vec![match_type(|r: (NodeId, u64)| r)])
                .await;
            match reply {
                Some((from, m)) if from == server && m == n => return true,
                Some(_) => continue,
                None => break,
            }
        }
    }
    false
}

/// Three nodes: a client pings two echo servers with plain data while one server is
/// paused (1 to 30 s) and the client is partitioned from the other (1 to 30 s, frames
/// held, nothing closed). Replies from each server arrive in order; after the liveness
/// phase every server answers within the liveness bound.
pub(super) fn silent_failures(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let client = sim.add_node();
    let servers: Vec<NodeId> = (0..2)
        .map(|_| {
            sim.add_node_with(NodeOptions::default().boot(|node| {
                let pid = node.spawn(echo);
                node.register("echo", pid)
                    .expect("a fresh node has no names");
            }))
            .id()
        })
        .collect();
    let handle = sim.handle();
    client.spawn(move |p| async move {
        let millis = |p: &Process, max: u64| Duration::from_millis(p.random_u64() % max);
        let victim = 1 + (p.random_u64() % 2) as usize;
        let other = 3 - victim;
        p.sleep(millis(&p, 5000)).await;
        handle.schedule_in(
            Duration::ZERO,
            Fault::Pause(victim, Duration::from_secs(1) + millis(&p, 29_000)),
        );
        p.sleep(millis(&p, 5000)).await;
        handle.schedule_in(
            Duration::ZERO,
            Fault::Partition {
                from: 0,
                to: other,
                both_ways: true,
            },
        );
        handle.schedule_in(Duration::from_secs(1) + millis(&p, 29_000), Fault::HealAll);
    });
    let targets = servers.clone();
    let replies = sim
        .run_until(&client, move |p| async move {
            let mut replies: Vec<(NodeId, u64)> = Vec::new();
            for n in 0..80u64 {
                for server in &targets {
                    p.reconnect_node(*server);
                    p.nsend_remote(*server, "echo", (p.self_pid(), n));
                }
                let deadline = p.now() + Duration::from_millis(500);
                while p.now() < deadline {
                    let left = deadline - p.now();
                    match p
                        .receive_timeout(left, vec![match_type(|r: (NodeId, u64)| r)])
                        .await
                    {
                        Some(reply) => replies.push(reply),
                        None => break,
                    }
                }
            }
            replies
        })
        .map_err(|err| err.to_string())?;
    for server in &servers {
        let from: Vec<u64> = replies
            .iter()
            .filter(|(node, _)| node == server)
            .map(|(_, n)| *n)
            .collect();
        if let Some(pair) = from.windows(2).find(|pair| pair[0] >= pair[1]) {
            return Err(format!(
                "replies of {server} out of order or duplicated: {} then {}",
                pair[0], pair[1]
            ));
        }
    }
    sim.liveness_phase();
    let attempts = sim.liveness_bound().as_secs() as u32 + 1;
    let converged = sim
        .run_until(&client, move |p| async move {
            let mut unanswered = Vec::new();
            for (k, server) in servers.iter().enumerate() {
                if !ping_until_answered(&p, *server, 1000 + k as u64, attempts).await {
                    unanswered.push(*server);
                }
            }
            unanswered
        })
        .map_err(|err| err.to_string())?;
    if !converged.is_empty() {
        return Err(format!(
            "after the liveness phase, no answer from {converged:?} within {attempts} s"
        ));
    }
    Ok(())
}
