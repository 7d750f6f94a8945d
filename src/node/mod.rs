//! Nodes: [`LocalNode`], a node's state on the thread that drives it, and [`Node`], a
//! node running on its own thread in the real world, usable from ordinary code.

pub(crate) mod local;
mod thread;

pub use local::{LocalNode, NodeEnv, NodeResources};
pub use thread::{Node, NodeConfig, NodeStopped};
