//! The tracer: an agent that records the node's [`MxEvent`]s to memory or to a
//! JSON-lines file, switchable while it runs (Cloud Haskell's trace controller).
//!
//! Each record carries the node's clock reading (virtual time in the simulator), so a
//! simulated run's trace file is the same for the same seed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::agent::{mx_agent_with_finalize, mx_receive, mx_sink, MxAgent, MxAgentId};
use super::{MxError, MxHost};
use crate::bus::events::{MxEvent, MxMessageInfo};
use crate::bus::trace_control::{TraceControl, TraceFlags, TraceTarget};
use crate::types::id::SendPortId;
use crate::types::id::{NodeId, ProcessId};

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
        let mut line = JsonLine {
            at_ns: self.at.as_nanos(),
            node: self.node.to_string(),
            event: self.event.kind().name(),
            ..JsonLine::default()
        };
        match &self.event {
            MxEvent::Spawned(pid) => line.pid = Some(pid.to_string()),
            MxEvent::Registered { pid, name } | MxEvent::Unregistered { pid, name } => {
                line.pid = Some(pid.to_string());
                line.name = Some(name);
            }
            MxEvent::ProcessDied { pid, reason } => {
                line.pid = Some(pid.to_string());
                line.reason = Some(reason.to_string());
            }
            MxEvent::NodeDied { node, reason } => {
                line.peer = Some(node.to_string());
                line.reason = Some(reason.to_string());
            }
            MxEvent::Sent { to, from, message } => {
                line.from = Some(from.to_string());
                line.to = Some(to.to_string());
                line.r#type = Some(type_text(message));
            }
            MxEvent::SentToName {
                name,
                from,
                message,
            } => {
                line.from = Some(from.to_string());
                line.name = Some(name);
                line.r#type = Some(type_text(message));
            }
            MxEvent::SentToPort {
                from,
                port,
                message,
            } => {
                line.from = Some(from.to_string());
                line.port = Some(port_text(port));
                line.r#type = Some(type_text(message));
            }
            MxEvent::Received { pid, message } => {
                line.pid = Some(pid.to_string());
                line.r#type = Some(type_text(message));
            }
            MxEvent::ReceivedPort { port, message } => {
                line.port = Some(port_text(port));
                line.r#type = Some(type_text(message));
            }
            MxEvent::Connected { connection, node }
            | MxEvent::Disconnected { connection, node } => {
                line.connection = Some(*connection);
                line.peer = Some(node.to_string());
            }
            MxEvent::MessageRefused {
                from,
                to,
                bytes,
                limit,
            } => {
                line.from = Some(from.to_string());
                line.to = Some(to.to_string());
                line.bytes = Some(*bytes);
                line.limit = Some(*limit);
            }
            MxEvent::User(payload) => {
                line.r#type = Some(payload.type_name().to_string());
                line.bytes = Some(payload.bytes().len() as u64);
            }
            MxEvent::Log(text) => line.text = Some(text),
            MxEvent::SlowPoll { pid, held, bound } => {
                line.pid = Some(pid.to_string());
                line.held_ns = Some(held.as_nanos());
                line.bound_ns = Some(bound.as_nanos());
            }
        }
        // Strings and integers only: serialization cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// One trace line as serde_json writes it. Fields appear in declaration order and only
/// when set, which gives every event kind the order its readers know: `at_ns`, `node`,
/// `event`, then the kind's fields (`from` before `to`, `type` after the addresses).
#[derive(Serialize, Default)]
struct JsonLine<'a> {
    at_ns: u128,
    node: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_ns: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bound_ns: Option<u128>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::events::Info;
    use crate::message::Fingerprint;
    use crate::mx::{MxPayload, MxRecipient};
    use crate::types::id::DiedReason;

    fn one_of_each_kind() -> Vec<MxEvent> {
        let node = NodeId {
            address: "10.0.0.1:7000".parse().unwrap(),
            incarnation: 255,
        };
        let pid = ProcessId { node, local: 3 };
        let other = ProcessId { node, local: 4 };
        let port = SendPortId {
            owner: other,
            channel: 9,
        };
        let named = || MxMessageInfo::from(Info::Named("u64"));
        let encoded = || MxMessageInfo::from(Info::Encoded(Fingerprint(0xabc)));
        vec![
            MxEvent::Spawned(pid),
            MxEvent::Registered {
                pid,
                name: "a \"quoted\" name".into(),
            },
            MxEvent::Unregistered {
                pid,
                name: "tab\there".into(),
            },
            MxEvent::ProcessDied {
                pid,
                reason: DiedReason::Exception("line one\nline two \\ \u{1}".into()),
            },
            MxEvent::NodeDied {
                node,
                reason: DiedReason::Disconnect,
            },
            MxEvent::Sent {
                to: other,
                from: pid,
                message: named(),
            },
            MxEvent::SentToName {
                name: "logger".into(),
                from: pid,
                message: encoded(),
            },
            MxEvent::SentToPort {
                from: pid,
                port,
                message: named(),
            },
            MxEvent::Received {
                pid,
                message: encoded(),
            },
            MxEvent::ReceivedPort {
                port,
                message: named(),
            },
            MxEvent::Connected {
                connection: 12,
                node,
            },
            MxEvent::Disconnected {
                connection: 12,
                node,
            },
            MxEvent::MessageRefused {
                from: pid,
                to: MxRecipient::Name {
                    node,
                    name: "big".into(),
                },
                bytes: 70_000_000,
                limit: 67_108_864,
            },
            MxEvent::User(MxPayload::new(&7u32).unwrap()),
            MxEvent::Log("héllo \u{7f} \u{1f}".into()),
            MxEvent::SlowPoll {
                pid,
                held: Duration::from_millis(250),
                bound: Duration::from_millis(100),
            },
        ]
    }

    /// Every event kind's line: the format a trace file's readers parse, unchanged
    /// since the lines were written by hand (key order included).
    #[test]
    fn every_event_kind_has_its_documented_json_line() {
        let node = NodeId {
            address: "10.0.0.1:7000".parse().unwrap(),
            incarnation: 255,
        };
        let lines: Vec<String> = one_of_each_kind()
            .into_iter()
            .map(|event| {
                TraceRecord {
                    at: Duration::from_nanos(1_500),
                    node,
                    event,
                }
                .to_json()
            })
            .collect();
        let expected = [
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"spawned\",\"pid\":\"pid://10.0.0.1:7000#ff/3\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"registered\",\"pid\":\"pid://10.0.0.1:7000#ff/3\",\"name\":\"a \\\"quoted\\\" name\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"unregistered\",\"pid\":\"pid://10.0.0.1:7000#ff/3\",\"name\":\"tab\\there\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"process_died\",\"pid\":\"pid://10.0.0.1:7000#ff/3\",\"reason\":\"exception: line one\\nline two \\\\ \\u0001\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"node_died\",\"peer\":\"10.0.0.1:7000#ff\",\"reason\":\"disconnected\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"sent\",\"from\":\"pid://10.0.0.1:7000#ff/3\",\"to\":\"pid://10.0.0.1:7000#ff/4\",\"type\":\"u64\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"sent_to_name\",\"from\":\"pid://10.0.0.1:7000#ff/3\",\"name\":\"logger\",\"type\":\"Fingerprint(0000000000000abc)\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"sent_to_port\",\"from\":\"pid://10.0.0.1:7000#ff/3\",\"port\":\"pid://10.0.0.1:7000#ff/4/9\",\"type\":\"u64\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"received\",\"pid\":\"pid://10.0.0.1:7000#ff/3\",\"type\":\"Fingerprint(0000000000000abc)\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"received_port\",\"port\":\"pid://10.0.0.1:7000#ff/4/9\",\"type\":\"u64\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"connected\",\"connection\":12,\"peer\":\"10.0.0.1:7000#ff\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"disconnected\",\"connection\":12,\"peer\":\"10.0.0.1:7000#ff\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"message_refused\",\"from\":\"pid://10.0.0.1:7000#ff/3\",\"to\":\"\\\"big\\\"@10.0.0.1:7000#ff\",\"bytes\":70000000,\"limit\":67108864}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"user\",\"type\":\"u32\",\"bytes\":1}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"log\",\"text\":\"héllo \u{7f} \\u001f\"}",
            "{\"at_ns\":1500,\"node\":\"10.0.0.1:7000#ff\",\"event\":\"slow_poll\",\"pid\":\"pid://10.0.0.1:7000#ff/3\",\"held_ns\":250000000,\"bound_ns\":100000000}",
        ];
        assert_eq!(lines, expected);
    }

    /// Every line is one JSON object whose `event` names the kind.
    #[test]
    fn every_line_parses_as_json() {
        let node = NodeId {
            address: "10.0.0.1:7000".parse().unwrap(),
            incarnation: 255,
        };
        for event in one_of_each_kind() {
            let name = event.kind().name();
            let line = TraceRecord {
                at: Duration::from_nanos(u64::MAX),
                node,
                event,
            }
            .to_json();
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(value["event"], name, "{line}");
            assert_eq!(value["at_ns"], u64::MAX, "{line}");
        }
    }
}
