//! A panic ends the process it happens in, never the node: building a process, a remote
//! table entry, a future's destructor. Monitors and links of that process fire once
//! with `DiedReason::Exception("panicked: ...")`, the node keeps serving, and if a
//! node's thread ever ends, whoever waits on it hears so instead of waiting forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::Duration;

use hyperion::{
    match_any, Closure, DiedReason, Node, NodeStopped, Process, ProcessId, ProcessLinkSignal,
    ProcessMonitorNotification, RemoteTable, SpawnError,
};
use hyperion_sim::{Faults, NodeOptions, Sim};

/// Panics; typed `()` so that a closure can call it before returning its future.
fn boom(text: &str) {
    panic!("{text}")
}

/// A future that never finishes and panics when dropped (a process killed or shut
/// down while it waits drops it).
struct PendingPanicOnDrop;

impl Future for PendingPanicOnDrop {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

impl Drop for PendingPanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor panicked")
    }
}

fn panicked(text: &str) -> DiedReason {
    DiedReason::Exception(format!("panicked: {text}"))
}

/// Nothing else is queued for `p` after a while.
async fn mailbox_stays_empty(p: &Process) -> bool {
    p.sleep(Duration::from_secs(1)).await;
    p.receive_timeout(Duration::ZERO, vec![match_any(|m| m)])
        .await
        .is_none()
}

/// The node still runs processes: a child answers.
async fn node_serves(p: &Process) -> bool {
    let child = p.spawn_local(|c| async move {
        let to: ProcessId = c.expect().await;
        c.send(to, 42u64);
    });
    p.send(child, p.self_pid());
    p.expect_timeout::<u64>(Duration::from_secs(5)).await == Some(42)
}

#[test]
fn a_panic_building_a_process_ends_it_and_its_monitor_and_link_fire_once() {
    for seed in 0..16 {
        let (notification, signal, quiet, serves) = Sim::run_alone(seed, |p| async move {
            p.trap_exits(true);
            let (child, monitor) = p.spawn_monitor(|_| {
                boom("building failed");
                async {}
            });
            let linked = p.spawn_link(|_| {
                boom("building failed too");
                async {}
            });
            let notification: ProcessMonitorNotification = p.expect().await;
            assert_eq!(
                (notification.pid, notification.monitor_ref),
                (child, monitor)
            );
            let signal: ProcessLinkSignal = p.expect().await;
            assert_eq!(signal.pid, linked);
            let quiet = mailbox_stays_empty(&p).await;
            (notification, signal, quiet, node_serves(&p).await)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(
            notification.reason,
            panicked("building failed"),
            "seed {seed}"
        );
        assert_eq!(
            signal.reason,
            panicked("building failed too"),
            "seed {seed}"
        );
        assert!(quiet, "seed {seed}: a second notification arrived");
        assert!(serves, "seed {seed}");
    }
}

#[test]
fn a_remote_spawn_whose_entry_panics_gets_an_error_reply() {
    for seed in 0..8 {
        let mut table = RemoteTable::new();
        table.register("explode", |_: Process, _: u64| {
            boom("entry panicked");
            async {}
        });
        table.register("echo", |p: Process, to: ProcessId| async move {
            p.send(to, 7u64);
        });
        let mut sim = Sim::with_faults(seed, Faults::calm());
        let master = sim.add_node();
        let worker = sim.add_node_with(NodeOptions::default().remote_table(table));
        let worker_id = worker.id();
        let (exploded, echoed) = sim
            .run_until(&master, move |p| async move {
                let closure = Closure::new("explode", &1u64).unwrap();
                let exploded = p.spawn(worker_id, closure).await;
                let echo = Closure::new("echo", &p.self_pid()).unwrap();
                p.spawn(worker_id, echo).await.unwrap();
                (exploded, p.expect::<u64>().await)
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            matches!(&exploded, Err(SpawnError::Refused(why)) if why.contains("panicked: entry panicked")),
            "seed {seed}: {exploded:?}"
        );
        assert_eq!(echoed, 7, "seed {seed}");
        assert_eq!(worker.process_count(), 0, "seed {seed}: a zombie is left");
    }
}

#[test]
fn a_panic_in_a_future_destructor_is_the_death_of_its_process() {
    for seed in 0..16 {
        let (reason, serves) = Sim::run_alone(seed, |p| async move {
            let (child, _) = p.spawn_monitor(|_| PendingPanicOnDrop);
            p.sleep(Duration::from_millis(1)).await;
            p.kill(child, "enough");
            let notification: ProcessMonitorNotification = p.expect().await;
            let quiet = mailbox_stays_empty(&p).await;
            (notification.reason, quiet && node_serves(&p).await)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(reason, panicked("destructor panicked"), "seed {seed}");
        assert!(serves, "seed {seed}");
    }
}

#[test]
fn a_panic_in_a_future_destructor_at_shutdown_does_not_stop_the_shutdown() {
    let mut sim = Sim::with_faults(3, Faults::none());
    let node = sim.add_node();
    let deaths = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    for _ in 0..3 {
        let deaths = deaths.clone();
        node.spawn_with_result(
            |_| PendingPanicOnDrop,
            move |result| deaths.borrow_mut().push(result),
        );
    }
    sim.run_for(Duration::from_secs(1));
    node.shutdown();
    assert_eq!(node.process_count(), 0);
    let expected: Vec<Result<(), DiedReason>> = vec![Err(panicked("destructor panicked")); 3];
    assert_eq!(*deaths.borrow(), expected);
}

/// Waits for `rx` with a generous deadline: a hang is a failure, not a stuck test.
fn within<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("no answer within 60 s: a caller would wait forever")
}

#[test]
fn when_the_node_thread_dies_every_caller_gets_an_error() {
    let node = Arc::new(Node::new().unwrap());
    let (pid_tx, pid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let waiting = node.clone();
    std::thread::spawn(move || {
        let result = waiting.run(move |p| async move {
            pid_tx.send(p.self_pid()).unwrap();
            p.expect::<u8>().await
        });
        done_tx.send(result).unwrap();
    });
    let pid = within(&pid_rx);
    // A panic on the node's thread outside any process ends the thread.
    assert_eq!(
        node.on_node(|_| boom("node job panicked")),
        Err(NodeStopped)
    );
    assert_eq!(within(&done_rx), Err(DiedReason::NodeDown));
    assert_eq!(node.send(pid, 1u8), Err(NodeStopped));
    let (late_tx, late_rx) = mpsc::channel();
    let late = node.clone();
    std::thread::spawn(move || late_tx.send(late.run(|_| async { 1u8 })).unwrap());
    assert_eq!(within(&late_rx), Err(DiedReason::NodeDown));
}

#[test]
fn a_panic_building_the_process_of_node_run_is_its_error() {
    let node = Node::new().unwrap();
    let result = node.run(|_| {
        boom("run body panicked");
        async { 1u8 }
    });
    assert_eq!(result, Err(panicked("run body panicked")));
    assert_eq!(node.run(|_| async { 2u8 }), Ok(2));
}
