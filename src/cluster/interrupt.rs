//! SIGINT and SIGTERM for a master that wants to stop cleanly: the handler only records
//! the signal; the master's node notices it (see [`wait_for_interrupt`]), stops its
//! workers and writes what it has. A second signal ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::process::Process;

/// How often [`wait_for_interrupt`] looks at the flag.
pub const INTERRUPT_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The signal received, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        // A second signal: the user insists. `_exit` is async-signal-safe.
        // SAFETY: ends the process without running anything else.
        unsafe { nix::libc::_exit(128 + signal) };
    }
}

/// From now on SIGINT and SIGTERM set a flag ([`interrupted`]) instead of ending the
/// process; a second one ends it at once. Call it only if the program checks the flag.
pub fn catch_interrupts() -> std::io::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only touches an atomic and may call `_exit`, both
        // async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// The signal that asked the program to stop, if one came (after
/// [`catch_interrupts`]).
pub fn interrupted() -> Option<Signal> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Signal::try_from(signal).ok(),
    }
}

/// Waits until [`interrupted`] (real-world masters only: it polls the flag every
/// [`INTERRUPT_POLL_INTERVAL`]).
pub async fn wait_for_interrupt(p: &Process) -> Signal {
    loop {
        if let Some(signal) = interrupted() {
            return signal;
        }
        p.sleep(INTERRUPT_POLL_INTERVAL).await;
    }
}
