//! Cloud Haskell's conveniences, in the simulator over many seeds: `usend`, `call`,
//! `spawnChannelLocal`, `matchAnyIf`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hyperion::message::Message;
use hyperion::{
    match_any_if, match_type, CallError, NodeMonitorNotification, Process, RemoteTable,
};
use hyperion_sim::{seeds, Fault, Faults, NodeOptions, Sim};

fn call_table() -> RemoteTable {
    let mut table = RemoteTable::new();
    table.register_call("square", |_p: Process, x: u64| async move {
        Ok::<_, String>(x * x)
    });
    table.register_call("refuse", |_p: Process, x: u64| async move {
        Err::<u64, _>(format!("{x} is not welcome"))
    });
    table
}

#[test]
fn call_returns_the_remote_functions_result_or_why_not() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node_with(NodeOptions::default().remote_table(call_table()));
        let b_id = b.id();
        let got = sim
            .run_until(&a, move |p| async move {
                (
                    p.call::<u64, u64>(b_id, "square", &9).await,
                    p.call::<u64, u64>(b_id, "refuse", &9).await,
                    p.call::<u64, u64>(b_id, "no-such-label", &9).await,
                )
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got.0, Ok(81), "seed {seed}");
        assert_eq!(got.1, Err(CallError::Failed("9 is not welcome".into())));
        assert!(
            matches!(&got.2, Err(CallError::Refused(why)) if why.contains("no-such-label")),
            "{:?}",
            got.2
        );
    }
}

type PairLog = Rc<RefCell<Vec<(bool, u64)>>>;

/// Records every `(unreliable, n)` it receives, forever.
async fn log_pairs(p: Process, sink: PairLog) {
    loop {
        let pair: (bool, u64) = p.expect().await;
        sink.borrow_mut().push(pair);
    }
}

#[test]
fn usend_needs_no_reconnect_after_a_break_where_send_does() {
    for seed in seeds(100) {
        let mut sim = Sim::with_faults(seed, Faults::none());
        let a = sim.add_node();
        let b = sim.add_node();
        let log: PairLog = Rc::default();
        let sink = log.clone();
        let target = b.spawn(move |p| log_pairs(p, sink));
        sim.schedule(Duration::from_secs(1), Fault::Break(0, 1));
        sim.run_until(&a, move |p| async move {
            p.send(target, (false, 1u64));
            p.usend(target, (true, 1u64));
            let watch = p.monitor_node(target.node);
            let _: NodeMonitorNotification = p
                .receive_wait(vec![hyperion::match_if(
                    move |n: &NodeMonitorNotification| n.monitor_ref == watch,
                    |n| n,
                )])
                .await;
            p.send(target, (false, 2u64)); // held back: no reconnect
            p.usend(target, (true, 2u64));
            p.sleep(Duration::from_secs(1)).await;
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(
            *log.borrow(),
            vec![(false, 1), (true, 1), (true, 2)],
            "seed {seed}"
        );
    }
}

#[test]
fn spawn_channel_local_hands_the_new_process_its_receive_port() {
    for seed in seeds(100) {
        let got = Sim::run_alone(seed, |p| async move {
            let me = p.self_pid();
            let (port, child) = p.spawn_channel_local(move |c, rx| async move {
                let mut sum = 0u64;
                for _ in 0..3 {
                    sum += c.receive_chan(&rx).await;
                }
                c.send(me, sum);
            });
            assert_eq!(port.id().owner, child);
            for n in [1u64, 2, 3] {
                p.send_chan(port, n);
            }
            p.expect::<u64>().await
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got, 6, "seed {seed}");
    }
}

#[test]
fn match_any_if_takes_a_message_of_its_type_that_passes_undecoded() {
    for seed in seeds(100) {
        let got = Sim::run_alone(seed, |p| async move {
            p.send(p.self_pid(), 5u64);
            p.send(p.self_pid(), "text".to_string());
            p.send(p.self_pid(), 500u64);
            let big: Message = p
                .receive_wait(vec![match_any_if(|n: &u64| *n > 100, |m| m)])
                .await;
            let rest = p.receive_wait(vec![match_type(|n: u64| n)]).await;
            (big.downcast::<u64>().ok(), rest)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(got, (Some(500), 5), "seed {seed}");
    }
}
