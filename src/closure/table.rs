//! [`RemoteTable`]: label to entry point, and how the node starts the process a
//! closure names ([`ClosureRunner`], the node's view of the table, which lets the node
//! start closures without naming [`Process`]).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use crate::message::{decode, CodecError, Serializable};
use crate::node::local::{ClosureRunner, LocalNode, NodeEnv};
use crate::process::Process;
use crate::types::closure::{Closure, ClosureError};
use crate::types::id::{panic_text, DiedReason, ProcessId, ProcessOutcome};

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

impl ClosureRunner for RemoteTable {
    fn spawn_closure(
        &self,
        node: &LocalNode,
        closure: &Closure,
    ) -> Result<ProcessId, ClosureError> {
        let panicked = |error: String| ClosureError::Panicked {
            label: closure.label.clone(),
            error,
        };
        let resolved =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.resolve(closure)));
        let body = match resolved {
            Ok(body) => body?,
            Err(panic) => return Err(panicked(panic_text(panic.as_ref()))),
        };
        node.spawn_inner(body, |_, _| {})
            .map_err(|(_, error)| panicked(error))
    }
}

impl NodeEnv {
    /// The closures other nodes may ask this node to run.
    pub fn remote_table(self, table: RemoteTable) -> NodeEnv {
        self.closures(Rc::new(table))
    }
}
