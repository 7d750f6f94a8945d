//! The node's one event source: every event is emitted here, once, where its cause
//! happens, and read by whoever listens, filtered by interest:
//! - the observer (the simulator's checkers, and its trace's hash chain), told the
//!   [`NodeEvent`]s;
//! - the management bus ([`crate::mx`]): each agent is queued the [`MxEvent`] kinds its
//!   sinks take.
//!
//! One mask (`Bus::interest`: the agents' kinds, plus a bit if an observer is
//! installed) says who listens. The `#[inline(always)]` hooks hold only the branch on
//! it; the work is out of line, so a node nobody observes and without agents pays one
//! branch per cause. A cause read by both (a peer connected or lost, a message
//! delivered) is one call here that feeds both.

use super::event::NodeEvent;
use super::local::NodeState;
use crate::bus::events::{Info, MxEvent, MxEventKind};
use crate::bus::trace_control::is_local_only;
use crate::bus::{refuse, BusItem, MX_AGENT_BACKLOG_MAX, OBSERVED};
use crate::kernel::TaskId;
use crate::message::{Fingerprint, Message};
use crate::types::id::SendPortId;
use crate::types::id::{DiedReason, NodeId, ProcessId};
use crate::Serializable;

/// Causes read by both the observer and the bus, and the observer's own events.
impl NodeState {
    /// Reports an event to the observer, if one is installed.
    pub(crate) fn observe(&self, event: NodeEvent) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// A connection to `peer` came up: the observer's `PeerConnected`, the bus's
    /// `Connected` (numbered once per connection).
    pub(crate) fn emit_peer_connected(&mut self, peer: NodeId) {
        self.observe(NodeEvent::PeerConnected(peer));
        self.mx_connected(peer);
    }

    /// `peer` is lost: the observer's `PeerLost`, the bus's `Disconnected` and
    /// `NodeDied` (once per connection).
    pub(crate) fn emit_peer_lost(&mut self, peer: NodeId) {
        self.observe(NodeEvent::PeerLost(peer));
        self.mx_peer_lost(peer);
    }

    /// Whether no listener reads the way of a local message of type `T`: no agent
    /// takes `Sent` or `Received`, and no observer, or one that would look past it (an
    /// observer reads only monitor notifications entering a mailbox). Then
    /// [`mx_sent_here`](NodeState::mx_sent_here) and
    /// [`emit_delivering`](NodeState::emit_delivering) would do nothing, and a local
    /// send may skip them (`NodeState::send_value`): the simulator's nodes, all
    /// observed, take the same fast path as real ones.
    #[inline(always)]
    pub(crate) fn messages_unobserved<T: 'static>(&self) -> bool {
        let interest = self.mx.interest;
        interest & (MxEventKind::Sent.bit() | MxEventKind::Received.bit()) == 0
            && (interest & OBSERVED == 0
                || std::any::TypeId::of::<T>()
                    != std::any::TypeId::of::<crate::ProcessMonitorNotification>())
    }

    /// `message` is about to enter the mailbox of the process numbered `local`: one
    /// branch for every listener (the observer counts monitor notifications queued;
    /// agents may take `Received`).
    #[inline(always)]
    pub(crate) fn emit_delivering(&mut self, local: u64, message: &mut Message) {
        if self.mx.interest & (OBSERVED | MxEventKind::Received.bit()) != 0 {
            self.emit_delivering_slow(local, message);
        }
    }

    #[inline(never)]
    fn emit_delivering_slow(&mut self, local: u64, message: &mut Message) {
        if self.observer.is_some() {
            self.observe_queued(local, message);
        }
        self.mx_received(local, message);
    }

    /// Tells the observer of a monitor notification entering a live mailbox (the
    /// simulator counts what processes receive, not only what the node decided).
    #[cold]
    fn observe_queued(&mut self, local: u64, message: &mut Message) {
        let Some(monitor_ref) =
            message.inspect(|n: &crate::ProcessMonitorNotification| n.monitor_ref)
        else {
            return;
        };
        let watcher = ProcessId {
            node: self.id,
            local,
        };
        if self.is_alive(watcher) {
            self.observe(NodeEvent::MonitorNotificationQueued {
                monitor_ref,
                watcher,
            });
        }
    }
}

/// The publishing side, as methods of the node's state: each hook in `node` and
/// `process` is one call. The `#[inline(always)]` wrappers hold only the branch; the
/// work is out of line.
impl NodeState {
    /// Puts `item` in the queue of every agent it is for, and wakes those that wait.
    #[inline(never)]
    pub(crate) fn mx_publish(&mut self, item: BusItem) {
        let kind = item.kind();
        let mut item = Some(item);
        for index in 0..self.mx.readers.len() {
            if !self.mx.readers[index].takes(kind) {
                continue;
            }
            let last = !self.mx.readers[index + 1..]
                .iter()
                .any(|later| later.takes(kind));
            let copy = if last {
                item.take()
            } else {
                item.as_ref().and_then(BusItem::duplicate)
            };
            let Some(copy) = copy else { continue };
            let reader = &mut self.mx.readers[index];
            if reader.queue.len() >= MX_AGENT_BACKLOG_MAX {
                refuse(reader);
                continue;
            }
            reader.queue.push(copy);
            if reader.asleep {
                reader.asleep = false;
                let task = reader.task;
                self.schedule(task);
            }
        }
    }

    /// Queues the message-path events that are due (`sent`, `received`) for every
    /// agent that takes them: `SentLocal`, `Received`, or both in one `LocalSend` item,
    /// as its kinds ask.
    #[inline(always)]
    fn mx_publish_local(&mut self, from: u64, to: u64, info: Info, sent: bool, received: bool) {
        let (sent_bit, received_bit) = (MxEventKind::Sent.bit(), MxEventKind::Received.bit());
        for index in 0..self.mx.readers.len() {
            let reader = &mut self.mx.readers[index];
            let sent = sent && reader.kinds & sent_bit != 0;
            let received = received && reader.kinds & received_bit != 0;
            if !sent && !received {
                continue;
            }
            if reader.queue.len() >= MX_AGENT_BACKLOG_MAX {
                refuse(reader);
                continue;
            }
            // Room first, then each variant written as a literal straight into its
            // slot: an item chosen first and moved in afterwards is assembled on the
            // stack with narrow stores and copied out with wide loads, a store-forwarding
            // stall that cost more than the rest of the publish.
            reader.queue.reserve(1);
            let len = reader.queue.len();
            let slot = &mut reader.queue.spare_capacity_mut()[0];
            match (sent, received) {
                (true, true) => slot.write(BusItem::LocalSend { from, to, info }),
                (true, false) => slot.write(BusItem::SentLocal { from, to, info }),
                _ => slot.write(BusItem::Received { pid: to, info }),
            };
            // SAFETY: the slot at `len` was just initialised by `write`.
            unsafe { reader.queue.set_len(len + 1) };
            if reader.asleep {
                reader.asleep = false;
                let task = reader.task;
                self.schedule(task);
            }
        }
    }

    /// Publishes a system event of `kind` if any agent takes it; `make` runs only then.
    #[inline(always)]
    pub(crate) fn mx_event(&mut self, kind: MxEventKind, make: impl FnOnce() -> MxEvent) {
        if self.mx.wants(kind) {
            self.mx_event_slow(make);
        }
    }

    /// Out of the caller's way: the control-plane events (spawns, deaths, names,
    /// connections) must cost nothing but the branch when no agent takes them.
    #[cold]
    #[inline(never)]
    fn mx_event_slow(&mut self, make: impl FnOnce() -> MxEvent) {
        self.mx_publish(BusItem::Event(Box::new(make())));
    }

    /// Hook: `from` sends `message` to the process numbered `to` on this node.
    #[inline(always)]
    pub(crate) fn mx_sent_here(&mut self, from: &ProcessId, to: u64, message: &Message) {
        if self.mx.wants(MxEventKind::Sent) {
            self.mx_sent_here_slow(from, to, message);
        }
    }

    #[inline(never)]
    fn mx_sent_here_slow(&mut self, from: &ProcessId, to: u64, message: &Message) {
        let info = Info::of_message(message);
        if from.node != self.id {
            // `send_as` on behalf of another node's process.
            let to = ProcessId {
                node: self.id,
                local: to,
            };
            return self.mx_publish_sent(*from, to, info);
        }
        // The message is delivered at once: its `Received` event goes out now, with
        // the `Sent`, and `deliver_here` is told it is done.
        let with_received =
            self.mx.wants(MxEventKind::Received) && self.kernel.is_alive(TaskId::from_u64(to));
        self.mx.received_published = with_received;
        self.mx_publish_local(from.local, to, info, true, with_received);
    }

    /// Hook: a process of this node sends `message` to `to`, on another node.
    #[inline(always)]
    pub(crate) fn mx_sent_away(&mut self, from: ProcessId, to: ProcessId, message: &Message) {
        if self.mx.wants(MxEventKind::Sent) {
            self.mx_publish_sent(from, to, Info::of_message(message));
        }
    }

    #[inline(never)]
    fn mx_publish_sent(&mut self, from: ProcessId, to: ProcessId, info: Info) {
        let message = info.into();
        self.mx_publish(BusItem::Event(Box::new(MxEvent::Sent {
            to,
            from,
            message,
        })));
    }

    /// Hook: `message` is about to enter the mailbox of the process numbered `to` on
    /// this node (published only if it is alive).
    #[inline(always)]
    pub(crate) fn mx_received(&mut self, to: u64, message: &Message) {
        if self.mx.wants(MxEventKind::Received) && !std::mem::take(&mut self.mx.received_published)
        {
            self.mx_received_slow(to, message);
        }
    }

    #[inline(never)]
    fn mx_received_slow(&mut self, pid: u64, message: &Message) {
        if self.kernel.is_alive(TaskId::from_u64(pid)) {
            let info = Info::of_message(message);
            self.mx_publish_local(0, pid, info, false, true);
        }
    }

    /// Hook: a process of this node sends a `T` to the name `name` (here or remote).
    #[inline(always)]
    pub(crate) fn mx_sent_to_name<T: Serializable>(&mut self, from: ProcessId, name: &str) {
        self.mx_event(MxEventKind::SentToName, || MxEvent::SentToName {
            name: name.to_string(),
            from,
            message: Info::of::<T>().into(),
        });
    }

    /// Hook: a process of this node sends a `T` on the channel `port`.
    #[inline(always)]
    pub(crate) fn mx_sent_to_port<T: Serializable>(&mut self, from: ProcessId, port: SendPortId) {
        self.mx_event(MxEventKind::SentToPort, || MxEvent::SentToPort {
            from,
            port,
            message: Info::of::<T>().into(),
        });
    }

    /// Hook: a `T` is about to enter the local channel `port`.
    #[inline(always)]
    pub(crate) fn mx_received_port<T: Serializable>(&mut self, port: SendPortId) {
        if self.mx.wants(MxEventKind::ReceivedPort) {
            self.mx_received_port_slow(port, Info::of::<T>());
        }
    }

    /// Hook: bytes with `fingerprint` from another node are about to enter the local
    /// channel `port`.
    #[inline(always)]
    pub(crate) fn mx_received_port_encoded(&mut self, port: SendPortId, fingerprint: Fingerprint) {
        if self.mx.wants(MxEventKind::ReceivedPort) {
            self.mx_received_port_slow(port, Info::Encoded(fingerprint));
        }
    }

    #[inline(never)]
    fn mx_received_port_slow(&mut self, port: SendPortId, info: Info) {
        // A channel lives as long as its owner.
        if self.is_alive(port.owner) {
            self.mx_publish(BusItem::Event(Box::new(MxEvent::ReceivedPort {
                port,
                message: info.into(),
            })));
        }
    }

    /// Hook: `from`'s message (or spawn request) for `to` was refused before it was
    /// queued: logged, and published as [`MxEvent::MessageRefused`].
    #[cold]
    pub(crate) fn mx_message_refused(
        &mut self,
        from: ProcessId,
        to: crate::bus::events::MxRecipient,
        err: &crate::wire::WireError,
    ) {
        let crate::wire::WireError::FrameTooLong { length, limit } = *err else {
            tracing::error!(%from, %to, %err, "message dropped: cannot encode");
            return;
        };
        tracing::warn!(
            %from,
            %to,
            bytes = length,
            limit,
            "message refused: longer than the frame limit; not sent, the connection stays up"
        );
        self.mx_event(MxEventKind::MessageRefused, || MxEvent::MessageRefused {
            from,
            to,
            bytes: length,
            limit: limit as u64,
        });
    }

    /// Hook: a message that comes from another node is about to be delivered; `false`
    /// if it is management control, which only local processes may send (refused:
    /// logged and counted).
    #[inline(always)]
    pub(crate) fn mx_admits_remote(
        &mut self,
        peer: NodeId,
        from: Option<ProcessId>,
        fingerprint: Fingerprint,
    ) -> bool {
        if !is_local_only(fingerprint) {
            return true;
        }
        self.mx.remote_controls_refused += 1;
        tracing::warn!(
            %peer,
            from = ?from,
            refused = self.mx.remote_controls_refused,
            "management control from another node refused: only local processes may send it"
        );
        false
    }

    /// Hook: a process started.
    #[inline(always)]
    pub(crate) fn mx_spawned(&mut self, pid: ProcessId) {
        self.mx_event(MxEventKind::Spawned, || MxEvent::Spawned(pid));
    }

    /// Hook: the process `pid` of this node died.
    #[inline(always)]
    pub(crate) fn mx_process_died(&mut self, pid: &ProcessId, reason: &DiedReason) {
        self.mx_event(MxEventKind::ProcessDied, || MxEvent::ProcessDied {
            pid: *pid,
            reason: reason.clone(),
        });
    }

    /// Hook: `name` was registered for `pid`.
    pub(crate) fn mx_registered(&mut self, pid: ProcessId, name: &str) {
        self.mx_event(MxEventKind::Registered, || MxEvent::Registered {
            pid,
            name: name.to_string(),
        });
    }

    /// Hook: `name`, held by `pid`, was removed from the registry.
    pub(crate) fn mx_unregistered(&mut self, pid: ProcessId, name: &str) {
        self.mx_event(MxEventKind::Unregistered, || MxEvent::Unregistered {
            pid,
            name: name.to_string(),
        });
    }

    /// Hook: the transport reports a connection to `peer`. A second report while the
    /// connection is known changes nothing.
    pub(crate) fn mx_connected(&mut self, peer: NodeId) {
        if self.mx.connections.contains_key(&peer) {
            return;
        }
        let connection = self.mx.next_connection;
        self.mx.next_connection += 1;
        self.mx.connections.insert(peer, connection);
        self.mx_event(MxEventKind::Connected, || MxEvent::Connected {
            connection,
            node: peer,
        });
    }

    /// Hook: `peer` is lost. Reported once per connection: a peer this node never
    /// connected to, or already reported lost, produces nothing.
    pub(crate) fn mx_peer_lost(&mut self, peer: NodeId) {
        let Some(connection) = self.mx.connections.remove(&peer) else {
            return;
        };
        self.mx_event(MxEventKind::Disconnected, || MxEvent::Disconnected {
            connection,
            node: peer,
        });
        self.mx_event(MxEventKind::NodeDied, || MxEvent::NodeDied {
            node: peer,
            reason: DiedReason::Disconnect,
        });
    }

    /// Hook: one poll of `pid` held the node's thread for `held`, past `bound` (the
    /// watchdog, `node::watchdog`).
    #[cold]
    pub(crate) fn mx_slow_poll(
        &mut self,
        pid: ProcessId,
        held: std::time::Duration,
        bound: std::time::Duration,
    ) {
        self.mx_event(MxEventKind::SlowPoll, || MxEvent::SlowPoll {
            pid,
            held,
            bound,
        });
    }
}
