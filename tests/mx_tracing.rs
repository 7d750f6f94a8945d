//! Tracing (issue 5): the tracer agent records events to memory or to a JSON-lines
//! file, switchable while it runs (by its handle or by message), filtered by kind; its
//! file is flushed when it stops; the tracing bridge forwards log lines to `tracing`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyperion::mx::{
    mx_log, start_tracer, start_tracing_bridge, MxError, MxEvent, MxEventKind, TraceControl,
    TraceFlags, TraceRecord, TraceTarget, TRACER_AGENT_ID,
};
use hyperion::{Process, ProcessId};
use hyperion_sim::{Faults, Sim};

/// A trace file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("hyperion-mx-{}-{name}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempFile(path)
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn logs(records: &[TraceRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            MxEvent::Log(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Runs the world until nothing is ready and nothing is due within a second: every
/// agent has drained its queue.
fn settle(sim: &mut Sim) {
    sim.run_for(Duration::from_secs(1));
}

#[test]
fn the_tracer_switches_between_memory_and_a_file_while_it_runs() {
    let file = TempFile::new("switch");
    let mut sim = Sim::with_faults(1, Faults::none());
    let node = sim.add_node();
    let tracer = start_tracer(&node, TraceTarget::Memory).unwrap();
    let log = |sim: &mut Sim, text: &'static str| {
        sim.run_until(&node, move |p| async move { mx_log(&p, text) })
            .unwrap();
        settle(sim);
    };
    log(&mut sim, "to memory");
    tracer
        .set_target(TraceTarget::File(file.0.clone()))
        .unwrap();
    assert_eq!(tracer.target(), TraceTarget::File(file.0.clone()));
    log(&mut sim, "to the file");
    tracer.set_target(TraceTarget::Memory).unwrap(); // flushes the file
    log(&mut sim, "to memory again");

    assert_eq!(
        logs(&tracer.records()),
        vec!["to memory", "to memory again"]
    );
    let lines = file.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""event":"log","text":"to the file""#)),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("to memory")), "{lines:?}");
    // Every line is one JSON object with the time, the node and the kind first.
    let node_text = format!(r#""node":"{}""#, node.id());
    for line in &lines {
        assert!(
            line.starts_with(r#"{"at_ns":"#) && line.ends_with('}'),
            "{line}"
        );
        assert!(line.contains(&node_text), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains(r#""event":"spawned""#)));
    assert!(lines
        .iter()
        .any(|l| l.contains(r#""event":"process_died""#)));
}

/// Sends `control` to the node's tracer, then asks for its records: the answer means
/// the tracer has applied `control` (it handles its mailbox in order).
async fn control(p: &Process, control: TraceControl) -> Vec<TraceRecord> {
    p.nsend(TRACER_AGENT_ID, control);
    p.nsend(
        TRACER_AGENT_ID,
        TraceControl::Records {
            reply_to: p.self_pid(),
        },
    );
    p.expect::<Vec<TraceRecord>>().await
}

#[test]
fn any_process_switches_the_tracer_by_message() {
    let file = TempFile::new("by-message");
    let mut sim = Sim::with_faults(2, Faults::none());
    let node = sim.add_node();
    let tracer = start_tracer(&node, TraceTarget::Memory).unwrap();
    let path = file.0.clone();
    sim.run_until(&node, move |p| async move {
        mx_log(&p, "first");
        control(&p, TraceControl::SetTarget(TraceTarget::File(path))).await;
        mx_log(&p, "second");
    })
    .unwrap();
    settle(&mut sim);
    let records = sim
        .run_until(&node, |p| async move {
            control(&p, TraceControl::SetTarget(TraceTarget::Memory)).await;
            mx_log(&p, "third");
            control(&p, TraceControl::Flush).await;
            mx_log(&p, "fourth");
        })
        .and_then(|()| {
            settle(&mut sim);
            sim.run_until(
                &node,
                |p| async move { control(&p, TraceControl::Flush).await },
            )
        })
        .unwrap();
    let memory = logs(&records);
    assert!(memory.contains(&"third".to_string()), "{memory:?}");
    assert!(memory.contains(&"fourth".to_string()), "{memory:?}");
    assert!(!memory.contains(&"second".to_string()), "{memory:?}");
    let lines = file.lines();
    assert!(
        lines.iter().any(|l| l.contains(r#""text":"second""#)),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("third")), "{lines:?}");
    assert_eq!(tracer.target(), TraceTarget::Memory);
}

#[test]
fn trace_flags_choose_the_kinds_recorded_and_off_records_nothing() {
    let mut sim = Sim::with_faults(3, Faults::none());
    let node = sim.add_node();
    let tracer = start_tracer(&node, TraceTarget::Memory).unwrap();
    tracer.set_flags(TraceFlags::of(&[MxEventKind::Log]));
    sim.run_until(&node, |p| async move {
        let child = p.spawn_local(|_| async {});
        p.send(child, 1u8);
        mx_log(&p, "only this");
    })
    .unwrap();
    settle(&mut sim);
    let records = tracer.take_records();
    assert_eq!(logs(&records), vec!["only this"]);
    assert_eq!(records.len(), 1, "{records:?}");

    tracer.set_flags(TraceFlags::all());
    tracer.set_target(TraceTarget::Off).unwrap();
    sim.run_until(&node, |p| async move { mx_log(&p, "nowhere") })
        .unwrap();
    settle(&mut sim);
    assert!(tracer.records().is_empty());
}

#[test]
fn the_trace_file_is_flushed_when_the_node_shuts_down() {
    let file = TempFile::new("shutdown");
    let mut sim = Sim::with_faults(4, Faults::none());
    let node = sim.add_node();
    start_tracer(&node, TraceTarget::File(file.0.clone())).unwrap();
    sim.run_until(&node, |p| async move { mx_log(&p, "last words") })
        .unwrap();
    settle(&mut sim);
    // A few short lines sit in the writer's buffer until the tracer stops.
    assert!(file.lines().is_empty());
    node.shutdown();
    assert!(file
        .lines()
        .iter()
        .any(|l| l.contains(r#""text":"last words""#)));
}

#[test]
fn a_trace_file_that_cannot_be_opened_is_an_error() {
    let mut sim = Sim::with_faults(5, Faults::none());
    let node = sim.add_node();
    let nowhere = PathBuf::from("/nonexistent-directory/trace.jsonl");
    let refused = start_tracer(&node, TraceTarget::File(nowhere.clone()));
    assert!(
        matches!(refused, Err(MxError::Io(_))),
        "{:?}",
        refused.err()
    );
    let tracer = start_tracer(&node, TraceTarget::Memory).unwrap();
    assert!(matches!(
        tracer.set_target(TraceTarget::File(nowhere)),
        Err(MxError::Io(_))
    ));
    assert_eq!(tracer.target(), TraceTarget::Memory);
    // One tracer per node.
    assert!(matches!(
        start_tracer(&node, TraceTarget::Memory),
        Err(MxError::DuplicateAgentId { .. })
    ));
}

#[test]
fn a_simulated_trace_file_is_the_same_for_the_same_seed() {
    let run = |name: &str| {
        let file = TempFile::new(name);
        let mut sim = Sim::new(77); // swarm faults drawn from the seed
        let a = sim.add_node();
        let b = sim.add_node();
        start_tracer(&a, TraceTarget::File(file.0.clone())).unwrap();
        let peer = b.spawn(|p: Process| async move {
            for _ in 0..5 {
                let (from, n): (ProcessId, u32) = p.expect().await;
                p.send(from, n);
            }
        });
        let _ = sim.run_until(&a, move |p| async move {
            for n in 0..5u32 {
                p.send(peer, (p.self_pid(), n));
                let _ = p.expect_timeout::<u32>(Duration::from_secs(10)).await;
            }
        });
        a.shutdown();
        file.lines()
    };
    let first = run("same-seed-1");
    assert!(!first.is_empty());
    assert_eq!(first, run("same-seed-2"));
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_tracing_bridge_forwards_log_events_to_tracing() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut sim = Sim::with_faults(6, Faults::none());
        let node = sim.add_node();
        start_tracing_bridge(&node).unwrap();
        sim.run_until(&node, |p| async move {
            mx_log(&p, "bridged line");
        })
        .unwrap();
        settle(&mut sim);
    });
    let mut out = captured.0.lock().unwrap().clone();
    out.flush().unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("bridged line") && text.contains("hyperion::mx"),
        "{text}"
    );
}
