//! Snapshot of the trace of a small two-node scenario under a fixed seed: any change to
//! scheduling, the wire or the network model shows up in review as a diff of this file.

use std::time::Duration;

use hyperion::{Process, ProcessId, ProcessMonitorNotification};
use hyperion_sim::{Fault, Faults, Sim};

/// Answers two pings, then idles until its node crashes.
async fn echo_twice(p: Process) {
    for _ in 0..2 {
        let (from, n): (ProcessId, u32) = p.expect().await;
        p.send(from, n + 1);
    }
    p.sleep(Duration::from_secs(3600)).await;
}

#[test]
fn two_nodes_ping_pong_then_a_crash() {
    let mut sim = Sim::with_faults(2024, Faults::calm()).record_trace();
    let client = sim.add_node();
    let server_node = sim.add_node();
    let server = server_node.spawn(echo_twice);
    sim.schedule(Duration::from_secs(3), Fault::Crash(1));
    let replies = sim
        .run_until(&client, move |p| async move {
            p.monitor(server);
            let mut replies = Vec::new();
            for n in [1u32, 10] {
                p.send(server, (p.self_pid(), n));
                replies.push(p.expect::<u32>().await);
            }
            let notice: ProcessMonitorNotification = p.expect().await;
            (replies, notice.reason)
        })
        .unwrap();
    assert_eq!(replies.0, vec![2, 11]);
    assert_eq!(replies.1, hyperion::DiedReason::Disconnect);
    let trace = sim.trace();
    let text: Vec<String> = trace
        .entries()
        .expect("recording")
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!(format!("hash {:016x}\n{}", trace.hash(), text.join("\n")));
}
