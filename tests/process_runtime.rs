//! The process runtime on one node: every behaviour of issue 2, in the simulator (where
//! time is virtual) and on a real node thread.

use std::time::Duration;

use hyperion::{
    match_any, match_chan, match_if, match_type, DiedReason, Message, Node, Process,
    ProcessExitSignal, ProcessId, ProcessLinkSignal, ProcessMonitorNotification, ReceivePort,
    RegistryError,
};
use hyperion_sim::{Faults, Sim, SimError};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Tagged(u32);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Other(String);

/// Panics; typed `()` so that a process body calling it has a normal outcome type.
fn fail(text: &str) {
    panic!("{text}")
}

async fn death_of(p: &Process, pid: ProcessId) -> DiedReason {
    let monitor_ref = p.monitor(pid);
    let notification: ProcessMonitorNotification = p
        .receive_wait(vec![match_if(
            move |n: &ProcessMonitorNotification| n.monitor_ref == monitor_ref,
            |n| n,
        )])
        .await;
    assert_eq!(notification.pid, pid);
    notification.reason
}

// ----- messages and selective receive -----

#[test]
fn selective_receive_leaves_unmatched_messages_in_order() {
    let rest = Sim::run_alone(1, |p| async move {
        let me = p.self_pid();
        for n in 0..5 {
            p.send(me, Tagged(n));
        }
        p.send(me, Other("wanted".into()));
        let other: Other = p.expect().await;
        assert_eq!(other, Other("wanted".into()));
        let third = p
            .receive_wait(vec![match_if(|t: &Tagged| t.0 == 3, |t| t)])
            .await;
        assert_eq!(third, Tagged(3));
        let mut rest = Vec::new();
        while let Some(t) = p.expect_timeout::<Tagged>(Duration::ZERO).await {
            rest.push(t.0);
        }
        rest
    });
    assert_eq!(rest, Ok(vec![0, 1, 2, 4]));
}

#[test]
fn the_oldest_message_any_match_accepts_wins_over_match_order() {
    let got = Sim::run_alone(2, |p| async move {
        p.send(p.self_pid(), Other("first".into()));
        p.send(p.self_pid(), Tagged(1));
        p.receive_wait(vec![
            match_type(|t: Tagged| format!("tagged {}", t.0)),
            match_type(|o: Other| format!("other {}", o.0)),
        ])
        .await
    });
    assert_eq!(got, Ok("other first".to_string()));
}

#[test]
fn match_any_takes_whatever_is_oldest_and_can_forward_it() {
    let got = Sim::run_alone(3, |p| async move {
        p.send(p.self_pid(), 7u8);
        let message: Message = p.receive_wait(vec![match_any(|m| m)]).await;
        assert!(message.is::<u8>());
        p.forward(p.self_pid(), message);
        p.expect::<u8>().await
    });
    assert_eq!(got, Ok(7));
}

#[test]
fn a_message_of_another_type_never_reaches_a_typed_match() {
    let got = Sim::run_alone(4, |p| async move {
        p.send(p.self_pid(), 1u32);
        p.expect_timeout::<u64>(Duration::from_millis(10)).await
    });
    assert_eq!(got, Ok(None));
}

#[test]
fn small_values_are_taken_by_type_in_order_wherever_they_sit_in_the_mailbox() {
    // Small values are held in the envelope, and a typed receive takes one at the head
    // of the mailbox without scanning: the head of another type, or of another small
    // type, must still be passed over, and the rest keep their order.
    let got = Sim::run_alone(41, |p| async move {
        let me = p.self_pid();
        p.send(me, Other("first".into()));
        p.send(me, 1u64);
        p.send(me, 2u32);
        p.send(me, 3u64);
        p.send(me, -4i64);
        let mut got = Vec::new();
        got.push(format!("{}", p.expect::<u64>().await));
        got.push(format!("{}", p.expect::<u64>().await));
        got.push(format!("{}", p.expect::<i64>().await));
        got.push(format!("{}", p.expect::<u32>().await));
        got.push(p.expect::<Other>().await.0);
        got.push(format!(
            "{:?}",
            p.expect_timeout::<u64>(Duration::ZERO).await
        ));
        got
    });
    assert_eq!(
        got,
        Ok(["1", "3", "-4", "2", "first", "None"]
            .map(String::from)
            .to_vec())
    );
}

#[test]
fn a_waiting_receive_takes_small_values_that_arrive_behind_a_message_it_passed_over() {
    // The receiver waits in `expect::<u64>` with a message of another type ahead of
    // what arrives (its scan remembers that it looked there), across several turns.
    for seed in 0..10 {
        let got = Sim::run_alone(seed, |p| async move {
            let me = p.self_pid();
            let receiver = p.spawn_local(move |r| async move {
                let mut got = Vec::new();
                for _ in 0..6 {
                    got.push(r.expect::<u64>().await);
                }
                let other: Other = r.expect().await;
                r.send(me, (got, other.0));
            });
            p.send(receiver, Other("passed over".into()));
            for n in 0..6u64 {
                p.send(receiver, n);
                p.send(receiver, n as u32);
                p.yield_now().await;
            }
            p.expect::<(Vec<u64>, String)>().await
        });
        assert_eq!(
            got,
            Ok(((0..6).collect(), "passed over".to_string())),
            "seed {seed}"
        );
    }
}

#[test]
fn receive_timeout_returns_none_after_the_time() {
    let elapsed = Sim::run_alone(5, |p| async move {
        let start = p.now();
        let got = p
            .receive_timeout(Duration::from_secs(5), vec![match_type(|t: Tagged| t)])
            .await;
        assert_eq!(got, None);
        p.now() - start
    });
    assert_eq!(elapsed, Ok(Duration::from_secs(5)));
}

#[test]
fn a_message_arriving_before_the_timeout_is_received_and_the_timer_is_disarmed() {
    let mut sim = Sim::with_faults(6, Faults::none());
    let node = sim.add_node();
    let got = sim.run_until(&node, |p| async move {
        let me = p.self_pid();
        let start = p.now();
        p.spawn_local(move |c| async move {
            c.sleep(Duration::from_secs(1)).await;
            c.send(me, Tagged(9));
        });
        p.receive_timeout(
            Duration::from_secs(60),
            vec![match_type(|t: Tagged| (t, 0))],
        )
        .await
        .map(|(t, _)| (t, p.now() - start))
    });
    assert_eq!(got, Ok(Some((Tagged(9), Duration::from_secs(1)))));
    assert_eq!(node.resources().timers, 0, "the 60 s timer was cancelled");
}

#[test]
fn messages_between_a_pair_arrive_in_send_order() {
    for seed in 0..20 {
        let got = Sim::run_alone(seed, |p| async move {
            let me = p.self_pid();
            for sender in 0..3u32 {
                p.spawn_local(move |c| async move {
                    for n in 0..50u32 {
                        c.send(me, (sender, n));
                        if n % 7 == 0 {
                            c.yield_now().await;
                        }
                    }
                });
            }
            let mut next = [0u32; 3];
            for _ in 0..150 {
                let (sender, n): (u32, u32) = p.expect().await;
                assert_eq!(n, next[sender as usize], "seed {seed}: out of order");
                next[sender as usize] += 1;
            }
            next
        });
        assert_eq!(got, Ok([50, 50, 50]), "seed {seed}");
    }
}

#[test]
fn sleep_waits_for_virtual_time() {
    let got = Sim::run_alone(7, |p| async move {
        let start = p.now();
        p.sleep(Duration::from_secs(3600)).await;
        p.now() - start
    });
    assert_eq!(got, Ok(Duration::from_secs(3600)));
}

// ----- typed channels -----

#[test]
fn a_channel_delivers_in_order_to_its_receive_port() {
    let got = Sim::run_alone(8, |p| async move {
        let (tx, rx) = p.new_chan::<u32>();
        p.spawn_local(move |c| async move {
            for n in 0..10 {
                c.send_chan(tx, n);
            }
        });
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(p.receive_chan(&rx).await);
        }
        got
    });
    assert_eq!(got, Ok((0..10).collect::<Vec<_>>()));
}

#[test]
fn receive_chan_timeout_gives_up() {
    let got = Sim::run_alone(9, |p| async move {
        let (_tx, rx) = p.new_chan::<u32>();
        p.receive_chan_timeout(Duration::from_millis(250), &rx)
            .await
    });
    assert_eq!(got, Ok(None));
}

#[test]
fn a_biased_merge_prefers_the_first_port() {
    let got = Sim::run_alone(10, |p| async move {
        let (low_tx, low_rx) = p.new_chan::<String>();
        let (high_tx, high_rx) = p.new_chan::<String>();
        p.send_chan(low_tx, "low".to_string());
        p.send_chan(high_tx, "high".to_string());
        let merged = ReceivePort::merge_biased(vec![high_rx, low_rx]);
        vec![p.receive_chan(&merged).await, p.receive_chan(&merged).await]
    });
    assert_eq!(got, Ok(vec!["high".to_string(), "low".to_string()]));
}

#[test]
fn a_round_robin_merge_takes_in_turn() {
    let got = Sim::run_alone(11, |p| async move {
        let (a_tx, a_rx) = p.new_chan::<char>();
        let (b_tx, b_rx) = p.new_chan::<char>();
        for _ in 0..2 {
            p.send_chan(a_tx, 'a');
            p.send_chan(b_tx, 'b');
        }
        let merged = ReceivePort::merge_round_robin(vec![a_rx, b_rx]);
        let mut got = String::new();
        for _ in 0..4 {
            got.push(p.receive_chan(&merged).await);
        }
        got
    });
    assert_eq!(got, Ok("abab".to_string()));
}

#[test]
fn match_chan_mixes_with_mailbox_matches() {
    let got = Sim::run_alone(12, |p| async move {
        let (tx, rx) = p.new_chan::<u32>();
        let me = p.self_pid();
        p.spawn_local(move |c| async move {
            c.sleep(Duration::from_millis(5)).await;
            c.send_chan(tx, 5);
            c.sleep(Duration::from_millis(5)).await;
            c.send(me, Tagged(6));
        });
        let mut got = Vec::new();
        for _ in 0..2 {
            let value = p
                .receive_wait(vec![
                    match_type(|t: Tagged| t.0),
                    match_chan(&rx, |n: u32| n),
                ])
                .await;
            got.push(value);
        }
        got
    });
    assert_eq!(got, Ok(vec![5, 6]));
}

#[test]
fn a_send_port_travels_in_a_message() {
    let got = Sim::run_alone(13, |p| async move {
        let server = p.spawn_local(|s| async move {
            let reply_to: hyperion::SendPort<String> = s.expect().await;
            s.send_chan(reply_to, "pong".to_string());
        });
        let (tx, rx) = p.new_chan::<String>();
        p.send(server, tx);
        p.receive_chan(&rx).await
    });
    assert_eq!(got, Ok("pong".to_string()));
}

// ----- registry -----

#[test]
fn registry_registers_finds_and_unregisters() {
    let got = Sim::run_alone(14, |p| async move {
        let me = p.self_pid();
        assert_eq!(p.whereis("unknown"), None);
        p.register("me", me).unwrap();
        assert_eq!(p.whereis("me"), Some(me));
        assert_eq!(
            p.register("me", me),
            Err(RegistryError::AlreadyRegistered {
                name: "me".into(),
                holder: me
            })
        );
        p.nsend("me", Tagged(1));
        let got: Tagged = p.expect().await;
        p.unregister("me").unwrap();
        assert_eq!(
            p.unregister("me"),
            Err(RegistryError::NotRegistered("me".into()))
        );
        got
    });
    assert_eq!(got, Ok(Tagged(1)));
}

#[test]
fn nsend_to_an_unknown_name_is_dropped_without_hanging() {
    let got = Sim::run_alone(15, |p| async move {
        p.nsend("nobody", Tagged(1));
        p.expect_timeout::<Tagged>(Duration::from_millis(1)).await
    });
    assert_eq!(got, Ok(None));
}

#[test]
fn a_dead_process_cannot_be_registered_and_its_names_are_freed() {
    let got = Sim::run_alone(16, |p| async move {
        let me = p.self_pid();
        let child = p.spawn_local(move |c| async move {
            c.register("child", c.self_pid()).unwrap();
            c.send(me, "registered".to_string());
            let () = c.expect().await;
        });
        p.expect::<String>().await;
        assert_eq!(p.whereis("child"), Some(child));
        p.send(child, ());
        death_of(&p, child).await;
        assert_eq!(p.whereis("child"), None);
        p.register("child", child)
    });
    assert_eq!(got, Ok(Err(RegistryError::ProcessNotAlive(child_of(&got)))));

    fn child_of(result: &Result<Result<(), RegistryError>, SimError>) -> ProcessId {
        match result {
            Ok(Err(RegistryError::ProcessNotAlive(pid))) => *pid,
            other => panic!("unexpected {other:?}"),
        }
    }
}

// ----- monitors -----

#[test]
fn a_monitor_reports_a_normal_exit() {
    let got = Sim::run_alone(17, |p| async move {
        let child = p.spawn_local(|_| async move {});
        death_of(&p, child).await
    });
    assert_eq!(got, Ok(DiedReason::Normal));
}

#[test]
fn a_monitor_reports_a_panic_and_the_node_keeps_working() {
    let got = Sim::run_alone(18, |p| async move {
        let child = p.spawn_local(|_| async move { fail("boom") });
        let reason = death_of(&p, child).await;
        let survivor = p.spawn_local(|c| async move {
            let (from, n): (ProcessId, u32) = c.expect().await;
            c.send(from, n + 1);
        });
        p.send(survivor, (p.self_pid(), 1u32));
        (reason, p.expect::<u32>().await)
    });
    assert_eq!(got, Ok((DiedReason::Exception("panicked: boom".into()), 2)));
}

#[test]
fn a_monitor_reports_an_error_returned_by_the_process() {
    let got = Sim::run_alone(19, |p| async move {
        let child = p.spawn_local(|_| async move { Err::<(), _>("bad input") });
        death_of(&p, child).await
    });
    assert_eq!(got, Ok(DiedReason::Exception("bad input".into())));
}

#[test]
fn a_monitor_reports_a_kill() {
    let got = Sim::run_alone(20, |p| async move {
        let child = p.spawn_local(|c| async move {
            c.trap_exits(true); // a kill cannot be trapped
            let () = c.expect().await;
        });
        let monitor_ref = p.monitor(child);
        p.kill(child, "enough");
        let n: ProcessMonitorNotification = p.expect().await;
        assert_eq!(n.monitor_ref, monitor_ref);
        (n.reason, p.self_pid())
    });
    let (reason, me) = got.unwrap();
    assert_eq!(
        reason,
        DiedReason::Exception(format!("killed by {me}: enough"))
    );
}

#[test]
fn die_ends_the_process_with_its_reason() {
    let got = Sim::run_alone(21, |p| async move {
        let child = p.spawn_local(|c| async move {
            let never: u64 = c.die("cannot go on").await;
            c.send(c.self_pid(), never);
        });
        death_of(&p, child).await
    });
    assert_eq!(got, Ok(DiedReason::Exception("cannot go on".into())));
}

#[test]
fn monitoring_a_dead_process_reports_unknown_process() {
    let got = Sim::run_alone(22, |p| async move {
        let child = p.spawn_local(|_| async move {});
        death_of(&p, child).await;
        death_of(&p, child).await
    });
    assert_eq!(got, Ok(DiedReason::UnknownProcess));
}

#[test]
fn unmonitor_withdraws_even_a_queued_notification() {
    let got = Sim::run_alone(23, |p| async move {
        let child = p.spawn_local(|_| async move {});
        let monitor_ref = p.monitor(child);
        p.sleep(Duration::from_millis(1)).await; // the child dies; its notice is queued
        p.unmonitor(monitor_ref);
        p.expect_timeout::<ProcessMonitorNotification>(Duration::from_millis(1))
            .await
    });
    assert_eq!(got, Ok(None));
}

#[test]
fn each_monitor_fires_exactly_once() {
    let got = Sim::run_alone(24, |p| async move {
        let child = p.spawn_local(|c| async move {
            let () = c.expect().await;
        });
        let refs = [p.monitor(child), p.monitor(child)];
        p.send(child, ());
        let mut seen = Vec::new();
        while let Some(n) = p
            .expect_timeout::<ProcessMonitorNotification>(Duration::from_secs(1))
            .await
        {
            seen.push(n.monitor_ref);
        }
        seen.sort();
        let mut expected = refs.to_vec();
        expected.sort();
        seen == expected
    });
    assert_eq!(got, Ok(true));
}

// ----- links and exit signals -----

#[test]
fn a_link_propagates_an_abnormal_exit() {
    let got = Sim::run_alone(25, |p| async move {
        let worker = p.spawn_local(|c| async move {
            let () = c.expect().await;
            fail("worker failed");
        });
        let linked = p.spawn_local(move |c| async move {
            c.link(worker);
            let () = c.expect().await; // never comes
        });
        p.yield_now().await;
        let monitor_linked = death_of(&p, linked);
        p.send(worker, ());
        monitor_linked.await
    });
    match got {
        Ok(DiedReason::Exception(text)) => assert!(text.starts_with("linked process"), "{text}"),
        other => panic!("expected a link exception, got {other:?}"),
    }
}

#[test]
fn a_link_ignores_a_normal_exit() {
    let got = Sim::run_alone(26, |p| async move {
        let worker = p.spawn_local(|_| async move {});
        p.link(worker);
        death_of(&p, worker).await;
        p.sleep(Duration::from_millis(1)).await;
        "still alive"
    });
    assert_eq!(got, Ok("still alive"));
}

#[test]
fn a_process_trapping_exits_receives_link_signals() {
    let got = Sim::run_alone(27, |p| async move {
        p.trap_exits(true);
        let worker = p.spawn_local(|_| async move { Err::<(), _>("oops") });
        p.link(worker);
        p.expect::<ProcessLinkSignal>().await
    });
    let signal = got.unwrap();
    assert_eq!(signal.reason, DiedReason::Exception("oops".into()));
}

#[test]
fn linking_to_a_dead_process_signals_unknown_process() {
    let got = Sim::run_alone(28, |p| async move {
        p.trap_exits(true);
        let worker = p.spawn_local(|_| async move {});
        death_of(&p, worker).await;
        p.link(worker);
        p.expect::<ProcessLinkSignal>().await.reason
    });
    assert_eq!(got, Ok(DiedReason::UnknownProcess));
}

#[test]
fn unlink_stops_the_propagation() {
    let got = Sim::run_alone(29, |p| async move {
        let worker = p.spawn_local(|c| async move {
            let () = c.expect().await;
            fail("late failure");
        });
        p.link(worker);
        p.unlink(worker);
        p.send(worker, ());
        death_of(&p, worker).await;
        "unaffected"
    });
    assert_eq!(got, Ok("unaffected"));
}

#[test]
fn exit_kills_a_process_that_does_not_trap_exits() {
    let got = Sim::run_alone(30, |p| async move {
        let child = p.spawn_local(|c| async move {
            let () = c.expect().await;
        });
        let death = death_of(&p, child);
        p.exit(child, "shutdown");
        (death.await, p.self_pid())
    });
    let (reason, me) = got.unwrap();
    assert_eq!(
        reason,
        DiedReason::Exception(format!("exit from {me}: shutdown"))
    );
}

#[test]
fn exit_is_a_message_to_a_process_that_traps_exits() {
    let got = Sim::run_alone(31, |p| async move {
        let me = p.self_pid();
        let child = p.spawn_local(move |c| async move {
            c.trap_exits(true);
            c.send(me, ());
            let signal: ProcessExitSignal = c.expect().await;
            c.send(me, signal.reason);
        });
        let () = p.expect().await;
        p.exit(child, "please stop");
        p.expect::<String>().await
    });
    assert_eq!(got, Ok("please stop".to_string()));
}

#[test]
fn spawn_link_and_spawn_monitor_are_in_place_before_the_child_runs() {
    let got = Sim::run_alone(32, |p| async move {
        let (child, monitor_ref) = p.spawn_monitor(|_| async move { fail("at once") });
        let n: ProcessMonitorNotification = p.expect().await;
        assert_eq!((n.pid, n.monitor_ref), (child, monitor_ref));
        p.trap_exits(true);
        let linked = p.spawn_link(|_| async move { fail("at once") });
        let signal: ProcessLinkSignal = p.expect().await;
        signal.pid == linked
    });
    assert_eq!(got, Ok(true));
}

// ----- scale, blocking work, handles -----

#[test]
fn a_hundred_thousand_processes_spawn_and_exit_on_one_node() {
    let node = Node::new().unwrap();
    let count = node
        .run(|p| async move {
            let me = p.self_pid();
            for n in 0..100_000u32 {
                p.spawn_local(move |c| async move { c.send(me, n) });
            }
            let mut sum = 0u64;
            for _ in 0..100_000 {
                sum += u64::from(p.expect::<u32>().await);
            }
            sum
        })
        .unwrap();
    assert_eq!(count, (0..100_000u64).sum::<u64>());
    let alive = node.on_node(|n| n.resources()).unwrap();
    assert_eq!(alive.processes, 0, "every process exited");
}

#[test]
fn run_blocking_runs_on_the_pool_and_returns_the_result() {
    let node = Node::new().unwrap();
    let got = node.run(|p| async move {
        let big = p
            .run_blocking(|| (1..=1_000_000u64).map(|n| n % 7).sum::<u64>())
            .await;
        big
    });
    assert_eq!(got, Ok((1..=1_000_000u64).map(|n| n % 7).sum()));
}

#[test]
fn run_blocking_runs_inline_in_the_simulator() {
    let got = Sim::run_alone(33, |p| async move { p.run_blocking(|| 6 * 7).await });
    assert_eq!(got, Ok(42));
}

#[test]
fn a_panic_in_a_blocking_job_kills_only_its_process() {
    let node = Node::new().unwrap();
    let got = node.run(|p| async move { p.run_blocking(|| -> u32 { panic!("job failed") }).await });
    assert_eq!(
        got,
        Err(DiedReason::Exception("panicked: job failed".into()))
    );
    assert_eq!(node.run(|_| async move { 1 }), Ok(1));
}

#[test]
fn a_foreign_future_wakes_its_process() {
    let got = Sim::run_alone(34, |p| async move {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        p.spawn_local(move |c| async move {
            c.sleep(Duration::from_millis(3)).await;
            let _ = tx.send(11);
        });
        rx.await.unwrap()
    });
    assert_eq!(got, Ok(11));
}

#[test]
fn awaiting_another_process_handle_is_a_clear_error_not_a_hang() {
    let got = Sim::run_alone(35, |p| async move {
        let me = p.self_pid();
        p.spawn_local(move |a| async move {
            let node = a.local_node().clone();
            // The handle of `a` moves into another process, which then blocks on it.
            let thief = node.spawn(move |b| async move {
                let () = b.expect().await;
                a.expect::<u8>().await;
            });
            node.spawn(move |c| async move { c.send(me, thief) });
        });
        let thief: ProcessId = p.expect().await;
        let death = death_of(&p, thief);
        p.send(thief, ());
        death.await
    });
    match got {
        Ok(DiedReason::Exception(text)) => {
            assert!(text.contains("outside its own process"), "{text}")
        }
        other => panic!("expected a clear error, got {other:?}"),
    }
}

#[test]
fn run_reports_why_the_program_died() {
    let node = Node::new().unwrap();
    let got: Result<(), DiedReason> = node.run(|_| async move { panic!("in main") });
    assert_eq!(got, Err(DiedReason::Exception("panicked: in main".into())));
}

#[test]
fn a_deadlocked_simulation_is_reported_not_hung() {
    let got = Sim::run_alone(36, |p| async move { p.expect::<Tagged>().await });
    assert!(matches!(got, Err(SimError::Stalled { .. })), "{got:?}");
}

#[test]
fn shutting_down_a_node_stops_its_processes_and_frees_everything() {
    let mut sim = Sim::with_faults(37, Faults::none());
    let node = sim.add_node();
    sim.run_until(&node, |p| async move {
        for _ in 0..10 {
            let child = p.spawn_local(|c| async move {
                let (_tx, _rx) = c.new_chan::<u8>();
                c.register(&format!("{}", c.self_pid()), c.self_pid())
                    .unwrap();
                c.sleep(Duration::from_secs(100)).await;
            });
            p.link(child);
        }
        p.yield_now().await;
    })
    .unwrap();
    assert_eq!(node.resources().processes, 10);
    node.shutdown();
    assert_eq!(node.resources(), hyperion::NodeResources::default());
}

#[test]
fn the_same_seed_gives_the_same_interleaving() {
    fn interleaving(seed: u64) -> Vec<u32> {
        Sim::run_alone(seed, |p| async move {
            let me = p.self_pid();
            for n in 0..8u32 {
                p.spawn_local(move |c| async move {
                    c.yield_now().await;
                    c.send(me, n);
                });
            }
            let mut order = Vec::new();
            for _ in 0..8 {
                order.push(p.expect::<u32>().await);
            }
            order
        })
        .unwrap()
    }
    assert_eq!(interleaving(99), interleaving(99));
    let distinct: std::collections::BTreeSet<_> = (0..20).map(interleaving).collect();
    assert!(distinct.len() > 1, "seeds explore different interleavings");
}
