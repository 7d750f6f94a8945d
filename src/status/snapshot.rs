//! What the status server shows: the master's state as plain data, published by the
//! master's side into a [`StatusBoard`] and read (cloned under a short lock) by the
//! server's thread.
//!
//! Times are seconds on the master node's clock (time since the node started), so
//! that the board holds nothing from the operating system and works in the simulator
//! too; the run's wall-clock start is recorded once by the server.
//!
//! Size: about 560 lines of plain data types and 60 of tests; one idea (what the
//! page shows), many small types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::process::Process;
use crate::remote::ServiceId;
use crate::types::id::ProcessId;

/// Most points kept in the progress series; past it, every other point is dropped, so
/// a run of millions of tasks keeps a bounded chart.
pub const PROGRESS_POINTS_MAX: usize = 2048;

/// Most tasks a board keeps; later ones are counted but not listed.
pub const TASKS_MAX: usize = 100_000;

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for a worker.
    Queued,
    /// Running on a worker.
    Running,
    /// Finished with a result.
    Done,
    /// Its last attempt failed; it may be retried.
    Failed,
    /// Its worker's failure is held until someone retries or cancels it.
    Held,
    /// Cancelled: it will not run again.
    Cancelled,
}

impl TaskState {
    /// Every state, in the order the page lists them.
    pub const ALL: [TaskState; 6] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Done,
        TaskState::Failed,
        TaskState::Held,
        TaskState::Cancelled,
    ];

    fn name(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Held => "held",
            TaskState::Cancelled => "cancelled",
        }
    }
}

/// Where a worker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Launched (a process started, a job submitted), not connected yet.
    Launched,
    /// Connected and serving the master.
    Connected,
    /// Its service ended (the worker was told to shut down).
    Ended,
    /// Stopped from the status page.
    Cancelled,
}

/// The run as a whole.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunInfo {
    /// The program's name.
    pub program: String,
    /// Its arguments (after `master`).
    pub args: Vec<String>,
    /// Wall-clock start, seconds since the Unix epoch (set by the server).
    pub started_unix: f64,
    /// The launcher's kind (`local`, `slurm`, ...), as the program says.
    pub launcher: String,
    /// Seconds on the master's clock at the last update.
    pub now: f64,
    /// How many tasks are in each state (every state listed, zero or not).
    pub counts: BTreeMap<&'static str, usize>,
    /// Tasks reported beyond [`TASKS_MAX`] (counted, not listed).
    pub tasks_unlisted: usize,
}

/// One worker (one service).
#[derive(Clone, Debug, Serialize)]
pub struct WorkerInfo {
    /// The service id.
    pub service: String,
    /// The worker's node (`address#incarnation`), once connected.
    pub node: Option<String>,
    /// The worker's host (the node's IP address), once connected.
    pub host: Option<String>,
    /// The launcher's job id (a PID, a Slurm job id).
    pub job: Option<String>,
    /// Where it is.
    pub state: WorkerState,
    /// Since when, in seconds on the master's clock.
    pub since: f64,
    /// The task it runs now.
    pub task: Option<String>,
    /// Its log file, if it exists where the launcher puts it.
    pub log_file: Option<PathBuf>,
    /// The process serving this worker on the master (killed to cancel it).
    #[serde(skip)]
    pub(crate) owner: Option<ProcessId>,
}

/// One task of the program.
#[derive(Clone, Debug, Serialize)]
pub struct TaskInfo {
    /// The program's key for it.
    pub key: String,
    /// What it runs (a closure's label).
    pub label: String,
    /// Where it is.
    pub state: TaskState,
    /// How many times it was started.
    pub attempts: u32,
    /// The service it runs (or last ran) in.
    pub worker: Option<String>,
    /// When it was queued, in seconds on the master's clock.
    pub queued_at: f64,
    /// When its last attempt started.
    pub started_at: Option<f64>,
    /// When it finished (done, failed, cancelled).
    pub finished_at: Option<f64>,
    /// Seconds spent running, over every attempt.
    pub run_seconds: f64,
    /// Why its last attempt failed.
    pub error: Option<String>,
    /// The process running it (killed to cancel it).
    #[serde(skip)]
    pub(crate) runner: Option<ProcessId>,
}

/// A failure held by the launcher's `Hold` policy until someone retries or cancels it.
#[derive(Clone, Debug, Serialize)]
pub struct HeldCall {
    /// Its id: the service that failed.
    pub id: String,
    /// The error that was held.
    pub error: String,
    /// Since when, in seconds on the master's clock.
    pub since: f64,
    /// The tasks waiting on it.
    pub tasks: Vec<String>,
    /// The process waiting in the hold.
    #[serde(skip)]
    pub(crate) holder: ProcessId,
}

/// The master's state at one moment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    /// The run.
    pub run: RunInfo,
    /// Workers by service id.
    pub workers: BTreeMap<String, WorkerInfo>,
    /// Tasks in the order they were first reported.
    pub tasks: Vec<TaskInfo>,
    /// Held calls by id.
    pub held: BTreeMap<String, HeldCall>,
    /// `(seconds, tasks done)` after each task finished, thinned past
    /// [`PROGRESS_POINTS_MAX`].
    pub progress: Vec<(f64, usize)>,
    /// Where each key is in `tasks`.
    #[serde(skip)]
    index: BTreeMap<String, usize>,
    /// Where workers' logs are (`worker-<service>.log`).
    #[serde(skip)]
    log_dir: Option<PathBuf>,
}

impl Snapshot {
    /// The task with `key`, if reported.
    pub fn task(&self, key: &str) -> Option<&TaskInfo> {
        self.index.get(key).map(|&i| &self.tasks[i])
    }

    fn task_mut(&mut self, key: &str) -> Option<&mut TaskInfo> {
        self.index.get(key).map(|&i| &mut self.tasks[i])
    }

    fn count(&self, state: TaskState) -> usize {
        self.tasks.iter().filter(|t| t.state == state).count()
    }

    fn worker_mut(&mut self, service: &str, now: f64) -> &mut WorkerInfo {
        let log_file = self
            .log_dir
            .as_ref()
            .map(|dir| dir.join(format!("worker-{service}.log")));
        self.workers
            .entry(service.to_string())
            .or_insert_with(|| WorkerInfo {
                service: service.to_string(),
                node: None,
                host: None,
                job: None,
                state: WorkerState::Launched,
                since: now,
                task: None,
                log_file,
                owner: None,
            })
    }

    /// A copy for a reader, with the counts filled in.
    pub(crate) fn published(&self) -> Snapshot {
        let mut copy = self.clone();
        copy.run = self.run_with_counts();
        copy
    }

    fn run_with_counts(&self) -> RunInfo {
        let mut run = self.run.clone();
        for state in TaskState::ALL {
            run.counts.insert(state.name(), 0);
        }
        for task in &self.tasks {
            *run.counts.entry(task.state.name()).or_default() += 1;
        }
        run
    }

    /// Everything but the tasks: what the page polls, copied without the task list
    /// (which may be long) so that the lock is held briefly.
    pub(crate) fn overview(&self) -> Overview {
        Overview {
            run: self.run_with_counts(),
            workers: self.workers.values().cloned().collect(),
            held: self.held.values().cloned().collect(),
            progress: self.progress.clone(),
        }
    }
}

/// The snapshot without its task list (`GET /api/status`).
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// The run, with counts by state.
    pub run: RunInfo,
    /// Workers, by service id.
    pub workers: Vec<WorkerInfo>,
    /// Held calls, by id.
    pub held: Vec<HeldCall>,
    /// `(seconds, tasks done)`.
    pub progress: Vec<(f64, usize)>,
}

fn seconds(time: Duration) -> f64 {
    time.as_secs_f64()
}

/// The master's side of the status server: where the program and the remote layer
/// publish what happens. Cheap to clone and `Send`, so the server's thread can hold
/// one; every method takes a short lock and never waits on the server.
///
/// ```
/// use hyperion::status::{StatusBoard, TaskState};
/// let board = StatusBoard::new("scan", vec![]);
/// hyperion::Node::new().unwrap().run(move |p| async move {
///     board.task_queued(&p, "a=0.5", "integrate");
///     assert_eq!(board.snapshot().task("a=0.5").unwrap().state, TaskState::Queued);
/// }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct StatusBoard {
    pub(crate) shared: Arc<super::agent::Shared>,
}

impl StatusBoard {
    /// An empty board for `program` run with `args`.
    pub fn new(program: &str, args: Vec<String>) -> StatusBoard {
        let snapshot = Snapshot {
            run: RunInfo {
                program: program.to_string(),
                args,
                ..RunInfo::default()
            },
            ..Snapshot::default()
        };
        StatusBoard {
            shared: Arc::new(super::agent::Shared::new(snapshot)),
        }
    }

    /// Where workers write their logs (`worker-<service>.log`, as the launchers of
    /// [`crate::launch`] name them), so that the page can show them.
    pub fn set_log_dir(&self, dir: impl Into<PathBuf>) {
        self.lock().log_dir = Some(dir.into());
    }

    /// Names the launcher the run uses (shown on the page).
    pub fn set_launcher(&self, launcher: &str) {
        self.lock().run.launcher = launcher.to_string();
    }

    /// A copy of the current state, with counts by state.
    pub fn snapshot(&self) -> Snapshot {
        self.lock().published()
    }

    pub(crate) fn set_started_unix(&self, seconds: f64) {
        self.lock().run.started_unix = seconds;
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.shared.lock()
    }

    fn update(&self, p: &Process, change: impl FnOnce(&mut Snapshot, f64)) {
        let now = seconds(p.now());
        let mut snapshot = self.lock();
        snapshot.run.now = now;
        change(&mut snapshot, now);
    }

    /// A task waits for a worker (first report, or back in the queue).
    pub fn task_queued(&self, p: &Process, key: &str, label: &str) {
        self.update(p, |s, now| {
            if let Some(task) = s.task_mut(key) {
                if task.state != TaskState::Cancelled {
                    task.state = TaskState::Queued;
                    task.runner = None;
                }
                return;
            }
            if s.tasks.len() >= TASKS_MAX {
                s.run.tasks_unlisted += 1;
                return;
            }
            s.index.insert(key.to_string(), s.tasks.len());
            s.tasks.push(TaskInfo {
                key: key.to_string(),
                label: label.to_string(),
                state: TaskState::Queued,
                attempts: 0,
                worker: None,
                queued_at: now,
                started_at: None,
                finished_at: None,
                run_seconds: 0.0,
                error: None,
                runner: None,
            });
        });
    }

    /// A task starts on `service`'s worker, run by the calling process (which the
    /// page's "cancel" kills).
    pub fn task_started(&self, p: &Process, key: &str, service: &ServiceId) {
        let runner = p.self_pid();
        self.update(p, |s, now| {
            let Some(task) = s.task_mut(key) else { return };
            task.state = TaskState::Running;
            task.attempts += 1;
            task.worker = Some(service.to_string());
            task.started_at = Some(now);
            task.finished_at = None;
            task.runner = Some(runner);
            s.worker_mut(service.as_str(), now).task = Some(key.to_string());
        });
    }

    /// A task finished with a result.
    pub fn task_done(&self, p: &Process, key: &str) {
        self.finish(p, key, TaskState::Done, None);
    }

    /// A task's attempt failed with `error`.
    pub fn task_failed(&self, p: &Process, key: &str, error: &str) {
        self.finish(p, key, TaskState::Failed, Some(error.to_string()));
    }

    /// Whether the page cancelled this task (a program checks before starting it).
    pub fn is_cancelled(&self, key: &str) -> bool {
        self.lock()
            .task(key)
            .is_some_and(|task| task.state == TaskState::Cancelled)
    }

    fn finish(&self, p: &Process, key: &str, state: TaskState, error: Option<String>) {
        self.update(p, |s, now| {
            let Some(task) = s.task_mut(key) else { return };
            if task.state == TaskState::Cancelled {
                return;
            }
            task.state = state;
            task.finished_at = Some(now);
            task.run_seconds += task.started_at.map_or(0.0, |start| (now - start).max(0.0));
            task.runner = None;
            if error.is_some() {
                task.error = error;
            }
            let worker = task.worker.clone();
            if let Some(worker) = worker.and_then(|w| s.workers.get_mut(&w)) {
                if worker.task.as_deref() == Some(key) {
                    worker.task = None;
                }
            }
            if state == TaskState::Done {
                let done = s.count(TaskState::Done);
                s.progress.push((now, done));
                if s.progress.len() > PROGRESS_POINTS_MAX {
                    // Keep the first and the latest; drop every other point between.
                    let last = s.progress.len() - 1;
                    let mut i = 0;
                    s.progress.retain(|_| {
                        i += 1;
                        i == 1 || i - 1 == last || i % 2 == 1
                    });
                }
            }
        });
    }

    // ----- what the remote layer reports (through the status agent) -----

    pub(crate) fn worker_launched(&self, p: &Process, service: &str, job: String) {
        self.update(p, |s, now| {
            s.worker_mut(service, now).job = Some(job);
        });
    }

    pub(crate) fn worker_connected(
        &self,
        p: &Process,
        service: &str,
        worker: ProcessId,
        owner: ProcessId,
    ) {
        self.update(p, |s, now| {
            let info = s.worker_mut(service, now);
            info.node = Some(worker.node.to_string());
            info.host = Some(worker.node.address.ip().to_string());
            info.state = WorkerState::Connected;
            info.since = now;
            info.owner = Some(owner);
        });
    }

    pub(crate) fn worker_ended(&self, p: &Process, service: &str) {
        self.update(p, |s, now| {
            let info = s.worker_mut(service, now);
            if info.state != WorkerState::Cancelled {
                info.state = WorkerState::Ended;
                info.since = now;
            }
            info.task = None;
            info.owner = None;
        });
    }

    pub(crate) fn held(&self, p: &Process, service: &str, error: String, holder: ProcessId) {
        self.update(p, |s, now| {
            let mut tasks = Vec::new();
            for task in &mut s.tasks {
                if task.worker.as_deref() == Some(service) && task.state == TaskState::Failed {
                    task.state = TaskState::Held;
                    tasks.push(task.key.clone());
                }
            }
            s.held.insert(
                service.to_string(),
                HeldCall {
                    id: service.to_string(),
                    error,
                    since: now,
                    tasks,
                    holder,
                },
            );
        });
    }

    /// A hold ended: its tasks wait for the retry.
    pub(crate) fn released(&self, p: &Process, service: &str) {
        self.update(p, |s, _| {
            let Some(held) = s.held.remove(service) else {
                return;
            };
            for key in held.tasks {
                if let Some(task) = s.task_mut(&key) {
                    if task.state == TaskState::Held {
                        task.state = TaskState::Queued;
                    }
                }
            }
        });
    }

    /// The page cancelled a held call: its tasks are cancelled.
    pub(crate) fn hold_cancelled(&self, p: &Process, service: &str) -> Option<ProcessId> {
        let mut holder = None;
        self.update(p, |s, now| {
            let Some(held) = s.held.remove(service) else {
                return;
            };
            holder = Some(held.holder);
            for key in held.tasks {
                if let Some(task) = s.task_mut(&key) {
                    task.state = TaskState::Cancelled;
                    task.finished_at = Some(now);
                }
            }
        });
        holder
    }

    /// The page cancelled a task: returns the processes to kill (the task's runner,
    /// and the one holding its failure).
    pub(crate) fn task_cancelled(&self, p: &Process, key: &str) -> Vec<ProcessId> {
        let mut kill = Vec::new();
        self.update(p, |s, now| {
            let Some(task) = s.task_mut(key) else { return };
            if matches!(task.state, TaskState::Done | TaskState::Cancelled) {
                return;
            }
            let was = task.state;
            task.state = TaskState::Cancelled;
            task.finished_at = Some(now);
            kill.extend(task.runner.take());
            let worker = task.worker.clone();
            if was == TaskState::Running {
                if let Some(info) = worker.as_ref().and_then(|w| s.workers.get_mut(w)) {
                    info.state = WorkerState::Cancelled;
                    info.since = now;
                    info.task = None;
                }
            }
            if was == TaskState::Held {
                if let Some(held) = worker.as_ref().and_then(|w| s.held.remove(w)) {
                    kill.push(held.holder);
                }
            }
        });
        kill
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Node;

    #[test]
    fn the_progress_series_stays_bounded_and_keeps_its_ends() {
        let board = StatusBoard::new("test", vec![]);
        let node = Node::new().unwrap();
        let b = board.clone();
        node.run(move |p| async move {
            let service = ServiceId::from_text("s");
            for i in 0..3 * PROGRESS_POINTS_MAX {
                let key = i.to_string();
                b.task_queued(&p, &key, "work");
                b.task_started(&p, &key, &service);
                b.task_done(&p, &key);
            }
        })
        .unwrap();
        let snapshot = board.snapshot();
        assert!(snapshot.progress.len() <= PROGRESS_POINTS_MAX);
        assert_eq!(snapshot.progress.first().unwrap().1, 1);
        assert_eq!(snapshot.progress.last().unwrap().1, 3 * PROGRESS_POINTS_MAX);
        assert_eq!(snapshot.run.counts["done"], 3 * PROGRESS_POINTS_MAX);
        assert!(snapshot.progress.windows(2).all(|w| w[0].1 < w[1].1));
    }

    #[test]
    fn a_held_task_is_queued_on_release_and_cancelled_with_its_hold() {
        let board = StatusBoard::new("test", vec![]);
        let node = Node::new().unwrap();
        let b = board.clone();
        node.run(move |p| async move {
            let service = ServiceId::from_text("s");
            for key in ["a", "b"] {
                b.task_queued(&p, key, "work");
                b.task_started(&p, key, &service);
                b.task_failed(&p, key, "boom");
            }
            b.held(&p, "s", "boom".into(), p.self_pid());
            assert_eq!(b.snapshot().task("a").unwrap().state, TaskState::Held);
            assert_eq!(b.snapshot().held["s"].tasks, ["a", "b"]);
            b.released(&p, "s");
            assert_eq!(b.snapshot().task("a").unwrap().state, TaskState::Queued);
            assert!(b.snapshot().held.is_empty());
            // Held again, then cancelled: its tasks are cancelled and stay so.
            for key in ["a", "b"] {
                b.task_started(&p, key, &service);
                b.task_failed(&p, key, "boom again");
            }
            b.held(&p, "s", "boom again".into(), p.self_pid());
            assert_eq!(b.hold_cancelled(&p, "s"), Some(p.self_pid()));
            b.task_queued(&p, "a", "work");
            b.task_done(&p, "a");
            assert!(b.is_cancelled("a") && b.is_cancelled("b"));
            assert_eq!(b.snapshot().run.counts["cancelled"], 2);
        })
        .unwrap();
    }
}
