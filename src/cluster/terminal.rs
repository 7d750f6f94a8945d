//! What a master tells its user on the terminal: the first warning or error of each
//! kind (each place in the code that reports one), with the log's path, so that a
//! failure is not found only by reading `master.log`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Prints a line on the terminal without breaking what the program draws there (a
/// progress bar); `None`: standard error.
type Printer = Box<dyn Fn(&str) + Send>;

static PRINTER: Mutex<Option<Printer>> = Mutex::new(None);

/// Routes the master's terminal notices (see [`crate::cluster`]) through `print`, for
/// a program that draws on the terminal itself (e.g. `indicatif`'s
/// `ProgressBar::println`, which prints above the bar).
pub fn print_notices_with(print: impl Fn(&str) + Send + 'static) {
    *PRINTER.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(print));
}

/// Prints one notice line on the terminal.
pub fn notice(line: &str) {
    match &*PRINTER.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(print) => print(line),
        None => eprintln!("{line}"),
    }
}

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
