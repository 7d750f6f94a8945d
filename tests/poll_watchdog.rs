//! The poll watchdog (real-world nodes): a process whose one poll holds its node's
//! thread past the configured bound is named in an `MxEvent::SlowPoll`; a process that
//! awaits is not.

use std::time::{Duration, Instant};

use hyperion::mx::{mx_agent, mx_ready, mx_sink_events, MxAgent, MxEvent, MxEventKind};
use hyperion::{Node, NodeConfig, Process, ProcessId};

/// Starts an agent that forwards every `SlowPoll` event to `to`.
fn forward_slow_polls(p: &Process, to: ProcessId) {
    let sinks = vec![mx_sink_events(
        &[MxEventKind::SlowPoll],
        move |agent: &mut MxAgent<'_, ()>, event: &MxEvent| {
            agent.process().send(to, event.clone());
            mx_ready()
        },
    )];
    mx_agent(p, "slow-polls".into(), (), sinks).expect("agent starts");
}

fn node_with_poll_warning(bound: Duration) -> Node {
    Node::with_config(NodeConfig {
        poll_warning: Some(bound),
        ..NodeConfig::default()
    })
    .expect("node starts")
}

#[test]
fn a_process_that_busy_loops_past_the_bound_is_reported_with_its_pid() {
    let bound = Duration::from_millis(20);
    let node = node_with_poll_warning(bound);
    let (busy, event) = node
        .run(move |p| async move {
            forward_slow_polls(&p, p.self_pid());
            let busy = p.spawn_local(move |_| async move {
                // Ten bounds without an await: the node's thread is held throughout.
                let start = Instant::now(); // real-world only
                while start.elapsed() < bound * 10 {
                    std::hint::spin_loop();
                }
            });
            // A generous deadline: the event comes once the busy poll has ended.
            let event: Option<MxEvent> = p.expect_timeout(Duration::from_secs(60)).await;
            (busy, event)
        })
        .expect("the program ends");
    match event {
        Some(MxEvent::SlowPoll {
            pid,
            held,
            bound: reported_bound,
        }) => {
            assert_eq!(pid, busy, "the event names the busy process");
            assert_eq!(reported_bound, bound);
            assert!(held >= bound, "held {held:?} is past the bound");
        }
        other => panic!("expected a SlowPoll event, got {other:?}"),
    }
}

#[test]
fn a_process_that_awaits_is_not_reported() {
    // A bound far above anything an awaiting program holds the thread for, even on a
    // loaded machine.
    let node = node_with_poll_warning(Duration::from_secs(5));
    let event = node
        .run(|p| async move {
            forward_slow_polls(&p, p.self_pid());
            let sleeper = p.spawn_local(|s| async move {
                s.sleep(Duration::from_millis(200)).await;
            });
            let watch = p.monitor(sleeper);
            let _: hyperion::ProcessMonitorNotification = p.expect().await;
            let _ = watch;
            p.expect_timeout::<MxEvent>(Duration::ZERO).await
        })
        .expect("the program ends");
    assert_eq!(event, None);
}
