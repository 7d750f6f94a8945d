//! Conveniences Cloud Haskell users reach for: `usend`, `spawnChannelLocal`, and the
//! error of `call` ([`CallError`]; [`Process::call`] itself waits with an `Async`, so it
//! sits above the process layer, in `remote::process_call`).
//! (`matchAnyIf` is [`match_any_if`](crate::match_any_if), beside the other matches.)

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::rc::Rc;

use super::channel::{ReceivePort, SendPort};
use super::id::{DiedReason, ProcessId, ProcessOutcome};
use super::Process;
use crate::message::{Message, Serializable};

/// Why a [`Process::call`] has no result.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CallError {
    /// The node refused to start it: an unknown label or a bad argument.
    Refused(String),
    /// The function returned an error or panicked (its text).
    Failed(String),
    /// The process running it died before answering (a lost connection included).
    Died(DiedReason),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused(why) => write!(f, "call refused: {why}"),
            CallError::Failed(why) => write!(f, "call failed: {why}"),
            CallError::Died(reason) => write!(f, "call died before answering: {reason}"),
        }
    }
}

impl std::error::Error for CallError {}

impl Process {
    /// Sends `message` to `to` unreliably (Cloud Haskell's `usend`): like
    /// [`send`](Process::send), but not held back after a broken connection (no
    /// [`reconnect`](Process::reconnect) needed), so nothing tells the sender of a
    /// gap: messages may be lost in the middle of a stream, and still arrive in order.
    pub fn usend<T: Serializable>(&self, to: ProcessId, message: T) {
        self.node()
            .state()
            .send_unreliable(self.self_pid(), to, Message::new(message));
    }

    /// Starts a process on this node that owns a new channel and receives its
    /// [`ReceivePort`]; returns the channel's [`SendPort`] (Cloud Haskell's
    /// `spawnChannelLocal`). The channel exists before this returns: sends on it are
    /// kept for the process.
    ///
    /// ```
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let me = p.self_pid();
    /// let (port, _) = p.spawn_channel_local(move |c, rx| async move {
    ///     let n: u32 = c.receive_chan(&rx).await;
    ///     c.send(me, n + 1);
    /// });
    /// p.send_chan(port, 41);
    /// assert_eq!(p.expect::<u32>().await, 42);
    /// # }).unwrap();
    /// ```
    pub fn spawn_channel_local<T, F, Fut>(&self, body: F) -> (SendPort<T>, ProcessId)
    where
        T: Serializable,
        F: FnOnce(Process, ReceivePort<T>) -> Fut,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        let port: Rc<RefCell<Option<SendPort<T>>>> = Rc::default();
        let port_out = port.clone();
        let pid = self.spawn_local(move |child| {
            // The child's slot exists while its body is built: the channel is its own.
            let (tx, rx) = child.new_chan::<T>();
            *port_out.borrow_mut() = Some(tx);
            body(child, rx)
        });
        let port = port
            .borrow_mut()
            .take()
            .expect("spawn builds the body before it returns");
        (port, pid)
    }
}
