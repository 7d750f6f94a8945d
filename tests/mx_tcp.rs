//! Management over real TCP (issue 5: "runs unchanged in the simulator and over TCP"):
//! two nodes on loopback, each with a recording agent; the network events and the
//! message events appear on the node where their cause happened.

mod common;

use common::tcp_node;

use hyperion::mx::{mx_agent, mx_ready, mx_sink, MxAgent, MxEvent};
use hyperion::{Closure, DiedReason, NodeMonitorNotification, Process, ProcessId, RemoteTable};
use serde::{Deserialize, Serialize};

/// Asks a recorder for everything it recorded (answered once its bus is empty).
#[derive(Serialize, Deserialize)]
struct Dump(ProcessId);

/// Starts an agent registered as "recorder" that keeps every event and answers
/// [`Dump`] with them.
fn start_recorder(p: &Process) {
    let sinks = vec![
        mx_sink(|agent: &mut MxAgent<'_, Vec<MxEvent>>, event: &MxEvent| {
            agent.mx_update_local(|log| log.push(event.clone()));
            mx_ready()
        }),
        mx_sink(|agent: &mut MxAgent<'_, Vec<MxEvent>>, dump: &Dump| {
            agent.process().send(dump.0, agent.mx_get_local().clone());
            mx_ready()
        }),
    ];
    mx_agent(p, "recorder".into(), Vec::new(), sinks).expect("one recorder per node");
}

#[test]
fn events_are_published_on_both_nodes_over_tcp() {
    let mut table = RemoteTable::new();
    table.register("echo", |p: Process, (): ()| async move {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.send(from, n + 1);
    });
    let server = tcp_node(table);
    let client = tcp_node(RemoteTable::new());
    let (server_id, client_id) = (server.id(), client.id());
    server
        .run(|p| async move { start_recorder(&p) })
        .expect("recorder started");

    let (me, echo, client_log, server_log) = client
        .run(move |p| async move {
            start_recorder(&p);
            let me = p.self_pid();
            let echo = p
                .spawn(server_id, Closure::new("echo", &()).unwrap())
                .await
                .expect("spawned on the server");
            p.send(echo, (me, 41u64));
            assert_eq!(p.expect::<u64>().await, 42);
            p.nsend_remote(server_id, "recorder", Dump(me));
            let server_log: Vec<MxEvent> = p.expect().await;
            p.nsend("recorder", Dump(me));
            let client_log: Vec<MxEvent> = p.expect().await;
            (me, echo, client_log, server_log)
        })
        .unwrap();

    let has = |log: &[MxEvent], check: &dyn Fn(&MxEvent) -> bool| log.iter().any(check);
    assert!(has(
        &client_log,
        &|e| matches!(e, MxEvent::Connected { node, .. } if *node == server_id)
    ));
    assert!(has(
        &client_log,
        &|e| matches!(e, MxEvent::Sent { to, from, .. } if *to == echo && *from == me)
    ));
    assert!(has(
        &client_log,
        &|e| matches!(e, MxEvent::Received { pid, message } if *pid == me && message.is::<u64>())
    ));
    assert!(has(
        &server_log,
        &|e| matches!(e, MxEvent::Connected { node, .. } if *node == client_id)
    ));
    assert!(has(&server_log, &|e| *e == MxEvent::Spawned(echo)));
    assert!(has(
        &server_log,
        &|e| matches!(e, MxEvent::Received { pid, message } if *pid == echo && message.type_name().is_none())
    ));
    assert!(has(
        &server_log,
        &|e| matches!(e, MxEvent::Sent { to, from, .. } if *to == me && *from == echo)
    ));

    // The server stops: the client reports the connection gone and the node dead.
    drop(server);
    let client_log = client
        .run(move |p| async move {
            let watch = p.monitor_node(server_id);
            let lost: NodeMonitorNotification = p.expect().await;
            assert_eq!(lost.monitor_ref, watch);
            p.nsend("recorder", Dump(p.self_pid()));
            p.expect::<Vec<MxEvent>>().await
        })
        .unwrap();
    assert!(has(
        &client_log,
        &|e| matches!(e, MxEvent::Disconnected { node, .. } if *node == server_id)
    ));
    assert!(has(&client_log, &|e| *e
        == MxEvent::NodeDied {
            node: server_id,
            reason: DiedReason::Disconnect
        }));
}
