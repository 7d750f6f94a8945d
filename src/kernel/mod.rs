//! The kernel: what every node needs to run processes. It owns the process table (each
//! slot: the task's future, its mailbox, its relations), and is built on the
//! scheduler's parts in [`runtime`](crate::runtime) (task ids, the ready queue,
//! timers). It knows nothing of the network, the registry or management: the node
//! (`node::local`) composes it with those owners.

mod table;

pub(crate) use table::{
    Abandoned, ExitHook, LocalMonitor, ProcessFuture, ProcessSlot, ProcessTable, Relations,
};
