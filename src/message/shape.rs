//! A message type's fingerprint covers the *shape* of its encoding, not only its name:
//! two builds of a program in which a struct gained, lost or reordered a field give it
//! different fingerprints, so a message of the old shape is never decoded as the new
//! one (bincode would read wrong values, or fail only on the receiving side).
//!
//! The shape is the type's serde data format, traced once by driving its `Deserialize`
//! implementation with `serde-reflection`'s tracer (every container it reaches: field
//! names and types in order, enum variants and their payloads). The fingerprint is a
//! hash of the type's name and that format. A type the tracer cannot follow (a custom
//! `Deserialize` that validates its input, `deserialize_any`, an enum whose variants
//! cannot all be reached) keeps the name-only fingerprint, with a debug log.
//!
//! Tracing costs microseconds to milliseconds, once per type and process: the result is
//! shared by every thread, and each thread keeps its own copy in a small map keyed by
//! `TypeId`, so the message path pays one thread-local lookup and no lock.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde_reflection::{Error, Format, Samples, Tracer, TracerConfig};

use super::{fnv1a_extend, Fingerprint, FNV_OFFSET};

/// Passes over one type within a round: each pass reaches at least one more variant of
/// every enum not fully known yet, so this bounds the variants of one enum.
const TRACE_PASSES_MAX: usize = 1024;

/// Rounds of tracing: a round that ends with enums whose variants were not all reached
/// names them, and the next round explores those too.
const TRACE_ROUNDS_MAX: usize = 8;

/// Fingerprints computed in this process, shared by its threads.
static BY_TYPE: Mutex<BTreeMap<TypeId, Fingerprint>> = Mutex::new(BTreeMap::new());

/// The same, by type name (what a local message's management event knows of its type).
static BY_NAME: Mutex<BTreeMap<&'static str, Fingerprint>> = Mutex::new(BTreeMap::new());

thread_local! {
    static CACHE: RefCell<HashMap<TypeId, Fingerprint, BuildHasherDefault<TypeIdHasher>>> =
        RefCell::default();
    /// The type asked for last and its fingerprint: a stream of one type (a producer,
    /// a consumer) finds it with one comparison, without the map.
    static LAST: Cell<Option<(TypeId, Fingerprint)>> = const { Cell::new(None) };
}

/// The fingerprint of `T` (see the module doc), traced on the first call in the
/// process and cached.
#[inline]
pub(super) fn of<T: DeserializeOwned + 'static>() -> Fingerprint {
    let id = TypeId::of::<T>();
    if let Some((last, fingerprint)) = LAST.get() {
        if last == id {
            return fingerprint;
        }
    }
    let fingerprint = match CACHE.with(|cache| cache.borrow().get(&id).copied()) {
        Some(fingerprint) => fingerprint,
        None => {
            let fingerprint = shared::<T>(id);
            CACHE.with(|cache| cache.borrow_mut().insert(id, fingerprint));
            fingerprint
        }
    };
    LAST.set(Some((id, fingerprint)));
    fingerprint
}

/// The fingerprint computed in this process for the type named `name`, if any.
pub(super) fn of_type_name(name: &str) -> Option<Fingerprint> {
    lock(&BY_NAME).get(name).copied()
}

#[cold]
fn shared<T: DeserializeOwned + 'static>(id: TypeId) -> Fingerprint {
    if let Some(fingerprint) = lock(&BY_TYPE).get(&id) {
        return *fingerprint;
    }
    // Traced without the lock held: a `Deserialize` may ask for another fingerprint.
    // Two threads may trace one type at once; they find the same value.
    let name = std::any::type_name::<T>();
    let fingerprint = named::<T>(name);
    lock(&BY_TYPE).entry(id).or_insert(fingerprint);
    lock(&BY_NAME).insert(name, fingerprint);
    fingerprint
}

/// The fingerprint of a type named `name` with `T`'s shape (traced now, not cached).
pub(super) fn named<T: DeserializeOwned>(name: &str) -> Fingerprint {
    let by_name = fnv1a_extend(FNV_OFFSET, name.as_bytes());
    match trace::<T>() {
        Ok(shape) => {
            // A zero byte separates the name from the shape (no name contains one).
            let hash = fnv1a_extend(fnv1a_extend(by_name, &[0]), shape.as_bytes());
            Fingerprint(hash)
        }
        Err(why) => {
            tracing::debug!(
                r#type = name,
                %why,
                "cannot trace the type's serde format; its fingerprint covers its name only"
            );
            Fingerprint(by_name)
        }
    }
}

/// `T`'s serde format and every container it reaches, as stable text.
fn trace<T: DeserializeOwned>() -> Result<String, String> {
    // A `Deserialize` handed the tracer's made-up values may panic: that type keeps the
    // name-only fingerprint rather than failing the send.
    catch_unwind(AssertUnwindSafe(trace_rounds::<T>))
        .unwrap_or_else(|_| Err("its Deserialize panicked while traced".into()))
}

fn trace_rounds<T: DeserializeOwned>() -> Result<String, String> {
    let samples = Samples::new();
    let mut enums: BTreeSet<String> = BTreeSet::new();
    for _ in 0..TRACE_ROUNDS_MAX {
        let mut tracer = Tracer::new(TracerConfig::default());
        let mut format = Format::unknown();
        for _ in 0..TRACE_PASSES_MAX {
            let (traced, _) = tracer
                .trace_type_once::<T>(&samples)
                .map_err(|err| err.to_string())?;
            let mut incomplete = false;
            if let Format::TypeName(name) = &traced {
                incomplete |= tracer.check_incomplete_enum(name).is_some();
            }
            for name in &enums {
                incomplete |= tracer.check_incomplete_enum(name).is_some();
            }
            format = traced;
            if !incomplete {
                break;
            }
        }
        match tracer.registry() {
            Ok(registry) => {
                return serde_json::to_string(&(format, registry)).map_err(|err| err.to_string())
            }
            Err(Error::MissingVariants(missing)) => {
                let before = enums.len();
                enums.extend(missing);
                if enums.len() == before {
                    return Err("some enum variants cannot be reached".into());
                }
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    Err("some enum variants cannot be reached".into())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps hold plain values: one a panicking thread left is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `TypeId`s are hashes already: the map uses their bits as they are.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not what `TypeId` writes today (one u64); kept correct if that changes.
        self.0 = fnv1a_extend(self.0 ^ FNV_OFFSET, bytes);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two builds of one program: `Order` at one path, in three shapes.
    mod build_a {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Order {
            pub id: u32,
            pub quantity: u32,
        }
    }
    mod build_b_added {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Order {
            pub id: u32,
            pub quantity: u32,
            pub note: String,
        }
    }
    mod build_b_reordered {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Order {
            pub quantity: u32,
            pub id: u32,
        }
    }
    mod build_a_again {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Order {
            pub id: u32,
            pub quantity: u32,
        }
    }

    const PATH: &str = "shop::Order";

    #[test]
    fn a_field_added_or_reordered_changes_the_fingerprint_of_one_name() {
        let a = named::<build_a::Order>(PATH);
        assert_ne!(a, named::<build_b_added::Order>(PATH));
        assert_ne!(a, named::<build_b_reordered::Order>(PATH));
        // The name and the shape decide it, nothing else (not where the type lives).
        assert_eq!(a, named::<build_a_again::Order>(PATH));
    }

    #[test]
    fn the_fingerprint_of_a_type_is_the_same_in_every_run() {
        // A constant: a fingerprint that depended on addresses, hash seeds or the
        // order of tracing would change between runs of this test.
        assert_eq!(
            named::<build_a::Order>(PATH),
            Fingerprint(GOLDEN_ORDER_FINGERPRINT)
        );
    }

    const GOLDEN_ORDER_FINGERPRINT: u64 = 0x8aa6_8475_32c3_ce41;

    #[test]
    fn an_untraceable_type_keeps_its_name_only_fingerprint() {
        /// Refuses the tracer's made-up values, as a validating type does.
        #[allow(dead_code)]
        struct Validated(u32);
        impl<'de> serde::Deserialize<'de> for Validated {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let n = u32::deserialize(d)?;
                if n == 0 {
                    return Err(serde::de::Error::custom("zero"));
                }
                Ok(Validated(n))
            }
        }
        assert_eq!(
            named::<Validated>("v"),
            Fingerprint(super::super::fnv1a(b"v"))
        );
    }

    #[test]
    fn the_cached_fingerprint_is_the_traced_one() {
        let id = TypeId::of::<build_a::Order>();
        let traced = named::<build_a::Order>(std::any::type_name::<build_a::Order>());
        assert_eq!(of::<build_a::Order>(), traced);
        assert_eq!(of::<build_a::Order>(), traced);
        assert_eq!(lock(&BY_TYPE).get(&id), Some(&traced));
        assert_eq!(
            of_type_name(std::any::type_name::<build_a::Order>()),
            Some(traced)
        );
    }

    #[test]
    fn the_trace_is_stable_and_names_fields_in_order() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Point {
            x: u32,
            y: String,
        }
        let once = trace::<Point>().unwrap();
        assert_eq!(once, trace::<Point>().unwrap());
        let x = once.find("\"x\"").unwrap();
        let y = once.find("\"y\"").unwrap();
        assert!(x < y, "{once}");
    }

    #[test]
    fn every_variant_of_a_nested_enum_is_traced() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        enum Inner {
            A,
            B(u8),
            C { deep: Vec<Inner> },
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            first: Option<Inner>,
            second: (u8, Inner),
        }
        let shape = trace::<Outer>().unwrap();
        assert!(shape.contains("\"deep\""), "{shape}");
    }
}
