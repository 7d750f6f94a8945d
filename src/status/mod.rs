//! The master's status server: a JSON API and a live page showing a run's tasks,
//! workers and held calls, with buttons to retry or cancel them (hyperion's "hold
//! server", with authentication and a page).
//!
//! ```text
//! status: http://127.0.0.1:41234/?token=3f9c…
//! ```
//!
//! Pieces, each in its file:
//! - [`StatusBoard`] (`snapshot`): the master's state as plain data. The program
//!   reports its tasks to it; the remote layer reports workers and held calls through
//!   the status agent. It holds nothing from the operating system, so it also works in
//!   the simulator (with no server).
//! - the agent (`agent`): a process on the master's node, registered as
//!   [`STATUS_AGENT_NAME`], that applies the remote layer's [`StatusNotice`]s to the
//!   board and carries out the page's commands (release a hold, kill a task's process).
//!   The notices, the name and [`notify`] are the remote layer's protocol
//!   (`remote::status_notice`, below this module), re-exported here.
//! - [`StatusServer`] (`server`, real-world only): axum on hyper, a single-threaded
//!   tokio runtime on a thread of its own, bound to `127.0.0.1` on a free port by
//!   default. It reads a copy of the board and posts commands into the node's inbox;
//!   it never waits for the node, nor the node for it.
//! - authentication (`auth`): a 128-bit token from the operating system per run,
//!   written to the run's directory (mode 0600) and printed with the URL. Every request
//!   shows it (the `X-Hyperion-Token` header, the `?token=` of the first page load, then
//!   an `HttpOnly; SameSite=Strict` cookie); without it the answer is `401` and nothing
//!   else. Changes are `POST`s with the token in the header (a cookie alone does not do:
//!   no cross-site request forgery), and the `Host` header must name this server (no
//!   DNS rebinding).
//! - the JSON API (`api`) and the page (`page`).
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the page |
//! | `GET /api/status` | run, workers, held calls, progress series |
//! | `GET /api/run`, `/api/workers`, `/api/held` | each part alone |
//! | `GET /api/tasks?state=running&limit=100` | tasks (`active`: all but done) |
//! | `GET /api/workers/log?service=ID&lines=100` | the end of a worker's log |
//! | `POST /api/held/retry {"id": ID}` | retry one held call |
//! | `POST /api/held/retry-all`, `/api/holds/release` | retry every held call |
//! | `POST /api/held/cancel {"id": ID}` | give up a held call; its tasks are cancelled |
//! | `POST /api/tasks/cancel {"key": KEY}` | cancel a task and stop its worker |

mod agent;
mod api;
mod auth;
mod page;
mod server;
mod snapshot;

use std::net::SocketAddr;

pub use crate::remote::status_notice::{notify, StatusNotice, STATUS_AGENT_NAME};
pub use agent::StatusCommand;
pub use api::{BODY_BYTES_MAX, BODY_TIMEOUT, LOG_LINES_MAX, TASKS_PAGE_MAX};
pub use auth::{Token, TOKEN_BYTES, TOKEN_COOKIE, TOKEN_HEADER};
pub use server::{StatusConfig, StatusServer};
pub use snapshot::{
    HeldCall, Overview, RunInfo, Snapshot, StatusBoard, TaskInfo, TaskState, WorkerInfo,
    WorkerState, PROGRESS_POINTS_MAX, TASKS_MAX,
};

/// The status options of a master's command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusOptions {
    /// Where to serve; `None`: no server.
    pub addr: Option<SocketAddr>,
    /// How long the page stays up after the run ends.
    pub linger: std::time::Duration,
}

// The status options as `clap` sees them: `cluster::main_with_options` adds them to the
// program's own options so that its `--help` lists them. Their values are read by
// `take_status_options`, which takes them out of the arguments first. (A plain comment:
// clap would make a doc comment the program's description.)
#[derive(clap::Args, Debug)]
#[allow(dead_code)] // built for the help only; never read
pub(crate) struct StatusHelp {
    /// Where the status page listens (default: 127.0.0.1 on a free port).
    #[arg(long, value_name = "IP:PORT")]
    status_addr: Option<SocketAddr>,
    /// No status page.
    #[arg(long)]
    no_status: bool,
    /// Keep the status page up this long after the run ends.
    #[arg(long, value_name = "SECONDS")]
    status_linger: Option<u64>,
}

/// Takes the status server's options out of a master's arguments: `--status-addr
/// IP:PORT` moves the server, `--no-status` turns it off, `--status-linger SECONDS`
/// keeps it up after the run. Without them the server runs at `default` (if any).
///
/// ```
/// use hyperion::status::take_status_options;
/// let default = "127.0.0.1:0".parse().unwrap();
/// let mut args = vec!["--workers".to_string(), "4".into(), "--status-addr".into(), "127.0.0.1:8080".into()];
/// let options = take_status_options(&mut args, Some(default)).unwrap();
/// assert_eq!(options.addr, Some("127.0.0.1:8080".parse().unwrap()));
/// assert_eq!(args, ["--workers", "4"]);
/// let mut args = vec!["--no-status".to_string()];
/// assert_eq!(take_status_options(&mut args, Some(default)).unwrap().addr, None);
/// assert!(take_status_options(&mut vec!["--status-addr".into(), "nowhere".into()], None).is_err());
/// ```
pub fn take_status_options(
    args: &mut Vec<String>,
    default: Option<SocketAddr>,
) -> Result<StatusOptions, String> {
    let mut options = StatusOptions {
        addr: default,
        linger: std::time::Duration::ZERO,
    };
    let mut kept = Vec::with_capacity(args.len());
    let mut rest = std::mem::take(args).into_iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--status-") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "--no-status" => options.addr = None,
            "--status-addr" | "--status-linger" => {
                let value = inline
                    .or_else(|| rest.next())
                    .ok_or_else(|| format!("{flag} needs a value"))?;
                if flag == "--status-addr" {
                    let addr = value
                        .parse()
                        .map_err(|_| format!("--status-addr: {value:?} is not IP:PORT"))?;
                    options.addr = Some(addr);
                } else {
                    let seconds: u64 = value.parse().map_err(|_| {
                        format!("--status-linger: {value:?} is not a number of seconds")
                    })?;
                    options.linger = std::time::Duration::from_secs(seconds);
                }
            }
            _ => kept.push(arg),
        }
    }
    *args = kept;
    Ok(options)
}

/// A cluster run's board and, at `options.addr` unless `None`, its server: the token goes to
/// `status-token` in `run_dir`, the URL to standard output (`status: http://…`), and
/// workers' logs are looked for in `log_dir`. A server that cannot start is reported
/// and the run goes on without it.
pub fn start_for_run(
    options: StatusOptions,
    program: &str,
    args: &[String],
    run_dir: &std::path::Path,
    log_dir: &std::path::Path,
) -> (StatusBoard, Option<StatusServer>) {
    let name = std::path::Path::new(program).file_name().map_or_else(
        || program.to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let board = StatusBoard::new(&name, args.to_vec());
    board.set_log_dir(log_dir);
    let Some(addr) = options.addr else {
        return (board, None);
    };
    let config = StatusConfig {
        addr,
        token_file: Some(run_dir.join("status-token")),
        linger: options.linger,
    };
    match StatusServer::start(config, board.clone()) {
        Ok(server) => {
            println!("status: {}", server.url());
            (board, Some(server))
        }
        Err(err) => {
            eprintln!("the status server cannot start on {addr}: {err}");
            tracing::error!(%addr, %err, "no status server");
            (board, None)
        }
    }
}
