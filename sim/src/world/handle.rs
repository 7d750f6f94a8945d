//! The handle code running inside the world (launchers, test processes) uses to add
//! nodes and schedule faults; its requests apply at the world's next step.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::{NodeOptions, Sim};
use crate::clock::WorldTime;
use crate::faults::Fault;

/// What code running inside the world asks of it, applied at the next step.
pub(super) enum Request {
    AddNode(NodeOptions),
    Schedule(Duration, Fault),
}

/// A handle on the world for code running inside it (launchers, test processes): adds
/// nodes, schedules faults, shuts nodes down. Requests apply at the world's next step.
#[derive(Clone)]
pub struct SimHandle {
    pub(super) requests: Rc<RefCell<std::collections::VecDeque<Request>>>,
    pub(super) reserved: Rc<std::cell::Cell<usize>>,
    pub(super) time: WorldTime,
}

impl SimHandle {
    /// Adds a node made as `options` say; returns the index it will have.
    pub fn add_node(&self, options: NodeOptions) -> usize {
        let index = self.reserved.get();
        self.reserved.set(index + 1);
        self.requests
            .borrow_mut()
            .push_back(Request::AddNode(options));
        index
    }

    /// The index the next node added through this handle will have.
    pub fn reserved_index(&self) -> usize {
        self.reserved.get()
    }

    /// Applies `fault` after `delay` of virtual time.
    pub fn schedule_in(&self, delay: Duration, fault: Fault) {
        let at = self.time.now() + delay;
        self.requests
            .borrow_mut()
            .push_back(Request::Schedule(at, fault));
    }

    /// Shuts a node down cleanly, now (see [`Fault::Stop`]).
    pub fn shutdown_node(&self, index: usize) {
        self.schedule_in(Duration::ZERO, Fault::Stop(index));
    }
}

impl Sim {
    pub(super) fn apply_requests(&mut self) {
        loop {
            let request = self.handle.requests.borrow_mut().pop_front();
            let Some(request) = request else { break };
            match request {
                Request::AddNode(options) => {
                    self.add_node_with(options);
                }
                Request::Schedule(at, fault) => self.schedule(at, fault),
            }
        }
    }
}
