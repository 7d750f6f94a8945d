//! Closures: what one node asks another to run. A [`Closure`] is a label and an encoded
//! environment; the receiving node looks the label up in its [`RemoteTable`] and runs
//! it only if it is there. An unknown label is an error reply, never code execution.
//!
//! [`Closure`] and [`ClosureError`] are plain data (the wire carries them), defined in
//! the shared vocabulary (`types::closure`) below the wire and re-exported here; the
//! table, which knows how to start a [`Process`](crate::Process), is in
//! `closure::table`, above the process layer.

mod table;

pub use crate::types::closure::{Closure, ClosureError};
pub use table::RemoteTable;
