//! Faults: scheduled ones at their virtual time, random ones drawn from the fault plan's
//! rates, and what applying each does to the network, the nodes and the checkers.

use std::time::Duration;

use rand_chacha::rand_core::RngCore;

use super::Sim;
use crate::faults::Fault;
use crate::plan::{PlanFault, PlannedFault};

impl Sim {
    /// Schedules `fault` at virtual time `at`.
    pub fn schedule(&mut self, at: Duration, fault: Fault) {
        self.scheduled.insert((at, self.next_scheduled), fault);
        self.next_scheduled += 1;
    }

    pub(super) fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn total_fault_rate(&self) -> f64 {
        self.faults.break_rate + self.faults.partition_rate + self.faults.crash_rate
    }

    /// A uniform draw in `[0, 1)` from the generator of random faults.
    fn fault_unit(&mut self) -> f64 {
        (self.fault_rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Draws when the next random fault comes (none while the world follows a plan).
    pub(super) fn plan_random_fault(&mut self) {
        let rate = self.total_fault_rate();
        self.next_random_fault = (rate > 0.0 && !self.following_plan).then(|| {
            let wait = -self.fault_unit().max(1e-12).ln() / rate;
            self.time.now() + Duration::from_secs_f64(wait.min(1e6))
        });
    }

    /// Draws a random fault from the plan's rates and injects it. Every draw comes from
    /// the generator of random faults, so that the world's own generator (interleavings,
    /// latencies, clocks) draws the same whether faults come at random or from a plan.
    pub(super) fn random_fault(&mut self) {
        self.plan_random_fault();
        let alive: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !self.nodes[*i].crashed)
            .collect();
        if alive.len() < 2 {
            return;
        }
        let pick = |sim: &mut Sim, among: &[usize]| {
            among[(sim.fault_rng.next_u64() % among.len() as u64) as usize]
        };
        let mut roll = self.fault_unit() * self.total_fault_rate();
        if roll < self.faults.break_rate {
            let a = pick(self, &alive);
            let b = pick(self, &alive);
            if a != b {
                self.inject(PlannedFault::Break(a, b));
            }
            return;
        }
        roll -= self.faults.break_rate;
        if roll < self.faults.partition_rate {
            let (a, b) = (pick(self, &alive), pick(self, &alive));
            if a == b {
                return;
            }
            let both_ways = self.fault_unit() >= self.faults.one_way_probability;
            let (low, high) = self.faults.partition_duration;
            let heal_after = low + high.saturating_sub(low).mul_f64(self.fault_unit());
            self.inject(PlannedFault::Partition {
                from: a,
                to: b,
                both_ways,
                heal_after,
            });
            return;
        }
        let crashable: Vec<usize> = alive
            .iter()
            .copied()
            .filter(|i| self.nodes[*i].options.crashable)
            .collect();
        if crashable.is_empty() {
            return;
        }
        let victim = pick(self, &crashable);
        let reset = self.fault_unit() < self.faults.crash_reset_probability;
        let restart_after = match self.faults.restart_delay {
            Some((low, high)) if !self.nodes[victim].options.no_restart => {
                Some(low + high.saturating_sub(low).mul_f64(self.fault_unit()))
            }
            _ => None,
        };
        self.inject(PlannedFault::Crash {
            index: victim,
            reset,
            restart_after,
        });
    }

    /// Injects a fault decided at random or read from a plan, and records it in the
    /// run's [`injected`](Sim::injected) plan. A plan step naming a node the world does
    /// not have (a plan from another version of a scenario) is skipped.
    pub(super) fn inject(&mut self, planned: PlannedFault) {
        let now = self.time.now();
        let count = self.nodes.len();
        let known = match &planned {
            PlannedFault::Break(a, b) => *a < count && *b < count,
            PlannedFault::Partition { from, to, .. } => *from < count && *to < count,
            PlannedFault::Crash { index, .. }
            | PlannedFault::Slow { index, .. }
            | PlannedFault::Pause { index, .. } => *index < count,
            // A clock's rate is set when its node is made (see `add_node_with`).
            PlannedFault::Drift { .. } => {
                tracing::warn!(fault = %planned, "a drift step applies to nodes made after the plan is followed; skipped");
                return;
            }
        };
        if !known {
            tracing::warn!(fault = %planned, nodes = count, "plan step names a node the world does not have; skipped");
            return;
        }
        self.injected.push(PlanFault {
            at: now,
            fault: planned.clone(),
        });
        match planned {
            PlannedFault::Break(a, b) => self.apply(Fault::Break(a, b)),
            PlannedFault::Partition {
                from,
                to,
                both_ways,
                heal_after,
            } => {
                self.apply(Fault::Partition {
                    from,
                    to,
                    both_ways,
                });
                self.schedule(now + heal_after, Fault::HealAll);
                // A silent cut: only heartbeats can notice it, within their bound.
                let bound = self.death_report_bound();
                if both_ways && heal_after > bound {
                    let (a, b) = (self.nodes[from].node.id(), self.nodes[to].node.id());
                    self.checkers.borrow_mut().on_cut(now, a, b, bound);
                }
            }
            PlannedFault::Crash {
                index,
                reset,
                restart_after,
            } => {
                if self.nodes[index].crashed {
                    return;
                }
                self.trace_fault(&Fault::Crash(index));
                self.crash(index, reset);
                // A node made never to restart (a launcher's worker node: its service must
                // not see it come back) stays down, as under random injection.
                let restart_after = restart_after.filter(|_| !self.nodes[index].options.no_restart);
                if let Some(after) = restart_after {
                    self.schedule(now + after, Fault::Restart(index));
                }
            }
            PlannedFault::Slow {
                index,
                cost,
                lasting,
            } => {
                let former = self.nodes[index].poll_cost;
                self.apply(Fault::Slow(index, cost));
                self.schedule(now + lasting, Fault::Slow(index, former));
            }
            PlannedFault::Pause { index, duration } => self.apply(Fault::Pause(index, duration)),
            PlannedFault::Drift { .. } => {}
        }
    }

    /// Records an applied fault in the trace and the log.
    fn trace_fault(&self, fault: &Fault) {
        let now = self.time.now();
        self.trace
            .borrow_mut()
            .event(now, None, 3, format!("{fault:?}").as_bytes(), || {
                format!("fault {fault:?}")
            });
        tracing::debug!(?fault, at = ?now, "fault");
    }

    /// Applies a fault now.
    pub fn apply(&mut self, fault: Fault) {
        let _hooks = self.enter();
        let now = self.time.now();
        self.trace_fault(&fault);
        match fault {
            Fault::Break(a, b) => {
                let (a, b) = (self.nodes[a].node.id(), self.nodes[b].node.id());
                self.network
                    .state
                    .borrow_mut()
                    .break_connection(a, b, &[a, b]);
            }
            Fault::Partition {
                from,
                to,
                both_ways,
            } => {
                let (a, b) = (self.nodes[from].node.id(), self.nodes[to].node.id());
                let mut network = self.network.state.borrow_mut();
                network.partition(a.address, b.address);
                if both_ways {
                    network.partition(b.address, a.address);
                }
            }
            Fault::HealAll => {
                self.network.state.borrow_mut().heal_all();
                self.checkers.borrow_mut().on_heal(now, false);
            }
            Fault::Crash(index) => {
                // A crash a scenario asked for: reset or silent by the world's draw.
                if !self.nodes[index].crashed {
                    let reset = self.unit() < self.faults.crash_reset_probability;
                    self.crash(index, reset);
                }
            }
            Fault::Stop(index) => {
                if let Some(slot) = self.nodes.get_mut(index) {
                    if !slot.crashed {
                        slot.crashed = true;
                        slot.node.shutdown();
                        self.checkers.borrow_mut().on_stop(slot.node.id());
                        self.refresh_timer(index);
                    }
                }
            }
            Fault::Restart(index) => self.restart(index),
            Fault::Slow(index, cost) => self.nodes[index].poll_cost = cost,
            Fault::Pause(index, duration) => self.pause(index, duration),
        }
    }

    fn crash(&mut self, index: usize, reset: bool) {
        if self.nodes[index].crashed {
            return;
        }
        let id = self.nodes[index].node.id();
        self.network.state.borrow_mut().crash(id, reset);
        self.nodes[index].crashed = true;
        self.nodes[index].node.crash();
        self.refresh_timer(index);
        let bound = self.death_report_bound();
        self.checkers
            .borrow_mut()
            .on_crash(self.time.now(), id, bound);
    }

    /// The world time within which every node that knew a crashed node must report it
    /// lost: the heartbeat bound on the slowest clock, plus network delays and a slow
    /// node's backlog.
    pub(super) fn death_report_bound(&self) -> Duration {
        let local = self.heartbeat.detection_bound() + self.heartbeat.interval;
        let slowest = self
            .nodes
            .iter()
            .map(|n| n.clock.world_span(local))
            .max()
            .unwrap_or(local);
        // A slow node's backlog: the slowest pace any node runs at, by rate or by plan.
        let poll_cost = self
            .nodes
            .iter()
            .map(|n| n.poll_cost)
            .fold(self.faults.slow_poll_cost, Duration::max);
        slowest + 2 * self.faults.latency_bound() + poll_cost * 1000
    }

    /// Stops node `index` for `duration`, as SIGSTOP does: it runs nothing, fires no
    /// timer and reads nothing, while its connections stay open; then it resumes. Its
    /// peers hear nothing from it, so only their heartbeats can notice: a pause longer
    /// than the heartbeat bound must be reported by every node that knew it, in time.
    fn pause(&mut self, index: usize, duration: Duration) {
        let now = self.time.now();
        let Some(slot) = self.nodes.get_mut(index) else {
            return;
        };
        if slot.crashed {
            return;
        }
        slot.paused_until = slot.paused_until.max(now + duration);
        slot.busy_until = slot.busy_until.max(now + duration);
        let (id, until) = (slot.node.id(), slot.paused_until);
        self.refresh_timer(index);
        let bound = self.death_report_bound();
        let mut checkers = self.checkers.borrow_mut();
        checkers.on_pause(id, until);
        if duration > bound {
            checkers.on_silence(now, id, bound);
        }
    }
}
