//! A management agent that counts the messages each process sends, and answers
//! queries from its mailbox.
//!
//! ```text
//! cargo run --example mx_agent
//! ```

use std::collections::BTreeMap;

use hyperion::mx::{
    mx_agent_with_finalize, mx_ready, mx_sink, mx_sink_events, MxAgent, MxEvent, MxEventKind,
};
use hyperion::{Node, ProcessId};
use serde::{Deserialize, Serialize};

/// Messages sent, per sender.
type Counts = BTreeMap<ProcessId, u64>;

/// Asks the counter for its counts (sent back to the asker).
#[derive(Serialize, Deserialize)]
struct HowMany(ProcessId);

fn main() {
    let node = Node::new().expect("start a node");
    let report = node.run(|p| async move {
        let sinks = vec![
            // Only `Sent` events are delivered to this agent (its only event sink
            // takes no other kind), so it costs the node little.
            mx_sink_events(
                &[MxEventKind::Sent],
                |agent: &mut MxAgent<'_, Counts>, event: &MxEvent| {
                    if let MxEvent::Sent { from, .. } = event {
                        agent.mx_update_local(|counts| *counts.entry(*from).or_default() += 1);
                    }
                    mx_ready()
                },
            ),
            mx_sink(|agent: &mut MxAgent<'_, Counts>, ask: &HowMany| {
                agent.process().send(ask.0, agent.mx_get_local().clone());
                mx_ready()
            }),
        ];
        let counter = mx_agent_with_finalize(
            &p,
            "message-counter".into(),
            Counts::new(),
            sinks,
            |stopped| println!("counter stopped ({:?})", stopped.stop()),
        )
        .expect("no other agent has this id");

        // Three workers send 10, 20 and 30 messages to a sink process.
        let sink = p.spawn_local(|s| async move {
            for _ in 0..60 {
                let _: u64 = s.expect().await;
            }
        });
        let me = p.self_pid();
        let mut workers = Vec::new();
        for n in 1..=3u64 {
            let worker = p.spawn_local(move |w| async move {
                for i in 0..n * 10 {
                    w.send(sink, i);
                }
                w.send(me, "done".to_string());
            });
            workers.push(worker);
        }
        for _ in 0..3 {
            let _: String = p.expect().await;
        }
        p.send(counter, HowMany(me));
        let counts: Counts = p.expect().await;
        workers
            .iter()
            .map(|worker| counts.get(worker).copied().unwrap_or(0))
            .collect::<Vec<u64>>()
    });
    match report {
        Ok(counts) => {
            println!("messages sent by each worker (its numbers, then \"done\"): {counts:?}")
        }
        Err(reason) => eprintln!("the program died: {reason}"),
    }
}
