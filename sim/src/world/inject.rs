//! Faults: scheduled ones at their virtual time, random ones drawn from the fault plan's
//! rates, and what applying each does to the network, the nodes and the checkers.

use std::time::Duration;

use rand_chacha::rand_core::RngCore;

use super::Sim;
use crate::faults::Fault;

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

    pub(super) fn plan_random_fault(&mut self) {
        let rate = self.total_fault_rate();
        self.next_random_fault = (rate > 0.0).then(|| {
            let wait = -self.unit().max(1e-12).ln() / rate;
            self.time.now() + Duration::from_secs_f64(wait.min(1e6))
        });
    }

    pub(super) fn random_fault(&mut self) {
        self.plan_random_fault();
        let alive: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !self.nodes[*i].crashed)
            .collect();
        if alive.len() < 2 {
            return;
        }
        let pick = |sim: &mut Sim, among: &[usize]| {
            among[(sim.rng.next_u64() % among.len() as u64) as usize]
        };
        let mut roll = self.unit() * self.total_fault_rate();
        if roll < self.faults.break_rate {
            let a = pick(self, &alive);
            let b = pick(self, &alive);
            if a != b {
                self.apply(Fault::Break(a, b));
            }
            return;
        }
        roll -= self.faults.break_rate;
        if roll < self.faults.partition_rate {
            let (a, b) = (pick(self, &alive), pick(self, &alive));
            if a == b {
                return;
            }
            let both_ways = self.unit() >= self.faults.one_way_probability;
            self.apply(Fault::Partition {
                from: a,
                to: b,
                both_ways,
            });
            let (low, high) = self.faults.partition_duration;
            let span = high.saturating_sub(low).mul_f64(self.unit());
            let heal_at = self.time.now() + low + span;
            self.schedule(heal_at, Fault::HealAll);
            // A silent cut: only heartbeats can notice it, within their bound.
            let bound = self.death_report_bound();
            if both_ways && low + span > bound {
                let (a, b) = (self.nodes[a].node.id(), self.nodes[b].node.id());
                self.checkers
                    .borrow_mut()
                    .on_cut(self.time.now(), a, b, bound);
            }
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
        self.apply(Fault::Crash(victim));
        if self.nodes[victim].options.no_restart {
            return;
        }
        if let Some((low, high)) = self.faults.restart_delay {
            let delay = low + high.saturating_sub(low).mul_f64(self.unit());
            let at = self.time.now() + delay;
            self.schedule(at, Fault::Restart(victim));
        }
    }

    /// Applies a fault now.
    pub fn apply(&mut self, fault: Fault) {
        let _hooks = self.enter();
        let now = self.time.now();
        self.trace
            .borrow_mut()
            .event(now, None, 3, format!("{fault:?}").as_bytes(), || {
                format!("fault {fault:?}")
            });
        tracing::debug!(?fault, at = ?now, "fault");
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
            Fault::Crash(index) => self.crash(index),
            Fault::Stop(index) => {
                if let Some(slot) = self.nodes.get_mut(index) {
                    if !slot.crashed {
                        slot.crashed = true;
                        slot.node.shutdown();
                        self.checkers.borrow_mut().on_stop(slot.node.id());
                    }
                }
            }
            Fault::Restart(index) => self.restart(index),
            Fault::Slow(index, cost) => self.nodes[index].poll_cost = cost,
            Fault::Pause(index, duration) => self.pause(index, duration),
        }
    }

    fn crash(&mut self, index: usize) {
        if self.nodes[index].crashed {
            return;
        }
        let reset = self.unit() < self.faults.crash_reset_probability;
        let id = self.nodes[index].node.id();
        self.network.state.borrow_mut().crash(id, reset);
        self.nodes[index].crashed = true;
        self.nodes[index].node.crash();
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
        slowest + 2 * self.faults.latency_bound() + self.faults.slow_poll_cost * 1000
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
        let bound = self.death_report_bound();
        let mut checkers = self.checkers.borrow_mut();
        checkers.on_pause(id, until);
        if duration > bound {
            checkers.on_silence(now, id, bound);
        }
    }
}
