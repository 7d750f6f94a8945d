//! Nodes over real TCP on loopback, in one test process (two node threads): the same
//! API as in the simulator.

mod common;

use common::tcp_node;

use hyperion::{Closure, DiedReason, Process, ProcessId, ProcessMonitorNotification, RemoteTable};

fn echo_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register("echo", |p: Process, count: u32| async move {
        for _ in 0..count {
            let (from, n): (ProcessId, u64) = p.expect().await;
            p.send(from, n);
        }
    });
    table
}

#[test]
fn messages_cross_tcp_in_order_and_closures_spawn_remotely() {
    let server = tcp_node(echo_table());
    let client = tcp_node(RemoteTable::new());
    let server_id = server.id();
    let replies = client
        .run(move |p| async move {
            let echo = p
                .spawn(server_id, Closure::new("echo", &1000u32).unwrap())
                .await
                .expect("spawned on the server");
            for n in 0..1000u64 {
                p.send(echo, (p.self_pid(), n));
            }
            let mut replies = Vec::new();
            for _ in 0..1000 {
                replies.push(p.expect::<u64>().await);
            }
            replies
        })
        .unwrap();
    assert_eq!(replies, (0..1000).collect::<Vec<_>>());
}

#[test]
fn an_unknown_label_over_tcp_is_refused_and_the_node_keeps_serving() {
    let server = tcp_node(echo_table());
    let client = tcp_node(RemoteTable::new());
    let server_id = server.id();
    let outcome = client
        .run(move |p| async move {
            let refused = p
                .spawn(server_id, Closure::new("no-such-closure", &()).unwrap())
                .await;
            let served = p
                .spawn(server_id, Closure::new("echo", &0u32).unwrap())
                .await;
            (refused.is_err(), served.is_ok())
        })
        .unwrap();
    assert_eq!(outcome, (true, true));
}

#[test]
fn a_monitor_fires_disconnect_when_the_peer_node_stops() {
    let server = tcp_node(echo_table());
    let client = tcp_node(RemoteTable::new());
    let server_id = server.id();
    let (target_tx, target_rx) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        client.run(move |p| async move {
            let target = p
                .spawn(server_id, Closure::new("echo", &1u32).unwrap())
                .await
                .unwrap();
            p.monitor(target);
            target_tx.send(()).unwrap();
            p.expect::<ProcessMonitorNotification>().await.reason
        })
    });
    target_rx.recv().unwrap();
    server.shutdown();
    let reason = watcher.join().unwrap().unwrap();
    assert!(
        matches!(reason, DiedReason::Disconnect | DiedReason::NodeDown),
        "{reason:?}"
    );
}
