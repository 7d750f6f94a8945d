//! Connection I/O: completing a connect, reading and acting on frames, writing what is
//! queued, and closing or breaking a connection.

use std::io;
use std::time::Instant;

use mio::Token;

use super::connection::{Connection, Phase};
use super::{Route, State, HANDSHAKE_READ_BYTES, READ_BYTES_PER_EVENT_MAX};
use crate::transport::TransportEvent;
use crate::wire::framing::READ_CHUNK_BYTES;
use crate::wire::handshake::{Handshake, Nonce};

impl State {
    /// Checks whether an outbound connect completed; if it did, starts the handshake.
    /// Returns whether the connection is now handshaking.
    pub(super) fn finish_connect(&mut self, token: Token, out: &mut Vec<TransportEvent>) -> bool {
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
        let handshake = Handshake::initiate(self.local, self.cookie.clone(), nonce)
            .with_build(self.build.clone());
        if let Err(err) = connection.writer.push(handshake.hello()) {
            self.break_connection(token, &format!("cannot frame the hello: {err}"), out);
            return false;
        }
        connection.phase = Phase::Handshaking {
            handshake: Box::new(handshake),
            target: Some(target),
        };
        connection.deadline = Instant::now().checked_add(self.limits.handshake_timeout); // real-world only
        self.mark_dirty(token);
        true
    }

    /// Reads until the socket would block (or the budget is spent), acting on every
    /// complete frame after each read.
    pub(super) fn read_ready(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        self.read(token, true, out);
    }

    /// Reads what a readable event announced: like [`read_ready`](State::read_ready),
    /// but a read that did not fill the room offered ends it. That read emptied the
    /// socket's receive queue, and with edge-triggered readiness any byte arriving later
    /// raises a new event: the read that would only report `WouldBlock` is saved (one
    /// syscall per message on a ping-pong). An event that reports the peer's close or an
    /// error reads until `WouldBlock`, so the end of the stream is never missed.
    pub(super) fn read_available(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        self.read(token, false, out);
    }

    pub(super) fn read(
        &mut self,
        token: Token,
        until_would_block: bool,
        out: &mut Vec<TransportEvent>,
    ) {
        let mut budget = READ_BYTES_PER_EVENT_MAX;
        loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            let chunk = match connection.phase {
                Phase::Connecting { .. } => return,
                // Never more than the turn's budget (see `READ_BYTES_PER_EVENT_MAX`).
                Phase::Established { .. } => READ_CHUNK_BYTES.min(READ_BYTES_PER_EVENT_MAX),
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
    pub(super) fn process_frames(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
        loop {
            let Some(connection) = self.connections.get_mut(&token) else {
                return;
            };
            if let Phase::Established { peer } = connection.phase {
                // The steady state: every frame is the node's, one lookup for them all.
                let err = loop {
                    match connection.reader.next_frames() {
                        Ok(Some(batch)) => out.push(TransportEvent::ReceivedBatch(peer, batch)),
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
                            Instant::now(), // real-world only
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
    pub(super) fn write_queued(&mut self, token: Token, out: &mut Vec<TransportEvent>) {
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
    pub(super) fn close(&mut self, token: Token) -> Option<Connection> {
        let mut connection = self.connections.remove(&token)?;
        if let Some(source) = connection.slot.take() {
            self.admission.release(source);
        }
        if let Some(registry) = &self.registry {
            let _ = registry.deregister(&mut connection.stream);
        }
        self.dirty.retain(|dirty| *dirty != token);
        self.read_backlog.remove(&token);
        Some(connection)
    }

    /// A connection broke (or failed to come up): closes it and reports its peer lost if
    /// the peer counted on it.
    pub(super) fn break_connection(
        &mut self,
        token: Token,
        why: &str,
        out: &mut Vec<TransportEvent>,
    ) {
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
}
