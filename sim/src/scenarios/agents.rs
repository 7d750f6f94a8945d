//! Scenarios of the management layer: agents' finalizers and unique ids.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::mx::{
    mx_agent, mx_agent_with_finalize, mx_deactivate, mx_ready, mx_sink, MxAgent, MxError,
};
use hyperion::LocalNode;

use super::SCENARIO_TIME_LIMIT;
use crate::faults::Fault;
use crate::world::Sim;

/// How an agent of the `agents` scenario is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Deactivate,
    Panic,
    Kill,
    NodeShutdown,
    NodeCrash,
}

const STOPS: [Stop; 5] = [
    Stop::Deactivate,
    Stop::Panic,
    Stop::Kill,
    Stop::NodeShutdown,
    Stop::NodeCrash,
];

/// Starts an agent on `node` whose finalizer counts into `finalized`; a `String`
/// message deactivates it, a `u64` makes its sink panic.
fn counted_agent(node: &LocalNode, id: &str, finalized: Rc<Cell<u32>>) -> hyperion::ProcessId {
    let sinks = vec![
        mx_sink(|_: &mut MxAgent<'_, ()>, _: &String| mx_deactivate("asked")),
        mx_sink(
            |_: &mut MxAgent<'_, ()>, _: &u64| -> hyperion::mx::MxAction {
                panic!("an agent's sink panics on purpose")
            },
        ),
    ];
    mx_agent_with_finalize(node, id.into(), (), sinks, move |_| {
        finalized.set(finalized.get() + 1)
    })
    .expect("a fresh id on a running node")
}

/// Agents stopped every way (deactivated, a sink panics, killed, their node shut down,
/// their node crashed), each at a random moment: every finalizer runs exactly once.
/// Then agents started concurrently under one id: exactly one starts, the others get
/// `DuplicateAgentId`.
pub(super) fn agents(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let mut counts = Vec::new();
    for (k, stop) in STOPS.iter().enumerate() {
        let node = sim.add_node();
        let index = sim.nodes().len() - 1;
        let finalized = Rc::new(Cell::new(0));
        let agent = counted_agent(&node, &format!("agent-{k}"), finalized.clone());
        let handle = sim.handle();
        let stop = *stop;
        node.spawn(move |p| async move {
            p.sleep(Duration::from_millis(p.random_u64() % 2000)).await;
            match stop {
                Stop::Deactivate => p.send(agent, "stop".to_string()),
                Stop::Panic => p.send(agent, 7u64),
                Stop::Kill => p.kill(agent, "on purpose"),
                Stop::NodeShutdown => handle.schedule_in(Duration::ZERO, Fault::Stop(index)),
                Stop::NodeCrash => handle.schedule_in(Duration::ZERO, Fault::Crash(index)),
            }
        });
        counts.push((stop, finalized));
    }
    sim.run_for(Duration::from_secs(5));
    for (stop, finalized) in &counts {
        if finalized.get() != 1 {
            return Err(format!(
                "an agent stopped by {stop:?} was finalized {} times",
                finalized.get()
            ));
        }
    }
    duplicate_ids(sim)
}

/// Several processes start an agent under one id at once.
fn duplicate_ids(sim: &mut Sim) -> Result<(), String> {
    let node = sim.add_node();
    let started = Rc::new(Cell::new(0u32));
    let refused = Rc::new(Cell::new(0u32));
    for _ in 0..3 {
        let (started, refused) = (started.clone(), refused.clone());
        node.spawn(move |p| async move {
            p.sleep(Duration::from_millis(p.random_u64() % 3)).await;
            let sinks = vec![mx_sink(|_: &mut MxAgent<'_, ()>, _: &String| mx_ready())];
            match mx_agent(&p, "the-one".into(), (), sinks) {
                Ok(_) => started.set(started.get() + 1),
                Err(MxError::DuplicateAgentId { .. }) => refused.set(refused.get() + 1),
                Err(other) => panic!("unexpected: {other}"),
            }
        });
    }
    sim.run_for(Duration::from_secs(1));
    if (started.get(), refused.get()) != (1, 2) {
        return Err(format!(
            "3 concurrent starts under one id: {} started, {} refused",
            started.get(),
            refused.get()
        ));
    }
    Ok(())
}
