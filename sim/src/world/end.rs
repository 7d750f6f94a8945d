//! The end of a run: the liveness phase, the checker of silence, and the shutdown after
//! which nothing may be left.

use std::time::Duration;

use super::Sim;
use crate::checkers::{Pending, Violation};
use crate::faults::Fault;

impl Sim {
    /// Shuts every node down and lets the world settle; returns what is left anywhere
    /// (processes, timers, channels, names, connections, frames in flight). A scenario
    /// that leaks shows it here.
    pub fn shutdown(&mut self) -> Leftovers {
        let _hooks = self.enter();
        self.shut_down = true;
        for sim_node in &self.nodes {
            if !sim_node.crashed {
                sim_node.node.shutdown();
            }
        }
        for sim_node in &mut self.nodes {
            sim_node.crashed = true;
        }
        self.refresh_all_timers();
        let mut leftovers = Leftovers::default();
        for sim_node in &self.nodes {
            let resources = sim_node.node.resources();
            leftovers.processes += resources.processes;
            leftovers.timers += resources.timers;
            leftovers.channels += resources.channels;
            leftovers.names += resources.names;
            leftovers.agents += hyperion::mx::mx_agents(&sim_node.node).len();
        }
        leftovers.connections = self.network.state.borrow().connection_count();
        leftovers
    }

    /// The liveness phase, run after a scenario's fault phase (as TigerBeetle's simulator
    /// does): random faults stop, scheduled crashes, breaks, partitions and slowdowns
    /// are dropped (scheduled stops, restarts and heals still happen), every partition
    /// heals, paused nodes resume and slow nodes recover; then the world runs for
    /// [`liveness_bound`](Sim::liveness_bound) of virtual time, within which every
    /// loss must have been noticed and every notification delivered.
    pub fn liveness_phase(&mut self) {
        self.next_random_fault = None;
        self.planned.clear();
        self.faults.break_rate = 0.0;
        self.faults.partition_rate = 0.0;
        self.faults.crash_rate = 0.0;
        self.scheduled.retain(|_, fault| {
            matches!(fault, Fault::Stop(_) | Fault::Restart(_) | Fault::HealAll)
        });
        self.apply(Fault::HealAll);
        let now = self.now();
        for sim_node in &mut self.nodes {
            sim_node.poll_cost = Duration::ZERO;
            // Paused nodes resume (their held deliveries arrive at the next step).
            sim_node.paused_until = sim_node.paused_until.min(now);
            sim_node.timers_late_until = sim_node.timers_late_until.min(now);
            sim_node.busy_until = sim_node.busy_until.min(now);
        }
        self.refresh_all_timers();
        self.checkers.borrow_mut().on_heal(now, true);
        let bound = self.liveness_bound();
        self.run_for(bound);
    }

    /// How long the liveness phase runs: time for any node to notice any loss (the
    /// heartbeat bound on the slowest clock, plus delays), for a failed connection
    /// attempt to be reported, and for the notifications to arrive.
    pub fn liveness_bound(&self) -> Duration {
        self.death_report_bound() + crate::network::CONNECT_TIMEOUT + 2 * self.heartbeat.interval
    }

    /// The checker of silence: every monitor and link still owed a notification must
    /// have a live target (and a live watcher; a dead watcher is owed nothing). Meant
    /// for the end of a run, after [`liveness_phase`](Sim::liveness_phase); returns the
    /// violations it added.
    pub fn check_silence(&mut self) -> Vec<Violation> {
        let now = self.now();
        let pending = self.checkers.borrow().pending();
        let mut found = Vec::new();
        for owed in pending {
            let (watcher, target, what) = match owed {
                Pending::Monitor(monitor_ref, watcher) => (
                    watcher,
                    monitor_ref.target,
                    format!("monitor {monitor_ref:?}"),
                ),
                Pending::Link(linker, target) => (linker, target, "link".to_string()),
            };
            if target.local == 0 || !self.is_alive(watcher) || self.is_alive(target) {
                continue;
            }
            found.push(Violation {
                at: now,
                rule: "a monitor or link fires once its target is gone",
                detail: format!("{watcher} was never told of the death of {target} ({what})"),
            });
        }
        self.checkers
            .borrow_mut()
            .violations
            .extend(found.iter().cloned());
        found
    }

    /// Whether process `pid` is alive in the world now.
    pub fn is_alive(&self, pid: hyperion::ProcessId) -> bool {
        self.nodes
            .iter()
            .any(|n| !n.crashed && n.node.id() == pid.node && n.node.is_alive(pid))
    }

    /// Ends a run as the runners do: the [`liveness_phase`](Sim::liveness_phase), the
    /// [checker of silence](Sim::check_silence), then [`shutdown`](Sim::shutdown),
    /// after which nothing may be left (a leftover is a violation). Returns the
    /// violations of the whole run.
    pub fn finish(&mut self) -> Vec<Violation> {
        self.liveness_phase();
        self.check_silence();
        let leftovers = self.shutdown();
        if leftovers != Leftovers::default() {
            let now = self.now();
            self.checkers.borrow_mut().violate(
                now,
                "nothing is left after shutdown",
                format!("{leftovers:?}"),
            );
        }
        self.violations()
    }
}

/// What a world still held after [`Sim::shutdown`]; all zero if nothing leaked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Live processes.
    pub processes: usize,
    /// Armed timers.
    pub timers: usize,
    /// Open channels.
    pub channels: usize,
    /// Registered names.
    pub names: usize,
    /// Open connections.
    pub connections: usize,
    /// Running management agents.
    pub agents: usize,
}

impl Drop for Sim {
    /// A world dropped without [`Sim::shutdown`] shuts its nodes down, so their
    /// processes end and the finalizers of their management agents run.
    fn drop(&mut self) {
        // While unwinding from a panic, a second panic (a finalizer's) would abort the
        // test run: the first panic tells the story, so leave the world as it is.
        if !self.shut_down && !std::thread::panicking() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.shutdown()));
        }
    }
}
