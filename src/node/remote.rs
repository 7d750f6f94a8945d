//! The node layer over a transport: routing sends to other nodes (with Cloud Haskell's
//! reconnect rule), and acting on what peers send.

use crate::bus::events::MxRecipient;
use crate::kernel::TaskId;
use crate::message::Message;
use crate::transport::TransportEvent;
use crate::types::id::{DiedReason, NodeId, ProcessId};
use crate::types::signals::{NodeMonitorNotification, SpawnReply, WhereIsReply};
use crate::wire::{Control, Frame, FrameDecoder, WireError};

use super::event::NodeEvent;
use super::local::{LocalNode, NodeState};

impl NodeState {
    /// Whether `from` may send data to `to` now. Cloud Haskell's rule: after the
    /// connection to `to`'s node broke, data from `from` to `to` is dropped until `from`
    /// calls `reconnect`, so no sender misses that a gap happened in its stream. The
    /// first send to a process records the current epoch. Control traffic (spawn,
    /// monitors, links, registry) reconnects implicitly and is not subject to this.
    #[inline(always)]
    fn may_send(&mut self, from: ProcessId, to: ProcessId) -> bool {
        match &self.network {
            Some(network) if network.may_send_last == Some((from, to)) => true,
            _ => self.may_send_checked(from, to),
        }
    }

    /// [`may_send`](NodeState::may_send) for a pair other than the last one let send.
    #[inline(never)]
    fn may_send_checked(&mut self, from: ProcessId, to: ProcessId) -> bool {
        let Some(network) = &mut self.network else {
            return false;
        };
        // Looked up, not entered: the steady state (a known peer, a known pair) takes
        // one search per map and builds nothing.
        let epoch = match network.peers.get(&to.node) {
            Some(peer) => peer.epoch,
            None => network.peer(to.node).epoch,
        };
        let Some(task) = (from.node == self.id).then(|| TaskId::from_u64(from.local)) else {
            return true;
        };
        let Some(slot) = self.kernel.slot_mut(task) else {
            return true;
        };
        let peer_epochs = &mut slot.relations().peer_epochs;
        if let Some(seen) = peer_epochs.get(&to) {
            if *seen != epoch {
                return crate::planted::is_planted(crate::planted::Defect::DataWithoutReconnect);
            }
        } else {
            peer_epochs.insert(to, epoch);
            network.peer(to.node).senders += 1;
        }
        network.may_send_last = Some((from, to));
        true
    }

    /// Acknowledges every break of the connection to `to`'s node so far, for data
    /// from `from` to `to` (or, with `to: None`, to every process of `node`).
    pub(crate) fn reconnect(&mut self, from: ProcessId, node: NodeId, to: Option<ProcessId>) {
        let Some(network) = &mut self.network else {
            return;
        };
        let epoch = network.peer(node).epoch;
        self.observe(NodeEvent::Reconnected { from, node, to });
        if let Some(relations) = self.relations_of(from) {
            match to {
                Some(to) => {
                    if relations.peer_epochs.insert(to, epoch).is_none() {
                        if let Some(network) = &mut self.network {
                            network.peer(node).senders += 1;
                        }
                    }
                }
                None => relations
                    .peer_epochs
                    .iter_mut()
                    .filter(|(pid, _)| pid.node == node)
                    .for_each(|(_, seen)| *seen = epoch),
            }
        }
    }

    /// Sends a message from `from` to `to`, wherever `to` lives.
    #[inline]
    pub(crate) fn send_from(&mut self, from: ProcessId, to: ProcessId, message: Message) {
        let _ = self.try_send_from(from, to, message); // refusals are logged and published
    }

    /// [`send_from`](NodeState::send_from), returning why a message for another node
    /// was not sent (it could not be encoded, or is longer than the frame limit: it is
    /// refused before it is queued, and the connection is untouched). A send dropped
    /// by the reconnect rule is not an error here: it is the rule's normal working.
    pub(crate) fn try_send_from(
        &mut self,
        from: ProcessId,
        to: ProcessId,
        message: Message,
    ) -> Result<(), WireError> {
        if to.node == self.id {
            self.mx_sent_here(&from, to.local, &message); // mx hook
            self.deliver_here(to.local, message);
            return Ok(());
        }
        self.mx_sent_away(from, to, &message); // mx hook
        if !self.may_send(from, to) {
            tracing::trace!(%from, %to, "send dropped: connection broke since the sender last reconnected");
            return Ok(());
        }
        if self.observer.is_some() {
            self.observe(NodeEvent::DataSent { from, to });
        }
        let Some(network) = &mut self.network else {
            return Ok(());
        };
        network.send_message(from, to, &message).inspect_err(|err| {
            self.mx_message_refused(from, MxRecipient::Process(to), err);
        })
    }

    /// Sends `message` from `from` to `to` without the reconnect rule (Cloud Haskell's
    /// `usend`): after a break, nothing holds it back, so nothing tells of a gap.
    pub(crate) fn send_unreliable(&mut self, from: ProcessId, to: ProcessId, message: Message) {
        if to.node == self.id {
            self.send_from(from, to, message);
            return;
        }
        self.mx_sent_away(from, to, &message); // mx hook
        if let Some(network) = &mut self.network {
            if let Err(err) = network.send_message(from, to, &message) {
                self.mx_message_refused(from, MxRecipient::Process(to), &err);
            }
        }
    }

    /// Sends a data frame from process `from` for process `to` (a channel's owner),
    /// subject to the reconnect rule.
    pub(crate) fn send_data_frame(&mut self, from: ProcessId, to: ProcessId, frame: &Frame) {
        if !self.may_send(from, to) {
            tracing::trace!(%from, %to, "send dropped: connection broke since the sender last reconnected");
            return;
        }
        let _ = self.send_frame_from(from, MxRecipient::Process(to), to.node, frame);
        // logged
    }

    /// Sends a frame from process `from` to `node` that reconnects implicitly (control,
    /// named sends); `to` says where it goes, for the report if it is refused.
    pub(crate) fn send_frame_from(
        &mut self,
        from: ProcessId,
        to: MxRecipient,
        node: NodeId,
        frame: &Frame,
    ) -> Result<(), WireError> {
        let Some(network) = &mut self.network else {
            return Ok(());
        };
        network.send_frame(node, frame).inspect_err(|err| {
            self.mx_message_refused(from, to, err);
        })
    }

    /// The connection to `peer` is gone: every monitor and link on its processes fires
    /// with [`DiedReason::Disconnect`], node monitors fire, and its watchers of local
    /// processes are forgotten (they hear of the loss on their own side).
    pub(crate) fn peer_lost(&mut self, peer: NodeId) {
        let Some(network) = &mut self.network else {
            return;
        };
        let entry = network.peer_disconnected(peer);
        entry.epoch += 1;
        let mut monitors = std::mem::take(&mut entry.monitors);
        let links = std::mem::take(&mut entry.links);
        let node_monitors = std::mem::take(&mut entry.node_monitors);
        tracing::debug!(node = %self.id, %peer, "peer lost");
        self.emit_peer_lost(peer);
        let registry_watcher = self.registry_watcher();
        monitors.retain(|(_, watcher)| *watcher != registry_watcher);
        self.peer_names_lost(peer);
        for (monitor_ref, watcher) in monitors {
            self.notify_monitor(watcher, monitor_ref, DiedReason::Disconnect);
        }
        for (linker, target) in links {
            self.link_signal(linker, target, DiedReason::Disconnect);
        }
        for (monitor_ref, watcher) in node_monitors {
            if let Some(relations) = self.relations_of(watcher) {
                relations.monitoring.remove(monitor_ref.id);
            }
            let notification = NodeMonitorNotification {
                monitor_ref,
                node: peer,
                reason: DiedReason::Disconnect,
            };
            self.deliver(watcher, Message::new(notification));
        }
        for slot in self.kernel.slots_mut() {
            if let Some(relations) = slot.relations.as_mut() {
                relations
                    .monitored_by
                    .retain(|(_, watcher)| watcher.node != peer);
                relations.linked_by.retain(|linker| linker.node != peer);
            }
        }
        if let Some(network) = &mut self.network {
            network.forget_if_unused(peer);
        }
    }

    /// Bytes queued for `node` and not yet written to its connection (0 for this node,
    /// or without a transport).
    pub(crate) fn queued_bytes(&self, node: NodeId) -> usize {
        self.network
            .as_ref()
            .map_or(0, |network| network.transport.queued_bytes(node))
    }

    /// Whether the connection to `node` has room for more (always, for this node or
    /// without a transport); if not, `waker` is woken when it has.
    pub(crate) fn has_room_or_wake(&mut self, node: NodeId, waker: &std::task::Waker) -> bool {
        if node == self.id {
            return true;
        }
        let Some(network) = &mut self.network else {
            return true;
        };
        if network.transport.has_room(node) {
            return true;
        }
        network.transport.wake_on_room(node, waker);
        false
    }
}

impl LocalNode {
    /// Acts on an event from the node's transport. Drivers call this for every event
    /// their transport (TCP, or the simulated network) produces.
    pub fn handle_transport_event(&self, event: TransportEvent) {
        let _ = self.handle_transport_event_at(event, self.now(), &mut None, &mut None);
    }

    /// Acts on a batch of events from the node's transport (what one turn of a driver
    /// read), in order: the same as [`handle_transport_event`] on each, reading the
    /// node's clock once for the batch, recording a peer heard from once per run of
    /// its frames, and decoding the frames with one decoder, which parses the process
    /// ids of a run of messages between one pair of processes once.
    ///
    /// [`handle_transport_event`]: LocalNode::handle_transport_event
    ///
    /// A frame that does not decode breaks its connection (see
    /// [`handle_transport_event`]); the frames after it from that peer in the same
    /// batch came on the broken connection, after the gap, and are dropped.
    pub fn handle_transport_events<I: IntoIterator<Item = TransportEvent>>(&self, events: I) {
        let mut now = None;
        let mut heard = None;
        let mut decoder = None;
        let mut broken: Vec<NodeId> = Vec::new();
        for event in events {
            if let TransportEvent::Received(peer, _) | TransportEvent::ReceivedBatch(peer, _) =
                &event
            {
                if broken.contains(peer) {
                    tracing::debug!(%peer, "frames after an undecodable one dropped");
                    continue;
                }
            }
            let now = *now.get_or_insert_with(|| self.now());
            if let Some(peer) = self.handle_transport_event_at(event, now, &mut heard, &mut decoder)
            {
                broken.push(peer);
            }
        }
    }

    /// `heard` is the peer already recorded as heard from at `now` by the frame just
    /// before, if nothing since could have changed what the node knows of it; `decoder`
    /// the batch's frame decoder, made at its first frame.
    /// Returns the peer whose connection a frame that did not decode broke.
    fn handle_transport_event_at(
        &self,
        event: TransportEvent,
        now: std::time::Duration,
        heard: &mut Option<NodeId>,
        decoder: &mut Option<FrameDecoder>,
    ) -> Option<NodeId> {
        match event {
            TransportEvent::PeerConnected(peer) => {
                *heard = None;
                let mut state = self.state();
                if let Some(network) = &mut state.network {
                    network.heard_from(peer, now);
                }
                state.emit_peer_connected(peer);
            }
            TransportEvent::PeerLost(peer) => {
                *heard = None;
                self.state().peer_lost(peer);
            }
            TransportEvent::Received(peer, bytes) => {
                let decoder = self.frames_heard_from(peer, now, heard, decoder);
                let frame = decoder.decode_owned(bytes);
                if !self.handle_decoded(peer, frame, heard) {
                    return Some(peer);
                }
            }
            TransportEvent::ReceivedBatch(peer, batch) => {
                for (index, body) in batch.bodies().enumerate() {
                    // `heard` is the batch's peer from its first frame on, until a
                    // control frame clears it.
                    let decoder = match decoder {
                        Some(decoder) if index > 0 && heard.is_some() => decoder,
                        _ => self.frames_heard_from(peer, now, heard, decoder),
                    };
                    // A message straight from the batch's buffer; anything else as
                    // a frame of its own.
                    if let Some(data) = decoder.data_frame(body) {
                        let message = Message::from_encoded_slice(data.fingerprint, data.payload);
                        self.handle_data(peer, data.to, data.from, data.fingerprint, message);
                        continue;
                    }
                    let frame = decoder.decode_other(body);
                    if !self.handle_decoded(peer, frame, heard) {
                        // The connection is broken: what follows a gap is not delivered.
                        return Some(peer);
                    }
                }
            }
        }
        None
    }

    /// Records `peer` as heard from at `now` (unless `heard` says it already is) for
    /// a frame from it, and returns the batch's decoder, made at its first frame.
    #[inline]
    fn frames_heard_from<'d>(
        &self,
        peer: NodeId,
        now: std::time::Duration,
        heard: &mut Option<NodeId>,
        decoder: &'d mut Option<FrameDecoder>,
    ) -> &'d mut FrameDecoder {
        if *heard != Some(peer) || decoder.is_none() {
            let mut limit = crate::wire::FRAME_BYTES_MAX;
            if let Some(network) = &mut self.state().network {
                if *heard != Some(peer) {
                    network.heard_from(peer, now);
                }
                limit = network.frame_bytes_max();
            }
            *heard = Some(peer);
            return decoder.get_or_insert_with(|| FrameDecoder::new(limit));
        }
        decoder.as_mut().expect("checked above")
    }

    /// Acts on a frame decoded from `peer`'s stream; returns whether the stream goes
    /// on (a frame that did not decode breaks the connection).
    fn handle_decoded(
        &self,
        peer: NodeId,
        frame: Result<Frame, WireError>,
        heard: &mut Option<NodeId>,
    ) -> bool {
        match frame {
            Ok(frame) => {
                if matches!(frame, Frame::Control(_)) {
                    // Control may change anything about the peer.
                    *heard = None;
                }
                self.handle_frame(peer, frame);
                true
            }
            Err(err) => {
                // Skipping the frame would be a silent gap in the peer's stream
                // (a lost message, a spawn never answered): break the connection
                // instead, so monitors and links fire and the reconnect rule
                // makes every sender acknowledge the gap.
                *heard = None;
                tracing::warn!(
                    node = %self.id(),
                    %peer,
                    %err,
                    "undecodable frame from peer; connection broken"
                );
                let mut state = self.state();
                if let Some(network) = &mut state.network {
                    network.transport.disconnect(peer);
                }
                state.peer_lost(peer);
                false
            }
        }
    }

    /// Delivers a message from process `from` on `peer` to process `to` (a data
    /// frame's), unless a management agent refuses it.
    #[inline]
    fn handle_data(
        &self,
        peer: NodeId,
        to: ProcessId,
        from: ProcessId,
        fingerprint: crate::message::Fingerprint,
        message: Message,
    ) {
        let mut state = self.state();
        if !state.mx_admits_remote(peer, Some(from), fingerprint) {
            return;
        }
        // The lookup only for an observer (tests): not on every message.
        if state.observer.is_some() && to.node == state.id && state.is_alive(to) {
            state.observe(NodeEvent::RemoteDelivered { from, to });
        }
        state.deliver(to, message);
    }

    fn handle_frame(&self, peer: NodeId, frame: Frame) {
        let mut state = self.state();
        match frame {
            Frame::Data {
                to,
                from,
                fingerprint,
                payload,
            } => {
                drop(state);
                let message = Message::from_encoded(fingerprint, payload);
                self.handle_data(peer, to, from, fingerprint, message);
            }
            Frame::ChannelData {
                port,
                from,
                fingerprint,
                payload,
            } => {
                if !state.mx_admits_remote(peer, Some(from), fingerprint) {
                    return;
                }
                if port.owner.node == state.id {
                    state.mx_received_port_encoded(port, fingerprint); // mx hook
                    state.deliver_chan(port.channel, Message::from_encoded(fingerprint, payload));
                }
            }
            Frame::NamedData {
                ref name,
                from,
                fingerprint,
                ..
            } if !state.mx_admits_remote(peer, Some(from), fingerprint) => {
                tracing::debug!(%name, "refused management control was sent by name");
            }
            Frame::NamedData {
                name,
                from,
                fingerprint,
                payload,
            } => match state.registry.get(&name) {
                Some(pid) => {
                    // The holder may live on a third node: forwarded from the sender.
                    state.send_to_holder(from, pid, Message::from_encoded(fingerprint, payload))
                }
                None => {
                    tracing::debug!(%name, %peer, "remote nsend to an unregistered name dropped")
                }
            },
            Frame::KeepAlive => {}
            Frame::Control(control) => {
                drop(state);
                self.handle_control(peer, control);
            }
        }
    }

    fn handle_control(&self, peer: NodeId, control: Control) {
        match control {
            Control::Spawn {
                request,
                reply_to,
                closure,
            } => {
                let result = self.spawn_closure(&closure).map_err(|err| err.to_string());
                if let Err(err) = &result {
                    tracing::warn!(%peer, %err, "remote spawn refused");
                }
                if let Some(network) = &mut self.state().network {
                    network.send_control(
                        peer,
                        Control::SpawnReply {
                            request,
                            reply_to,
                            result,
                        },
                    );
                }
            }
            Control::SpawnReply {
                request,
                reply_to,
                result,
            } => self
                .state()
                .deliver(reply_to, Message::new(SpawnReply { request, result })),
            Control::WhereIs {
                request,
                name,
                reply_to,
            } => {
                let mut state = self.state();
                let pid = state.registry.get(&name);
                if let Some(network) = &mut state.network {
                    network.send_control(
                        peer,
                        Control::WhereIsReply {
                            request,
                            reply_to,
                            pid,
                        },
                    );
                }
            }
            Control::WhereIsReply {
                request,
                reply_to,
                pid,
            } => self
                .state()
                .deliver(reply_to, Message::new(WhereIsReply { request, pid })),
            Control::Monitor {
                monitor_ref,
                watcher,
            } => {
                let mut state = self.state();
                if monitor_ref.target.node == state.id {
                    state.add_watcher(monitor_ref.target, monitor_ref, watcher);
                } else {
                    state.notify_monitor(watcher, monitor_ref, DiedReason::NodeDown);
                }
            }
            Control::Unmonitor { monitor_ref } => {
                // Only the sender's: each node numbers its references itself, so
                // another node's (or this node's own) monitor may have an equal one.
                self.state().remove_watcher(monitor_ref, peer);
            }
            Control::Link { linker, target } => {
                let mut state = self.state();
                if target.node == state.id {
                    state.add_linker(target, linker);
                } else {
                    state.link_signal(linker, target, DiedReason::NodeDown);
                }
            }
            Control::Unlink { linker, target } => {
                let mut state = self.state();
                if let Some(relations) = state.relations_of(target) {
                    relations.linked_by.retain(|pid| *pid != linker);
                }
            }
            Control::MonitorNotification {
                watcher,
                monitor_ref,
                reason,
            } => {
                let mut state = self.state();
                // Exactly once: only a monitor still pending here fires (a lost
                // connection may already have fired it with Disconnect).
                let pending = state.network.as_mut().is_some_and(|network| {
                    let pending =
                        take_pending(&mut network.peer(peer).monitors, &(monitor_ref, watcher));
                    network.forget_if_unused(peer);
                    pending
                });
                if pending && watcher == state.registry_watcher() {
                    state.remote_holder_died(monitor_ref);
                } else if pending && watcher.node == state.id {
                    state.notify_monitor(watcher, monitor_ref, reason);
                }
            }
            Control::LinkSignal {
                linker,
                pid,
                reason,
            } => {
                let mut state = self.state();
                let pending = state.network.as_mut().is_some_and(|network| {
                    let pending = take_pending(&mut network.peer(peer).links, &(linker, pid));
                    network.forget_if_unused(peer);
                    pending
                });
                if pending && linker.node == state.id {
                    state.link_signal(linker, pid, reason);
                }
            }
            Control::Exit {
                from,
                target,
                reason,
            } => {
                let mut state = self.state();
                if target.node == state.id {
                    state.exit_signal(from, target, reason);
                }
            }
            Control::Registry {
                request,
                reply_to,
                name,
                action,
            } => {
                let mut state = self.state();
                let result = state.apply_registry_action(&name, action);
                if let Some(network) = &mut state.network {
                    network.send_control(
                        peer,
                        Control::RegistryReply {
                            request,
                            reply_to,
                            result,
                        },
                    );
                }
            }
            Control::RegistryReply {
                request,
                reply_to,
                result,
            } => self.state().deliver(
                reply_to,
                Message::new(crate::types::signals::RegistryReply { request, result }),
            ),
            Control::ExitWith {
                from,
                target,
                reason,
            } => {
                let mut state = self.state();
                if target.node == state.id {
                    state.exit_signal_with(from, target, reason);
                }
            }
            Control::Kill {
                from,
                target,
                reason,
            } => {
                let mut state = self.state();
                if target.node == state.id {
                    state.kill(from, target, reason);
                }
            }
        }
    }

    /// How many peer nodes this node keeps state for: connected ones, and lost ones
    /// that monitors, links or senders waiting to `reconnect` still refer to. A lost
    /// peer nothing refers to is forgotten, so this does not grow with every
    /// incarnation ever seen.
    pub fn known_peers(&self) -> usize {
        self.state()
            .network
            .as_ref()
            .map_or(0, |network| network.peers.len())
    }

    /// Starts the process a closure names, from this node's remote table. An entry
    /// that panics while starting (decoding its environment, building its process) is
    /// an error, [`ClosureError::Panicked`](crate::ClosureError::Panicked); the node
    /// lives on.
    pub fn spawn_closure(
        &self,
        closure: &crate::types::closure::Closure,
    ) -> Result<ProcessId, crate::types::closure::ClosureError> {
        let closures = self.inner.closures.clone();
        closures.spawn_closure(self, closure)
    }
}

/// Removes `entry` from a list of pending monitors or links; whether it was there (a
/// notification fires only for what is still pending: exactly once).
fn take_pending<T: PartialEq>(pending: &mut Vec<T>, entry: &T) -> bool {
    let before = pending.len();
    pending.retain(|held| held != entry);
    pending.len() != before
}

#[cfg(test)]
mod tests;
