//! Merged ports keep each level's own policy (Cloud Haskell's `mergePortsBiased` and
//! `mergePortsRR` nest): checked in the simulator over many seeds.

use hyperion::{Process, ReceivePort, SendPort};
use hyperion_sim::{seeds, Sim};

/// Nine channels `a`..`i`, each holding three copies of its letter, grouped in three
/// inner ports (`abc`, `def`, `ghi`) merged by `inner`, themselves merged by `outer`;
/// returns the 27 letters read.
async fn read_nested(
    p: Process,
    inner_round_robin: bool,
    outer_round_robin: bool,
) -> String {
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
