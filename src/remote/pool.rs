//! An adaptive pool of workers (Dask's adaptive scaling, for hyperion's services):
//! between `min_workers` and `max_workers`, it starts workers while calls wait, and
//! stops a worker idle for longer than `idle_timeout` (by ending its service, so it
//! gets `ShutDown`), never below the minimum. A call runs on a worker that fits its
//! [`Resources`]; if none is free, a worker with those resources is started. A call
//! whose worker is lost goes back to the front of the queue (no call is lost); the
//! launcher's [`on_remote_error`](WorkerLauncher::on_remote_error) decides, per call,
//! whether it is tried again.
//!
//! The pool lives on the master's node: its workers are served by processes of that
//! node (one per worker), and a caller of [`WorkerPool::run`] waits for a message.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::call::{RemoteCall, Runner, RunnerError};
use super::errors::{LaunchError, RemoteError, RemoteErrorKind, ServiceError};
use super::launcher::{OnRemoteError, WorkerLauncher};
use super::resources::Resources;
use super::service::serve;
use crate::message::Serializable;
use crate::process::Process;
use crate::types::id::{DiedReason, NodeId, ProcessId};
use crate::{match_if, match_type};

/// Launches that may fail in a row (no worker connected in between) before the pool
/// gives up the calls waiting: a launcher that cannot start workers must not be asked
/// forever.
pub const POOL_LAUNCH_FAILURES_MAX: u32 = 5;

/// How often [`WorkerPool::close`] looks whether its workers have ended.
pub const POOL_CLOSE_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How a pool scales.
///
/// ```
/// use std::time::Duration;
/// use hyperion::remote::PoolConfig;
/// let config = PoolConfig { min_workers: 1, max_workers: 16, idle_timeout: Duration::from_secs(60) };
/// assert!(config.validate().is_ok());
/// assert!(PoolConfig { min_workers: 4, max_workers: 2, ..config }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Workers kept even when idle (started as soon as there is work).
    pub min_workers: usize,
    /// Most workers at once (at least 1).
    pub max_workers: usize,
    /// A worker idle this long is stopped, unless the pool is at its minimum.
    pub idle_timeout: Duration,
}

impl PoolConfig {
    /// A fixed number of workers (never stopped while the pool lives).
    pub fn fixed(workers: usize) -> PoolConfig {
        PoolConfig {
            min_workers: workers,
            max_workers: workers,
            idle_timeout: Duration::MAX,
        }
    }

    /// An error unless `1 <= max_workers` and `min_workers <= max_workers`.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_workers == 0 {
            return Err("max_workers must be at least 1".into());
        }
        if self.min_workers > self.max_workers {
            return Err(format!(
                "min_workers ({}) exceeds max_workers ({})",
                self.min_workers, self.max_workers
            ));
        }
        Ok(())
    }
}

/// What a pool did so far, and what it holds now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Workers now: started (launching or connected) and not yet ended.
    pub workers: usize,
    /// Most workers at once so far.
    pub workers_peak: usize,
    /// Calls waiting for a worker.
    pub waiting: usize,
    /// Calls running on a worker.
    pub running: usize,
    /// Workers started so far.
    pub started: u64,
    /// Workers stopped because they were idle too long.
    pub stopped_idle: u64,
    /// Idle workers stopped, the pool being full, to make room for a waiting call that
    /// none of them fits.
    pub replaced: u64,
    /// Calls put back in the queue after their worker was lost.
    pub requeued: u64,
    /// Calls finished (answered or given up).
    pub finished: u64,
}

/// A call's answer from a pool, with where and how it ran (what a result store keeps
/// beside the value).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolAnswer<R> {
    /// The call's result.
    pub value: R,
    /// The node of the worker that answered.
    pub worker: NodeId,
    /// Times the call was started on a worker (1: its first try answered).
    pub attempts: u32,
    /// How long the answering run took, seen from the master (waiting in the queue
    /// excluded).
    pub duration: Duration,
}

/// Wakes an idle worker's process: a call may be waiting for it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct PoolWake;

/// Tells a caller its call finished (the outcome is in the pool's table).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct PoolDone(u64);

/// A call waiting in the pool, or running.
struct Job<R> {
    id: u64,
    call: Rc<RemoteCall<R>>,
    caller: ProcessId,
    /// Failures so far (what the launcher's policy is asked with).
    failures: u32,
}

/// A worker's process waiting for a call.
struct Idle {
    slot: ProcessId,
    resources: Resources,
    /// The waiting call this worker was woken for (no other worker takes it first).
    promised: Option<u64>,
    /// Woken to stop: the pool is full and no waiting call fits this worker, while one
    /// fits no free worker (it takes this worker's place).
    retiring: bool,
}

/// How big a worker is, to pick the smallest that fits a call (a 1-CPU call on the
/// only 2-CPU worker would leave a 2-CPU call none): CPUs, then memory, then time,
/// then a named partition.
fn size(resources: &Resources) -> (u32, u64, Duration, bool) {
    (
        resources.cpus.unwrap_or(1),
        resources.memory_mb.unwrap_or(0),
        resources.time_limit.unwrap_or(Duration::ZERO),
        resources.partition.is_some(),
    )
}

struct State<R> {
    queue: VecDeque<Job<R>>,
    /// Workers being launched (not yet connected), with their resources.
    starting: Vec<(u64, Resources)>,
    idle: Vec<Idle>,
    outcomes: BTreeMap<u64, Result<PoolAnswer<R>, RunnerError>>,
    stats: PoolStats,
    next_id: u64,
    launch_failures: u32,
    /// Set by [`WorkerPool::close`]: idle workers stop, whatever the minimum.
    closing: bool,
}

struct Shared<L, R> {
    launcher: L,
    config: PoolConfig,
    state: RefCell<State<R>>,
}

/// An adaptive pool of workers started by a launcher `L`, running calls that answer
/// `R` (see the module's documentation).
pub struct WorkerPool<L, R> {
    shared: Rc<Shared<L, R>>,
}

impl<L, R> Clone for WorkerPool<L, R> {
    fn clone(&self) -> Self {
        WorkerPool {
            shared: self.shared.clone(),
        }
    }
}

impl<L: WorkerLauncher + 'static, R: Serializable + Clone> WorkerPool<L, R> {
    /// A pool of no workers yet: they start with the first calls.
    pub fn new(launcher: L, config: PoolConfig) -> Result<WorkerPool<L, R>, String> {
        config.validate()?;
        Ok(WorkerPool {
            shared: Rc::new(Shared {
                launcher,
                config,
                state: RefCell::new(State {
                    queue: VecDeque::new(),
                    starting: Vec::new(),
                    idle: Vec::new(),
                    outcomes: BTreeMap::new(),
                    stats: PoolStats::default(),
                    next_id: 0,
                    launch_failures: 0,
                    closing: false,
                }),
            }),
        })
    }

    /// The launcher.
    pub fn launcher(&self) -> &L {
        &self.shared.launcher
    }

    /// What the pool did so far, and holds now.
    pub fn stats(&self) -> PoolStats {
        self.shared.state.borrow().stats.clone()
    }

    /// Stops every worker once the calls waiting or running are done (each gets
    /// `ShutDown`), and waits until none is left. Calls run after it start workers
    /// again.
    pub async fn close(&self, p: &Process) {
        let idle: Vec<ProcessId> = {
            let mut state = self.shared.state.borrow_mut();
            state.closing = true;
            state.idle.iter().map(|idle| idle.slot).collect()
        };
        for slot in idle {
            p.send(slot, PoolWake);
        }
        while self.shared.state.borrow().stats.workers > 0 {
            p.sleep(POOL_CLOSE_POLL_INTERVAL).await;
            let idle: Vec<ProcessId> = {
                let state = self.shared.state.borrow();
                state.idle.iter().map(|idle| idle.slot).collect()
            };
            for slot in idle {
                p.send(slot, PoolWake);
            }
        }
        self.shared.state.borrow_mut().closing = false;
    }

    /// Gives up every call still waiting for a worker (calls running finish): each
    /// caller is answered with an error that says so. For a master that stops early (a
    /// signal) and then [`close`](Self::close)s the pool. Answers how many were given up.
    pub fn cancel_waiting(&self, p: &Process) -> usize {
        let jobs: Vec<Job<R>> = {
            let mut state = self.shared.state.borrow_mut();
            let jobs: Vec<Job<R>> = state.queue.drain(..).collect();
            state.stats.waiting = 0;
            state.stats.finished += jobs.len() as u64;
            for job in &jobs {
                let error = LaunchError {
                    what: format!("a worker for the call {}", job.call.label()),
                    why: "the pool's waiting calls were cancelled".into(),
                };
                state.outcomes.insert(
                    job.id,
                    Err(RunnerError::Service(ServiceError::Launch(error))),
                );
            }
            jobs
        };
        for job in &jobs {
            p.send(job.caller, PoolDone(job.id));
        }
        jobs.len()
    }

    /// Runs `call` on a worker of the pool that fits it (started if none is free, up to
    /// `max_workers`) and waits for its outcome. A call whose worker is lost is queued
    /// again; the launcher's policy decides, per call, when to give up.
    pub async fn run(&self, p: &Process, call: Rc<RemoteCall<R>>) -> Result<R, RunnerError> {
        Ok(self.run_detailed(p, call).await?.value)
    }

    /// [`run`](Self::run), answering also which worker ran the call, how many times it
    /// was started and how long its answering run took.
    pub async fn run_detailed(
        &self,
        p: &Process,
        call: Rc<RemoteCall<R>>,
    ) -> Result<PoolAnswer<R>, RunnerError> {
        let id = {
            let mut state = self.shared.state.borrow_mut();
            let id = state.next_id;
            state.next_id += 1;
            state.queue.push_back(Job {
                id,
                call,
                caller: p.self_pid(),
                failures: 0,
            });
            state.stats.waiting += 1;
            id
        };
        self.balance(p);
        loop {
            p.receive_wait(vec![match_if(
                move |done: &PoolDone| done.0 == id,
                |_: PoolDone| (),
            )])
            .await;
            if let Some(outcome) = self.shared.state.borrow_mut().outcomes.remove(&id) {
                return outcome;
            }
        }
    }

    /// Starts workers while calls wait that no free worker fits (up to the maximum, and
    /// up to the minimum while there is work), and wakes idle workers for calls: each
    /// call is promised the smallest idle worker that fits it, else counts on a worker
    /// being launched that fits it, else gets one started. A full pool stops an idle
    /// worker that fits no waiting call, so that one that fits can start in its place.
    fn balance(&self, p: &Process) {
        let config = &self.shared.config;
        let mut to_start = Vec::new();
        let mut to_wake = Vec::new();
        {
            let mut guard = self.shared.state.borrow_mut();
            let state = &mut *guard;
            // Launching workers, each counted on by one waiting call: counted by shape,
            // so that a call finds its fit among the few shapes rather than among up to
            // `max_workers` launches (per call, per balance: it was most of the time of
            // a 1,000-worker pool in the simulator).
            let mut launching: Vec<(Resources, usize)> = Vec::new();
            for (_, resources) in &state.starting {
                match launching.iter_mut().find(|(shape, _)| shape == resources) {
                    Some((_, count)) => *count += 1,
                    None => launching.push((resources.clone(), 1)),
                }
            }
            let mut workers = state.stats.workers;
            let mut retiring = state.idle.iter().filter(|idle| idle.retiring).count();
            // At most `max_workers` waiting calls matter: no more workers can start.
            for job in state.queue.iter().take(config.max_workers) {
                if state.idle.iter().any(|idle| idle.promised == Some(job.id)) {
                    continue;
                }
                let needs = job.call.resources();
                let idle = state
                    .idle
                    .iter_mut()
                    .filter(|idle| idle.promised.is_none() && !idle.retiring)
                    .filter(|idle| needs.fits_within(&idle.resources))
                    .min_by_key(|idle| size(&idle.resources));
                if let Some(idle) = idle {
                    crate::reached!("remote.pool.idle_worker_reused");
                    idle.promised = Some(job.id);
                    to_wake.push(idle.slot);
                    continue;
                }
                let starting = launching
                    .iter()
                    .enumerate()
                    .filter(|(_, (has, count))| *count > 0 && needs.fits_within(has))
                    .min_by_key(|(_, (has, _))| size(has))
                    .map(|(at, _)| at);
                if let Some(at) = starting {
                    launching[at].1 -= 1;
                } else if workers < config.max_workers {
                    workers += 1;
                    to_start.push(needs.clone());
                } else if retiring == 0 {
                    // Full, and no worker fits this call: an idle worker that fits no
                    // waiting call gives up its place (the call would wait forever in
                    // a pool kept at its maximum).
                    let queue = &state.queue;
                    let misfit = state.idle.iter_mut().find(|idle| {
                        idle.promised.is_none()
                            && !queue
                                .iter()
                                .any(|job| job.call.resources().fits_within(&idle.resources))
                    });
                    if let Some(idle) = misfit {
                        crate::reached!("remote.pool.misfit_worker_replaced");
                        idle.retiring = true;
                        retiring += 1;
                        to_wake.push(idle.slot);
                    }
                }
            }
            let has_work = !state.queue.is_empty() || state.stats.running > 0;
            while has_work && workers < config.min_workers {
                workers += 1;
                to_start.push(Resources::default());
            }
        }
        for slot in to_wake {
            p.send(slot, PoolWake);
        }
        for resources in to_start {
            self.start_worker(p, resources);
        }
    }

    /// Starts one worker with `resources`, served by a process of this node.
    fn start_worker(&self, p: &Process, resources: Resources) {
        let pool = self.clone();
        let key = {
            let mut state = self.shared.state.borrow_mut();
            let key = state.next_id;
            state.next_id += 1;
            state.starting.push((key, resources.clone()));
            state.stats.workers += 1;
            state.stats.started += 1;
            state.stats.workers_peak = state.stats.workers_peak.max(state.stats.workers);
            assert!(
                state.stats.workers <= self.shared.config.max_workers,
                "a pool never runs more than max_workers"
            );
            key
        };
        p.spawn_local(move |slot| async move {
            let served = {
                let (slot_ref, pool_ref, resources_ref) = (&slot, &pool, &resources);
                serve(
                    &slot,
                    &pool.shared.launcher,
                    &resources,
                    move |worker, service_id| async move {
                        let runner = Runner {
                            worker_node: worker.node,
                            worker,
                            service_id,
                            resources: resources_ref.clone(),
                        };
                        pool_ref.serve_calls(slot_ref, &runner, key).await
                    },
                )
                .await
            };
            pool.worker_ended(&slot, key, served);
        });
    }

    /// A connected worker's loop: takes calls that fit it until it is idle too long
    /// (and the pool is above its minimum) or lost.
    async fn serve_calls(&self, slot: &Process, runner: &Runner, key: u64) {
        {
            let mut state = self.shared.state.borrow_mut();
            state.starting.retain(|(k, _)| *k != key);
            state.launch_failures = 0;
        }
        // The call this worker was woken for, taken first.
        let mut promised: Option<u64> = None;
        loop {
            let job = self.take_job(runner.resources(), promised.take());
            let Some(job) = job else {
                self.shared.state.borrow_mut().idle.push(Idle {
                    slot: slot.self_pid(),
                    resources: runner.resources().clone(),
                    promised: None,
                    retiring: false,
                });
                let woken = slot
                    .receive_timeout(
                        self.shared.config.idle_timeout,
                        vec![match_type(|_: PoolWake| ())],
                    )
                    .await;
                let mut state = self.shared.state.borrow_mut();
                let at = state
                    .idle
                    .iter()
                    .position(|idle| idle.slot == slot.self_pid())
                    .expect("an idle worker is in the idle list until it wakes");
                let me = state.idle.remove(at);
                if me.retiring {
                    state.stats.replaced += 1;
                    tracing::info!(service = %runner.service_id(), "stopping an idle worker to start one that fits a waiting call");
                    return;
                }
                promised = me.promised;
                // Idle too long: no waiting call fits this worker (a call that needs a
                // bigger one may then get this worker's place).
                let fits = runner.resources();
                let idle_too_long = woken.is_none()
                    && !state
                        .queue
                        .iter()
                        .any(|job| job.call.resources().fits_within(fits));
                if state.closing && state.queue.is_empty() {
                    return;
                }
                if idle_too_long && state.stats.workers > self.shared.config.min_workers {
                    crate::reached!("remote.pool.idle_worker_stopped");
                    state.stats.stopped_idle += 1;
                    tracing::info!(service = %runner.service_id(), "stopping a worker idle too long");
                    return;
                }
                continue;
            };
            let started = slot.now();
            let outcome = runner.run(slot, &job.call).await.map(|value| PoolAnswer {
                value,
                worker: runner.worker_node(),
                attempts: job.failures + 1,
                duration: slot.now().saturating_sub(started),
            });
            let lost = matches!(
                &outcome,
                Err(RemoteError {
                    kind: RemoteErrorKind::AsyncLinkFailed(_)
                        | RemoteErrorKind::AsyncFailed(
                            DiedReason::Disconnect | DiedReason::NodeDown
                        )
                        | RemoteErrorKind::Pending,
                    ..
                })
            );
            self.finish_or_requeue(slot, job, outcome);
            if lost {
                // The worker is gone (or hung): end its service, and let the pool start
                // another if calls wait.
                return;
            }
        }
    }

    /// Takes the waiting call `promised` to this worker if it still waits, else the
    /// first waiting call that fits a worker with `resources` and is not promised to
    /// another worker.
    fn take_job(&self, resources: &Resources, promised: Option<u64>) -> Option<Job<R>> {
        let mut state = self.shared.state.borrow_mut();
        let state = &mut *state;
        let mine = promised
            .and_then(|id| state.queue.iter().position(|job| job.id == id))
            .filter(|&at| state.queue[at].call.resources().fits_within(resources));
        let idle = &state.idle;
        let at = mine.or_else(|| {
            state.queue.iter().position(|job| {
                job.call.resources().fits_within(resources)
                    && !idle.iter().any(|idle| idle.promised == Some(job.id))
            })
        })?;
        let job = state.queue.remove(at)?;
        state.stats.waiting -= 1;
        state.stats.running += 1;
        Some(job)
    }

    /// Records a call's outcome, or puts it back at the queue's front if it failed in a
    /// way a retry may fix and the launcher's policy says to retry.
    fn finish_or_requeue(
        &self,
        p: &Process,
        mut job: Job<R>,
        outcome: Result<PoolAnswer<R>, RemoteError>,
    ) {
        let mut state = self.shared.state.borrow_mut();
        state.stats.running -= 1;
        let outcome = match outcome {
            Ok(value) => Ok(value),
            Err(error) => {
                let decision = if error.is_retryable() {
                    self.shared.launcher.on_remote_error(&error, job.failures)
                } else {
                    OnRemoteError::GiveUp
                };
                match decision {
                    // A held call is retried at once: the pool has no operator to wait for.
                    OnRemoteError::Retry { .. } | OnRemoteError::Hold => {
                        tracing::warn!(%error, "a pooled call failed; queued again");
                        job.failures += 1;
                        state.stats.requeued += 1;
                        state.stats.waiting += 1;
                        state.queue.push_front(job);
                        return;
                    }
                    OnRemoteError::GiveUp => Err(RunnerError::Remote(error)),
                }
            }
        };
        state.stats.finished += 1;
        state.outcomes.insert(job.id, outcome);
        p.send(job.caller, PoolDone(job.id));
    }

    /// A worker's service ended (idle, lost, or never connected): counts it out, fails
    /// the waiting calls if workers keep failing to start, and starts others if calls
    /// wait.
    fn worker_ended(&self, p: &Process, key: u64, served: Result<(), ServiceError>) {
        let given_up = {
            let mut state = self.shared.state.borrow_mut();
            state.stats.workers -= 1;
            let launching = state.starting.iter().any(|(k, _)| *k == key);
            state.starting.retain(|(k, _)| *k != key);
            match served {
                Err(error) if launching => {
                    state.launch_failures += 1;
                    tracing::warn!(%error, failures = state.launch_failures, "a pool worker could not start");
                    if state.launch_failures >= POOL_LAUNCH_FAILURES_MAX && state.stats.workers == 0
                    {
                        let jobs: Vec<Job<R>> = state.queue.drain(..).collect();
                        state.stats.waiting = 0;
                        state.stats.finished += jobs.len() as u64;
                        for job in &jobs {
                            state
                                .outcomes
                                .insert(job.id, Err(RunnerError::Service(error.clone())));
                        }
                        jobs
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            }
        };
        for job in given_up {
            p.send(job.caller, PoolDone(job.id));
        }
        self.balance(p);
    }
}
