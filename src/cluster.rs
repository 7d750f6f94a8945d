//! A cluster program's entry point (hyperion's `hyperionMain`): one binary with two
//! subcommands, so that the master launches copies of itself as workers.
//!
//! ```text
//! my-program master [--status-addr IP:PORT | --no-status] [--status-linger S] [--resume [RUN]] [user options...]
//! my-program worker --master ADDR#INCARNATION --service ID [--cookie-file PATH] [--log-file PATH]
//! ```
//!
//! Each master run gets its own directories (hyperion's `HyperionConfig` data, log and
//! job directories), named `run-NNNN` under the bases of its [`ClusterConfig`]:
//! `hyperion-runs/` for everything by default, or other places, with
//! [`main_with_config`] or the `HYPERION_RUNS_DIR`, `HYPERION_LOG_DIR` and
//! `HYPERION_JOB_DIR` environment variables read by [`main`].
//!
//! The master serves its status page (see [`crate::status`]) on `127.0.0.1`, a free
//! port, and prints `status: http://127.0.0.1:PORT/?token=...` first; the program
//! attaches [`Master::status`] to its node and reports its tasks there.
//!
//! A master started with `--resume` (the latest run that has a result store) or
//! `--resume run-0007` opens a new run whose store starts from that run's results
//! ([`Master::open_store`], [`ClusterConfig::resume_from`]): finished work is not
//! computed again.
//!
//! ```no_run
//! use hyperion::{cluster, RemoteTable};
//! fn main() -> std::process::ExitCode {
//!     let mut table = RemoteTable::new();
//!     table.register_call("square", |_p, x: u64| async move { Ok::<_, String>(x * x) });
//!     cluster::main(table, |master| {
//!         println!("master on {}, user args {:?}", master.run_dir.display(), master.args);
//!         std::process::ExitCode::SUCCESS
//!     })
//! }
//! ```
//!
//! Size: about 600 lines of code and 100 of tests, for one idea (a program's two
//! roles and the run directory they share); the run's binary, the terminal and
//! interrupts are already in `cluster/`.

mod binary;
mod interrupt;
mod terminal;

pub use crate::notice::{notice, print_notices_with};
pub use binary::{copy_program, remove_program_copy, run_binary_path};
pub use interrupt::{catch_interrupts, interrupted, wait_for_interrupt, INTERRUPT_POLL_INTERVAL};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::remote::{worker, ServiceId, WorkerConfig, WorkerExit};
use crate::runtime::{Node, NodeConfig};
use crate::status::{StatusBoard, StatusConfig};
use crate::store::{take_resume_flag, Resume, SqliteStore, StoreError};
use crate::transport::tcp::TcpConfig;
use crate::types::id::NodeId;
use crate::{BuildId, RemoteTable};

/// Where a cluster program keeps its files. Every run gets a fresh `run-NNNN` under
/// [`ClusterConfig::runs_dir`], and the same name under the log and job bases when they
/// are elsewhere, so that runs never share a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Where run directories (results, the cookie) are made. Default `hyperion-runs`.
    pub runs_dir: PathBuf,
    /// Where the logs of the master and its workers go; `None`: the run's directory.
    pub log_dir: Option<PathBuf>,
    /// Where batch jobs' own output goes (Slurm's `--output`); `None`: `jobs` in the
    /// run's directory.
    pub job_dir: Option<PathBuf>,
    /// Where the master's status server listens (`127.0.0.1:0`, a free loopback port,
    /// by default); `None`: no server. The master's `--status-addr ADDR` and
    /// `--no-status` override it.
    pub status_addr: Option<std::net::SocketAddr>,
    /// The earlier run whose results the new run starts from; `None`: a fresh start.
    /// [`main`] sets it from `--resume [RUN]`.
    pub resume: Option<Resume>,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            runs_dir: PathBuf::from("hyperion-runs"),
            log_dir: None,
            job_dir: None,
            status_addr: StatusConfig::default().addr.into(),
            resume: None,
        }
    }
}

impl ClusterConfig {
    /// The default, with each base replaced by its environment variable if set and
    /// not empty: `HYPERION_RUNS_DIR`, `HYPERION_LOG_DIR`, `HYPERION_JOB_DIR`.
    pub fn from_env() -> ClusterConfig {
        // An empty variable means unset (not "the current directory").
        let var = |name| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        let default = ClusterConfig::default();
        ClusterConfig {
            runs_dir: var("HYPERION_RUNS_DIR").unwrap_or(default.runs_dir),
            log_dir: var("HYPERION_LOG_DIR"),
            job_dir: var("HYPERION_JOB_DIR"),
            status_addr: default.status_addr,
            resume: None,
        }
    }

    /// Starts the run from an earlier run's results.
    ///
    /// ```
    /// use hyperion::cluster::ClusterConfig;
    /// use hyperion::store::Resume;
    /// let config = ClusterConfig::default().resume_from(Resume::Run("run-0007".into()));
    /// ```
    pub fn resume_from(mut self, run: Resume) -> ClusterConfig {
        self.resume = Some(run);
        self
    }

    /// Makes a new run's directories. All are absolute, so that workers started
    /// elsewhere (a batch job) find them. The error names the path that failed.
    pub fn new_run(&self) -> Result<RunDirs, DirError> {
        let run = new_run_dir(&self.runs_dir)?;
        let name = run
            .file_name()
            .expect("a run directory has a name")
            .to_owned();
        let under = |base: &Option<PathBuf>, default: PathBuf| -> Result<PathBuf, DirError> {
            let dir = base.as_ref().map_or(default, |base| base.join(&name));
            create_all(&dir)?;
            dir.canonicalize().map_err(|err| DirError::new(&dir, err))
        };
        Ok(RunDirs {
            log: under(&self.log_dir, run.clone())?,
            job: under(&self.job_dir, run.join("jobs"))?,
            run,
        })
    }
}

/// A directory that could not be made or read: which one, and why in words.
#[derive(Debug)]
pub struct DirError {
    /// The directory.
    pub path: PathBuf,
    /// What went wrong.
    pub error: std::io::Error,
}

impl DirError {
    fn new(path: &Path, error: std::io::Error) -> DirError {
        DirError {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot create the directory {}: {}",
            self.path.display(),
            io_cause(&self.error)
        )
    }
}

impl std::error::Error for DirError {}

/// An I/O error's cause in words, without the OS error number.
pub fn io_cause(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// `create_dir_all`, with an error that names the path, and a clear one when a part
/// of the path is a file.
fn create_all(dir: &Path) -> Result<(), DirError> {
    if let Some(file) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
        return Err(DirError::new(
            dir,
            std::io::Error::other(format!("{} is not a directory", file.display())),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|err| DirError::new(dir, err))
}

/// One run's directories, made by [`ClusterConfig::new_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDirs {
    /// Results and the cookie.
    pub run: PathBuf,
    /// The master's log and one log per worker.
    pub log: PathBuf,
    /// Batch jobs' own output.
    pub job: PathBuf,
}

/// What the master's code gets.
#[derive(Clone, Debug)]
pub struct Master {
    /// The arguments after `master`.
    pub args: Vec<String>,
    /// This run's directory (results), created under [`ClusterConfig::runs_dir`].
    pub run_dir: PathBuf,
    /// Where this run's logs go: the master's is already there; give it to launchers
    /// for the workers' (`log_dir`).
    pub log_dir: PathBuf,
    /// Where this run's batch jobs write their own output (for Slurm's `--output`).
    pub job_dir: PathBuf,
    /// The cookie file master and workers share.
    pub cookie_file: PathBuf,
    /// The status page's board: attach it to the master's node
    /// ([`StatusBoard::attach`]) and report tasks to it.
    pub status: StatusBoard,
    /// The run this one resumes (its directory), if any.
    pub resume_from: Option<PathBuf>,
}

impl Master {
    /// Opens this run's result store (`results.db` in the run directory) for a program
    /// of version `version`, starting from a copy of the resumed run's results if there
    /// is one. Errors name the file: another master holds it, it is corrupt or another
    /// program's, or it holds results of another version.
    pub fn open_store(&self, version: &str) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_run(&self.run_dir, version, self.resume_from.as_deref())
    }

    /// The program workers of this run start from: the run's own copy, made when the
    /// master started ([`copy_program`]), so that every worker runs the master's build
    /// even if the program is rebuilt meanwhile; the running executable if there is no
    /// copy (it could not be made).
    ///
    /// ```no_run
    /// # fn f(master: &hyperion::cluster::Master) {
    /// let launcher = hyperion::launch::LocalLauncher::program(master.worker_binary());
    /// # }
    /// ```
    pub fn worker_binary(&self) -> PathBuf {
        // real-world only: the file system.
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(program_name()));
        let copy = run_binary_path(&self.run_dir, &exe);
        if copy.exists() {
            copy
        } else {
            exe
        }
    }
}

/// The worker subcommand's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerArgs {
    /// The master's node.
    pub master: NodeId,
    /// The service to connect to.
    pub service: ServiceId,
    /// The cookie file to use.
    pub cookie_file: Option<PathBuf>,
    /// Where to write this worker's log.
    pub log_file: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Run the master with these arguments.
    Master(Vec<String>),
    /// Run a worker.
    Worker(WorkerArgs),
}

/// The worker subcommand's command line (the launcher writes it; `--help` explains it).
#[derive(clap::Parser, Debug)]
#[command(
    name = "worker",
    about = "Serve a master's closures until it shuts the worker down (started by the master's launcher)"
)]
struct WorkerCommand {
    /// The master's node, ADDR#INCARNATION.
    #[arg(long)]
    master: NodeId,
    /// The service this worker is for.
    #[arg(long)]
    service: String,
    /// The cookie file shared with the master.
    #[arg(long)]
    cookie_file: Option<PathBuf>,
    /// Where to write this worker's log.
    #[arg(long)]
    log_file: Option<PathBuf>,
}

impl From<WorkerCommand> for WorkerArgs {
    fn from(command: WorkerCommand) -> WorkerArgs {
        WorkerArgs {
            master: command.master,
            service: ServiceId::from_text(&command.service),
            cookie_file: command.cookie_file,
            log_file: command.log_file,
        }
    }
}

/// Parses the arguments after the program name: `worker ...` is the worker subcommand;
/// anything else, after an optional `master`, is the master's own arguments (passed
/// through untouched).
///
/// ```
/// use hyperion::cluster::{parse_role, Role};
/// assert_eq!(parse_role(&["master".into(), "--workers".into(), "4".into()]), Ok(Role::Master(vec!["--workers".into(), "4".into()])));
/// assert!(parse_role(&["worker".into(), "--service".into(), "s".into()]).is_err()); // no --master
/// ```
pub fn parse_role(args: &[String]) -> Result<Role, String> {
    parse_role_clap(args).map_err(|err| err.to_string())
}

fn parse_role_clap(args: &[String]) -> Result<Role, clap::Error> {
    use clap::Parser;
    match args.split_first() {
        Some((command, rest)) if command == "worker" => {
            let words = std::iter::once("worker").chain(rest.iter().map(String::as_str));
            Ok(Role::Worker(WorkerCommand::try_parse_from(words)?.into()))
        }
        Some((command, rest)) if command == "master" => Ok(Role::Master(rest.to_vec())),
        // No subcommand: the arguments are the master's.
        _ => Ok(Role::Master(args.to_vec())),
    }
}

/// The program's name as the user typed it (for help and errors).
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "program".into())
}

/// Runs the program: the worker subcommand serves closures from `table` for its master;
/// anything else runs `master`, with directories from [`ClusterConfig::from_env`].
pub fn main(table: RemoteTable, master: impl FnOnce(Master) -> ExitCode) -> ExitCode {
    main_with_config(ClusterConfig::from_env(), table, master)
}

/// [`main`] with the directories of `config`.
pub fn main_with_config(
    config: ClusterConfig,
    table: RemoteTable,
    master: impl FnOnce(Master) -> ExitCode,
) -> ExitCode {
    run(config, table, |_| Ok(()), |m, ()| master(m))
}

/// [`main`] for a master whose options are a `clap` parser `O`: they are parsed (and
/// `--help` answered, bad values refused) before any directory is made. `--help` also
/// lists the status server's options (`--status-addr`, `--no-status`,
/// `--status-linger`), which every master takes, so `O` must not define them.
///
/// ```no_run
/// use hyperion::{cluster, RemoteTable};
/// #[derive(clap::Parser)]
/// struct Options {
///     /// How many workers.
///     #[arg(long, default_value_t = 4)]
///     workers: usize,
/// }
/// fn main() -> std::process::ExitCode {
///     cluster::main_with_options(RemoteTable::new(), |master, options: Options| {
///         println!("{} workers, results in {}", options.workers, master.run_dir.display());
///         std::process::ExitCode::SUCCESS
///     })
/// }
/// ```
pub fn main_with_options<O: clap::Parser>(
    table: RemoteTable,
    master: impl FnOnce(Master, O) -> ExitCode,
) -> ExitCode {
    let parse = |args: &[String]| {
        use clap::Args;
        let words = std::iter::once(program_name()).chain(args.iter().cloned());
        // The status options are taken out of `args` before this (as `--resume` is);
        // they are added to `O`'s command only so that its `--help` lists them.
        let mut command = crate::status::StatusHelp::augment_args(O::command());
        let mut matches = command.try_get_matches_from_mut(words)?;
        O::from_arg_matches_mut(&mut matches).map_err(|err| err.format(&mut command))
    };
    run(ClusterConfig::from_env(), table, parse, master)
}

fn run<O>(
    config: ClusterConfig,
    table: RemoteTable,
    parse: impl FnOnce(&[String]) -> Result<O, clap::Error>,
    master: impl FnOnce(Master, O) -> ExitCode,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // clap prints help (exit 0) or the error with a usage line (exit 2).
    let role = parse_role_clap(&args).unwrap_or_else(|err| err.exit());
    match role {
        Role::Worker(worker_args) => run_worker(table, worker_args),
        Role::Master(mut args) => {
            let resume = take_resume_flag(&mut args).or(config.resume.clone());
            // Taken out like `--resume`, so that `args` are the program's own.
            let status_options =
                match crate::status::take_status_options(&mut args, config.status_addr) {
                    Ok(options) => options,
                    Err(why) => {
                        eprintln!("{}: {why}", program_name());
                        return ExitCode::from(2);
                    }
                };
            let options = parse(&args).unwrap_or_else(|err| err.exit());
            // Resolved before the new run exists, so that "latest" is never itself.
            let resume_from = match resume.map(|run| run.resolve(&config.runs_dir)) {
                None => None,
                Some(Ok(dir)) => Some(dir),
                Some(Err(why)) => {
                    eprintln!("{why}");
                    return ExitCode::from(2);
                }
            };
            let dirs = match config.new_run() {
                Ok(dirs) => dirs,
                Err(err) => {
                    eprintln!("{}: {err}", program_name());
                    return ExitCode::FAILURE;
                }
            };
            // real-world only: workers start from the run's copy of the program.
            let copied = std::env::current_exe().and_then(|exe| copy_program(&exe, &dirs.run));
            let log = dirs.log.join("master.log");
            if let Err(err) = log_master(&log) {
                eprintln!(
                    "{}: cannot open the log {}: {}",
                    program_name(),
                    log.display(),
                    io_cause(&err)
                );
            }
            match copied {
                Ok(copy) => tracing::info!(program = %copy.display(), build = %crate::BuildId::of_current_exe(), "workers start from the run's copy of the program"),
                Err(err) => crate::cluster::notice(&format!(
                    "{}: cannot copy the program into {} ({}); workers start from its original path",
                    program_name(),
                    dirs.run.display(),
                    io_cause(&err)
                )),
            }
            let program = std::env::args().next().unwrap_or_default();
            let (status, _server) =
                crate::status::start_for_run(status_options, &program, &args, &dirs.run, &dirs.log);
            let run_dir = dirs.run.clone();
            let code = master(
                Master {
                    status,
                    args,
                    cookie_file: dirs.run.join("cookie"),
                    run_dir: dirs.run,
                    log_dir: dirs.log,
                    job_dir: dirs.job,
                    resume_from,
                },
                options,
            );
            // The master is done: no worker of this run starts any more, so its copy of
            // the program goes (a running worker keeps its open file; a crashed master
            // leaves the copy, which a later run never reads).
            if let Err(err) = remove_program_copy(&run_dir) {
                tracing::warn!(run = %run_dir.display(), error = %err, "cannot remove the run's copy of the program");
            }
            code
        }
    }
}

/// A fresh directory for this run: `base/run-<n>`, `n` one more than the highest
/// run number there (gaps are never refilled, so a run's number is never reused).
fn new_run_dir(base: &Path) -> Result<PathBuf, DirError> {
    create_all(base)?;
    let entries = std::fs::read_dir(base).map_err(|err| DirError::new(base, err))?;
    let highest = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            name.to_str()?.strip_prefix("run-")?.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0);
    // Another master may take the same number at the same moment: then try the next.
    for n in highest.saturating_add(1).. {
        let dir = base.join(format!("run-{n:04}"));
        match std::fs::create_dir(&dir) {
            // Absolute, so that workers started elsewhere (a batch job) find it.
            Ok(()) => return dir.canonicalize().map_err(|err| DirError::new(&dir, err)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(DirError::new(&dir, err)),
        }
    }
    unreachable!("some run number is free")
}

/// The worker subcommand: a TCP node with `table` that connects to its master and
/// serves it until `ShutDown` or until the master is lost.
pub fn run_worker(table: RemoteTable, args: WorkerArgs) -> ExitCode {
    if let Some(log_file) = &args.log_file {
        if let Err(err) = log_to_file(log_file) {
            eprintln!("cannot open log file {}: {err}", log_file.display());
        }
    }
    let bind = if args.master.address.ip().is_loopback() {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    };
    let mut transport = TcpConfig::bind(bind);
    if let Some(cookie) = &args.cookie_file {
        transport = transport.cookie_file(cookie);
    }
    let node = match Node::tcp(
        transport,
        NodeConfig {
            remote_table: table,
            ..NodeConfig::default()
        },
    ) {
        Ok(node) => node,
        Err(err) => {
            eprintln!("worker cannot start its node: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Which binary this worker runs, for whoever checks it ran the run's copy.
    tracing::info!(exe = ?std::env::current_exe().ok(), build = %BuildId::of_current_exe(), "worker started"); // real-world only
    let WorkerArgs {
        master, service, ..
    } = args;
    let exit = node
        .run(move |p| async move { worker(&p, master, service, WorkerConfig::default()).await });
    match exit {
        Ok(WorkerExit::ShutDown) => ExitCode::SUCCESS,
        Ok(WorkerExit::Refused) => {
            eprintln!("worker refused by its master: it runs another build of the program");
            ExitCode::FAILURE
        }
        Ok(other) => {
            eprintln!("worker stopped: {other:?}");
            ExitCode::FAILURE
        }
        Err(reason) => {
            eprintln!("worker died: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The master's logging: everything to `path` (as [`log_to_file`]), and the first
/// warning or error of each kind on the terminal too, naming `path`.
fn log_master(path: &Path) -> std::io::Result<()> {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let file = open_log(path)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let to_file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(to_file)
        // Its own filter keeps debug and trace events disabled at their call sites.
        .with(
            terminal::FirstOfEachKind::new(program_name(), path.to_path_buf())
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        )
        .try_init();
    Ok(())
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Sends this program's `tracing` output to `path` (appending), filtered by `RUST_LOG`
/// (default `info`). Does nothing if a subscriber is already installed.
pub fn log_to_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory for one test, removed when the guard drops.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let guard = tempfile::tempdir().unwrap();
        let dir = guard.path().canonicalize().unwrap();
        (guard, dir)
    }

    #[test]
    fn by_default_a_run_keeps_logs_in_its_directory_and_job_output_in_jobs() {
        let (_guard, base) = scratch();
        let config = ClusterConfig {
            runs_dir: base.join("runs"),
            ..ClusterConfig::default()
        };
        let first = config.new_run().unwrap();
        assert_eq!(first.run, base.join("runs/run-0001"));
        assert_eq!(first.log, first.run);
        assert_eq!(first.job, first.run.join("jobs"));
        assert!(first.job.is_dir());
        // The next run gets the next number: runs never share a directory.
        assert_eq!(config.new_run().unwrap().run, base.join("runs/run-0002"));
    }

    #[test]
    fn log_and_job_bases_elsewhere_get_the_runs_name() {
        let (_guard, base) = scratch();
        let config = ClusterConfig {
            runs_dir: base.join("data"),
            log_dir: Some(base.join("logs")),
            job_dir: Some(base.join("jobs")),
            ..ClusterConfig::default()
        };
        for n in 1..=2 {
            let dirs = config.new_run().unwrap();
            let name = format!("run-{n:04}");
            assert_eq!(dirs.run, base.join("data").join(&name));
            assert_eq!(dirs.log, base.join("logs").join(&name));
            assert_eq!(dirs.job, base.join("jobs").join(&name));
            assert!(dirs.log.is_dir() && dirs.job.is_dir());
        }
    }

    #[test]
    fn a_base_that_cannot_be_made_is_an_error() {
        let (_guard, base) = scratch();
        std::fs::write(base.join("file"), b"not a directory").unwrap();
        let config = ClusterConfig {
            runs_dir: base.join("file/runs"),
            ..ClusterConfig::default()
        };
        let error = config.new_run().unwrap_err().to_string();
        assert!(error.contains("file/runs"), "{error}");
        assert!(error.contains("is not a directory"), "{error}");
        assert!(!error.contains("os error"), "{error}");
    }

    #[test]
    fn runs_are_numbered_after_the_highest_and_gaps_are_not_refilled() {
        let (_guard, base) = scratch();
        let config = ClusterConfig {
            runs_dir: base.clone(),
            ..ClusterConfig::default()
        };
        std::fs::create_dir(base.join("run-0003")).unwrap();
        std::fs::create_dir(base.join("not-a-run")).unwrap();
        assert_eq!(config.new_run().unwrap().run, base.join("run-0004"));
        std::fs::remove_dir_all(base.join("run-0004")).unwrap();
        std::fs::remove_dir_all(base.join("run-0003")).unwrap();
        std::fs::create_dir(base.join("run-0002")).unwrap();
        assert_eq!(config.new_run().unwrap().run, base.join("run-0003"));
    }

    #[test]
    fn the_worker_command_line_is_parsed_and_checked() {
        let args: Vec<String> = ["worker", "--master", "10.0.0.1:7000#ab", "--service", "s-1"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        let Ok(Role::Worker(worker)) = parse_role(&args) else {
            panic!("a worker command line");
        };
        assert_eq!(worker.service, ServiceId::from_text("s-1"));
        let bad: Vec<String> = ["worker", "--master", "nowhere", "--service", "s"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert!(parse_role(&bad).unwrap_err().contains("--master"));
        // A user's own master arguments pass through untouched.
        let mine: Vec<String> = ["--anything", "goes"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(parse_role(&mine), Ok(Role::Master(mine.clone())));
    }
}
