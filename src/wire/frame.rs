//! Frame bodies: the node-to-node protocol.
//!
//! Size: about 450 lines of code and 190 of tests (every frame kind's round trip and
//! its refusals), kept beside the codec they pin.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message::Fingerprint;
use crate::types::closure::Closure;
use crate::types::id::SendPortId;
use crate::types::id::{DiedReason, MonitorRef, ProcessId};

/// Largest frame body a node sends or accepts by default, in bytes (16 MiB). A longer
/// frame is refused before anything is allocated for it. The TCP transport's
/// `frame_bytes_max` setting replaces it; every encoder and decoder of a node then uses
/// that one limit ([`encode_frame_limited`], [`decode_frame_limited`]).
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
    /// Change the receiving node's registry; reply with [`Control::RegistryReply`].
    Registry {
        /// Matches the reply to the request.
        request: u64,
        /// Who waits for the reply.
        reply_to: ProcessId,
        /// The name.
        name: String,
        /// What to do with it.
        action: crate::types::registry::RegistryAction,
    },
    /// The outcome of a [`Control::Registry`].
    RegistryReply {
        /// The request answered.
        request: u64,
        /// Who waits for it.
        reply_to: ProcessId,
        /// Done, or why not.
        result: Result<(), crate::types::registry::RegistryError>,
    },
    /// An exit signal with a reason of any serializable type (`exit_with`).
    ExitWith {
        /// Who sends it.
        from: ProcessId,
        /// Who should exit.
        target: ProcessId,
        /// The reason given.
        reason: crate::types::exit::ExitReason,
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

/// Encodes a frame body under the default limit, [`FRAME_BYTES_MAX`].
pub fn encode_frame(frame: &Frame) -> Result<Vec<u8>, WireError> {
    encode_frame_limited(frame, FRAME_BYTES_MAX)
}

/// Encodes a frame body; one longer than `frame_bytes_max` is refused with
/// [`WireError::FrameTooLong`] (no peer would accept it).
///
/// ```
/// use hyperion::wire::{encode_frame_limited, Frame, WireError};
/// assert!(encode_frame_limited(&Frame::KeepAlive, 16).is_ok());
/// let node = "127.0.0.1:1#1".parse().unwrap();
/// let long = Frame::NamedData {
///     name: "x".repeat(100),
///     from: hyperion::ProcessId { node, local: 1 },
///     fingerprint: hyperion::message::Fingerprint(0),
///     payload: Vec::new(),
/// };
/// assert!(matches!(encode_frame_limited(&long, 16), Err(WireError::FrameTooLong { limit: 16, .. })));
/// ```
pub fn encode_frame_limited(frame: &Frame, frame_bytes_max: usize) -> Result<Vec<u8>, WireError> {
    let mut bytes = Vec::new();
    encode_frame_into(frame, &mut bytes, frame_bytes_max)?;
    Ok(bytes)
}

/// Appends a frame body to `out` (the bytes [`encode_frame_limited`] returns), so that a
/// sender can encode straight into a connection's outgoing buffer. On an error (a value
/// that refuses to encode, a body longer than `frame_bytes_max`) `out` is left as it was.
///
/// ```
/// use hyperion::wire::{encode_frame, encode_frame_into, Frame, WireError};
/// let mut out = vec![9];
/// encode_frame_into(&Frame::KeepAlive, &mut out, 16).unwrap();
/// assert_eq!(out[1..], encode_frame(&Frame::KeepAlive).unwrap()[..]);
/// let named = Frame::NamedData {
///     name: "x".repeat(100),
///     from: hyperion::ProcessId { node: "127.0.0.1:1#1".parse().unwrap(), local: 1 },
///     fingerprint: hyperion::message::Fingerprint(0),
///     payload: Vec::new(),
/// };
/// assert!(matches!(encode_frame_into(&named, &mut out, 16), Err(WireError::FrameTooLong { .. })));
/// assert_eq!(out.len(), 2);
/// ```
pub fn encode_frame_into(
    frame: &Frame,
    out: &mut Vec<u8>,
    frame_bytes_max: usize,
) -> Result<(), WireError> {
    let start = out.len();
    match frame {
        Frame::Data {
            to,
            from,
            fingerprint,
            payload,
        } => data::encode_into(out, to, from, *fingerprint, payload),
        _ => {
            let encoded = bincode::serde::encode_into_std_write(
                frame,
                &mut *out,
                bincode::config::standard(),
            );
            if let Err(err) = encoded {
                out.truncate(start);
                return Err(WireError::Encode(err.to_string()));
            }
        }
    }
    let length = out.len() - start;
    if length > frame_bytes_max {
        out.truncate(start);
        return Err(WireError::FrameTooLong {
            length: length as u64,
            limit: frame_bytes_max,
        });
    }
    Ok(())
}

/// Appends the body of a data frame from `from` to `to` whose payload (the message's
/// encoding, of type `fingerprint`) a closure appends: the bytes [`encode_frame_into`]
/// writes for the same frame, without a buffer for the payload (see
/// `data::encode_with`). No limit is checked: the caller's queue does (see
/// [`FrameWriter::push_with`](crate::wire::FrameWriter::push_with)).
pub(crate) use data::encode_with as encode_data_frame_with;

/// The header of the last data frame [`encode_data_frame_with`] wrote, kept to be
/// copied for the next frame between the same processes with the same type.
pub(crate) use data::LastHeader as LastDataHeader;

/// Decodes a frame body that must be consumed exactly, under the default limit,
/// [`FRAME_BYTES_MAX`].
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, WireError> {
    decode_frame_limited(bytes, FRAME_BYTES_MAX)
}

/// Decodes a frame body that must be consumed exactly; a body longer than
/// `frame_bytes_max` is refused with [`WireError::FrameTooLong`]. What decoding may
/// allocate is bounded by the body's length (see
/// [`DECODE_CLAIM_BYTES_MIN`](crate::message::DECODE_CLAIM_BYTES_MIN)).
pub fn decode_frame_limited(bytes: &[u8], frame_bytes_max: usize) -> Result<Frame, WireError> {
    if bytes.len() > frame_bytes_max {
        return Err(WireError::FrameTooLong {
            length: bytes.len() as u64,
            limit: frame_bytes_max,
        });
    }
    if let Some(frame) = data::decode(bytes) {
        return Ok(frame);
    }
    decode_with_bincode(bytes)
}

/// Decodes a frame body it owns, under `frame_bytes_max` (see [`decode_frame_limited`]:
/// the same frames and the same errors). A data frame's payload keeps the body's
/// allocation (the header is moved out of the way), so a message from the network costs
/// one allocation less than with a copy.
///
/// ```
/// use hyperion::wire::{decode_frame_owned, encode_frame, Frame, FRAME_BYTES_MAX};
/// let frame = Frame::Data {
///     to: hyperion::ProcessId { node: "127.0.0.1:1#1".parse().unwrap(), local: 1 },
///     from: hyperion::ProcessId { node: "127.0.0.1:2#1".parse().unwrap(), local: 2 },
///     fingerprint: hyperion::message::Fingerprint(7),
///     payload: vec![1, 2, 3],
/// };
/// let body = encode_frame(&frame).unwrap();
/// assert_eq!(decode_frame_owned(body, FRAME_BYTES_MAX), Ok(frame));
/// ```
pub fn decode_frame_owned(bytes: Vec<u8>, frame_bytes_max: usize) -> Result<Frame, WireError> {
    FrameDecoder::new(frame_bytes_max).decode_owned(bytes)
}

/// Decodes the frame bodies of one stream in order, as [`decode_frame_owned`] does (the
/// same frames, the same errors), faster when consecutive data frames name the same
/// two processes, as a stream of messages from one process to another does: it keeps
/// the bytes of the last data frame's two process ids, and a frame that starts with the
/// same bytes has the same ids (parsing them reads those bytes and nothing else), so
/// they are compared, not parsed again (parsing them was a tenth of a receiving node's
/// CPU per message in `perf`, `bench_tcp` one way).
pub(crate) struct FrameDecoder {
    frame_bytes_max: usize,
    pids_seen: Option<data::PidsSeen>,
}

impl FrameDecoder {
    /// A decoder that refuses bodies longer than `frame_bytes_max`.
    pub(crate) fn new(frame_bytes_max: usize) -> FrameDecoder {
        FrameDecoder {
            frame_bytes_max,
            pids_seen: None,
        }
    }

    /// Refuses a body longer than the limit.
    fn check_length(&self, length: usize) -> Result<(), WireError> {
        if length > self.frame_bytes_max {
            return Err(WireError::FrameTooLong {
                length: length as u64,
                limit: self.frame_bytes_max,
            });
        }
        Ok(())
    }

    /// Decodes the stream's next body: what [`decode_frame_owned`] accepts and refuses,
    /// the process ids of a run of data frames between one pair parsed once.
    pub(crate) fn decode_owned(&mut self, bytes: Vec<u8>) -> Result<Frame, WireError> {
        self.check_length(bytes.len())?;
        match data::decode_owned_with(bytes, &mut self.pids_seen) {
            Ok(frame) => Ok(frame),
            Err(bytes) => decode_with_bincode(&bytes),
        }
    }
}

/// A data frame seen where its body lies: its header decoded, its payload borrowed.
pub(crate) struct DataFrame<'a> {
    pub(crate) to: ProcessId,
    pub(crate) from: ProcessId,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) payload: &'a [u8],
}

impl FrameDecoder {
    /// The data frame `bytes` hold exactly, its payload borrowed: `None` if they hold
    /// anything else (another frame, a malformed one, one over the limit), for
    /// [`decode_slice`](Self::decode_slice) to decode or refuse. The message path of a
    /// batch of frames: no `Frame`, no buffer for the payload as it was encoded.
    #[inline]
    pub(crate) fn data_frame<'a>(&mut self, bytes: &'a [u8]) -> Option<DataFrame<'a>> {
        self.check_length(bytes.len()).ok()?;
        let header = data::header_with(bytes, &mut self.pids_seen)?;
        Some(DataFrame {
            to: header.to,
            from: header.from,
            fingerprint: header.fingerprint,
            payload: &bytes[header.payload_start..],
        })
    }

    /// Decodes a body of the stream that [`data_frame`](Self::data_frame) did not take
    /// (a control frame, a malformed or oversized one), from where it lies (a
    /// [`FrameBatch`]'s buffer): what [`decode_owned`](Self::decode_owned) makes of
    /// it, the same frame or the same error.
    ///
    /// [`FrameBatch`]: super::FrameBatch
    pub(crate) fn decode_other(&self, bytes: &[u8]) -> Result<Frame, WireError> {
        self.check_length(bytes.len())?;
        decode_with_bincode(bytes)
    }
}

/// Any frame, through bincode; the body must be consumed exactly.
fn decode_with_bincode(bytes: &[u8]) -> Result<Frame, WireError> {
    let (frame, read) = crate::message::decode_from_slice_bounded(bytes)
        .map_err(|err| WireError::Malformed(err.to_string()))?;
    if read != bytes.len() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            bytes.len() - read
        )));
    }
    Ok(frame)
}

/// The data frame, by far the most frequent, encoded and decoded by hand: the same
/// bytes bincode's standard configuration writes for `Frame::Data` (variant index,
/// then each field; integers as varints, IP octets raw, the payload length-prefixed),
/// several times faster than going through serde. The decoder takes only what it is
/// sure bincode would read as the same frame and hands everything else (other frames,
/// malformed bytes) to bincode, so what is accepted, and every error, stays bincode's.
/// (bincode's allocation guard is sized by the input, with room for the headers: it
/// never refuses a data frame the input holds.)
mod data {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

    use super::Frame;
    use crate::message::Fingerprint;
    use crate::types::id::{NodeId, ProcessId};
    use crate::varint;

    /// The most a process id takes: an IPv6 address, a port, flow info and scope id, and
    /// two `u64`s.
    const PID_BYTES_MAX: usize = 1 + 16 + 3 + 5 + 5 + 9 + 9;

    /// The most a data frame's header takes: the variant index, two process ids, the
    /// fingerprint and the payload's length.
    const HEADER_BYTES_MAX: usize = 1 + 2 * PID_BYTES_MAX + 2 * varint::VARINT_BYTES_MAX;

    /// A data frame's header built on the stack, then appended to the queue in one
    /// copy: a `Vec::push` per byte checks the capacity each time (the header's varints
    /// were a hot spot of the sender in `perf`).
    struct HeaderBytes {
        bytes: [u8; HEADER_BYTES_MAX],
        len: usize,
    }

    // Every write below has a size known at compile time: a copy of a run-time
    // length would be a call to `memcpy` per field.
    impl HeaderBytes {
        #[inline(always)]
        fn array<const N: usize>(&mut self, bytes: [u8; N]) {
            self.bytes[self.len..self.len + N].copy_from_slice(&bytes);
            self.len += N;
        }

        #[inline(always)]
        fn byte(&mut self, byte: u8) {
            self.bytes[self.len] = byte;
            self.len += 1;
        }

        /// Room for the longest varint is always left: `HEADER_BYTES_MAX` counts every
        /// field at its longest, and the last field is a `u64`.
        #[inline(always)]
        fn varint(&mut self, value: u64) {
            let room: &mut [u8; varint::VARINT_BYTES_MAX] = (&mut self.bytes
                [self.len..self.len + varint::VARINT_BYTES_MAX])
                .try_into()
                .expect("a slice of VARINT_BYTES_MAX bytes");
            self.len += varint::write(room, value);
        }

        #[inline(always)]
        fn pid(&mut self, pid: &ProcessId) {
            // The node id's encoding (`WireNodeId`): variant index, then octets and
            // port, and for IPv6 the flow info and scope id.
            match pid.node.address {
                SocketAddr::V4(address) => {
                    self.byte(0);
                    self.array(address.ip().octets());
                    self.varint(u64::from(address.port()));
                }
                SocketAddr::V6(address) => {
                    self.byte(1);
                    self.array(address.ip().octets());
                    self.varint(u64::from(address.port()));
                    self.varint(u64::from(address.flowinfo()));
                    self.varint(u64::from(address.scope_id()));
                }
            }
            self.varint(pid.node.incarnation);
            self.varint(pid.local);
        }
    }

    /// Appends the data frame's body to `out`.
    pub(super) fn encode_into(
        out: &mut Vec<u8>,
        to: &ProcessId,
        from: &ProcessId,
        fingerprint: Fingerprint,
        payload: &[u8],
    ) {
        let mut header = header_before_length(to, from, fingerprint);
        header.varint(payload.len() as u64);
        out.reserve(header.len + payload.len());
        out.extend_from_slice(&header.bytes[..header.len]);
        out.extend_from_slice(payload);
    }

    /// The header of a data frame up to (not including) the payload's length.
    #[inline(always)]
    fn header_before_length(
        to: &ProcessId,
        from: &ProcessId,
        fingerprint: Fingerprint,
    ) -> HeaderBytes {
        let mut header = HeaderBytes {
            bytes: [0; HEADER_BYTES_MAX],
            len: 0,
        };
        header.byte(0); // Frame::Data
        header.pid(to);
        header.pid(from);
        header.varint(fingerprint.0);
        header
    }

    /// The header (up to the payload's length) of the data frame sent last, and what it
    /// encodes: a stream of messages between two processes, of one type, has the same
    /// header each time, copied rather than encoded again (encoding it was most of the
    /// sender's frame encoding in callgrind).
    pub(crate) struct LastHeader {
        to: ProcessId,
        from: ProcessId,
        fingerprint: Fingerprint,
        header: HeaderBytes,
    }

    /// Appends the body of a data frame whose payload `write_payload` appends: the
    /// header (copied from `last` if it is this frame's, else encoded and remembered
    /// there), then the payload encoded in place, after a one-byte length that is
    /// widened (the payload moved up) only if the payload turns out 251 bytes or
    /// longer. On an error `out` is left as it was. `payload_bytes_hint` is what to
    /// reserve for the payload (a guess is fine); `last` is the caller's memory of the
    /// last header, kept from one call to the next (start with `None`).
    #[inline]
    pub(crate) fn encode_with<E>(
        out: &mut Vec<u8>,
        last: &mut Option<LastHeader>,
        to: &ProcessId,
        from: &ProcessId,
        fingerprint: Fingerprint,
        payload_bytes_hint: usize,
        write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = out.len();
        let header = match last {
            Some(last)
                if last.to == *to && last.from == *from && last.fingerprint == fingerprint =>
            {
                &last.header
            }
            _ => {
                let header = header_before_length(to, from, fingerprint);
                &last
                    .insert(LastHeader {
                        to: *to,
                        from: *from,
                        fingerprint,
                        header,
                    })
                    .header
            }
        };
        // The whole array, then cut: a copy of a size known at compile time is a few
        // moves, one of the header's run-time length a call to `memcpy`.
        out.reserve(HEADER_BYTES_MAX + 1 + payload_bytes_hint);
        out.extend_from_slice(&header.bytes);
        out.truncate(start + header.len);
        let length_at = out.len();
        out.push(0);
        if let Err(err) = write_payload(out) {
            out.truncate(start);
            return Err(err);
        }
        let payload_start = length_at + 1;
        let payload_len = out.len() - payload_start;
        if payload_len <= usize::from(varint::SINGLE_BYTE_MAX) {
            out[length_at] = payload_len as u8;
            return Ok(());
        }
        let mut length = [0; varint::VARINT_BYTES_MAX];
        let length_len = varint::write(&mut length, payload_len as u64);
        // A payload this long costs a copy anyway (into the socket): moving it up once
        // more keeps the common short message free of any.
        let end = out.len();
        out.resize(end + length_len - 1, 0);
        out.copy_within(payload_start..end, length_at + length_len);
        out[length_at..length_at + length_len].copy_from_slice(&length[..length_len]);
        Ok(())
    }

    struct Reader<'a> {
        bytes: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            if self.bytes.len() < n {
                return None;
            }
            let (head, rest) = self.bytes.split_at(n);
            self.bytes = rest;
            Some(head)
        }

        fn byte(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }

        fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
            self.take(N).map(|b| b.try_into().expect("N bytes"))
        }

        fn u64(&mut self) -> Option<u64> {
            let (value, rest) = varint::split_u64(self.bytes)?;
            self.bytes = rest;
            Some(value)
        }

        fn u32(&mut self) -> Option<u32> {
            let (value, rest) = varint::split_u32(self.bytes)?;
            self.bytes = rest;
            Some(value)
        }

        fn u16(&mut self) -> Option<u16> {
            let (value, rest) = varint::split_u16(self.bytes)?;
            self.bytes = rest;
            Some(value)
        }

        fn pid(&mut self) -> Option<ProcessId> {
            let address = match self.byte()? {
                0 => {
                    let ip = Ipv4Addr::from(self.array::<4>()?);
                    SocketAddr::V4(SocketAddrV4::new(ip, self.u16()?))
                }
                1 => {
                    let ip = Ipv6Addr::from(self.array::<16>()?);
                    let port = self.u16()?;
                    let flowinfo = self.u32()?;
                    let scope_id = self.u32()?;
                    SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope_id))
                }
                _ => return None,
            };
            let incarnation = self.u64()?;
            let local = self.u64()?;
            Some(ProcessId {
                node: NodeId {
                    address,
                    incarnation,
                },
                local,
            })
        }
    }

    /// The bytes of a data frame's two process ids and what they decode to (see
    /// [`FrameDecoder`](super::FrameDecoder)).
    pub(super) struct PidsSeen {
        bytes: [u8; 2 * PID_BYTES_MAX],
        len: usize,
        to: ProcessId,
        from: ProcessId,
    }

    /// A data frame's header: everything but the payload, and where the payload starts.
    pub(super) struct Header {
        pub(super) to: ProcessId,
        pub(super) from: ProcessId,
        pub(super) fingerprint: Fingerprint,
        pub(super) payload_start: usize,
    }

    /// The header of the data frame `bytes` hold exactly, or `None` (not a data frame,
    /// or malformed), comparing the process ids' bytes with those of `seen` (and parsing
    /// them, then remembering them in `seen`, only if they differ).
    #[inline]
    pub(super) fn header_with(bytes: &[u8], seen: &mut Option<PidsSeen>) -> Option<Header> {
        let Some((&0, body)) = bytes.split_first() else {
            return None;
        };
        let (to, from, rest) = match seen {
            Some(seen) if body.get(..seen.len) == Some(&seen.bytes[..seen.len]) => {
                (seen.to, seen.from, &body[seen.len..])
            }
            _ => {
                let mut reader = Reader { bytes: body };
                let to = reader.pid()?;
                let from = reader.pid()?;
                let len = body.len() - reader.bytes.len();
                let mut remembered = PidsSeen {
                    bytes: [0; 2 * PID_BYTES_MAX],
                    len,
                    to,
                    from,
                };
                // Two ids take at most `2 * PID_BYTES_MAX` bytes: the reader read no more.
                remembered.bytes[..len].copy_from_slice(&body[..len]);
                *seen = Some(remembered);
                (to, from, reader.bytes)
            }
        };
        let mut reader = Reader { bytes: rest };
        let fingerprint = Fingerprint(reader.u64()?);
        let len = usize::try_from(reader.u64()?).ok()?;
        if reader.bytes.len() != len {
            return None;
        }
        Some(Header {
            to,
            from,
            fingerprint,
            payload_start: bytes.len() - len,
        })
    }

    /// The data frame `bytes` hold exactly, or `None` (not a data frame, or malformed).
    pub(super) fn decode(bytes: &[u8]) -> Option<Frame> {
        let header = header_with(bytes, &mut None)?;
        Some(Frame::Data {
            to: header.to,
            from: header.from,
            fingerprint: header.fingerprint,
            payload: bytes[header.payload_start..].to_vec(),
        })
    }

    /// [`decode`] of a body it owns, given the process ids of the stream's last data
    /// frame (see [`header_with`]): the payload is the body with the header removed (a
    /// move of the payload's bytes within the allocation, no new one). Anything but a
    /// well-formed data frame is handed back.
    pub(super) fn decode_owned_with(
        mut bytes: Vec<u8>,
        seen: &mut Option<PidsSeen>,
    ) -> Result<Frame, Vec<u8>> {
        let Some(header) = header_with(&bytes, seen) else {
            return Err(bytes);
        };
        bytes.drain(..header.payload_start);
        Ok(Frame::Data {
            to: header.to,
            from: header.from,
            fingerprint: header.fingerprint,
            payload: bytes,
        })
    }
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

    fn bincode_bytes(frame: &Frame) -> Vec<u8> {
        bincode::serde::encode_to_vec(frame, bincode::config::standard()).unwrap()
    }

    fn bincode_decode(bytes: &[u8]) -> Option<Frame> {
        let (frame, read) = crate::message::decode_from_slice_bounded(bytes).ok()?;
        (read == bytes.len()).then_some(frame)
    }

    #[test]
    fn a_data_frame_encoded_in_place_is_bincodes_at_every_length_width() {
        let one = ProcessId {
            node: "10.0.0.1:7000#12345678901".parse().unwrap(),
            local: 3,
        };
        let other = ProcessId {
            node: "[fe80::1%2]:251#1".parse().unwrap(),
            local: 70_000,
        };
        let mut last = None;
        // Either side of each varint width of the payload's length.
        for len in [0, 1, 250, 251, 252, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            // The remembered header is reused only for the same two processes in the
            // same order with the same fingerprint: each change must show.
            for (to, from, fingerprint) in [
                (one, other, Fingerprint(u64::MAX - len as u64)),
                (one, other, Fingerprint(u64::MAX - len as u64)),
                (one, other, Fingerprint(7)),
                (other, one, Fingerprint(7)),
                (other, other, Fingerprint(7)),
                (one, one, Fingerprint(7)),
            ] {
                let frame = Frame::Data {
                    to,
                    from,
                    fingerprint,
                    payload: payload.clone(),
                };
                // After bytes already queued, with a hint too small and one too large.
                for hint in [0, len + 100] {
                    let mut out = vec![9, 9];
                    encode_data_frame_with(
                        &mut out,
                        &mut last,
                        &to,
                        &from,
                        fingerprint,
                        hint,
                        |out| {
                            out.extend_from_slice(&payload);
                            Ok::<(), ()>(())
                        },
                    )
                    .unwrap();
                    assert_eq!(out[..2], [9, 9]);
                    assert_eq!(
                        out[2..],
                        bincode_bytes(&frame)[..],
                        "payload of {len} bytes"
                    );
                }
            }
        }
        let mut out = vec![9, 9];
        let failed = encode_data_frame_with(
            &mut out,
            &mut last,
            &one,
            &other,
            Fingerprint(1),
            0,
            |out| {
                out.extend_from_slice(&[1; 300]);
                Err("refused")
            },
        );
        assert_eq!(failed, Err("refused"));
        assert_eq!(out, [9, 9]);
    }

    #[test]
    fn the_hand_written_data_frame_codec_is_bincodes() {
        let edges = [
            0,
            1,
            250,
            251,
            252,
            65_535,
            65_536,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ];
        let addresses: [std::net::SocketAddr; 6] = [
            "10.0.0.1:7000".parse().unwrap(),
            "127.0.0.1:250".parse().unwrap(),
            "[::1]:65535".parse().unwrap(),
            "[fe80::1]:251".parse().unwrap(),
            "[fe80::1%2]:251".parse().unwrap(),
            std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                "fe80::2".parse().unwrap(),
                7000,
                0x000f_ffff,
                u32::MAX,
            )),
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..300 {
            let mut value = || {
                let r = next();
                if r % 3 == 0 {
                    edges[(r >> 8) as usize % edges.len()]
                } else {
                    r >> (r % 64)
                }
            };
            let pid = |v: &mut dyn FnMut() -> u64| ProcessId {
                node: crate::NodeId {
                    address: addresses[v() as usize % addresses.len()],
                    incarnation: v(),
                },
                local: v(),
            };
            let to = pid(&mut value);
            let from = pid(&mut value);
            let fingerprint = Fingerprint(value());
            let len = [0, 1, 250, 251, 300, 70_000][round % 6];
            let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ (round as u8)).collect();
            let frame = Frame::Data {
                to,
                from,
                fingerprint,
                payload,
            };
            let bytes = encode_frame(&frame).unwrap();
            assert_eq!(bytes, bincode_bytes(&frame));
            assert_eq!(decode_frame(&bytes), Ok(frame.clone()));
            assert_eq!(data::decode(&bytes), Some(frame));
            // Mutations and truncations: the fast path takes nothing bincode would
            // refuse or read differently.
            for _ in 0..8 {
                let mut mutated = bytes.clone();
                let at = next() as usize % mutated.len().min(80);
                mutated[at] = next() as u8;
                let cut = next() as usize % mutated.len();
                for candidate in [&mutated[..], &mutated[..cut]] {
                    if let Some(fast) = data::decode(candidate) {
                        assert_eq!(Some(fast), bincode_decode(candidate), "{candidate:?}");
                    }
                }
                assert_eq!(data::decode(&bytes[..cut]), None);
                assert!(decode_frame(&bytes[..cut]).is_err());
            }
        }
    }

    /// One encoding of a node id: the hello's (flow info and scope id kept) and the
    /// frames' agree, on the hand-written data path and through bincode alike.
    #[test]
    fn a_scoped_ipv6_node_id_survives_every_frame_and_the_hello() {
        let address = std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            7000,
            5,
            3,
        ));
        let node = crate::NodeId {
            address,
            incarnation: 0x2a,
        };
        let pid = ProcessId { node, local: 4 };
        let frames = [
            Frame::Data {
                to: pid,
                from: pid,
                fingerprint: Fingerprint(1),
                payload: vec![1, 2, 3],
            },
            Frame::NamedData {
                name: "master".into(),
                from: pid,
                fingerprint: Fingerprint(1),
                payload: Vec::new(),
            },
            Frame::Control(Control::Link {
                linker: pid,
                target: pid,
            }),
        ];
        for frame in frames {
            let bytes = encode_frame(&frame).unwrap();
            assert_eq!(decode_frame(&bytes), Ok(frame.clone()));
            assert_eq!(bincode_decode(&bytes), Some(frame));
        }
        let hello = crate::wire::handshake::Hello {
            version: crate::wire::handshake::PROTOCOL_VERSION,
            role: crate::wire::handshake::Role::Initiator,
            node,
            nonce: crate::wire::handshake::Nonce([0; 32]),

            build: crate::build_id::BuildId::fixed(),
        };
        let from_hello = crate::wire::handshake::Hello::decode(&hello.encode())
            .unwrap()
            .node;
        assert_eq!(from_hello, node);
    }

    #[test]
    fn an_owned_data_frame_keeps_the_body_allocation_for_its_payload() {
        let pid = ProcessId {
            node: crate::NodeId {
                address: "10.0.0.1:7000".parse().unwrap(),
                incarnation: 3,
            },
            local: 4,
        };
        let frame = Frame::Data {
            to: pid,
            from: pid,
            fingerprint: Fingerprint(9),
            payload: (0..300).map(|i| i as u8).collect(),
        };
        let body = encode_frame(&frame).unwrap();
        let allocation = body.as_ptr();
        let decoded = decode_frame_owned(body, FRAME_BYTES_MAX).unwrap();
        let Frame::Data { ref payload, .. } = decoded else {
            panic!("a data frame")
        };
        assert_eq!(payload.as_ptr(), allocation, "the payload was copied");
        assert_eq!(decoded, frame);
    }

    #[test]
    fn an_owned_body_decodes_and_refuses_as_a_borrowed_one() {
        let pid = ProcessId {
            node: crate::NodeId {
                address: "[::1]:7000".parse().unwrap(),
                incarnation: 3,
            },
            local: 4,
        };
        let frames = [
            Frame::Data {
                to: pid,
                from: pid,
                fingerprint: Fingerprint(9),
                payload: vec![1, 2, 3],
            },
            Frame::KeepAlive,
            Frame::Control(Control::Link {
                linker: pid,
                target: pid,
            }),
        ];
        for frame in frames {
            let bytes = encode_frame(&frame).unwrap();
            for cut in 0..=bytes.len() {
                let body = bytes[..cut].to_vec();
                assert_eq!(
                    decode_frame_owned(body.clone(), FRAME_BYTES_MAX),
                    decode_frame(&body)
                );
            }
            assert_eq!(
                decode_frame_owned(bytes.clone(), bytes.len() - 1),
                decode_frame_limited(&bytes, bytes.len() - 1)
            );
            let mut out = vec![7];
            encode_frame_into(&frame, &mut out, FRAME_BYTES_MAX).unwrap();
            assert_eq!(out[1..], bytes[..]);
        }
    }

    /// A stream decoder that remembers the last data frame's process ids decodes and
    /// refuses every body as the stateless decoder does, whatever came before: runs of
    /// one pair, pairs that change, ids whose bytes share a prefix, truncated and
    /// mutated bodies, other frames in between.
    #[test]
    fn a_stream_decoder_decodes_each_body_as_the_stateless_one() {
        let pid = |address: &str, incarnation: u64, local: u64| ProcessId {
            node: crate::NodeId {
                address: address.parse().unwrap(),
                incarnation,
            },
            local,
        };
        let pids = [
            pid("10.0.0.1:7000", 3, 4),
            pid("10.0.0.1:7000", 3, 5),
            pid("10.0.0.1:7000", u64::MAX, 4),
            pid("[fe80::1%2]:251", 3, 300),
            pid("10.0.0.2:7000", 3, 4),
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX);
        for round in 0..3_000 {
            let r = next();
            let frame = match r % 8 {
                0 => Frame::KeepAlive,
                1 => Frame::Control(Control::Link {
                    linker: pids[0],
                    target: pids[1],
                }),
                _ => Frame::Data {
                    // Mostly one pair, as a stream of messages is.
                    to: pids[if r % 5 == 0 { (r >> 8) as usize % 5 } else { 0 }],
                    from: pids[if r % 7 == 0 {
                        (r >> 16) as usize % 5
                    } else {
                        1
                    }],
                    fingerprint: Fingerprint(r >> 40),
                    payload: vec![round as u8; (r >> 24) as usize % 70],
                },
            };
            let mut body = encode_frame(&frame).unwrap();
            match (r >> 32) % 6 {
                0 => {
                    let at = next() as usize % body.len();
                    body[at] = next() as u8;
                }
                1 => body.truncate(next() as usize % body.len()),
                _ => {}
            }
            assert_eq!(
                decoder.decode_owned(body.clone()),
                decode_frame_owned(body.clone(), FRAME_BYTES_MAX),
                "{body:?}"
            );
        }
        let mut limited = FrameDecoder::new(3);
        let body = encode_frame(&Frame::Control(Control::Unmonitor {
            monitor_ref: MonitorRef {
                target: pids[0],
                id: 1,
            },
        }))
        .unwrap();
        assert_eq!(
            limited.decode_owned(body.clone()),
            decode_frame_owned(body, 3)
        );
    }

    #[test]
    fn non_canonical_varints_still_decode_as_bincode_reads_them() {
        let pid = ProcessId {
            node: crate::NodeId {
                address: "10.0.0.1:7000".parse().unwrap(),
                incarnation: 3,
            },
            local: 4,
        };
        // local 4 written as a u16 varint (251, 4, 0).
        let mut bytes = vec![0, 0, 10, 0, 0, 1, 251, 0x58, 0x1b, 3, 251, 4, 0];
        bytes.extend_from_slice(&[0, 10, 0, 0, 1, 251, 0x58, 0x1b, 3, 4, 9, 2, 1, 2]);
        let expected = Frame::Data {
            to: pid,
            from: pid,
            fingerprint: Fingerprint(9),
            payload: vec![1, 2],
        };
        assert_eq!(bincode_decode(&bytes), Some(expected.clone()));
        assert_eq!(decode_frame(&bytes), Ok(expected));
    }
}
