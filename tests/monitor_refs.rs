//! Monitors that two nodes hold on one process are kept apart at the target's node, even
//! though each node numbers its monitor references from its own counter (so the two
//! references can be equal): removing one leaves the other, which still fires.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::{MonitorRef, ProcessMonitorNotification};
use hyperion_sim::{seeds, Faults, Sim};

#[test]
fn unmonitor_from_one_node_leaves_an_equal_reference_of_another_node_firing() {
    for seed in seeds(10) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let c = sim.add_node();
        let target = a.spawn(|p| async move { p.expect::<()>().await });
        let b_ref: Rc<Cell<Option<MonitorRef>>> = Rc::default();
        let seen = b_ref.clone();
        b.spawn(move |p| async move {
            let monitor_ref = p.monitor(target);
            seen.set(Some(monitor_ref));
            p.sleep(Duration::from_secs(1)).await;
            p.unmonitor(monitor_ref);
        });
        let outcome = sim
            .run_until(&c, move |p| async move {
                let monitor_ref = p.monitor(target);
                p.sleep(Duration::from_secs(2)).await;
                p.send(target, ());
                let notified = p
                    .expect_timeout::<ProcessMonitorNotification>(Duration::from_secs(10))
                    .await;
                (monitor_ref, notified.map(|n| n.monitor_ref))
            })
            .unwrap_or_else(|err| panic!("seed {seed}: {err}"));
        let (c_ref, notified) = outcome;
        assert_eq!(
            b_ref.get(),
            Some(c_ref),
            "seed {seed}: the test needs the two nodes' references to be equal"
        );
        assert_eq!(
            notified,
            Some(c_ref),
            "seed {seed}: C's monitor never fired"
        );
    }
}
