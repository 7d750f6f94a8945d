//! System events (issue 5): every `MxEvent` kind is published when its cause happens,
//! on the node where it happens, locally and across two simulated nodes. Each test
//! records the events with an agent and checks that the expected ones appear, with
//! their fields, in causal order.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use hyperion::mx::{
    mx_agent, mx_log, mx_notify, mx_ready, mx_receive, mx_sink, mx_sink_events, mx_trace_message,
    MxAgent, MxEvent, MxEventKind,
};
use hyperion::{
    Closure, DiedReason, LocalNode, NodeMonitorNotification, Process, ProcessId,
    ProcessMonitorNotification, RemoteTable,
};
use hyperion_sim::{Fault, Faults, NodeOptions, Sim};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Ping(u32);

/// On the bus: the recorder answers `Settled` once it has logged what came before.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Marker(ProcessId);

/// In the recorder's mailbox: answered with `Settled` (the recorder takes mailbox
/// input when its bus is empty, so everything published before has been logged).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Flush(ProcessId);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Settled;

type EventLog = Rc<RefCell<Vec<MxEvent>>>;

/// Starts an agent registered as "recorder" that logs every event.
fn start_recorder(node: &LocalNode) -> EventLog {
    let log: EventLog = Rc::default();
    let into = log.clone();
    let sinks = vec![
        mx_sink(move |_: &mut MxAgent<'_, ()>, event: &MxEvent| {
            into.borrow_mut().push(event.clone());
            mx_ready()
        }),
        mx_sink(|agent: &mut MxAgent<'_, ()>, marker: &Marker| {
            agent.process().send(marker.0, Settled);
            mx_ready()
        }),
        mx_sink(|agent: &mut MxAgent<'_, ()>, flush: &Flush| {
            agent.process().send(flush.0, Settled);
            mx_ready()
        }),
    ];
    mx_agent(node, "recorder".into(), (), sinks).unwrap();
    log
}

/// Waits until this node's recorder has logged every event published so far.
async fn settle(p: &Process) {
    mx_notify(p, Marker(p.self_pid()));
    let Settled = p.expect().await;
}

/// Checks that `expected` occur in `log` in this order (other events may come between).
fn assert_in_order(log: &[MxEvent], expected: &[&dyn Fn(&MxEvent) -> bool], what: &[&str]) {
    let mut position = 0;
    for (check, name) in expected.iter().zip(what) {
        match log[position..].iter().position(check) {
            Some(found) => position += found + 1,
            None => panic!(
                "{name} not found after position {position} in:\n{}",
                log.iter()
                    .map(|e| format!("  {e:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }
}

fn kinds(log: &[MxEvent]) -> BTreeSet<MxEventKind> {
    log.iter().map(MxEvent::kind).collect()
}

#[test]
fn every_local_event_kind_is_published_when_its_cause_happens() {
    let mut sim = Sim::with_faults(1, Faults::none());
    let node = sim.add_node();
    let log = start_recorder(&node);
    let (me, child) = sim
        .run_until(&node, |p| async move {
            let child = p.spawn_local(|c| async move {
                let Ping(_) = c.expect().await;
            });
            p.register("svc", child).unwrap();
            p.unregister("svc").unwrap();
            p.register("held", child).unwrap(); // freed when the child dies
            let watch = p.monitor(child);
            p.send(child, Ping(1));
            let died: ProcessMonitorNotification = p.expect().await;
            assert_eq!(died.monitor_ref, watch);
            mx_log(&p, "a log line");
            mx_trace_message(&p, &Ping(7));
            settle(&p).await;
            (p.self_pid(), child)
        })
        .unwrap();
    let log = log.borrow();
    assert_in_order(
        &log,
        &[
            &|e| *e == MxEvent::Spawned(me),
            &|e| *e == MxEvent::Spawned(child),
            &|e| {
                *e == MxEvent::Registered {
                    pid: child,
                    name: "svc".into(),
                }
            },
            &|e| {
                *e == MxEvent::Unregistered {
                    pid: child,
                    name: "svc".into(),
                }
            },
            &|e| {
                *e == MxEvent::Registered {
                    pid: child,
                    name: "held".into(),
                }
            },
            &|e| matches!(e, MxEvent::Sent { to, from, message } if *to == child && *from == me && message.is::<Ping>()),
            &|e| matches!(e, MxEvent::Received { pid, message } if *pid == child && message.is::<Ping>()),
            &|e| {
                *e == MxEvent::ProcessDied {
                    pid: child,
                    reason: DiedReason::Normal,
                }
            },
            &|e| matches!(e, MxEvent::Received { pid, message } if *pid == me && message.is::<ProcessMonitorNotification>()),
            &|e| {
                *e == MxEvent::Unregistered {
                    pid: child,
                    name: "held".into(),
                }
            },
            &|e| *e == MxEvent::Log("a log line".into()),
            &|e| matches!(e, MxEvent::User(payload) if payload.decode::<Ping>() == Some(Ping(7))),
        ],
        &[
            "spawned program",
            "spawned child",
            "registered svc",
            "unregistered svc",
            "registered held",
            "sent",
            "received",
            "process died",
            "monitor notification received",
            "unregistered at death",
            "log",
            "user",
        ],
    );
    let local_kinds: BTreeSet<MxEventKind> = [
        MxEventKind::Spawned,
        MxEventKind::Registered,
        MxEventKind::Unregistered,
        MxEventKind::ProcessDied,
        MxEventKind::Sent,
        MxEventKind::Received,
        MxEventKind::User,
        MxEventKind::Log,
    ]
    .into();
    assert_eq!(kinds(&log), local_kinds, "no network event on a lone node");
}

#[test]
fn a_process_that_fails_is_reported_with_its_reason() {
    let mut sim = Sim::with_faults(2, Faults::none());
    let node = sim.add_node();
    let log = start_recorder(&node);
    let child = sim
        .run_until(&node, |p| async move {
            let child = p.spawn_local(|c| async move {
                c.sleep(Duration::from_secs(3600)).await;
            });
            let watch = p.monitor(child);
            p.kill(child, "enough");
            let died: ProcessMonitorNotification = p.expect().await;
            assert_eq!(died.monitor_ref, watch);
            settle(&p).await;
            child
        })
        .unwrap();
    let died: Vec<DiedReason> = log
        .borrow()
        .iter()
        .filter_map(|e| match e {
            MxEvent::ProcessDied { pid, reason } if *pid == child => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(died.len(), 1, "{died:?}");
    assert!(matches!(&died[0], DiedReason::Exception(text) if text.contains("enough")));
}

#[test]
fn no_event_is_published_before_an_agent_starts_and_publishing_without_agents_is_silent() {
    let mut sim = Sim::with_faults(3, Faults::none());
    let node = sim.add_node();
    // Events with no agent running go nowhere (and cost nothing to drop).
    sim.run_until(&node, |p| async move {
        mx_log(&p, "before");
        p.send(p.self_pid(), Ping(0));
        let Ping(_) = p.expect().await;
    })
    .unwrap();
    let log = start_recorder(&node);
    sim.run_until(&node, |p| async move {
        mx_log(&p, "after");
        settle(&p).await;
    })
    .unwrap();
    let log = log.borrow();
    assert!(!log.contains(&MxEvent::Log("before".into())));
    assert!(log.contains(&MxEvent::Log("after".into())));
}

/// Two nodes: `a` runs the program, `b` an echo server and a closure `a` spawns.
fn two_nodes(seed: u64) -> (Sim, LocalNode, LocalNode, EventLog, EventLog, ProcessId) {
    let mut sim = Sim::with_faults(seed, Faults::none());
    let mut table = RemoteTable::new();
    table.register("idle", |p: Process, (): ()| async move {
        p.sleep(Duration::from_secs(3600)).await;
    });
    let a = sim.add_node();
    let b = sim.add_node_with(NodeOptions::default().remote_table(table));
    let log_a = start_recorder(&a);
    let log_b = start_recorder(&b);
    let echo = b.spawn(|e| async move {
        loop {
            let (from, n): (ProcessId, u64) = e.expect().await;
            e.reconnect(from); // answer even after a break
            e.send(from, n + 1);
        }
        #[allow(unreachable_code)]
        ()
    });
    (sim, a, b, log_a, log_b, echo)
}

#[test]
fn network_events_are_published_on_both_nodes() {
    let (mut sim, a, b, log_a, log_b, echo) = two_nodes(4);
    let b_id = b.id();
    let a_id = a.id();
    let (me, spawned) = sim
        .run_until(&a, move |p| async move {
            p.send(echo, (p.self_pid(), 41u64));
            let reply: u64 = p.expect().await;
            assert_eq!(reply, 42);
            let spawned = p
                .spawn(b_id, Closure::new("idle", &()).unwrap())
                .await
                .unwrap();
            p.nsend_remote(b_id, "recorder", Flush(p.self_pid()));
            let Settled = p.expect().await;
            settle(&p).await;
            (p.self_pid(), spawned)
        })
        .unwrap();

    // Node b: the connection, the remote message in, the reply out, the remote spawn.
    let connection_b = {
        let log = log_b.borrow();
        assert_in_order(
            &log,
            &[
                &|e| matches!(e, MxEvent::Connected { node, .. } if *node == a_id),
                &|e| matches!(e, MxEvent::Received { pid, message } if *pid == echo && message.type_name().is_none() && message.is::<(ProcessId, u64)>()),
                &|e| matches!(e, MxEvent::Sent { to, from, message } if *to == me && *from == echo && message.is::<u64>()),
                &|e| *e == MxEvent::Spawned(spawned),
            ],
            &[
                "connected",
                "remote message received",
                "reply sent",
                "remote spawn",
            ],
        );
        log.iter()
            .find_map(|e| match e {
                MxEvent::Connected { connection, .. } => Some(*connection),
                _ => None,
            })
            .unwrap()
    };

    // Node a: the connection, the send, the reply received from the network.
    let connection_a = {
        let log = log_a.borrow();
        assert_in_order(
            &log,
            &[
                &|e| matches!(e, MxEvent::Sent { to, from, message } if *to == echo && *from == me && message.is::<(ProcessId, u64)>()),
                &|e| matches!(e, MxEvent::Connected { node, .. } if *node == b_id),
                // A primitive from the network is decoded on arrival: named.
                &|e| matches!(e, MxEvent::Received { pid, message } if *pid == me && message.type_name() == Some("u64") && message.is::<u64>()),
            ],
            &["sent", "connected", "remote reply received"],
        );
        log.iter()
            .find_map(|e| match e {
                MxEvent::Connected { connection, .. } => Some(*connection),
                _ => None,
            })
            .unwrap()
    };
    let _ = connection_b;

    // b crashes: a notices by heartbeat, reports the connection gone and the node dead.
    sim.apply(Fault::Crash(1));
    sim.run_until(&a, move |p| async move {
        let watch = p.monitor_node(b_id);
        let lost: NodeMonitorNotification = p.expect().await;
        assert_eq!(lost.monitor_ref, watch);
        settle(&p).await;
    })
    .unwrap();
    let log = log_a.borrow();
    assert_in_order(
        &log,
        &[
            &|e| {
                *e == MxEvent::Disconnected {
                    connection: connection_a,
                    node: b_id,
                }
            },
            &|e| {
                *e == MxEvent::NodeDied {
                    node: b_id,
                    reason: DiedReason::Disconnect,
                }
            },
        ],
        &["disconnected", "node died"],
    );
    let lost = log
        .iter()
        .filter(|e| matches!(e, MxEvent::NodeDied { .. } | MxEvent::Disconnected { .. }))
        .count();
    assert_eq!(lost, 2, "one loss, reported once");
    let all: BTreeSet<MxEventKind> = kinds(&log)
        .union(&kinds(&log_b.borrow()))
        .copied()
        .collect();
    let network: BTreeSet<MxEventKind> = [
        MxEventKind::Spawned,
        MxEventKind::Registered,
        MxEventKind::Sent,
        MxEventKind::Received,
        MxEventKind::Connected,
        MxEventKind::Disconnected,
        MxEventKind::NodeDied,
    ]
    .into();
    assert!(all.is_superset(&network), "{all:?}");
}

#[test]
fn a_broken_connection_is_reported_on_both_sides_and_a_new_one_gets_a_new_number() {
    let (mut sim, a, b, log_a, log_b, echo) = two_nodes(5);
    let b_id = b.id();
    let a_id = a.id();
    sim.schedule(Duration::from_secs(2), Fault::Break(0, 1));
    sim.run_until(&a, move |p| async move {
        p.send(echo, (p.self_pid(), 1u64));
        let _: u64 = p.expect().await;
        let watch = p.monitor_node(b_id);
        let lost: NodeMonitorNotification = p.expect().await; // the break, at 2 s
        assert_eq!(lost.monitor_ref, watch);
        p.reconnect(echo);
        p.send(echo, (p.self_pid(), 2u64));
        let _: u64 = p.expect().await;
        p.nsend_remote(b_id, "recorder", Flush(p.self_pid()));
        let Settled = p.expect().await;
        settle(&p).await;
    })
    .unwrap();
    for (log, peer) in [(&log_a, b_id), (&log_b, a_id)] {
        let log = log.borrow();
        let connections: Vec<&MxEvent> = log
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    MxEvent::Connected { .. }
                        | MxEvent::Disconnected { .. }
                        | MxEvent::NodeDied { .. }
                )
            })
            .collect();
        let first = match connections.first() {
            Some(MxEvent::Connected { connection, .. }) => *connection,
            other => panic!("expected a connection first, got {other:?}"),
        };
        assert_eq!(
            connections,
            vec![
                &MxEvent::Connected {
                    connection: first,
                    node: peer
                },
                &MxEvent::Disconnected {
                    connection: first,
                    node: peer
                },
                &MxEvent::NodeDied {
                    node: peer,
                    reason: DiedReason::Disconnect
                },
                &MxEvent::Connected {
                    connection: first + 1,
                    node: peer
                },
            ]
        );
    }
}

#[test]
fn named_sends_and_channel_traffic_are_published() {
    let mut sim = Sim::with_faults(6, Faults::none());
    let node = sim.add_node();
    let log = start_recorder(&node);
    let (me, server, port) = sim
        .run_until(&node, |p| async move {
            let me = p.self_pid();
            let (tx, rx) = p.new_chan::<u32>();
            let server = p.spawn_local(move |s| async move {
                let Ping(n) = s.expect().await;
                s.send_chan(tx, n);
            });
            p.register("server", server).unwrap();
            p.nsend("server", Ping(5));
            assert_eq!(p.receive_chan(&rx).await, 5);
            settle(&p).await;
            (me, server, tx.id())
        })
        .unwrap();
    let log = log.borrow();
    assert_in_order(
        &log,
        &[
            &|e| matches!(e, MxEvent::SentToName { name, from, message } if name == "server" && *from == me && message.is::<Ping>()),
            &|e| matches!(e, MxEvent::Received { pid, message } if *pid == server && message.is::<Ping>()),
            &|e| matches!(e, MxEvent::SentToPort { from, port: p, message } if *from == server && *p == port && message.is::<u32>()),
            &|e| matches!(e, MxEvent::ReceivedPort { port: p, message } if *p == port && message.is::<u32>()),
        ],
        &[
            "sent to name",
            "received",
            "sent to port",
            "received on port",
        ],
    );
    assert!(
        !log.iter()
            .any(|e| matches!(e, MxEvent::Sent { to, .. } if *to == server)),
        "a named send is reported as such, not as a Sent"
    );
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct GotIt(u32);

#[test]
fn remote_named_sends_and_channel_traffic_are_published_on_each_side() {
    let (mut sim, a, b, log_a, log_b, _echo) = two_nodes(7);
    let (a_id, b_id) = (a.id(), b.id());
    // A process of b opens a channel and hands its send port out; it tells a's
    // program (by name) what arrives on it.
    let port: Rc<RefCell<Option<hyperion::SendPort<u32>>>> = Rc::default();
    let slot = port.clone();
    b.spawn(move |o| async move {
        let (tx, rx) = o.new_chan::<u32>();
        *slot.borrow_mut() = Some(tx);
        let n = o.receive_chan(&rx).await;
        o.nsend_remote(a_id, "program", GotIt(n));
    });
    sim.run_until(&b, |_| async {}).unwrap(); // the owner has run once
    let tx = port.borrow().expect("the owner opened its channel");
    let me = sim
        .run_until(&a, move |p| async move {
            p.register("program", p.self_pid()).unwrap();
            p.send_chan(tx, 9);
            let GotIt(n) = p.expect().await;
            assert_eq!(n, 9);
            p.nsend_remote(b_id, "recorder", Flush(p.self_pid()));
            let Settled = p.expect().await;
            settle(&p).await;
            p.self_pid()
        })
        .unwrap();
    let owner = tx.id().owner;
    assert_in_order(
        &log_a.borrow(),
        &[
            &|e| matches!(e, MxEvent::SentToPort { from, port, message } if *from == me && *port == tx.id() && message.is::<u32>()),
            &|e| matches!(e, MxEvent::Received { pid, message } if *pid == me && message.is::<GotIt>()),
            &|e| matches!(e, MxEvent::SentToName { name, from, .. } if name == "recorder" && *from == me),
        ],
        &[
            "channel send to b",
            "named message from b received",
            "named send to b",
        ],
    );
    assert_in_order(
        &log_b.borrow(),
        &[
            &|e| matches!(e, MxEvent::ReceivedPort { port, message } if *port == tx.id() && message.type_name().is_none() && message.is::<u32>()),
            &|e| matches!(e, MxEvent::SentToName { name, from, message } if name == "program" && *from == owner && message.is::<GotIt>()),
        ],
        &["channel message from the network", "named send to a"],
    );
}

/// A recorder whose only sink takes the given kinds.
fn start_filtered_recorder(node: &LocalNode, id: &str, kinds: &[MxEventKind]) -> EventLog {
    let log: EventLog = Rc::default();
    let into = log.clone();
    let sinks = vec![mx_sink_events(
        kinds,
        move |_: &mut MxAgent<'_, ()>, event: &MxEvent| {
            into.borrow_mut().push(event.clone());
            mx_ready()
        },
    )];
    mx_agent(node, id.into(), (), sinks).unwrap();
    log
}

#[test]
fn an_agent_receives_only_the_event_kinds_its_sinks_take() {
    let mut sim = Sim::with_faults(8, Faults::none());
    let node = sim.add_node();
    let all = start_recorder(&node);
    let sent = start_filtered_recorder(&node, "sent", &[MxEventKind::Sent]);
    let received = start_filtered_recorder(&node, "received", &[MxEventKind::Received]);
    sim.run_until(&node, |p| async move {
        let child = p.spawn_local(|c| async move {
            for _ in 0..3 {
                let Ping(_) = c.expect().await;
            }
        });
        for n in 0..3 {
            p.send(child, Ping(n));
        }
        settle(&p).await;
    })
    .unwrap();
    // Everything published before the marker has reached every agent: the queues of
    // the filtered agents hold nothing else. Let them drain.
    sim.run_for(Duration::from_secs(1));
    let of_kind = |log: &EventLog, kind: MxEventKind| -> Vec<MxEvent> {
        log.borrow()
            .iter()
            .filter(|e| e.kind() == kind)
            .cloned()
            .collect()
    };
    assert!(sent.borrow().iter().all(|e| e.kind() == MxEventKind::Sent));
    assert!(received
        .borrow()
        .iter()
        .all(|e| e.kind() == MxEventKind::Received));
    assert_eq!(*sent.borrow(), of_kind(&all, MxEventKind::Sent));
    assert_eq!(*received.borrow(), of_kind(&all, MxEventKind::Received));
    assert!(sent.borrow().len() >= 3);
}

#[test]
fn an_agent_taking_sent_only_is_told_of_every_local_send() {
    // No agent takes `Received` here: every local send is still published as a
    // `Sent`, once, with its type, a send to a process gone included.
    let mut sim = Sim::with_faults(10, Faults::none());
    let node = sim.add_node();
    let sent = start_filtered_recorder(&node, "sent", &[MxEventKind::Sent]);
    let (me, child, dead) = sim
        .run_until(&node, |p| async move {
            let child = p.spawn_local(|c| async move {
                let mut got = Vec::new();
                for _ in 0..5 {
                    got.push(c.expect::<u64>().await);
                }
                assert_eq!(got, [0, 1, 2, 3, 4], "delivered in order");
            });
            let dead = p.spawn_local(|_| async move {});
            p.monitor(child);
            for n in 0..5u64 {
                p.send(child, n);
            }
            let _: ProcessMonitorNotification = p.expect().await;
            p.send(dead, Ping(9)); // to a process gone: still a send
            (p.self_pid(), child, dead)
        })
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    let log = sent.borrow();
    let to_child: Vec<_> = log
        .iter()
        .filter(|e| matches!(e, MxEvent::Sent { from, to, message } if *from == me && *to == child && message.type_name() == Some("u64")))
        .collect();
    assert_eq!(to_child.len(), 5, "{log:?}");
    assert!(
        log.iter().any(|e| matches!(e, MxEvent::Sent { to, message, .. } if *to == dead && message.is::<Ping>())),
        "{log:?}"
    );
}

#[test]
fn a_local_send_gives_two_inputs_and_priority_applies_between_them() {
    // The Sent and Received events of one local message travel together on the bus;
    // they still reach the sinks as two inputs, and a sink that prefers the mailbox
    // after the Sent gets the mailbox's message before the Received.
    let mut sim = Sim::with_faults(9, Faults::none());
    let node = sim.add_node();
    let order: Rc<RefCell<Vec<String>>> = Rc::default();
    let (log_event, log_mail) = (order.clone(), order.clone());
    let sinks = vec![
        mx_sink_events(
            &[MxEventKind::Sent, MxEventKind::Received],
            move |_: &mut MxAgent<'_, ()>, event: &MxEvent| match event {
                MxEvent::Sent { message, .. } if message.is::<Ping>() => {
                    log_event.borrow_mut().push("sent".into());
                    mx_receive()
                }
                MxEvent::Received { message, .. } if message.is::<Ping>() => {
                    log_event.borrow_mut().push("received".into());
                    mx_ready()
                }
                _ => mx_ready(),
            },
        ),
        mx_sink(move |_: &mut MxAgent<'_, ()>, note: &String| {
            log_mail.borrow_mut().push(format!("mail {note}"));
            mx_ready()
        }),
    ];
    let agent = mx_agent(&node, "splitter".into(), (), sinks).unwrap();
    sim.run_until(&node, move |p| async move {
        p.send(agent, "first".to_string()); // in the mailbox before the Ping's events
        let sink = p.spawn_local(|s| async move {
            let Ping(_) = s.expect().await;
        });
        p.send(sink, Ping(1));
    })
    .unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(*order.borrow(), vec!["sent", "mail first", "received"]);
}

/// Two nodes with recorders exchanging messages under the seed's swarm faults; returns
/// both nodes' event logs.
fn exchange_under_faults(sim: &mut Sim) -> (Vec<MxEvent>, Vec<MxEvent>) {
    let a = sim.add_node();
    let b = sim.add_node();
    let (log_a, log_b) = (start_recorder(&a), start_recorder(&b));
    let peer = b.spawn(|p| async move {
        while let Some((from, n)) = p
            .expect_timeout::<(ProcessId, u32)>(Duration::from_secs(30))
            .await
        {
            p.reconnect(from);
            p.send(from, n);
        }
    });
    let _ = sim.run_until(&a, move |p| async move {
        for n in 0..20u32 {
            p.reconnect(peer);
            p.send(peer, (p.self_pid(), n));
            let _ = p.expect_timeout::<u32>(Duration::from_secs(1)).await;
        }
    });
    let logs = (log_a.borrow().clone(), log_b.borrow().clone());
    logs
}

#[test]
fn same_seed_same_events_and_same_trace_with_agents_running() {
    for seed in 0..10 {
        let first = exchange_under_faults(&mut Sim::new(seed));
        let second = exchange_under_faults(&mut Sim::new(seed));
        assert!(!first.0.is_empty(), "seed {seed}");
        assert_eq!(first, second, "seed {seed}: the recorded events differ");
        hyperion_sim::check_determinism(seed, |sim| {
            exchange_under_faults(sim);
            Ok(())
        })
        .unwrap_or_else(|divergence| panic!("{divergence}"));
    }
}
