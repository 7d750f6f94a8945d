//! The main job, for now: a ring of processes on one node passing a token around.
//!
//! ```text
//! cargo run --release --example ring -- [PROCESSES] [ROUNDS]
//! ```
//!
//! Each process forwards the token to the next; the first counts rounds. At the end
//! every process is told to stop, and monitors confirm that all of them exited.

use std::time::Instant;

use hyperion::{match_type, Node, ProcessId, ProcessMonitorNotification};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
enum Ring {
    /// Who comes after you.
    Next(ProcessId),
    /// The token, with the number of hops so far.
    Token(u64),
    Stop,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let processes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);

    let node = Node::new().expect("start a node");
    let started = Instant::now();
    let hops = node
        .run(move |p| async move {
            let me = p.self_pid();
            let members: Vec<ProcessId> = (0..processes)
                .map(|_| {
                    p.spawn_local(|member| async move {
                        let mut next = None;
                        loop {
                            let message = member.receive_wait(vec![match_type(|m: Ring| m)]).await;
                            match message {
                                Ring::Next(pid) => next = Some(pid),
                                Ring::Token(hops) => {
                                    member.send(next.expect("linked"), Ring::Token(hops + 1))
                                }
                                Ring::Stop => return,
                            }
                        }
                    })
                })
                .collect();
            // Close the ring through this process, which counts the laps.
            for (i, pid) in members.iter().enumerate() {
                let next = members.get(i + 1).copied().unwrap_or(me);
                p.send(*pid, Ring::Next(next));
            }
            let monitors: Vec<_> = members.iter().map(|pid| p.monitor(*pid)).collect();
            let mut hops = 0;
            for _ in 0..rounds {
                p.send(members[0], Ring::Token(hops));
                let Ring::Token(after) = p.expect::<Ring>().await else {
                    unreachable!("only tokens come back")
                };
                hops = after;
            }
            for pid in &members {
                p.send(*pid, Ring::Stop);
            }
            for _ in &monitors {
                let notification: ProcessMonitorNotification = p.expect().await;
                assert!(notification.reason.is_normal());
            }
            hops
        })
        .expect("the ring completes");
    let elapsed = started.elapsed();
    println!(
        "ring of {processes} processes, {rounds} rounds: {hops} hops in {:.3} s ({:.1} M hops/s); all {processes} processes exited normally",
        elapsed.as_secs_f64(),
        hops as f64 / elapsed.as_secs_f64() / 1e6
    );
}
