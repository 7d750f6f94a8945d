//! The message envelope: what sits in a mailbox or crosses the network.
//!
//! A [`Message`] holds either a local value (sent between processes of one node: no
//! encoding, no copy) or encoded bytes with the [`Fingerprint`] of their type (received
//! from another node, decoded lazily by the receive that wants that type). A typed
//! match only ever sees a message whose type is exactly the one it asks for: a local
//! value is checked by its `TypeId`, an encoded one by its fingerprint and a decode
//! that must succeed.
//!
//! A local value of a primitive type is held in the envelope itself (see `inline`);
//! a few values the node itself sends in bulk (monitor notifications) are packed (see
//! `packed`); any other is boxed. All leave the envelope through checked downcasts: no
//! `unsafe`.

mod inline;
mod packed;
mod shape;

pub(crate) use packed::Packable;

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The least a decode may claim (bincode's allocation accounting), in bytes: what a
/// short input may make the decoder allocate before it finds the input too short.
///
/// The size of what a node decodes is bounded by the frame it came in, and frames by the
/// transport's configured `frame_bytes_max`. The decoder's allocation guard follows the
/// input: it may claim the larger of this and the input's length, rounded up to the
/// next of a few steps (a factor of four apart), so that a value that fits in a frame
/// also decodes, and a short input claiming a huge container is refused before
/// anything that large is allocated.
pub const DECODE_CLAIM_BYTES_MIN: usize = 16 * 1024 * 1024;

/// What a value needs to travel in a message: it can be encoded, decoded, and moved
/// between threads. Implemented for every such type.
pub trait Serializable: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Serializable for T {}

/// A stable identifier of a message type.
///
/// Equal for one type in every process of one build, different between types: it is
/// a 64-bit FNV-1a hash of the type's full path (`std::any::type_name`), which unlike
/// `TypeId` does not change between processes, and of the shape of its serde encoding
/// (its fields in order, its variants and their payloads), so that two builds in which
/// a type of one name gained, lost or reordered a field do not take each other's
/// messages for that type. The shape is traced once per type and process, then cached
/// (see [`Fingerprint::of`]). Two builds that name a type differently (a renamed
/// module, another crate version) do not interoperate.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// The fingerprint of `T`: its name and the shape of its serde encoding. The first
    /// call for a type in a process traces its `Deserialize` implementation; later
    /// calls read a per-thread cache. A type whose shape cannot be traced (a custom
    /// `Deserialize` that validates what it reads, one that calls `deserialize_any`)
    /// has its [name-only](Fingerprint::of_name) fingerprint, with a debug log.
    ///
    /// ```
    /// use hyperion::message::Fingerprint;
    /// assert_eq!(Fingerprint::of::<u64>(), Fingerprint::of::<u64>());
    /// assert_ne!(Fingerprint::of::<u64>(), Fingerprint::of::<String>());
    /// ```
    #[inline]
    pub fn of<T: DeserializeOwned + 'static>() -> Fingerprint {
        shape::of::<T>()
    }

    /// The fingerprint of `T`'s name alone: what [`Fingerprint::of`] falls back to when
    /// it cannot trace the type's shape.
    ///
    /// ```
    /// use hyperion::message::Fingerprint;
    /// assert_ne!(Fingerprint::of_name::<u64>(), Fingerprint::of_name::<u32>());
    /// ```
    pub fn of_name<T: ?Sized + 'static>() -> Fingerprint {
        Fingerprint(fnv1a(std::any::type_name::<T>().as_bytes()))
    }

    /// The fingerprint a type named `name` with `T`'s shape has: what another build of
    /// the program, in which the type of that name has `T`'s fields, computes for it.
    /// Traced at each call (not cached): for tests and simulations of mixed builds.
    ///
    /// ```
    /// use hyperion::message::Fingerprint;
    /// #[derive(serde::Deserialize)]
    /// struct Old { id: u32 }
    /// #[derive(serde::Deserialize)]
    /// struct New { id: u32, note: String }
    /// assert_ne!(Fingerprint::of_as::<Old>("app::Job"), Fingerprint::of_as::<New>("app::Job"));
    /// ```
    pub fn of_as<T: DeserializeOwned>(name: &str) -> Fingerprint {
        shape::named::<T>(name)
    }

    /// The fingerprint of the type named `name` (as `std::any::type_name` spells it) if
    /// this process computed it with [`Fingerprint::of`], else the fingerprint of the
    /// name alone.
    pub fn of_type_name(name: &str) -> Fingerprint {
        shape::of_type_name(name).unwrap_or_else(|| Fingerprint(fnv1a(name.as_bytes())))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({:016x})", self.0)
    }
}

/// FNV-1a's initial state.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_extend(FNV_OFFSET, bytes)
}

/// Continues an FNV-1a hash in state `hash` over `bytes`.
fn fnv1a_extend(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The serializer refused the value.
    Encode(String),
    /// The bytes are not a valid encoding of the expected type, or would make the
    /// decoder claim more than its guard allows (see [`DECODE_CLAIM_BYTES_MIN`]).
    Decode(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Encode(why) => write!(f, "cannot encode message: {why}"),
            CodecError::Decode(why) => write!(f, "cannot decode message: {why}"),
        }
    }
}

impl std::error::Error for CodecError {}

#[cfg(test)]
fn codec_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_CLAIM_BYTES_MIN>()
}

/// Decodes a `T` from the front of `bytes` with bincode's standard configuration, its
/// allocation guard sized by the input (see [`DECODE_CLAIM_BYTES_MIN`]); returns the
/// value and the bytes read. Every decoder of network bytes goes through here.
pub(crate) fn decode_from_slice_bounded<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    use bincode::config::standard;
    use bincode::serde::decode_from_slice;
    const MIB: usize = 1024 * 1024;
    // What a value claims beyond its input's length: integers are claimed at their
    // native size however short their varint, and headers are a few of them.
    const HEADER_CLAIM_BYTES: usize = 4096;
    // Constants, because bincode takes its limit as a type parameter; a few steps keep
    // the code generated per decoded type small.
    match bytes.len().saturating_add(HEADER_CLAIM_BYTES) {
        length if length <= DECODE_CLAIM_BYTES_MIN => {
            decode_from_slice(bytes, standard().with_limit::<DECODE_CLAIM_BYTES_MIN>())
        }
        length if length <= 64 * MIB => {
            decode_from_slice(bytes, standard().with_limit::<{ 64 * MIB }>())
        }
        length if length <= 256 * MIB => {
            decode_from_slice(bytes, standard().with_limit::<{ 256 * MIB }>())
        }
        length if length <= 1024 * MIB => {
            decode_from_slice(bytes, standard().with_limit::<{ 1024 * MIB }>())
        }
        // A frame's length prefix is 32 bits: nothing from the network is longer.
        _ => decode_from_slice(bytes, standard().with_limit::<{ u32::MAX as usize }>()),
    }
}

/// Encodes `value` with the runtime's codec (bincode 2, standard configuration).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// What [`Message::encoded_bytes_hint`] guesses for a value not yet encoded: room for
/// a primitive or a short vector, so that most need no second allocation.
const ENCODED_BYTES_GUESS: usize = 16;

/// Appends the encoding of `value` to `out` (the bytes [`encode`] returns); on an error
/// `out` is left as it was. Lets a caller reuse one buffer for many values.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let before = out.len();
    bincode::serde::encode_into_writer(value, VecSink(out), bincode::config::standard()).map_err(
        |err| {
            out.truncate(before);
            CodecError::Encode(err.to_string())
        },
    )
}

/// bincode's writer over a caller's `Vec` (its own `encode_to_vec` starts from an empty
/// one and reallocates as it grows).
struct VecSink<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecSink<'_> {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a `T` that must fill `bytes` exactly, with an allocation guard sized by the
/// input (see [`DECODE_CLAIM_BYTES_MIN`]).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) =
        decode_from_slice_bounded(bytes).map_err(|err| CodecError::Decode(err.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError::Decode(format!(
            "{} trailing bytes after the value",
            bytes.len() - read
        )));
    }
    Ok(value)
}

/// A value held in a local message: it can still be encoded if the message is
/// forwarded to another node.
trait LocalValue: Send {
    fn value_type(&self) -> TypeId;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn fingerprint(&self) -> Fingerprint;
    fn type_name(&self) -> &'static str;
    fn encode(&self) -> Result<Vec<u8>, CodecError>;
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;
}

impl<T: Serializable> LocalValue for T {
    fn value_type(&self) -> TypeId {
        TypeId::of::<T>()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of::<T>()
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }
    fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        inline::encode_value(self, out)
    }
}

/// `Vec<u8>`, the usual type of raw data, encoded and decoded in one copy: serde sees it
/// as a sequence and has bincode handle it one byte at a time. The bytes are bincode's
/// (a varint length, then the bytes); the decoder takes only what bincode would read
/// as the same vector and leaves everything else (errors included) to bincode.
mod bytes {
    use crate::varint;

    /// Appends `bytes` as bincode writes a byte vector: its length, then the bytes.
    pub(super) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
        out.reserve(varint::VARINT_BYTES_MAX + bytes.len());
        varint::put(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// Where the vector's bytes start in `encoded`, if it holds exactly one vector.
    /// (bincode's guard, sized by the input, always allows a vector the input holds.)
    pub(super) fn body_offset(encoded: &[u8]) -> Option<usize> {
        let (length, body) = varint::split_u64(encoded)?;
        (length == body.len() as u64).then_some(encoded.len() - body.len())
    }

    #[cfg(test)]
    pub(super) fn decode(encoded: &[u8]) -> Option<Vec<u8>> {
        body_offset(encoded).map(|offset| encoded[offset..].to_vec())
    }
}

enum Payload {
    /// A local value of a primitive type, without an allocation.
    Inline(inline::Inline),
    /// A local value packed into a shared part and two words (see `packed`).
    Packed(packed::Packed),
    /// Any other local value.
    Local(Box<dyn LocalValue>),
    Encoded {
        fingerprint: Fingerprint,
        bytes: Vec<u8>,
        /// The type the bytes failed to decode as, once they did: never decoded again,
        /// and a receive that scans past drops the message.
        undecodable: Option<&'static str>,
    },
}

impl Payload {
    /// A local value: inline if it is a primitive or a byte vector, boxed otherwise.
    #[inline(always)]
    fn local<T: Serializable>(value: T) -> Payload {
        match inline::Inline::new(value) {
            Ok(value) => Payload::Inline(value),
            Err(value) => Payload::Local(Box::new(value)),
        }
    }
}

/// One message: a value of some [`Serializable`] type, local or encoded.
///
/// ```
/// use hyperion::message::Message;
/// let message = Message::new(42u64);
/// assert!(message.is::<u64>());
/// assert!(!message.is::<u32>());
/// assert_eq!(message.downcast::<u64>().ok(), Some(42));
/// ```
pub struct Message {
    payload: Payload,
}

impl Message {
    /// Wraps a local value. Nothing is encoded until the message leaves the node.
    pub fn new<T: Serializable>(value: T) -> Message {
        Message {
            payload: Payload::local(value),
        }
    }

    /// A local value in its packed form: no allocation. The node's own bulk values
    /// (a monitor notification of a normal exit) are sent this way.
    pub(crate) fn packed<P: Packable>(shared: Arc<P::Shared>, words: [u64; 2]) -> Message {
        Message {
            payload: Payload::Packed(packed::Packed::new::<P>(shared, words)),
        }
    }

    /// A message received from the network: bytes said to encode a value of the type
    /// with this fingerprint. They are decoded only when a receive asks for that type,
    /// except a primitive or a byte vector (see `inline`), decoded at once into the
    /// envelope: that costs no allocation, and a receive takes it from the mailbox's
    /// head without decoding or scanning (bytes that claim such a type but do not
    /// decode as it stay encoded, and are dropped as any undecodable message is).
    pub fn from_encoded(fingerprint: Fingerprint, bytes: Vec<u8>) -> Message {
        match inline::Inline::decode(fingerprint, inline::Encoded::Owned(bytes)) {
            Ok(value) => Message {
                payload: Payload::Inline(value),
            },
            Err(inline::Encoded::Owned(bytes)) => Message::encoded(fingerprint, bytes),
            Err(inline::Encoded::Borrowed(_)) => unreachable!("given owned, handed back owned"),
        }
    }

    /// [`from_encoded`](Self::from_encoded) of bytes where they lie (in a batch of
    /// frames): copied only if they stay encoded, a byte vector's bytes copied into an
    /// allocation of their exact size.
    pub(crate) fn from_encoded_slice(fingerprint: Fingerprint, bytes: &[u8]) -> Message {
        match inline::Inline::decode(fingerprint, inline::Encoded::Borrowed(bytes)) {
            Ok(value) => Message {
                payload: Payload::Inline(value),
            },
            Err(_) => Message::encoded(fingerprint, bytes.to_vec()),
        }
    }

    fn encoded(fingerprint: Fingerprint, bytes: Vec<u8>) -> Message {
        Message {
            payload: Payload::Encoded {
                fingerprint,
                bytes,
                undecodable: None,
            },
        }
    }

    /// The fingerprint of the message's type.
    pub fn fingerprint(&self) -> Fingerprint {
        match &self.payload {
            Payload::Inline(value) => value.fingerprint(),
            Payload::Packed(value) => value.fingerprint(),
            Payload::Local(value) => value.fingerprint(),
            Payload::Encoded { fingerprint, .. } => *fingerprint,
        }
    }

    /// The type's name, for a local value; `None` for bytes not yet decoded.
    pub fn type_name(&self) -> Option<&'static str> {
        match &self.payload {
            Payload::Inline(value) => Some(value.type_name()),
            Payload::Packed(value) => Some(value.type_name()),
            Payload::Local(value) => Some(value.type_name()),
            Payload::Encoded { .. } => None,
        }
    }

    /// Whether the message claims to hold a `T` (for encoded bytes: their fingerprint is
    /// `T`'s; they may still fail to decode).
    pub fn is<T: Serializable>(&self) -> bool {
        match &self.payload {
            Payload::Inline(value) => value.value_type() == TypeId::of::<T>(),
            Payload::Packed(value) => value.value_type() == TypeId::of::<T>(),
            Payload::Local(value) => value.value_type() == TypeId::of::<T>(),
            Payload::Encoded {
                fingerprint,
                undecodable,
                ..
            } => undecodable.is_none() && *fingerprint == Fingerprint::of::<T>(),
        }
    }

    /// Whether the value is a `T`, decoding encoded bytes in place (once) to make sure.
    /// The check a typed match makes.
    #[inline]
    pub fn accepts<T: Serializable>(&mut self) -> bool {
        match &self.payload {
            Payload::Inline(value) => value.value_type() == TypeId::of::<T>(),
            Payload::Packed(value) => value.value_type() == TypeId::of::<T>(),
            Payload::Local(value) => value.value_type() == TypeId::of::<T>(),
            Payload::Encoded { .. } => self.peek::<T>().is_some(),
        }
    }

    /// A reference to the value if it is a `T`, decoding encoded bytes in place (once).
    ///
    /// Bytes that carry `T`'s fingerprint but do not decode as `T` are logged and
    /// treated as not a `T`.
    pub fn peek<T: Serializable>(&mut self) -> Option<&T> {
        if !self.is::<T>() {
            return None;
        }
        if let Payload::Packed(value) = &self.payload {
            // Borrowed: the value needs a place to live, the box a boxed one has.
            self.payload = Payload::Local(value.boxed());
        }
        if let Payload::Encoded {
            bytes, undecodable, ..
        } = &mut self.payload
        {
            // (A byte vector or a primitive that decodes was decoded on arrival:
            // `from_encoded`.)
            match decode::<T>(bytes) {
                Ok(value) => self.payload = Payload::local(value),
                Err(err) => {
                    // Once: marked, it is neither decoded nor logged again, and the
                    // next receive scanning past it drops it.
                    tracing::warn!(
                        expected = std::any::type_name::<T>(),
                        %err,
                        "message with a matching fingerprint failed to decode; dropping it"
                    );
                    *undecodable = Some(std::any::type_name::<T>());
                    return None;
                }
            }
        }
        self.peek_local()
    }

    /// What `inspect` makes of the value if it is a `T`, without boxing a packed one
    /// (as [`peek`](Message::peek) would): for the node's own scans of a mailbox.
    pub(crate) fn inspect<T: Serializable, R>(
        &mut self,
        inspect: impl FnOnce(&T) -> R,
    ) -> Option<R> {
        if let Payload::Packed(value) = &self.payload {
            return value.unpack::<T>().map(|value| inspect(&value));
        }
        self.peek::<T>().map(inspect)
    }

    /// The type encoded bytes failed to decode as, if they did (such a message is
    /// dropped by the next receive that scans past it).
    pub(crate) fn undecodable(&self) -> Option<&'static str> {
        match &self.payload {
            Payload::Encoded { undecodable, .. } => *undecodable,
            Payload::Inline(_) | Payload::Packed(_) | Payload::Local(_) => None,
        }
    }

    fn peek_local<T: Serializable>(&self) -> Option<&T> {
        match &self.payload {
            Payload::Inline(value) => value.as_any().downcast_ref::<T>(),
            Payload::Local(value) => value.as_any().downcast_ref::<T>(),
            Payload::Packed(_) | Payload::Encoded { .. } => None,
        }
    }

    /// Whether the envelope itself holds the value and it is a `T` (no decoding, no
    /// box): the receive hot path's check before it takes the message.
    #[inline(always)]
    pub(crate) fn holds_inline<T: 'static>(&self) -> bool {
        match &self.payload {
            Payload::Inline(value) => value.value_type() == std::any::TypeId::of::<T>(),
            Payload::Packed(_) | Payload::Local(_) | Payload::Encoded { .. } => false,
        }
    }

    /// The value of a message that [`holds_inline`](Self::holds_inline) a `T`.
    #[inline(always)]
    pub(crate) fn into_inline<T: 'static>(self) -> Option<T> {
        match self.payload {
            Payload::Inline(value) => value.into_value::<T>().ok(),
            Payload::Packed(_) | Payload::Local(_) | Payload::Encoded { .. } => None,
        }
    }

    /// The value if it is a `T`, otherwise the message back unchanged.
    #[inline]
    pub fn downcast<T: Serializable>(self) -> Result<T, Message> {
        // Each local form checks the type once, as it takes the value out (a receive
        // calls this on the message its match accepted: a check before would be a
        // second one on the message hot path).
        match self.payload {
            Payload::Inline(value) => value.into_value::<T>().map_err(|value| Message {
                payload: Payload::Inline(value),
            }),
            Payload::Packed(value) => match value.unpack::<T>() {
                Some(value) => Ok(value),
                None => Err(Message {
                    payload: Payload::Packed(value),
                }),
            },
            // The type is checked before the box becomes a `Box<dyn Any>`: a failed
            // downcast of that could not be made a message again. The downcast after
            // it is checked too, not `Box::from_raw`: the second check costs nothing
            // measurable (bench_local's "envelope cast" line).
            Payload::Local(value) if value.value_type() == TypeId::of::<T>() => {
                match value.into_any().downcast::<T>() {
                    Ok(value) => Ok(*value),
                    Err(_) => unreachable!("the value's type was checked to be T"),
                }
            }
            payload @ Payload::Local(_) => Err(Message { payload }),
            payload @ Payload::Encoded { .. } => Message { payload }.decode_then_downcast(),
        }
    }

    /// [`downcast`](Message::downcast) of encoded bytes: decoded first (if they are a
    /// `T`), then taken out as a local value.
    #[inline(never)]
    fn decode_then_downcast<T: Serializable>(mut self) -> Result<T, Message> {
        if !self.accepts::<T>() {
            return Err(self);
        }
        match self.payload {
            Payload::Encoded { .. } => unreachable!("accepts decoded the payload"),
            payload => Message { payload }.downcast(),
        }
    }

    /// The fingerprint and encoded bytes of the value, for sending to another node.
    pub fn encode(&self) -> Result<(Fingerprint, Vec<u8>), CodecError> {
        match &self.payload {
            Payload::Inline(value) => {
                let mut bytes = Vec::new();
                value.encode_into(&mut bytes)?;
                Ok((value.fingerprint(), bytes))
            }
            Payload::Packed(value) => {
                let mut bytes = Vec::new();
                value.encode_into(&mut bytes)?;
                Ok((value.fingerprint(), bytes))
            }
            Payload::Local(value) => Ok((value.fingerprint(), value.encode()?)),
            Payload::Encoded {
                fingerprint, bytes, ..
            } => Ok((*fingerprint, bytes.clone())),
        }
    }

    /// Appends the encoded bytes of the value to `out` (left as it was on an error) and
    /// returns its fingerprint: [`encode`](Message::encode) into a buffer the caller
    /// reuses.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<Fingerprint, CodecError> {
        match &self.payload {
            Payload::Inline(value) => {
                value.encode_into(out)?;
                Ok(value.fingerprint())
            }
            Payload::Packed(value) => {
                value.encode_into(out)?;
                Ok(value.fingerprint())
            }
            Payload::Local(value) => {
                value.encode_into(out)?;
                Ok(value.fingerprint())
            }
            Payload::Encoded {
                fingerprint, bytes, ..
            } => {
                out.extend_from_slice(bytes);
                Ok(*fingerprint)
            }
        }
    }

    /// Appends the message's encoding to `out`, as [`encode_into`](Message::encode_into)
    /// does, without computing its fingerprint (a caller that wrote it already).
    #[inline]
    pub(crate) fn encode_value_into(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match &self.payload {
            Payload::Inline(value) => value.encode_into(out),
            Payload::Packed(value) => value.encode_into(out),
            Payload::Local(value) => value.encode_into(out),
            Payload::Encoded { bytes, .. } => {
                out.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// About how many bytes the message encodes to: exact when it is already encoded,
    /// a small guess otherwise (for reserving room before encoding in place).
    #[inline]
    pub(crate) fn encoded_bytes_hint(&self) -> usize {
        match &self.payload {
            Payload::Encoded { bytes, .. } => bytes.len(),
            _ => ENCODED_BYTES_GUESS,
        }
    }

    /// Consumes the message into its fingerprint and encoded bytes, without a copy when it
    /// is already encoded.
    pub fn into_encoded(self) -> Result<(Fingerprint, Vec<u8>), CodecError> {
        match self.payload {
            Payload::Inline(_) | Payload::Packed(_) => self.encode(),
            Payload::Local(value) => Ok((value.fingerprint(), value.encode()?)),
            Payload::Encoded {
                fingerprint, bytes, ..
            } => Ok((fingerprint, bytes)),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.payload {
            Payload::Inline(value) => write!(f, "Message({})", value.type_name()),
            Payload::Packed(value) => write!(f, "Message({})", value.type_name()),
            Payload::Local(value) => write!(f, "Message({})", value.type_name()),
            Payload::Encoded {
                fingerprint, bytes, ..
            } => {
                write!(f, "Message({fingerprint:?}, {} bytes)", bytes.len())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Ping(u32);
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Pong(u32);

    #[test]
    fn encoded_message_decodes_only_as_its_own_type() {
        let (fingerprint, bytes) = Message::new(Ping(7)).encode().unwrap();
        let mut message = Message::from_encoded(fingerprint, bytes);
        assert!(message.peek::<Pong>().is_none());
        assert_eq!(message.peek::<Ping>(), Some(&Ping(7)));
        assert_eq!(message.downcast::<Ping>().unwrap(), Ping(7));
    }

    #[test]
    fn garbage_with_a_matching_fingerprint_is_not_a_match() {
        let mut message = Message::from_encoded(Fingerprint::of::<String>(), vec![0xff; 3]);
        assert!(message.peek::<String>().is_none());
        assert!(message.downcast::<String>().is_err());
    }

    #[test]
    fn byte_vectors_take_the_short_way_to_bincodes_bytes() {
        for length in [0, 1, 250, 251, 300, 65_535, 65_536, 70_000] {
            let value: Vec<u8> = (0..length).map(|i| (i * 7) as u8).collect();
            let generic = bincode::serde::encode_to_vec(&value, codec_config()).unwrap();
            let mut short = Vec::new();
            bytes::encode_into(&value, &mut short);
            assert_eq!(short, generic);
            let (fingerprint, encoded) = Message::new(value.clone()).encode().unwrap();
            assert_eq!(encoded, generic);
            assert_eq!(bytes::decode(&generic), Some(value.clone()));
            let mut message = Message::from_encoded(fingerprint, generic.clone());
            assert_eq!(message.peek::<Vec<u8>>(), Some(&value));
            // Whatever the short way takes, bincode reads the same.
            for cut in 0..generic.len().min(8) {
                let mut mutated = generic.clone();
                mutated[cut] ^= 0x5a;
                if let Some(short) = bytes::decode(&mutated) {
                    assert_eq!(decode::<Vec<u8>>(&mutated), Ok(short));
                }
                assert_eq!(bytes::decode(&generic[..cut]), None);
            }
        }
        // A non-canonical length (5 as a u16 varint) is bincode's too.
        let odd = [251, 5, 0, 1, 2, 3, 4, 5];
        assert_eq!(bytes::decode(&odd), decode::<Vec<u8>>(&odd).ok());
        let mut message = Message::from_encoded(Fingerprint::of::<Vec<u8>>(), vec![3, 1, 2]);
        assert!(message.peek::<Vec<u8>>().is_none()); // short: bincode's error
    }

    #[test]
    fn a_primitive_from_the_network_is_decoded_on_arrival_and_bad_bytes_stay_encoded() {
        let (fingerprint, bytes) = Message::new(7u64).encode().unwrap();
        let received = Message::from_encoded(fingerprint, bytes);
        assert!(
            received.holds_inline::<u64>(),
            "taken at the head without a scan"
        );
        let (fingerprint, bytes) = Message::new(vec![1u8, 2, 3]).encode().unwrap();
        let received = Message::from_encoded(fingerprint, bytes);
        assert!(received.holds_inline::<Vec<u8>>());
        assert_eq!(received.into_inline::<Vec<u8>>(), Some(vec![1, 2, 3]));
        // Bytes that claim a primitive but hold something else: still encoded, and
        // refused (once logged) by the receive that asks for the type.
        let mut bad = Message::from_encoded(Fingerprint::of::<u64>(), vec![0xff; 12]);
        assert!(!bad.holds_inline::<u64>());
        assert!(bad.is::<u64>());
        assert!(bad.peek::<u64>().is_none());
        assert!(!bad.is::<u64>());
    }

    #[test]
    fn inline_values_encode_and_decode_as_boxed_ones_do() {
        fn check<T: Serializable + PartialEq + fmt::Debug + Copy>(value: T) {
            let message = Message::new(value);
            assert!(
                matches!(message.payload, Payload::Inline(_)),
                "{value:?} inline"
            );
            assert_eq!(message.fingerprint(), Fingerprint::of::<T>());
            assert_eq!(message.type_name(), Some(std::any::type_name::<T>()));
            let (fingerprint, bytes) = message.encode().unwrap();
            assert_eq!(bytes, encode(&value).unwrap());
            let mut appended = vec![9];
            assert_eq!(message.encode_into(&mut appended), Ok(fingerprint));
            assert_eq!(appended[1..], bytes[..]);
            assert_eq!(
                message.into_encoded().unwrap(),
                (fingerprint, bytes.clone())
            );
            // Decoded from the network, it is held inline too.
            let mut received = Message::from_encoded(fingerprint, bytes);
            assert_eq!(received.peek::<T>(), Some(&value));
            assert!(matches!(received.payload, Payload::Inline(_)));
            assert_eq!(received.downcast::<T>().ok(), Some(value));
        }
        check(());
        check(true);
        check('λ');
        check(200u8);
        check(60_000u16);
        check(4_000_000_000u32);
        check(u64::MAX);
        check(usize::MAX);
        check(-100i8);
        check(-30_000i16);
        check(i32::MIN);
        check(i64::MIN);
        check(isize::MIN);
        check(1.5f32);
        check(-2.25f64);
        // Not a primitive: boxed.
        assert!(matches!(Message::new(Ping(1)).payload, Payload::Local(_)));
        // The envelope is no larger than the encoded form needs.
        assert!(std::mem::size_of::<Message>() <= 48);
    }

    /// A value packed as a name shared by many and two numbers (the shape of a monitor
    /// notification: the node's id, the process, the monitor).
    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Down {
        node: String,
        local: u64,
        id: u64,
    }

    impl Packable for Down {
        type Shared = String;
        fn unpack(node: &String, [local, id]: [u64; 2]) -> Down {
            Down {
                node: node.clone(),
                local,
                id,
            }
        }
    }

    /// A packed value is the same message as its boxed form: type, fingerprint, name,
    /// encoding, borrowed and taken out; only its storage differs.
    #[test]
    fn a_packed_value_is_seen_as_its_boxed_form() {
        let node = Arc::new("node-a".to_string());
        let value = Down {
            node: "node-a".into(),
            local: 7,
            id: 9,
        };
        let packed = || Message::packed::<Down>(node.clone(), [7, 9]);
        assert!(matches!(packed().payload, Payload::Packed(_)));
        assert!(packed().is::<Down>() && !packed().is::<Ping>());
        assert!(packed().accepts::<Down>() && !packed().accepts::<u64>());
        assert_eq!(packed().fingerprint(), Fingerprint::of::<Down>());
        assert_eq!(packed().type_name(), Some(std::any::type_name::<Down>()));
        assert_eq!(packed().encode(), Message::new(value.clone()).encode());
        let mut appended = vec![1];
        assert_eq!(
            packed().encode_into(&mut appended),
            Ok(Fingerprint::of::<Down>())
        );
        assert_eq!(appended[1..], encode(&value).unwrap()[..]);
        assert_eq!(
            packed().into_encoded(),
            Message::new(value.clone()).into_encoded()
        );
        // Inspected without being boxed; borrowed once boxed.
        let mut message = packed();
        assert_eq!(message.inspect(|d: &Down| d.id), Some(9));
        assert_eq!(message.inspect(|p: &Ping| p.0), None);
        assert!(matches!(message.payload, Payload::Packed(_)));
        assert_eq!(message.peek::<Ping>(), None);
        assert!(matches!(message.payload, Payload::Packed(_)));
        assert_eq!(message.peek::<Down>(), Some(&value));
        assert_eq!(message.downcast::<Down>().ok(), Some(value.clone()));
        // Taken out whole, or handed back whole.
        let message = packed().downcast::<Ping>().unwrap_err();
        assert!(matches!(message.payload, Payload::Packed(_)));
        assert_eq!(message.downcast::<Down>().ok(), Some(value));
        assert_eq!(Arc::strong_count(&node), 1, "every packed copy released");
    }

    #[test]
    fn a_message_of_another_type_is_handed_back_whole() {
        let message = Message::new(7u32);
        assert!(!message.is::<u64>());
        let message = message.downcast::<u64>().unwrap_err();
        let message = message.downcast::<Ping>().unwrap_err();
        assert_eq!(message.downcast::<u32>().ok(), Some(7));
        let message = Message::new(Ping(3)).downcast::<u32>().unwrap_err();
        assert_eq!(message.downcast::<Ping>().ok(), Some(Ping(3)));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&5u32).unwrap();
        bytes.push(0);
        assert!(matches!(decode::<u32>(&bytes), Err(CodecError::Decode(_))));
    }

    #[test]
    fn an_oversized_length_is_refused_without_allocating() {
        // A Vec<u8> claiming u64::MAX elements: varint 0xff then 8 bytes.
        let mut bytes = vec![0xff];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }
}
