//! A monitor costs no allocation per notification when its process ends normally: the
//! notification is packed in the envelope (no box), and the watcher's set of monitors
//! grows by doubling (no node per few entries). What `spawn_monitor` adds over a plain
//! spawn is then a handful of growths, not one allocation or more per process.
//!
//! Counted by an allocator that counts this thread's allocations only (the node runs on
//! the test's thread), so that other tests running in parallel do not disturb the count.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::rc::Rc;

use hyperion::clock::SystemClock;
use hyperion::runtime::blocking::Inline;
use hyperion::{DiedReason, LocalNode, NodeEnv, NodeId, ProcessMonitorNotification};

use counting_alloc::allocations;

const CHILDREN: u64 = 4_000;

fn test_node() -> LocalNode {
    let id = NodeId {
        address: "127.0.0.1:1".parse().unwrap(),
        incarnation: 1,
    };
    LocalNode::new(
        id,
        NodeEnv::new(Rc::new(SystemClock::new()), 7, Rc::new(Inline)),
    )
}

/// `CHILDREN` children spawned (monitored or not) that return at once, run to the end
/// on a fresh node; with monitors, every notification is received and checked.
fn spawn_loop(monitored: bool) -> u64 {
    let node = test_node();
    allocations(|| {
        let parent = node.spawn(move |p| async move {
            let mut children = Vec::with_capacity(CHILDREN as usize);
            for _ in 0..CHILDREN {
                if monitored {
                    children.push(p.spawn_monitor(|_| async {}));
                } else {
                    p.spawn_local(|_| async {});
                }
            }
            // The notifications come in the order the children ran: their spawn order.
            for (pid, monitor_ref) in children {
                let n: ProcessMonitorNotification = p.expect().await;
                assert_eq!((n.pid, n.monitor_ref), (pid, monitor_ref));
                assert_eq!(n.monitor_ref.target, pid);
                assert_eq!(n.reason, DiedReason::Normal);
            }
        });
        while node.run_next() {}
        assert!(!node.is_alive(parent));
    })
}

/// What monitors add to a spawn loop is a few growths of the watcher's tables, however
/// many children: far fewer allocations than children (it was two or more each: the
/// boxed notification, and the nodes of the watcher's monitor tree).
#[test]
fn monitor_notifications_of_normal_exits_allocate_nothing_per_process() {
    // Warm-up: one-time allocations (fingerprint caches, thread locals) are not counted.
    spawn_loop(true);
    let plain = spawn_loop(false);
    let monitored = spawn_loop(true);
    let added = monitored.saturating_sub(plain);
    assert!(
        added < CHILDREN / 20,
        "spawn_monitor of {CHILDREN} children allocated {added} times more than spawn (plain {plain}, monitored {monitored})"
    );
}
