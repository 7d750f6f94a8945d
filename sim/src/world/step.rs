//! The scheduler of the world: one step polls one ready task chosen at random across all
//! nodes, or advances virtual time to the next timer, delivery or fault and applies
//! everything due then; the runs built on steps.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use hyperion::transport::TransportEvent;
use hyperion::wire::{decode_frame, Frame};
use hyperion::{DiedReason, LocalNode, NodeId, Process};
use rand_chacha::rand_core::RngCore;

use super::{Sim, SimError};

/// How late a buggified timer fires (see `apply_due`).
const TIMER_LATENESS: Duration = Duration::from_millis(100);
use crate::faults::Faults;
use crate::network::Delivery;

impl Sim {
    /// Runs one step: polls one ready task chosen at random across all nodes, or, if
    /// none is ready, advances virtual time to the next timer, delivery or fault and
    /// applies everything due then. Returns `false` when nothing can ever happen again.
    pub fn step(&mut self) -> bool {
        let _hooks = self.enter();
        if !self.handle.requests.borrow().is_empty() {
            self.apply_requests();
        }
        let now = self.time.now();
        // Each node's ready count, read once per step (0 for nodes that cannot run).
        let mut ready = std::mem::take(&mut self.ready_scratch);
        ready.clear();
        let mut ready_total = 0;
        // When the earliest node with ready tasks but busy until later may run again.
        let mut busy_next: Option<Duration> = None;
        let mut drained = Vec::new();
        for (index, sim_node) in self.nodes.iter().enumerate() {
            let len = if sim_node.crashed {
                0
            } else {
                if sim_node.node.drain_inbox() > 0 {
                    drained.push(index);
                }
                let len = sim_node.node.ready_len();
                if sim_node.busy_until <= now {
                    len
                } else {
                    if len > 0 {
                        earliest(&mut busy_next, sim_node.busy_until);
                    }
                    0
                }
            };
            ready.push(len);
            ready_total += len;
        }
        // What a drained inbox ran may have set timers.
        for index in drained {
            self.refresh_timer(index);
        }
        if ready_total > 0 {
            let mut pick = (self.rng.next_u64() % ready_total as u64) as usize;
            let index = ready
                .iter()
                .position(|&len| {
                    if pick < len {
                        return true;
                    }
                    pick -= len;
                    false
                })
                .expect("the pick is below the total");
            self.ready_scratch = ready;
            let sim_node = &mut self.nodes[index];
            let pid = sim_node.node.run_ready_at(pick);
            sim_node.busy_until = now + sim_node.poll_cost;
            self.refresh_timer(index);
            self.steps += 1;
            let local = pid.map_or(0, |pid| pid.local);
            self.trace
                .borrow_mut()
                .event(now, Some(index), 0, &local.to_le_bytes(), || {
                    format!("poll pid {local}")
                });
            return true;
        }
        self.ready_scratch = ready;
        let Some(next) = self.next_event_time(busy_next) else {
            return false;
        };
        self.time.advance_to(next);
        self.apply_due();
        true
    }

    /// Hands paused nodes that resumed what the network delivered while they slept.
    fn release_held(&mut self, now: Duration) {
        // In index order, as every node was once visited.
        let holding: Vec<usize> = self.holding.iter().copied().collect();
        for index in holding {
            if self.nodes[index].paused_until > now {
                continue;
            }
            self.holding.remove(&index);
            let held = std::mem::take(&mut self.nodes[index].held);
            for delivery in held {
                self.deliver(now, delivery);
            }
        }
    }

    /// When the next thing happens: a timer (from the timer queue), a node with ready
    /// tasks busy until `busy_next`, a paused node's held deliveries, a delivery, a
    /// scheduled or random fault, a request.
    pub(super) fn next_event_time(&self, busy_next: Option<Duration>) -> Option<Duration> {
        self.debug_check_timers();
        let mut next: Option<Duration> = self.timers.first();
        let mut consider = |at: Duration| earliest(&mut next, at);
        if let Some(at) = busy_next {
            consider(at);
        }
        for &index in &self.holding {
            let sim_node = &self.nodes[index];
            if !sim_node.crashed {
                consider(sim_node.paused_until);
            }
        }
        if let Some(due) = self.network.state.borrow().next_due() {
            consider(due);
        }
        if let Some((at, _)) = self.scheduled.keys().next() {
            consider(*at);
        }
        if !self.handle.requests.borrow().is_empty() {
            consider(self.time.now());
        }
        // Random (or planned) faults alone do not keep a finished world going.
        if next.is_some() {
            if let Some(at) = self.next_random_fault {
                earliest(&mut next, at);
            }
            if let Some(step) = self.planned.front() {
                earliest(&mut next, step.at);
            }
        }
        next
    }

    fn apply_due(&mut self) {
        let now = self.time.now();
        while let Some(entry) = self.scheduled.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let fault = entry.remove();
            self.apply(fault);
        }
        if self.next_random_fault.is_some_and(|at| at <= now) {
            self.random_fault();
        }
        while self.planned.front().is_some_and(|step| step.at <= now) {
            let step = self.planned.pop_front().expect("a front step");
            self.inject(step.fault);
        }
        self.release_held(now);
        loop {
            let delivery = self.network.state.borrow_mut().pop_due(now);
            let Some(delivery) = delivery else { break };
            self.deliver(now, delivery);
        }
        let fifo: Vec<String> =
            std::mem::take(&mut self.network.state.borrow_mut().fifo_violations);
        for detail in fifo {
            self.checkers.borrow_mut().on_frame_fifo(now, detail);
        }
        let disagreements = self
            .network
            .state
            .borrow_mut()
            .take_arbitration_violations();
        for detail in disagreements {
            self.checkers.borrow_mut().on_arbitration(now, detail);
        }
        // The nodes whose timers are due, and those whose last due timers lagged (their
        // mark is cleared on the first visit after the lag): every other node would
        // fire nothing. In index order, as every node was once visited.
        let mut visit: Vec<usize> = self.timers.due(now).collect();
        visit.extend(self.lagged.iter().copied());
        visit.sort_unstable();
        visit.dedup();
        for index in visit {
            let sim_node = &self.nodes[index];
            if sim_node.crashed || sim_node.paused_until > now || sim_node.timers_late_until > now {
                continue;
            }
            let due = sim_node
                .node
                .next_deadline()
                .is_some_and(|deadline| sim_node.clock.to_world(deadline) <= now);
            // A timer that fires late, as on a loaded host: the node's due timers wait a
            // while (once in a row, so that lateness never piles up past the bounds).
            if due && !sim_node.timers_lagged && hyperion::buggify!() {
                hyperion::reached!("sim.buggify.late_timer");
                let slot = &mut self.nodes[index];
                slot.timers_late_until = now + TIMER_LATENESS;
                slot.timers_lagged = true;
                self.lagged.insert(index);
                self.refresh_timer(index);
                continue;
            }
            let sim_node = &mut self.nodes[index];
            sim_node.timers_lagged = false;
            self.lagged.remove(&index);
            let fired = sim_node.node.fire_due_timers();
            self.refresh_timer(index);
            if fired > 0 {
                self.trace.borrow_mut().event(
                    now,
                    Some(index),
                    2,
                    &(fired as u64).to_le_bytes(),
                    || format!("{fired} timer(s) fired"),
                );
            }
        }
        self.checkers.borrow_mut().check_deadlines(now);
    }

    fn deliver(&mut self, now: Duration, delivery: Delivery) {
        let Some(index) = self
            .nodes
            .iter()
            .position(|n| !n.crashed && n.node.id() == delivery.to)
        else {
            return;
        };
        if self.nodes[index].paused_until > now {
            self.nodes[index].held.push_back(delivery);
            self.holding.insert(index);
            return;
        }
        let mut trace = self.trace.borrow_mut();
        match &delivery.event {
            TransportEvent::Received(from, bytes) => {
                trace.event(now, Some(index), 1, bytes, || describe_frame(*from, bytes))
            }
            other => trace.event(now, Some(index), 1, format!("{other:?}").as_bytes(), || {
                format!("transport {other:?}")
            }),
        }
        drop(trace);
        if let TransportEvent::Received(from, _) = &delivery.event {
            let mut checkers = self.checkers.borrow_mut();
            if checkers.awaiting() {
                checkers.on_heard(now, delivery.to, *from);
            }
        }
        self.nodes[index]
            .node
            .handle_transport_event(delivery.event);
        self.refresh_timer(index);
    }

    /// Runs `body` as a process on the only node of a fresh, fault-free world seeded
    /// with `seed`, until it returns; then shuts the node down. The shortest way to test
    /// code of one node under virtual time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let slept = hyperion_sim::Sim::run_alone(7, |p| async move {
    ///     p.sleep(Duration::from_secs(3600)).await; // virtual: instant
    ///     "done"
    /// });
    /// assert_eq!(slept.unwrap(), "done");
    /// ```
    pub fn run_alone<F, Fut, T>(seed: u64, body: F) -> Result<T, SimError>
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let node = sim.add_node();
        let result = sim.run_until(&node, body);
        node.shutdown();
        result
    }

    /// Spawns `body` on `node` and runs the world until it returns.
    pub fn run_until<F, Fut, T>(&mut self, node: &LocalNode, body: F) -> Result<T, SimError>
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future<Output = T> + 'static,
        T: 'static,
    {
        let outcome: Rc<RefCell<Option<Result<T, DiedReason>>>> = Rc::default();
        let slot = outcome.clone();
        node.spawn_with_result(body, move |result| *slot.borrow_mut() = Some(result));
        // Code outside the world may have touched any node since the last run.
        self.refresh_all_timers();
        loop {
            if let Some(result) = outcome.borrow_mut().take() {
                return result.map_err(SimError::Died);
            }
            if self.time.now() > self.virtual_time_limit {
                return Err(SimError::TimeLimit {
                    limit: self.virtual_time_limit,
                });
            }
            if !self.step() {
                return Err(SimError::Stalled { at: self.now() });
            }
        }
    }

    /// Runs the world for `duration` of virtual time (or until nothing can happen).
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now() + duration;
        // Code outside the world may have touched any node since the last run.
        self.refresh_all_timers();
        loop {
            let now = self.now();
            let mut ready = false;
            let mut busy_next: Option<Duration> = None;
            for n in &self.nodes {
                if n.crashed || n.node.ready_len() == 0 {
                    continue;
                }
                if n.busy_until <= now {
                    ready = true;
                } else {
                    earliest(&mut busy_next, n.busy_until);
                }
            }
            if !ready
                && self
                    .next_event_time(busy_next)
                    .is_none_or(|next| next > until)
            {
                self.time.advance_to(until);
                return;
            }
            if !self.step() {
                return;
            }
        }
    }
}

/// Keeps in `next` the earlier of it and `at`.
fn earliest(next: &mut Option<Duration>, at: Duration) {
    *next = Some(next.map_or(at, |next| next.min(at)));
}

fn describe_frame(from: NodeId, bytes: &[u8]) -> String {
    match decode_frame(bytes) {
        Ok(Frame::Data {
            to,
            from: sender,
            fingerprint,
            ..
        }) => format!("data {sender} -> {to} ({fingerprint:?})"),
        Ok(Frame::ChannelData { port, .. }) => format!("channel data for {port:?}"),
        Ok(Frame::NamedData { name, from, .. }) => format!("named data {from} -> {name:?}"),
        Ok(Frame::Control(control)) => format!("control from {from}: {control:?}"),
        Ok(Frame::KeepAlive) => format!("keep-alive from {from}"),
        Err(err) => format!("bad frame from {from}: {err}"),
    }
}
