//! Scenario of the registry: names of dead and lost holders are released.

use std::time::Duration;

use hyperion::{NodeId, ProcessId};

use super::SCENARIO_TIME_LIMIT;
use crate::faults::Fault;
use crate::world::{NodeOptions, Sim};

/// A node registers names for processes of its own and of another node; the holders
/// die (ended, killed, their node crashed or shut down). Once the world has had time to
/// notice (the liveness bound), no name still points to a dead holder.
pub(super) fn registry(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let home = sim.add_node();
    let away = sim.add_node_with(NodeOptions::crashable());
    let away_index = sim.nodes().len() - 1;
    let away_id: NodeId = away.id();
    // Holders that live until told to stop.
    let idle = |node: &hyperion::LocalNode| node.spawn(|p| async move { p.expect::<()>().await });
    let local_holder = idle(&home);
    let remote_holders: Vec<ProcessId> = (0..3).map(|_| idle(&away)).collect();
    home.register("local", local_holder)
        .map_err(|err| err.to_string())?;
    for (k, holder) in remote_holders.iter().enumerate() {
        home.register(&format!("remote-{k}"), *holder)
            .map_err(|err| err.to_string())?;
    }
    let handle = sim.handle();
    let (first, second) = (remote_holders[0], remote_holders[1]);
    home.spawn(move |p| async move {
        p.sleep(Duration::from_millis(p.random_u64() % 3000)).await;
        p.send(local_holder, ());
        p.kill(first, "on purpose");
        p.reconnect_node(away_id);
        p.send(second, ());
        p.sleep(Duration::from_millis(p.random_u64() % 3000)).await;
        let fault = if p.random_u64() % 2 == 0 {
            Fault::Crash(away_index)
        } else {
            Fault::Stop(away_index)
        };
        handle.schedule_in(Duration::ZERO, fault);
    });
    sim.run_for(Duration::from_secs(10));
    sim.liveness_phase();
    for name in ["local", "remote-0", "remote-1", "remote-2"] {
        let holder = home.names_with_prefix(name);
        if let Some(pid) = holder.first() {
            if !sim.is_alive(*pid) {
                return Err(format!("the name {name:?} still points to the dead {pid}"));
            }
        }
    }
    Ok(())
}
