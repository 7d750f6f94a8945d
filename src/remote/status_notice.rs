//! What the remote layer tells the master's status agent, if one runs on its node: the
//! [`StatusNotice`]s (a worker launched, connected, ended; a call held, released), the
//! name the agent is registered under, and [`notify`]. The protocol belongs to the
//! remote layer, which speaks it; the status agent (`crate::status`, above it) listens
//! and re-exports these as `hyperion::status::*`.

use serde::{Deserialize, Serialize};

use crate::process::Process;
use crate::types::id::ProcessId;

/// The name the status agent is registered under on the master's node.
pub const STATUS_AGENT_NAME: &str = "hyperion.status";

/// What the remote layer tells the status agent, if one runs on its node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusNotice {
    /// A worker was launched for `service` as `job`.
    Launched {
        /// The service id.
        service: String,
        /// The launcher's job id, as text.
        job: String,
    },
    /// `service`'s worker connected; `owner` runs the service on the master.
    Connected {
        /// The service id.
        service: String,
        /// The worker's handshake process.
        worker: ProcessId,
        /// The master's process using the worker.
        owner: ProcessId,
    },
    /// `service` ended (its worker was told to shut down).
    Ended {
        /// The service id.
        service: String,
    },
    /// Remote work in `service` failed and `holder` holds it until released.
    Held {
        /// The service id.
        service: String,
        /// The error, as text.
        error: String,
        /// The process waiting for the release.
        holder: ProcessId,
    },
    /// The hold of `service` was released (the work is retried).
    Released {
        /// The service id.
        service: String,
    },
}

/// Tells the local status agent, if there is one (a master without a status server
/// has none, and the notice costs one registry look-up).
pub fn notify(p: &Process, notice: StatusNotice) {
    if let Some(agent) = p.whereis(STATUS_AGENT_NAME) {
        p.send(agent, notice);
    }
}
