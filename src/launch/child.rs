//! Workers started as child processes (a local process, a Slurm job step): what the
//! launcher knows of one while the master waits for it to connect, and reaping one
//! without blocking the node's event loop.

use std::process::Child;
use std::time::Duration;

use crate::remote::JobState;

/// The state of `child` (or of a child no longer held, `None`), `what` naming it in
/// the reason when it has ended. Reaps an exited child.
// real-world only: operating-system processes.
pub(crate) fn child_state(child: Option<&mut Child>, what: &str) -> JobState {
    match child {
        None => JobState::Ended(format!("{what} is gone")),
        Some(child) => match child.try_wait() {
            Ok(None) => JobState::Running,
            Ok(Some(status)) => {
                JobState::Ended(format!("{what} exited ({status}); its log may say why"))
            }
            Err(_) => JobState::Unknown,
        },
    }
}

/// Waits up to `grace` for `child` to exit, then kills it, on a reaper thread: the
/// node's event loop must not block. `what` names the child in the logs.
// real-world only: operating-system processes and a thread of their own.
pub(crate) fn reap_in_background(mut child: Child, pid: u32, grace: Duration, what: &'static str) {
    if let Ok(Some(status)) = child.try_wait() {
        tracing::debug!(pid, %status, "{what} exited");
        return;
    }
    let reaper = std::thread::Builder::new()
        .name(format!("hyperion-reap-{pid}"))
        .spawn(move || {
            let deadline = std::time::Instant::now().checked_add(grace); // real-world only
            let pending = |d: std::time::Instant| std::time::Instant::now() < d; // real-world only
            while deadline.is_none_or(pending) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            tracing::warn!(pid, "{what} outlived its service; killing it");
            let _ = child.kill();
            let _ = child.wait();
        });
    if let Err(err) = reaper {
        tracing::error!(pid, %err, "cannot start a reaper thread; the {what} may linger");
    }
}
