//! A cluster program's entry point (hyperion's `hyperionMain`): one binary with two
//! subcommands, so that the master launches copies of itself as workers.
//!
//! ```text
//! my-program master [--status-addr IP:PORT | --no-status] [--status-linger S] [user options...]
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

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::node::{Node, NodeConfig};
use crate::process::id::NodeId;
use crate::remote::{worker, ServiceId, WorkerConfig, WorkerExit};
use crate::status::{StatusBoard, StatusConfig};
use crate::transport::tcp::TcpConfig;
use crate::RemoteTable;

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
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            runs_dir: PathBuf::from("hyperion-runs"),
            log_dir: None,
            job_dir: None,
            status_addr: StatusConfig::default().addr.into(),
        }
    }
}

impl ClusterConfig {
    /// The default, with each base replaced by its environment variable if set:
    /// `HYPERION_RUNS_DIR`, `HYPERION_LOG_DIR`, `HYPERION_JOB_DIR`.
    pub fn from_env() -> ClusterConfig {
        let var = |name| std::env::var_os(name).map(PathBuf::from);
        let default = ClusterConfig::default();
        ClusterConfig {
            runs_dir: var("HYPERION_RUNS_DIR").unwrap_or(default.runs_dir),
            log_dir: var("HYPERION_LOG_DIR"),
            job_dir: var("HYPERION_JOB_DIR"),
            status_addr: default.status_addr,
        }
    }

    /// Makes a new run's directories. All are absolute, so that workers started
    /// elsewhere (a batch job) find them.
    pub fn new_run(&self) -> std::io::Result<RunDirs> {
        let run = new_run_dir(&self.runs_dir)?;
        let name = run
            .file_name()
            .expect("a run directory has a name")
            .to_owned();
        let under = |base: &Option<PathBuf>, default: PathBuf| -> std::io::Result<PathBuf> {
            let dir = base.as_ref().map_or(default, |base| base.join(&name));
            std::fs::create_dir_all(&dir)?;
            dir.canonicalize()
        };
        Ok(RunDirs {
            log: under(&self.log_dir, run.clone())?,
            job: under(&self.job_dir, run.join("jobs"))?,
            run,
        })
    }
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

/// Parses the arguments after the program name.
///
/// ```
/// use hyperion::cluster::{parse_role, Role};
/// assert_eq!(parse_role(&["master".into(), "--workers".into(), "4".into()]), Ok(Role::Master(vec!["--workers".into(), "4".into()])));
/// assert!(parse_role(&["worker".into(), "--service".into(), "s".into()]).is_err()); // no --master
/// ```
pub fn parse_role(args: &[String]) -> Result<Role, String> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Role::Master(Vec::new()));
    };
    match command.as_str() {
        "master" => Ok(Role::Master(rest.to_vec())),
        "worker" => {
            let mut master = None;
            let mut service = None;
            let mut cookie_file = None;
            let mut log_file = None;
            let mut rest = rest.iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
                match flag.as_str() {
                    "--master" => master = Some(value.parse::<NodeId>()?),
                    "--service" => service = Some(ServiceId::from_text(value)),
                    "--cookie-file" => cookie_file = Some(PathBuf::from(value)),
                    "--log-file" => log_file = Some(PathBuf::from(value)),
                    other => return Err(format!("unknown worker option {other}")),
                }
            }
            Ok(Role::Worker(WorkerArgs {
                master: master.ok_or("worker needs --master ADDR#INCARNATION")?,
                service: service.ok_or("worker needs --service ID")?,
                cookie_file,
                log_file,
            }))
        }
        // No subcommand: the arguments are the master's.
        _ => Ok(Role::Master(args.to_vec())),
    }
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_role(&args) {
        Err(why) => {
            eprintln!("{why}");
            ExitCode::from(2)
        }
        Ok(Role::Worker(worker_args)) => run_worker(table, worker_args),
        Ok(Role::Master(mut args)) => {
            let status_options =
                match crate::status::take_status_options(&mut args, config.status_addr) {
                    Ok(addr) => addr,
                    Err(why) => {
                        eprintln!("{why}");
                        return ExitCode::from(2);
                    }
                };
            let dirs = match config.new_run() {
                Ok(dirs) => dirs,
                Err(err) => {
                    eprintln!("cannot create the run's directories under {config:?}: {err}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(err) = log_to_file(&dirs.log.join("master.log")) {
                eprintln!("cannot open the master's log: {err}");
            }
            let program = std::env::args().next().unwrap_or_default();
            let (status, _server) =
                crate::status::start_for_run(status_options, &program, &args, &dirs.run, &dirs.log);
            master(Master {
                status,
                args,
                cookie_file: dirs.run.join("cookie"),
                run_dir: dirs.run,
                log_dir: dirs.log,
                job_dir: dirs.job,
            })
        }
    }
}

/// A fresh directory for this run: `base/run-<n>` with the smallest unused `n`.
fn new_run_dir(base: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(base)?;
    for n in 1.. {
        let dir = base.join(format!("run-{n:04}"));
        match std::fs::create_dir(&dir) {
            // Absolute, so that workers started elsewhere (a batch job) find it.
            Ok(()) => return dir.canonicalize(),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
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
    let WorkerArgs {
        master, service, ..
    } = args;
    let exit = node
        .run(move |p| async move { worker(&p, master, service, WorkerConfig::default()).await });
    match exit {
        Ok(WorkerExit::ShutDown) => ExitCode::SUCCESS,
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

    /// A fresh, empty directory for one test.
    fn scratch(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hyperion-cluster-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn by_default_a_run_keeps_logs_in_its_directory_and_job_output_in_jobs() {
        let base = scratch("default");
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
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn log_and_job_bases_elsewhere_get_the_runs_name() {
        let base = scratch("bases");
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
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_base_that_cannot_be_made_is_an_error() {
        let base = scratch("blocked");
        std::fs::write(base.join("file"), b"not a directory").unwrap();
        let config = ClusterConfig {
            runs_dir: base.join("file/runs"),
            ..ClusterConfig::default()
        };
        assert!(config.new_run().is_err());
        std::fs::remove_dir_all(base).unwrap();
    }
}
