//! What every real-world launcher passes to its workers and decides for them: the
//! cookie file, the log directory, extra arguments, the connection timeout and the
//! retry policy. One struct, one command line, one set of builder methods
//! ([`worker_option_builders`]), so the launchers cannot drift apart.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::remote::{RetryPolicy, ServiceId};
use crate::types::id::NodeId;

/// The options a launcher's workers share.
///
/// ```
/// use std::time::Duration;
/// use hyperion::launch::WorkerOptions;
/// let options = WorkerOptions::new(Some(Duration::from_secs(30)));
/// assert_eq!(options.connection_timeout, Some(Duration::from_secs(30)));
/// assert!(options.cookie_file.is_none() && options.extra_args.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerOptions {
    /// Passed as `--cookie-file PATH` (workers share the master's cookie).
    pub cookie_file: Option<PathBuf>,
    /// Each worker logs to `worker-<service>.log` in this directory (`--log-file`).
    pub log_dir: Option<PathBuf>,
    /// More arguments for every worker, after the standard ones.
    pub extra_args: Vec<String>,
    /// How long the master waits for a worker to connect; `None` waits forever.
    pub connection_timeout: Option<Duration>,
    /// What to do when remote work fails.
    pub retry_policy: RetryPolicy,
}

impl WorkerOptions {
    /// No cookie file, log directory or extra arguments, the default retry policy, and
    /// the launcher's own default connection timeout.
    pub fn new(connection_timeout: Option<Duration>) -> WorkerOptions {
        WorkerOptions {
            cookie_file: None,
            log_dir: None,
            extra_args: Vec::new(),
            connection_timeout,
            retry_policy: RetryPolicy::default(),
        }
    }

    /// The worker's arguments after the program: `worker --master ADDR --service ID`,
    /// then `--cookie-file`, `--log-file` and the extra arguments as configured.
    ///
    /// ```
    /// use hyperion::launch::WorkerOptions;
    /// use hyperion::remote::ServiceId;
    /// let master = hyperion::NodeId { address: "10.0.0.1:7000".parse().unwrap(), incarnation: 1 };
    /// let mut options = WorkerOptions::new(None);
    /// options.cookie_file = Some("/home/me/.cookie".into());
    /// let args = options.worker_args(master, &ServiceId::from_text("s-1"));
    /// assert_eq!(args, ["worker", "--master", "10.0.0.1:7000#1", "--service", "s-1", "--cookie-file", "/home/me/.cookie"]);
    /// ```
    pub fn worker_args(&self, master: NodeId, service: &ServiceId) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "worker".into(),
            "--master".into(),
            master.to_string().into(),
            "--service".into(),
            service.as_str().into(),
        ];
        if let Some(cookie) = &self.cookie_file {
            args.extend(["--cookie-file".into(), cookie.into()]);
        }
        if let Some(dir) = &self.log_dir {
            args.extend([
                "--log-file".into(),
                dir.join(format!("worker-{service}.log")).into(),
            ]);
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args
    }
}

/// The builder methods every launcher with a `worker: WorkerOptions` field offers, the
/// same everywhere: `cookie_file`, `log_dir`, `extra_args`, `with_connection_timeout`,
/// `retry_policy`, and `worker_options` to set them all at once.
macro_rules! worker_option_builders {
    ($launcher:ty) => {
        /// Passes `--cookie-file PATH` to workers (share the master's cookie).
        pub fn cookie_file(mut self, path: impl Into<std::path::PathBuf>) -> $launcher {
            self.worker.cookie_file = Some(path.into());
            self
        }

        /// Gives each worker a log file in `dir` (`worker-<service>.log`).
        pub fn log_dir(mut self, dir: impl Into<std::path::PathBuf>) -> $launcher {
            self.worker.log_dir = Some(dir.into());
            self
        }

        /// More arguments for every worker, after the standard ones.
        pub fn extra_args(mut self, args: Vec<String>) -> $launcher {
            self.worker.extra_args = args;
            self
        }

        /// How long to wait for a worker to connect (`None`: forever).
        pub fn with_connection_timeout(
            mut self,
            timeout: Option<std::time::Duration>,
        ) -> $launcher {
            self.worker.connection_timeout = timeout;
            self
        }

        /// What to do when remote work fails.
        pub fn retry_policy(mut self, policy: $crate::remote::RetryPolicy) -> $launcher {
            self.worker.retry_policy = policy;
            self
        }

        /// Every worker option at once.
        pub fn worker_options(mut self, options: $crate::launch::WorkerOptions) -> $launcher {
            self.worker = options;
            self
        }
    };
}

pub(super) use worker_option_builders;
