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
