//! The CPUs of a Slurm allocation handed to workers: each node's free CPUs, requests
//! for K CPUs on one node granted in arrival order, CPUs returned when a worker ends.
//!
//! A pure data structure (no threads, no clock): the allocation launcher drives it and
//! starts a job step for every grant. Guarantees: CPUs in use never exceed a node's
//! CPUs (so never the allocation's); requests are granted first come, first served (a
//! big request at the head is not overtaken by small ones, so it cannot starve); a
//! request no node could ever hold is refused at once rather than waiting forever.
//!
//! ```
//! use hyperion::launch::{Allocation, AllocatedNode, CpuPool};
//! let allocation = Allocation { job_id: "7".into(), nodes: vec![AllocatedNode { name: "n1".into(), cpus: 2 }] };
//! let mut pool = CpuPool::new(&allocation);
//! let first = pool.request(2).unwrap();
//! let second = pool.request(1).unwrap();
//! let grants = pool.take_grants();
//! assert_eq!(grants.len(), 1);
//! assert_eq!((grants[0].request, grants[0].node.as_str()), (first, "n1"));
//! pool.release(first).unwrap();
//! assert_eq!(pool.take_grants()[0].request, second);
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use super::Allocation;

/// Names one request for CPUs, from [`CpuPool::request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuRequestId(pub u64);

/// CPUs granted to a request, on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuGrant {
    /// The request granted.
    pub request: CpuRequestId,
    /// The node to start the worker on (`srun -w`).
    pub node: String,
    /// How many CPUs (`srun -c`).
    pub cpus: u32,
}

/// A request the pool cannot take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpuPoolError {
    /// Zero CPUs asked.
    ZeroCpus,
    /// More CPUs than the largest node of the allocation has: it would wait forever.
    NeverFits {
        /// CPUs asked.
        cpus: u32,
        /// CPUs of the largest node.
        largest_node_cpus: u32,
    },
    /// The request is neither waiting nor granted (released twice, or never made).
    UnknownRequest(CpuRequestId),
}

impl fmt::Display for CpuPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuPoolError::ZeroCpus => write!(f, "a worker must ask for at least one CPU"),
            CpuPoolError::NeverFits { cpus, largest_node_cpus } => write!(
                f,
                "a worker asks for {cpus} CPUs but the allocation's largest node has {largest_node_cpus}"
            ),
            CpuPoolError::UnknownRequest(id) => write!(f, "CPU request {} is not in the pool", id.0),
        }
    }
}

impl std::error::Error for CpuPoolError {}

struct NodeCpus {
    name: String,
    total: u32,
    free: u32,
}

/// Free CPUs per node of an allocation, and the requests waiting for them.
pub struct CpuPool {
    nodes: Vec<NodeCpus>,
    waiting: VecDeque<(CpuRequestId, u32)>,
    /// Granted requests: node index and CPUs, to return them on release.
    granted: BTreeMap<CpuRequestId, (usize, u32)>,
    /// Grants made but not yet taken by [`CpuPool::take_grants`].
    ready: Vec<CpuGrant>,
    next_id: u64,
}

impl CpuPool {
    /// A pool holding all CPUs of `allocation`, none in use.
    pub fn new(allocation: &Allocation) -> CpuPool {
        CpuPool {
            nodes: allocation
                .nodes
                .iter()
                .map(|n| NodeCpus {
                    name: n.name.clone(),
                    total: n.cpus,
                    free: n.cpus,
                })
                .collect(),
            waiting: VecDeque::new(),
            granted: BTreeMap::new(),
            ready: Vec::new(),
            next_id: 0,
        }
    }

    /// Asks for `cpus` CPUs on one node; granted now or later (see
    /// [`take_grants`](CpuPool::take_grants)), in the order asked.
    pub fn request(&mut self, cpus: u32) -> Result<CpuRequestId, CpuPoolError> {
        if cpus == 0 {
            return Err(CpuPoolError::ZeroCpus);
        }
        let largest_node_cpus = self.nodes.iter().map(|n| n.total).max().unwrap_or(0);
        if cpus > largest_node_cpus {
            return Err(CpuPoolError::NeverFits {
                cpus,
                largest_node_cpus,
            });
        }
        let id = CpuRequestId(self.next_id);
        self.next_id += 1;
        self.waiting.push_back((id, cpus));
        self.schedule();
        Ok(id)
    }

    /// The grants made since the last call, in the order made.
    pub fn take_grants(&mut self) -> Vec<CpuGrant> {
        std::mem::take(&mut self.ready)
    }

    /// Returns the CPUs of a granted request (its worker ended), or withdraws a waiting
    /// one; waiting requests that now fit are granted.
    pub fn release(&mut self, request: CpuRequestId) -> Result<(), CpuPoolError> {
        if let Some((node, cpus)) = self.granted.remove(&request) {
            let node = &mut self.nodes[node];
            node.free += cpus;
            assert!(
                node.free <= node.total,
                "a node got back more CPUs than it has"
            );
            // A grant not yet taken is void: its worker will never start.
            self.ready.retain(|g| g.request != request);
        } else if let Some(at) = self.waiting.iter().position(|(id, _)| *id == request) {
            self.waiting.remove(at);
        } else {
            return Err(CpuPoolError::UnknownRequest(request));
        }
        self.schedule();
        Ok(())
    }

    /// Grants waiting requests from the head while one fits on some node: first come,
    /// first served, on the first node with room (fills nodes in Slurm's order).
    fn schedule(&mut self) {
        while let Some(&(id, cpus)) = self.waiting.front() {
            let Some(at) = self.nodes.iter().position(|n| n.free >= cpus) else {
                return;
            };
            self.waiting.pop_front();
            let node = &mut self.nodes[at];
            node.free -= cpus;
            self.granted.insert(id, (at, cpus));
            self.ready.push(CpuGrant {
                request: id,
                node: node.name.clone(),
                cpus,
            });
        }
    }

    /// CPUs granted and not yet released.
    pub fn cpus_in_use(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.total - n.free)).sum()
    }

    /// Free CPUs of each node, in the allocation's order.
    pub fn free_cpus(&self) -> Vec<(&str, u32)> {
        self.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.free))
            .collect()
    }

    /// Requests still waiting for CPUs.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::AllocatedNode;

    fn pool(cpus: &[u32]) -> CpuPool {
        CpuPool::new(&Allocation {
            job_id: "1".into(),
            nodes: cpus
                .iter()
                .enumerate()
                .map(|(i, &cpus)| AllocatedNode {
                    name: format!("n{i}"),
                    cpus,
                })
                .collect(),
        })
    }

    #[test]
    fn worker_waits_for_its_cpus_on_one_node() {
        // 2 + 2 CPUs: 3 free in total after one grant, but no node has 3.
        let mut pool = pool(&[2, 2]);
        let a = pool.request(1).unwrap();
        let b = pool.request(2).unwrap();
        assert_eq!(pool.take_grants().len(), 2);
        let c = pool.request(2).unwrap();
        assert!(pool.take_grants().is_empty(), "only 1 CPU free on n0");
        pool.release(a).unwrap();
        let grants = pool.take_grants();
        assert_eq!(
            grants,
            [CpuGrant {
                request: c,
                node: "n0".into(),
                cpus: 2
            }]
        );
        pool.release(b).unwrap();
        assert_eq!(pool.cpus_in_use(), 2);
    }

    #[test]
    fn big_request_at_the_head_is_not_overtaken() {
        let mut pool = pool(&[2]);
        let a = pool.request(1).unwrap();
        let big = pool.request(2).unwrap();
        let small = pool.request(1).unwrap();
        assert_eq!(pool.take_grants().len(), 1);
        assert_eq!(
            pool.waiting(),
            2,
            "the small request waits behind the big one"
        );
        pool.release(a).unwrap();
        assert_eq!(pool.take_grants()[0].request, big);
        pool.release(big).unwrap();
        assert_eq!(pool.take_grants()[0].request, small);
    }

    #[test]
    fn impossible_and_unknown_requests_are_errors() {
        let mut pool = pool(&[2, 4]);
        assert_eq!(pool.request(0), Err(CpuPoolError::ZeroCpus));
        assert_eq!(
            pool.request(5),
            Err(CpuPoolError::NeverFits {
                cpus: 5,
                largest_node_cpus: 4
            })
        );
        let a = pool.request(4).unwrap();
        pool.release(a).unwrap();
        assert_eq!(pool.release(a), Err(CpuPoolError::UnknownRequest(a)));
        assert!(CpuPool::new(&Allocation {
            job_id: "1".into(),
            nodes: vec![]
        })
        .request(1)
        .is_err());
    }

    #[test]
    fn withdrawn_waiting_request_is_never_granted() {
        let mut pool = pool(&[1]);
        let a = pool.request(1).unwrap();
        assert_eq!(pool.take_grants()[0].request, a);
        let b = pool.request(1).unwrap();
        pool.release(b).unwrap();
        pool.release(a).unwrap();
        assert!(pool.take_grants().is_empty());
        assert_eq!(pool.cpus_in_use(), 0);
    }

    #[test]
    fn grant_released_before_it_is_taken_is_void() {
        let mut pool = pool(&[1]);
        let a = pool.request(1).unwrap();
        pool.release(a).unwrap();
        assert!(pool.take_grants().is_empty());
        assert_eq!(pool.cpus_in_use(), 0);
    }
}
