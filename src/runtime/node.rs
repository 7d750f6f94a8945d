//! A node on its own OS thread, driven by the real-world [`Driver`]: how `main` and
//! tests enter the runtime (Cloud Haskell's `runProcess`). It sits above the node and
//! the process layer: it is configured with a [`RemoteTable`] (which starts `Process`es)
//! and runs processes on the node ([`Node::spawn`], [`Node::run`]).

use crate::build_id::BuildId;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::blocking::{ThreadPool, BLOCKING_THREADS_DEFAULT};
use super::driver::Driver;
use crate::clock::SystemClock;
use crate::closure::RemoteTable;
use crate::message::Serializable;
use crate::node::local::{Inbox, InboxItem, LocalNode, NodeEnv};
use crate::node::watchdog;
use crate::node::HeartbeatConfig;
use crate::process::Process;
use crate::transport::tcp::{TcpConfig, TcpTransport};
use crate::types::id::{panic_text, DiedReason, NodeId, ProcessId, ProcessOutcome};

/// How to start a [`Node`]. Without a transport the node is on its own; with
/// [`Node::tcp`] it is reachable over TCP.
///
/// ```
/// use hyperion::{Node, NodeConfig};
/// let node = Node::with_config(NodeConfig { rng_seed: Some(7), ..NodeConfig::default() }).unwrap();
/// assert_eq!(node.run(|p| async move { p.random_u64() != 0 }), Ok(true));
/// ```
#[derive(Clone)]
pub struct NodeConfig {
    /// The address in the node's id. A node without a transport is not reachable; the
    /// default is a loopback placeholder.
    pub address: SocketAddr,
    /// Seed of the node's random source; drawn from the OS if `None`.
    pub rng_seed: Option<u64>,
    /// Most threads the node's blocking pool starts.
    pub blocking_threads: usize,
    /// The closures other nodes (and `spawn` on this node) may start here.
    pub remote_table: RemoteTable,
    /// How to reach other nodes: `None` for a node on its own, or TCP.
    pub transport: Option<TcpConfig>,
    /// Keep-alive interval and silence tolerated before a peer is declared lost.
    pub heartbeat: HeartbeatConfig,
    /// The program's build identity, compared in the worker handshake and in the hello
    /// between nodes (a node of an incompatible build is refused); `None`: the one set
    /// with [`TcpConfig::build`], else the hash of the running executable
    /// ([`BuildId::of_current_exe`]). Declare builds compatible on purpose with
    /// [`BuildId::with_protocol`].
    pub build: Option<BuildId>,
    /// How long one poll of a process may hold the node's thread before a watchdog
    /// warns (a `tracing` warning and [`MxEvent::SlowPoll`](crate::mx::MxEvent::SlowPoll)
    /// naming the process): such a process stops the node, heartbeats included. `None`
    /// starts no watchdog. Default [`POLL_WARNING_DEFAULT`](crate::node::POLL_WARNING_DEFAULT)
    /// (100 ms).
    pub poll_warning: Option<std::time::Duration>,
    /// How long the node's event loop keeps polling without sleeping after its last
    /// work, yielding the CPU between polls: a reply or a frame that arrives within it
    /// costs no sleep and wake-up (on loopback, about half of a TCP round trip).
    /// Costs CPU only after work, never on an idle node. `Duration::ZERO` never spins.
    /// Default [`BUSY_WAIT_DEFAULT`](crate::runtime::BUSY_WAIT_DEFAULT) (50 µs).
    pub busy_wait: std::time::Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            rng_seed: None,
            blocking_threads: BLOCKING_THREADS_DEFAULT,
            remote_table: RemoteTable::new(),
            transport: None,
            heartbeat: HeartbeatConfig::default(),
            build: None,
            poll_warning: Some(watchdog::POLL_WARNING_DEFAULT),
            busy_wait: super::BUSY_WAIT_DEFAULT,
        }
    }
}

/// The node has stopped and takes no more work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeStopped;

impl fmt::Display for NodeStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the node has stopped")
    }
}

impl std::error::Error for NodeStopped {}

/// A node running on its own thread. Dropping it shuts the node down: every process is
/// stopped and the thread joined.
///
/// ```
/// let node = hyperion::Node::new().unwrap();
/// let answer = node.run(|p| async move {
///     let child = p.spawn_local(|c| async move {
///         let (from, n): (hyperion::ProcessId, u64) = c.expect().await;
///         c.send(from, n * 2);
///     });
///     p.send(child, (p.self_pid(), 21u64));
///     p.expect::<u64>().await
/// });
/// assert_eq!(answer, Ok(42));
/// ```
pub struct Node {
    id: NodeId,
    inbox: Arc<Inbox>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Node {
    /// Starts a node with the default configuration.
    pub fn new() -> std::io::Result<Node> {
        Node::with_config(NodeConfig::default())
    }

    /// Starts a node reachable over TCP: other nodes can send to its processes, spawn
    /// its registered closures, monitor and link.
    ///
    /// ```no_run
    /// use hyperion::{Node, NodeConfig};
    /// use hyperion::transport::tcp::TcpConfig;
    /// let node = Node::tcp(TcpConfig::bind("0.0.0.0:0").cookie_file("/tmp/cookie"), NodeConfig::default())?;
    /// println!("reachable at {}", node.id());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tcp(transport: TcpConfig, config: NodeConfig) -> std::io::Result<Node> {
        Node::with_config(NodeConfig {
            transport: Some(transport),
            ..config
        })
    }

    /// Starts a node.
    pub fn with_config(config: NodeConfig) -> std::io::Result<Node> {
        let incarnation = os_random();
        let rng_seed = config.rng_seed.unwrap_or_else(os_random);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread_stop = stop.clone();
        // real-world only: hashes the executable (once per process).
        let build = config
            .build
            .clone()
            .or_else(|| config.transport.as_ref().and_then(|tcp| tcp.build.clone()))
            .unwrap_or_else(BuildId::of_current_exe);
        let thread = std::thread::Builder::new()
            .name("hyperion-node".to_string())
            .spawn(move || {
                let (id, transport) = match config.transport {
                    None => (
                        NodeId {
                            address: config.address,
                            incarnation,
                        },
                        None,
                    ),
                    Some(tcp) => match TcpTransport::bind(tcp.build(build.clone()), incarnation) {
                        Ok(transport) => (transport.local_node_id(), Some(transport)),
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    },
                };
                let pool = ThreadPool::new(config.blocking_threads);
                let mut env =
                    NodeEnv::new(Rc::new(SystemClock::new()), rng_seed, Rc::new(pool.clone()))
                        .remote_table(config.remote_table)
                        .heartbeat(config.heartbeat)
                        .build(build);
                if let Some(transport) = &transport {
                    env = env.transport(Box::new(transport.clone()));
                }
                let node = LocalNode::new(id, env);
                let mut driver = match Driver::new(&node, transport) {
                    Ok(driver) => driver.busy_wait(config.busy_wait),
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                let inbox = node.inbox().clone();
                if let Some(bound) = config.poll_warning {
                    watchdog::start(id, &node.inner.poll_marks, inbox.clone(), bound);
                }
                let _ = ready_tx.send(Ok((id, inbox.clone())));
                let ran = catch_unwind(AssertUnwindSafe(|| driver.run(&node, &thread_stop)));
                let failed = match ran {
                    Ok(Ok(())) => false,
                    Ok(Err(err)) => {
                        tracing::error!(%err, node = %id, "event loop failed; node stopped");
                        true
                    }
                    Err(panic) => {
                        let text = panic_text(panic.as_ref());
                        tracing::error!(%text, node = %id, "node thread panicked; node stopped");
                        true
                    }
                };
                // Whatever was posted and not run never will be: callers waiting on it
                // get `NodeStopped` instead of waiting forever, and so do later ones.
                // Closed before the processes end, so that a caller told of its
                // process's end finds the node refusing work.
                inbox.close();
                if failed {
                    // Every process ends (NodeDown), so every `run` waiting on one hears.
                    let shut = catch_unwind(AssertUnwindSafe(|| node.shutdown()));
                    if shut.is_err() {
                        tracing::error!(node = %id, "node shutdown panicked");
                    }
                }
                pool.close();
            })?; // real-world only
        let (id, inbox) = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("node thread exited during start"))??;
        tracing::debug!(node = %id, "node started");
        Ok(Node {
            id,
            inbox,
            stop,
            thread: Some(thread),
        })
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Runs `job` on the node's thread and waits for its result; [`NodeStopped`] if the
    /// node's thread ended before the job ran (or while it ran: a panic in `job` stops
    /// the node).
    pub fn on_node<R, F>(&self, job: F) -> Result<R, NodeStopped>
    where
        R: Send + 'static,
        F: FnOnce(&LocalNode) -> R + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.inbox.post(InboxItem::Run(Box::new(move |node| {
            let _ = tx.send(job(node));
        })));
        rx.recv().map_err(|_| NodeStopped)
    }

    /// Sends a message to a process from outside the runtime; [`NodeStopped`] if the
    /// node's thread has ended (the message then goes nowhere).
    pub fn send<T: Serializable>(&self, to: ProcessId, message: T) -> Result<(), NodeStopped> {
        let posted = self.inbox.post(InboxItem::Run(Box::new(move |node| {
            node.state().deliver(to, crate::Message::new(message));
        })));
        if posted {
            Ok(())
        } else {
            Err(NodeStopped)
        }
    }

    /// Posts `job` to run on the node's thread, without waiting; `false` if the node's
    /// thread has ended (the job is dropped at once).
    pub(crate) fn post(&self, job: impl FnOnce(&LocalNode) + Send + 'static) -> bool {
        self.inbox.post(InboxItem::Run(Box::new(job)))
    }

    /// Stops every process and the node's thread, and waits for it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.inbox.post(InboxItem::Run(Box::new(|_| {})));
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(node = %self.id, "node thread panicked");
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("id", &self.id).finish()
    }
}

/// A random number from the OS (std's hasher keys), for incarnations and seeds of
/// real-world nodes only.
fn os_random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher(); // real-world only
    hasher.write_u64(0x6879_7065_7269_6f6e);
    hasher.finish()
}

/// Running processes on a real-world [`Node`] from ordinary code.
impl Node {
    /// Starts a process on the node and returns its id.
    pub fn spawn<F, Fut>(&self, body: F) -> Result<ProcessId, NodeStopped>
    where
        F: FnOnce(Process) -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: ProcessOutcome,
    {
        self.on_node(move |node| node.spawn(body))
    }

    /// Runs a process to completion and returns what it returned (Cloud Haskell's
    /// `runProcess`). If it dies first (a panic, a kill, the node stopping), the error is
    /// why; if the node's thread has ended (or ends while it runs), the error is
    /// [`DiedReason::NodeDown`], never a wait forever.
    pub fn run<F, Fut, T>(&self, body: F) -> Result<T, DiedReason>
    where
        F: FnOnce(Process) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Result<T, DiedReason>>(1);
        self.post(move |node| {
            node.spawn_with_result(body, move |result| {
                let _ = tx.send(result);
            });
        });
        rx.recv().unwrap_or(Err(DiedReason::NodeDown))
    }
}
