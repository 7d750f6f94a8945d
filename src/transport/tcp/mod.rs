//! The production transport: TCP, non-blocking, on the node's own thread.
//!
//! [`TcpTransport`] implements [`Transport`] over `mio` sockets registered with the
//! node driver's `mio::Poll`. It has no threads: sockets are read and written by the
//! hooks the driver calls, so a frame crosses no thread between the socket and the
//! mailbox.
//!
//! # What it guarantees
//!
//! - Frames to one peer arrive complete, in the order sent, at most once, until the
//!   connection breaks. Frames sent before the connection is up wait (up to the queue
//!   limit) and go first.
//! - Every break of an established connection (end of stream, reset, I/O error, a frame
//!   over the limit, a queue over its limit) is reported once as
//!   [`TransportEvent::PeerLost`]; so is a connection that could not be made (refused,
//!   timed out, failed handshake, or the address now answers as another incarnation:
//!   the node sent to is gone). Frames in flight may be lost.
//! - [`Transport::disconnect`] and [`Transport::shutdown`] report nothing locally (the
//!   caller knows); the peers see the connection lost.
//! - Only peers holding the cookie get a connection: see [`crate::wire::handshake`].
//!   An inbound connection whose handshake fails (wrong cookie, wrong magic, another
//!   version, garbage, a stall past the handshake timeout) is logged and dropped; nothing
//!   it sent is acted on, and it costs no event.
//! - One connection per pair of nodes. When both dial each other at once, the
//!   connection initiated by the smaller [`NodeId`] is kept and the other is closed
//!   without reporting a loss (the acceptor decides, in the handshake's verdict). A
//!   node that redials a peer that still believes the old connection alive replaces it:
//!   the peer reports the old one lost, then the new one connected. A replace request
//!   that arrives after another connection of the pair became the peer's route (a
//!   request delayed behind a newer connection) is refused: the connection is closed and
//!   its initiator reports the loss, so frames of an older connection never follow a
//!   newer one's.
//!
//! It does not detect a peer that silently vanished (a dead host, a partition): the
//! node's heartbeats do, and call [`Transport::disconnect`].
//!
//! # Limits
//!
//! Connect and handshake timeouts, the largest frame, the bytes queued per peer, and the
//! inbound handshakes in progress are [`TcpConfig`] settings with documented defaults.
//! A peer that has not proven the cookie holds little and not for long: an inbound
//! connection must deliver its hello within the hello timeout (1 s), holds one of a
//! number of handshake slots sized by memory (4,096 of at most
//! [`INBOUND_HANDSHAKE_BYTES`] each), of which one source (an IPv4 address or an IPv6
//! /64) holds at most a quarter; when they are taken, the oldest connection that sent
//! no hello (or, over a source's share, that source's oldest) gives way to the
//! newcomer. Warnings about such peers are summarised (see
//! [`PRE_AUTH_WARNING_INTERVAL`]). Also,
//! one readable event reads at most [`READ_BYTES_PER_EVENT_MAX`] from a connection
//! before the rest is left for the next turn (see [`TcpTransport::next_deadline`]), so
//! that one busy peer cannot starve the node's tasks.
//!
//! # Driving it
//!
//! The node's driver owns the `mio::Poll`; the transport owns every token but
//! `usize::MAX`. Call [`register`](TcpTransport::register) once before the first poll,
//! then on every turn of the loop:
//!
//! 1. run ready tasks (they call [`Transport::send`], which only queues);
//! 2. [`flush`](TcpTransport::flush): writes everything queued, many frames per
//!    `write`, and reports the events `send` and `disconnect` produced;
//! 3. give those events to the node;
//! 4. poll, with a timeout no later than [`next_deadline`](TcpTransport::next_deadline)
//!    (zero if the node has ready tasks);
//! 5. [`on_event`](TcpTransport::on_event) for each event not the waker's;
//! 6. [`on_timer`](TcpTransport::on_timer) with the current time;
//! 7. give the events of 5 and 6 to the node, and loop.
//!
//! ```no_run
//! use std::time::Instant;
//! use hyperion::transport::tcp::{TcpConfig, TcpTransport};
//! use hyperion::transport::Transport;
//!
//! let transport = TcpTransport::bind(TcpConfig::bind("0.0.0.0:7000"), 42)?;
//! let mut poll = mio::Poll::new()?;
//! let mut events = mio::Events::with_capacity(256);
//! transport.register(poll.registry())?;
//! let mut out = Vec::new();
//! loop {
//!     // ... run tasks, which call transport.send(..) on a clone ...
//!     transport.flush(&mut out);
//!     let timeout = transport
//!         .next_deadline()
//!         .map(|deadline| deadline.saturating_duration_since(Instant::now())); // real-world only
//!     poll.poll(&mut events, timeout)?;
//!     for event in events.iter() {
//!         transport.on_event(event, &mut out);
//!     }
//!     transport.on_timer(Instant::now(), &mut out); // real-world only
//!     for event in out.drain(..) {
//!         // node.handle_transport_event(event);
//!         # let _ = event;
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! This module reads the wall clock (`Instant::now`) and the operating system's random
//! source (handshake nonces): it runs only in the real world, never in the simulator.
//!
//! # Files
//!
//! - this module: the transport's state, the driver's hooks and the timers;
//! - `route`: how frames reach a peer (sending, dialing, the handshake's verdicts that
//!   pick one connection per pair of nodes);
//! - `socket_io`: one connection's I/O (connect, read, frames, write, close, break);
//! - `listener`: accepting connections and admitting them to a handshake slot;
//! - `connection`, `admission`, `advertise`, `config`: a connection's state, the limits
//!   on unauthenticated peers, the advertised address, the settings.
//!
//! Size: over 600 lines, but the transport's state and the hooks the driver calls
//! are one state machine; route arbitration, socket I/O and the listener are in
//! their own files.

mod admission;
mod advertise;
mod builds;
mod config;
mod connection;
mod listener;
mod route;
mod socket_io;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

pub use admission::PRE_AUTH_WARNING_INTERVAL;
pub use advertise::{AdvertiseAddress, Subnet};
pub use builds::REPORTED_BUILDS_MAX;
pub use config::{
    CookieSource, TcpConfig, BIND_ADDRESS_DEFAULT, CONNECT_TIMEOUT_DEFAULT,
    HANDSHAKE_TIMEOUT_DEFAULT, HELLO_TIMEOUT_DEFAULT, INBOUND_HANDSHAKES_MAX_DEFAULT,
    INBOUND_HANDSHAKES_PER_SOURCE_MAX_DEFAULT, INBOUND_HANDSHAKE_BYTES,
    QUEUED_BYTES_HIGH_WATER_DEFAULT, QUEUED_BYTES_MAX_DEFAULT,
};

use self::admission::{Admission, PreAuthWarnings};

use self::connection::{Connection, Phase};
use crate::build_id::BuildId;
use crate::transport::{Transport, TransportEvent};
use crate::types::id::NodeId;
use crate::wire::framing::{FrameWriter, LENGTH_PREFIX_BYTES};
use crate::wire::handshake::{Cookie, CookieError, HANDSHAKE_BYTES_MAX};
use crate::wire::WireError;

/// Bytes read from one connection for one readable event (or one timer turn) at most;
/// the rest waits for the next turn.
///
/// Small on purpose: the node delivers what one turn read, then runs its processes,
/// which consume those messages before the next turn reads more, so the memory of one
/// turn's frames is reused by the next. With a mebibyte per turn, thousands of frames
/// were alive at once and freed together, and the allocator shrank its heap and grew it
/// back every turn (page faults and page clearing: about a fifth of a receiving node's
/// CPU in `perf`, `bench_tcp` one way).
pub const READ_BYTES_PER_EVENT_MAX: usize = 32 * 1024;

const LISTENER_TOKEN: Token = Token(0);
/// The driver's waker.
const RESERVED_TOKEN: Token = Token(usize::MAX);

/// The production [`Transport`]: TCP on `mio`, driven by the node's event loop (see the
/// [module documentation](self) for the guarantees and the calls a driver makes).
///
/// Clones share one transport: one clone lives in the node (as `Box<dyn Transport>`),
/// another in the driver.
#[derive(Clone)]
pub struct TcpTransport {
    state: Rc<RefCell<State>>,
}

/// The settings the transport keeps after binding.
struct Limits {
    connect_timeout: std::time::Duration,
    handshake_timeout: std::time::Duration,
    frame_bytes_max: usize,
    queued_bytes_max: usize,
    queued_bytes_high_water: usize,
    inbound_handshakes_max: usize,
    inbound_handshakes_per_source_max: usize,
    hello_timeout: std::time::Duration,
}

/// Bytes read at once from a connection in its handshake: enough for a handshake
/// message and its prefix, so an unauthenticated connection's buffer stays small.
const HANDSHAKE_READ_BYTES: usize = 2 * (HANDSHAKE_BYTES_MAX + LENGTH_PREFIX_BYTES);

/// How frames reach a peer: the arbitration's route (see [`crate::transport::arbitration`])
/// over this transport's connections and wall-clock deadlines.
type Route = crate::transport::arbitration::Route<Token, Instant>;

struct PeerLink {
    route: Route,
    /// Frames queued while the route is not established, already framed.
    pending: FrameWriter,
}

struct State {
    limits: Limits,
    local: NodeId,
    cookie: Cookie,
    /// The build this node's hellos carry.
    build: BuildId,
    /// The other builds already reported as errors (at most
    /// [`REPORTED_BUILDS_MAX`]).
    reported_builds: BTreeSet<BuildId>,
    listener: Option<TcpListener>,
    registry: Option<Registry>,
    connections: BTreeMap<Token, Connection>,
    next_token: usize,
    /// Invariant (checked by [`State::check_routes`]): a `Dialing(t)` or
    /// `Established(t)` route names a live connection `t` whose phase dials that peer, or
    /// is established with it; an established route has no frames waiting in its link.
    peers: BTreeMap<NodeId, PeerLink>,
    /// Events produced outside the hooks (by `send`), reported by the next `flush`.
    pending_events: Vec<TransportEvent>,
    /// Connections with bytes queued since the last flush, each once (its
    /// `in_flush_list`), in the order they were first written to.
    dirty: Vec<Token>,
    /// The peer sent to last and its connection, if that was an established route: the
    /// next send to it finds its queue by token, without a lookup by node id. A hint,
    /// checked at each use: the token must still name a connection established with
    /// that peer (tokens are never reused, and a connection established with a peer is
    /// always its route: every change of route closes the connection it replaces).
    hot: Option<(NodeId, Token)>,
    /// Connections whose last read stopped at the per-event budget, and since when.
    read_backlog: BTreeSet<Token>,
    read_backlog_since: Option<Instant>,
    /// The inbound handshakes in progress (the slots of unauthenticated peers).
    admission: Admission,
    warnings: PreAuthWarnings,
    /// Processes waiting for the queue to a peer to fall below the high-water mark, in
    /// the order they asked (see [`Transport::wake_on_room`]).
    room_waiters: Vec<(NodeId, Waker)>,
    shut_down: bool,
}

impl TcpTransport {
    /// Loads (or generates) the cookie, binds the listener and works out the advertised
    /// address. `incarnation` distinguishes this run of the node from earlier ones at the
    /// same address.
    ///
    /// ```
    /// use hyperion::transport::tcp::{TcpConfig, TcpTransport};
    /// use hyperion::wire::Cookie;
    ///
    /// let config = TcpConfig::bind("127.0.0.1:0").cookie(Cookie::new("secret").unwrap());
    /// let transport = TcpTransport::bind(config, 7).unwrap();
    /// assert_eq!(transport.local_node_id().incarnation, 7);
    /// assert!(transport.local_node_id().address.ip().is_loopback());
    /// ```
    pub fn bind(config: TcpConfig, incarnation: u64) -> io::Result<TcpTransport> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        let bind_address = config.bind_address.clone().map_err(invalid)?;
        if config.frame_bytes_max < HANDSHAKE_BYTES_MAX {
            return Err(invalid(format!(
                "frame_bytes_max {} is below the handshake's {HANDSHAKE_BYTES_MAX} bytes",
                config.frame_bytes_max
            )));
        }
        if config.queued_bytes_max < config.frame_bytes_max + LENGTH_PREFIX_BYTES {
            return Err(invalid(format!(
                "queued_bytes_max {} cannot hold one frame of frame_bytes_max {}",
                config.queued_bytes_max, config.frame_bytes_max
            )));
        }
        // Room for one maximal frame above the mark (`queued_bytes_max` holds one frame,
        // checked above), so that a producer waiting for room never reaches the limit.
        let high_water_max = config.queued_bytes_max - config.frame_bytes_max - LENGTH_PREFIX_BYTES;
        let queued_bytes_high_water = match config.queued_bytes_high_water {
            None => QUEUED_BYTES_HIGH_WATER_DEFAULT.min(high_water_max),
            Some(bytes) if bytes <= high_water_max => bytes,
            Some(bytes) => {
                return Err(invalid(format!(
                    "queued_bytes_high_water {bytes} leaves no room under queued_bytes_max {} \
                     for a frame of frame_bytes_max {}: a producer waiting for room could \
                     still break its connection",
                    config.queued_bytes_max, config.frame_bytes_max
                )))
            }
        };
        let cookie = match &config.cookie {
            config::CookieSource::Value(cookie) => cookie.clone(),
            config::CookieSource::File(path) => Cookie::load_or_generate(path)?,
            config::CookieSource::DefaultFile => {
                Cookie::load_or_generate(Cookie::default_path().ok_or(CookieError::NoHome)?)?
            }
        };
        let listener = TcpListener::bind(bind_address)?;
        let bound = listener.local_addr()?;
        let advertised = advertise::resolve(&config.advertise, bound)?;
        let local = NodeId {
            address: advertised,
            incarnation,
        };
        tracing::info!(node = %local, %bound, "TCP transport listening");
        Ok(TcpTransport {
            state: Rc::new(RefCell::new(State {
                limits: Limits {
                    connect_timeout: config.connect_timeout,
                    handshake_timeout: config.handshake_timeout,
                    frame_bytes_max: config.frame_bytes_max,
                    queued_bytes_max: config.queued_bytes_max,
                    queued_bytes_high_water,
                    inbound_handshakes_max: config.inbound_handshakes_max,
                    inbound_handshakes_per_source_max: config.inbound_handshakes_per_source_max,
                    hello_timeout: config.hello_timeout,
                },
                local,
                cookie,
                build: config.build.clone().unwrap_or_else(BuildId::fixed),
                reported_builds: BTreeSet::new(),
                listener: Some(listener),
                registry: None,
                connections: BTreeMap::new(),
                next_token: LISTENER_TOKEN.0 + 1,
                peers: BTreeMap::new(),
                pending_events: Vec::new(),
                dirty: Vec::new(),
                hot: None,
                read_backlog: BTreeSet::new(),
                read_backlog_since: None,
                admission: Admission::default(),
                warnings: PreAuthWarnings::default(),
                room_waiters: Vec::new(),
                shut_down: false,
            })),
        })
    }

    /// This node's id: the advertised address and the incarnation.
    pub fn local_node_id(&self) -> NodeId {
        self.state.borrow().local
    }

    /// The peers with an established connection, in order.
    pub fn connected_peers(&self) -> Vec<NodeId> {
        let state = self.state.borrow();
        state
            .peers
            .iter()
            .filter(|(_, link)| matches!(link.route, Route::Established(_)))
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Open sockets other than the listener, in any phase (for leak checks).
    pub fn open_connections(&self) -> usize {
        self.state.borrow().connections.len()
    }

    /// Registers the listener (and any connection opened before) with the driver's
    /// poll, and keeps a handle on the registry for sockets opened later. Call once.
    pub fn register(&self, registry: &Registry) -> io::Result<()> {
        let mut state = self.state.borrow_mut();
        let kept = registry.try_clone()?;
        if let Some(listener) = &mut state.listener {
            registry.register(listener, LISTENER_TOKEN, Interest::READABLE)?;
        }
        for (token, connection) in &mut state.connections {
            registry.register(
                &mut connection.stream,
                *token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        state.registry = Some(kept);
        Ok(())
    }

    /// Handles one poll event for a token of this transport: accepts connections,
    /// completes connects, runs handshakes, reads every complete frame (until the socket
    /// would block, or [`READ_BYTES_PER_EVENT_MAX`]) and writes what is queued when the
    /// socket turns writable. Events for other tokens (the driver's waker) are ignored.
    pub fn on_event(&self, event: &Event, out: &mut Vec<TransportEvent>) {
        let mut state = self.state.borrow_mut();
        state.on_event(event, out);
        state.check_routes();
        state.wake_waiters_with_room();
    }

    /// Writes what is queued on every connection that has new frames (everything queued
    /// since the last call leaves in one `write` per connection, as far as the socket
    /// takes it), and reports the events that `send` and `disconnect` produced (a failed
    /// connect, a queue over its limit). Call once per driver turn, before polling.
    pub fn flush(&self, out: &mut Vec<TransportEvent>) {
        self.state.borrow_mut().flush(out);
    }

    /// Applies the timeouts due at `now` (connects, handshakes, declined connections
    /// waiting for the peer's) and continues reads cut short by the per-event budget.
    pub fn on_timer(&self, now: Instant, out: &mut Vec<TransportEvent>) {
        let mut state = self.state.borrow_mut();
        state.on_timer(now, out);
        state.check_routes();
        state.wake_waiters_with_room();
    }

    /// When [`on_timer`](TcpTransport::on_timer) next has work: the earliest timeout, or
    /// a past instant if reads are waiting to continue. `None` if nothing is timed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.state.borrow().next_deadline()
    }
}

impl Transport for TcpTransport {
    fn local_address(&self) -> SocketAddr {
        self.state.borrow().local.address
    }

    fn send(&mut self, peer: NodeId, frame: Vec<u8>) {
        let mut state = self.state.borrow_mut();
        let mut events = std::mem::take(&mut state.pending_events);
        state.send(peer, &frame, &mut events);
        state.pending_events = events;
        state.check_routes();
        state.wake_waiters_with_room();
    }

    fn send_with(
        &mut self,
        peer: NodeId,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        let mut state = self.state.borrow_mut();
        let hot = state.send_on_hot_route(peer, write);
        if let Some(route::HotSend::Queued) = hot {
            // Only a queue grew: no event, no route changed, no waiter has more room.
            return Ok(());
        }
        let mut events = std::mem::take(&mut state.pending_events);
        let sent = match hot {
            Some(sent) => state.settle_hot_send(peer, sent, &mut events),
            None => state.send_off_the_hot_route(peer, write, &mut events),
        };
        state.pending_events = events;
        state.check_routes();
        state.wake_waiters_with_room();
        sent
    }

    fn frame_bytes_max(&self) -> usize {
        self.state.borrow().limits.frame_bytes_max
    }

    fn disconnect(&mut self, peer: NodeId) {
        let mut state = self.state.borrow_mut();
        state.disconnect(peer);
        state.check_routes();
        state.wake_waiters_with_room();
    }

    fn shutdown(&mut self) {
        let mut state = self.state.borrow_mut();
        state.shutdown();
        state.wake_waiters_with_room();
    }

    fn queued_bytes(&self, peer: NodeId) -> usize {
        self.state.borrow().queued_bytes(peer)
    }

    fn has_room(&self, peer: NodeId) -> bool {
        let state = self.state.borrow();
        state.queued_bytes(peer) < state.limits.queued_bytes_high_water
    }

    fn wake_on_room(&mut self, peer: NodeId, waker: &Waker) {
        let mut state = self.state.borrow_mut();
        if state.queued_bytes(peer) < state.limits.queued_bytes_high_water {
            waker.wake_by_ref();
            return;
        }
        let known = state
            .room_waiters
            .iter_mut()
            .find(|(waiting, known)| *waiting == peer && known.will_wake(waker));
        if known.is_none() {
            state.room_waiters.push((peer, waker.clone()));
        }
    }
}

impl State {
    /// Asserts the invariant of the routes (see [`State::peers`]) in debug builds, after
    /// every hook: a route to a closed socket would queue frames that never leave.
    fn check_routes(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        if let Some((peer, token)) = self.hot {
            if self
                .connections
                .get(&token)
                .is_some_and(|connection| connection.is_established_with(peer))
            {
                debug_assert!(
                    matches!(
                        self.peers.get(&peer).map(|link| link.route),
                        Some(Route::Established(route)) if route == token
                    ),
                    "{token:?} is established with {peer} but is not its route"
                );
            }
        }
        for (peer, link) in &self.peers {
            let phase = |token: Token| self.connections.get(&token).map(|c| &c.phase);
            match link.route {
                Route::Dialing(token) => debug_assert!(
                    matches!(
                        phase(token),
                        Some(Phase::Connecting { target })
                            | Some(Phase::Handshaking { target: Some(target), .. })
                            if target == peer
                    ),
                    "route to {peer} dials {token:?}, which is not a dial to it"
                ),
                Route::Established(token) => {
                    debug_assert!(
                        matches!(phase(token), Some(Phase::Established { peer: p }) if p == peer),
                        "route to {peer} names {token:?}, which is not established with it"
                    );
                    debug_assert!(
                        link.pending.is_empty(),
                        "established route to {peer} still holds frames in its link"
                    );
                }
                Route::AwaitingInbound { .. } => {}
            }
        }
    }

    /// Bytes waiting to be written to `peer`: those queued on its connection, or for it
    /// while the connection is being made.
    fn queued_bytes(&self, peer: NodeId) -> usize {
        if let Some((_, token)) = self.hot {
            // An established route: its link holds nothing (see `peers`); established
            // with `peer` means it is `peer`'s route (see `hot`).
            if let Some(connection) = self.connections.get(&token) {
                if connection.is_established_with(peer) {
                    return connection.writer.pending_len();
                }
            }
        }
        let Some(link) = self.peers.get(&peer) else {
            return 0;
        };
        let on_connection = match link.route {
            Route::Established(token) => self
                .connections
                .get(&token)
                .map_or(0, |connection| connection.writer.pending_len()),
            Route::Dialing(_) | Route::AwaitingInbound { .. } => 0,
        };
        on_connection + link.pending.pending_len()
    }

    /// Wakes the processes waiting for room whose peer's queue is now below the
    /// high-water mark (or gone: a lost peer has an empty queue, and the waiter learns of
    /// the loss from its monitors). One branch when nobody waits.
    fn wake_waiters_with_room(&mut self) {
        if self.room_waiters.is_empty() {
            return;
        }
        let high_water = self.limits.queued_bytes_high_water;
        let mut waiters = std::mem::take(&mut self.room_waiters);
        waiters.retain(|(peer, waker)| {
            let room = self.queued_bytes(*peer) < high_water;
            if room {
                waker.wake_by_ref();
            }
            !room
        });
        self.room_waiters = waiters;
    }

    /// Adds a connection with newly queued bytes to the list the next flush writes.
    fn mark_dirty(&mut self, token: Token) {
        if let Some(connection) = self.connections.get_mut(&token) {
            if !connection.in_flush_list {
                connection.in_flush_list = true;
                self.dirty.push(token);
            }
        }
    }

    fn new_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token += 1;
        assert_ne!(token, RESERVED_TOKEN, "connection tokens exhausted");
        token
    }

    fn register_connection(&self, token: Token, stream: &mut TcpStream) -> io::Result<()> {
        match &self.registry {
            Some(registry) => {
                registry.register(stream, token, Interest::READABLE | Interest::WRITABLE)
            }
            // Registered by `register`, later.
            None => Ok(()),
        }
    }

    // ---- sending -------------------------------------------------------------------
    fn shutdown(&mut self) {
        if self.shut_down {
            return;
        }
        self.shut_down = true;
        if let Some(mut listener) = self.listener.take() {
            if let Some(registry) = &self.registry {
                let _ = registry.deregister(&mut listener);
            }
        }
        let connections = std::mem::take(&mut self.connections);
        for (_, mut connection) in connections {
            if matches!(connection.phase, Phase::Established { .. }) {
                // Best effort: what the socket takes now; a shut-down node waits for no one.
                let _ = connection.writer.write_to(&mut connection.stream);
            }
            let _ = connection.stream.shutdown(Shutdown::Both);
            if let Some(registry) = &self.registry {
                let _ = registry.deregister(&mut connection.stream);
            }
        }
        self.peers.clear();
        self.dirty.clear();
        self.hot = None;
        self.read_backlog.clear();
        self.read_backlog_since = None;
        self.pending_events.clear();
        self.admission = Admission::default();
        tracing::info!(node = %self.local, "TCP transport shut down");
    }

    // ---- the driver's hooks --------------------------------------------------------

    fn flush(&mut self, out: &mut Vec<TransportEvent>) {
        out.append(&mut self.pending_events);
        // The list's allocation is kept from one turn to the next.
        let mut dirty = std::mem::take(&mut self.dirty);
        for token in dirty.drain(..) {
            if let Some(connection) = self.connections.get_mut(&token) {
                connection.in_flush_list = false;
            }
            self.write_queued(token, out);
        }
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
        self.check_routes();
        self.wake_waiters_with_room();
    }

    fn on_event(&mut self, event: &Event, out: &mut Vec<TransportEvent>) {
        let token = event.token();
        if token == LISTENER_TOKEN {
            self.accept_all();
            return;
        }
        let Some(connection) = self.connections.get(&token) else {
            // Not ours (the waker), or a connection closed earlier in this batch.
            return;
        };
        if matches!(connection.phase, Phase::Connecting { .. }) {
            if self.finish_connect(token, out) {
                // The acceptor's hello may have arrived with the connect; with
                // edge-triggered readiness, no later event would announce it.
                self.read_ready(token, out);
            }
            return;
        }
        if event.is_read_closed() || event.is_error() {
            self.read_ready(token, out);
        } else if event.is_readable() {
            self.read_available(token, out);
        }
        if event.is_writable() {
            self.write_queued(token, out);
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<TransportEvent>) {
        self.warnings.summarise_if_due(now);
        self.read_backlog_since = None;
        for token in std::mem::take(&mut self.read_backlog) {
            self.read_ready(token, out);
        }
        let expired: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, connection)| connection.deadline.is_some_and(|deadline| deadline <= now))
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            let Some(connection) = self.connections.get(&token) else {
                continue;
            };
            let why = match &connection.phase {
                Phase::Connecting { .. } => "connect timed out",
                Phase::Handshaking { target: None, .. } if !connection.hello_received => {
                    let remote = connection.remote;
                    self.warnings
                        .warn(now, "no hello within the hello timeout", remote, "");
                    "no hello in time"
                }
                Phase::Handshaking { target: None, .. } => {
                    let remote = connection.remote;
                    self.warnings.warn(now, "handshake timed out", remote, "");
                    "handshake timed out"
                }
                Phase::Handshaking { .. } => {
                    tracing::warn!(
                        remote = %connection.remote,
                        "handshake timed out; connection dropped"
                    );
                    "handshake timed out"
                }
                Phase::Closing => "the declined peer did not close",
                Phase::Established { .. } => continue,
            };
            self.break_connection(token, why, out);
        }
        let abandoned: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, link)| {
                matches!(link.route, Route::AwaitingInbound { deadline } if deadline <= now)
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in abandoned {
            self.peers.remove(&peer);
            tracing::info!(%peer, "the peer declined our connection and never made its own");
            out.push(TransportEvent::PeerLost(peer));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let connections = self
            .connections
            .values()
            .filter_map(|connection| connection.deadline);
        let awaiting = self.peers.values().filter_map(|link| match link.route {
            Route::AwaitingInbound { deadline } => Some(deadline),
            _ => None,
        });
        connections
            .chain(awaiting)
            .chain(self.read_backlog_since)
            .min()
    }

    // ---- connections ---------------------------------------------------------------
}
