//! `--launcher auto`: which launcher fits where the master runs. Inside a Slurm
//! allocation, its CPU pool ([`AllocationLauncher`](super::AllocationLauncher): workers
//! as job steps); on a machine where a Slurm controller answers, batch jobs
//! ([`SlurmLauncher`](super::SlurmLauncher)); elsewhere, local processes
//! ([`LocalLauncher`](super::LocalLauncher)).

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use super::{Allocation, SlurmParseError};

/// The launcher `auto` chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LauncherChoice {
    /// The master runs inside this allocation: workers are job steps on its CPUs.
    Allocation(Allocation),
    /// Outside an allocation, with a Slurm controller answering: one batch job per
    /// worker.
    Slurm,
    /// No Slurm: local worker processes.
    Local,
}

impl LauncherChoice {
    /// Decides from this process's environment, asking `sinfo` (from `PATH`) whether a
    /// Slurm controller answers only when no allocation is found. An allocation whose
    /// variables cannot be read is an error, not a silent fall-back: a master inside a
    /// job that starts local processes instead would run on CPUs it was not given.
    pub fn detect() -> Result<LauncherChoice, SlurmParseError> {
        let allocation = Allocation::from_env()?;
        Ok(LauncherChoice::decide(allocation, || {
            slurm_answers(OsStr::new("sinfo"))
        }))
    }

    /// The choice given what was found: an allocation wins; else Slurm if
    /// `slurm_answers()` says a controller answers; else local.
    ///
    /// ```
    /// use hyperion::launch::LauncherChoice;
    /// assert_eq!(LauncherChoice::decide(None, || true), LauncherChoice::Slurm);
    /// assert_eq!(LauncherChoice::decide(None, || false), LauncherChoice::Local);
    /// ```
    pub fn decide(
        allocation: Option<Allocation>,
        slurm_answers: impl FnOnce() -> bool,
    ) -> LauncherChoice {
        match allocation {
            Some(allocation) => LauncherChoice::Allocation(allocation),
            None if slurm_answers() => LauncherChoice::Slurm,
            None => LauncherChoice::Local,
        }
    }

    /// A short name for logs and the status page: `allocation`, `slurm` or `local`.
    pub fn name(&self) -> &'static str {
        match self {
            LauncherChoice::Allocation(_) => "allocation",
            LauncherChoice::Slurm => "slurm",
            LauncherChoice::Local => "local",
        }
    }
}

/// Whether `sinfo -h -o %P` succeeds: a controller answers (an installed client with no
/// cluster fails). Real-world only: it runs a program.
fn slurm_answers(sinfo: &OsStr) -> bool {
    Command::new(sinfo)
        .args(["-h", "-o", "%P"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::AllocatedNode;

    fn allocation() -> Allocation {
        Allocation {
            job_id: "7".into(),
            nodes: vec![AllocatedNode {
                name: "n1".into(),
                cpus: 2,
            }],
        }
    }

    #[test]
    fn an_allocation_wins_without_asking_slurm() {
        let choice = LauncherChoice::decide(Some(allocation()), || panic!("asked sinfo"));
        assert_eq!(choice, LauncherChoice::Allocation(allocation()));
        assert_eq!(choice.name(), "allocation");
    }

    #[test]
    fn a_missing_sinfo_means_no_slurm() {
        assert!(!slurm_answers(OsStr::new("/nonexistent/sinfo")));
    }

    #[test]
    fn a_failing_sinfo_means_no_slurm() {
        assert!(!slurm_answers(OsStr::new("false")));
        assert!(slurm_answers(OsStr::new("true")));
    }
}
