//! [`ServiceId`]: the name of one master/worker pairing, a leaf every other module of
//! `remote/` may use.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::process::Process;

/// Names one master/worker pairing. Unique across every master of a cluster: it joins
/// the master's node address, its incarnation, a per-process counter and a random
/// number (from the node's seeded source, so it is reproducible in the simulator).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ServiceId(String);

impl ServiceId {
    /// A fresh id for a service of `p`'s node.
    pub fn fresh(p: &Process) -> ServiceId {
        let node = p.self_node();
        ServiceId(format!(
            "service-{}-{:x}-{}-{:08x}",
            node.address,
            node.incarnation,
            p.self_pid().local,
            p.random_u64() as u32
        ))
    }

    /// The id as text (it is also the name registered on the master).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id from text (a worker reads it from its command line).
    pub fn from_text(text: &str) -> ServiceId {
        ServiceId(text.to_string())
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
