//! Workers started as child processes (a local process, a Slurm job step): what the
//! launcher knows of one while the master waits for it to connect, and reaping one
//! without blocking the node's event loop.

use std::process::{Child, Command};
use std::time::Duration;

use crate::process::Process;
use crate::remote::{JobState, LaunchError};

/// Starts `command` on the node's blocking pool and waits for it there: `spawn` forks
/// and waits until the child has exec'd its program, which takes from a millisecond to
/// a quarter of a second on a loaded machine (measured: 50-250 ms with 64 workers
/// starting on 2 CPUs). On the node's thread that time was taken from everything
/// else the node does: a master launching 64 workers held its thread about 90% of the
/// time, so the workers launched first waited seconds for their connections to be
/// accepted, and some of their handshakes ran out of time. The error names the
/// command.
///
/// A child started for a caller that is gone by then (its process killed while it
/// waited) is killed, not left running untracked.
// real-world only: operating-system processes.
pub(crate) async fn spawn_off_the_loop(
    p: &Process,
    mut command: Command,
) -> Result<Child, LaunchError> {
    let started = p
        .run_blocking(move || {
            let spawned = command.spawn().map(|child| Unclaimed(Some(child)));
            (spawned, format!("{command:?}"))
        })
        .await;
    match started {
        (Ok(mut unclaimed), _) => Ok(unclaimed.claim()),
        (Err(err), what) => Err(LaunchError {
            what,
            why: err.to_string(),
        }),
    }
}

/// A child nobody has claimed yet: dropped unclaimed (the future waiting for it was
/// dropped), it is killed and reaped.
struct Unclaimed(Option<Child>);

impl Unclaimed {
    fn claim(&mut self) -> Child {
        self.0.take().expect("claimed once")
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let pid = child.id();
            reap_in_background(child, pid, Duration::ZERO, "unclaimed child process");
        }
    }
}

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
