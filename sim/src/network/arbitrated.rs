//! Connections as the TCP transport makes them, for worlds that ask for it
//! ([`Sim::arbitrated_connections`](crate::Sim::arbitrated_connections)): each node dials
//! its own connection (two dials of a pair can cross), the handshake's proof, verdict and
//! replace travel on the connection, and the [`Arbiter`] the TCP transport runs decides
//! which connection a pair keeps. A close travels as a message behind the frames sent
//! before it (so it arrives late; a close sent into a partition is lost), a break reaches
//! each side after its own delay, and a node that crashed silently leaves its peers' ends
//! half-open until they send (then a reset comes back) or their heartbeats give up.
//!
//! What it checks (reported as violations): frames of one connection arrive in order, at
//! most once; and a connection one end closes silently (a superseded or stale dial) is
//! never the connection the other end keeps.

use std::collections::BTreeMap;
use std::time::Duration;

use hyperion::transport::arbitration::{Arbiter, Route, Transition};
use hyperion::transport::TransportEvent;
use hyperion::wire::handshake::Verdict;
use hyperion::NodeId;
use rand_chacha::rand_core::RngCore;

use super::{Delivery, NetworkState, CONNECT_TIMEOUT};

/// A message of a connection's own protocol, handled by the network, not by a node.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// The initiator's proof (the hellos and the proof, collapsed into one message).
    Proof,
    /// The acceptor's verdict.
    Verdict(Verdict),
    /// The initiator asks the acceptor to replace its connection with this one.
    Replace,
    /// The other end closed (a FIN, behind everything sent before it).
    Fin,
    /// The other end is gone or the connection broke (a reset).
    Reset,
    /// The dial found nobody (refused or timed out).
    ConnectFailed,
    /// The wait for the peer's connection after a decline is over.
    AwaitExpired,
}

/// One simulated TCP connection; end 0 dialed, end 1 accepted.
struct Connection {
    ends: [NodeId; 2],
    open: [bool; 2],
    /// Whether each end made it the route (for the agreement check).
    established: [bool; 2],
    /// A break happened: everything in flight is lost, and resets are on their way.
    broken: bool,
    /// Per sending end: when its last message is due (later ones never earlier).
    last_due: [Duration; 2],
    /// Per sending end: messages sent (sequence numbers given so far).
    sent: [u64; 2],
    /// Per sending end: the last sequence number delivered (the FIFO checker's memory).
    delivered: [u64; 2],
    /// Per sending end: messages held by a partition, released in order at the heal.
    stalled: [Vec<(u64, Delivery)>; 2],
    /// Per sending end: the link's base latency.
    base_latency: [Duration; 2],
    /// Per end: a reset toward it is already on its way.
    reset_sent: [bool; 2],
    /// What the acceptor's "alive" on this connection vouched for (see
    /// [`Arbiter::on_replace`]).
    vouched: Option<u64>,
}

impl Connection {
    fn end_of(&self, node: NodeId) -> Option<usize> {
        self.ends.iter().position(|end| *end == node)
    }
}

/// A node's link to a peer: the arbitration's route and the frames waiting for it.
struct Link {
    route: Route<u64, Duration>,
    pending: Vec<Vec<u8>>,
}

/// The arbitrated connections of a world.
#[derive(Default)]
pub(crate) struct Arbitrated {
    /// By `(local, peer)`.
    links: BTreeMap<(NodeId, NodeId), Link>,
    connections: BTreeMap<u64, Connection>,
    next_id: u64,
    /// Breaches of the arbitration's guarantees (the checker's input).
    pub(crate) violations: Vec<String>,
}

impl Arbitrated {
    fn route(&self, local: NodeId, peer: NodeId) -> Option<Route<u64, Duration>> {
        self.links.get(&(local, peer)).map(|link| link.route)
    }

    /// Connections with an end still open (for the leak check).
    pub(crate) fn open_connections(&self) -> usize {
        self.connections
            .values()
            .filter(|c| c.open[0] || c.open[1])
            .count()
    }

    /// The pairs whose two ends hold different connections as established (at rest, after
    /// a liveness phase, there must be none; in between, a replace or a late close may
    /// leave one for a while).
    pub(crate) fn disagreements(&self) -> Vec<String> {
        let mut found = Vec::new();
        for ((local, peer), link) in &self.links {
            let Route::Established(mine) = link.route else {
                continue;
            };
            if local > peer {
                continue; // each pair once
            }
            if let Some(Route::Established(theirs)) = self.route(*peer, *local) {
                if theirs != mine {
                    found.push(format!(
                        "{local} keeps connection {mine} and {peer} keeps connection {theirs}"
                    ));
                }
            }
        }
        found
    }

    /// The peers `node` has a route to.
    pub(crate) fn peers_of(&self, node: NodeId) -> Vec<NodeId> {
        self.links
            .keys()
            .filter(|(local, _)| *local == node)
            .map(|(_, peer)| *peer)
            .collect()
    }

    pub(crate) fn send(
        &mut self,
        net: &mut NetworkState,
        from: NodeId,
        to: NodeId,
        frame: Vec<u8>,
    ) {
        match self.route(from, to) {
            Some(Route::Established(c)) => {
                let end = self.connections[&c]
                    .end_of(from)
                    .expect("an end of its route");
                self.transmit(net, c, end, Carried::Frame(frame));
            }
            Some(_) => {
                if let Some(link) = self.links.get_mut(&(from, to)) {
                    link.pending.push(frame);
                }
            }
            None => {
                self.dial(net, from, to);
                if let Some(link) = self.links.get_mut(&(from, to)) {
                    link.pending.push(frame);
                }
            }
        }
    }

    fn dial(&mut self, net: &mut NetworkState, from: NodeId, to: NodeId) {
        self.next_id += 1;
        let c = self.next_id;
        let now = net.time.now();
        let forth = net.latency(from.address, to.address);
        let back = net.latency(to.address, from.address);
        let reachable = net.is_up(to) && !net.blocked(from, to) && !net.blocked(to, from);
        self.connections.insert(
            c,
            Connection {
                ends: [from, to],
                open: [true, reachable],
                established: [false; 2],
                broken: false,
                last_due: [now; 2],
                sent: [0; 2],
                delivered: [0; 2],
                stalled: [Vec::new(), Vec::new()],
                base_latency: [forth, back],
                reset_sent: [false; 2],
                vouched: None,
            },
        );
        let transition = Arbiter::new(from).dial(None, c);
        self.links.insert(
            (from, to),
            Link {
                route: transition.route.expect("a dial is a route"),
                pending: Vec::new(),
            },
        );
        if reachable {
            self.transmit(net, c, 0, Carried::Control(Control::Proof));
        } else {
            net.schedule(
                now + CONNECT_TIMEOUT,
                control(from, to, c, Control::ConnectFailed),
            );
        }
    }

    /// Sends a message from end `end` of connection `c`, in order behind what it sent.
    fn transmit(&mut self, net: &mut NetworkState, c: u64, end: usize, carried: Carried) {
        let Some(connection) = self.connections.get_mut(&c) else {
            return;
        };
        if !connection.open[end] || connection.broken {
            return;
        }
        let (from, to) = (connection.ends[end], connection.ends[1 - end]);
        let jitter = net.faults.jitter.as_nanos() as u64;
        let latency = connection.base_latency[end]
            + Duration::from_nanos(if jitter == 0 {
                0
            } else {
                net.rng.next_u64() % jitter
            });
        connection.sent[end] += 1;
        let sequence = connection.sent[end];
        let mut delivery = match carried {
            Carried::Frame(frame) => Delivery::frame(from, to, frame, c, sequence),
            Carried::Control(kind) => control(to, from, c, kind),
        };
        delivery.sequence = sequence;
        if !net.blocked.is_empty() && net.blocked(from, to) {
            if delivery.control == Some(Control::Fin) {
                // A close into a black hole: the closed socket's retransmissions give up,
                // and the other end stays half-open, believing the connection alive,
                // until it sends (a reset answers) or its peer redials (a replace).
                return;
            }
            connection.stalled[end].push((sequence, delivery));
            return;
        }
        let due = (net.time.now() + latency).max(connection.last_due[end]);
        connection.last_due[end] = due;
        net.schedule(due, delivery);
    }

    /// Handles a delivery of an arbitrated connection: returns the event for its node,
    /// if any (handshake messages and closes are the network's own business).
    pub(crate) fn on_delivery(
        &mut self,
        net: &mut NetworkState,
        delivery: Delivery,
    ) -> Option<Delivery> {
        let c = delivery.generation;
        let to = delivery.to;
        let from = delivery.peer();
        if delivery.control == Some(Control::AwaitExpired) {
            let expired = matches!(
                self.route(to, from),
                Some(Route::AwaitingInbound { deadline }) if deadline <= net.time.now()
            );
            if expired {
                self.links.remove(&(to, from));
                tracing::debug!(peer = %from, "the peer declined our connection and never made its own");
                self.event(net, to, TransportEvent::PeerLost(from));
            }
            return None;
        }
        let connection = self.connections.get_mut(&c)?;
        let end = connection.end_of(to)?;
        let sender = 1 - end;
        if delivery.control == Some(Control::ConnectFailed) {
            connection.open[end] = false;
            let transition = Arbiter::new(to).on_closed(self.route(to, from), c);
            self.apply(net, to, from, c, transition);
            self.forget_if_closed(c);
            return None;
        }
        if connection.broken && delivery.control != Some(Control::Reset) {
            return None; // in flight when the connection broke
        }
        let broken = connection.broken;
        if delivery.sequence > 0 {
            let last = &mut connection.delivered[sender];
            if delivery.sequence <= *last {
                net.fifo_violations.push(format!(
                    "messages on one connection ({from} -> {to}) out of order or duplicated: \
                     {} after {last}",
                    delivery.sequence
                ));
            }
            *last = delivery.sequence.max(*last);
        }
        if !connection.open[end] {
            // A closed end answers what still arrives with a reset, as TCP does: this is
            // how a peer of a node that vanished silently learns of it by sending.
            let answers = !matches!(delivery.control, Some(Control::Fin | Control::Reset));
            if answers && connection.open[sender] && !connection.reset_sent[sender] {
                connection.reset_sent[sender] = true;
                let latency = connection.base_latency[end];
                net.schedule(
                    net.time.now() + latency,
                    control(from, to, c, Control::Reset),
                );
            }
            return None;
        }
        let route = self.route(to, from);
        let arbiter = Arbiter::new(to);
        let transition = match delivery.control {
            None => {
                if route == Some(Route::Established(c)) {
                    net.frames_delivered += 1;
                    return Some(delivery);
                }
                tracing::debug!(%from, %to, "frame on a connection its receiver does not use: dropped");
                return None;
            }
            Some(Control::Proof) => {
                if matches!(route, Some(Route::Dialing(_))) {
                    hyperion::reached!("arbitration.crossed_dials");
                }
                let transition = arbiter.decide(from, route, c);
                if matches!(route, Some(Route::Dialing(_)))
                    && transition.actions.verdict == Some(Verdict::Decline)
                {
                    hyperion::reached!("arbitration.crossed_dials_resolved");
                }
                transition
            }
            Some(Control::Verdict(verdict)) => {
                let deadline = net.time.now() + 2 * CONNECT_TIMEOUT;
                let transition = arbiter.on_verdict(route, c, verdict, deadline);
                if verdict == Verdict::Decline {
                    hyperion::reached!("arbitration.crossed_dials_resolved");
                    if matches!(transition.route, Some(Route::AwaitingInbound { .. })) {
                        net.schedule(deadline, control(to, from, c, Control::AwaitExpired));
                    }
                }
                transition
            }
            Some(Control::Replace) => {
                let vouched = self.connections.get(&c).and_then(|c| c.vouched);
                let transition = arbiter.on_replace(route, c, vouched);
                if transition.actions.establish.is_none() {
                    // Another connection became the route since the "alive": refused, and
                    // the initiator, which may keep this connection, learns it by the
                    // close (a loss).
                    hyperion::reached!("arbitration.stale_replace_refused");
                    self.close_end(net, c, to, false);
                    return None;
                }
                hyperion::reached!("arbitration.replaced");
                transition
            }
            Some(Control::Fin) | Some(Control::Reset) => {
                if let Some(connection) = self.connections.get_mut(&c) {
                    connection.open[end] = false;
                }
                let transition = arbiter.on_closed(route, c);
                if transition.actions.lost {
                    if delivery.control == Some(Control::Fin) {
                        hyperion::reached!("arbitration.delayed_close");
                    } else if !broken {
                        hyperion::reached!("arbitration.half_open_detected");
                    }
                }
                transition
            }
            Some(Control::ConnectFailed | Control::AwaitExpired) => unreachable!("handled above"),
        };
        self.apply(net, to, from, c, transition);
        self.forget_if_closed(c);
        None
    }

    /// Carries out a transition of `local`'s route to `peer`, made by an event of `c`.
    fn apply(
        &mut self,
        net: &mut NetworkState,
        local: NodeId,
        peer: NodeId,
        c: u64,
        transition: Transition<u64, Duration>,
    ) {
        let actions = transition.actions;
        let pending = match transition.route {
            None => self
                .links
                .remove(&(local, peer))
                .map(|link| link.pending)
                .unwrap_or_default(),
            Some(route) => {
                let link = self.links.entry((local, peer)).or_insert(Link {
                    route,
                    pending: Vec::new(),
                });
                link.route = route;
                if actions.establish.is_some() {
                    std::mem::take(&mut link.pending)
                } else {
                    Vec::new()
                }
            }
        };
        if let Some(verdict) = actions.verdict {
            if let Some(connection) = self.connections.get_mut(&c) {
                connection.vouched = actions.vouched;
            }
            self.transmit(net, c, 1, Carried::Control(Control::Verdict(verdict)));
        }
        if actions.replace {
            self.transmit(net, c, 0, Carried::Control(Control::Replace));
        }
        if let Some(other) = actions.close {
            self.close_end(net, other, local, !actions.lost);
        }
        if actions.lost {
            self.event(net, local, TransportEvent::PeerLost(peer));
        }
        if let Some(established) = actions.establish {
            // Replace requests the peer's other connections were invited to send are
            // stale from now on.
            for (id, connection) in &mut self.connections {
                if *id != established && connection.ends == [peer, local] {
                    connection.vouched = None;
                }
            }
            let Some(connection) = self.connections.get_mut(&established) else {
                return;
            };
            let end = connection.end_of(local).expect("an end of its connection");
            connection.established[end] = true;
            for frame in pending {
                self.transmit(net, established, end, Carried::Frame(frame));
            }
            self.event(net, local, TransportEvent::PeerConnected(peer));
        }
        debug_assert!(
            self.links
                .get(&(local, peer))
                .is_none_or(|link| match link.route {
                    Route::Established(_) => link.pending.is_empty(),
                    _ => true,
                }),
            "an established route holds no frames in its link"
        );
    }

    /// Closes `local`'s end of `c`: the close follows what that end sent. A `silent`
    /// close (a superseded or stale dial) must not hit the connection the other end keeps.
    fn close_end(&mut self, net: &mut NetworkState, c: u64, local: NodeId, silent: bool) {
        let Some(connection) = self.connections.get(&c) else {
            return;
        };
        let Some(end) = connection.end_of(local) else {
            return;
        };
        if !connection.open[end] {
            return;
        }
        let other = connection.ends[1 - end];
        if silent
            && connection.established[1 - end]
            && self.route(other, local) == Some(Route::Established(c))
        {
            self.violations.push(format!(
                "{local} dropped connection {c} as superseded while {other} keeps it: the two \
                 ends disagree on the pair's connection"
            ));
        }
        self.transmit(net, c, end, Carried::Control(Control::Fin));
        if let Some(connection) = self.connections.get_mut(&c) {
            connection.open[end] = false;
        }
        self.forget_if_closed(c);
    }

    fn forget_if_closed(&mut self, c: u64) {
        if self
            .connections
            .get(&c)
            .is_some_and(|c| !c.open[0] && !c.open[1])
        {
            self.connections.remove(&c);
        }
    }

    /// Reports `event` to `node` now (after what is already due now).
    fn event(&self, net: &mut NetworkState, node: NodeId, event: TransportEvent) {
        let now = net.time.now();
        net.schedule(now, Delivery::other(node, event));
    }

    /// `local` gives `peer` up (the node disconnects it): its end closes, and the close
    /// reaches the peer behind the frames already sent.
    pub(crate) fn disconnect(&mut self, net: &mut NetworkState, local: NodeId, peer: NodeId) {
        let transition = Arbiter::new(local).give_up(self.route(local, peer), false);
        self.links.remove(&(local, peer));
        if let Some(c) = transition.actions.close {
            self.close_end(net, c, local, false);
        }
    }

    /// Every connection of `node` closes now (a shutdown).
    pub(crate) fn shutdown(&mut self, net: &mut NetworkState, node: NodeId) {
        for peer in self.peers_of(node) {
            self.disconnect(net, node, peer);
        }
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        for c in ids {
            self.close_end(net, c, node, false);
        }
    }

    /// A break between `a` and `b`: what is in flight is lost, and each side learns of
    /// it after its own delay (drawn from the seed), sending into the void meanwhile.
    pub(crate) fn break_pair(&mut self, net: &mut NetworkState, a: NodeId, b: NodeId) -> bool {
        let now = net.time.now();
        let mut broke = false;
        for (c, connection) in &mut self.connections {
            let pair = connection.ends == [a, b] || connection.ends == [b, a];
            if !pair || connection.broken {
                continue;
            }
            connection.broken = true;
            broke = true;
            for end in 0..2 {
                if connection.open[end] {
                    let (to, from) = (connection.ends[end], connection.ends[1 - end]);
                    let bound = net.faults.latency.1.as_nanos() as u64;
                    let delay = Duration::from_nanos(net.rng.next_u64() % bound.max(1));
                    net.schedule(now + delay, control(to, from, *c, Control::Reset));
                }
            }
        }
        broke
    }

    /// `node` crashed: its ends close; with a `reset` its peers hear of it at once,
    /// otherwise their ends stay half-open until they send or give up.
    pub(crate) fn crash(&mut self, net: &mut NetworkState, node: NodeId, reset: bool) {
        self.links.retain(|(local, _), _| *local != node);
        let now = net.time.now();
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        for c in ids {
            let connection = self.connections.get_mut(&c).expect("listed");
            let Some(end) = connection.end_of(node) else {
                continue;
            };
            connection.open[end] = false;
            let other = 1 - end;
            if reset && connection.open[other] && !connection.reset_sent[other] {
                connection.reset_sent[other] = true;
                let (to, from) = (connection.ends[other], node);
                net.schedule(now, control(to, from, c, Control::Reset));
            }
            self.forget_if_closed(c);
        }
    }

    /// Releases what partitions held, in order.
    pub(crate) fn heal(&mut self, net: &mut NetworkState) {
        let now = net.time.now();
        for connection in self.connections.values_mut() {
            for end in 0..2 {
                let stalled = std::mem::take(&mut connection.stalled[end]);
                for (_, delivery) in stalled {
                    let due = (now + connection.base_latency[end]).max(connection.last_due[end]);
                    connection.last_due[end] = due;
                    net.schedule(due, delivery);
                }
            }
        }
    }
}

/// What a connection carries.
enum Carried {
    Frame(Vec<u8>),
    Control(Control),
}

/// A control message of connection `c` from `from`, for `to`.
fn control(to: NodeId, from: NodeId, c: u64, kind: Control) -> Delivery {
    let mut delivery = Delivery::other(to, TransportEvent::PeerLost(from));
    delivery.generation = c;
    delivery.control = Some(kind);
    delivery
}
