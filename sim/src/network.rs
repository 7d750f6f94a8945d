//! The simulated network: an in-memory transport with latency, breaks, partitions and
//! crashes that keeps TCP's contract (complete frames, in order, at most once per
//! connection, until a reported break).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyperion::transport::{Transport, TransportEvent};
use hyperion::NodeId;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::clock::WorldTime;
use crate::faults::Faults;

mod arbitrated;

use arbitrated::{Arbitrated, Control};

/// How long a connection attempt to an unreachable node takes to fail.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// An unordered pair of nodes: the key of a connection.
type Pair = (NodeId, NodeId);

fn pair(a: NodeId, b: NodeId) -> Pair {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Which way a frame travels on a connection: 0 from the smaller node id, 1 from the
/// larger.
fn direction(from: NodeId, to: NodeId) -> usize {
    usize::from(from > to)
}

struct Connection {
    generation: u64,
    /// Per direction: when the last frame is due, so a later frame is never earlier.
    last_due: [Duration; 2],
    /// Per direction: frames sent (sequence numbers given so far).
    sent: [u64; 2],
    /// Per direction: frames held by a partition, released in order at the heal.
    stalled: [Vec<(u64, Vec<u8>)>; 2],
    /// Per direction: the last sequence number delivered (the FIFO checker's memory).
    delivered: [u64; 2],
    /// Per direction: the link's base latency (fixed once drawn, in `link_latency`).
    base_latency: [Duration; 2],
}

/// An event on its way to a node.
pub(crate) struct Delivery {
    pub(crate) to: NodeId,
    pub(crate) event: TransportEvent,
    /// For frames and connection-up events, the generation of the connection between
    /// `to` and the event's peer (stale generations are dropped); 0 for other events.
    /// Generations start at 1.
    generation: u64,
    /// For frames, the per-direction sequence number (from 1); 0 otherwise.
    sequence: u64,
    /// A message of an arbitrated connection's own protocol (then `event` is a
    /// `PeerLost` naming the sender, never delivered as such).
    control: Option<Control>,
}

impl Delivery {
    /// `frame` from `from`, arriving at `to` as the `sequence`th frame of the
    /// connection's `generation`.
    fn frame(from: NodeId, to: NodeId, frame: Vec<u8>, generation: u64, sequence: u64) -> Delivery {
        Delivery {
            to,
            event: TransportEvent::Received(from, frame),
            generation,
            sequence,
            control: None,
        }
    }

    fn other(to: NodeId, event: TransportEvent) -> Delivery {
        Delivery {
            to,
            event,
            generation: 0,
            sequence: 0,
            control: None,
        }
    }

    /// The peer the event is about (the sender of a frame).
    fn peer(&self) -> NodeId {
        match &self.event {
            TransportEvent::Received(peer, _)
            | TransportEvent::ReceivedBatch(peer, _)
            | TransportEvent::PeerConnected(peer)
            | TransportEvent::PeerLost(peer) => *peer,
        }
    }
}

/// A delivery in the heap: the earliest `(at, order)` on top. `order` is unique.
struct InFlight {
    at: Duration,
    order: u64,
    delivery: Delivery,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for InFlight {}

impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: `BinaryHeap` is a max-heap.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

struct Host {
    node: NodeId,
    alive: bool,
}

/// Every node's view of the wire, shared by all of a world's transports.
pub(crate) struct NetworkState {
    pub(crate) time: WorldTime,
    rng: ChaCha8Rng,
    faults: Faults,
    hosts: BTreeMap<SocketAddr, Host>,
    connections: BTreeMap<Pair, Connection>,
    next_generation: u64,
    /// Deliveries by due time, then by when they were scheduled: a heap, which keeps its
    /// allocation between messages (a map allocates a node for its first entry).
    in_flight: BinaryHeap<InFlight>,
    next_sequence: u64,
    blocked: BTreeSet<(SocketAddr, SocketAddr)>,
    link_latency: BTreeMap<(SocketAddr, SocketAddr), Duration>,
    failing_connects: BTreeSet<(NodeId, NodeId)>,
    pub(crate) frames_delivered: u64,
    /// Breaches of per-connection FIFO seen at delivery (the checker's input).
    pub(crate) fifo_violations: Vec<String>,
    /// Deliberately lets jitter reorder a connection, to prove the checker notices.
    pub(crate) reorder_for_testing: bool,
    /// Deliberately delivers every frame twice, to prove the checker notices.
    pub(crate) duplicate_for_testing: bool,
    /// Connections made as the TCP transport makes them (dials that cross, the
    /// arbitration, late closes, half-open ends), if the world asked for them; `None`:
    /// one shared connection per pair, closed at once (the default, and the fastest).
    pub(crate) arbitrated: Option<Box<Arbitrated>>,
}

/// The shared network of one world.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) state: Rc<RefCell<NetworkState>>,
}

impl Network {
    pub(crate) fn new(time: WorldTime, rng: ChaCha8Rng, faults: Faults) -> Network {
        Network {
            state: Rc::new(RefCell::new(NetworkState {
                time,
                rng,
                faults,
                hosts: BTreeMap::new(),
                connections: BTreeMap::new(),
                next_generation: 1,
                in_flight: BinaryHeap::new(),
                next_sequence: 0,
                blocked: BTreeSet::new(),
                link_latency: BTreeMap::new(),
                failing_connects: BTreeSet::new(),
                frames_delivered: 0,
                fifo_violations: Vec::new(),
                reorder_for_testing: false,
                duplicate_for_testing: false,
                arbitrated: None,
            })),
        }
    }

    pub(crate) fn transport(&self, local: NodeId) -> SimTransport {
        SimTransport {
            network: self.clone(),
            local,
        }
    }
}

impl NetworkState {
    /// Runs `f` on the arbitrated connections, if the world has them.
    fn with_arbitrated<R>(
        &mut self,
        f: impl FnOnce(&mut Arbitrated, &mut NetworkState) -> R,
    ) -> Option<R> {
        let mut arbitrated = self.arbitrated.take()?;
        let result = f(&mut arbitrated, self);
        self.arbitrated = Some(arbitrated);
        Some(result)
    }

    /// Makes connections as the TCP transport does from now on (see `arbitrated`).
    pub(crate) fn arbitrate(&mut self) {
        if self.arbitrated.is_none() {
            self.arbitrated = Some(Box::default());
        }
    }

    /// The arbitration's breaches seen since the last call.
    pub(crate) fn take_arbitration_violations(&mut self) -> Vec<String> {
        self.arbitrated
            .as_mut()
            .map(|arbitrated| std::mem::take(&mut arbitrated.violations))
            .unwrap_or_default()
    }

    pub(crate) fn host_up(&mut self, node: NodeId) {
        self.hosts.insert(node.address, Host { node, alive: true });
    }

    fn is_up(&self, node: NodeId) -> bool {
        self.hosts
            .get(&node.address)
            .is_some_and(|host| host.alive && host.node == node)
    }

    fn latency(&mut self, from: SocketAddr, to: SocketAddr) -> Duration {
        let (low, high) = self.faults.latency;
        let base = match self.link_latency.get(&(from, to)) {
            Some(base) => *base,
            None => {
                let span = high.saturating_sub(low).as_nanos() as u64;
                let base = low + Duration::from_nanos(self.rng.next_u64() % span.max(1));
                self.link_latency.insert((from, to), base);
                base
            }
        };
        let jitter = self.faults.jitter.as_nanos() as u64;
        base + Duration::from_nanos(if jitter == 0 {
            0
        } else {
            self.rng.next_u64() % jitter
        })
    }

    fn schedule(&mut self, at: Duration, delivery: Delivery) {
        self.in_flight.push(InFlight {
            at,
            order: self.next_sequence,
            delivery,
        });
        self.next_sequence += 1;
    }

    /// The next delivery's due time.
    pub(crate) fn next_due(&self) -> Option<Duration> {
        self.in_flight.peek().map(|next| next.at)
    }

    /// Takes the next delivery due at or before `now`, dropping those of broken
    /// connections (their frames were in flight when it broke).
    pub(crate) fn pop_due(&mut self, now: Duration) -> Option<Delivery> {
        loop {
            if self.in_flight.peek()?.at > now {
                return None;
            }
            let delivery = self.in_flight.pop().expect("peeked").delivery;
            if delivery.generation > 0 && self.arbitrated.is_some() {
                let event = self.with_arbitrated(|arbitrated, network| {
                    arbitrated.on_delivery(network, delivery)
                });
                match event.flatten() {
                    Some(event) if self.is_up(event.to) => return Some(event),
                    _ => continue,
                }
            }
            if !self.is_up(delivery.to) {
                continue;
            }
            match delivery.generation {
                generation @ 1.. => {
                    let peer = match &delivery.event {
                        TransportEvent::Received(peer, _)
                        | TransportEvent::ReceivedBatch(peer, _)
                        | TransportEvent::PeerConnected(peer)
                        | TransportEvent::PeerLost(peer) => *peer,
                    };
                    let Some(connection) = self
                        .connections
                        .get_mut(&pair(peer, delivery.to))
                        .filter(|c| c.generation == generation)
                    else {
                        continue;
                    };
                    let sequence = delivery.sequence;
                    if let (1.., TransportEvent::Received(from, _)) = (sequence, &delivery.event) {
                        let last = &mut connection.delivered[direction(*from, delivery.to)];
                        if sequence <= *last {
                            let detail = format!(
                                "frames on one connection ({from} -> {}) out of order or \
                                 duplicated: frame {sequence} after frame {last}",
                                delivery.to
                            );
                            self.fifo_violations.push(detail);
                        }
                        *last = sequence.max(*last);
                        self.frames_delivered += 1;
                    }
                    return Some(delivery);
                }
                0 => {
                    if let TransportEvent::PeerLost(peer) = delivery.event {
                        self.failing_connects.remove(&(delivery.to, peer));
                    }
                    return Some(delivery);
                }
            }
        }
    }

    fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from.address, to.address))
    }

    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, frame: Vec<u8>) {
        if !self.is_up(from) {
            return;
        }
        if self.arbitrated.is_some() {
            self.with_arbitrated(|arbitrated, network| arbitrated.send(network, from, to, frame));
            return;
        }
        let key = pair(from, to);
        let now = self.time.now();
        let way = direction(from, to);
        let blocked = !self.blocked.is_empty() && self.blocked(from, to);
        let connection = match self.connections.get_mut(&key) {
            Some(connection) => connection,
            None => {
                if !self.connect(from, to) {
                    return;
                }
                self.connections.get_mut(&key).expect("connected above")
            }
        };
        // What `latency` draws, with the link's base latency copied at connect time.
        let jitter = self.faults.jitter.as_nanos() as u64;
        let latency = connection.base_latency[way]
            + Duration::from_nanos(if jitter == 0 {
                0
            } else {
                self.rng.next_u64() % jitter
            });
        connection.sent[way] += 1;
        let sequence = connection.sent[way];
        if blocked {
            connection.stalled[way].push((sequence, frame));
            return;
        }
        let due = if self.reorder_for_testing {
            now + latency
        } else {
            (now + latency).max(connection.last_due[way])
        };
        connection.last_due[way] = due;
        let generation = connection.generation;
        if self.duplicate_for_testing {
            let copy = Delivery::frame(from, to, frame.clone(), generation, sequence);
            self.schedule(due, copy);
        }
        self.schedule(due, Delivery::frame(from, to, frame, generation, sequence));
    }

    /// Opens a connection if `to` is reachable; otherwise the attempt fails after
    /// [`CONNECT_TIMEOUT`] with a `PeerLost` for `to` at `from`.
    fn connect(&mut self, from: NodeId, to: NodeId) -> bool {
        let reachable = self.is_up(to) && !self.blocked(from, to) && !self.blocked(to, from);
        let now = self.time.now();
        if !reachable {
            if self.failing_connects.insert((from, to)) {
                self.schedule(
                    now + CONNECT_TIMEOUT,
                    Delivery::other(from, TransportEvent::PeerLost(to)),
                );
            }
            return false;
        }
        let key = pair(from, to);
        let generation = self.next_generation;
        self.next_generation += 1;
        let forth = self.latency(from.address, to.address);
        let back = self.latency(to.address, from.address);
        let mut last_due = [Duration::ZERO; 2];
        last_due[direction(from, to)] = now + forth;
        last_due[direction(to, from)] = now + forth + back;
        let mut base_latency = [Duration::ZERO; 2];
        base_latency[direction(from, to)] = self.link_latency[&(from.address, to.address)];
        base_latency[direction(to, from)] = self.link_latency[&(to.address, from.address)];
        self.connections.insert(
            key,
            Connection {
                generation,
                last_due,
                sent: [0; 2],
                stalled: [Vec::new(), Vec::new()],
                delivered: [0; 2],
                base_latency,
            },
        );
        self.schedule(
            now + forth,
            Delivery {
                to,
                event: TransportEvent::PeerConnected(from),
                generation,
                sequence: 0,
                control: None,
            },
        );
        self.schedule(
            now + forth + back,
            Delivery {
                to: from,
                event: TransportEvent::PeerConnected(to),
                generation,
                sequence: 0,
                control: None,
            },
        );
        true
    }

    /// Breaks the connection between `a` and `b`: frames in flight are lost, and each
    /// side in `notify` is told at once.
    pub(crate) fn break_connection(&mut self, a: NodeId, b: NodeId, notify: &[NodeId]) -> bool {
        if let Some(broke) =
            self.with_arbitrated(|arbitrated, network| arbitrated.break_pair(network, a, b))
        {
            return broke;
        }
        if self.connections.remove(&pair(a, b)).is_none() {
            return false;
        }
        let now = self.time.now();
        for side in notify {
            let peer = if *side == a { b } else { a };
            self.schedule(now, Delivery::other(*side, TransportEvent::PeerLost(peer)));
        }
        true
    }

    /// Every connection of `node`, as the peer at the other end.
    pub(crate) fn peers_of(&self, node: NodeId) -> Vec<NodeId> {
        self.connections
            .keys()
            .filter_map(|(a, b)| {
                if *a == node {
                    Some(*b)
                } else if *b == node {
                    Some(*a)
                } else {
                    None
                }
            })
            .collect()
    }

    /// Crashes a host: its connections vanish; peers are told at once only if `reset`.
    pub(crate) fn crash(&mut self, node: NodeId, reset: bool) {
        if let Some(host) = self.hosts.get_mut(&node.address) {
            host.alive = false;
        }
        self.with_arbitrated(|arbitrated, network| arbitrated.crash(network, node, reset));
        for peer in self.peers_of(node) {
            let notify: &[NodeId] = if reset { &[peer] } else { &[] };
            self.break_connection(node, peer, notify);
        }
        self.failing_connects.retain(|(from, _)| *from != node);
    }

    pub(crate) fn partition(&mut self, from: SocketAddr, to: SocketAddr) {
        self.blocked.insert((from, to));
    }

    /// Lifts every partition and releases the frames they held, in order.
    pub(crate) fn heal_all(&mut self) {
        self.blocked.clear();
        self.with_arbitrated(|arbitrated, network| arbitrated.heal(network));
        let now = self.time.now();
        let keys: Vec<Pair> = self.connections.keys().copied().collect();
        for key in keys {
            for way in 0..2 {
                let (from, to) = if way == 0 { key } else { (key.1, key.0) };
                let latency = self.latency(from.address, to.address);
                let connection = self.connections.get_mut(&key).expect("key listed");
                let stalled = std::mem::take(&mut connection.stalled[way]);
                let generation = connection.generation;
                let mut releases = Vec::new();
                for (sequence, frame) in stalled {
                    let due = (now + latency).max(connection.last_due[way]);
                    connection.last_due[way] = due;
                    releases.push((due, sequence, frame));
                }
                for (due, sequence, frame) in releases {
                    self.schedule(due, Delivery::frame(from, to, frame, generation, sequence));
                }
            }
        }
    }

    pub(crate) fn connection_count(&self) -> usize {
        if let Some(arbitrated) = &self.arbitrated {
            return arbitrated.open_connections();
        }
        self.connections.len()
    }

    pub(crate) fn in_flight_count(&self) -> usize {
        self.in_flight.len()
    }
}

/// One node's end of the simulated network.
pub struct SimTransport {
    network: Network,
    local: NodeId,
}

impl Transport for SimTransport {
    fn local_address(&self) -> SocketAddr {
        self.local.address
    }

    fn send(&mut self, peer: NodeId, frame: Vec<u8>) {
        self.network
            .state
            .borrow_mut()
            .send(self.local, peer, frame);
    }

    fn disconnect(&mut self, peer: NodeId) {
        let local = self.local;
        let mut state = self.network.state.borrow_mut();
        if state
            .with_arbitrated(|arbitrated, network| arbitrated.disconnect(network, local, peer))
            .is_some()
        {
            return;
        }
        // The caller handles its own side; the peer hears of it at once (a FIN).
        state.break_connection(self.local, peer, &[peer]);
    }

    fn shutdown(&mut self) {
        let local = self.local;
        let mut state = self.network.state.borrow_mut();
        state.with_arbitrated(|arbitrated, network| arbitrated.shutdown(network, local));
        for peer in state.peers_of(self.local) {
            state.break_connection(self.local, peer, &[peer]);
        }
        if let Some(host) = state.hosts.get_mut(&self.local.address) {
            if host.node == self.local {
                host.alive = false;
            }
        }
    }
}
