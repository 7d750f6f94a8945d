//! Nodes: [`LocalNode`], a node's state on the thread that drives it, and [`Node`], a
//! node running on its own thread in the real world, usable from ordinary code.

mod event;
pub(crate) mod inbox;
mod links;
pub(crate) mod local;
mod mx_publish;
mod names;
pub mod network;
mod registry;
mod remote;
mod thread;
mod watchdog;

pub use event::{NodeEvent, Observer};
pub use local::{LocalNode, NodeEnv, NodeResources};
pub use network::HeartbeatConfig;
pub use thread::{Node, NodeConfig, NodeStopped};
pub use watchdog::POLL_WARNING_DEFAULT;
