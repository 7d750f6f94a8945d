//! A model of two nodes running the arbitration over connections that deliver in order
//! and close late (a close reaches the other end as a message after what was sent
//! before it), driven through every order of events proptest generates.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::{Arbiter, Route, Transition};
use crate::types::id::NodeId;
use crate::wire::handshake::Verdict;

#[derive(Clone, Debug)]
enum Message {
    Proof,
    Verdict(Verdict),
    Replace,
    Frame(u32),
    Fin,
}

struct Connection {
    /// The node that dialed (0 or 1).
    initiator: usize,
    /// Per end (the node's index): still open.
    open: [bool; 2],
    /// Per receiving node: what travels to it, in order.
    toward: [VecDeque<Message>; 2],
    /// What the acceptor's "alive" on it vouched for.
    vouched: Option<usize>,
}

#[derive(Default)]
struct Node {
    route: Option<Route<usize, u32>>,
    pending: Vec<u32>,
    sent: u32,
    received: Vec<u32>,
    losses: u32,
}

struct Model {
    ids: [NodeId; 2],
    nodes: [Node; 2],
    connections: Vec<Connection>,
}

fn node_id(port: u16) -> NodeId {
    NodeId {
        address: ([10, 0, 0, 1], port).into(),
        incarnation: 1,
    }
}

impl Model {
    fn new() -> Model {
        Model {
            ids: [node_id(1), node_id(2)],
            nodes: [Node::default(), Node::default()],
            connections: Vec::new(),
        }
    }

    fn arbiter(&self, node: usize) -> Arbiter {
        Arbiter::new(self.ids[node])
    }

    fn push(&mut self, c: usize, from: usize, message: Message) {
        let connection = &mut self.connections[c];
        if connection.open[from] {
            connection.toward[1 - from].push_back(message);
        }
    }

    fn send(&mut self, node: usize) {
        let n = self.nodes[node].sent;
        self.nodes[node].sent += 1;
        match self.nodes[node].route {
            Some(Route::Established(c)) => self.push(c, node, Message::Frame(n)),
            Some(_) => self.nodes[node].pending.push(n),
            None => {
                self.nodes[node].pending.push(n);
                let c = self.connections.len();
                self.connections.push(Connection {
                    initiator: node,
                    open: [true; 2],
                    toward: [VecDeque::new(), VecDeque::new()],
                    vouched: None,
                });
                let transition = self.arbiter(node).dial(None, c);
                self.apply(node, c, transition);
                self.push(c, node, Message::Proof);
            }
        }
    }

    fn close(&mut self, node: usize, c: usize) {
        if self.connections[c].open[node] {
            self.push(c, node, Message::Fin);
            self.connections[c].open[node] = false;
        }
    }

    fn disconnect(&mut self, node: usize) {
        let transition = self.arbiter(node).give_up(self.nodes[node].route, false);
        self.nodes[node].pending.clear();
        self.apply(node, usize::MAX, transition);
    }

    fn apply(&mut self, node: usize, c: usize, transition: Transition<usize, u32>) {
        self.nodes[node].route = transition.route;
        let actions = transition.actions;
        if let Some(verdict) = actions.verdict {
            self.connections[c].vouched = actions.vouched;
            self.push(c, node, Message::Verdict(verdict));
        }
        if actions.replace {
            self.push(c, node, Message::Replace);
        }
        if let Some(other) = actions.close {
            self.close(node, other);
        }
        if actions.lost {
            self.nodes[node].losses += 1;
            self.nodes[node].pending.clear();
        }
        if let Some(established) = actions.establish {
            // The vouches of the peer's other connections (which this node accepted).
            for (c, connection) in self.connections.iter_mut().enumerate() {
                if connection.initiator != node && c != established {
                    connection.vouched = None;
                }
            }
            for n in std::mem::take(&mut self.nodes[node].pending) {
                self.push(established, node, Message::Frame(n));
            }
        }
    }

    /// The (connection, receiving node) pairs with a message to deliver.
    fn deliverable(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (c, connection) in self.connections.iter().enumerate() {
            for to in 0..2 {
                if !connection.toward[to].is_empty() {
                    out.push((c, to));
                }
            }
        }
        out
    }

    fn deliver(&mut self, c: usize, to: usize) {
        let message = self.connections[c].toward[to]
            .pop_front()
            .expect("deliverable");
        if !self.connections[c].open[to] {
            return; // the receiving end closed: dropped, as by a reset
        }
        let arbiter = self.arbiter(to);
        let route = self.nodes[to].route;
        let peer = self.ids[1 - to];
        let transition = match message {
            Message::Proof => arbiter.decide(peer, route, c),
            Message::Verdict(verdict) => arbiter.on_verdict(route, c, verdict, 0),
            Message::Replace => arbiter.on_replace(route, c, self.connections[c].vouched),
            Message::Frame(n) => {
                assert_eq!(
                    route,
                    Some(Route::Established(c)),
                    "a frame arrived on a connection its receiver does not use"
                );
                self.nodes[to].received.push(n);
                return;
            }
            Message::Fin => {
                self.connections[c].open[to] = false;
                arbiter.on_closed(route, c)
            }
        };
        self.apply(to, c, transition);
    }

    /// Runs `choices` as the order of events (sends of `frames` frames per node,
    /// deliveries, and disconnects if `disconnects`), then delivers the rest.
    fn run(&mut self, choices: &[u8], frames: u32, disconnects: bool) {
        let mut choices = choices.iter().copied();
        loop {
            let deliverable = self.deliverable();
            let sendable: Vec<usize> = (0..2).filter(|n| self.nodes[*n].sent < frames).collect();
            let options = deliverable.len() + sendable.len() + if disconnects { 2 } else { 0 };
            if deliverable.is_empty() && sendable.is_empty() {
                // At rest, a wait for the peer's connection (after a decline) times out:
                // the peer may have given its dial up.
                let awaiting = (0..2)
                    .find(|n| matches!(self.nodes[*n].route, Some(Route::AwaitingInbound { .. })));
                match awaiting {
                    Some(node) => {
                        self.nodes[node].route = None;
                        self.nodes[node].losses += 1;
                        self.nodes[node].pending.clear();
                        continue;
                    }
                    None => return,
                }
            }
            let pick = match choices.next() {
                Some(choice) => choice as usize % options,
                // After the script: deliver, then send, never disconnect.
                None => 0,
            };
            if pick < deliverable.len() {
                let (c, to) = deliverable[pick];
                self.deliver(c, to);
            } else if pick < deliverable.len() + sendable.len() {
                self.send(sendable[pick - deliverable.len()]);
            } else {
                self.disconnect(pick - deliverable.len() - sendable.len());
            }
        }
    }
}

/// 2,000 cases each, or `PROPTEST_CASES` when set (for a long run:
/// `PROPTEST_CASES=20000 cargo test --lib arbitration`).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(2000);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    /// Without faults, whatever the order of dials and deliveries: both nodes end with
    /// the same connection established, nothing is reported lost, and every frame
    /// arrives once, in order (frames queued on a superseded dial follow the kept one).
    #[test]
    fn crossed_dials_settle_on_one_connection_and_lose_no_frame(
        choices in proptest::collection::vec(any::<u8>(), 0..64),
        frames in 1u32..5,
    ) {
        let mut model = Model::new();
        model.run(&choices, frames, false);
        let routes = [model.nodes[0].route, model.nodes[1].route];
        prop_assert!(
            matches!(routes, [Some(Route::Established(a)), Some(Route::Established(b))] if a == b),
            "routes at rest: {routes:?}"
        );
        for node in &model.nodes {
            prop_assert_eq!(node.losses, 0);
            prop_assert_eq!(&node.received, &(0..frames).collect::<Vec<_>>());
        }
        let open = model.connections.iter().filter(|c| c.open[0] || c.open[1]).count();
        prop_assert_eq!(open, 1, "connections left open at rest");
    }

    /// With disconnects at any moment (as a heartbeat gives a peer up), and closes that
    /// arrive late: at rest the two nodes never keep different connections, and each
    /// receives frames in order without duplicates.
    #[test]
    fn disconnects_and_late_closes_never_leave_two_kept_connections(
        choices in proptest::collection::vec(any::<u8>(), 0..96),
        frames in 1u32..6,
    ) {
        let mut model = Model::new();
        model.run(&choices, frames, true);
        let routes = [model.nodes[0].route, model.nodes[1].route];
        let agreed = match routes {
            [Some(Route::Established(a)), Some(Route::Established(b))] => a == b,
            [None, None] => true,
            _ => false,
        };
        prop_assert!(agreed, "routes at rest: {routes:?}");
        for node in &model.nodes {
            prop_assert!(node.received.windows(2).all(|w| w[0] < w[1]), "{:?}", node.received);
        }
        let kept: Vec<usize> = (0..model.connections.len())
            .filter(|c| model.connections[*c].open[0] && model.connections[*c].open[1])
            .collect();
        prop_assert!(kept.len() <= 1, "several connections open at both ends: {kept:?}");
        let initiators: Vec<usize> = kept.iter().map(|c| model.connections[*c].initiator).collect();
        prop_assert!(initiators.len() <= 1);
    }
}

#[test]
fn the_connection_initiated_by_the_smaller_id_is_kept_when_dials_cross() {
    let mut model = Model::new();
    model.send(0);
    model.send(1);
    // Both proofs arrive before either verdict.
    model.deliver(0, 1);
    model.deliver(1, 0);
    model.run(&[], 1, false);
    assert_eq!(model.nodes[0].route, Some(Route::Established(0)));
    assert_eq!(model.nodes[1].route, Some(Route::Established(0)));
}

#[test]
fn a_node_that_lost_its_connection_replaces_the_one_its_peer_still_believes_in() {
    let mut model = Model::new();
    model.send(0);
    model.run(&[], 1, false);
    assert_eq!(model.nodes[1].route, Some(Route::Established(0)));
    model.disconnect(0); // its close is still in flight to node 1
    model.send(0);
    // The new dial's proof, node 1's "alive", node 0's replace, before the old close.
    model.deliver(1, 1);
    model.deliver(1, 0);
    model.deliver(1, 1);
    assert_eq!(model.nodes[1].route, Some(Route::Established(1)));
    assert_eq!(
        model.nodes[1].losses, 1,
        "the replaced connection is reported lost"
    );
    model.run(&[], 2, false);
    assert_eq!(
        model.nodes[1].losses, 1,
        "the late close of the replaced one is no loss"
    );
    assert_eq!(model.nodes[0].route, Some(Route::Established(1)));
}

/// The shrunk case of `disconnects_and_late_closes_never_leave_two_kept_connections`: a
/// replace request that travels behind a newer connection of the pair. Node 0 redials
/// (its first connection's close is late), is told "alive", asks for a replace and
/// queues frame 1 behind it, then gives that connection up too and makes a third one,
/// which carries frame 2. When the old replace request finally arrives, the connection
/// the "alive" vouched for is long gone: honouring it would drop the pair's live
/// connection and deliver frame 1 after frame 2.
#[test]
fn a_replace_that_arrives_after_a_newer_connection_is_refused() {
    let mut model = Model::new();
    model.send(0);
    model.run(&[], 1, false);
    assert_eq!(model.nodes[1].route, Some(Route::Established(0)));
    model.disconnect(0); // the close of connection 0 is late
    model.send(0); // frame 1 waits for connection 1
    model.deliver(1, 1); // proof: node 1 still has connection 0, it answers "alive"
    model.deliver(1, 0); // "alive": node 0 asks for a replace, frame 1 follows it
    model.disconnect(0); // node 0 gives connection 1 up too; its close follows frame 1
    model.deliver(0, 1); // the late close of connection 0: node 1 reports node 0 lost
    assert_eq!(model.nodes[1].route, None);
    model.send(0); // frame 2 on a third connection
    model.deliver(2, 1); // proof: accepted
    model.deliver(2, 0); // accept: frame 2 goes out
    model.deliver(2, 1); // frame 2 arrives
    assert_eq!(model.nodes[1].route, Some(Route::Established(2)));
    assert_eq!(model.nodes[1].received, vec![0, 2]);
    // Now the old replace request, frame 1 and the close of connection 1.
    model.deliver(1, 1);
    assert_eq!(
        model.nodes[1].route,
        Some(Route::Established(2)),
        "a stale replace must not supersede the pair's newer connection"
    );
    model.run(&[], 3, false);
    assert_eq!(
        model.nodes[1].received,
        vec![0, 2],
        "frame 1 is lost, never late"
    );
    assert_eq!(
        model.nodes[1].losses, 1,
        "only connection 0 was lost at node 1"
    );
    assert_eq!(model.nodes[0].route, Some(Route::Established(2)));
    assert_eq!(model.nodes[1].route, Some(Route::Established(2)));
}

/// The input proptest saved for `disconnects_and_late_closes_never_leave_two_kept_connections`
/// (node 1 received node 0's frames 3 then 2), replayed as it was found.
#[test]
fn the_saved_case_of_disconnects_and_late_closes_delivers_in_order() {
    let choices = [
        41, 131, 114, 99, 172, 158, 11, 152, 63, 15, 148, 112, 67, 92, 174, 45, 55, 14, 55, 184,
        238, 134, 172, 117, 220, 46, 25, 1, 28, 197, 14, 0, 0,
    ];
    let mut model = Model::new();
    model.run(&choices, 5, true);
    for node in &model.nodes {
        assert!(
            node.received.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            node.received
        );
    }
    let routes = [model.nodes[0].route, model.nodes[1].route];
    assert!(
        matches!(routes, [Some(Route::Established(a)), Some(Route::Established(b))] if a == b)
            || routes == [None, None],
        "routes at rest: {routes:?}"
    );
}

/// A replace that follows the late close of the connection its "alive" vouched for, with
/// no other connection in between, is honoured: nothing newer was delivered, so the
/// redialing node keeps its connection and loses nothing more.
#[test]
fn a_replace_after_the_late_close_of_the_vouched_connection_is_honoured() {
    let mut model = Model::new();
    model.send(0);
    model.run(&[], 1, false);
    model.disconnect(0); // the close of connection 0 is late
    model.send(0); // frame 1 waits for connection 1
    model.deliver(1, 1); // proof: node 1 still has connection 0, it answers "alive"
    model.deliver(1, 0); // "alive": node 0 asks for a replace, frame 1 follows it
    model.deliver(0, 1); // the late close of connection 0: node 1 reports node 0 lost
    assert_eq!(model.nodes[1].route, None);
    model.deliver(1, 1); // the replace request
    assert_eq!(model.nodes[1].route, Some(Route::Established(1)));
    model.run(&[], 2, false);
    assert_eq!(model.nodes[1].received, vec![0, 1]);
    assert_eq!(model.nodes[0].losses, 0, "node 0 keeps its new connection");
    assert_eq!(
        model.nodes[1].losses, 1,
        "only connection 0 was lost at node 1"
    );
    assert_eq!(model.nodes[0].route, Some(Route::Established(1)));
}

/// As `a_replace_that_arrives_after_a_newer_connection_is_refused`, but the newer
/// connection is gone too (its close arrived first) when the old replace request comes:
/// the route is empty, yet a connection came and went since the "alive", so the request
/// is still stale.
#[test]
fn a_replace_that_arrives_after_a_newer_connection_came_and_went_is_refused() {
    let mut model = Model::new();
    model.send(0);
    model.run(&[], 1, false);
    model.disconnect(0); // the close of connection 0 is late
    model.send(0); // frame 1 waits for connection 1
    model.deliver(1, 1); // proof: node 1 still has connection 0, it answers "alive"
    model.deliver(1, 0); // "alive": node 0 asks for a replace, frame 1 follows it
    model.disconnect(0); // node 0 gives connection 1 up too
    model.deliver(0, 1); // the late close of connection 0
    model.send(0); // frame 2 on a third connection
    model.deliver(2, 1); // proof: accepted
    model.deliver(2, 0); // accept: frame 2 goes out
    model.deliver(2, 1); // frame 2 arrives
    model.disconnect(0); // node 0 gives connection 2 up
    model.deliver(2, 1); // its close arrives before the old replace request
    assert_eq!(model.nodes[1].route, None);
    assert_eq!(model.nodes[1].received, vec![0, 2]);
    model.deliver(1, 1); // the old replace request
    assert_eq!(model.nodes[1].route, None, "a stale replace is refused");
    model.run(&[], 3, false);
    assert_eq!(
        model.nodes[1].received,
        vec![0, 2],
        "frame 1 is lost, never late"
    );
    assert_eq!(model.nodes[0].route, model.nodes[1].route);
}
