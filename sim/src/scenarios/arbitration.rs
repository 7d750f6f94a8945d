//! Scenario of the TCP connection arbitration under faults: connections made as the TCP
//! transport makes them ([`Sim::arbitrated_connections`]), with nodes that talk to each
//! other at the same moments (so their dials cross), silent crashes (half-open
//! connections), breaks noticed late, pauses (a peer gives the sleeper up and redials it
//! while the sleeper still believes the old connection: a replace) and closes that arrive
//! behind the frames.
//!
//! Its invariants: the built-in checkers (a pair keeps one connection, the same at both
//! ends; frames in order, at most once; every monitor fires once or its target lives; no
//! data after a break without `reconnect`), replies from one server incarnation in order
//! without duplicates, and after the liveness phase every pair that holds a connection
//! at both ends holds the same one.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::{match_type, NodeId, Process, ProcessId, ProcessMonitorNotification};

use super::SCENARIO_TIME_LIMIT;
use crate::faults::Fault;
use crate::world::{NodeOptions, Sim};

/// Nodes in the world (node 0 drives and never crashes).
const NODES: usize = 4;
/// Rounds each node talks to every other.
const ROUNDS: u64 = 40;

/// The current id of every node, as its boot code publishes it.
type Directory = Rc<RefCell<Vec<Option<NodeId>>>>;

/// Answers every `(from, n)` with `(itself, n)`, acknowledging breaks first.
async fn echo(p: Process) {
    loop {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.reconnect(from);
        p.send(from, (p.self_pid(), n));
    }
}

/// Every second (on its own clock, so the nodes' sends nearly coincide and their dials
/// cross), asks every other node's echo server, and checks that each server incarnation
/// answers in order, at most once. The servers are monitored once they answered.
async fn chatter(p: Process, me: usize, directory: Directory) -> Result<(), String> {
    let mut last: Vec<(ProcessId, u64)> = Vec::new();
    for round in 0..ROUNDS {
        p.sleep(Duration::from_secs(1)).await;
        let peers: Vec<NodeId> = directory
            .borrow()
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != me)
            .filter_map(|(_, id)| *id)
            .collect();
        for peer in &peers {
            p.reconnect_node(*peer);
            p.nsend_remote(*peer, "echo", (p.self_pid(), round));
        }
        let deadline = p.now() + Duration::from_millis(500);
        while p.now() < deadline {
            let left = deadline - p.now();
            let reply = p
                .receive_timeout(
                    left,
                    vec![
                        match_type(|r: (ProcessId, u64)| Some(r)),
                        match_type(|_: ProcessMonitorNotification| None),
                    ],
                )
                .await;
            let Some(Some((server, n))) = reply else {
                if reply.is_none() {
                    break;
                }
                continue;
            };
            match last.iter_mut().find(|(known, _)| *known == server) {
                Some((_, previous)) if *previous >= n => {
                    return Err(format!(
                        "{server} answered {n} after {previous}: out of order or duplicated"
                    ));
                }
                Some((_, previous)) => *previous = n,
                None => {
                    let _monitor = p.monitor(server);
                    last.push((server, n));
                }
            }
        }
    }
    Ok(())
}

fn booted(index: usize, directory: &Directory, results: &Rc<RefCell<Vec<String>>>) -> NodeOptions {
    let directory = directory.clone();
    let results = results.clone();
    let options = if index == 0 {
        NodeOptions::default()
    } else {
        NodeOptions::crashable()
    };
    options.boot(move |node| {
        directory.borrow_mut()[index] = Some(node.id());
        let pid = node.spawn(echo);
        node.register("echo", pid)
            .expect("a fresh node has no names");
        let (directory, results) = (directory.clone(), results.clone());
        node.spawn(move |p| async move {
            if let Err(err) = chatter(p, index, directory).await {
                results.borrow_mut().push(err);
            }
        });
    })
}

/// Four nodes talk to each other every second over arbitrated connections while node 0
/// schedules a silent or reset crash and restart, a break, a pause longer than the
/// heartbeat bound, and a partition that heals around that bound, at random moments.
pub(super) fn arbitration(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    sim.set_arbitrated_connections();
    let directory: Directory = Rc::new(RefCell::new(vec![None; NODES]));
    let failures: Rc<RefCell<Vec<String>>> = Rc::default();
    let driver = sim.add_node_with(booted(0, &directory, &failures));
    for index in 1..NODES {
        sim.add_node_with(booted(index, &directory, &failures));
    }
    let handle = sim.handle();
    let pause_bound = sim.liveness_bound();
    // Scenarios run with the default heartbeat (see `Scenario::world`).
    let heartbeat_bound = hyperion::HeartbeatConfig::default().detection_bound();
    let ran = sim.run_until(&driver, move |p| async move {
        let pick = |p: &Process| 1 + (p.random_u64() % (NODES as u64 - 1)) as usize;
        let millis = |p: &Process, max: u64| Duration::from_millis(p.random_u64() % max);
        p.sleep(millis(&p, 10_000)).await;
        let crashed = pick(&p);
        handle.schedule_in(Duration::ZERO, Fault::Crash(crashed));
        handle.schedule_in(
            Duration::from_secs(2) + millis(&p, 5000),
            Fault::Restart(crashed),
        );
        p.sleep(millis(&p, 10_000)).await;
        let (a, b) = (pick(&p), pick(&p));
        if a != b {
            handle.schedule_in(Duration::ZERO, Fault::Break(a, b));
        }
        p.sleep(millis(&p, 10_000)).await;
        handle.schedule_in(Duration::ZERO, Fault::Pause(pick(&p), pause_bound));
        // A partition that heals around the time the heartbeats give up: one side may
        // have given the other up (its close lost in the partition) while the other
        // still believes the connection, and redials it after the heal (a replace).
        p.sleep(millis(&p, 10_000)).await;
        let (a, b) = (pick(&p), pick(&p));
        if a != b {
            handle.schedule_in(
                Duration::ZERO,
                Fault::Partition {
                    from: a,
                    to: b,
                    both_ways: true,
                },
            );
            let around = heartbeat_bound.mul_f64(0.5 + (p.random_u64() % 1000) as f64 / 1000.0);
            handle.schedule_in(around, Fault::HealAll);
        }
        p.sleep(Duration::from_secs(ROUNDS + 5)).await;
    });
    ran.map_err(|err| err.to_string())?;
    if let Some(failure) = failures.borrow().first() {
        return Err(failure.clone());
    }
    sim.liveness_phase();
    if let Some(failure) = failures.borrow().first() {
        return Err(failure.clone());
    }
    if let Some(disagreement) = sim.arbitration_disagreements().first() {
        return Err(format!(
            "after the liveness phase the two ends disagree: {disagreement}"
        ));
    }
    Ok(())
}
