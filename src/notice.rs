//! Notices: the lines a program prints on its user's terminal (a master's first warning
//! of each kind, a worker's handshake refused), through a printer the program may
//! replace so that they do not break what it draws there. A leaf: the remote layer and
//! the cluster entry point both print through it, and `cluster` re-exports it.

use std::sync::Mutex;

/// Prints a line on the terminal without breaking what the program draws there (a
/// progress bar); `None`: standard error.
type Printer = Box<dyn Fn(&str) + Send>;

static PRINTER: Mutex<Option<Printer>> = Mutex::new(None);

/// Routes the master's terminal notices (see [`crate::cluster`]) through `print`, for
/// a program that draws on the terminal itself (e.g. `indicatif`'s
/// `ProgressBar::println`, which prints above the bar).
#[cfg_attr(not(feature = "cluster"), allow(dead_code))] // re-exported by `cluster` only
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
