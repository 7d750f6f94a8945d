//! `sbatch` options for worker jobs, and reading `sbatch --parsable`'s answer.

use std::path::PathBuf;
use std::time::Duration;

use crate::remote::Resources;

/// `sbatch` options for worker jobs. Every field maps to one `sbatch` option; `None`
/// leaves Slurm's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmOptions {
    /// `--job-name`.
    pub job_name: String,
    /// `--chdir`.
    pub working_dir: Option<PathBuf>,
    /// `--output` (Slurm's own log of the job).
    pub output: Option<PathBuf>,
    /// `--nodes`.
    pub nodes: Option<u32>,
    /// `--ntasks-per-node`.
    pub tasks_per_node: Option<u32>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<u32>,
    /// `--time` (rounded up to whole minutes).
    pub time_limit: Option<Duration>,
    /// `--mem` (e.g. `"4G"`).
    pub memory: Option<String>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--constraint`.
    pub constraint: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// `--mail-type`.
    pub mail_type: Option<String>,
    /// `--mail-user`.
    pub mail_user: Option<String>,
    /// `--no-requeue` (on by default: a requeued worker would talk to a finished
    /// service).
    pub no_requeue: bool,
    /// Lines run before the worker starts (e.g. `module load gcc`).
    pub preamble: Vec<String>,
    /// The `sbatch` program.
    pub sbatch: PathBuf,
    /// The `scancel` program.
    pub scancel: PathBuf,
    /// The `squeue` program.
    pub squeue: PathBuf,
    /// The `sacct` program (asked how a job that left the queue ended; where Slurm's
    /// accounting is off, the launcher does without).
    pub sacct: PathBuf,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            job_name: "hyperion-worker".into(),
            working_dir: None,
            output: None,
            nodes: Some(1),
            tasks_per_node: Some(1),
            cpus_per_task: None,
            time_limit: None,
            memory: None,
            partition: None,
            constraint: None,
            account: None,
            qos: None,
            mail_type: None,
            mail_user: None,
            no_requeue: true,
            preamble: Vec::new(),
            sbatch: "sbatch".into(),
            scancel: "scancel".into(),
            squeue: "squeue".into(),
            sacct: "sacct".into(),
        }
    }
}

impl SlurmOptions {
    /// Sets the job name.
    pub fn job_name(mut self, name: &str) -> SlurmOptions {
        self.job_name = name.to_string();
        self
    }

    /// These options with `resources` over them: CPUs per task, memory (in MB), time
    /// limit and partition asked replace the configured ones.
    ///
    /// ```
    /// use hyperion::launch::SlurmOptions;
    /// use hyperion::remote::Resources;
    /// let options = SlurmOptions { cpus_per_task: Some(1), ..SlurmOptions::default() };
    /// let big = options.with_resources(&Resources::default().cpus(8).memory_mb(4096).partition("big"));
    /// let args = big.sbatch_args();
    /// assert!(args.contains(&"--cpus-per-task=8".to_string()));
    /// assert!(args.contains(&"--mem=4096M".to_string()));
    /// assert!(args.contains(&"--partition=big".to_string()));
    /// ```
    pub fn with_resources(&self, resources: &Resources) -> SlurmOptions {
        let mut options = self.clone();
        let Resources {
            cpus,
            memory_mb,
            time_limit,
            partition,
        } = resources;
        options.cpus_per_task = cpus.or(options.cpus_per_task);
        options.memory = memory_mb.map(|mb| format!("{mb}M")).or(options.memory);
        options.time_limit = time_limit.or(options.time_limit);
        options.partition = partition.clone().or(options.partition);
        options
    }

    /// The `sbatch` argument vector (no shell involved).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hyperion::launch::SlurmOptions;
    /// let options = SlurmOptions { cpus_per_task: Some(4), time_limit: Some(Duration::from_secs(90)), ..SlurmOptions::default() };
    /// let args = options.sbatch_args();
    /// assert!(args.contains(&"--parsable".to_string()));
    /// assert!(args.contains(&"--cpus-per-task=4".to_string()));
    /// assert!(args.contains(&"--time=2".to_string()));
    /// assert!(args.contains(&"--no-requeue".to_string()));
    /// ```
    pub fn sbatch_args(&self) -> Vec<String> {
        self.sbatch_args_named(&self.job_name)
    }

    /// [`sbatch_args`](SlurmOptions::sbatch_args) with another job name (the launcher
    /// gives each job its own, see [`SlurmLauncher::job_name`](super::SlurmLauncher::job_name)).
    pub fn sbatch_args_named(&self, job_name: &str) -> Vec<String> {
        let mut args = vec!["--parsable".to_string(), format!("--job-name={job_name}")];
        let mut option = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{name}={value}"));
            }
        };
        option(
            "chdir",
            self.working_dir.as_ref().map(|p| p.display().to_string()),
        );
        option(
            "output",
            self.output.as_ref().map(|p| p.display().to_string()),
        );
        option("nodes", self.nodes.map(|n| n.to_string()));
        option(
            "ntasks-per-node",
            self.tasks_per_node.map(|n| n.to_string()),
        );
        option("cpus-per-task", self.cpus_per_task.map(|n| n.to_string()));
        option(
            "time",
            self.time_limit
                .map(|t| t.as_secs().div_ceil(60).max(1).to_string()),
        );
        option("mem", self.memory.clone());
        option("partition", self.partition.clone());
        option("constraint", self.constraint.clone());
        option("account", self.account.clone());
        option("qos", self.qos.clone());
        option("mail-type", self.mail_type.clone());
        option("mail-user", self.mail_user.clone());
        if self.no_requeue {
            args.push("--no-requeue".to_string());
        }
        args
    }
}

/// Reads the job id from `sbatch --parsable` output: `123` or `123;cluster`.
///
/// ```
/// use hyperion::launch::parse_job_id;
/// assert_eq!(parse_job_id("4242\n"), Ok(4242));
/// assert_eq!(parse_job_id("17;cluster-a\n"), Ok(17));
/// assert!(parse_job_id("Submitted batch job 5").is_err());
/// assert!(parse_job_id("").is_err());
/// ```
pub fn parse_job_id(stdout: &str) -> Result<u64, String> {
    let line = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let id = line.split(';').next().unwrap_or("");
    id.parse()
        .map_err(|_| format!("cannot read a job id from sbatch output {stdout:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_read_from_plain_and_clustered_output() {
        assert_eq!(parse_job_id("123\n"), Ok(123));
        assert_eq!(parse_job_id("123;cluster\n"), Ok(123));
        assert_eq!(parse_job_id("\n  77  \n"), Ok(77));
        assert!(parse_job_id("sbatch: error: Batch job submission failed").is_err());
        assert!(parse_job_id("-5").is_err());
    }

    #[test]
    fn every_option_becomes_one_argument_and_nothing_goes_through_a_shell() {
        let options = SlurmOptions {
            job_name: "name with spaces; rm -rf /".into(),
            working_dir: Some("/data/run 1".into()),
            output: Some("/logs/%j.out".into()),
            nodes: Some(2),
            tasks_per_node: Some(3),
            cpus_per_task: Some(4),
            time_limit: Some(Duration::from_secs(3601)),
            memory: Some("4G".into()),
            partition: Some("long".into()),
            constraint: Some("avx2".into()),
            account: Some("physics".into()),
            qos: Some("high".into()),
            mail_type: Some("END".into()),
            mail_user: Some("me@example.org".into()),
            no_requeue: true,
            ..SlurmOptions::default()
        };
        let args = options.sbatch_args();
        for expected in [
            "--parsable",
            "--job-name=name with spaces; rm -rf /",
            "--chdir=/data/run 1",
            "--output=/logs/%j.out",
            "--nodes=2",
            "--ntasks-per-node=3",
            "--cpus-per-task=4",
            "--time=61",
            "--mem=4G",
            "--partition=long",
            "--constraint=avx2",
            "--account=physics",
            "--qos=high",
            "--mail-type=END",
            "--mail-user=me@example.org",
            "--no-requeue",
        ] {
            assert!(
                args.iter().any(|a| a == expected),
                "missing {expected} in {args:?}"
            );
        }
    }
}
