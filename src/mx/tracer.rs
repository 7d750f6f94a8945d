//! The tracer: an agent that records the node's [`MxEvent`]s to memory or to a
//! JSON-lines file, switchable while it runs (Cloud Haskell's trace controller).
//!
//! Each record carries the node's clock reading (virtual time in the simulator), so a
//! simulated run's trace file is the same for the same seed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::agent::{mx_agent_with_finalize, mx_receive, mx_sink, MxAgent, MxAgentId};
use super::events::{MxEvent, MxMessageInfo};
use super::trace_control::{TraceControl, TraceFlags, TraceTarget};
use super::{MxError, MxHost};
use crate::process::channel::SendPortId;
use crate::process::id::{NodeId, ProcessId};

/// The id the tracer agent registers under: one tracer per node.
pub const TRACER_AGENT_ID: &str = "hyperion.tracer";

/// Most records the tracer keeps in memory; older ones are dropped first (and
/// counted, see [`Tracer::records_dropped`]).
pub const TRACE_MEMORY_RECORDS_MAX: usize = 100_000;

/// One recorded event.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TraceRecord {
    /// The node's clock when the tracer recorded it.
    pub at: Duration,
    /// The node.
    pub node: NodeId,
    /// The event.
    pub event: MxEvent,
}

impl TraceRecord {
    /// The record as one line of JSON (no newline): `at_ns`, `node`, `event` (the kind's
    /// name) and the event's fields.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hyperion::mx::{MxEvent, TraceRecord};
    /// let node = hyperion::NodeId { address: "10.0.0.1:7000".parse().unwrap(), incarnation: 255 };
    /// let record = TraceRecord { at: Duration::from_nanos(5), node, event: MxEvent::Log("a \"b\"".into()) };
    /// assert_eq!(
    ///     record.to_json(),
    ///     r#"{"at_ns":5,"node":"10.0.0.1:7000#ff","event":"log","text":"a \"b\""}"#
    /// );
    /// ```
    pub fn to_json(&self) -> String {
        let mut line = String::with_capacity(160);
        line.push_str("{\"at_ns\":");
        let _ = write!(line, "{}", self.at.as_nanos());
        field(&mut line, "node", &self.node.to_string());
        field(&mut line, "event", self.event.kind().name());
        match &self.event {
            MxEvent::Spawned(pid) => field(&mut line, "pid", &pid.to_string()),
            MxEvent::Registered { pid, name } | MxEvent::Unregistered { pid, name } => {
                field(&mut line, "pid", &pid.to_string());
                field(&mut line, "name", name);
            }
            MxEvent::ProcessDied { pid, reason } => {
                field(&mut line, "pid", &pid.to_string());
                field(&mut line, "reason", &reason.to_string());
            }
            MxEvent::NodeDied { node, reason } => {
                field(&mut line, "peer", &node.to_string());
                field(&mut line, "reason", &reason.to_string());
            }
            MxEvent::Sent { to, from, message } => {
                field(&mut line, "from", &from.to_string());
                field(&mut line, "to", &to.to_string());
                field(&mut line, "type", &type_text(message));
            }
            MxEvent::SentToName {
                name,
                from,
                message,
            } => {
                field(&mut line, "from", &from.to_string());
                field(&mut line, "name", name);
                field(&mut line, "type", &type_text(message));
            }
            MxEvent::SentToPort {
                from,
                port,
                message,
            } => {
                field(&mut line, "from", &from.to_string());
                field(&mut line, "port", &port_text(port));
                field(&mut line, "type", &type_text(message));
            }
            MxEvent::Received { pid, message } => {
                field(&mut line, "pid", &pid.to_string());
                field(&mut line, "type", &type_text(message));
            }
            MxEvent::ReceivedPort { port, message } => {
                field(&mut line, "port", &port_text(port));
                field(&mut line, "type", &type_text(message));
            }
            MxEvent::Connected { connection, node }
            | MxEvent::Disconnected { connection, node } => {
                let _ = write!(line, ",\"connection\":{connection}");
                field(&mut line, "peer", &node.to_string());
            }
            MxEvent::MessageRefused {
                from,
                to,
                bytes,
                limit,
            } => {
                field(&mut line, "from", &from.to_string());
                field(&mut line, "to", &to.to_string());
                let _ = write!(line, ",\"bytes\":{bytes},\"limit\":{limit}");
            }
            MxEvent::User(payload) => {
                field(&mut line, "type", payload.type_name());
                let _ = write!(line, ",\"bytes\":{}", payload.bytes().len());
            }
            MxEvent::Log(text) => field(&mut line, "text", text),
            MxEvent::SlowPoll { pid, held, bound } => {
                field(&mut line, "pid", &pid.to_string());
                let _ = write!(
                    line,
                    ",\"held_ns\":{},\"bound_ns\":{}",
                    held.as_nanos(),
                    bound.as_nanos()
                );
            }
        }
        line.push('}');
        line
    }
}

fn port_text(port: &SendPortId) -> String {
    format!("{}/{}", port.owner, port.channel)
}

fn type_text(message: &MxMessageInfo) -> String {
    match message.type_name() {
        Some(name) => name.to_string(),
        None => format!("{:?}", message.fingerprint()),
    }
}

/// Appends `,"key":"value"` with `value` escaped as a JSON string.
fn field(line: &mut String, key: &str, value: &str) {
    let _ = write!(line, ",\"{key}\":\"");
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

enum Output {
    Off,
    Memory,
    File {
        path: PathBuf,
        writer: BufWriter<File>,
    },
}

/// The tracer's state, shared by its agent and its [`Tracer`] handle (both on the
/// node's thread; borrowed only briefly, never across an await).
struct Core {
    node: NodeId,
    output: Output,
    flags: TraceFlags,
    memory: VecDeque<TraceRecord>,
    dropped: u64,
}

impl Core {
    fn set_target(&mut self, target: TraceTarget) -> Result<(), MxError> {
        let output = match target {
            TraceTarget::Off => Output::Off,
            TraceTarget::Memory => Output::Memory,
            TraceTarget::File(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|err| MxError::Io(format!("{}: {err}", path.display())))?;
                Output::File {
                    path,
                    writer: BufWriter::new(file),
                }
            }
        };
        self.flush()?;
        self.output = output;
        Ok(())
    }

    fn target(&self) -> TraceTarget {
        match &self.output {
            Output::Off => TraceTarget::Off,
            Output::Memory => TraceTarget::Memory,
            Output::File { path, .. } => TraceTarget::File(path.clone()),
        }
    }

    fn flush(&mut self) -> Result<(), MxError> {
        if let Output::File { path, writer } = &mut self.output {
            writer
                .flush()
                .map_err(|err| MxError::Io(format!("{}: {err}", path.display())))?;
        }
        Ok(())
    }

    fn record(&mut self, at: Duration, event: &MxEvent) {
        if !self.flags.contains(event.kind()) {
            return;
        }
        let record = || TraceRecord {
            at,
            node: self.node,
            event: event.clone(),
        };
        match &mut self.output {
            Output::Off => {}
            Output::Memory => {
                if self.memory.len() >= TRACE_MEMORY_RECORDS_MAX {
                    self.memory.pop_front();
                    self.dropped += 1;
                }
                let record = record();
                self.memory.push_back(record);
            }
            Output::File { path, writer } => {
                let mut line = record().to_json();
                line.push('\n');
                if let Err(err) = writer.write_all(line.as_bytes()) {
                    tracing::error!(path = %path.display(), %err, "trace file write failed; tracing turned off");
                    self.output = Output::Off;
                }
            }
        }
    }

    fn control(&mut self, control: &TraceControl) -> Option<(ProcessId, Vec<TraceRecord>)> {
        let result = match control {
            TraceControl::SetTarget(target) => self.set_target(target.clone()),
            TraceControl::SetFlags(flags) => {
                self.flags = *flags;
                Ok(())
            }
            TraceControl::Flush => self.flush(),
            TraceControl::Records { reply_to } => {
                return Some((*reply_to, self.memory.iter().cloned().collect()));
            }
        };
        if let Err(err) = result {
            tracing::error!(%err, ?control, "trace control refused");
        }
        None
    }
}

/// A running tracer agent, as seen from its node's thread.
///
/// ```
/// use hyperion::mx::{mx_log, start_tracer, MxEvent, TraceTarget};
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// let tracer = start_tracer(&p, TraceTarget::Memory).unwrap();
/// mx_log(&p, "hello");
/// p.yield_now().await; // the tracer runs
/// assert!(tracer.records().iter().any(|r| r.event == MxEvent::Log("hello".into())));
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Tracer {
    pid: ProcessId,
    core: Rc<RefCell<Core>>,
}

impl Tracer {
    /// The tracer agent's process (send it [`TraceControl`] messages).
    pub fn pid(&self) -> ProcessId {
        self.pid
    }

    /// Writes to `target` from now on; the previous file is flushed.
    pub fn set_target(&self, target: TraceTarget) -> Result<(), MxError> {
        self.core.borrow_mut().set_target(target)
    }

    /// Where the tracer writes now.
    pub fn target(&self) -> TraceTarget {
        self.core.borrow().target()
    }

    /// Records only these kinds from now on.
    pub fn set_flags(&self, flags: TraceFlags) {
        self.core.borrow_mut().flags = flags;
    }

    /// The kinds recorded.
    pub fn flags(&self) -> TraceFlags {
        self.core.borrow().flags
    }

    /// A copy of the in-memory records, oldest first.
    pub fn records(&self) -> Vec<TraceRecord> {
        self.core.borrow().memory.iter().cloned().collect()
    }

    /// The in-memory records, oldest first, leaving none.
    pub fn take_records(&self) -> Vec<TraceRecord> {
        self.core.borrow_mut().memory.drain(..).collect()
    }

    /// Records dropped from memory because [`TRACE_MEMORY_RECORDS_MAX`] were kept.
    pub fn records_dropped(&self) -> u64 {
        self.core.borrow().dropped
    }

    /// Flushes the trace file, if the tracer writes to one.
    pub fn flush(&self) -> Result<(), MxError> {
        self.core.borrow_mut().flush()
    }
}

/// Starts the node's tracer agent (registered as [`TRACER_AGENT_ID`]), recording every
/// event kind to `target`. The file, if any, is flushed when the tracer stops (its
/// finalizer), including at node shutdown.
pub fn start_tracer(host: &impl MxHost, target: TraceTarget) -> Result<Tracer, MxError> {
    let node = host.mx_node();
    let mut core = Core {
        node: node.id(),
        output: Output::Off,
        flags: TraceFlags::all(),
        memory: VecDeque::new(),
        dropped: 0,
    };
    core.set_target(target)?;
    let core = Rc::new(RefCell::new(core));
    type State = Rc<RefCell<Core>>;
    let sinks = vec![
        mx_sink(|agent: &mut MxAgent<'_, State>, control: &TraceControl| {
            let reply = agent.mx_get_local().borrow_mut().control(control);
            if let Some((to, records)) = reply {
                agent.process().send(to, records);
            }
            mx_receive()
        }),
        mx_sink(|agent: &mut MxAgent<'_, State>, event: &MxEvent| {
            let now = agent.process().now();
            agent.mx_get_local().borrow_mut().record(now, event);
            // Control messages waiting in the mailbox go first.
            mx_receive()
        }),
    ];
    let pid = mx_agent_with_finalize(
        host,
        MxAgentId::new(TRACER_AGENT_ID),
        core.clone(),
        sinks,
        |stopped| {
            if let Err(err) = stopped.state().borrow_mut().flush() {
                tracing::error!(%err, "trace file not flushed at tracer stop");
            }
        },
    )?;
    Ok(Tracer { pid, core })
}
