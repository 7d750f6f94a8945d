//! Scenario of the registry: names of dead and lost holders are released.

use std::time::Duration;

use hyperion::{NodeId, ProcessId};

use super::SCENARIO_TIME_LIMIT;
use crate::faults::Fault;
use crate::world::{NodeOptions, Sim};

/// A node registers names for processes of its own and of another node; the holders
/// die (ended, killed, then their node crashed or shut down). Once the world has had
/// time to notice (the liveness bound), no name still points to a dead holder: checked
/// after the deaths of processes, then after the loss of their node.
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
    let (first, second) = (remote_holders[0], remote_holders[1]);
    home.spawn(move |p| async move {
        p.sleep(Duration::from_millis(p.random_u64() % 3000)).await;
        p.send(local_holder, ());
        p.kill(first, "on purpose");
        p.reconnect_node(away_id);
        p.send(second, ());
    });
    sim.run_for(Duration::from_secs(10));
    // First while the holders' node lives on: only their deaths can free the names
    // (a lost node frees every name on it, which would hide a name kept too long).
    sim.liveness_phase();
    released(sim, &home)?;
    let fault = if sim.seed() % 2 == 0 {
        Fault::Crash(away_index)
    } else {
        Fault::Stop(away_index)
    };
    sim.apply(fault);
    sim.liveness_phase();
    released(sim, &home)
}

/// No name of the scenario points to a dead holder.
fn released(sim: &Sim, home: &hyperion::LocalNode) -> Result<(), String> {
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
