//! Routes: how frames reach a peer. Sending picks (or dials) the peer's route;
//! the handshake's verdicts decide which of two connections a pair of nodes keeps, and a
//! connection that wins becomes the peer's route. The decisions are the sans-I/O
//! [`Arbiter`]'s (shared with the simulator's network); this file applies them to sockets.

use std::io;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Token;

use super::connection::{Connection, Phase};
use super::{PeerLink, Route, State};
use crate::transport::arbitration::{Arbiter, Transition};
use crate::transport::TransportEvent;
use crate::types::id::NodeId;
use crate::wire::framing::{FrameReader, FrameWriter, LENGTH_PREFIX_BYTES};
use crate::wire::handshake::{HandshakeError, Step, Verdict, HANDSHAKE_BYTES_MAX};
use crate::wire::WireError;

/// What a send on the hot route did (see [`State::send_on_hot_route`]).
pub(super) enum HotSend {
    /// The frame is queued.
    Queued,
    /// The frame is queued, and took the queue over its limit: the caller breaks the
    /// connection.
    OverLimit { queued: usize, body_len: usize },
    /// The frame failed to encode or is over the frame limit: nothing was queued.
    Refused(WireError),
}

impl State {
    /// Queues an encoded frame body for `peer`; one over the frame limit breaks the
    /// connection (the node refuses such frames before they get here).
    pub(super) fn send(&mut self, peer: NodeId, body: &[u8], out: &mut Vec<TransportEvent>) {
        if !self.shut_down && peer != self.local && body.len() > self.limits.frame_bytes_max {
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
        let _ = self.send_with(
            peer,
            &mut |buffer| {
                buffer.extend_from_slice(body);
                Ok(())
            },
            out,
        );
    }

    /// Queues a frame body that `write` appends straight to the peer's queue (see
    /// [`Transport::send_with`](crate::transport::Transport::send_with)): a body that
    /// fails to encode or is over the frame limit is not queued, no connection is
    /// opened or touched, and the error is returned.
    pub(super) fn send_with(
        &mut self,
        peer: NodeId,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), WireError>,
        out: &mut Vec<TransportEvent>,
    ) -> Result<(), WireError> {
        match self.send_on_hot_route(peer, write) {
            Some(sent) => self.settle_hot_send(peer, sent, out),
            None => self.send_off_the_hot_route(peer, write, out),
        }
    }

    /// What a send on the hot route leaves to do: report a queue over its limit, or the
    /// frame's refusal.
    pub(super) fn settle_hot_send(
        &mut self,
        peer: NodeId,
        sent: HotSend,
        out: &mut Vec<TransportEvent>,
    ) -> Result<(), WireError> {
        match sent {
            HotSend::Queued => Ok(()),
            HotSend::OverLimit { queued, body_len } => {
                self.queue_over_limit(peer, queued, body_len, out);
                Ok(())
            }
            HotSend::Refused(err) => Err(err),
        }
    }

    /// [`send_with`](State::send_with) when [`send_on_hot_route`](State::send_on_hot_route)
    /// did nothing: a new peer, a route being made, or a transport shut down.
    pub(super) fn send_off_the_hot_route(
        &mut self,
        peer: NodeId,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), WireError>,
        out: &mut Vec<TransportEvent>,
    ) -> Result<(), WireError> {
        if self.shut_down {
            tracing::debug!(%peer, "frame dropped: the transport is shut down");
            return Ok(());
        }
        if peer == self.local {
            tracing::warn!(%peer, "frame to this node's own id dropped; nodes do not dial themselves");
            out.push(TransportEvent::PeerLost(peer));
            return Ok(());
        }
        let Some(link) = self.peers.get_mut(&peer) else {
            // Encoded before dialing: a frame refused opens no connection.
            let mut pending = FrameWriter::with_limit(self.limits.frame_bytes_max);
            pending.push_with(write)?;
            match self.dial(peer) {
                Ok(token) => {
                    let dialing = Arbiter::new(self.local).dial(None, token);
                    self.peers.insert(
                        peer,
                        PeerLink {
                            route: dialing.route.expect("a dial is a route"),
                            pending,
                        },
                    );
                }
                Err(err) => {
                    tracing::info!(%peer, %err, "cannot connect");
                    out.push(TransportEvent::PeerLost(peer));
                }
            }
            return Ok(());
        };
        let queued_max = self.limits.queued_bytes_max;
        let queue = match link.route {
            Route::Established(token) => match self.connections.get_mut(&token) {
                Some(connection) => {
                    if !connection.in_flush_list {
                        connection.in_flush_list = true;
                        self.dirty.push(token);
                    }
                    self.hot = Some((peer, token));
                    &mut connection.writer
                }
                None => &mut link.pending,
            },
            Route::Dialing(_) | Route::AwaitingInbound { .. } => &mut link.pending,
        };
        let queued = queue.pending_len();
        let body_len = queue.push_with(write)?;
        if queued + LENGTH_PREFIX_BYTES + body_len > queued_max {
            self.queue_over_limit(peer, queued, body_len, out);
        }
        Ok(())
    }

    /// The steady state of [`send_with`](State::send_with): `peer` is the peer sent to
    /// last and its connection is established, found by its token (no lookup by node
    /// id; an established route has no frames in its link). `None` (nothing done) if
    /// not. The caller reports a queue over its limit.
    #[inline(always)]
    pub(super) fn send_on_hot_route(
        &mut self,
        peer: NodeId,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), WireError>,
    ) -> Option<HotSend> {
        let (_, token) = self.hot?;
        if self.shut_down {
            return None;
        }
        // Established with `peer` means it is `peer`'s route (see `hot`).
        let connection = self
            .connections
            .get_mut(&token)
            .filter(|connection| connection.is_established_with(peer))?;
        let queued = connection.writer.pending_len();
        let body_len = match connection.writer.push_with(write) {
            Ok(body_len) => body_len,
            Err(err) => return Some(HotSend::Refused(err)),
        };
        if !connection.in_flush_list {
            connection.in_flush_list = true;
            self.dirty.push(token);
        }
        if queued + LENGTH_PREFIX_BYTES + body_len > self.limits.queued_bytes_max {
            return Some(HotSend::OverLimit { queued, body_len });
        }
        Some(HotSend::Queued)
    }

    /// A frame took the queue to `peer` over its limit: the queue goes with the
    /// connection, and the frame is not sent.
    fn queue_over_limit(
        &mut self,
        peer: NodeId,
        queued: usize,
        body_len: usize,
        out: &mut Vec<TransportEvent>,
    ) {
        let queued_max = self.limits.queued_bytes_max;
        self.lose_peer(
            peer,
            &format!(
                "{queued} bytes already queued; a frame of {body_len} more exceeds the \
                 limit of {queued_max}"
            ),
            out,
        );
    }

    /// Starts a non-blocking connect to `peer`.
    pub(super) fn dial(&mut self, peer: NodeId) -> io::Result<Token> {
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
                deadline: Instant::now().checked_add(self.limits.connect_timeout), // real-world only
                accepted_at: None,
                slot: None,
                hello_received: false,
                vouched: None,
                in_flush_list: false,
            },
        );
        Ok(token)
    }

    /// Breaks whatever links us to `peer` and reports it lost.
    pub(super) fn lose_peer(&mut self, peer: NodeId, why: &str, out: &mut Vec<TransportEvent>) {
        tracing::warn!(%peer, why, "connection broken");
        let route = self.peers.remove(&peer).map(|link| link.route);
        let given_up = Arbiter::new(self.local).give_up(route, true);
        if let Some(token) = given_up.actions.close {
            self.close(token);
        }
        out.push(TransportEvent::PeerLost(peer));
    }

    pub(super) fn disconnect(&mut self, peer: NodeId) {
        let Some(link) = self.peers.remove(&peer) else {
            return;
        };
        tracing::info!(%peer, "disconnecting");
        let given_up = Arbiter::new(self.local).give_up(Some(link.route), false);
        if let Some(token) = given_up.actions.close {
            self.close(token);
        }
    }

    // ---- the handshake -------------------------------------------------------------

    pub(super) fn handshake_step(
        &mut self,
        token: Token,
        body: &[u8],
        out: &mut Vec<TransportEvent>,
    ) {
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
                let route = self.peers.get(&peer).map(|link| link.route);
                let vouched = self.connections.get(&token).and_then(|c| c.vouched);
                let transition = Arbiter::new(self.local).on_replace(route, token, vouched);
                if transition.actions.establish.is_none() {
                    // Another connection became the route since our "alive": this one
                    // may be older, so what follows the request must not be delivered.
                    tracing::info!(%peer, "stale replace request refused; connection closed");
                    self.break_connection(token, "stale replace request", out);
                    return;
                }
                tracing::info!(%peer, "the peer reconnected: its previous connection is gone");
                self.establish(token, peer, transition, out);
            }
        }
    }

    pub(super) fn handshake_failed(
        &mut self,
        token: Token,
        err: &HandshakeError,
        out: &mut Vec<TransportEvent>,
    ) {
        if let HandshakeError::BuildMismatch { theirs, .. } = err {
            self.report_build_mismatch(theirs, err);
        }
        if let Some(connection) = self.connections.get(&token) {
            let claimed = match &connection.phase {
                Phase::Handshaking { handshake, .. } => handshake.peer(),
                _ => None,
            };
            if connection.phase.is_inbound_handshake() {
                let remote = connection.remote;
                self.warnings.warn(
                    Instant::now(), // real-world only
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

    pub(super) fn queue_handshake_message(
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
                self.mark_dirty(token);
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
    pub(super) fn decide_inbound(
        &mut self,
        token: Token,
        peer: NodeId,
        out: &mut Vec<TransportEvent>,
    ) {
        let route = self.peers.get(&peer).map(|link| link.route);
        let transition = Arbiter::new(self.local).decide(peer, route, token);
        let Some(verdict) = transition.actions.verdict else {
            debug_assert!(false, "the acceptor always answers");
            return;
        };
        let Some(connection) = self.connections.get_mut(&token) else {
            return;
        };
        connection.vouched = transition.actions.vouched;
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
            Verdict::Accept => self.establish(token, peer, transition, out),
            Verdict::Decline => {
                tracing::debug!(%peer, "simultaneous connection declined: ours is kept");
            }
            Verdict::Alive => {
                tracing::debug!(%peer, "connected peer dials again; asking whether it lost us");
            }
        }
    }

    /// The initiator's reaction to the acceptor's verdict.
    pub(super) fn on_verdict(
        &mut self,
        token: Token,
        peer: NodeId,
        verdict: Verdict,
        out: &mut Vec<TransportEvent>,
    ) {
        let route = self.peers.get(&peer).map(|link| link.route);
        let await_deadline = saturating_deadline(
            self.limits
                .connect_timeout
                .saturating_add(self.limits.handshake_timeout),
        );
        let transition = Arbiter::new(self.local).on_verdict(route, token, verdict, await_deadline);
        match verdict {
            Verdict::Accept => self.establish(token, peer, transition, out),
            Verdict::Decline => {
                tracing::debug!(%peer, "the peer is dialing us at the same moment; waiting for it");
                if let (Some(link), Some(route)) = (self.peers.get_mut(&peer), transition.route) {
                    link.route = route;
                }
                self.close(token);
            }
            Verdict::Alive if !transition.actions.replace => {
                tracing::debug!(%peer, "stale simultaneous connection closed");
                self.close(token);
            }
            Verdict::Alive => {
                let Some(connection) = self.connections.get_mut(&token) else {
                    return;
                };
                let Phase::Handshaking { handshake, .. } = &mut connection.phase else {
                    return;
                };
                match handshake.replace() {
                    Ok(message) => {
                        self.queue_handshake_message(token, &message, out);
                        self.establish(token, peer, transition, out);
                    }
                    Err(err) => self.handshake_failed(token, &err, out),
                }
            }
        }
    }

    /// Makes `token` the connection of `peer`, as the arbitration's `transition` says:
    /// frames waiting for the peer follow the handshake, a superseded dial is closed
    /// silently, a superseded established connection is reported lost first.
    pub(super) fn establish(
        &mut self,
        token: Token,
        peer: NodeId,
        transition: Transition<Token, Instant>,
        out: &mut Vec<TransportEvent>,
    ) {
        if !self.connections.contains_key(&token) {
            return;
        }
        debug_assert_eq!(transition.actions.establish, Some(token));
        let route = transition.route.unwrap_or(Route::Established(token));
        let frame_bytes_max = self.limits.frame_bytes_max;
        let link = self.peers.entry(peer).or_insert_with(|| PeerLink {
            route,
            pending: FrameWriter::with_limit(frame_bytes_max),
        });
        link.route = route;
        let pending = link.pending.take_pending();
        if let Some(other) = transition.actions.close {
            if transition.actions.lost {
                self.close(other);
                out.push(TransportEvent::PeerLost(peer));
            } else {
                tracing::debug!(%peer, "our own dial is superseded by the peer's connection");
                self.close(other);
            }
        }
        // Another connection is the peer's route now: replace requests that "alive"
        // answers invited on the peer's other connections are stale from now on.
        for (other, connection) in &mut self.connections {
            let from_peer = match &connection.phase {
                Phase::Handshaking { handshake, .. } => handshake.peer() == Some(peer),
                _ => false,
            };
            if *other != token && from_peer {
                connection.vouched = None;
            }
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
        self.mark_dirty(token);
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
