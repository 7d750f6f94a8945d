//! Values the envelope holds packed: a shared part behind an `Arc` and two words,
//! rebuilt when a receive takes the value out.
//!
//! Why: a node sends some values of its own by the hundred thousand, above all the
//! monitor notification of a process that ended normally (a `spawn_monitor` loop), and
//! such a value is three times too large for the envelope, so it was boxed: an
//! allocation, a free and a copy through memory long out of cache for each. Its parts
//! are the node's id (the same for every notification: shared) and two numbers (the
//! process and the monitor), which fit. The message module does not know the types it
//! packs (they live above it): each names its parts through [`Packable`], and the
//! envelope reaches it through a table of functions made per type, as a `dyn` would,
//! with no allocation.

use std::any::{Any, TypeId};
use std::sync::Arc;

use super::{CodecError, Fingerprint, LocalValue, Serializable};

/// A value that can be packed into a shared part and two words, and rebuilt from them.
pub(crate) trait Packable: Serializable {
    /// The part many values share (a node's id), held by reference count.
    type Shared: Any + Send + Sync;

    /// The value the parts stand for.
    fn unpack(shared: &Self::Shared, words: [u64; 2]) -> Self;
}

/// A packed value of a type known through `kind`.
pub(super) struct Packed {
    shared: Arc<dyn Any + Send + Sync>,
    words: [u64; 2],
    kind: &'static Kind,
}

/// What the envelope needs of a packed type, as functions of the packed parts.
struct Kind {
    type_id: fn() -> TypeId,
    fingerprint: fn() -> Fingerprint,
    type_name: fn() -> &'static str,
    /// Rebuilds the value into `out` if `out` is an `Option` of its type.
    unpack_into: fn(&Packed, &mut dyn Any),
    /// Rebuilds the value, boxed as a local one (for a receive that borrows it).
    boxed: fn(&Packed) -> Box<dyn LocalValue>,
    /// Appends the value's encoding, rebuilt on the stack (no box to encode it).
    encode_into: fn(&Packed, &mut Vec<u8>) -> Result<(), CodecError>,
}

/// The [`Kind`] of `P`, one static table per packed type.
struct KindOf<P>(std::marker::PhantomData<P>);

impl<P: Packable> KindOf<P> {
    const KIND: &'static Kind = &Kind {
        type_id: TypeId::of::<P>,
        fingerprint: Fingerprint::of::<P>,
        type_name: std::any::type_name::<P>,
        unpack_into: unpack_into::<P>,
        boxed: boxed::<P>,
        encode_into: encode_into::<P>,
    };
}

fn unpack<P: Packable>(packed: &Packed) -> P {
    match (*packed.shared).downcast_ref::<P::Shared>() {
        Some(shared) => P::unpack(shared, packed.words),
        None => unreachable!("a packed value's shared part is its type's, by construction"),
    }
}

fn unpack_into<P: Packable>(packed: &Packed, out: &mut dyn Any) {
    if let Some(out) = out.downcast_mut::<Option<P>>() {
        *out = Some(unpack::<P>(packed));
    }
}

fn boxed<P: Packable>(packed: &Packed) -> Box<dyn LocalValue> {
    Box::new(unpack::<P>(packed))
}

fn encode_into<P: Packable>(packed: &Packed, out: &mut Vec<u8>) -> Result<(), CodecError> {
    LocalValue::encode_into(&unpack::<P>(packed), out)
}

impl Packed {
    pub(super) fn new<P: Packable>(shared: Arc<P::Shared>, words: [u64; 2]) -> Packed {
        Packed {
            shared,
            words,
            kind: KindOf::<P>::KIND,
        }
    }

    pub(super) fn value_type(&self) -> TypeId {
        (self.kind.type_id)()
    }

    pub(super) fn fingerprint(&self) -> Fingerprint {
        (self.kind.fingerprint)()
    }

    pub(super) fn type_name(&self) -> &'static str {
        (self.kind.type_name)()
    }

    /// The value if it is a `T`.
    pub(super) fn unpack<T: 'static>(&self) -> Option<T> {
        let mut out: Option<T> = None;
        (self.kind.unpack_into)(self, &mut out);
        out
    }

    /// The value, boxed as any other local value.
    pub(super) fn boxed(&self) -> Box<dyn LocalValue> {
        (self.kind.boxed)(self)
    }

    /// Appends the value's encoding to `out` (the bytes its boxed form encodes to).
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        (self.kind.encode_into)(self, out)
    }
}
