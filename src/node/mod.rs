//! Nodes: [`LocalNode`], a node's state on the thread that drives it. (A node running
//! on its own thread in the real world, [`Node`](crate::Node), is the runtime's:
//! `crate::runtime`, above the process layer.)
//!
//! A node composes the kernel (`crate::kernel`: the process table, the ready queue and
//! the timers) with owners, each in its own module: `links` (links,
//! monitors, exit signals), `registry` and `names` (the registry), `remote` and
//! `network` (routing: local delivery or the network, the reconnect rule, what peers
//! send), `emit` (the one event source, for the observer's `event`s and the mx bus), `channels`
//! (the channel table) and `watchdog` (a poll that holds the thread too long). The door
//! from other threads, [`Inbox`], is the kernel's, given the node as its jobs' argument. Nothing here
//! names [`Process`](crate::Process): the handle sits on top of the node (`process`).

pub(crate) mod channels;
mod emit;
mod event;
mod links;
pub(crate) mod local;
mod names;
pub mod network;
mod registry;
mod remote;
pub(crate) mod watchdog;

pub use event::{NodeEvent, Observer};
pub use local::{Inbox, LocalNode, NodeEnv, NodeResources};
pub use network::HeartbeatConfig;
pub use watchdog::POLL_WARNING_DEFAULT;
