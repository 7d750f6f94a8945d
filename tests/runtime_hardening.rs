//! The process runtime under load and misuse (issue 11): the monitor table, what a
//! dropped or losing async leaves behind, undecodable messages, configured durations,
//! the peer table, the blocking pool.

use std::collections::BTreeMap;
use std::time::Duration;

use hyperion::{match_any, DiedReason, Process, ProcessId, ProcessMonitorNotification};
use hyperion_sim::Sim;

/// Nothing is queued for `p` after a while.
async fn mailbox_stays_empty(p: &Process) -> bool {
    p.sleep(Duration::from_secs(1)).await;
    p.receive_timeout(Duration::ZERO, vec![match_any(|m| m)])
        .await
        .is_none()
}

/// Many monitors held by one watcher: each monitor still in place fires exactly once
/// with its child's reason, and none that was removed fires.
#[test]
fn many_monitors_fire_exactly_once_and_unmonitor_removes_them() {
    const CHILDREN: usize = 2_000;
    for seed in 0..6 {
        let (fired, expected, quiet) = Sim::run_alone(seed, |p| async move {
            let mut children = Vec::new();
            for n in 0..CHILDREN {
                let (child, monitor) = p.spawn_monitor(move |c| async move {
                    c.expect::<()>().await;
                    if n % 2 == 0 {
                        c.die::<()>(format!("child {n}")).await;
                    }
                });
                children.push((child, monitor, n));
            }
            let mut expected = BTreeMap::new();
            for &(child, monitor, n) in &children {
                if n % 3 == 0 {
                    p.unmonitor(monitor);
                } else {
                    let reason = if n % 2 == 0 {
                        DiedReason::Exception(format!("child {n}"))
                    } else {
                        DiedReason::Normal
                    };
                    expected.insert(monitor, (child, reason));
                }
            }
            for &(child, _, _) in &children {
                p.send(child, ());
            }
            let mut fired: BTreeMap<_, Vec<(ProcessId, DiedReason)>> = BTreeMap::new();
            for _ in 0..expected.len() {
                let n: ProcessMonitorNotification = p.expect().await;
                fired
                    .entry(n.monitor_ref)
                    .or_default()
                    .push((n.pid, n.reason));
            }
            let quiet = mailbox_stays_empty(&p).await;
            (fired, expected, quiet)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let fired: BTreeMap<_, _> = fired
            .into_iter()
            .map(|(monitor, deaths)| {
                assert_eq!(deaths.len(), 1, "seed {seed}: {monitor:?} fired {deaths:?}");
                (monitor, deaths.into_iter().next().unwrap())
            })
            .collect();
        assert_eq!(fired, expected, "seed {seed}");
        assert!(quiet, "seed {seed}: a removed monitor fired");
    }
}

// ----- configured durations: the largest one waits, never panics -----

/// A receive whose timeout is `Duration::MAX` waits like one without a timeout.
#[test]
fn duration_max_as_a_receive_timeout_waits_for_the_message() {
    let node = hyperion::Node::new().unwrap();
    let got = node.run(|p| async move {
        let me = p.self_pid();
        p.spawn_local(move |c| async move {
            c.sleep(Duration::from_millis(20)).await;
            c.send(me, 5u8);
        });
        let received = p
            .receive_timeout(Duration::MAX, vec![hyperion::match_type(|n: u8| n)])
            .await;
        let slept_none = p.expect_timeout::<u16>(Duration::MAX);
        drop(slept_none);
        received
    });
    assert_eq!(got, Ok(Some(5)));
    for seed in 0..4 {
        let got = Sim::run_alone(seed, |p| async move {
            let me = p.self_pid();
            p.spawn_local(move |c| async move {
                c.sleep(Duration::from_secs(3)).await;
                c.send(me, 6u8);
            });
            p.receive_timeout(Duration::MAX, vec![hyperion::match_type(|n: u8| n)])
                .await
        });
        assert_eq!(got.unwrap(), Some(6), "seed {seed}");
    }
}

/// Heartbeats every `Duration::MAX` (never, in effect): nodes still talk.
#[test]
fn duration_max_as_the_heartbeat_interval_does_not_panic() {
    for seed in 0..4 {
        let heartbeat = hyperion::HeartbeatConfig {
            interval: Duration::MAX,
            timeout: Duration::MAX,
        };
        assert_eq!(heartbeat.detection_bound(), Duration::MAX);
        let mut sim = Sim::with_faults(seed, hyperion_sim::Faults::calm()).heartbeat(heartbeat);
        let client = sim.add_node();
        let server = sim.add_node();
        let echo = server.spawn(|p| async move {
            let (from, n): (ProcessId, u64) = p.expect().await;
            p.send(from, n + 1);
        });
        let got = sim
            .run_until(&client, move |p| async move {
                p.send(echo, (p.self_pid(), 41u64));
                p.expect::<u64>().await
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got, 42, "seed {seed}");
        sim.run_for(Duration::from_secs(30));
    }
}

/// Connect and handshake timeouts of `Duration::MAX` (no deadline): nodes connect.
#[test]
fn duration_max_as_tcp_connect_and_handshake_timeouts_does_not_panic() {
    use hyperion::transport::tcp::TcpConfig;
    use hyperion::wire::Cookie;
    use hyperion::{Node, NodeConfig};
    let node = || {
        let transport = TcpConfig::bind("127.0.0.1:0")
            .cookie(Cookie::new("test-cookie").unwrap())
            .connect_timeout(Duration::MAX)
            .handshake_timeout(Duration::MAX);
        Node::tcp(transport, NodeConfig::default()).expect("bind on loopback")
    };
    let (server, client) = (node(), node());
    let echo = server
        .spawn(|p| async move {
            let (from, n): (ProcessId, u64) = p.expect().await;
            p.send(from, n + 1);
        })
        .unwrap();
    let got = client.run(move |p| async move {
        p.send(echo, (p.self_pid(), 1u64));
        p.expect_timeout::<u64>(Duration::from_secs(30)).await
    });
    assert_eq!(got, Ok(Some(2)));
}

// ----- a message that does not decode as the type it claims -----

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Order {
    id: u64,
    item: String,
}

/// Bytes with `Order`'s fingerprint that do not decode as an `Order` are dropped by
/// the first receive that scans past them: once, with an mx event naming the type.
#[test]
fn an_undecodable_message_is_dropped_once_with_an_mx_event() {
    use hyperion::message::{Fingerprint, Message};
    for seed in 0..4 {
        let mut sim = Sim::with_faults(seed, hyperion_sim::Faults::none())
            .record_trace()
            .trace_mx_events();
        let node = sim.add_node();
        let (first, second, rest) = sim
            .run_until(&node, |p| async move {
                let me = p.self_pid();
                p.forward(
                    me,
                    Message::from_encoded(Fingerprint::of::<Order>(), vec![0xff; 3]),
                );
                p.send(me, 7u8);
                let take_order = || vec![hyperion::match_type(|o: Order| o)];
                let first = p.receive_timeout(Duration::ZERO, take_order()).await;
                let second = p.receive_timeout(Duration::ZERO, take_order()).await;
                let rest: Vec<Option<u8>> = vec![
                    p.receive_timeout(Duration::ZERO, vec![match_any(|m| m.downcast::<u8>().ok())])
                        .await
                        .flatten(),
                    p.receive_timeout(Duration::ZERO, vec![match_any(|_| Some(0u8))])
                        .await
                        .flatten(),
                ];
                (first, second, rest)
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        sim.run_for(Duration::from_millis(1));
        assert_eq!((first, second), (None, None), "seed {seed}");
        assert_eq!(
            rest,
            vec![Some(7), None],
            "seed {seed}: the bad message is still queued"
        );
        let dropped: Vec<String> = sim
            .trace()
            .entries()
            .expect("recording")
            .iter()
            .filter(|entry| entry.what.contains("did not decode"))
            .map(|entry| entry.what.clone())
            .collect();
        assert_eq!(dropped.len(), 1, "seed {seed}: {dropped:?}");
        assert!(dropped[0].contains("Order"), "seed {seed}: {dropped:?}");
    }
}

// ----- the peer table -----

/// A node that talked to many incarnations of a peer (each crashed and restarted)
/// keeps state for the live one only, once nothing refers to the dead ones.
#[test]
fn the_peer_table_holds_only_live_incarnations() {
    use hyperion_sim::{Fault, Faults, NodeOptions};
    const INCARNATIONS: usize = 12;
    for seed in 0..4 {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let master = sim.add_node();
        sim.add_node_with(NodeOptions::crashable().boot(|node| {
            let echo = node.spawn(|p| async move {
                for _ in 0..u64::MAX {
                    let from: ProcessId = p.expect().await;
                    p.send(from, 1u64);
                }
            });
            node.register("echo", echo).unwrap();
        }));
        for round in 0..INCARNATIONS {
            let worker = sim.node(1).id();
            let answer = sim
                .run_until(&master, move |p| async move {
                    let echo = p.whereis_remote(worker, "echo").await.expect("registered");
                    p.send(echo, p.self_pid());
                    p.expect::<u64>().await
                })
                .unwrap_or_else(|e| panic!("seed {seed}, round {round}: {e}"));
            assert_eq!(answer, 1);
            sim.apply(Fault::Crash(1));
            // The heartbeat notices the silence; then a new incarnation starts.
            sim.run_for(Duration::from_secs(10));
            sim.apply(Fault::Restart(1));
        }
        sim.run_for(Duration::from_secs(10));
        assert!(
            master.known_peers() <= 1,
            "seed {seed}: {} peers known after {INCARNATIONS} incarnations",
            master.known_peers()
        );
    }
}

// ----- what a losing or dropped async leaves behind: nothing -----

#[test]
fn race_leaves_nothing_of_the_loser_queued() {
    use hyperion::concurrency::{race, Either};
    for seed in 0..8 {
        let (winner, quiet) = Sim::run_alone(seed, |p| async move {
            let fast = p.async_task(|_| async { 1u64 });
            let slow = p.async_task(|c| async move {
                c.sleep(Duration::from_millis(10)).await;
                2u64
            });
            let winner = race(&p, fast, slow).await;
            (winner, mailbox_stays_empty(&p).await)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(
            winner,
            Either::Left(hyperion::AsyncResult::Done(1)),
            "seed {seed}"
        );
        assert!(
            quiet,
            "seed {seed}: the loser's notification or reply stayed queued"
        );
    }
}

#[test]
fn a_dropped_async_leaves_nothing_queued() {
    for seed in 0..8 {
        let quiet = Sim::run_alone(seed, |p| async move {
            // Dropped while it runs: its reply and notification come later.
            let running = p.async_task(|c| async move {
                c.sleep(Duration::from_millis(10)).await;
                1u64
            });
            drop(running);
            // Dropped after it finished: its reply and notification are queued.
            let finished = p.async_task(|_| async { 2u64 });
            p.sleep(Duration::from_millis(10)).await;
            drop(finished);
            mailbox_stays_empty(&p).await
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(quiet, "seed {seed}");
    }
}

#[test]
fn a_dropped_remote_task_leaves_nothing_queued() {
    use hyperion::remote::{with_remote_runner, RemoteCall};
    use hyperion_sim::{Faults, SimLauncher};
    for seed in 0..4 {
        let mut table = hyperion::RemoteTable::new();
        table.register_call("slow_square", |p: Process, x: u64| async move {
            p.sleep(Duration::from_secs(1)).await;
            Ok::<_, String>(x * x)
        });
        let mut sim = Sim::with_faults(seed, Faults::calm());
        let master = sim.add_node();
        let launcher = SimLauncher::new(sim.handle(), table);
        let quiet = sim
            .run_until(&master, move |p| async move {
                let p = &p;
                let outcome = with_remote_runner(p, &launcher, |runner| async move {
                    let call: RemoteCall<u64> = RemoteCall::new("slow_square", || async { 3u64 });
                    drop(runner.start(p, &call).await);
                    let finished = runner.start(p, &call).await;
                    p.sleep(Duration::from_secs(5)).await;
                    drop(finished);
                    Ok(mailbox_stays_empty(p).await)
                })
                .await;
                // Once the service has ended, its worker's death must not be queued
                // either (a dropped task's watch on the worker is removed).
                (outcome, mailbox_stays_empty(p).await)
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(quiet, (Ok(true), true), "seed {seed}");
    }
}
