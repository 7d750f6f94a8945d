//! `LocalNode`: one node's state (the [`Kernel`], which runs the processes, and the
//! owners of links, names, routes and events), owned by the one thread that drives the
//! node, and the driver's entry points (run a task, fire timers, drain the inbox).
//! Everything here is single-threaded (`Rc`, `RefCell`): the per-message path takes
//! no lock.
//!
//! Size: over 600 lines; the owners of links, names and events live in their own
//! modules, the processes' table, queue and timers in the kernel. What is left here is
//! the node's construction, the driver's entry points and the life and death of a
//! process (which every owner takes part in).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::channels::Channels;
use super::event::Observer;
use super::names::Registry;
use super::network::{HeartbeatConfig, Network};
use crate::clock::Clock;
use crate::kernel::blocking::BlockingExecutor;
use crate::kernel::inbox::TaskWaker;
use crate::kernel::{Delivery, ExitHook, Kernel, PollMarks, PollStart, ProcessFuture, ProcessSlot};
use crate::kernel::{TaskId, TimerKey};
use crate::message::{Message, Serializable};
use crate::transport::Transport;
use crate::types::closure::{Closure, ClosureError};
use crate::types::id::{panic_text, DiedReason, MonitorRef, NodeId, ProcessId};

/// A node's cross-thread inbox: wakes, and closures run with the node.
pub type Inbox = crate::kernel::inbox::Inbox<LocalNode>;

/// What is posted to a node's [`Inbox`].
pub(crate) type InboxItem = crate::kernel::inbox::InboxItem<LocalNode>;

/// What a node takes from the world it runs in: time, randomness, where blocking work
/// goes, and (optionally) a transport to other nodes. The real world and the simulator
/// each build one.
///
/// ```
/// use std::rc::Rc;
/// use hyperion::{NodeEnv, RemoteTable};
/// use hyperion::clock::SystemClock;
/// use hyperion::runtime::blocking::Inline;
///
/// let env = NodeEnv::new(Rc::new(SystemClock::new()), 7, Rc::new(Inline))
///     .remote_table(RemoteTable::new());
/// ```
pub struct NodeEnv {
    clock: Rc<dyn Clock>,
    rng_seed: u64,
    blocking: Rc<dyn BlockingExecutor>,
    transport: Option<Box<dyn Transport>>,
    closures: Rc<dyn ClosureRunner>,
    heartbeat: HeartbeatConfig,
    observer: Option<Observer>,
    build: crate::build_id::BuildId,
}

/// The node's remote table as the node sees it: what starts the process a closure
/// names. [`RemoteTable`](crate::RemoteTable) is the implementation; through this the
/// node starts closures without knowing how a `Process` is built.
pub(crate) trait ClosureRunner {
    /// Starts the process `closure` names on `node`, or says why not.
    fn spawn_closure(&self, node: &LocalNode, closure: &Closure)
        -> Result<ProcessId, ClosureError>;
}

/// The remote table of a node given none: every label is unknown.
struct NoClosures;

impl ClosureRunner for NoClosures {
    fn spawn_closure(&self, _: &LocalNode, closure: &Closure) -> Result<ProcessId, ClosureError> {
        Err(ClosureError::UnknownLabel(closure.label.clone()))
    }
}

impl NodeEnv {
    /// An environment with a clock, a seed for the node's random source, and an
    /// executor for blocking work; no transport, an empty remote table, default
    /// heartbeats.
    pub fn new(clock: Rc<dyn Clock>, rng_seed: u64, blocking: Rc<dyn BlockingExecutor>) -> NodeEnv {
        NodeEnv {
            clock,
            rng_seed,
            blocking,
            transport: None,
            closures: Rc::new(NoClosures),
            heartbeat: HeartbeatConfig::default(),
            observer: None,
            build: crate::build_id::BuildId::fixed(),
        }
    }

    /// Connects the node to other nodes through `transport`.
    pub fn transport(mut self, transport: Box<dyn Transport>) -> NodeEnv {
        self.transport = Some(transport);
        self
    }

    /// What starts the closures other nodes ask for (see
    /// [`remote_table`](NodeEnv::remote_table)).
    pub(crate) fn closures(mut self, closures: Rc<dyn ClosureRunner>) -> NodeEnv {
        self.closures = closures;
        self
    }

    /// How often to send keep-alives, and how long a silent peer is tolerated.
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> NodeEnv {
        self.heartbeat = heartbeat;
        self
    }

    /// The build this node runs (compared in the worker handshake); default
    /// [`BuildId::fixed`](crate::build_id::BuildId::fixed).
    pub fn build(mut self, build: crate::build_id::BuildId) -> NodeEnv {
        self.build = build;
        self
    }

    /// A callback told of node events (the simulator's checkers use it).
    pub fn observer(mut self, observer: Observer) -> NodeEnv {
        self.observer = Some(observer);
        self
    }
}

/// Counts of what a node holds, from [`LocalNode::resources`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeResources {
    /// Live processes.
    pub processes: usize,
    /// Armed timers.
    pub timers: usize,
    /// Open channels.
    pub channels: usize,
    /// Registered names.
    pub names: usize,
}

pub(crate) struct NodeInner {
    pub(crate) id: NodeId,
    pub(crate) closures: Rc<dyn ClosureRunner>,
    pub(crate) build: crate::build_id::BuildId,
    pub(crate) clock: Rc<dyn Clock>,
    pub(crate) blocking: Rc<dyn BlockingExecutor>,
    pub(crate) inbox: Arc<Inbox>,
    /// Each poll's begin and end, for the watchdog of a real-world node.
    pub(crate) poll_marks: Arc<PollMarks>,
    pub(crate) state: RefCell<NodeState>,
}

/// Everything mutable about a node. Borrowed briefly, never across user code.
pub(crate) struct NodeState {
    pub(crate) id: NodeId,
    /// `id`, shared by the notifications the node packs (see `notify_monitor`).
    pub(crate) shared_id: Arc<NodeId>,
    /// The processes: their table, mailboxes, ready queue and timers.
    pub(crate) kernel: Kernel,
    pub(crate) registry: Registry,
    pub(crate) channels: Channels,
    /// Source of monitor references and channel ids.
    pub(crate) next_unique: u64,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) stopped: bool,
    pub(crate) network: Option<Network>,
    pub(crate) observer: Option<Observer>,
    /// The management event bus (mx hook).
    pub(crate) mx: crate::bus::Bus,
    /// Each port monitor's helper process (see `process::port_monitor`).
    pub(crate) port_monitors: BTreeMap<MonitorRef, ProcessId>,
}

/// A node as seen from the thread that drives it.
///
/// Drivers use it to run the node: [`run_next`](LocalNode::run_next),
/// [`fire_due_timers`](LocalNode::fire_due_timers), [`next_deadline`](LocalNode::next_deadline)
/// and [`drain_inbox`](LocalNode::drain_inbox). Most users never touch it: they hold a
/// [`Node`](crate::Node) (real world) or a simulator handle, and processes hold a
/// [`Process`](crate::process::Process).
///
/// ```
/// use std::rc::Rc;
/// use hyperion::{LocalNode, NodeEnv, NodeId};
/// use hyperion::clock::SystemClock;
/// use hyperion::runtime::blocking::Inline;
///
/// let id = NodeId { address: "127.0.0.1:1".parse().unwrap(), incarnation: 1 };
/// let node = LocalNode::new(id, NodeEnv::new(Rc::new(SystemClock::new()), 7, Rc::new(Inline)));
/// let pid = node.spawn(|p| async move { p.send(p.self_pid(), 1u8); p.expect::<u8>().await; });
/// while node.run_next() {}
/// assert!(!node.is_alive(pid));
/// ```
#[derive(Clone)]
pub struct LocalNode {
    pub(crate) inner: Rc<NodeInner>,
}

impl LocalNode {
    /// A node with no processes, in the given world.
    pub fn new(id: NodeId, env: NodeEnv) -> LocalNode {
        let network = env
            .transport
            .map(|transport| Network::new(transport, env.clock.clone(), env.heartbeat));
        LocalNode {
            inner: Rc::new(NodeInner {
                id,
                closures: env.closures,
                build: env.build,
                clock: env.clock,
                blocking: env.blocking,
                inbox: Inbox::new(),
                poll_marks: Arc::default(),
                state: RefCell::new(NodeState {
                    id,
                    shared_id: Arc::new(id),
                    kernel: Kernel::default(),
                    registry: Registry::default(),
                    channels: Channels::default(),
                    next_unique: 1,
                    rng: ChaCha8Rng::seed_from_u64(env.rng_seed),
                    stopped: false,
                    network,
                    mx: crate::bus::Bus::observed(env.observer.is_some()),
                    observer: env.observer,
                    port_monitors: Default::default(),
                }),
            }),
        }
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The node's clock reading.
    pub fn now(&self) -> Duration {
        self.inner.clock.now()
    }

    /// The node's cross-thread inbox (for drivers).
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inner.inbox
    }

    #[inline]
    pub(crate) fn state(&self) -> std::cell::RefMut<'_, NodeState> {
        self.inner.state.borrow_mut()
    }

    /// The build of the program this node runs.
    pub(crate) fn build(&self) -> &crate::build_id::BuildId {
        &self.inner.build
    }

    /// Where this node's blocking work goes.
    pub(crate) fn blocking(&self) -> &Rc<dyn BlockingExecutor> {
        &self.inner.blocking
    }

    /// Disarms a timer unless the node is borrowed already (a process torn down while
    /// the node frees it): a stale timer then costs one harmless extra poll.
    pub(crate) fn cancel_timer_if_free(&self, timer: TimerKey) {
        if let Ok(mut state) = self.inner.state.try_borrow_mut() {
            state.kernel.cancel_timer(timer);
        }
    }

    /// Inserts a new process's slot (ready to run, its future yet to come) and runs
    /// `setup` on it before anything else can (a link, a monitor, an exit hook). The
    /// caller builds the future (see `process::spawn`) and hands it to
    /// [`start_process`](LocalNode::start_process).
    pub(crate) fn insert_process(
        &self,
        setup: impl FnOnce(&mut NodeState, ProcessId),
    ) -> (TaskId, ProcessId) {
        let mut state = self.state();
        let node = self.inner.id;
        let task = state.kernel.spawn_slot(|task| ProcessSlot {
            future: None,
            waker: Some(Waker::from(Arc::new(TaskWaker {
                task,
                inbox: self.inner.inbox.clone(),
            }))),
            scheduled: true,
            waiting_receive: false,
            mailbox: VecDeque::new(),
            mailbox_removals: 0,
            doom: None,
            trap_exits: false,
            first_monitor: None,
            relations: None,
        });
        let pid = ProcessId {
            node,
            local: task.to_u64(),
        };
        state.mx_spawned(pid); // mx hook
        setup(&mut state, pid);
        (task, pid)
    }

    /// Gives an inserted process its future, or, if building the future panicked,
    /// ends it with the panic's text (returned). A node shut down meanwhile ends it
    /// with [`DiedReason::NodeDown`].
    pub(crate) fn start_process(
        &self,
        task: TaskId,
        pid: ProcessId,
        built: std::thread::Result<ProcessFuture>,
    ) -> Result<ProcessId, (ProcessId, String)> {
        let future = match built {
            Ok(future) => future,
            Err(panic) => {
                let text = panic_text(panic.as_ref());
                drop_quietly(panic);
                tracing::warn!(%pid, %text, "process panicked while being built");
                self.terminate(task, DiedReason::Exception(text.clone()));
                return Err((pid, text));
            }
        };
        let stopped = {
            let mut state = self.state();
            state.kernel.set_future(task, future);
            state.stopped
        };
        tracing::trace!(%pid, "spawned");
        if stopped {
            self.terminate(task, DiedReason::NodeDown);
        }
        Ok(pid)
    }

    /// Calls `hook` with the reason `pid` dies (at once, with
    /// [`DiedReason::UnknownProcess`], if it is not alive).
    pub(crate) fn on_exit(&self, pid: ProcessId, hook: ExitHook) {
        let hook = {
            let mut state = self.state();
            let task = TaskId::from_u64(pid.local);
            match state.kernel.slot_mut(task) {
                Some(slot) if pid.node == self.inner.id => {
                    slot.relations().exit_hooks.push(hook);
                    return;
                }
                _ => hook,
            }
        };
        hook(&DiedReason::UnknownProcess);
    }

    /// Registers `name` for `pid` in this node's registry, from outside any process (a
    /// node's boot code registers its servers this way).
    pub fn register(&self, name: &str, pid: ProcessId) -> Result<(), crate::RegistryError> {
        self.state().register(name, pid)
    }

    /// The processes registered under names starting with `prefix`, in name order.
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<ProcessId> {
        self.state().registry.with_prefix(prefix)
    }

    /// Sends `message` to `to` on behalf of `from` (a process of this node), from code
    /// that holds the node rather than the process's handle.
    pub fn send_as<T: crate::Serializable>(&self, from: ProcessId, to: ProcessId, message: T) {
        self.state().send_from(from, to, Message::new(message));
    }

    /// [`send_as`](LocalNode::send_as), returning why a message for another node was not
    /// sent (longer than the frame limit, or not encodable).
    pub(crate) fn try_send_as<T: crate::Serializable>(
        &self,
        from: ProcessId,
        to: ProcessId,
        message: T,
    ) -> Result<(), crate::wire::WireError> {
        self.state().try_send_from(from, to, Message::new(message))
    }

    /// How many management control messages (such as
    /// [`TraceControl`](crate::mx::TraceControl)) from other nodes this node refused:
    /// management is for local processes only.
    pub fn remote_controls_refused(&self) -> u64 {
        self.state().mx.remote_controls_refused
    }

    /// Whether `pid` is a live process of this node.
    pub fn is_alive(&self, pid: ProcessId) -> bool {
        pid.node == self.inner.id && self.state().kernel.is_alive(TaskId::from_u64(pid.local))
    }

    /// How many processes are alive on this node.
    pub fn process_count(&self) -> usize {
        self.state().kernel.process_count()
    }

    /// How many tasks are ready to run.
    pub fn ready_len(&self) -> usize {
        self.state().kernel.ready_len()
    }

    /// What the node holds right now; a finished scenario that leaks shows it here.
    pub fn resources(&self) -> NodeResources {
        let state = self.state();
        NodeResources {
            processes: state.kernel.process_count(),
            timers: state.kernel.timer_count(),
            channels: state.channels.len(),
            names: state.registry.len(),
        }
    }

    /// Whether the node has been shut down.
    pub fn is_stopped(&self) -> bool {
        self.state().stopped
    }

    /// Polls the oldest ready task. Returns `false` if none was ready.
    pub fn run_next(&self) -> bool {
        let next = self.state().kernel.next_ready();
        match next {
            Some(task) => {
                self.run_task(task);
                true
            }
            None => false,
        }
    }

    /// Polls the ready task at position `index` of the ready queue (the simulator picks
    /// one at random). Returns the process polled, if there was such a task.
    pub fn run_ready_at(&self, index: usize) -> Option<ProcessId> {
        let task = self.state().kernel.take_ready_at(index)?;
        self.run_task(task);
        Some(ProcessId {
            node: self.inner.id,
            local: task.to_u64(),
        })
    }

    fn run_task(&self, task: TaskId) {
        let started = self.state().kernel.begin_poll(task);
        let (future, waker) = match started {
            PollStart::Nothing => return,
            PollStart::Doomed(reason) => {
                self.terminate(task, reason);
                return;
            }
            PollStart::Poll(future, waker) => (future, waker),
        };
        let mut future = future;
        let marks = &self.inner.poll_marks;
        marks.begin(task.to_u64());
        let polled = catch_unwind(AssertUnwindSafe(|| {
            future.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        marks.end();
        let (future, outcome) = match polled {
            Ok(Poll::Pending) => {
                let ended = self.state().kernel.end_poll_pending(task, future, waker);
                match ended {
                    Ok(()) => return,
                    // Gone meanwhile: the future is dropped here, the node not borrowed.
                    Err((_, None)) => return,
                    Err((future, Some(reason))) => (future, reason),
                }
            }
            Ok(Poll::Ready(reason)) => {
                self.state().kernel.end_poll();
                (future, reason)
            }
            Err(panic) => {
                self.state().kernel.end_poll();
                let reason = DiedReason::from_panic(panic.as_ref());
                drop_quietly(panic);
                (future, reason)
            }
        };
        // The future's destructors are user code: a panic there is this process's death.
        let outcome = match drop_catching(future) {
            Some(panic) => panic,
            None => outcome,
        };
        self.terminate(task, outcome);
    }

    /// Removes a process and tells everyone who asked: monitors, links, the registry.
    pub(crate) fn terminate(&self, task: TaskId, reason: DiedReason) {
        let Some(mut slot) = self.state().kernel.remove(task) else {
            return;
        };
        let pid = ProcessId {
            node: self.inner.id,
            local: task.to_u64(),
        };
        // Dropping the future runs destructors that may use the node: not while
        // borrowed. They are user code: a panic there is how this process died.
        let reason = match slot.future.take().and_then(drop_catching) {
            Some(panic) => panic,
            None => reason,
        };
        self.state().mx_process_died(&pid, &reason); // mx hook
        tracing::trace!(%pid, %reason, "process died");
        let hooks = match (slot.first_monitor.take(), slot.relations.take()) {
            (None, None) => Vec::new(),
            (first_monitor, relations) => {
                self.state()
                    .release_relations(pid, first_monitor, relations, &reason)
            }
        };
        // Queued messages are user values too; their destructors must not unwind here.
        if let Some(panic) = drop_catching(slot) {
            tracing::warn!(%pid, %panic, "a destructor panicked while a dead process was freed");
        }
        for hook in hooks {
            hook(&reason);
        }
    }

    /// Moves due timers' tasks to the ready queue and runs the heartbeat if due (which
    /// may declare silent peers lost). Returns how many timers fired.
    pub fn fire_due_timers(&self) -> usize {
        let now = self.inner.clock.now();
        let mut state = self.state();
        let fired = state.kernel.fire_due_timers(now);
        let silent = match &mut state.network {
            Some(network) => network.heartbeat_tick(now),
            None => Vec::new(),
        };
        for peer in silent {
            state.peer_lost(peer);
        }
        fired
    }

    /// The earliest deadline on this node's clock: an armed timer or the heartbeat.
    pub fn next_deadline(&self) -> Option<Duration> {
        let state = self.state();
        let heartbeat = state.network.as_ref().and_then(|n| n.heartbeat_due);
        match (state.kernel.next_timer_deadline(), heartbeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies what other threads posted: task wakes and closures to run on the node.
    /// Returns how many items there were.
    pub fn drain_inbox(&self) -> usize {
        if !self.inner.inbox.may_have_items() {
            return 0;
        }
        let items = self.inner.inbox.take_all();
        let count = items.len();
        for item in items {
            match item {
                InboxItem::Wake(task) => self.state().schedule(task),
                InboxItem::Run(job) => job(self),
            }
        }
        count
    }

    /// Kills every process (reason [`DiedReason::NodeDown`]) and drops all timers. The
    /// node accepts no more work afterwards; processes spawned later die at once.
    pub fn shutdown(&self) {
        self.state().stopped = true;
        loop {
            let tasks = self.state().kernel.tasks();
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                self.terminate(task, DiedReason::NodeDown);
            }
        }
        let mut state = self.state();
        state.kernel.clear_schedule();
        if let Some(network) = &mut state.network {
            network.transport.shutdown();
            network.heartbeat_due = None;
        }
    }

    /// Stops the node as a crash does: every process vanishes and nothing is said to
    /// anyone (no notifications leave the node). The simulator uses it.
    pub fn crash(&self) {
        let network = self.state().network.take();
        self.shutdown();
        drop(network);
    }
}

impl NodeState {
    /// Adds a hook called with the reason the live local process `pid` dies.
    pub(crate) fn add_exit_hook(&mut self, pid: ProcessId, hook: ExitHook) {
        match self.relations_of(pid) {
            Some(relations) => relations.exit_hooks.push(hook),
            None => debug_assert!(false, "exit hook for a process not alive: {pid}"),
        }
    }

    /// The slot of `task`, which must be the task being polled: a `Process` handle
    /// moved into another process fails loudly rather than wait forever for wakes that
    /// go elsewhere.
    #[inline]
    pub(crate) fn running_slot(&mut self, task: TaskId, pid: ProcessId) -> &mut ProcessSlot {
        self.kernel.running_slot(task, pid)
    }

    /// The slot of a live task.
    pub(crate) fn slot_mut(&mut self, task: TaskId) -> Option<&mut ProcessSlot> {
        self.kernel.slot_mut(task)
    }

    /// Marks a task as blocked in a receive: the next delivery to it schedules it.
    pub(crate) fn wait_for_delivery(&mut self, task: TaskId) {
        self.kernel.wait_for_delivery(task);
    }

    /// Whether exit and link signals reach `task` as messages instead of killing it.
    pub(crate) fn set_trap_exits(&mut self, task: TaskId, trap: bool) {
        if let Some(slot) = self.kernel.slot_mut(task) {
            slot.trap_exits = trap;
        }
    }

    /// Arms a timer that schedules `task` at `at` on the node's clock.
    pub(crate) fn arm_timer(&mut self, at: Duration, task: TaskId) -> TimerKey {
        self.kernel.arm_timer(at, task)
    }

    /// Opens a channel read by `task`, closed when it dies; returns its number.
    pub(crate) fn open_channel(&mut self, task: TaskId) -> u64 {
        let channel = self.unique();
        self.channels.open(channel, task);
        if let Some(slot) = self.kernel.slot_mut(task) {
            slot.relations().channels.push(channel);
        }
        channel
    }

    /// Takes the oldest value of a port (a channel, or a merge of ports) for its reader
    /// `task`, if there is one.
    pub(crate) fn take_from_channel(
        &mut self,
        source: &super::channels::PortSource,
        task: TaskId,
    ) -> Option<Message> {
        self.channels.take(source, task)
    }

    /// The process registered as `name` on this node, if any.
    pub(crate) fn whereis(&self, name: &str) -> Option<ProcessId> {
        self.registry.get(name)
    }

    /// A number from the node's seeded random source.
    pub(crate) fn random_u64(&mut self) -> u64 {
        rand_chacha::rand_core::RngCore::next_u64(&mut self.rng)
    }

    /// Records the helper process of a port monitor.
    pub(crate) fn add_port_monitor(&mut self, monitor_ref: MonitorRef, helper: ProcessId) {
        self.port_monitors.insert(monitor_ref, helper);
    }

    /// Forgets a port monitor; returns its helper process, if it was known.
    pub(crate) fn remove_port_monitor(&mut self, monitor_ref: MonitorRef) -> Option<ProcessId> {
        self.port_monitors.remove(&monitor_ref)
    }

    /// Puts a live task in the ready queue unless it is there already.
    pub(crate) fn schedule(&mut self, task: TaskId) {
        self.kernel.wake(task);
    }

    /// A fresh number, unique on this node.
    pub(crate) fn unique(&mut self) -> u64 {
        let id = self.next_unique;
        self.next_unique += 1;
        id
    }

    /// Delivers to a local process's mailbox; a message for a dead or unknown process is
    /// dropped, as in Cloud Haskell.
    pub(crate) fn deliver(&mut self, to: ProcessId, message: Message) {
        // Incarnations differ between nodes almost surely: compare them first.
        if to.node.incarnation != self.id.incarnation || to.node.address != self.id.address {
            tracing::debug!(%to, ?message, "no route to a remote node; message dropped");
            return;
        }
        self.deliver_here(to.local, message);
    }

    /// Sends `value` from `from` to `to`: [`send_from`](NodeState::send_from) of
    /// `Message::new(value)`, with the hot path of a local send to a live process
    /// taken in one step when nothing could make it differ (no listener on messages,
    /// no abandoned async on the receiver: the checks `deliver_here` would make). The
    /// message is built only where it lands, in the mailbox: it is 48 bytes, and
    /// moving it through each layer was a good part of a small message's cost.
    #[inline(always)]
    pub(crate) fn send_value<T: Serializable>(&mut self, from: ProcessId, to: ProcessId, value: T) {
        if to.node == self.id && self.messages_unobserved::<T>() {
            let task = TaskId::from_u64(to.local);
            let plain = |slot: &ProcessSlot| {
                slot.relations
                    .as_ref()
                    .is_none_or(|relations| relations.abandoned.is_empty())
            };
            match self
                .kernel
                .deliver_built(task, move || Message::new(value), plain)
            {
                Ok(()) => return,
                Err(make) => return self.deliver_here(to.local, make()),
            }
        }
        self.send_from(from, to, Message::new(value));
    }

    /// Puts `message` in the mailbox of the process numbered `local` on this node.
    #[inline]
    pub(crate) fn deliver_here(&mut self, local: u64, mut message: Message) {
        self.emit_delivering(local, &mut message);
        let task = TaskId::from_u64(local);
        let delivery = self.kernel.deliver(task, message, |slot, message| {
            slot.relations.as_mut().is_some_and(|relations| {
                !relations.abandoned.is_empty() && NodeState::is_for_abandoned(relations, message)
            })
        });
        match delivery {
            Delivery::Queued => {}
            Delivery::NoProcess(message) => {
                tracing::trace!(to = local, ?message, "message to a dead process dropped");
            }
            Delivery::Refused(message) => {
                tracing::trace!(
                    to = local,
                    ?message,
                    "message for an abandoned async dropped"
                );
            }
        }
    }

    /// Appends to a local channel and wakes its reader if it waits.
    pub(crate) fn deliver_chan(&mut self, channel: u64, message: Message) {
        if let Some(reader) = self.channels.push(channel, message) {
            self.kernel.wake_receiver(reader);
        }
    }

    /// Marks a process to die with `reason` at its next turn, and gives it that turn.
    pub(crate) fn doom(&mut self, task: TaskId, reason: DiedReason) {
        self.kernel.doom(task, reason);
    }
}

/// Drops `value`, catching a panic in its destructor: the death it stands for.
fn drop_catching<T>(value: T) -> Option<DiedReason> {
    match catch_unwind(AssertUnwindSafe(move || drop(value))) {
        Ok(()) => None,
        Err(panic) => {
            let reason = DiedReason::from_panic(panic.as_ref());
            drop_quietly(panic);
            Some(reason)
        }
    }
}

/// Drops a panic's payload, whose own destructor may panic (then it is leaked).
fn drop_quietly(panic: Box<dyn std::any::Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
        std::mem::forget(again);
    }
}
