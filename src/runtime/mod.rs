//! The real-world runtime: [`Node`], a node on its own OS thread (how `main` and tests
//! enter the runtime, Cloud Haskell's `runProcess`), the [`driver`] that runs it (one
//! thread, `mio`), and the [`blocking`] thread pool. The top of the stack: it composes
//! the node, the process layer and the remote table. The scheduler's parts (task ids,
//! the ready queue, timers, the executor trait) are the kernel's; [`TaskId`] is
//! re-exported here, where it always was.
//!
//! The simulator (the `hyperion-sim` crate) drives nodes its own way, from one thread
//! for a whole world, with the same [`LocalNode`](crate::node::LocalNode) methods
//! (`run_next`, `run_ready_at`, `fire_due_timers`, `next_deadline`, `drain_inbox`).

pub mod blocking;
mod busy_wait;
pub mod driver;
mod node;

pub use crate::kernel::TaskId;
pub use busy_wait::BUSY_WAIT_DEFAULT;
pub use node::{Node, NodeConfig, NodeStopped};
