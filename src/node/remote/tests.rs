//! Frames from the network as the node takes them: batches, and what follows a frame
//! that does not decode.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::clock::SystemClock;
use crate::kernel::blocking::Inline;
use crate::kernel::TaskId;
use crate::message::{encode, Fingerprint};
use crate::transport::{Transport, TransportEvent};
use crate::wire::{encode_frame, Frame, FrameBatch, FrameReader, WireError};
use crate::{LocalNode, NodeEnv, NodeId, ProcessId};

/// A transport that sends nothing and records the peers the node disconnected.
struct Recorder {
    address: SocketAddr,
    disconnected: Rc<RefCell<Vec<NodeId>>>,
}

impl Transport for Recorder {
    fn local_address(&self) -> SocketAddr {
        self.address
    }
    fn send(&mut self, _: NodeId, _: Vec<u8>) {}
    fn send_with(
        &mut self,
        _: NodeId,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        write(&mut Vec::new())
    }
    fn disconnect(&mut self, peer: NodeId) {
        self.disconnected.borrow_mut().push(peer);
    }
    fn shutdown(&mut self) {}
}

fn node_id(port: u16) -> NodeId {
    NodeId {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        incarnation: 1,
    }
}

/// A networked node with one process waiting for a `String` (so that `u64`s stay in
/// its mailbox), and the peers it disconnected.
fn node_with_a_process() -> (LocalNode, ProcessId, Rc<RefCell<Vec<NodeId>>>) {
    let id = node_id(1);
    let disconnected = Rc::new(RefCell::new(Vec::new()));
    let transport = Recorder {
        address: id.address,
        disconnected: disconnected.clone(),
    };
    let env = NodeEnv::new(Rc::new(SystemClock::new()), 7, Rc::new(Inline))
        .transport(Box::new(transport));
    let node = LocalNode::new(id, env);
    let pid = node.spawn(|p| async move {
        p.expect::<String>().await;
    });
    while node.run_next() {}
    (node, pid, disconnected)
}

/// The `u64`s in `pid`'s mailbox, in order.
fn mailbox(node: &LocalNode, pid: ProcessId) -> Vec<u64> {
    let mut state = node.state();
    let slot = state
        .kernel
        .slot_mut(TaskId::from_u64(pid.local))
        .expect("alive");
    slot.mailbox
        .iter_mut()
        .filter_map(|message| message.peek::<u64>().copied())
        .collect()
}

fn data(to: ProcessId, value: u64) -> Vec<u8> {
    let from = ProcessId {
        node: node_id(2),
        local: 9,
    };
    encode_frame(&Frame::Data {
        to,
        from,
        fingerprint: Fingerprint::of::<u64>(),
        payload: encode(&value).unwrap(),
    })
    .unwrap()
}

/// The bodies in one batch, as a TCP connection's read hands them over.
fn batch(bodies: &[Vec<u8>]) -> FrameBatch {
    let mut reader = FrameReader::new();
    for body in bodies {
        reader.push(&(body.len() as u32).to_be_bytes());
        reader.push(body);
    }
    let batch = reader.next_frames().unwrap().unwrap();
    assert_eq!(batch.len(), bodies.len());
    batch
}

#[test]
fn a_batch_delivers_its_messages_in_order() {
    let (node, pid, disconnected) = node_with_a_process();
    let peer = node_id(2);
    node.handle_transport_events([
        TransportEvent::ReceivedBatch(peer, batch(&[data(pid, 1), data(pid, 2)])),
        TransportEvent::Received(peer, data(pid, 3)),
        TransportEvent::ReceivedBatch(peer, batch(&[data(pid, 4)])),
    ]);
    assert_eq!(mailbox(&node, pid), [1, 2, 3, 4]);
    assert!(disconnected.borrow().is_empty());
}

#[test]
fn nothing_after_an_undecodable_frame_is_delivered_from_its_peer() {
    let (node, pid, disconnected) = node_with_a_process();
    let peer = node_id(2);
    let garbage = vec![0xff; 8];
    node.handle_transport_events([
        TransportEvent::ReceivedBatch(peer, batch(&[data(pid, 1), garbage, data(pid, 2)])),
        TransportEvent::Received(peer, data(pid, 3)),
        TransportEvent::ReceivedBatch(peer, batch(&[data(pid, 4)])),
    ]);
    // 2, 3 and 4 came after the gap, on the connection the node broke.
    assert_eq!(mailbox(&node, pid), [1]);
    assert_eq!(*disconnected.borrow(), [peer]);
    // The next batch (a new connection's) is delivered.
    node.handle_transport_events([TransportEvent::ReceivedBatch(peer, batch(&[data(pid, 5)]))]);
    assert_eq!(mailbox(&node, pid), [1, 5]);
}

#[test]
fn frames_after_a_garbage_one_in_separate_events_are_dropped_too() {
    let (node, pid, disconnected) = node_with_a_process();
    let peer = node_id(2);
    let other = node_id(3);
    node.handle_transport_events([
        TransportEvent::Received(peer, data(pid, 1)),
        TransportEvent::Received(peer, vec![0xff; 8]),
        TransportEvent::Received(peer, data(pid, 2)),
        // Another peer's frames are not touched.
        TransportEvent::Received(other, data(pid, 7)),
    ]);
    assert_eq!(mailbox(&node, pid), [1, 7]);
    assert_eq!(*disconnected.borrow(), [peer]);
}
