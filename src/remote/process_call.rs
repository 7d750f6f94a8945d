//! [`Process::call`] (Cloud Haskell's `call`): the caller's side of
//! [`RemoteTable::register_call`](crate::RemoteTable::register_call). Here, not with the
//! other conveniences in `process/`, because it waits through an
//! [`Async`](crate::Async) and speaks the remote layer's [`CallEnvelope`], both above
//! the process layer.

use super::call::CallEnvelope;
use crate::concurrency::{Async, AsyncResult};
use crate::message::{encode, Serializable};
use crate::process::conveniences::CallError;
use crate::process::{Process, SpawnError};
use crate::types::closure::Closure;
use crate::types::id::{DiedReason, NodeId};

impl Process {
    /// Runs the function registered as `label` with
    /// [`RemoteTable::register_call`](crate::RemoteTable::register_call) on `node` with
    /// `argument`, and waits for its result (Cloud Haskell's `call`).
    ///
    /// ```
    /// use hyperion::{Process, RemoteTable};
    /// let mut table = RemoteTable::new();
    /// table.register_call("square", |_p: Process, x: u64| async move { Ok::<_, String>(x * x) });
    /// let node = hyperion::Node::with_config(hyperion::NodeConfig {
    ///     remote_table: table,
    ///     ..Default::default()
    /// }).unwrap();
    /// let squared = node.run(|p| async move { p.call::<u64, u64>(p.self_node(), "square", &9).await });
    /// assert_eq!(squared, Ok(Ok(81)));
    /// ```
    pub async fn call<A: Serializable, R: Serializable + Clone>(
        &self,
        node: NodeId,
        label: &str,
        argument: &A,
    ) -> Result<R, CallError> {
        let id = self.random_u64();
        let envelope = CallEnvelope {
            argument: encode(argument).map_err(|err| CallError::Refused(err.to_string()))?,
            reply_to: self.self_pid(),
            call: id,
        };
        let closure = Closure {
            label: label.to_string(),
            environment: encode(&envelope).map_err(|err| CallError::Refused(err.to_string()))?,
        };
        let pid = match self.spawn(node, closure).await {
            Ok(pid) => pid,
            Err(SpawnError::Refused(why)) => return Err(CallError::Refused(why)),
            Err(err @ SpawnError::TooLarge { .. }) => {
                return Err(CallError::Refused(err.to_string()))
            }
            Err(SpawnError::Disconnected(_)) => {
                return Err(CallError::Died(DiedReason::Disconnect))
            }
        };
        let monitor = self.monitor(pid);
        let task: Async<Result<R, String>> = Async::from_parts(self, pid, id, monitor);
        match task.wait(self).await {
            AsyncResult::Done(Ok(value)) => Ok(value),
            AsyncResult::Done(Err(why)) => Err(CallError::Failed(why)),
            AsyncResult::Failed(reason) | AsyncResult::LinkFailed(reason) => {
                Err(CallError::Died(reason))
            }
            AsyncResult::Cancelled | AsyncResult::Pending => {
                unreachable!("a call is neither cancelled nor waited on with a timeout")
            }
        }
    }
}
