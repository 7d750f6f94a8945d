//! Cloud Haskell's exits with typed reasons, in the simulator over many seeds, on one
//! node and across two: `terminate`, `die_with` matched by type on the other side of a
//! monitor or link, `exit_with`, and `catch_exit` (Cloud Haskell's `catchExit`).

use std::time::Duration;

use hyperion::{
    DiedReason, Process, ProcessId, ProcessLinkSignal, ProcessMonitorNotification,
    ProcessTermination,
};
use hyperion_sim::{seeds, Faults, Sim};
use serde::{Deserialize, Serialize};

/// Sent by a process once its catcher (or link) is in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Armed;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Overheated {
    celsius: u32,
}

/// Runs `watcher` on node 0 for every seed, with `target` started on node `on` (0 or
/// 1) first; returns nothing, `watcher` asserts.
fn for_seeds<Target, TargetFut, Watcher, WatcherFut>(on: usize, target: Target, watcher: Watcher)
where
    Target: Fn(Process) -> TargetFut + Clone + 'static,
    TargetFut: std::future::Future<Output = ()> + 'static,
    Watcher: Fn(Process, ProcessId) -> WatcherFut + Clone + 'static,
    WatcherFut: std::future::Future<Output = ()> + 'static,
{
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let nodes = [sim.add_node(), sim.add_node()];
        let target = target.clone();
        let pid = nodes[on].spawn(target);
        let watcher = watcher.clone();
        sim.run_until(&nodes[0], move |p| watcher(p, pid))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

/// Waits for `()`, then ends with `Overheated`.
async fn overheat(p: Process) {
    p.expect::<()>().await;
    p.die_with::<(), _>(Overheated { celsius: 90 }).await
}

#[test]
fn die_with_a_typed_reason_is_matched_by_type_by_a_monitor_here_and_remotely() {
    for on in [0, 1] {
        for_seeds(on, overheat, |p, target| async move {
            p.monitor(target);
            p.send(target, ());
            let n: ProcessMonitorNotification = p.expect().await;
            assert_eq!(
                n.reason.reason_as::<Overheated>(),
                Some(Overheated { celsius: 90 })
            );
            assert_eq!(n.reason.reason_as::<u32>(), None);
        });
    }
}

#[test]
fn die_with_a_typed_reason_is_matched_by_type_by_a_link_here_and_remotely() {
    for on in [0, 1] {
        for_seeds(on, overheat, |p, target| async move {
            p.trap_exits(true);
            p.link(target);
            p.send(target, ());
            let signal: ProcessLinkSignal = p.expect().await;
            assert_eq!(
                signal.reason.reason_as::<Overheated>(),
                Some(Overheated { celsius: 90 })
            );
        });
    }
}

#[test]
fn terminate_ends_a_process_with_the_termination_reason_and_kills_linked_processes() {
    for on in [0, 1] {
        for_seeds(
            on,
            |p| async move {
                p.expect::<()>().await;
                p.terminate::<()>().await
            },
            |p, target| async move {
                let me = p.self_pid();
                let linked = p.spawn_local(move |l| async move {
                    l.link(target);
                    l.send(me, Armed);
                    l.sleep(Duration::from_secs(3600)).await;
                });
                p.monitor(linked);
                p.monitor(target);
                p.expect::<Armed>().await;
                p.send(target, ());
                let first: ProcessMonitorNotification = p.expect().await;
                let second: ProcessMonitorNotification = p.expect().await;
                let (of_target, of_linked) = if first.pid == target {
                    (first, second)
                } else {
                    (second, first)
                };
                assert_eq!(
                    of_target.reason.reason_as::<ProcessTermination>(),
                    Some(ProcessTermination)
                );
                assert!(!of_linked.reason.is_normal(), "{:?}", of_linked.reason);
            },
        );
    }
}

/// Sleeps inside a catcher of `u32` exits; returns what the handler made of one.
async fn catch_u32(p: Process) {
    let owner: ProcessId = p.expect().await;
    let got = p
        .catch_exit(
            async {
                p.send(owner, Armed);
                p.sleep(Duration::from_secs(3600)).await;
                None
            },
            |from, code: u32| async move { Some((from, code)) },
        )
        .await;
    p.send(owner, got);
}

#[test]
fn catch_exit_runs_the_handler_for_an_exit_of_its_type_here_and_remotely() {
    for on in [0, 1] {
        for_seeds(on, catch_u32, |p, target| async move {
            p.send(target, p.self_pid());
            p.expect::<Armed>().await;
            p.exit_with(target, 7u32);
            let got: Option<(ProcessId, u32)> = p.expect().await;
            assert_eq!(got, Some((p.self_pid(), 7)));
        });
    }
}

#[test]
fn catch_exit_lets_an_exit_of_another_type_kill_the_process() {
    for on in [0, 1] {
        for_seeds(on, catch_u32, |p, target| async move {
            p.monitor(target);
            p.send(target, p.self_pid());
            p.expect::<Armed>().await;
            p.exit_with(target, Overheated { celsius: 1 });
            let n: ProcessMonitorNotification = p.expect().await;
            assert_eq!(
                n.reason.reason_as::<Overheated>(),
                Some(Overheated { celsius: 1 })
            );
        });
    }
}

#[test]
fn catch_exit_of_string_catches_a_text_exit_and_the_innermost_catcher_of_the_type_wins() {
    for on in [0, 1] {
        for_seeds(
            on,
            |p| async move {
                let owner: ProcessId = p.expect().await;
                let got = p
                    .catch_exit(
                        p.catch_exit(
                            async {
                                p.send(owner, Armed);
                                p.sleep(Duration::from_secs(3600)).await;
                                "body".to_string()
                            },
                            |_, code: u32| async move { format!("inner {code}") },
                        ),
                        |_, text: String| async move { format!("outer {text}") },
                    )
                    .await;
                p.send(owner, got);
            },
            |p, target| async move {
                p.send(target, p.self_pid());
                p.expect::<Armed>().await;
                p.exit(target, "stop");
                assert_eq!(p.expect::<String>().await, "outer stop");
            },
        );
    }
}

#[test]
fn a_text_death_reads_as_a_string_reason() {
    let reason = DiedReason::Exception("bad input".into());
    assert_eq!(reason.reason_as::<String>(), Some("bad input".to_string()));
    assert_eq!(reason.reason_as::<u32>(), None);
    assert_eq!(DiedReason::Normal.reason_as::<String>(), None);
}
