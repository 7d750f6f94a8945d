//! The vocabulary every layer shares (Cloud Haskell's `Internal.Types`): who
//! ([`id`]: process, node, monitor and channel ids), why a process ended ([`id`]'s
//! `DiedReason`, [`exit`]), what processes and nodes tell each other ([`signals`]) and
//! what the registry answers ([`registry`]), and what one node asks another to run
//! ([`closure`]).
//!
//! A leaf: it names nothing above [`message`](crate::message), so the kernel, the
//! node, the wire and the transport use it without depending on the
//! [`Process`](crate::Process) layer, which re-exports it under `process::`.

pub mod closure;
pub mod exit;
pub mod id;
pub mod registry;
pub mod signals;
