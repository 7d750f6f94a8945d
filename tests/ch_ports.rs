//! Merged ports keep each level's own policy (Cloud Haskell's `mergePortsBiased` and
//! `mergePortsRR` nest): checked in the simulator over many seeds.

use hyperion::{Process, ReceivePort, SendPort};
use hyperion_sim::{seeds, Sim};

/// Nine channels `a`..`i`, each holding three copies of its letter, grouped in three
/// inner ports (`abc`, `def`, `ghi`) merged by `inner`, themselves merged by `outer`;
/// returns the 27 letters read.
async fn read_nested(p: Process, inner_round_robin: bool, outer_round_robin: bool) -> String {
    let mut inner_ports = Vec::new();
    for group in ["abc", "def", "ghi"] {
        let mut ports = Vec::new();
        for letter in group.chars() {
            let (tx, rx): (SendPort<char>, ReceivePort<char>) = p.new_chan();
            for _ in 0..3 {
                p.send_chan(tx, letter);
            }
            ports.push(rx);
        }
        inner_ports.push(if inner_round_robin {
            ReceivePort::merge_round_robin(ports)
        } else {
            ReceivePort::merge_biased(ports)
        });
    }
    let merged = if outer_round_robin {
        ReceivePort::merge_round_robin(inner_ports)
    } else {
        ReceivePort::merge_biased(inner_ports)
    };
    let mut read = String::new();
    for _ in 0..27 {
        read.push(p.receive_chan(&merged).await);
    }
    read
}

fn check_nested(inner_round_robin: bool, outer_round_robin: bool, expected: &str) {
    for seed in seeds(100) {
        let read = Sim::run_alone(seed, move |p| {
            read_nested(p, inner_round_robin, outer_round_robin)
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(read, expected, "seed {seed}");
    }
}

#[test]
fn round_robin_of_biased_ports_reads_each_inner_port_by_its_bias() {
    check_nested(false, true, "adgadgadgbehbehbehcficficfi");
}

#[test]
fn biased_of_round_robin_ports_reads_each_inner_port_in_turn() {
    check_nested(true, false, "abcabcabcdefdefdefghighighi");
}

#[test]
fn round_robin_of_round_robin_ports_rotates_at_both_levels() {
    check_nested(true, true, "adgbehcfiadgbehcfiadgbehcfi");
}

#[test]
fn biased_of_biased_ports_drains_in_order() {
    check_nested(false, false, "aaabbbcccdddeeefffggghhhiii");
}

mod port_monitors {
    use std::time::Duration;

    use hyperion::{DiedReason, PortMonitorNotification, Process, ProcessId, SendPort};
    use hyperion_sim::{seeds, Fault, Faults, Sim};

    /// Creates a channel, sends its `SendPort` to `to`, waits for `()` (then ends), or
    /// sleeps forever if `forever`.
    async fn owner(p: Process, forever: bool) {
        let to: ProcessId = p.expect().await;
        let (tx, _rx) = p.new_chan::<u32>();
        p.send(to, tx);
        if forever {
            loop {
                p.sleep(Duration::from_secs(3600)).await;
            }
        }
        p.expect::<()>().await;
    }

    /// Every port notification that arrives within a minute.
    async fn notices(p: &Process) -> Vec<PortMonitorNotification> {
        let mut got = Vec::new();
        while let Some(n) = p
            .expect_timeout::<PortMonitorNotification>(Duration::from_secs(60))
            .await
        {
            got.push(n);
        }
        got
    }

    /// The notifications a watcher on node 0 gets for the port of an owner on node 1
    /// (`remote`) or 0; `None` if the port never reached the watcher (its node crashed
    /// first, under faults).
    fn run(
        seed: u64,
        faults: Faults,
        remote: bool,
        forever: bool,
        schedule: Option<Fault>,
    ) -> Option<(
        Vec<PortMonitorNotification>,
        hyperion::MonitorRef,
        SendPort<u32>,
    )> {
        let mut sim = Sim::with_faults(seed, faults);
        let a = sim.add_node();
        let b = sim.add_node();
        let target = if remote { &b } else { &a }.spawn(move |p| owner(p, forever));
        if let Some(fault) = schedule {
            sim.schedule(Duration::from_secs(1), fault);
        }
        sim.run_until(&a, move |p| async move {
            p.send(target, p.self_pid());
            let port: SendPort<u32> = p.expect_timeout(Duration::from_secs(60)).await?;
            let watch = p.monitor_port(port);
            p.send(target, ());
            Some((notices(&p).await, watch, port))
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
    }

    #[test]
    fn a_port_monitor_fires_once_when_the_owner_dies_here_and_remotely() {
        for remote in [false, true] {
            for seed in seeds(100) {
                let (got, watch, port) = run(seed, Faults::none(), remote, false, None).unwrap();
                assert_eq!(
                    got,
                    vec![PortMonitorNotification {
                        monitor_ref: watch,
                        port: port.id(),
                        reason: DiedReason::Normal
                    }],
                    "seed {seed}"
                );
            }
        }
    }

    #[test]
    fn a_port_monitor_fires_once_when_the_owners_node_is_lost() {
        for seed in seeds(100) {
            let (got, _, _) = run(seed, Faults::none(), true, true, Some(Fault::Crash(1))).unwrap();
            assert_eq!(got.len(), 1, "seed {seed}: {got:?}");
            assert!(
                matches!(got[0].reason, DiedReason::Disconnect | DiedReason::NodeDown),
                "seed {seed}: {got:?}"
            );
        }
    }

    /// Under swarm faults a port monitor still fires exactly once: its owner dies (or
    /// its node is lost), and nothing fires twice.
    #[test]
    fn a_port_monitor_fires_exactly_once_under_swarm_faults() {
        for seed in seeds(100) {
            if let Some((got, _, _)) = run(seed, Faults::swarm(seed), true, false, None) {
                assert_eq!(got.len(), 1, "seed {seed}: {got:?}");
            }
        }
    }

    #[test]
    fn a_port_monitor_on_a_dead_owner_fires_unknown_process_and_unmonitor_port_silences_it() {
        for seed in seeds(100) {
            let got = Sim::run_alone(seed, |p| async move {
                let me = p.self_pid();
                let dead = p.spawn_local(move |o| async move {
                    let (tx, _rx) = o.new_chan::<u32>();
                    o.send(me, tx);
                });
                let dead_port: SendPort<u32> = p.expect().await;
                let living = p.spawn_local(move |o| owner(o, false));
                p.send(living, me);
                let living_port: SendPort<u32> = p.expect().await;
                p.monitor(dead);
                p.expect::<hyperion::ProcessMonitorNotification>().await;
                p.monitor_port(dead_port);
                let silenced = p.monitor_port(living_port);
                p.unmonitor_port(silenced);
                p.send(living, ());
                notices(&p).await
            })
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(got.len(), 1, "seed {seed}: {got:?}");
            assert_eq!(got[0].reason, DiedReason::UnknownProcess, "seed {seed}");
        }
    }
}
