//! Small values held in the envelope itself: a message whose value is a primitive (an
//! integer up to 64 bits, a float, `bool`, `char` or `()`) is sent and received
//! without an allocation, and a byte vector (`Vec<u8>`, the usual raw data between
//! nodes) without one beyond its own buffer: its three words fit in the envelope,
//! whose encoded form is larger.
//!
//! Why only these: safe Rust cannot keep a value of any type inline behind a
//! type-erased envelope. Crates that do (`smallbox`) overwrite the data half of a fat
//! pointer, relying on a layout Rust does not specify; the primitives are the common
//! small messages (counters, sequence numbers, acknowledgements, sums) and can be
//! listed. Other types stay boxed (a zero-sized type, such as a unit struct, costs no
//! allocation in a box either).
//!
//! A value moves into or out of its concrete type through `Option<_>` seen as
//! `dyn Any`: a checked downcast, which the compiler resolves per type at compile time
//! (the benchmark `bench_local` measures the message path).

use std::any::{Any, TypeId};

use std::sync::OnceLock;

use super::{decode, encode_into, CodecError, Fingerprint};

/// Appends `value`'s encoding to `out`; a byte vector the short way (see `bytes`), the
/// bytes a boxed one encodes to.
#[inline(always)]
pub(super) fn encode_value<T: serde::Serialize + 'static>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if let Some(bytes) = (value as &dyn Any).downcast_ref::<Vec<u8>>() {
        super::bytes::encode_into(bytes, out);
        return Ok(());
    }
    encode_into(value, out)
}

/// Encoded bytes, owned or where they lie (a batch of frames): a byte vector decoded
/// from owned bytes keeps their allocation, one from borrowed bytes gets its own of
/// its exact size.
pub(super) enum Encoded<'a> {
    Owned(Vec<u8>),
    Borrowed(&'a [u8]),
}

impl Encoded<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Encoded::Owned(bytes) => bytes,
            Encoded::Borrowed(bytes) => bytes,
        }
    }
}

/// Decodes encoded bytes as one inline type.
type Decoder = for<'a> fn(Encoded<'a>) -> Result<Inline, Encoded<'a>>;

/// The `T` that `bytes` encode exactly, or the bytes back.
fn decode_as<T: serde::de::DeserializeOwned + 'static>(
    encoded: Encoded<'_>,
) -> Result<T, Encoded<'_>> {
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        let Some(offset) = super::bytes::body_offset(encoded.bytes()) else {
            return Err(encoded);
        };
        let vector = match encoded {
            Encoded::Owned(mut bytes) => {
                bytes.drain(..offset);
                bytes
            }
            Encoded::Borrowed(bytes) => bytes[offset..].to_vec(),
        };
        return Ok(cast::<Vec<u8>, T>(vector).unwrap_or_else(|_| unreachable!("T is Vec<u8>")));
    }
    decode::<T>(encoded.bytes()).map_err(|_| encoded)
}

/// Moves `value` out as a `U` if `T` is `U`, otherwise hands it back.
#[inline(always)]
pub(super) fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    let taken = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take);
    match (taken, slot) {
        (Some(value), _) => Ok(value),
        (None, Some(value)) => Err(value),
        (None, None) => unreachable!("the slot is emptied only by a downcast that succeeded"),
    }
}

macro_rules! inline_values {
    ($($variant:ident($type:ty)),* $(,)?) => {
        /// A value of one of the primitive types, or a byte vector, held without an
        /// allocation of its own.
        #[derive(Clone, Debug, PartialEq)]
        pub(super) enum Inline {
            $(
                #[doc = concat!("A `", stringify!($type), "`.")]
                $variant($type),
            )*
        }

        impl Inline {
            /// `value` held inline if its type is one of the primitives, otherwise
            /// `value` back.
            #[inline(always)]
            pub(super) fn new<T: 'static>(value: T) -> Result<Inline, T> {
                $(
                    let value = match cast::<T, $type>(value) {
                        Ok(value) => return Ok(Inline::$variant(value)),
                        Err(value) => value,
                    };
                )*
                Err(value)
            }

            /// The value if it is a `T`, otherwise the value back.
            #[inline(always)]
            pub(super) fn into_value<T: 'static>(self) -> Result<T, Inline> {
                match self {
                    $(Inline::$variant(value) => cast::<$type, T>(value).map_err(Inline::$variant),)*
                }
            }

            /// The `TypeId` of the value's type.
            #[inline(always)]
            pub(super) fn value_type(&self) -> TypeId {
                match self {
                    $(Inline::$variant(_) => TypeId::of::<$type>(),)*
                }
            }

            /// The value, for a checked `downcast_ref`.
            pub(super) fn as_any(&self) -> &dyn Any {
                match self {
                    $(Inline::$variant(value) => value,)*
                }
            }

            /// The fingerprint of the value's type.
            pub(super) fn fingerprint(&self) -> Fingerprint {
                match self {
                    $(Inline::$variant(_) => Fingerprint::of::<$type>(),)*
                }
            }

            /// The name of the value's type.
            pub(super) fn type_name(&self) -> &'static str {
                match self {
                    $(Inline::$variant(_) => std::any::type_name::<$type>(),)*
                }
            }

            /// Appends the value's encoding to `out` (the bytes a boxed value of the
            /// same type encodes to).
            pub(super) fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
                match self {
                    $(Inline::$variant(value) => encode_value(value, out),)*
                }
            }

            /// The value `encoded` holds if `fingerprint` is one of the inline types'
            /// and the bytes decode as that type exactly; otherwise the bytes back.
            pub(super) fn decode(
                fingerprint: Fingerprint,
                encoded: Encoded<'_>,
            ) -> Result<Inline, Encoded<'_>> {
                // Computed once: `Fingerprint::of` per variant would be a cache
                // lookup each, for every message from the network.
                static DECODERS: OnceLock<Vec<(Fingerprint, Decoder)>> = OnceLock::new();
                let decoders = DECODERS.get_or_init(|| {
                    vec![$((Fingerprint::of::<$type>(), |encoded| {
                        decode_as::<$type>(encoded).map(Inline::$variant)
                    })),*]
                });
                match decoders.iter().find(|(known, _)| *known == fingerprint) {
                    Some((_, decode)) => decode(encoded),
                    None => Err(encoded),
                }
            }
        }
    };
}

// No 128-bit integers: their 16-byte alignment would double the envelope's.
// The byte vector and `u64` first: the likeliest to come from the network, whose
// fingerprints `decode` looks for in this order.
inline_values! {
    Bytes(Vec<u8>),
    U64(u64),
    Unit(()),
    Bool(bool),
    Char(char),
    U8(u8),
    U16(u16),
    U32(u32),
    Usize(usize),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Isize(isize),
    F32(f32),
    F64(f64),
}
