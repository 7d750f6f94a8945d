//! Closures: what one node asks another to run. A [`Closure`] is a label and an encoded
//! environment; the receiving node looks the label up in its [`RemoteTable`] and runs
//! it only if it is there. An unknown label is an error reply, never code execution.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::message::{decode, encode, CodecError, Serializable};
use crate::process::id::{DiedReason, ProcessOutcome};
use crate::process::Process;

/// A label plus encoded arguments: a process another node can start, if its remote
/// table knows the label.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Closure {
    /// The entry in the remote table.
    pub label: String,
    /// The encoded argument.
    pub environment: Vec<u8>,
}

impl Closure {
    /// A closure that runs the table entry `label` with `argument`.
    ///
    /// ```
    /// let closure = hyperion::Closure::new("square", &7u64).unwrap();
    /// assert_eq!(closure.label, "square");
    /// ```
    pub fn new<A: Serializable>(label: &str, argument: &A) -> Result<Closure, CodecError> {
        Ok(Closure {
            label: label.to_string(),
            environment: encode(argument)?,
        })
    }
}

/// Why a closure could not be started.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClosureError {
    /// The label is not in the receiving node's remote table.
    UnknownLabel(String),
    /// The environment does not decode as the entry's argument type.
    BadEnvironment {
        /// The entry.
        label: String,
        /// The decoder's complaint.
        error: String,
    },
    /// The entry panicked while starting its process (decoding the environment or
    /// building the process); the process, if it existed, died at once.
    Panicked {
        /// The entry.
        label: String,
        /// The panic's text.
        error: String,
    },
}

impl fmt::Display for ClosureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosureError::UnknownLabel(label) => {
                write!(f, "no closure labelled {label:?} in the remote table")
            }
            ClosureError::BadEnvironment { label, error } => {
                write!(f, "closure {label:?}: bad environment: {error}")
            }
            ClosureError::Panicked { label, error } => {
                write!(f, "closure {label:?}: {error}")
            }
        }
    }
}

impl std::error::Error for ClosureError {}

pub(crate) type ProcessBody = Box<dyn FnOnce(Process) -> Pin<Box<dyn Future<Output = DiedReason>>>>;
type Entry = Arc<dyn Fn(&[u8]) -> Result<ProcessBody, CodecError> + Send + Sync>;

/// The closures a node will run for others, by label (Cloud Haskell's `RemoteTable`).
///
/// ```
/// use hyperion::{Process, RemoteTable};
/// let mut table = RemoteTable::new();
/// table.register("square", |p: Process, x: u64| async move {
///     let reply_to: hyperion::ProcessId = p.expect().await;
///     p.send(reply_to, x * x);
/// });
/// assert!(table.contains("square"));
/// ```
#[derive(Clone, Default)]
pub struct RemoteTable {
    entries: BTreeMap<String, Entry>,
}

impl RemoteTable {
    /// An empty table.
    pub fn new() -> RemoteTable {
        RemoteTable::default()
    }

    /// Registers `body` under `label`: a closure with that label starts a process
    /// running `body` with the decoded argument. A second registration replaces the first.
    /// The table is shared with the node's thread, so `body` must be `Send + Sync`; the
    /// future it returns need not be.
    pub fn register<A, F, Fut>(&mut self, label: &str, body: F) -> &mut Self
    where
        A: Serializable,
        F: Fn(Process, A) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        let body = Arc::new(body);
        let entry: Entry = Arc::new(move |environment: &[u8]| {
            let argument: A = decode(environment)?;
            let body = body.clone();
            let start: ProcessBody = Box::new(move |process: Process| {
                let future = body(process, argument);
                Box::pin(async move { future.await.into_reason() })
            });
            Ok(start)
        });
        self.entries.insert(label.to_string(), entry);
        self
    }

    /// Whether `label` is registered.
    pub fn contains(&self, label: &str) -> bool {
        self.entries.contains_key(label)
    }

    /// The registered labels, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The process body a closure stands for, or why there is none.
    pub(crate) fn resolve(&self, closure: &Closure) -> Result<ProcessBody, ClosureError> {
        let entry = self
            .entries
            .get(&closure.label)
            .ok_or_else(|| ClosureError::UnknownLabel(closure.label.clone()))?;
        entry(&closure.environment).map_err(|err| ClosureError::BadEnvironment {
            label: closure.label.clone(),
            error: err.to_string(),
        })
    }
}

impl fmt::Debug for RemoteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries.keys()).finish()
    }
}
