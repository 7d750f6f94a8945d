//! Processes: the [`Process`] handle each process runs with, and everything it can do:
//! send and selectively receive messages, typed channels, the registry, links,
//! monitors, exit signals, timers and blocking work. It sits on top of the node
//! (`node`), which never names it; the ids, reasons and signals it speaks of are the
//! shared vocabulary's (`types`), re-exported here as `id`, `exit`, `signals` and
//! `registry`. Above it, and never named here: what processes build (closures'
//! `RemoteTable`, `Async`, management agents), the remote layer (`Process::call` is in
//! `remote::process_call`) and the runtime (`Node`, with `Node::spawn` and `Node::run`);
//! `tests/architecture.rs` checks the layers. The handle itself is in `handle`.
//!
//! Guarantees: messages from one process to another arrive in the order sent, at most
//! once; sending never blocks; a message to a dead or unknown process is dropped
//! silently (use a monitor to learn of deaths). Nothing is promised about the order of
//! messages from different senders.
//!
//! Size: over 600 lines because this is the public surface of one type, [`Process`]:
//! each method is a short call into the owner that does the work (kernel, links,
//! registry, routing), documented where users look for it.

pub mod channel;
pub use crate::types::{exit, id, registry, signals};
pub mod conveniences;
mod handle;
pub mod port_monitor;
pub mod receive;
pub mod room;
mod spawn;
pub mod timer;
mod typed_exit;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use self::handle::Process;

use self::channel::{ReceivePort, SendPort, SendPortId};
use self::id::{DiedReason, MonitorRef, NodeId, ProcessId, ProcessOutcome};
use self::receive::match_if;
use self::receive::{match_chan, Expect, Match, Receive};
use self::registry::{RegistryAction, RegistryError};
use self::signals::{NodeMonitorNotification, RegistryReply, SpawnReply, WhereIsReply};
use self::timer::Sleep;
use crate::bus::events::MxRecipient;
use crate::message::{Message, Serializable};
use crate::types::closure::Closure;
use crate::wire::{Control, Frame, WireError};

/// Longest stall, in milliseconds of virtual time, of a blocking job whose completion
/// a simulator holds back (the `buggify!` point of [`Process::run_blocking`]).
const BLOCKING_STALL_MS_MAX: u64 = 10_000;

impl Process {
    // ----- spawning -----

    /// Starts a new process on this node (Cloud Haskell's `spawnLocal`).
    ///
    /// ```
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let child = p.spawn_local(|c| async move {
    ///     let parent: hyperion::ProcessId = c.expect().await;
    ///     c.send(parent, "hello".to_string());
    /// });
    /// p.send(child, p.self_pid());
    /// assert_eq!(p.expect::<String>().await, "hello");
    /// # }).unwrap();
    /// ```
    pub fn spawn_local<F, Fut>(&self, body: F) -> ProcessId
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        self.node.spawn(body)
    }

    /// Spawns a process and links this one to it, before it can run.
    pub fn spawn_link<F, Fut>(&self, body: F) -> ProcessId
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        let linker = self.pid;
        // Linked before the body is built: a panic there reaches the link.
        match self
            .node
            .spawn_inner(body, |state, child| state.link(linker, child))
        {
            Ok(child) | Err((child, _)) => child,
        }
    }

    /// Spawns a process and monitors it, before it can run.
    pub fn spawn_monitor<F, Fut>(&self, body: F) -> (ProcessId, MonitorRef)
    where
        F: FnOnce(Process) -> Fut,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        let watcher = self.pid;
        let mut monitor_ref = None;
        // Monitored before the body is built: a panic there reaches the monitor.
        let spawned = self.node.spawn_inner(body, |state, child| {
            monitor_ref = Some(state.monitor(watcher, child));
        });
        let (Ok(child) | Err((child, _))) = spawned;
        (
            child,
            monitor_ref.expect("set when the process was inserted"),
        )
    }

    // ----- messages -----

    /// Sends `message` to `to`. Never blocks; dropped if `to` is dead or unreachable.
    pub fn send<T: Serializable>(&self, to: ProcessId, message: T) {
        self.node.state().send_value(self.pid, to, message);
    }

    /// Sends an already-built [`Message`] (for forwarding what [`match_any`] took).
    ///
    /// [`match_any`]: crate::match_any
    pub fn forward(&self, to: ProcessId, message: Message) {
        self.node.state().send_from(self.pid, to, message);
    }

    /// Waits for the first message of type `T`; other messages stay queued.
    pub fn expect<T: Serializable>(&self) -> ExpectValue<'_, T> {
        ExpectValue(Expect::new(self, None))
    }

    /// Like [`expect`](Process::expect), giving up with `None` after `timeout`.
    pub fn expect_timeout<T: Serializable>(&self, timeout: Duration) -> Expect<'_, T> {
        Expect::new(self, Some(timeout))
    }

    /// Selective receive: waits until some match accepts a message, and returns what
    /// that match made of it. Messages no match accepts stay queued, in order.
    ///
    /// ```
    /// use hyperion::{match_if, match_type};
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// p.send(p.self_pid(), 1u32);
    /// p.send(p.self_pid(), "skip me".to_string());
    /// p.send(p.self_pid(), 42u64);
    /// let got = p.receive_wait(vec![
    ///     match_if(|n: &u64| *n > 10, |n| n),
    ///     match_type(|n: u32| u64::from(n) + 1000),
    /// ]).await;
    /// assert_eq!(got, 1001); // the oldest message any match accepts
    /// # }).unwrap();
    /// ```
    pub fn receive_wait<'a, R: 'a>(
        &'a self,
        matches: Vec<Match<'a, R>>,
    ) -> impl Future<Output = R> + 'a {
        let receive = Receive::new(self, matches, None);
        async move { receive.await.expect("no timeout was set") }
    }

    /// Like [`receive_wait`](Process::receive_wait), giving up with `None` after
    /// `timeout`. A zero timeout only looks at what is already there.
    pub fn receive_timeout<'a, R>(
        &'a self,
        timeout: Duration,
        matches: Vec<Match<'a, R>>,
    ) -> Receive<'a, R> {
        Receive::new(self, matches, Some(timeout))
    }

    // ----- typed channels -----

    /// Creates a typed channel owned by this process.
    ///
    /// ```
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let (tx, rx) = p.new_chan::<u32>();
    /// p.send_chan(tx, 5);
    /// assert_eq!(p.receive_chan(&rx).await, 5);
    /// # }).unwrap();
    /// ```
    pub fn new_chan<T: Serializable>(&self) -> (SendPort<T>, ReceivePort<T>) {
        let channel = self.node.state().open_channel(self.task);
        let id = SendPortId {
            owner: self.pid,
            channel,
        };
        (SendPort::new(id), ReceivePort::new(channel))
    }

    /// Sends on a typed channel. Never blocks; dropped if the owner is dead.
    pub fn send_chan<T: Serializable>(&self, port: SendPort<T>, message: T) {
        let id = port.id();
        let mut state = self.node.state();
        state.mx_sent_to_port::<T>(self.pid, id); // mx hook
        if id.owner.node == self.pid.node {
            state.mx_received_port::<T>(id); // mx hook
            state.deliver_chan(id.channel, Message::new(message));
            return;
        }
        let (fingerprint, payload) = match Message::new(message).into_encoded() {
            Ok(encoded) => encoded,
            Err(err) => {
                tracing::error!(port = ?port, %err, "channel message dropped: cannot encode");
                return;
            }
        };
        let frame = Frame::ChannelData {
            port: id,
            from: self.pid,
            fingerprint,
            payload,
        };
        state.send_data_frame(self.pid, id.owner, &frame);
    }

    /// Waits for the next value on a channel (or merged port).
    pub fn receive_chan<'a, T: Serializable>(
        &'a self,
        port: &'a ReceivePort<T>,
    ) -> impl Future<Output = T> + 'a {
        self.receive_wait(vec![match_chan(port, |value| value)])
    }

    /// Like [`receive_chan`](Process::receive_chan), giving up with `None` after
    /// `timeout`.
    pub fn receive_chan_timeout<'a, T: Serializable>(
        &'a self,
        timeout: Duration,
        port: &'a ReceivePort<T>,
    ) -> Receive<'a, T> {
        self.receive_timeout(timeout, vec![match_chan(port, |value| value)])
    }

    // ----- registry -----

    /// Registers `name` for `pid` on this node. Refused if the name is taken or `pid` (a
    /// process of this node) is not alive. The name is freed when the process dies.
    pub fn register(&self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        self.node.state().register(name, pid)
    }

    /// Removes a name from this node's registry.
    pub fn unregister(&self, name: &str) -> Result<(), RegistryError> {
        self.node.state().unregister(name).map(|_| ())
    }

    /// Gives `name`, already registered, to `pid` instead (Cloud Haskell's
    /// `reregister`). Refused if nobody holds the name, or `pid` (a process of this
    /// node) is not alive.
    pub fn reregister(&self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        self.node.state().reregister(name, pid)
    }

    /// The process registered as `name` on this node, if any.
    pub fn whereis(&self, name: &str) -> Option<ProcessId> {
        self.node.state().whereis(name)
    }

    /// Sends to the process registered as `name` on this node, wherever that process
    /// runs; dropped if there is none.
    pub fn nsend<T: Serializable>(&self, name: &str, message: T) {
        let mut state = self.node.state();
        state.mx_sent_to_name::<T>(self.pid, name); // mx hook
        match state.whereis(name) {
            Some(pid) => state.send_to_holder(self.pid, pid, Message::new(message)),
            None => tracing::debug!(name, "nsend to an unregistered name; message dropped"),
        }
    }

    // ----- other nodes -----

    /// Sends to the process registered as `name` on `node` (Cloud Haskell's
    /// `nsendRemote`); dropped if there is none.
    pub fn nsend_remote<T: Serializable>(&self, node: NodeId, name: &str, message: T) {
        if node == self.pid.node {
            self.nsend(name, message);
            return;
        }
        self.node.state().mx_sent_to_name::<T>(self.pid, name); // mx hook
        let (fingerprint, payload) = match Message::new(message).into_encoded() {
            Ok(encoded) => encoded,
            Err(err) => {
                tracing::error!(%node, name, %err, "message dropped: cannot encode");
                return;
            }
        };
        let frame = Frame::NamedData {
            name: name.to_string(),
            from: self.pid,
            fingerprint,
            payload,
        };
        let to = MxRecipient::Name {
            node,
            name: name.to_string(),
        };
        // A refusal is logged and published by the node.
        let _ = self
            .node
            .state()
            .send_frame_from(self.pid, to, node, &frame);
    }

    /// Looks `name` up in `node`'s registry. `None` if nobody holds it, or if the
    /// connection to `node` is lost before it answers.
    pub async fn whereis_remote(&self, node: NodeId, name: &str) -> Option<ProcessId> {
        if node == self.pid.node {
            return self.whereis(name);
        }
        let request = self.node.state().unique();
        let control = Control::WhereIs {
            request,
            name: name.to_string(),
            reply_to: self.pid,
        };
        self.remote_request(node, control, move |reply: &WhereIsReply| {
            reply.request == request
        })
        .await
        .ok()
        .flatten()
        .and_then(|reply| reply.pid)
    }

    /// Registers `name` for `pid` in `node`'s registry (Cloud Haskell's
    /// `registerRemoteAsync`, waiting for the answer): `Ok`, or why not (the name is
    /// taken, `pid` is a dead process of that node, the connection was lost).
    pub async fn register_remote(
        &self,
        node: NodeId,
        name: &str,
        pid: ProcessId,
    ) -> Result<(), RegistryError> {
        self.registry_remote(node, name, RegistryAction::Register(pid))
            .await
    }

    /// Gives `name`, registered on `node`, to `pid` instead (`reregisterRemoteAsync`).
    pub async fn reregister_remote(
        &self,
        node: NodeId,
        name: &str,
        pid: ProcessId,
    ) -> Result<(), RegistryError> {
        self.registry_remote(node, name, RegistryAction::Reregister(pid))
            .await
    }

    /// Removes `name` from `node`'s registry (`unregisterRemoteAsync`): `Ok`, or why not
    /// (nobody holds it, the connection was lost).
    pub async fn unregister_remote(&self, node: NodeId, name: &str) -> Result<(), RegistryError> {
        self.registry_remote(node, name, RegistryAction::Unregister)
            .await
    }

    async fn registry_remote(
        &self,
        node: NodeId,
        name: &str,
        action: RegistryAction,
    ) -> Result<(), RegistryError> {
        if node == self.pid.node {
            return self.node.state().apply_registry_action(name, action);
        }
        let request = self.node.state().unique();
        let control = Control::Registry {
            request,
            reply_to: self.pid,
            name: name.to_string(),
            action,
        };
        self.remote_request(node, control, move |reply: &RegistryReply| {
            reply.request == request
        })
        .await
        .map_err(|err| RegistryError::Unsendable(err.to_string()))?
        .ok_or(RegistryError::Disconnected(node))?
        .result
    }

    /// Starts `closure` on `node` (Cloud Haskell's `spawn`): the node looks its label up
    /// in its remote table. An unknown label, a bad argument, or a connection lost before
    /// the answer is an error.
    ///
    /// ```
    /// use hyperion::{Closure, Process, RemoteTable};
    /// let mut table = RemoteTable::new();
    /// table.register("double", |p: Process, (n, to): (u64, hyperion::ProcessId)| async move {
    ///     p.send(to, n * 2);
    /// });
    /// let node = hyperion::Node::with_config(hyperion::NodeConfig {
    ///     remote_table: table,
    ///     ..Default::default()
    /// }).unwrap();
    /// let doubled = node.run(|p| async move {
    ///     let closure = Closure::new("double", &(21u64, p.self_pid())).unwrap();
    ///     p.spawn(p.self_node(), closure).await.unwrap();
    ///     p.expect::<u64>().await
    /// });
    /// assert_eq!(doubled, Ok(42));
    /// ```
    pub async fn spawn(&self, node: NodeId, closure: Closure) -> Result<ProcessId, SpawnError> {
        if node == self.pid.node {
            return self
                .node
                .spawn_closure(&closure)
                .map_err(|err| SpawnError::Refused(err.to_string()));
        }
        let request = self.node.state().unique();
        let control = Control::Spawn {
            request,
            reply_to: self.pid,
            closure,
        };
        let reply = self
            .remote_request(node, control, move |reply: &SpawnReply| {
                reply.request == request
            })
            .await
            .map_err(|err| match err {
                WireError::FrameTooLong { length, limit } => SpawnError::TooLarge {
                    bytes: length,
                    limit: limit as u64,
                },
                other => SpawnError::Refused(other.to_string()),
            })?
            .ok_or(SpawnError::Disconnected(node))?;
        reply.result.map_err(SpawnError::Refused)
    }

    /// Sends a control request to `node` and waits for the reply `is_reply` picks, or
    /// for the loss of the connection (`Ok(None)`). A request that cannot be sent (over
    /// the frame limit) is an error at once, with nothing sent.
    async fn remote_request<R: Serializable>(
        &self,
        node: NodeId,
        control: Control,
        is_reply: impl Fn(&R) -> bool,
    ) -> Result<Option<R>, WireError> {
        let watch = self.monitor_node(node);
        let sent = self.node.state().send_frame_from(
            self.pid,
            MxRecipient::Node(node),
            node,
            &Frame::Control(control),
        );
        if let Err(err) = sent {
            self.unmonitor_node(watch);
            return Err(err);
        }
        let reply = self
            .receive_wait(vec![
                match_if(is_reply, Some),
                match_if(
                    move |n: &NodeMonitorNotification| n.monitor_ref == watch,
                    |_| None,
                ),
            ])
            .await;
        self.unmonitor_node(watch);
        Ok(reply)
    }

    /// Monitors the connection to `node`: a [`NodeMonitorNotification`] arrives when it
    /// is lost (at once if there is no way to reach the node).
    pub fn monitor_node(&self, node: NodeId) -> MonitorRef {
        self.node.state().monitor_node(self.pid, node)
    }

    /// Removes a node monitor; a notification already queued is withdrawn.
    pub fn unmonitor_node(&self, monitor_ref: MonitorRef) {
        let mut state = self.node.state();
        state.unmonitor(self.pid, monitor_ref);
        state.flush_node_notifications(self.pid, monitor_ref);
    }

    /// Acknowledges that the connection to `pid`'s node may have broken: messages from
    /// this process to `pid`, dropped since the break, flow again (Cloud Haskell's
    /// `reconnect`). Messages sent after the break and before this call are lost.
    ///
    /// The rule covers data (`send`, `send_chan`); control (spawn, monitors, links,
    /// `nsend_remote`, `whereis_remote`) reconnects by itself, as in Cloud Haskell.
    pub fn reconnect(&self, pid: ProcessId) {
        self.node.state().reconnect(self.pid, pid.node, Some(pid))
    }

    /// [`reconnect`](Process::reconnect) for every process of `node` this process has
    /// sent to.
    pub fn reconnect_node(&self, node: NodeId) {
        self.node.state().reconnect(self.pid, node, None)
    }

    // ----- links, monitors, exits -----

    /// Monitors `pid`: exactly one [`ProcessMonitorNotification`] will arrive when it
    /// dies (at once, with [`DiedReason::UnknownProcess`], if it is already dead).
    ///
    /// [`ProcessMonitorNotification`]: crate::ProcessMonitorNotification
    pub fn monitor(&self, pid: ProcessId) -> MonitorRef {
        self.node.state().monitor(self.pid, pid)
    }

    /// Removes a monitor. Afterwards no notification for it is received, even one that
    /// was already queued.
    pub fn unmonitor(&self, monitor_ref: MonitorRef) {
        self.node.state().unmonitor(self.pid, monitor_ref)
    }

    /// Links this process to `pid` (one way): when `pid` dies abnormally this process
    /// dies too, or, if it traps exits, receives a [`ProcessLinkSignal`].
    ///
    /// [`ProcessLinkSignal`]: crate::ProcessLinkSignal
    pub fn link(&self, pid: ProcessId) {
        self.node.state().link(self.pid, pid)
    }

    /// Removes a link; a link signal from `pid` already queued is withdrawn.
    pub fn unlink(&self, pid: ProcessId) {
        self.node.state().unlink(self.pid, pid)
    }

    /// Whether exit and link signals arrive as messages ([`ProcessExitSignal`],
    /// [`ProcessLinkSignal`]) instead of killing this process. Off by default.
    ///
    /// [`ProcessExitSignal`]: crate::ProcessExitSignal
    /// [`ProcessLinkSignal`]: crate::ProcessLinkSignal
    pub fn trap_exits(&self, trap: bool) {
        self.node.state().set_trap_exits(self.task, trap);
    }

    /// Asks `pid` to exit: it dies with an exception naming this process and `reason`,
    /// unless it traps exits, in which case it receives a [`ProcessExitSignal`].
    ///
    /// [`ProcessExitSignal`]: crate::ProcessExitSignal
    pub fn exit(&self, pid: ProcessId, reason: impl Into<String>) {
        self.node.state().exit_signal(self.pid, pid, reason.into())
    }

    /// Kills `pid`; it cannot trap this. It dies at its next turn (a process killing
    /// itself runs on until its next `.await`).
    pub fn kill(&self, pid: ProcessId, reason: impl Into<String>) {
        self.node.state().kill(self.pid, pid, reason.into())
    }

    /// Ends this process with [`DiedReason::Exception`]`(reason)`. Never resolves, so
    /// it fits any type: `let x: u64 = p.die("bad input").await;`.
    pub fn die<T>(&self, reason: impl Into<String>) -> Die<'_, T> {
        Die::new(self, DiedReason::Exception(reason.into()))
    }

    // ----- time -----

    /// Waits for `duration` on the node's clock.
    pub fn sleep(&self, duration: Duration) -> Sleep<'_> {
        Sleep::new(self, duration)
    }

    /// Lets every other ready process run before this one continues.
    pub fn yield_now(&self) -> YieldNow<'_> {
        YieldNow {
            process: self,
            yielded: false,
        }
    }

    // ----- randomness and blocking work -----

    /// A random number from the node's seeded source (reproducible in the simulator).
    pub fn random_u64(&self) -> u64 {
        self.node.state().random_u64()
    }

    /// Runs a blocking or CPU-heavy closure off the node's thread (on a thread pool; in
    /// the simulator, inline) and waits for its result. A panic in `job` becomes a
    /// panic of this process. In a simulator with buggify on, the job's completion may
    /// be held back (up to 10 s of virtual time, the probe
    /// `runtime.buggify.blocking_job_stalls`), as on a pool whose threads are all busy;
    /// await the future in the process that called this.
    ///
    /// ```
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let sum = p.run_blocking(|| (1..=100u64).sum::<u64>()).await;
    /// assert_eq!(sum, 5050);
    /// # }).unwrap();
    /// ```
    pub fn run_blocking<T, F>(&self, job: F) -> impl Future<Output = T> + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (sender, receiver) = futures::channel::oneshot::channel();
        self.node.blocking().execute(Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            let _ = sender.send(result);
        }));
        // A simulator may hold the job's completion back, as a pool whose threads are
        // all busy (or a job stuck on a slow disk) does: the caller then waits, in
        // virtual time, while the rest of the world goes on.
        let stall = crate::buggify!().then(|| {
            crate::reached!("runtime.buggify.blocking_job_stalls");
            let pause = Duration::from_millis(1 + self.random_u64() % BLOCKING_STALL_MS_MAX);
            (self.clone_handle(), pause)
        });
        async move {
            let outcome = receiver.await;
            if let Some((p, pause)) = stall {
                p.sleep(pause).await;
            }
            match outcome {
                Ok(Ok(value)) => value,
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                Err(_) => panic!("the blocking pool dropped the job (node shutting down)"),
            }
        }
    }
}

/// Why a remote spawn failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SpawnError {
    /// The node refused: an unknown label or a bad argument (the text says which).
    Refused(String),
    /// The connection to the node was lost before it answered.
    Disconnected(NodeId),
    /// The request (its closure) is longer than the transport's frame limit: it was
    /// refused before it was sent, and a retry would fail the same way.
    TooLarge {
        /// The encoded request's length, in bytes.
        bytes: u64,
        /// The frame limit, in bytes.
        limit: u64,
    },
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::Refused(why) => write!(f, "remote spawn refused: {why}"),
            SpawnError::Disconnected(node) => {
                write!(f, "remote spawn failed: connection to {node} lost")
            }
            SpawnError::TooLarge { bytes, limit } => write!(
                f,
                "remote spawn refused: the request of {bytes} bytes exceeds the frame limit of \
                 {limit} bytes"
            ),
        }
    }
}

impl std::error::Error for SpawnError {}

/// The future of [`Process::expect`].
pub struct ExpectValue<'a, T>(Expect<'a, T>);

impl<T: Serializable> Future for ExpectValue<'_, T> {
    type Output = T;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.get_mut().0)
            .poll(cx)
            .map(|value| value.expect("no timeout was set"))
    }
}

/// The future of [`Process::die`].
pub struct Die<'a, T> {
    process: &'a Process,
    reason: Option<DiedReason>,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T> Die<'a, T> {
    pub(crate) fn new(process: &'a Process, reason: DiedReason) -> Die<'a, T> {
        Die {
            process,
            reason: Some(reason),
            _type: std::marker::PhantomData,
        }
    }
}

impl<T> Future for Die<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        let this = self.get_mut();
        if let Some(reason) = this.reason.take() {
            let task = this.process.task;
            this.process.node.state().doom(task, reason);
        }
        Poll::Pending
    }
}

/// The future of [`Process::yield_now`].
pub struct YieldNow<'a> {
    process: &'a Process,
    yielded: bool,
}

impl Future for YieldNow<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.yielded {
            return Poll::Ready(());
        }
        this.yielded = true;
        let task = this.process.task;
        this.process.node.state().schedule(task);
        Poll::Pending
    }
}
