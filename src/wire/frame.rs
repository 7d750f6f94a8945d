//! Frame bodies: the node-to-node protocol.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::closure::Closure;
use crate::message::Fingerprint;
use crate::process::channel::SendPortId;
use crate::process::id::{DiedReason, MonitorRef, ProcessId};

/// Largest frame body a node accepts by default, in bytes (16 MiB). A longer frame is
/// refused before anything is allocated for it.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One unit of the node-to-node protocol.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Frame {
    /// A message for a process.
    Data {
        /// The destination process.
        to: ProcessId,
        /// The sender.
        from: ProcessId,
        /// The message's type.
        fingerprint: Fingerprint,
        /// The encoded message.
        payload: Vec<u8>,
    },
    /// A message for a typed channel.
    ChannelData {
        /// The destination channel.
        port: SendPortId,
        /// The sender.
        from: ProcessId,
        /// The message's type.
        fingerprint: Fingerprint,
        /// The encoded message.
        payload: Vec<u8>,
    },
    /// A message for whatever process holds a name in the receiving node's registry.
    NamedData {
        /// The registered name.
        name: String,
        /// The sender.
        from: ProcessId,
        /// The message's type.
        fingerprint: Fingerprint,
        /// The encoded message.
        payload: Vec<u8>,
    },
    /// Spawning, links, monitors, exit signals, registry queries.
    Control(Control),
    /// Proof of life between nodes that have nothing else to say.
    KeepAlive,
}

/// The control plane: everything but messages.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Control {
    /// Start a closure; reply with [`Control::SpawnReply`].
    Spawn {
        /// Matches the reply to the request.
        request: u64,
        /// Who waits for the reply.
        reply_to: ProcessId,
        /// What to run.
        closure: Closure,
    },
    /// The outcome of a [`Control::Spawn`].
    SpawnReply {
        /// The request answered.
        request: u64,
        /// Who waits for it.
        reply_to: ProcessId,
        /// The new process, or why none was started.
        result: Result<ProcessId, String>,
    },
    /// Look a name up in the receiving node's registry; reply with
    /// [`Control::WhereIsReply`].
    WhereIs {
        /// Matches the reply to the request.
        request: u64,
        /// The name.
        name: String,
        /// Who waits for the reply.
        reply_to: ProcessId,
    },
    /// The answer to a [`Control::WhereIs`].
    WhereIsReply {
        /// The request answered.
        request: u64,
        /// Who waits for it.
        reply_to: ProcessId,
        /// The process holding the name, if any.
        pid: Option<ProcessId>,
    },
    /// `watcher` monitors `monitor_ref.target`, a process of the receiving node.
    Monitor {
        /// The monitor.
        monitor_ref: MonitorRef,
        /// Who is told of the death.
        watcher: ProcessId,
    },
    /// Withdraws a [`Control::Monitor`].
    Unmonitor {
        /// The monitor.
        monitor_ref: MonitorRef,
    },
    /// `linker` links to `target`, a process of the receiving node.
    Link {
        /// Who is told of the death.
        linker: ProcessId,
        /// The process linked to.
        target: ProcessId,
    },
    /// Withdraws a [`Control::Link`].
    Unlink {
        /// Who was linked.
        linker: ProcessId,
        /// The process linked to.
        target: ProcessId,
    },
    /// A monitored process died.
    MonitorNotification {
        /// Who is told.
        watcher: ProcessId,
        /// The monitor (its target is the process that died).
        monitor_ref: MonitorRef,
        /// Why it died.
        reason: DiedReason,
    },
    /// A linked process died.
    LinkSignal {
        /// Who is told.
        linker: ProcessId,
        /// The process that died.
        pid: ProcessId,
        /// Why.
        reason: DiedReason,
    },
    /// A trappable exit signal.
    Exit {
        /// Who sends it.
        from: ProcessId,
        /// Who should exit.
        target: ProcessId,
        /// The reason given.
        reason: String,
    },
    /// An untrappable kill.
    Kill {
        /// Who sends it.
        from: ProcessId,
        /// Who dies.
        target: ProcessId,
        /// The reason given.
        reason: String,
    },
}

/// Why bytes from the network were refused.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WireError {
    /// A frame announced more bytes than the limit.
    FrameTooLong {
        /// Bytes announced.
        length: u64,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid frame.
    Malformed(String),
    /// The frame could not be encoded (a value refused to serialize).
    Encode(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::FrameTooLong { length, limit } => {
                write!(
                    f,
                    "frame of {length} bytes exceeds the limit of {limit} bytes"
                )
            }
            WireError::Malformed(why) => write!(f, "malformed frame: {why}"),
            WireError::Encode(why) => write!(f, "cannot encode frame: {why}"),
        }
    }
}

impl std::error::Error for WireError {}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<FRAME_BYTES_MAX>()
}

/// Encodes a frame body.
pub fn encode_frame(frame: &Frame) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(frame, config()).map_err(|err| WireError::Encode(err.to_string()))
}

/// Decodes a frame body that must be consumed exactly.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, WireError> {
    if bytes.len() > FRAME_BYTES_MAX {
        return Err(WireError::FrameTooLong {
            length: bytes.len() as u64,
            limit: FRAME_BYTES_MAX,
        });
    }
    let (frame, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|err| WireError::Malformed(err.to_string()))?;
    if read != bytes.len() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_frame_is_malformed_not_a_panic() {
        let frame = Frame::NamedData {
            name: "master".into(),
            from: ProcessId {
                node: crate::NodeId {
                    address: "127.0.0.1:1".parse().unwrap(),
                    incarnation: 1,
                },
                local: 1,
            },
            fingerprint: Fingerprint(7),
            payload: vec![1, 2, 3],
        };
        let bytes = encode_frame(&frame).unwrap();
        assert_eq!(decode_frame(&bytes), Ok(frame));
        for cut in 0..bytes.len() {
            assert!(matches!(
                decode_frame(&bytes[..cut]),
                Err(WireError::Malformed(_))
            ));
        }
    }
}
