//! What a master tells its user on the terminal: the first warning or error of each
//! kind (each place in the code that reports one), with the log's path, so that a
//! failure is not found only by reading `master.log`. The printer itself is the leaf
//! `crate::notice`, which the remote layer also prints through.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::notice::notice;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// A `tracing` layer printing the first warning or error of each call site.
pub(crate) struct FirstOfEachKind {
    program: String,
    log: PathBuf,
    seen: Mutex<BTreeSet<&'static str>>,
}

impl FirstOfEachKind {
    pub(crate) fn new(program: String, log: PathBuf) -> FirstOfEachKind {
        FirstOfEachKind {
            program,
            log,
            seen: Mutex::new(BTreeSet::new()),
        }
    }
}

impl<S: Subscriber> Layer<S> for FirstOfEachKind {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        // Levels order from ERROR (most severe) to TRACE.
        if *metadata.level() > Level::WARN {
            return;
        }
        let first = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(metadata.name());
        if !first {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let level = if *metadata.level() == Level::ERROR {
            "error"
        } else {
            "warning"
        };
        notice(&format!(
            "{}: {level}: {}{} (first of its kind; all in {})",
            self.program,
            text.message,
            text.fields,
            self.log.display()
        ));
    }
}

/// An event's message and fields as one line.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, "; {}: {value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, "; {}: {value}", field.name());
        }
    }
}
