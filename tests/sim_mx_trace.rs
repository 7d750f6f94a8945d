//! The simulator's trace can include management events: `Sim::trace_mx_events` runs an
//! agent on every node (added before or after, and every restarted incarnation) that
//! copies each `MxEvent` into the trace, and a seed still replays to the same trace.

use std::time::Duration;

use hyperion::{Process, ProcessId};
use hyperion_sim::{check_determinism, Fault, Faults, NodeOptions, Sim};

async fn echo(p: Process) {
    loop {
        let (from, n): (ProcessId, u32) = p.expect().await;
        p.send(from, n + 1);
    }
}

/// Two nodes: a client pings a registered echo server on the other node, logs a line
/// through mx, and the server's node crashes and restarts (its boot code registers
/// the server again).
fn scenario(sim: &mut Sim) -> Result<(), String> {
    sim.set_trace_mx_events();
    let client = sim.add_node();
    let server_node = sim.add_node_with(NodeOptions::default().boot(|node| {
        let pid = node.spawn(echo);
        node.register("echo", pid)
            .expect("a fresh node's registry is empty");
    }));
    let server = server_node.names_with_prefix("echo")[0];
    sim.schedule(Duration::from_secs(2), Fault::Crash(1));
    sim.schedule(Duration::from_secs(3), Fault::Restart(1));
    let replies = sim
        .run_until(&client, move |p| async move {
            let mut replies = Vec::new();
            for n in [1u32, 10] {
                p.send(server, (p.self_pid(), n));
                replies.push(p.expect::<u32>().await);
            }
            hyperion::mx::mx_log(&p, "pinged twice");
            p.sleep(Duration::from_secs(5)).await;
            replies
        })
        .map_err(|err| err.to_string())?;
    if replies != [2, 11] {
        return Err(format!("replies {replies:?}"));
    }
    Ok(())
}

fn mx_entries(sim: &Sim) -> Vec<(Option<usize>, String)> {
    sim.trace()
        .entries()
        .expect("recording")
        .iter()
        .filter(|entry| entry.what.starts_with("mx "))
        .map(|entry| (entry.node, entry.what.clone()))
        .collect()
}

#[test]
fn mx_events_appear_in_the_recorded_trace() {
    let mut sim = Sim::with_faults(7, Faults::calm()).record_trace();
    scenario(&mut sim).expect("the scenario succeeds");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let mx = mx_entries(&sim);
    let on = |node: usize, what: &str| {
        mx.iter()
            .any(|(n, text)| *n == Some(node) && text.contains(what))
    };
    assert!(on(0, "Sent"), "client's sends traced: {mx:#?}");
    assert!(on(0, "Received"), "client's receives traced: {mx:#?}");
    assert!(on(0, "pinged twice"), "the client's mx_log traced: {mx:#?}");
    assert!(
        on(1, "Registered"),
        "the server's registration traced: {mx:#?}"
    );
    assert!(on(1, "Received"), "the server's receives traced: {mx:#?}");
    assert!(on(0, "Connected"), "the connection traced: {mx:#?}");
    // The restarted incarnation of node 1 runs its own agent: its boot code's
    // registration is traced a second time.
    let registrations = mx
        .iter()
        .filter(|(n, text)| *n == Some(1) && text.contains("Registered") && text.contains("echo"))
        .count();
    assert_eq!(registrations, 2, "{mx:#?}");
}

#[test]
fn a_world_without_the_hook_traces_no_mx_events() {
    let mut sim = Sim::with_faults(7, Faults::calm()).record_trace();
    let node = sim.add_node();
    sim.run_until(&node, |p| async move { hyperion::mx::mx_log(&p, "quiet") })
        .unwrap();
    assert!(mx_entries(&sim).is_empty());
}

#[test]
fn nodes_added_before_the_hook_are_traced_too() {
    let mut sim = Sim::with_faults(3, Faults::none()).record_trace();
    let node = sim.add_node();
    let mut sim = sim.trace_mx_events();
    sim.run_until(
        &node,
        |p| async move { hyperion::mx::mx_log(&p, "early node") },
    )
    .unwrap();
    // The agent handles the event at its next turn, after the program returned.
    sim.run_for(Duration::from_millis(1));
    assert!(mx_entries(&sim)
        .iter()
        .any(|(n, text)| *n == Some(0) && text.contains("early node")));
}

#[test]
fn a_seed_replays_to_the_same_trace_with_mx_events() {
    for seed in 0..8 {
        if let Err(divergence) = check_determinism(seed, scenario) {
            panic!("{divergence}");
        }
    }
}
