//! A [`WorkerLauncher`] for the simulator: each worker runs on a new simulated node,
//! under the world's faults.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use hyperion::remote::{
    worker, LaunchError, OnRemoteError, RemoteError, Resources, RetryPolicy, ServiceId,
    WorkerConfig, WorkerExit, WorkerLauncher,
};
use hyperion::{BuildId, NodeId, Process, RemoteTable};

use crate::faults::Fault;
use crate::world::{NodeOptions, SimHandle};

/// Launches each worker on a fresh simulated node with the given remote table. The node
/// is crashable (random faults may take it), never restarts, and is shut down when its
/// service ends or is cancelled, so no worker outlives its service.
pub struct SimLauncher {
    handle: SimHandle,
    remote_table: RemoteTable,
    connection_timeout: Option<Duration>,
    policy: RetryPolicy,
    worker_config: WorkerConfig,
    launched: Rc<RefCell<Vec<usize>>>,
    /// What each launched worker's node was started with, by node index.
    resources: RefCell<std::collections::BTreeMap<usize, Resources>>,
    exits: Rc<RefCell<std::collections::BTreeMap<usize, WorkerExit>>>,
    crash_first: Cell<u32>,
    crash_after: Duration,
    worker_build: Option<BuildId>,
}

impl SimLauncher {
    /// A launcher adding worker nodes to the world behind `handle`.
    pub fn new(handle: SimHandle, remote_table: RemoteTable) -> SimLauncher {
        SimLauncher {
            handle,
            remote_table,
            connection_timeout: Some(Duration::from_secs(60)),
            policy: RetryPolicy::default(),
            worker_config: WorkerConfig::default(),
            launched: Rc::default(),
            resources: RefCell::default(),
            exits: Rc::default(),
            crash_first: Cell::new(0),
            crash_after: Duration::ZERO,
            worker_build: None,
        }
    }

    /// How long a master waits for a worker to connect (`None`: forever).
    pub fn with_connection_timeout(mut self, timeout: Option<Duration>) -> SimLauncher {
        self.connection_timeout = timeout;
        self
    }

    /// What to do when remote work fails.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> SimLauncher {
        self.policy = policy;
        self
    }

    /// How workers connect to their master.
    pub fn worker_config(mut self, config: WorkerConfig) -> SimLauncher {
        self.worker_config = config;
        self
    }

    /// Crashes each of the next `count` workers `after` its launch (a scheduled fault,
    /// for tests of retries).
    pub fn crash_first(self, count: u32, after: Duration) -> SimLauncher {
        self.crash_first.set(count);
        SimLauncher {
            crash_after: after,
            ..self
        }
    }

    /// Starts workers of another build of the program than the world's default (a
    /// binary recompiled while the run went on).
    pub fn worker_build(mut self, build: BuildId) -> SimLauncher {
        self.worker_build = Some(build);
        self
    }

    /// Node indexes of every worker launched so far.
    pub fn launched(&self) -> Vec<usize> {
        self.launched.borrow().clone()
    }

    /// What the worker on node `index` was started with (a simulated node has what
    /// it is asked for), if this launcher started it.
    pub fn resources_of(&self, index: usize) -> Option<Resources> {
        self.resources.borrow().get(&index).cloned()
    }

    /// How each launched worker ended, by node index: absent if it did not end by
    /// itself (its node crashed, or the launcher's backstop stopped the node first).
    /// A worker whose service ended normally must end by `ShutDown`, not the backstop.
    pub fn exits(&self) -> std::collections::BTreeMap<usize, WorkerExit> {
        self.exits.borrow().clone()
    }
}

impl WorkerLauncher for SimLauncher {
    type JobId = usize;

    async fn launch(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Result<usize, LaunchError> {
        self.launch_with(p, master, service, &Resources::default())
            .await
    }

    /// A simulated node has whatever it is started with: every request is granted
    /// and recorded ([`resources_of`](SimLauncher::resources_of)).
    async fn launch_with(
        &self,
        _p: &Process,
        master: NodeId,
        service: &ServiceId,
        resources: &Resources,
    ) -> Result<usize, LaunchError> {
        let service = service.clone();
        let config = self.worker_config;
        let exits = self.exits.clone();
        let index = self.handle.reserved_index();
        let options = NodeOptions {
            crashable: true,
            no_restart: true,
            remote_table: self.remote_table.clone(),
            boot: None,
            build: self.worker_build.clone(),
        }
        .boot(move |node| {
            let (service, exits) = (service.clone(), exits.clone());
            let pid = node.spawn(move |p| async move {
                let exit = worker(&p, master, service, config).await;
                exits.borrow_mut().insert(index, exit);
            });
            tracing::debug!(%pid, "simulated worker started");
        });
        let added = self.handle.add_node(options);
        debug_assert_eq!(added, index, "the node gets the index reserved for it");
        self.launched.borrow_mut().push(index);
        self.resources.borrow_mut().insert(index, resources.clone());
        if self.crash_first.get() > 0 {
            self.crash_first.set(self.crash_first.get() - 1);
            self.handle
                .schedule_in(self.crash_after, Fault::Crash(index));
        }
        Ok(index)
    }

    fn connection_timeout(&self) -> Option<Duration> {
        self.connection_timeout
    }

    fn on_remote_error(&self, _error: &RemoteError, retries_so_far: u32) -> OnRemoteError {
        self.policy.decide(retries_so_far)
    }

    fn cancel(&self, job: &usize) {
        self.handle.shutdown_node(*job);
    }

    fn on_exit(&self, job: &usize) {
        // The worker got ShutDown; its node goes too, so nothing outlives the service.
        self.handle
            .schedule_in(Duration::from_secs(1), Fault::Stop(*job));
    }
}
