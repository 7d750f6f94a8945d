//! Cloud Haskell's registry rules for names held by processes of other nodes, in the
//! simulator over many seeds: `nsend` reaches a remote holder, and a name is released
//! (with an `Unregistered` event) when its remote holder dies or its node is lost.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::mx::{mx_agent, mx_ready, mx_sink, MxAgent, MxEvent};
use hyperion::{LocalNode, Process, ProcessId};
use hyperion_sim::{seeds, Fault, Faults, Sim};

type Log = Rc<RefCell<Vec<u64>>>;
type EventLog = Rc<RefCell<Vec<MxEvent>>>;

/// Receives numbers and records them, forever.
async fn collect_into(p: Process, log: Log) {
    loop {
        let n: u64 = p.expect().await;
        log.borrow_mut().push(n);
    }
}

fn collector(node: &LocalNode) -> (ProcessId, Log) {
    let log: Log = Rc::default();
    let sink = log.clone();
    (node.spawn(move |p| collect_into(p, sink)), log)
}

/// Waits for one `()` and ends normally.
async fn until_told(p: Process) {
    p.expect::<()>().await;
}

/// Sleeps forever.
async fn idle(p: Process) {
    loop {
        p.sleep(Duration::from_secs(3600)).await;
    }
}

/// An agent on `node` that records every mx event there.
fn record_events(node: &LocalNode) -> EventLog {
    let log: EventLog = Rc::default();
    let into = log.clone();
    let sinks = vec![mx_sink(move |_: &mut MxAgent<'_, ()>, event: &MxEvent| {
        into.borrow_mut().push(event.clone());
        mx_ready()
    })];
    mx_agent(node, "recorder".into(), (), sinks).unwrap();
    log
}

fn unregistered(events: &EventLog, holder: ProcessId, name: &str) -> usize {
    events
        .borrow()
        .iter()
        .filter(|e| {
            **e == MxEvent::Unregistered {
                pid: holder,
                name: name.to_string(),
            }
        })
        .count()
}

#[test]
fn nsend_to_a_name_held_by_a_remote_process_is_delivered() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let (target, log) = collector(&b);
        sim.run_until(&a, move |p| async move {
            p.register("ping", target).unwrap();
            for n in 1..=3u64 {
                p.nsend("ping", n);
            }
            p.sleep(Duration::from_secs(1)).await;
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(*log.borrow(), vec![1, 2, 3], "seed {seed}");
        assert!(
            sim.violations().is_empty(),
            "seed {seed}: {:?}",
            sim.violations()
        );
    }
}

#[test]
fn nsend_remote_reaches_a_third_nodes_process_through_a_name() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let c = sim.add_node();
        let (target, log) = collector(&c);
        b.register("ping", target).unwrap();
        let b_id = b.id();
        let found = sim
            .run_until(&a, move |p| async move {
                let found = p.whereis_remote(b_id, "ping").await;
                p.nsend_remote(b_id, "ping", 7u64);
                p.sleep(Duration::from_secs(1)).await;
                found
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(found, Some(target), "seed {seed}");
        assert_eq!(*log.borrow(), vec![7], "seed {seed}");
    }
}

#[test]
fn a_name_held_by_a_remote_process_is_released_when_it_dies() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let events = record_events(&a);
        let names_before = a.resources().names;
        let holder = b.spawn(until_told);
        let (kept, found) = sim
            .run_until(&a, move |p| async move {
                p.register("worker", holder).unwrap();
                p.sleep(Duration::from_millis(10)).await;
                let kept = p.whereis("worker");
                p.send(holder, ());
                p.sleep(Duration::from_secs(1)).await;
                (kept, p.whereis("worker"))
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(kept, Some(holder), "seed {seed}");
        assert_eq!(found, None, "seed {seed}");
        assert_eq!(unregistered(&events, holder, "worker"), 1, "seed {seed}");
        assert_eq!(a.resources().names, names_before, "seed {seed}");
    }
}

#[test]
fn a_name_given_to_a_remote_process_already_dead_is_released() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let holder = b.spawn(|_| async {});
        sim.run_for(Duration::from_millis(10));
        let found = sim
            .run_until(&a, move |p| async move {
                p.register("ghost", holder).unwrap();
                p.sleep(Duration::from_secs(1)).await;
                p.whereis("ghost")
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(found, None, "seed {seed}");
    }
}

#[test]
fn names_of_a_lost_nodes_processes_are_removed_on_disconnect() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let events = record_events(&a);
        let first = b.spawn(idle);
        let second = b.spawn(idle);
        let fault = match seed % 3 {
            0 => Fault::Crash(1),
            1 => Fault::Break(0, 1),
            _ => Fault::Partition {
                from: 0,
                to: 1,
                both_ways: true,
            },
        };
        sim.schedule(Duration::from_secs(1), fault.clone());
        let found = sim
            .run_until(&a, move |p| async move {
                p.register("first", first).unwrap();
                p.register("second", second).unwrap();
                p.register("again", first).unwrap();
                p.sleep(Duration::from_secs(30)).await;
                (p.whereis("first"), p.whereis("second"), p.whereis("again"))
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(found, (None, None, None), "seed {seed}, {fault:?}");
        assert_eq!(unregistered(&events, first, "first"), 1, "seed {seed}");
        assert_eq!(unregistered(&events, second, "second"), 1, "seed {seed}");
        assert_eq!(unregistered(&events, first, "again"), 1, "seed {seed}");
    }
}

/// Under swarm faults (breaks, partitions, crashes, slow nodes, drift), a name held for
/// a process of another node is gone once that process died, whatever else happened:
/// its death is reported, or its node is lost and its names go with it.
#[test]
fn names_of_dead_remote_holders_are_released_under_swarm_faults() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::swarm(seed));
        let a = sim.add_node();
        let b = sim.add_node();
        let holder = b.spawn(|p| async move {
            p.sleep(Duration::from_secs(2)).await;
        });
        let found = sim
            .run_until(&a, move |p| async move {
                p.register("short-lived", holder).unwrap();
                p.sleep(Duration::from_secs(60)).await;
                p.whereis("short-lived")
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(found, None, "seed {seed}");
        assert_eq!(a.resources().names, 0, "seed {seed}");
    }
}

#[test]
fn register_remote_and_unregister_remote_answer_success_or_why_not() {
    use hyperion::RegistryError;
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let holder = b.spawn(idle);
        let other = b.spawn(idle);
        let dead = b.spawn(|_| async {});
        sim.run_for(Duration::from_millis(10));
        let b_id = b.id();
        sim.run_until(&a, move |p| async move {
            assert_eq!(p.register_remote(b_id, "x", holder).await, Ok(()));
            assert_eq!(p.whereis_remote(b_id, "x").await, Some(holder));
            assert_eq!(
                p.register_remote(b_id, "x", other).await,
                Err(RegistryError::AlreadyRegistered {
                    name: "x".into(),
                    holder
                })
            );
            assert_eq!(
                p.register_remote(b_id, "y", dead).await,
                Err(RegistryError::ProcessNotAlive(dead))
            );
            assert_eq!(p.reregister_remote(b_id, "x", other).await, Ok(()));
            assert_eq!(p.whereis_remote(b_id, "x").await, Some(other));
            assert_eq!(p.unregister_remote(b_id, "x").await, Ok(()));
            assert_eq!(
                p.unregister_remote(b_id, "x").await,
                Err(RegistryError::NotRegistered("x".into()))
            );
            // A name on b for a process of a: b's registry forwards to it.
            assert_eq!(p.register_remote(b_id, "back", p.self_pid()).await, Ok(()));
            p.nsend_remote(b_id, "back", 5u64);
            assert_eq!(p.expect::<u64>().await, 5);
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(
            sim.violations().is_empty(),
            "seed {seed}: {:?}",
            sim.violations()
        );
    }
}

#[test]
fn register_remote_to_a_lost_node_reports_the_disconnection() {
    use hyperion::RegistryError;
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let holder = b.spawn(idle);
        sim.schedule(Duration::from_millis(1), Fault::Crash(1));
        let b_id = b.id();
        let got = sim
            .run_until(&a, move |p| async move {
                p.sleep(Duration::from_millis(10)).await;
                p.register_remote(b_id, "x", holder).await
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got, Err(RegistryError::Disconnected(b_id)), "seed {seed}");
    }
}

#[test]
fn reregister_moves_a_name_and_refuses_what_register_refuses() {
    use hyperion::RegistryError;
    for seed in seeds(100) {
        let got = Sim::run_alone(seed, |p| async move {
            let first = p.spawn_local(idle);
            let second = p.spawn_local(idle);
            let dead = p.spawn_local(|_| async {});
            p.sleep(Duration::from_millis(1)).await;
            p.register("n", first).unwrap();
            let moved = p.reregister("n", second);
            let holder = p.whereis("n");
            let nobody = p.reregister("none", second);
            let to_dead = p.reregister("n", dead);
            p.kill(second, "done");
            p.sleep(Duration::from_millis(1)).await;
            let after_death = p.whereis("n");
            (moved, holder == Some(second), nobody, to_dead, after_death)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got.0, Ok(()), "seed {seed}");
        assert!(got.1, "seed {seed}");
        assert_eq!(got.2, Err(RegistryError::NotRegistered("none".into())));
        assert!(
            matches!(got.3, Err(RegistryError::ProcessNotAlive(_))),
            "{:?}",
            got.3
        );
        assert_eq!(got.4, None, "the name followed its new holder to its death");
    }
}
