//! Which earlier run a master resumes from: `--resume` (the latest run with a store) or
//! `--resume run-0007`.

use std::path::{Path, PathBuf};

use super::STORE_FILE_NAME;

/// The run a new run starts from (see
/// [`ClusterConfig::resume_from`](crate::cluster::ClusterConfig::resume_from)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The highest-numbered run under the runs directory that has a result store.
    Latest,
    /// A run by name under the runs directory (`run-0007`), or a run directory's path.
    Run(PathBuf),
}

impl Resume {
    /// The run directory this means under `runs_dir`, or why there is none. Resolved
    /// before the new run's directory is made, so that `Latest` is never the new run.
    ///
    /// ```
    /// use hyperion::store::Resume;
    /// let runs = std::env::temp_dir().join(format!("hyperion-resume-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(runs.join("run-0002")).unwrap();
    /// std::fs::write(runs.join("run-0002/results.db"), b"").unwrap();
    /// std::fs::create_dir_all(runs.join("run-0003")).unwrap(); // no store: skipped
    /// assert_eq!(Resume::Latest.resolve(&runs), Ok(runs.join("run-0002")));
    /// assert!(Resume::Run("run-0009".into()).resolve(&runs).is_err());
    /// # std::fs::remove_dir_all(runs).unwrap();
    /// ```
    pub fn resolve(&self, runs_dir: &Path) -> Result<PathBuf, String> {
        match self {
            Resume::Latest => latest_run_with_store(runs_dir).ok_or_else(|| {
                format!(
                    "nothing to resume: no run under {} has a {STORE_FILE_NAME}",
                    runs_dir.display()
                )
            }),
            Resume::Run(run) => {
                let under = runs_dir.join(run);
                if run.is_relative() && under.is_dir() {
                    Ok(under)
                } else if run.is_dir() {
                    Ok(run.clone())
                } else {
                    Err(format!(
                        "cannot resume {}: no such run under {}",
                        run.display(),
                        runs_dir.display()
                    ))
                }
            }
        }
    }
}

/// The highest-numbered `run-NNNN` under `runs_dir` holding a store.
fn latest_run_with_store(runs_dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(runs_dir).ok()?;
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let number: u64 = name.to_str()?.strip_prefix("run-")?.parse().ok()?;
            let dir = runs_dir.join(&name);
            dir.join(STORE_FILE_NAME).is_file().then_some((number, dir))
        })
        .max_by_key(|(number, _)| *number)
        .map(|(_, dir)| dir)
}

/// Takes `--resume`, `--resume RUN` or `--resume=RUN` out of a master's arguments (a
/// following argument that starts with `-` is not a run name). The rest stay, in order,
/// for the program's own parser.
///
/// ```
/// use hyperion::store::{take_resume_flag, Resume};
/// let mut args: Vec<String> = ["--workers", "4", "--resume", "run-0007"].map(String::from).into();
/// assert_eq!(take_resume_flag(&mut args), Some(Resume::Run("run-0007".into())));
/// assert_eq!(args, ["--workers", "4"]);
/// let mut args: Vec<String> = ["--resume", "--tasks", "9"].map(String::from).into();
/// assert_eq!(take_resume_flag(&mut args), Some(Resume::Latest));
/// assert_eq!(args, ["--tasks", "9"]);
/// ```
pub fn take_resume_flag(args: &mut Vec<String>) -> Option<Resume> {
    let mut resume = None;
    let mut kept = Vec::with_capacity(args.len());
    let mut rest = std::mem::take(args).into_iter().peekable();
    while let Some(arg) = rest.next() {
        if let Some(run) = arg.strip_prefix("--resume=") {
            resume = Some(Resume::Run(PathBuf::from(run)));
        } else if arg == "--resume" {
            resume = Some(match rest.next_if(|next| !next.starts_with('-')) {
                Some(run) => Resume::Run(PathBuf::from(run)),
                None => Resume::Latest,
            });
        } else {
            kept.push(arg);
        }
    }
    *args = kept;
    resume
}
