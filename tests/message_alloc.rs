//! A small message costs no allocation: primitives are held in the envelope itself.
//! Counted by an allocator that counts this thread's allocations only, so that other
//! tests running in parallel do not disturb the count.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use hyperion::message::Message;

use counting_alloc::allocations;

#[test]
fn a_primitive_message_is_sent_and_received_without_an_allocation() {
    let count = allocations(|| {
        let mut message = Message::new(std::hint::black_box(42u64));
        assert!(message.accepts::<u64>());
        assert!(!message.accepts::<u32>());
        assert_eq!(message.peek::<u64>(), Some(&42));
        assert_eq!(message.downcast::<u64>().ok(), Some(42));
        let message = Message::new(std::hint::black_box(-1.5f64));
        let message = message.downcast::<u32>().unwrap_err(); // handed back, untouched
        assert_eq!(message.downcast::<f64>().ok(), Some(-1.5));
        assert_eq!(Message::new(()).downcast::<()>().ok(), Some(()));
        assert_eq!(Message::new('x').downcast::<char>().ok(), Some('x'));
    });
    assert_eq!(count, 0, "allocations for primitive messages");
}

#[test]
fn a_larger_message_is_still_boxed_and_taken_out_whole() {
    let value = (1u64, 2u64, "three".to_string());
    let message = Message::new(value.clone());
    let message = message.downcast::<u64>().unwrap_err();
    assert_eq!(message.downcast::<(u64, u64, String)>().ok(), Some(value));
}

/// Raw data, the usual payload between nodes: a `Vec<u8>` message costs no allocation
/// beyond the vector's own, sent (into the envelope, then encoded) or received (bytes
/// from the network decoded, then taken out), the vector's bytes never copied on the
/// way in.
#[test]
fn a_byte_vector_message_costs_no_allocation_beyond_its_bytes() {
    let value: Vec<u8> = (0..64).collect();
    let sent = value.clone();
    // The type's fingerprint is traced once per thread, allocating: not counted.
    let fingerprint = hyperion::message::Fingerprint::of::<Vec<u8>>();
    let mut encoded = Vec::with_capacity(128);
    let count = allocations(|| {
        let message = Message::new(std::hint::black_box(sent));
        assert!(message.is::<Vec<u8>>());
        message.encode_into(&mut encoded).expect("encodes");
        drop(message);
    });
    assert_eq!(count, 0, "allocations to send a byte vector");
    // The first decode of a message from the network computes the inline types'
    // fingerprints once per process, allocating: done before counting.
    let _ = Message::from_encoded(fingerprint, encoded.clone()).downcast::<Vec<u8>>();
    let bytes = encoded.clone();
    let count = allocations(|| {
        let mut message = Message::from_encoded(fingerprint, std::hint::black_box(bytes));
        assert!(message.accepts::<Vec<u8>>());
        assert_eq!(message.downcast::<Vec<u8>>().ok(), Some(value));
    });
    assert_eq!(count, 0, "allocations to receive a byte vector");
}
