//! A node's view of its peers: the transport, per-peer connection epochs (for the
//! reconnect rule), the monitors and links this node holds on their processes, and
//! heartbeats that declare a silent peer lost.
//!
//! The same code runs over TCP and in the simulator: a peer that stops answering (a
//! dead host, a partition) is detected here, by time on the node's clock, not by the
//! transport.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::clock::Clock;
use crate::message::Message;
use crate::transport::Transport;
use crate::types::id::{MonitorRef, NodeId, ProcessId};
use crate::wire::{
    encode_data_frame_with, encode_frame_into, Control, Frame, LastDataHeader, WireError,
};

/// How often a node sends keep-alives to connected peers, unless configured.
pub const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// How long a connected peer may stay silent before it is declared lost, unless
/// configured. A dead peer is noticed within this plus one interval.
pub const HEARTBEAT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Heartbeat settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Time between keep-alives to each connected peer.
    pub interval: Duration,
    /// Silence after which a peer is declared lost.
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: HEARTBEAT_INTERVAL_DEFAULT,
            timeout: HEARTBEAT_TIMEOUT_DEFAULT,
        }
    }
}

impl HeartbeatConfig {
    /// The longest a dead or unreachable connected peer can go unnoticed.
    pub fn detection_bound(&self) -> Duration {
        self.timeout.saturating_add(self.interval)
    }
}

/// What this node knows about one peer node.
#[derive(Default)]
pub(crate) struct Peer {
    /// Bumped at each loss of the connection; a process whose recorded epoch is older
    /// has not acknowledged the gap (`reconnect`) and its sends are dropped.
    pub(crate) epoch: u64,
    pub(crate) connected: bool,
    pub(crate) last_heard: Duration,
    /// Monitors held by local processes on the peer's processes.
    pub(crate) monitors: Vec<(MonitorRef, ProcessId)>,
    /// Links from local processes (first) to the peer's processes (second).
    pub(crate) links: Vec<(ProcessId, ProcessId)>,
    /// Monitors of the peer node itself.
    pub(crate) node_monitors: Vec<(MonitorRef, ProcessId)>,
    /// How many (local process, peer process) pairs have an epoch recorded for the
    /// reconnect rule. While any does, the peer's epoch must be kept: forgetting it
    /// would restart the epoch at zero and let a sender that never reconnected through
    /// a break send again.
    pub(crate) senders: usize,
}

impl Peer {
    /// Nothing refers to the peer and it is not connected: forgetting it loses
    /// nothing (a later contact starts afresh at epoch zero, as a first one does).
    pub(crate) fn is_unused(&self) -> bool {
        !self.connected
            && self.senders == 0
            && self.monitors.is_empty()
            && self.links.is_empty()
            && self.node_monitors.is_empty()
    }
}

/// The node's connection to the world.
pub(crate) struct Network {
    pub(crate) transport: Box<dyn Transport>,
    clock: Rc<dyn Clock>,
    pub(crate) peers: BTreeMap<NodeId, Peer>,
    pub(crate) heartbeat: HeartbeatConfig,
    pub(crate) heartbeat_due: Option<Duration>,
    /// The peer a send last found connected (or made watched): the next send to it
    /// skips the lookup. Invariant: that peer is in `peers` and connected; cleared
    /// whenever a peer stops being connected ([`Network::peer_disconnected`]).
    connected_last: Option<NodeId>,
    /// The pair (sender, destination) the reconnect rule last let send: the next send
    /// between them skips the rule's two lookups. Invariant: the sender is not a live
    /// local process, or its recorded epoch for the destination is the destination
    /// node's current epoch (reconnecting only ever records the current one). Cleared
    /// whenever an epoch changes ([`Network::peer_disconnected`]) or a peer is
    /// forgotten ([`Network::forget_if_unused`]).
    pub(crate) may_send_last: Option<(ProcessId, ProcessId)>,
    /// The last data frame's header, for the next between the same two processes.
    last_data_header: Option<LastDataHeader>,
    /// The transport's frame limit, read once: every frame is encoded and decoded
    /// under it.
    frame_bytes_max: usize,
    /// Data frames held back under [`Defect::DeathNoticeOvertakesData`]: sent after
    /// the next control frame to their node (test builds only).
    ///
    /// [`Defect::DeathNoticeOvertakesData`]: crate::planted::Defect::DeathNoticeOvertakesData
    #[cfg(feature = "planted-defects")]
    pub(crate) held_back: Vec<(NodeId, Frame)>,
}

impl Network {
    pub(crate) fn new(
        transport: Box<dyn Transport>,
        clock: Rc<dyn Clock>,
        heartbeat: HeartbeatConfig,
    ) -> Network {
        Network {
            frame_bytes_max: transport.frame_bytes_max(),
            #[cfg(feature = "planted-defects")]
            held_back: Vec::new(),
            transport,
            clock,
            peers: BTreeMap::new(),
            heartbeat,
            heartbeat_due: None,
            connected_last: None,
            may_send_last: None,
            last_data_header: None,
        }
    }

    /// Marks `node` no longer connected (its connection broke) and returns its entry.
    pub(crate) fn peer_disconnected(&mut self, node: NodeId) -> &mut Peer {
        self.connected_last = None;
        // The caller bumps the peer's epoch: every sender must be checked again.
        self.may_send_last = None;
        let peer = self.peer(node);
        peer.connected = false;
        peer
    }

    pub(crate) fn peer(&mut self, node: NodeId) -> &mut Peer {
        self.peers.entry(node).or_default()
    }

    /// The longest frame body the transport carries: every frame is checked against it
    /// before it is queued.
    pub(crate) fn frame_bytes_max(&self) -> usize {
        self.frame_bytes_max
    }

    /// Forgets `node` if nothing refers to it any more: the table holds live peers
    /// and peers something still needs, not every incarnation ever seen.
    pub(crate) fn forget_if_unused(&mut self, node: NodeId) {
        if self.peers.get(&node).is_some_and(Peer::is_unused) {
            self.peers.remove(&node);
            self.may_send_last = None;
        }
    }

    /// Encodes and sends a frame. A frame that cannot be encoded, or is longer than the
    /// transport's limit, is not sent (the connection is untouched) and the error is
    /// returned for the caller to report; nothing is logged here.
    ///
    /// A peer we send to is watched by the heartbeat from then on, even before it
    /// answers: a peer that died while the connection was being made is noticed too.
    pub(crate) fn send_frame(&mut self, node: NodeId, frame: &Frame) -> Result<(), WireError> {
        let limit = self.frame_bytes_max;
        // Encoded straight into the transport's queue: no buffer per frame.
        self.transport
            .send_with(node, &mut |out| encode_frame_into(frame, out, limit))?;
        self.watch(node);
        Ok(())
    }

    /// Makes sure the heartbeat watches `node`, a peer just sent to.
    #[inline(always)]
    fn watch(&mut self, node: NodeId) {
        if self.connected_last != Some(node) {
            self.watch_another(node);
        }
    }

    /// [`watch`](Network::watch) for a peer other than the last one sent to.
    #[inline(never)]
    fn watch_another(&mut self, node: NodeId) {
        if !self.peers.get(&node).is_some_and(|peer| peer.connected) {
            let now = self.clock.now();
            self.heard_from(node, now);
        }
        self.connected_last = Some(node);
    }

    /// Encodes `message` and sends it from `from` to `to` in a data frame; a message
    /// that cannot be encoded (or is over the frame limit) is not sent, and the error
    /// returned.
    ///
    /// The message is encoded straight into the transport's queue, after the frame's
    /// header: no buffer for the payload, no copy of it.
    pub(crate) fn send_message(
        &mut self,
        from: ProcessId,
        to: ProcessId,
        message: &Message,
    ) -> Result<(), WireError> {
        let fingerprint = message.fingerprint();
        #[cfg(feature = "planted-defects")]
        if crate::planted::is_planted(crate::planted::Defect::DeathNoticeOvertakesData) {
            let mut payload = Vec::new();
            message
                .encode_value_into(&mut payload)
                .map_err(|err| WireError::Encode(err.to_string()))?;
            let frame = Frame::Data {
                to,
                from,
                fingerprint,
                payload,
            };
            self.held_back.push((to.node, frame));
            return Ok(());
        }
        let hint = message.encoded_bytes_hint();
        let last_header = &mut self.last_data_header;
        self.transport.send_with(to.node, &mut |out| {
            encode_data_frame_with(out, last_header, &to, &from, fingerprint, hint, |out| {
                message
                    .encode_value_into(out)
                    .map_err(|err| WireError::Encode(err.to_string()))
            })
        })?;
        self.watch(to.node);
        Ok(())
    }

    /// Sends a control frame; one that cannot be sent is logged and dropped (control
    /// frames are small: only a spawn's closure can be long, and a spawn request checks
    /// its own).
    pub(crate) fn send_control(&mut self, node: NodeId, control: Control) {
        if let Err(err) = self.send_frame(node, &Frame::Control(control)) {
            tracing::error!(%node, %err, "control frame dropped");
        }
        #[cfg(feature = "planted-defects")]
        {
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_back)
                .into_iter()
                .partition(|(to, _)| *to == node);
            self.held_back = later;
            for (_, frame) in due {
                let _ = self.send_frame(node, &frame);
            }
        }
    }

    /// Records that `peer` was heard from (or connected) at `now`, and makes sure
    /// heartbeats run.
    pub(crate) fn heard_from(&mut self, peer: NodeId, now: Duration) {
        let peer = self.peers.entry(peer).or_default();
        peer.connected = true;
        peer.last_heard = now;
        if self.heartbeat_due.is_none() {
            // Saturating: a configured interval of `Duration::MAX` means "never".
            self.heartbeat_due = Some(now.saturating_add(self.heartbeat.interval));
        }
    }

    /// Runs the heartbeat if due: keep-alives to live peers; returns the peers that
    /// were silent too long (now disconnected), to be declared lost.
    pub(crate) fn heartbeat_tick(&mut self, now: Duration) -> Vec<NodeId> {
        match self.heartbeat_due {
            Some(due) if due <= now => {}
            _ => return Vec::new(),
        }
        let mut silent = Vec::new();
        let mut any_connected = false;
        for (node, peer) in &mut self.peers {
            if !peer.connected {
                continue;
            }
            let timeout =
                if crate::planted::is_planted(crate::planted::Defect::HeartbeatTimeoutDoubled) {
                    self.heartbeat.timeout * 2
                } else {
                    self.heartbeat.timeout
                };
            if now.saturating_sub(peer.last_heard) > timeout {
                silent.push(*node);
            } else {
                any_connected = true;
            }
        }
        for node in &silent {
            tracing::info!(peer = %node, "peer silent beyond the heartbeat timeout; disconnecting");
            self.transport.disconnect(*node);
        }
        let live: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.connected)
            .map(|(node, _)| *node)
            .filter(|node| !silent.contains(node))
            .collect();
        for node in live {
            let _ = self.send_frame(node, &Frame::KeepAlive); // always fits
        }
        self.heartbeat_due = any_connected.then(|| now.saturating_add(self.heartbeat.interval));
        silent
    }
}
