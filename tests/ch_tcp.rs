//! Cloud Haskell parity over real TCP on loopback (two node threads in one test
//! process): the two-node cases of `ch_registry.rs` and friends.

mod common;

use std::time::Duration;

use common::tcp_node;
use hyperion::{Process, ProcessId, RemoteTable};

/// How long a condition may take over loopback before the test gives up (generous: a
/// loaded machine is slow, and no timing is asserted).
const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `condition` every 10 ms until it holds or [`DEADLINE`] passes; whether it held.
async fn eventually(p: &Process, mut condition: impl FnMut(&Process) -> bool) -> bool {
    let mut waited = Duration::ZERO;
    while waited < DEADLINE {
        if condition(p) {
            return true;
        }
        p.sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    condition(p)
}

/// Answers one `(from, n)` with `n`.
async fn echo_once(p: Process) {
    let (from, n): (ProcessId, u64) = p.expect().await;
    p.send(from, n);
}

/// Sleeps forever.
async fn idle(p: Process) {
    loop {
        p.sleep(Duration::from_secs(3600)).await;
    }
}

#[test]
fn nsend_to_a_name_held_by_a_remote_process_is_delivered_over_tcp() {
    let server = tcp_node(RemoteTable::new());
    let client = tcp_node(RemoteTable::new());
    let echo = server.spawn(echo_once).unwrap();
    let got = client
        .run(move |p| async move {
            p.register("echo", echo).unwrap();
            p.nsend("echo", (p.self_pid(), 42u64));
            p.expect_timeout::<u64>(DEADLINE).await
        })
        .unwrap();
    assert_eq!(got, Some(42));
}

#[test]
fn a_name_held_by_a_remote_process_is_released_when_it_dies_over_tcp() {
    let server = tcp_node(RemoteTable::new());
    let client = tcp_node(RemoteTable::new());
    let holder = server
        .spawn(|p| async move {
            p.expect::<()>().await;
        })
        .unwrap();
    let released = client
        .run(move |p| async move {
            p.register("worker", holder).unwrap();
            p.send(holder, ());
            eventually(&p, |p| p.whereis("worker").is_none()).await
        })
        .unwrap();
    assert!(released, "the name outlived its holder");
}

#[test]
fn names_of_a_stopped_nodes_processes_are_removed_over_tcp() {
    let server = tcp_node(RemoteTable::new());
    let client = tcp_node(RemoteTable::new());
    let holder = server.spawn(idle).unwrap();
    let (registered_tx, registered_rx) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        client.run(move |p| async move {
            p.register("worker", holder).unwrap();
            registered_tx.send(()).unwrap();
            eventually(&p, |p| p.whereis("worker").is_none()).await
        })
    });
    registered_rx.recv().unwrap();
    server.shutdown();
    assert_eq!(
        watcher.join().unwrap(),
        Ok(true),
        "the name outlived its node"
    );
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Overheated {
    celsius: u32,
}

#[test]
fn a_typed_death_is_matched_by_type_and_a_typed_exit_is_caught_over_tcp() {
    let server = tcp_node(RemoteTable::new());
    let client = tcp_node(RemoteTable::new());
    let dying = server
        .spawn(|p| async move {
            p.expect::<()>().await;
            p.die_with::<(), _>(Overheated { celsius: 90 }).await
        })
        .unwrap();
    let catching = server
        .spawn(|p| async move {
            let owner: ProcessId = p.expect().await;
            let got = p
                .catch_exit(
                    async {
                        p.send(owner, "armed".to_string());
                        p.sleep(Duration::from_secs(3600)).await;
                        0
                    },
                    |_, code: u32| async move { code },
                )
                .await;
            p.send(owner, got);
        })
        .unwrap();
    let (reason, caught) = client
        .run(move |p| async move {
            p.monitor(dying);
            p.send(dying, ());
            let n = p
                .expect_timeout::<hyperion::ProcessMonitorNotification>(DEADLINE)
                .await;
            p.send(catching, p.self_pid());
            let armed = p.expect_timeout::<String>(DEADLINE).await;
            assert_eq!(armed.as_deref(), Some("armed"));
            p.exit_with(catching, 7u32);
            let caught = p.expect_timeout::<u32>(DEADLINE).await;
            (n.map(|n| n.reason), caught)
        })
        .unwrap();
    assert_eq!(
        reason.and_then(|r| r.reason_as::<Overheated>()),
        Some(Overheated { celsius: 90 })
    );
    assert_eq!(caught, Some(7));
}

#[test]
fn register_remote_answers_success_or_why_not_over_tcp() {
    use hyperion::RegistryError;
    let server = tcp_node(RemoteTable::new());
    let client = tcp_node(RemoteTable::new());
    let server_id = server.id();
    let holder = server.spawn(idle).unwrap();
    let other = server.spawn(idle).unwrap();
    let outcome = client
        .run(move |p| async move {
            (
                p.register_remote(server_id, "x", holder).await,
                p.register_remote(server_id, "x", other).await,
                p.whereis_remote(server_id, "x").await,
                p.unregister_remote(server_id, "x").await,
                p.unregister_remote(server_id, "x").await,
            )
        })
        .unwrap();
    assert_eq!(outcome.0, Ok(()));
    assert_eq!(
        outcome.1,
        Err(RegistryError::AlreadyRegistered {
            name: "x".into(),
            holder
        })
    );
    assert_eq!(outcome.2, Some(holder));
    assert_eq!(outcome.3, Ok(()));
    assert_eq!(outcome.4, Err(RegistryError::NotRegistered("x".into())));
}

#[test]
fn a_port_monitor_fires_once_when_the_owner_dies_over_tcp() {
    let server = tcp_node(RemoteTable::new());
    let client = tcp_node(RemoteTable::new());
    let owner = server
        .spawn(|p| async move {
            let to: ProcessId = p.expect().await;
            let (tx, _rx) = p.new_chan::<u32>();
            p.send(to, tx);
            p.expect::<()>().await;
        })
        .unwrap();
    let got = client
        .run(move |p| async move {
            p.send(owner, p.self_pid());
            let port: hyperion::SendPort<u32> = p.expect_timeout(DEADLINE).await.unwrap();
            let watch = p.monitor_port(port);
            p.send(owner, ());
            let first = p
                .expect_timeout::<hyperion::PortMonitorNotification>(DEADLINE)
                .await;
            let again = p
                .expect_timeout::<hyperion::PortMonitorNotification>(Duration::from_millis(200))
                .await;
            (first.map(|n| (n.monitor_ref == watch, n.reason)), again)
        })
        .unwrap();
    assert_eq!(got.0, Some((true, hyperion::DiedReason::Normal)));
    assert_eq!(got.1, None);
}

#[test]
fn call_returns_the_remote_functions_result_over_tcp() {
    let mut table = RemoteTable::new();
    table.register_call("square", |_p: Process, x: u64| async move {
        Ok::<_, String>(x * x)
    });
    let server = tcp_node(table);
    let client = tcp_node(RemoteTable::new());
    let server_id = server.id();
    let got = client
        .run(move |p| async move {
            (
                p.call::<u64, u64>(server_id, "square", &12).await,
                p.call::<u64, u64>(server_id, "cube", &12).await.is_err(),
            )
        })
        .unwrap();
    assert_eq!(got, (Ok(144), true));
}
