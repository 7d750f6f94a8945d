//! Where hyperion deliberately differs from Cloud Haskell (README, "Differences from
//! Cloud Haskell"): each rule of hyperion's, tested over many seeds in the simulator.

use std::time::Duration;

use hyperion::{
    Async, AsyncResult, Closure, DiedReason, PortMonitorNotification, Process, ProcessExitSignal,
    ProcessMonitorNotification, RemoteTable, SendPort, SpawnError,
};
use hyperion_sim::{seeds, Faults, NodeOptions, Sim};

async fn idle(p: Process) {
    loop {
        p.sleep(Duration::from_secs(3600)).await;
    }
}

fn for_seeds<F, Fut>(body: F)
where
    F: Fn(Process) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    for seed in seeds(100) {
        Sim::run_alone(seed, body.clone()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

/// Links are one-way, and only an abnormal end kills the linker.
#[test]
fn links_are_one_way_and_a_normal_end_does_not_kill_the_linker() {
    for_seeds(|p| async move {
        let me = p.self_pid();
        // `linker` links to `target`; `target` dying abnormally kills `linker`...
        let target = p.spawn_local(|t| async move {
            t.expect::<()>().await;
            t.die::<()>("bad").await
        });
        let (linker, _) = p.spawn_monitor(move |l| async move {
            l.link(target);
            l.send(me, ());
            idle(l).await
        });
        p.expect::<()>().await;
        // ...but `linker` dying does not touch `target` (one way).
        let (other_linker, _) = p.spawn_monitor(move |l| async move {
            l.link(target);
            l.die::<()>("linker gone").await
        });
        let first: ProcessMonitorNotification = p.expect().await;
        assert_eq!(first.pid, other_linker);
        assert!(p.local_node().is_alive(target));
        // A normal end of a linked process does not kill the linker.
        let normal = p.spawn_local(|n| async move { n.expect::<()>().await });
        let (survivor, _) = p.spawn_monitor(move |s| async move {
            s.link(normal);
            s.send(me, ());
            idle(s).await
        });
        p.expect::<()>().await;
        p.send(normal, ());
        p.send(target, ());
        let died: ProcessMonitorNotification = p.expect().await;
        assert_eq!(died.pid, linker);
        assert!(!died.reason.is_normal());
        p.sleep(Duration::from_secs(1)).await;
        assert!(p.local_node().is_alive(survivor));
    });
}

/// A remote spawn of an unknown label is an error reply; no process, no notification.
#[test]
fn an_unknown_closure_label_is_refused_with_an_error() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node_with(NodeOptions::default().remote_table(RemoteTable::new()));
        let b_id = b.id();
        let before = b.process_count();
        let got = sim
            .run_until(&a, move |p| async move {
                let refused = p
                    .spawn(b_id, Closure::new("no-such-label", &()).unwrap())
                    .await;
                let stray = p
                    .expect_timeout::<ProcessMonitorNotification>(Duration::from_secs(1))
                    .await;
                (refused, stray)
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            matches!(&got.0, Err(SpawnError::Refused(why)) if why.contains("no-such-label")),
            "seed {seed}: {:?}",
            got.0
        );
        assert_eq!(got.1, None, "seed {seed}");
        assert_eq!(b.process_count(), before, "seed {seed}");
    }
}

/// Erlang's `trap_exits` exists: an exit signal becomes a message instead of a death.
#[test]
fn trap_exits_turns_an_exit_signal_into_a_message() {
    for_seeds(|p| async move {
        p.trap_exits(true);
        let me = p.self_pid();
        let sender = p.spawn_local(move |s| async move { s.exit(me, "please stop") });
        let signal: ProcessExitSignal = p.expect().await;
        assert_eq!(signal.from, sender);
        assert_eq!(signal.reason, "please stop");
    });
}

/// A port monitor is a helper process on the watcher's node while it is active.
#[test]
fn a_port_monitor_is_a_helper_process_while_active() {
    for_seeds(|p| async move {
        let me = p.self_pid();
        let owner = p.spawn_local(move |o| async move {
            let (tx, _rx) = o.new_chan::<u32>();
            o.send(me, tx);
            o.expect::<()>().await;
        });
        let port: SendPort<u32> = p.expect().await;
        let before = p.local_node().process_count();
        p.monitor_port(port);
        assert_eq!(p.local_node().process_count(), before + 1);
        p.send(owner, ());
        let _: PortMonitorNotification = p.expect().await;
        p.sleep(Duration::from_millis(1)).await;
        assert_eq!(p.local_node().process_count(), before - 1);
    });
}

/// Only its owner can wait on a task of another node (another local process cannot).
#[test]
fn only_the_owner_waits_on_a_task_of_another_node() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let remote = b.spawn(idle);
        let got = sim
            .run_until(&a, move |p| async move {
                let monitor = p.monitor(remote);
                let task: std::rc::Rc<Async<u32>> =
                    std::rc::Rc::new(Async::from_parts(&p, remote, 1, monitor));
                let me = p.self_pid();
                let shared = task.clone();
                p.spawn_local(move |other| async move {
                    let outcome = shared.wait(&other).await;
                    other.send(me, outcome);
                });
                p.expect::<AsyncResult<u32>>().await
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            matches!(&got, AsyncResult::Failed(DiedReason::Exception(why)) if why.contains("owner")),
            "seed {seed}: {got:?}"
        );
    }
}
