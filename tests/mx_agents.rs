//! Management agents (issue 5): sinks in order, skip, priorities, local state, lifted
//! process actions, broadcast and notify, unique ids, the backlog limit, and a
//! finalizer that runs exactly once however an agent stops. In the simulator, where
//! every interleaving is reproducible from its seed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::mx::{
    mx_agent, mx_agent_with_finalize, mx_agents, mx_deactivate, mx_notify, mx_ready, mx_receive,
    mx_receive_chan, mx_sink, mx_sink_events, mx_skip, MxAction, MxAgent, MxAgentId, MxAgentStop,
    MxError, MxEvent, MxEventKind, MxSink, MX_AGENT_BACKLOG_MAX,
};
use hyperion::{
    DiedReason, LocalNode, Node, Process, ProcessId, ProcessMonitorNotification, Serializable,
};
use hyperion_sim::{Fault, Faults, Sim, SimError};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Note(u32);

/// Asks an agent for its local state, sent back to `0`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Report(ProcessId);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct BusNote(u32);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct MailNote(u32);

/// Handled with the given action (how the next input is chosen).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Trigger {
    Ready,
    PreferMailbox,
    PreferBus,
}

type Log = Vec<String>;

/// A sink answering [`Report`] with the agent's state.
fn report_sink<S: Serializable + Clone + 'static>() -> MxSink<S> {
    mx_sink(|agent: &mut MxAgent<'_, S>, report: &Report| {
        agent.process().send(report.0, agent.mx_get_local().clone());
        mx_ready()
    })
}

/// Panics; typed `()` so that a process body calling it has a normal outcome type.
fn fail(text: &str) {
    panic!("{text}")
}

fn push(agent: &mut MxAgent<'_, Log>, line: String) {
    agent.mx_update_local(|log| log.push(line));
}

async fn state_of<S: Serializable>(p: &Process, agent: ProcessId) -> S {
    p.send(agent, Report(p.self_pid()));
    p.expect::<S>().await
}

// ----- sinks -----

#[test]
fn skip_passes_the_input_to_the_next_sink() {
    let log = Sim::run_alone(1, |p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &Note| {
                push(agent, format!("first {}", note.0));
                mx_skip()
            }),
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &Note| {
                push(agent, format!("second {}", note.0));
                mx_ready()
            }),
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &Note| {
                push(agent, format!("third {}", note.0));
                mx_ready()
            }),
            report_sink(),
        ];
        let agent = mx_agent(&p, "skipper".into(), Log::new(), sinks).unwrap();
        mx_notify(&p, Note(1)); // from the bus
        p.send(agent, Note(2)); // from the mailbox: the same pipeline
        state_of::<Log>(&p, agent).await
    });
    assert_eq!(
        log.unwrap(),
        vec!["first 1", "second 1", "first 2", "second 2"]
    );
}

#[test]
fn an_input_no_sink_takes_is_dropped_and_the_agent_goes_on() {
    let log = Sim::run_alone(2, |p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &Note| {
                push(agent, format!("note {}", note.0));
                mx_ready()
            }),
            report_sink(),
        ];
        let agent = mx_agent(&p, "picky".into(), Log::new(), sinks).unwrap();
        p.send(agent, "not a note".to_string());
        mx_notify(&p, 7u64);
        p.send(agent, Note(3));
        state_of::<Log>(&p, agent).await
    });
    assert_eq!(log.unwrap(), vec!["note 3"]);
}

#[test]
fn event_sinks_take_events_from_the_bus_and_the_mailbox_by_kind_and_skip_to_the_next() {
    let log = Sim::run_alone(4, |p| async move {
        let sinks = vec![
            // Spawned events only; passes them on.
            mx_sink_events(
                &[MxEventKind::Spawned],
                |agent: &mut MxAgent<'_, Log>, _: &MxEvent| {
                    push(agent, "spawned only".into());
                    mx_skip()
                },
            ),
            // Every event: logs the two kinds this test causes on purpose.
            mx_sink(|agent: &mut MxAgent<'_, Log>, event: &MxEvent| {
                match event {
                    MxEvent::Spawned(_) => push(agent, "any: spawned".into()),
                    MxEvent::Log(text) => push(agent, format!("any: log {text}")),
                    _ => {}
                }
                mx_ready()
            }),
            report_sink(),
        ];
        let agent = mx_agent(&p, "events".into(), Log::new(), sinks).unwrap();
        // Nothing below yields before `state_of`: both are queued when the agent runs,
        // and the bus comes first.
        p.spawn_local(|_| async {}); // a Spawned event on the bus
        p.send(agent, MxEvent::Log("by mail".into())); // an event as a mailbox message
        state_of::<Log>(&p, agent).await
    });
    assert_eq!(
        log.unwrap(),
        vec!["spawned only", "any: spawned", "any: log by mail"]
    );
}

/// The order in which an agent takes its inputs after handling `trigger`, when its
/// mailbox holds `MailNote(1)` and its bus `BusNote(1)` (both queued before it runs).
fn order_after(trigger: Trigger, seed: u64) -> Log {
    Sim::run_alone(seed, move |p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, Log>, trigger: &Trigger| {
                push(agent, format!("{trigger:?}"));
                match trigger {
                    Trigger::Ready => mx_ready(),
                    Trigger::PreferMailbox => mx_receive(),
                    Trigger::PreferBus => mx_receive_chan(),
                }
            }),
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &BusNote| {
                push(agent, format!("bus {}", note.0));
                mx_ready()
            }),
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &MailNote| {
                push(agent, format!("mail {}", note.0));
                mx_ready()
            }),
            report_sink(),
        ];
        let agent = mx_agent(&p, "chooser".into(), Log::new(), sinks).unwrap();
        // Nothing below yields: the agent first runs with all of it queued.
        p.send(agent, MailNote(1));
        mx_notify(&p, trigger);
        mx_notify(&p, BusNote(1));
        state_of::<Log>(&p, agent).await
    })
    .unwrap()
}

#[test]
fn prioritising_the_mailbox_takes_the_next_input_from_the_mailbox() {
    for seed in 0..8 {
        assert_eq!(
            order_after(Trigger::PreferMailbox, seed),
            vec!["PreferMailbox", "mail 1", "bus 1"],
            "seed {seed}"
        );
    }
}

#[test]
fn prioritising_the_bus_takes_the_next_input_from_the_bus() {
    for seed in 0..8 {
        assert_eq!(
            order_after(Trigger::PreferBus, seed),
            vec!["PreferBus", "bus 1", "mail 1"],
            "seed {seed}"
        );
    }
}

#[test]
fn ready_takes_the_next_input_from_the_bus_first() {
    assert_eq!(
        order_after(Trigger::Ready, 3),
        vec!["Ready", "bus 1", "mail 1"]
    );
}

// ----- ids -----

#[test]
fn a_duplicate_agent_id_is_refused_with_a_typed_error() {
    let outcome = Sim::run_alone(4, |p| async move {
        let first = mx_agent(&p, "unique".into(), (), Vec::new()).unwrap();
        let second = mx_agent(&p, "unique".into(), (), Vec::new());
        (first, second, mx_agents(&p))
    });
    let (first, second, agents) = outcome.unwrap();
    assert_eq!(
        second,
        Err(MxError::DuplicateAgentId {
            id: MxAgentId::new("unique"),
            holder: first
        })
    );
    assert_eq!(agents, vec![(MxAgentId::new("unique"), first)]);
    let text = second.unwrap_err().to_string();
    assert!(
        text.contains("duplicate agent id") && text.contains("unique"),
        "{text}"
    );
}

#[test]
fn a_name_held_by_an_ordinary_process_is_refused_as_an_agent_id() {
    let outcome = Sim::run_alone(5, |p| async move {
        p.register("taken", p.self_pid()).unwrap();
        mx_agent(&p, "taken".into(), (), Vec::new())
    });
    assert!(matches!(
        outcome.unwrap(),
        Err(MxError::DuplicateAgentId { .. })
    ));
}

#[test]
fn the_id_of_a_stopped_agent_can_be_taken_again() {
    let outcome = Sim::run_alone(6, |p| async move {
        let stop = || {
            vec![mx_sink(|_: &mut MxAgent<'_, ()>, _: &Note| {
                mx_deactivate("done")
            })]
        };
        let first = mx_agent(&p, "reused".into(), (), stop()).unwrap();
        let watch = p.monitor(first);
        p.send(first, Note(0));
        let died: ProcessMonitorNotification = p.expect().await;
        assert_eq!(died.monitor_ref, watch);
        let second = mx_agent(&p, "reused".into(), (), stop()).unwrap();
        (first, second, p.whereis("reused"))
    });
    let (first, second, holder) = outcome.unwrap();
    assert_ne!(first, second);
    assert_eq!(holder, Some(second));
}

#[test]
fn an_agent_is_registered_under_its_id_and_reachable_by_name() {
    let log = Sim::run_alone(7, |p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, Log>, note: &Note| {
                push(agent, format!("note {}", note.0));
                mx_ready()
            }),
            report_sink(),
        ];
        mx_agent(&p, "named".into(), Log::new(), sinks).unwrap();
        p.nsend("named", Note(9));
        p.nsend("named", Report(p.self_pid()));
        p.expect::<Log>().await
    });
    assert_eq!(log.unwrap(), vec!["note 9"]);
}

#[test]
fn starting_an_agent_on_a_stopped_node_is_an_error() {
    let mut sim = Sim::with_faults(8, Faults::none());
    let node = sim.add_node();
    node.shutdown();
    assert_eq!(
        mx_agent(&node, "late".into(), (), Vec::new()),
        Err(MxError::NodeStopped)
    );
}

// ----- state, lift, broadcast, notify -----

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Change {
    Set(u64),
    Add(u64),
}

#[test]
fn local_state_is_read_set_and_updated_by_sinks() {
    let value = Sim::run_alone(9, |p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, u64>, change: &Change| {
                match change {
                    Change::Set(n) => agent.mx_set_local(*n),
                    Change::Add(n) => {
                        let before = *agent.mx_get_local();
                        let after = agent.mx_update_local(|s| {
                            *s += n;
                            *s
                        });
                        assert_eq!(after, before + n);
                    }
                }
                mx_ready()
            }),
            report_sink(),
        ];
        let agent = mx_agent(&p, "stateful".into(), 1u64, sinks).unwrap();
        p.send(agent, Change::Add(4));
        p.send(agent, Change::Set(10));
        p.send(agent, Change::Add(5));
        state_of::<u64>(&p, agent).await
    });
    assert_eq!(value, Ok(15));
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Step {
    Slow(ProcessId),
    Fast(ProcessId),
}

#[test]
fn a_lifted_action_that_waits_finishes_before_the_next_input() {
    let replies = Sim::run_alone(10, |p| async move {
        let sinks = vec![mx_sink(|agent: &mut MxAgent<'_, ()>, step: &Step| {
            match *step {
                Step::Slow(to) => agent.lift_mx_async(move |p| async move {
                    p.sleep(Duration::from_secs(5)).await;
                    p.send(to, "slow".to_string());
                }),
                Step::Fast(to) => agent.lift_mx(|p| p.send(to, "fast".to_string())),
            }
            mx_ready()
        })];
        let agent = mx_agent(&p, "lifter".into(), (), sinks).unwrap();
        p.send(agent, Step::Slow(p.self_pid()));
        p.send(agent, Step::Fast(p.self_pid()));
        let first: String = p.expect().await;
        let second: String = p.expect().await;
        (first, second, p.now())
    });
    let (first, second, _) = replies.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("slow", "fast"));
}

#[test]
fn a_sink_acts_through_the_agents_process() {
    let outcome = Sim::run_alone(11, |p| async move {
        let sinks = vec![mx_sink(|agent: &mut MxAgent<'_, ()>, asker: &ProcessId| {
            let asker = *asker;
            let child = agent.process().spawn_local(move |c| async move {
                c.send(asker, c.self_pid());
            });
            agent.process().register("agent-child", child).unwrap();
            mx_ready()
        })];
        let agent = mx_agent(&p, "spawner".into(), (), sinks).unwrap();
        p.send(agent, p.self_pid());
        let child: ProcessId = p.expect().await;
        (agent, child)
    });
    let (agent, child) = outcome.unwrap();
    assert_ne!(agent, child);
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Shout(ProcessId);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Heard(String, ProcessId);

/// Tells the process named in what it hears that agent `name` heard it.
fn listener(name: &'static str) -> Vec<MxSink<()>> {
    vec![mx_sink(
        move |agent: &mut MxAgent<'_, ()>, heard: &Heard| {
            agent
                .process()
                .send(heard.1, Heard(format!("{name} heard {}", heard.0), heard.1));
            mx_ready()
        },
    )]
}

#[test]
fn a_broadcast_reaches_every_agent_including_the_sender() {
    let mut heard = Sim::run_alone(12, |p| async move {
        let mut sinks = listener("a");
        sinks.insert(
            0,
            mx_sink(|agent: &mut MxAgent<'_, ()>, shout: &Shout| {
                agent.mx_broadcast(Heard("a shout".into(), shout.0));
                mx_ready()
            }),
        );
        let a = mx_agent(&p, "a".into(), (), sinks).unwrap();
        mx_agent(&p, "b".into(), (), listener("b")).unwrap();
        mx_agent(&p, "c".into(), (), listener("c")).unwrap();
        p.send(a, Shout(p.self_pid()));
        let mut heard = Vec::new();
        for _ in 0..3 {
            heard.push(p.expect::<Heard>().await.0);
        }
        heard
    })
    .unwrap();
    heard.sort();
    assert_eq!(
        heard,
        vec!["a heard a shout", "b heard a shout", "c heard a shout"]
    );
}

#[test]
fn any_process_notifies_every_agent() {
    let mut heard = Sim::run_alone(13, |p| async move {
        for name in ["x", "y"] {
            mx_agent(&p, name.into(), (), listener(name)).unwrap();
        }
        let me = p.self_pid();
        // An ordinary process, not an agent, notifies.
        p.spawn_local(move |q| async move {
            mx_notify(&q, Heard("a notification".into(), me));
        });
        vec![p.expect::<Heard>().await.0, p.expect::<Heard>().await.0]
    })
    .unwrap();
    heard.sort();
    assert_eq!(
        heard,
        vec!["x heard a notification", "y heard a notification"]
    );
}

// ----- the backlog limit -----

/// Makes the agent busy for a while, after telling `0` it is about to be.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Hold(ProcessId);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Tick;

#[test]
fn a_full_agent_queue_drops_new_events_and_counts_them() {
    let (ticks, dropped) = Sim::run_alone(14, |p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, (u64, u64)>, hold: &Hold| {
                agent.process().send(hold.0, "busy".to_string());
                // Busy for a while: events pile up meanwhile.
                agent.lift_mx_async(|p| async move { p.sleep(Duration::from_secs(10)).await });
                mx_ready()
            }),
            mx_sink(|agent: &mut MxAgent<'_, (u64, u64)>, _: &Tick| {
                agent.mx_update_local(|(ticks, _)| *ticks += 1);
                mx_ready()
            }),
            mx_sink(|agent: &mut MxAgent<'_, (u64, u64)>, report: &Report| {
                let dropped = agent.events_dropped();
                let ticks = agent.mx_get_local().0;
                agent.process().send(report.0, (ticks, dropped));
                mx_ready()
            }),
        ];
        let agent = mx_agent(&p, "slow".into(), (0u64, 0u64), sinks).unwrap();
        p.send(agent, Hold(p.self_pid()));
        let busy: String = p.expect().await;
        assert_eq!(busy, "busy");
        // The agent waits in its lifted sleep. It has no sink for system events, so
        // none are queued for it: fill its queue with ticks, and ten more.
        for _ in 0..MX_AGENT_BACKLOG_MAX + 10 {
            mx_notify(&p, Tick);
        }
        p.send(agent, Report(p.self_pid()));
        p.expect::<(u64, u64)>().await
    })
    .unwrap();
    assert_eq!(ticks, MX_AGENT_BACKLOG_MAX as u64);
    assert_eq!(dropped, 10);
}

// ----- the real world -----

#[test]
fn an_agent_runs_on_a_real_node_thread() {
    let node = Node::new().unwrap();
    let counted = node.run(|p| async move {
        let sinks = vec![
            mx_sink(|agent: &mut MxAgent<'_, u64>, note: &Note| {
                agent.mx_update_local(|n| *n += u64::from(note.0));
                mx_ready()
            }),
            report_sink(),
        ];
        let agent = mx_agent(&p, "real".into(), 0u64, sinks).unwrap();
        for n in 1..=10 {
            p.send(agent, Note(n));
        }
        state_of::<u64>(&p, agent).await
    });
    assert_eq!(counted, Ok(55));
}

// ----- the finalizer -----

/// Every way an agent can stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Deactivate,
    SinkPanics,
    LiftedActionPanics,
    Killed,
    ExitSignal,
    LinkedProcessFails,
    SinkShutsTheNodeDown,
    NodeShutdown,
    NodeCrash,
}

const CAUSES: [Cause; 9] = [
    Cause::Deactivate,
    Cause::SinkPanics,
    Cause::LiftedActionPanics,
    Cause::Killed,
    Cause::ExitSignal,
    Cause::LinkedProcessFails,
    Cause::SinkShutsTheNodeDown,
    Cause::NodeShutdown,
    Cause::NodeCrash,
];

/// What the subject agent is asked to do, besides counting work.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Order {
    Work,
    Deactivate,
    Panic,
    LiftPanic,
    LinkTo(ProcessId),
    ShutDownNode,
}

fn subject_sinks() -> Vec<MxSink<u64>> {
    vec![mx_sink(|agent: &mut MxAgent<'_, u64>, order: &Order| {
        match order {
            Order::Work => agent.mx_update_local(|n| *n += 1),
            Order::Deactivate => return mx_deactivate("asked to stop"),
            Order::Panic => panic!("sink failure"),
            Order::LiftPanic => agent.lift_mx_async(|p| async move {
                p.yield_now().await;
                panic!("lifted failure")
            }),
            Order::LinkTo(pid) => agent.process().link(*pid),
            Order::ShutDownNode => agent.process().local_node().shutdown(),
        }
        MxAction::Ready
    })]
}

/// Runs one stop scenario; returns what the finalizer saw (each call) and how much work
/// the agent did before (by its final state).
fn stop_agent(seed: u64, cause: Cause, work: u32) -> Result<Vec<(MxAgentStop, u64)>, String> {
    let mut sim = Sim::with_faults(seed, Faults::none());
    let node = sim.add_node();
    let finals: Rc<RefCell<Vec<(MxAgentStop, u64)>>> = Rc::default();
    let record = finals.clone();
    let agent = mx_agent_with_finalize(
        &node,
        "subject".into(),
        0u64,
        subject_sinks(),
        move |stopped| {
            let work = *stopped.state();
            record.borrow_mut().push((stopped.stop().clone(), work));
        },
    )
    .map_err(|e| e.to_string())?;
    let outcome = sim.run_until(&node, move |p| async move {
        let watch = p.monitor(agent);
        for _ in 0..work {
            p.send(agent, Order::Work);
            if p.random_u64() % 3 == 0 {
                p.yield_now().await;
            }
        }
        match cause {
            Cause::Deactivate => p.send(agent, Order::Deactivate),
            Cause::SinkPanics => p.send(agent, Order::Panic),
            Cause::LiftedActionPanics => p.send(agent, Order::LiftPanic),
            Cause::Killed => p.kill(agent, "test kill"),
            Cause::ExitSignal => p.exit(agent, "test exit"),
            Cause::LinkedProcessFails => {
                let doomed = p.spawn_local(|d| async move {
                    let () = d.expect().await;
                    fail("linked failure")
                });
                p.send(agent, Order::LinkTo(doomed));
                p.send(doomed, ());
            }
            Cause::SinkShutsTheNodeDown => p.send(agent, Order::ShutDownNode),
            // Stopped from outside, once this process returns.
            Cause::NodeShutdown | Cause::NodeCrash => return None,
        }
        let died: ProcessMonitorNotification = p.expect().await;
        assert_eq!(died.monitor_ref, watch);
        Some(died.reason)
    });
    match (cause, outcome) {
        (Cause::SinkShutsTheNodeDown, Err(SimError::Died(DiedReason::NodeDown))) => {}
        (_, Ok(_)) => {}
        (_, Err(err)) => return Err(format!("the scenario failed: {err}")),
    }
    match cause {
        Cause::NodeShutdown => node.shutdown(),
        Cause::NodeCrash => sim.apply(Fault::Crash(0)),
        _ => {}
    }
    sim.run_for(Duration::from_secs(10));
    // Stopping the node again must not run the finalizer again.
    node.shutdown();
    let finals = finals.borrow().clone();
    Ok(finals)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// However an agent stops, its finalizer runs exactly once, is told why, and sees
    /// the agent's final state.
    #[test]
    fn the_finalizer_runs_exactly_once_however_the_agent_stops(
        seed in any::<u64>(),
        cause in proptest::sample::select(CAUSES.to_vec()),
        work in 0u32..20,
    ) {
        let finals = stop_agent(seed, cause, work).map_err(|e| TestCaseError::fail(format!("seed {seed}, {cause:?}: {e}")))?;
        prop_assert_eq!(finals.len(), 1, "seed {}, {:?}: {:?}", seed, cause, finals);
        let (stop, done) = finals[0].clone();
        let expected_reason = match (&stop, cause) {
            (MxAgentStop::Deactivated(why), Cause::Deactivate) => why == "asked to stop",
            (MxAgentStop::Died(DiedReason::Exception(text)), Cause::SinkPanics) => text.contains("sink failure"),
            (MxAgentStop::Died(DiedReason::Exception(text)), Cause::LiftedActionPanics) => text.contains("lifted failure"),
            (MxAgentStop::Died(DiedReason::Exception(text)), Cause::Killed) => text.contains("test kill"),
            (MxAgentStop::Died(DiedReason::Exception(text)), Cause::ExitSignal) => text.contains("test exit"),
            (MxAgentStop::Died(DiedReason::Exception(text)), Cause::LinkedProcessFails) => text.contains("linked process"),
            (MxAgentStop::Died(DiedReason::NodeDown), Cause::SinkShutsTheNodeDown | Cause::NodeShutdown | Cause::NodeCrash) => true,
            _ => false,
        };
        prop_assert!(expected_reason, "seed {}, {:?}: finalizer told {:?}", seed, cause, stop);
        // Orders sent through the mailbox are handled in order: all the work came first.
        let in_order = !matches!(cause, Cause::Killed | Cause::ExitSignal | Cause::NodeShutdown | Cause::NodeCrash);
        if in_order {
            prop_assert_eq!(done, u64::from(work), "seed {}, {:?}", seed, cause);
        } else {
            prop_assert!(done <= u64::from(work), "seed {}, {:?}", seed, cause);
        }
    }
}

#[test]
fn the_finalizer_sees_the_node_and_can_report() {
    let mut sim = Sim::with_faults(15, Faults::none());
    let node: LocalNode = sim.add_node();
    let reply = sim.run_until(&node, |p| async move {
        let me = p.self_pid();
        let agent = mx_agent_with_finalize(
            &p,
            "reporter".into(),
            41u64,
            subject_sinks(),
            move |stopped| stopped.send(me, (stopped.pid(), *stopped.state() + 1)),
        )
        .unwrap();
        p.send(agent, Order::Deactivate);
        let (from, value): (ProcessId, u64) = p.expect().await;
        assert_eq!(from, agent);
        value
    });
    assert_eq!(reply, Ok(42));
}
