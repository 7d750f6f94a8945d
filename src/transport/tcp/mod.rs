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
//!   the peer reports the old one lost, then the new one connected.
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
//!         .map(|deadline| deadline.saturating_duration_since(Instant::now()));
//!     poll.poll(&mut events, timeout)?;
//!     for event in events.iter() {
//!         transport.on_event(event, &mut out);
//!     }
//!     transport.on_timer(Instant::now(), &mut out);
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

mod admission;
mod advertise;
mod config;
mod connection;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

pub use admission::PRE_AUTH_WARNING_INTERVAL;
pub use advertise::{AdvertiseAddress, Subnet};
pub use config::{
    CookieSource, TcpConfig, BIND_ADDRESS_DEFAULT, CONNECT_TIMEOUT_DEFAULT,
    HANDSHAKE_TIMEOUT_DEFAULT, HELLO_TIMEOUT_DEFAULT, INBOUND_HANDSHAKES_MAX_DEFAULT,
    INBOUND_HANDSHAKES_PER_SOURCE_MAX_DEFAULT, INBOUND_HANDSHAKE_BYTES, QUEUED_BYTES_MAX_DEFAULT,
};

use self::admission::{Admission, PreAuthWarnings, Source};

use self::connection::{Connection, Phase};
use crate::process::id::NodeId;
use crate::transport::{Transport, TransportEvent};
use crate::wire::framing::{FrameReader, FrameWriter, LENGTH_PREFIX_BYTES, READ_CHUNK_BYTES};
use crate::wire::handshake::{
    Cookie, CookieError, Handshake, HandshakeError, Nonce, Step, Verdict, HANDSHAKE_BYTES_MAX,
};

/// Bytes read from one connection for one readable event (or one timer turn) at most;
/// the rest waits for the next turn.
pub const READ_BYTES_PER_EVENT_MAX: usize = 1024 * 1024;

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
    inbound_handshakes_max: usize,
    inbound_handshakes_per_source_max: usize,
    hello_timeout: std::time::Duration,
}

/// Bytes read at once from a connection in its handshake: enough for a handshake
/// message and its prefix, so an unauthenticated connection's buffer stays small.
const HANDSHAKE_READ_BYTES: usize = 2 * (HANDSHAKE_BYTES_MAX + LENGTH_PREFIX_BYTES);

/// How frames reach a peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Route {
    /// Our connection is being made; frames wait in the link.
    Dialing(Token),
    /// The peer declined our connection because it is dialing us; frames wait for its
    /// connection until the deadline, then the peer is reported lost.
    AwaitingInbound { deadline: Instant },
    /// Frames go to this connection.
    Established(Token),
}

struct PeerLink {
    route: Route,
    /// Frames queued while the route is not established, already framed.
    pending: FrameWriter,
}

struct State {
    limits: Limits,
    local: NodeId,
    cookie: Cookie,
    listener: Option<TcpListener>,
    registry: Option<Registry>,
    connections: BTreeMap<Token, Connection>,
    next_token: usize,
    /// Invariant: a `Dialing(t)` or `Established(t)` route names a live connection `t`
    /// whose phase dials that peer, or is established with it.
    peers: BTreeMap<NodeId, PeerLink>,
    /// Events produced outside the hooks (by `send`), reported by the next `flush`.
    pending_events: Vec<TransportEvent>,
    /// Connections with bytes queued since the last flush.
    dirty: BTreeSet<Token>,
    /// Connections whose last read stopped at the per-event budget, and since when.
    read_backlog: BTreeSet<Token>,
    read_backlog_since: Option<Instant>,
    /// The inbound handshakes in progress (the slots of unauthenticated peers).
    admission: Admission,
    warnings: PreAuthWarnings,
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
                    inbound_handshakes_max: config.inbound_handshakes_max,
                    inbound_handshakes_per_source_max: config.inbound_handshakes_per_source_max,
                    hello_timeout: config.hello_timeout,
                },
                local,
                cookie,
                listener: Some(listener),
                registry: None,
                connections: BTreeMap::new(),
                next_token: LISTENER_TOKEN.0 + 1,
                peers: BTreeMap::new(),
                pending_events: Vec::new(),
                dirty: BTreeSet::new(),
                read_backlog: BTreeSet::new(),
                read_backlog_since: None,
                admission: Admission::default(),
                warnings: PreAuthWarnings::default(),
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
        self.state.borrow_mut().on_event(event, out);
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
        self.state.borrow_mut().on_timer(now, out);
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
    }

    fn frame_bytes_max(&self) -> usize {
        self.state.borrow().limits.frame_bytes_max
    }

    fn disconnect(&mut self, peer: NodeId) {
        self.state.borrow_mut().disconnect(peer);
    }

    fn shutdown(&mut self) {
        self.state.borrow_mut().shutdown();
    }
}

impl State {
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

    fn send(&mut self, peer: NodeId, body: &[u8], out: &mut Vec<TransportEvent>) {
        if self.shut_down {
            tracing::debug!(%peer, "frame dropped: the transport is shut down");
            return;
        }
        if peer == self.local {
            tracing::warn!(%peer, "frame to this node's own id dropped; nodes do not dial themselves");
            out.push(TransportEvent::PeerLost(peer));
            return;
        }
        if body.len() > self.limits.frame_bytes_max {
            self.lose_peer(
                peer,
                &format!(
                    "a frame of {} bytes exceeds the limit of {}",
                    body.len(),
                    self.limits.frame_bytes_max
                ),
                out,
            );
            return;
        }
        if !self.peers.contains_key(&peer) {
            match self.dial(peer) {
                Ok(token) => {
                    self.peers.insert(
                        peer,
                        PeerLink {
                            route: Route::Dialing(token),
                            pending: FrameWriter::with_limit(self.limits.frame_bytes_max),
                        },
                    );
                }
                Err(err) => {
                    tracing::info!(%peer, %err, "cannot connect");
                    out.push(TransportEvent::PeerLost(peer));
                    return;
                }
            }
        }
        let queued_max = self.limits.queued_bytes_max;
        let Some(link) = self.peers.get_mut(&peer) else {
            return;
        };
        let queue = match link.route {
            Route::Established(token) => match self.connections.get_mut(&token) {
                Some(connection) => {
                    self.dirty.insert(token);
                    &mut connection.writer
                }
                None => &mut link.pending,
            },
            Route::Dialing(_) | Route::AwaitingInbound { .. } => &mut link.pending,
        };
        let queued = queue.pending_len();
        if queued + LENGTH_PREFIX_BYTES + body.len() > queued_max {
            self.lose_peer(
                peer,
                &format!(
                    "{queued} bytes already queued; a frame of {} more exceeds the limit of \
                     {queued_max}",
                    body.len()
                ),
                out,
            );
            return;
        }
        if let Err(err) = queue.push(body) {
            self.lose_peer(peer, &format!("frame refused: {err}"), out);
        }
    }

    /// Starts a non-blocking connect to `peer`.
    fn dial(&mut self, peer: NodeId) -> io::Result<Token> {
        let mut stream = TcpStream::connect(peer.address)?;
        let token = self.new_token();
        self.register_connection(token, &mut stream)?;
        tracing::debug!(%peer, "dialing");
        self.connections.insert(
            token,
            Connection {
                stream,
                remote: peer.address,
                phase: Phase::Connecting { target: peer },
                reader: FrameReader::with_limit(HANDSHAKE_BYTES_MAX),
                writer: FrameWriter::with_limit(self.limits.frame_bytes_max),
                // No deadline if it is beyond what an `Instant` holds (`Duration::MAX`).
                deadline: Instant::now().checked_add(self.limits.connect_timeout),
                accepted_at: None,
                slot: None,
                hello_received: false,
            },
        );
        Ok(token)
    }

    /// Breaks whatever links us to `peer` and reports it lost.
    fn lose_peer(&mut self, peer: NodeId, why: &str, out: &mut Vec<TransportEvent>) {
        tracing::warn!(%peer, why, "connection broken");
        if let Some(link) = self.peers.remove(&peer) {
            match link.route {
                Route::Dialing(token) | Route::Established(token) => {
                    self.close(token);
                }
                Route::AwaitingInbound { .. } => {}
            }
        }
        out.push(TransportEvent::PeerLost(peer));
    }

    fn disconnect(&mut self, peer: NodeId) {
        let Some(link) = self.peers.remove(&peer) else {
            return;
        };
        tracing::info!(%peer, "disconnecting");
        match link.route {
            Route::Dialing(token) | Route::Established(token) => {
                self.close(token);
            }
            Route::AwaitingInbound { .. } => {}
        }
    }

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
        self.read_backlog.clear();
        self.read_backlog_since = None;
        self.pending_events.clear();
        self.admission = Admission::default();
        tracing::info!(node = %self.local, "TCP transport shut down");
    }

    // ---- the driver's hooks --------------------------------------------------------

    fn flush(&mut self, out: &mut Vec<TransportEvent>) {
        out.append(&mut self.pending_events);
        for token in std::mem::take(&mut self.dirty) {
            self.write_queued(token, out);
        }
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

    fn accept_all(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, remote)) => self.on_accepted(stream, remote),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(err) => {
                    tracing::error!(%err, "accept failed");
                    return;
                }
            }
        }
    }

    /// Makes room for an inbound connection from `source`, if it may have any: over
    /// the source's cap, its own oldest handshake gives way; over the total, the oldest
    /// connection that has not sent its hello does (a real peer sends it at once, so it
    /// is idle or dribbling). Returns whether the newcomer may stay.
    fn admit(&mut self, source: Source, remote: SocketAddr, now: Instant) -> bool {
        if self.admission.of_source(source) >= self.limits.inbound_handshakes_per_source_max {
            let oldest = self
                .connections
                .iter()
                .find(|(_, connection)| connection.slot == Some(source))
                .map(|(token, connection)| (*token, connection.remote));
            let Some((token, evicted)) = oldest else {
                self.warnings.warn(
                    now,
                    "inbound handshakes from one source over the limit",
                    remote,
                    format_args!("limit {}", self.limits.inbound_handshakes_per_source_max),
                );
                return false;
            };
            self.close(token);
            self.warnings.warn(
                now,
                "inbound handshakes from one source over the limit: its oldest gave way",
                evicted,
                format_args!("limit {}", self.limits.inbound_handshakes_per_source_max),
            );
        }
        if self.admission.total() >= self.limits.inbound_handshakes_max {
            let idle = self
                .connections
                .iter()
                .find(|(_, connection)| connection.slot.is_some() && !connection.hello_received)
                .map(|(token, connection)| (*token, connection.remote));
            let Some((token, evicted)) = idle else {
                self.warnings.warn(
                    now,
                    "too many inbound handshakes in progress",
                    remote,
                    format_args!("limit {}", self.limits.inbound_handshakes_max),
                );
                return false;
            };
            self.close(token);
            self.warnings.warn(
                now,
                "too many inbound handshakes in progress: the oldest without a hello gave way",
                evicted,
                format_args!("limit {}", self.limits.inbound_handshakes_max),
            );
        }
        true
    }

    fn on_accepted(&mut self, mut stream: TcpStream, remote: SocketAddr) {
        let now = Instant::now();
        let source = Source::of(remote.ip());
        if !self.admit(source, remote, now) {
            return;
        }
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%remote, %err, "cannot set TCP_NODELAY");
        }
        let nonce = match Nonce::random() {
            Ok(nonce) => nonce,
            Err(err) => {
                tracing::error!(%err, "no randomness for a handshake nonce; connection closed");
                return;
            }
        };
        let handshake = Handshake::accept(self.local, self.cookie.clone(), nonce);
        let mut writer = FrameWriter::with_limit(self.limits.frame_bytes_max);
        if let Err(err) = writer.push(handshake.hello()) {
            tracing::error!(%err, "cannot frame the hello; connection closed");
            return;
        }
        let token = self.new_token();
        if let Err(err) = self.register_connection(token, &mut stream) {
            tracing::error!(%remote, %err, "cannot register an accepted connection");
            return;
        }
        tracing::debug!(%remote, "accepted a connection");
        self.admission.take(source);
        self.connections.insert(
            token,
            Connection {
                stream,
                remote,
                phase: Phase::Handshaking {
                    handshake: Box::new(handshake),
                    target: None,
                },
                reader: FrameReader::with_limit(HANDSHAKE_BYTES_MAX),
                writer,
                deadline: now
                    .checked_add(self.limits.hello_timeout.min(self.limits.handshake_timeout)),
                accepted_at: Some(now),
                slot: Some(source),
                hello_received: false,
            },
        );
        self.dirty.insert(token);
    }

    /// Checks whether an outbound connect completed; if it did, starts the handshake.
    /// Returns whether the connection is now handshaking.
    fn finish_connect(&mut self, token: Token, out: &mut Vec<TransportEvent>) -> bool {
        let Some(connection) = self.connections.get_mut(&token) else {
            return false;
        };
        let Phase::Connecting { target } = connection.phase else {
            return false;
        };
        match connection.stream.take_error() {
            Ok(None) => {}
            Ok(Some(err)) | Err(err) => {
                self.break_connection(token, &format!("connect failed: {err}"), out);
                return false;
            }
        }
        match connection.stream.peer_addr() {
            Ok(_) => {}
            // A spurious wake-up: the connect is still in progress.
            Err(err) if err.kind() == io::ErrorKind::NotConnected => return false,
            Err(err) => {
                self.break_connection(token, &format!("connect failed: {err}"), out);
                return false;
            }
        }
        if let Err(err) = connection.stream.set_nodelay(true) {
            tracing::debug!(peer = %target, %err, "cannot set TCP_NODELAY");
        }
        let nonce = match Nonce::random() {
            Ok(nonce) => nonce,
            Err(err) => {
                self.break_connection(token, &format!("no randomness for a nonce: {err}"), out);
                return false;
            }
        };
        let handshake = Handshake::initiate(self.local, self.cookie.clone(), nonce);
        if let Err(err) = connection.writer.push(handshake.hello()) {
            self.break_connection(token, &format!("cannot frame the hello: {err}"), out);
            return false;
        }
        connection.phase = Phase::Handshaking {
            handshake: Box::new(handshake),
            target: Some(target),
        };
        connection.deadline = Instant::now().checked_add(self.limits.handshake_timeout);
        self.dirty.insert(token);
        true
    }

    /// Reads until the socket would block (or the budget is spent), acting on every
    /// complete frame after each read.
    fn read_ready(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        self.read(token, true, out);
    }

    /// Reads what a readable event announced: like [`read_ready`](State::read_ready),
    /// but a read that did not fill the room offered ends it. That read emptied the
    /// socket's receive queue, and with edge-triggered readiness any byte arriving later
    /// raises a new event: the read that would only report `WouldBlock` is saved (one
    /// syscall per message on a ping-pong). An event that reports the peer's close or an
    /// error reads until `WouldBlock`, so the end of the stream is never missed.
    fn read_available(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        self.read(token, false, out);
    }

    fn read(&mut self, token: Token, until_would_block: bool, out: &mut Vec<TransportEvent>) {
        let mut budget = READ_BYTES_PER_EVENT_MAX;
        loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            let chunk = match connection.phase {
                Phase::Connecting { .. } => return,
                Phase::Established { .. } => READ_CHUNK_BYTES,
                // Little to say before the cookie is proven (or after a decline).
                Phase::Handshaking { .. } | Phase::Closing => HANDSHAKE_READ_BYTES,
            };
            match connection
                .reader
                .read_at_most(&mut connection.stream, chunk)
            {
                Ok(0) => {
                    self.break_connection(token, "closed by the peer", out);
                    return;
                }
                Ok(read) => {
                    self.process_frames(token, out);
                    // A read short of the room offered emptied the socket.
                    if !until_would_block && read < chunk {
                        return;
                    }
                    budget = budget.saturating_sub(read);
                    if budget == 0 {
                        if self.connections.contains_key(&token) {
                            self.read_backlog.insert(token);
                            self.read_backlog_since.get_or_insert_with(Instant::now);
                        }
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    self.break_connection(token, &format!("read failed: {err}"), out);
                    return;
                }
            }
        }
    }

    /// Acts on every complete frame buffered on a connection, in order.
    fn process_frames(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            if let Phase::Established { peer } = connection.phase {
                // The steady state: every frame is the node's, one lookup for them all.
                let err = loop {
                    match connection.reader.next_frame() {
                        Ok(Some(body)) => out.push(TransportEvent::Received(peer, body)),
                        Ok(None) => return,
                        Err(err) => break err,
                    }
                };
                self.break_connection(token, &format!("frame refused: {err}"), out);
                return;
            }
            let body = match connection.reader.next_frame() {
                Ok(Some(body)) => body,
                Ok(None) => return,
                Err(err) => {
                    let remote = connection.remote;
                    if connection.phase.is_inbound_handshake() {
                        self.warnings.warn(
                            Instant::now(),
                            "handshake message refused",
                            remote,
                            &err,
                        );
                    } else if !matches!(connection.phase, Phase::Established { .. }) {
                        tracing::warn!(%remote, %err, "handshake message refused; connection dropped");
                    }
                    self.break_connection(token, &format!("frame refused: {err}"), out);
                    return;
                }
            };
            match &connection.phase {
                Phase::Established { peer } => out.push(TransportEvent::Received(*peer, body)),
                Phase::Handshaking { .. } => self.handshake_step(token, &body, out),
                Phase::Closing | Phase::Connecting { .. } => {}
            }
        }
    }

    /// Writes what is queued on one connection, as far as the socket takes it; the rest
    /// goes when the socket reports it is writable again.
    fn write_queued(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        if matches!(connection.phase, Phase::Connecting { .. }) || connection.writer.is_empty() {
            return;
        }
        if let Err(err) = connection.writer.write_to(&mut connection.stream) {
            self.break_connection(token, &format!("write failed: {err}"), out);
        }
    }

    /// Closes a socket; no event, no change to the peer links.
    fn close(&mut self, token: Token) -> Option<Connection> {
        let mut connection = self.connections.remove(&token)?;
        if let Some(source) = connection.slot.take() {
            self.admission.release(source);
        }
        if let Some(registry) = &self.registry {
            let _ = registry.deregister(&mut connection.stream);
        }
        self.dirty.remove(&token);
        self.read_backlog.remove(&token);
        Some(connection)
    }

    /// A connection broke (or failed to come up): closes it and reports its peer lost if
    /// the peer counted on it.
    fn break_connection(&mut self, token: Token, why: &str, out: &mut Vec<TransportEvent>) {
        let Some(connection) = self.close(token) else {
            return;
        };
        let remote = connection.remote;
        let (peer, route) = match connection.phase {
            Phase::Established { peer } => (peer, Route::Established(token)),
            Phase::Connecting { target }
            | Phase::Handshaking {
                target: Some(target),
                ..
            } => (target, Route::Dialing(token)),
            Phase::Handshaking { target: None, .. } | Phase::Closing => {
                tracing::debug!(%remote, why, "connection dropped before it was established");
                return;
            }
        };
        if self.peers.get(&peer).map(|link| link.route) != Some(route) {
            tracing::debug!(%peer, %remote, why, "superseded connection dropped");
            return;
        }
        self.peers.remove(&peer);
        match route {
            Route::Established(_) => tracing::info!(%peer, %remote, why, "connection lost"),
            _ => tracing::info!(%peer, %remote, why, "cannot connect"),
        }
        out.push(TransportEvent::PeerLost(peer));
    }

    // ---- the handshake -------------------------------------------------------------

    fn handshake_step(&mut self, token: Token, body: &[u8], out: &mut Vec<TransportEvent>) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let remote = connection.remote;
        if !connection.hello_received {
            connection.hello_received = true;
            if let Some(accepted_at) = connection.accepted_at {
                // The hello came in time: the rest of the handshake has its own timeout.
                connection.deadline = accepted_at.checked_add(self.limits.handshake_timeout);
            }
        }
        let Phase::Handshaking { handshake, target } = &mut connection.phase else {
            return;
        };
        let target = *target;
        match handshake.receive(body) {
            Err(err) => self.handshake_failed(token, &err, out),
            Ok(Step::Hello { peer, reply }) => {
                if let Some(target) = target.filter(|target| *target != peer) {
                    tracing::info!(
                        %remote,
                        dialed = %target,
                        found = %peer,
                        "the address answers as another node: the node dialed is gone"
                    );
                    self.break_connection(token, "another node at the address", out);
                    return;
                }
                if let Some(reply) = reply {
                    self.queue_handshake_message(token, &reply, out);
                }
            }
            Ok(Step::Proven { peer }) => self.decide_inbound(token, peer, out),
            Ok(Step::Verdict { peer, verdict }) => self.on_verdict(token, peer, verdict, out),
            Ok(Step::Replace { peer }) => {
                tracing::info!(%peer, "the peer reconnected: its previous connection is gone");
                self.establish(token, peer, out);
            }
        }
    }

    fn handshake_failed(
        &mut self,
        token: Token,
        err: &HandshakeError,
        out: &mut Vec<TransportEvent>,
    ) {
        if let Some(connection) = self.connections.get(&token) {
            let claimed = match &connection.phase {
                Phase::Handshaking { handshake, .. } => handshake.peer(),
                _ => None,
            };
            if connection.phase.is_inbound_handshake() {
                let remote = connection.remote;
                self.warnings.warn(
                    Instant::now(),
                    "handshake failed",
                    remote,
                    format_args!("{err} (claimed {claimed:?})"),
                );
            } else {
                tracing::warn!(
                    remote = %connection.remote,
                    claimed = ?claimed,
                    %err,
                    "handshake failed; connection dropped"
                );
            }
        }
        self.break_connection(token, &format!("handshake failed: {err}"), out);
    }

    fn queue_handshake_message(
        &mut self,
        token: Token,
        message: &[u8],
        out: &mut Vec<TransportEvent>,
    ) {
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        match connection.writer.push(message) {
            Ok(()) => {
                self.dirty.insert(token);
            }
            Err(err) => self.break_connection(
                token,
                &format!("cannot frame a handshake message: {err}"),
                out,
            ),
        }
    }

    /// The acceptor's decision once the initiator proved itself (see the handshake's
    /// module documentation for the rule).
    fn decide_inbound(&mut self, token: Token, peer: NodeId, out: &mut Vec<TransportEvent>) {
        let verdict = match self.peers.get(&peer).map(|link| link.route) {
            None | Some(Route::AwaitingInbound { .. }) => Verdict::Accept,
            // Both dialed at once: the connection initiated by the smaller id stays.
            Some(Route::Dialing(_)) if self.local < peer => Verdict::Decline,
            Some(Route::Dialing(_)) => Verdict::Accept,
            Some(Route::Established(_)) => Verdict::Alive,
        };
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        let Phase::Handshaking { handshake, .. } = &mut connection.phase else {
            return;
        };
        let message = match handshake.decide(verdict) {
            Ok(message) => message,
            Err(err) => {
                self.handshake_failed(token, &err, out);
                return;
            }
        };
        if verdict == Verdict::Decline {
            // Written by the next flush; the peer closes once it has read it. It proved
            // the cookie: its handshake slot is free.
            connection.phase = Phase::Closing;
            if let Some(source) = connection.slot.take() {
                self.admission.release(source);
            }
        }
        self.queue_handshake_message(token, &message, out);
        match verdict {
            Verdict::Accept => self.establish(token, peer, out),
            Verdict::Decline => {
                tracing::debug!(%peer, "simultaneous connection declined: ours is kept");
            }
            Verdict::Alive => {
                tracing::debug!(%peer, "connected peer dials again; asking whether it lost us");
            }
        }
    }

    /// The initiator's reaction to the acceptor's verdict.
    fn on_verdict(
        &mut self,
        token: Token,
        peer: NodeId,
        verdict: Verdict,
        out: &mut Vec<TransportEvent>,
    ) {
        match verdict {
            Verdict::Accept => self.establish(token, peer, out),
            Verdict::Decline => {
                tracing::debug!(%peer, "the peer is dialing us at the same moment; waiting for it");
                if let Some(link) = self.peers.get_mut(&peer) {
                    if link.route == Route::Dialing(token) {
                        link.route = Route::AwaitingInbound {
                            deadline: saturating_deadline(
                                self.limits
                                    .connect_timeout
                                    .saturating_add(self.limits.handshake_timeout),
                            ),
                        };
                    }
                }
                self.close(token);
            }
            Verdict::Alive => {
                let has_other = matches!(
                    self.peers.get(&peer).map(|link| link.route),
                    Some(Route::Established(other)) if other != token
                );
                if has_other {
                    tracing::debug!(%peer, "stale simultaneous connection closed");
                    self.close(token);
                    return;
                }
                let Some(connection) = self.connections.get_mut(&token) else {
                    return;
                };
                let Phase::Handshaking { handshake, .. } = &mut connection.phase else {
                    return;
                };
                match handshake.replace() {
                    Ok(message) => {
                        self.queue_handshake_message(token, &message, out);
                        self.establish(token, peer, out);
                    }
                    Err(err) => self.handshake_failed(token, &err, out),
                }
            }
        }
    }

    /// Makes `token` the connection of `peer`: frames waiting for the peer follow the
    /// handshake, a superseded dial is closed silently, a superseded established
    /// connection is reported lost first.
    fn establish(&mut self, token: Token, peer: NodeId, out: &mut Vec<TransportEvent>) {
        if !self.connections.contains_key(&token) {
            return;
        }
        let frame_bytes_max = self.limits.frame_bytes_max;
        let link = self.peers.entry(peer).or_insert_with(|| PeerLink {
            route: Route::Established(token),
            pending: FrameWriter::with_limit(frame_bytes_max),
        });
        let previous = std::mem::replace(&mut link.route, Route::Established(token));
        let pending = link.pending.take_pending();
        match previous {
            Route::Dialing(other) if other != token => {
                tracing::debug!(%peer, "our own dial is superseded by the peer's connection");
                self.close(other);
            }
            Route::Established(other) if other != token => {
                self.close(other);
                out.push(TransportEvent::PeerLost(peer));
            }
            _ => {}
        }
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        connection.phase = Phase::Established { peer };
        connection.deadline = None;
        if let Some(source) = connection.slot.take() {
            self.admission.release(source);
        }
        connection.reader.set_limit(frame_bytes_max);
        connection.writer.push_framed(&pending);
        tracing::info!(%peer, remote = %connection.remote, "connected");
        self.dirty.insert(token);
        out.push(TransportEvent::PeerConnected(peer));
    }
}

/// `now + wait`, or a century from now when `wait` is beyond what an `Instant` holds
/// (`Duration::MAX` configured as "never").
fn saturating_deadline(wait: std::time::Duration) -> Instant {
    let now = Instant::now(); // real-world only: the TCP transport's timers
    now.checked_add(wait)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 24 * 3600))
}
