//! A cluster program's entry point (hyperion's `hyperionMain`): one binary with two
//! subcommands, so that the master launches copies of itself as workers.
//!
//! ```text
//! my-program master [user options...]
//! my-program worker --master ADDR#INCARNATION --service ID [--cookie-file PATH] [--log-file PATH]
//! ```
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
use crate::transport::tcp::TcpConfig;
use crate::RemoteTable;

/// What the master's code gets.
#[derive(Clone, Debug)]
pub struct Master {
    /// The arguments after `master`.
    pub args: Vec<String>,
    /// This run's directory (logs, results), created under `hyperion-runs/`.
    pub run_dir: PathBuf,
    /// The cookie file master and workers share.
    pub cookie_file: PathBuf,
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
/// anything else runs `master`.
pub fn main(table: RemoteTable, master: impl FnOnce(Master) -> ExitCode) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_role(&args) {
        Err(why) => {
            eprintln!("{why}");
            ExitCode::from(2)
        }
        Ok(Role::Worker(worker_args)) => run_worker(table, worker_args),
        Ok(Role::Master(args)) => {
            let run_dir = match new_run_dir(Path::new("hyperion-runs")) {
                Ok(dir) => dir,
                Err(err) => {
                    eprintln!("cannot create the run directory: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let cookie_file = run_dir.join("cookie");
            if let Err(err) = log_to_file(&run_dir.join("master.log")) {
                eprintln!("cannot open the master's log: {err}");
            }
            master(Master {
                args,
                run_dir,
                cookie_file,
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
