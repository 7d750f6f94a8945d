//! # hyperion
//!
//! Distributed processes in the style of Cloud Haskell (Erlang's model, typed), built so
//! that the same code runs over real TCP and inside a deterministic, seeded simulator
//! that injects faults.
//!
//! A *process* is an `async` block that receives its [`Process`] handle. Processes
//! share nothing; they talk by messages (any [`Serializable`] type), receive
//! selectively, link to and monitor each other, and register names.
//!
//! ```
//! use hyperion::{match_if, match_type, Node, ProcessId};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Ping { from: ProcessId, n: u32 }
//!
//! let node = Node::new().unwrap();
//! let total = node.run(|p| async move {
//!     // A server that answers three pings with n + 1.
//!     let server = p.spawn_local(|s| async move {
//!         for _ in 0..3 {
//!             let ping: Ping = s.expect().await;
//!             s.send(ping.from, ping.n + 1);
//!         }
//!     });
//!     let mut total = 0;
//!     for n in 0..3 {
//!         p.send(server, Ping { from: p.self_pid(), n });
//!         total += p.receive_wait(vec![
//!             match_if(|reply: &u32| *reply > 100, |_| 0),
//!             match_type(|reply: u32| reply),
//!         ]).await;
//!     }
//!     total
//! });
//! assert_eq!(total, Ok(1 + 2 + 3));
//! ```
//!
//! Where to look next:
//! - [`Process`]: everything a process can do (messages, channels, registry, links,
//!   monitors, exits, timers, blocking work);
//! - [`Node`]: a node on its own thread, and how `main` runs a program;
//! - [`LocalNode`] and [`runtime`]: the scheduler, for those who write drivers (the
//!   simulator in `hyperion-sim` is one);
//! - [`message`]: the envelope and its stable type fingerprints;
//! - [`mx`]: the management event bus, agents, system events and tracing.

#![warn(missing_docs)]

pub mod build_id;
mod bus;
pub mod clock;
pub mod closure;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod concurrency;
mod kernel;
pub mod launch;
pub mod message;
pub mod mx;
pub mod node;
mod notice;
#[doc(hidden)]
pub mod planted;
pub mod probe;
pub mod process;
pub mod remote;
pub mod runtime;
#[cfg(feature = "cluster")]
pub mod status;
pub mod store;
pub mod transport;
mod types;
mod varint;
pub mod wire;

pub use build_id::BuildId;
pub use closure::{Closure, ClosureError, RemoteTable};
pub use concurrency::{Async, AsyncResult};
pub use message::{Message, Serializable};
pub use node::{HeartbeatConfig, LocalNode, NodeEnv, NodeEvent, NodeResources};
pub use process::channel::{ReceivePort, SendPort};
pub use process::conveniences::CallError;
pub use process::port_monitor::PortMonitorNotification;
pub use process::receive::{match_any, match_any_if, match_chan, match_if, match_type, Match};
pub use process::{Process, SpawnError};
pub use runtime::{Node, NodeConfig, NodeStopped};
pub use types::exit::{ExitReason, ProcessTermination};
pub use types::id::{DiedReason, MonitorRef, NodeId, ProcessId, ProcessOutcome, SendPortId};
pub use types::registry::RegistryError;
pub use types::signals::{
    NodeMonitorNotification, ProcessExitSignal, ProcessLinkSignal, ProcessMonitorNotification,
};

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
