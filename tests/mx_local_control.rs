//! Management control is local: a `TraceControl` from another node is refused when it
//! arrives (logged, counted), while local processes still control the tracer. Over real
//! TCP on loopback.

mod common;

use std::time::Duration;

use common::{tcp_node, temp_dir};
use hyperion::mx::{start_tracer, TraceControl, TraceRecord, TraceTarget, TRACER_AGENT_ID};
use hyperion::{match_type, Closure, Process, ProcessId, RemoteTable};

/// Long enough for anything that should happen on loopback; reached only on failure.
const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn a_trace_control_from_another_node_is_refused_and_a_local_one_obeyed() {
    let mut table = RemoteTable::new();
    table.register("echo", |p: Process, (): ()| async move {
        let (from, n): (ProcessId, u64) = p.expect().await;
        p.send(from, n);
    });
    let server = tcp_node(table);
    let client = tcp_node(RemoteTable::new());
    let server_id = server.id();
    let tracer = server
        .run(|p| async move { start_tracer(&p, TraceTarget::Memory).unwrap().pid() })
        .unwrap();
    let dir = temp_dir("remote-trace-control");
    let path = dir.path().join("written-by-a-stranger.jsonl");
    let target = TraceTarget::File(path.clone());
    let leaked = client
        .run(move |p| async move {
            let echo = p
                .spawn(server_id, Closure::new("echo", &()).unwrap())
                .await
                .expect("spawned");
            p.send(tracer, TraceControl::SetTarget(target.clone()));
            p.nsend_remote(server_id, TRACER_AGENT_ID, TraceControl::SetTarget(target));
            p.send(
                tracer,
                TraceControl::Records {
                    reply_to: p.self_pid(),
                },
            );
            // The server acts on frames in order: once the echo answers, the controls
            // sent before were handled (refused) already.
            p.send(echo, (p.self_pid(), 1u64));
            let echoed = p
                .receive_timeout(DEADLINE, vec![match_type(|n: u64| n)])
                .await;
            assert_eq!(echoed, Some(1));
            p.receive_timeout(
                Duration::ZERO,
                vec![match_type(|r: Vec<TraceRecord>| r.len())],
            )
            .await
        })
        .unwrap();
    assert_eq!(leaked, None, "the records were handed to another node");
    assert!(
        !path.exists(),
        "another node made the tracer write {}",
        path.display()
    );
    assert_eq!(
        server
            .on_node(|node| node.remote_controls_refused())
            .unwrap(),
        3
    );
    // A local process still controls the tracer.
    let local = server
        .run(move |p| async move {
            p.send(
                tracer,
                TraceControl::Records {
                    reply_to: p.self_pid(),
                },
            );
            p.receive_timeout(DEADLINE, vec![match_type(|r: Vec<TraceRecord>| r.len())])
                .await
        })
        .unwrap();
    assert!(local.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
