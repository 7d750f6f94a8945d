//! What a launcher that started a worker as a child process (a local process, a
//! Slurm job step) knows of it while the master waits for it to connect.

use std::process::Child;

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
