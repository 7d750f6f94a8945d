//! A small message costs no allocation: primitives are held in the envelope itself.
//! Counted by an allocator that counts this thread's allocations only, so that other
//! tests running in parallel do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hyperion::message::Message;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left, and is not measured.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations made on this thread by `body`.
fn allocations(body: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    body();
    ALLOCATIONS.with(Cell::get) - before
}

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
