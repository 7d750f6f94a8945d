//! Two builds declared compatible (one protocol version) that disagree on the shape of
//! message types of one name: what the old build sends is never read by the new one as
//! a value. A type whose shape the fingerprint covers (a reordered struct) arrives under
//! another fingerprint and stays unmatched; one the fingerprint cannot trace (a custom
//! `Deserialize` that validates its input keeps its name-only fingerprint) fails to
//! decode, and is dropped with a management event.
//!
//! One binary holds both builds: the old build's types live in `old`, the new one's in
//! `new`, and the old node sends its values under the fingerprint the old build gives
//! the type at the new type's path ([`Fingerprint::of_as`]), as a program recompiled
//! with the new shape would receive them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use hyperion::message::{Fingerprint, Message};
use hyperion::mx::{mx_agent, mx_ready, mx_sink_events, MxAgent, MxEvent, MxEventKind};
use hyperion::{match_any, match_type, BuildId, ProcessId};
use serde::{Deserialize, Deserializer, Serialize};

use super::SCENARIO_TIME_LIMIT;
use crate::world::{NodeOptions, Sim};

/// Messages the old node sends, jobs and notes at random.
const MESSAGES: u32 = 24;

/// How long the receiver waits for the end marker (virtual time).
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Refuses an id of 0, as a type that validates what it decodes does: the tracer's
/// made-up zero is refused, so the fingerprint of a type holding it covers the name only.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(u32);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        match u32::deserialize(deserializer)? {
            0 => Err(serde::de::Error::custom("an id is never 0")),
            id => Ok(Id(id)),
        }
    }
}

mod old {
    use super::Id;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Job {
        pub id: u32,
        pub weight: u32,
    }

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Note {
        pub id: Id,
        pub text: String,
    }
}

mod new {
    use super::Id;
    use serde::{Deserialize, Serialize};

    /// The old `Job` with its fields swapped: bincode would read the old bytes as a
    /// `Job` with `weight` and `id` exchanged, were the fingerprints equal.
    #[derive(Serialize, Deserialize, Debug)]
    pub struct Job {
        pub weight: u32,
        pub id: u32,
    }

    /// The old `Note` without its text.
    #[derive(Serialize, Deserialize, Debug)]
    pub struct Note {
        pub id: Id,
    }
}

/// The end of the old node's stream: how many of each it sent.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
struct Sent {
    jobs: u32,
    notes: u32,
}

/// What the new node's receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// Values decoded from the old build's messages: each one is wrong.
    wrong: Vec<String>,
    /// Messages left unmatched, by fingerprint (the old jobs).
    unmatched: u32,
    /// The end marker, if it arrived.
    sent: Option<Sent>,
}

/// The old build's value, sent as that build sends it: its bytes under the fingerprint
/// the old build gives the type at `path`.
fn as_old_build_sends<T: hyperion::Serializable>(value: T, path: &str) -> Message {
    let (_, bytes) = Message::new(value)
        .encode()
        .expect("a plain struct encodes");
    Message::from_encoded(Fingerprint::of_as::<T>(path), bytes)
}

pub(super) fn mixed_shapes(sim: &mut Sim) -> Result<(), String> {
    sim.set_virtual_time_limit(SCENARIO_TIME_LIMIT);
    let receiving = sim
        .add_node_with(NodeOptions::default().build(BuildId::named("new-shapes").with_protocol(7)));
    let sending = sim
        .add_node_with(NodeOptions::default().build(BuildId::named("old-shapes").with_protocol(7)));
    // Counts the management events of messages dropped for not decoding.
    let undecodable = Rc::new(Cell::new(0u32));
    let count = undecodable.clone();
    let sinks = vec![mx_sink_events(
        &[MxEventKind::Log],
        move |_: &mut MxAgent<'_, ()>, event: &MxEvent| {
            if matches!(event, MxEvent::Log(text) if text.contains("did not decode")) {
                count.set(count.get() + 1);
            }
            mx_ready()
        },
    )];
    mx_agent(&receiving, "undecodable-counter".into(), (), sinks)
        .map_err(|err| format!("cannot start the counting agent: {err}"))?;
    let seen: Rc<RefCell<Option<Seen>>> = Rc::default();
    let record = seen.clone();
    let receiver = receiving.spawn(move |p| async move {
        let mut seen = Seen::default();
        loop {
            let got = p
                .receive_timeout(
                    RECEIVE_TIMEOUT,
                    vec![
                        match_type(|job: new::Job| Err(format!("{job:?}"))),
                        match_type(|note: new::Note| Err(format!("{note:?}"))),
                        match_type(|sent: Sent| Ok(sent)),
                    ],
                )
                .await;
            match got {
                None => break,
                Some(Err(wrong)) => seen.wrong.push(wrong),
                Some(Ok(sent)) => {
                    seen.sent = Some(sent);
                    break;
                }
            }
        }
        // What is left never matched a type of this build.
        while p
            .receive_timeout(Duration::ZERO, vec![match_any(|_| ())])
            .await
            .is_some()
        {
            seen.unmatched += 1;
        }
        *record.borrow_mut() = Some(seen);
    });
    let sent = sim
        .run_until(&sending, move |p| async move {
            send_old_stream(&p, receiver).await
        })
        .map_err(|err| err.to_string())?;
    // Long enough for the receiver's timeout and the agent's turn.
    let mut waited = Duration::ZERO;
    while seen.borrow().is_none() && waited < RECEIVE_TIMEOUT * 2 {
        sim.run_for(Duration::from_secs(1));
        waited += Duration::from_secs(1);
    }
    sim.run_for(Duration::from_secs(1));
    let Some(seen) = seen.borrow_mut().take() else {
        return Err("the receiver never finished".into());
    };
    if !seen.wrong.is_empty() {
        return Err(format!(
            "messages of the old shapes read as values of the new ones: {:?}",
            seen.wrong
        ));
    }
    let dropped = undecodable.get();
    sim.sometimes("mixed_shapes.unmatched", seen.unmatched > 0);
    sim.sometimes("mixed_shapes.undecodable_reported", dropped > 0);
    // Under faults a broken connection loses what it carried, but nothing is counted
    // twice and nothing is invented.
    if seen.unmatched > sent.jobs || dropped > sent.notes {
        return Err(format!(
            "more reported than sent: {} unmatched for {} jobs, {dropped} dropped for {} notes",
            seen.unmatched, sent.jobs, sent.notes
        ));
    }
    // The end marker came after everything on one connection: with it, every message
    // of another shape is accounted for, unless a connection broke on the way.
    let quiet = sim.fault_plan().break_rate == 0.0
        && sim.fault_plan().partition_rate == 0.0
        && sim.fault_plan().crash_rate == 0.0;
    if quiet && seen.sent.is_none() {
        return Err("a quiet world, yet the end marker never arrived".into());
    }
    if quiet && (seen.unmatched != sent.jobs || dropped != sent.notes) {
        return Err(format!(
            "a quiet world: {} unmatched for {} jobs, {dropped} reported undecodable for {} notes",
            seen.unmatched, sent.jobs, sent.notes
        ));
    }
    Ok(())
}

/// The old node's stream: jobs and notes at random, then the count of each.
async fn send_old_stream(p: &hyperion::Process, to: ProcessId) -> Sent {
    let (job_path, note_path) = (
        std::any::type_name::<new::Job>(),
        std::any::type_name::<new::Note>(),
    );
    let mut sent = Sent { jobs: 0, notes: 0 };
    for k in 1..=MESSAGES {
        let message = if p.random_u64() % 2 == 0 {
            sent.jobs += 1;
            as_old_build_sends(
                old::Job {
                    id: k,
                    weight: 10 * k,
                },
                job_path,
            )
        } else {
            sent.notes += 1;
            let note = old::Note {
                id: Id(k),
                text: format!("note {k}"),
            };
            as_old_build_sends(note, note_path)
        };
        p.forward(to, message);
        if p.random_u64() % 4 == 0 {
            p.sleep(Duration::from_millis(p.random_u64() % 50)).await;
        }
    }
    p.send(to, sent);
    sent
}
