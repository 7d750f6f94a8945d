//! The listener: accepting connections, and admitting them to a handshake slot (the
//! limits on unauthenticated peers are in [`super::admission`]).

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use super::admission::Source;
use super::connection::{Connection, Phase};
use super::State;
use crate::wire::framing::{FrameReader, FrameWriter};
use crate::wire::handshake::{Handshake, Nonce, HANDSHAKE_BYTES_MAX};

impl State {
    pub(super) fn accept_all(&mut self) {
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
    pub(super) fn admit(&mut self, source: Source, remote: SocketAddr, now: Instant) -> bool {
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

    pub(super) fn on_accepted(&mut self, mut stream: TcpStream, remote: SocketAddr) {
        let now = Instant::now(); // real-world only
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
        let handshake = Handshake::accept(self.local, self.cookie.clone(), nonce)
            .with_build(self.build.clone());
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
                vouched: None,
                in_flush_list: false,
            },
        );
        self.mark_dirty(token);
    }
}
