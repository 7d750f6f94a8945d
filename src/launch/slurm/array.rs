//! Job arrays: launches that arrive together gathered into one `sbatch --array`, each
//! worker one task; the submission's outcome shared by every launch in the array.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::{SlurmJob, SlurmLauncher, ARRAY_GATHER_WINDOW, ARRAY_TASKS_MAX};
use crate::process::Process;
use crate::remote::{LaunchError, Resources, ServiceId};
use crate::types::id::NodeId;

/// How often a launch that joined an array looks whether it was submitted.
const ARRAY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Launches gathered into one job array: the task index of each is its place here.
pub(super) struct ArrayBatch {
    master: NodeId,
    /// Each task's service; `None` once its launch was given up before the submission.
    services: RefCell<Vec<Option<ServiceId>>>,
    outcome: RefCell<Option<ArrayOutcome>>,
}

/// What became of an array's submission.
#[derive(Clone)]
enum ArrayOutcome {
    /// Submitted as this job id.
    Submitted(u64),
    /// Slurm refused the array itself: submit single jobs.
    Refused,
    /// The submission failed: every launch in the array fails with this error.
    Failed(LaunchError),
}

/// A launch's place in an array until the array is submitted: dropped before (the
/// calling process was killed), its task is left out of the script; the gathering
/// launch's guard also fails the array so that no launch waits for it forever.
struct ArrayPlace<'a> {
    launcher: &'a SlurmLauncher,
    batch: Rc<ArrayBatch>,
    task: usize,
    gathers: bool,
}

impl Drop for ArrayPlace<'_> {
    fn drop(&mut self) {
        if self.batch.outcome.borrow().is_some() {
            return;
        }
        if let Some(service) = self.batch.services.borrow_mut().get_mut(self.task) {
            *service = None;
        }
        if self.gathers {
            let mut gathering = self.launcher.gathering.borrow_mut();
            if gathering
                .as_ref()
                .is_some_and(|open| Rc::ptr_eq(open, &self.batch))
            {
                *gathering = None;
            }
            *self.batch.outcome.borrow_mut() = Some(ArrayOutcome::Failed(LaunchError {
                what: "a Slurm job array".into(),
                why: "the launch gathering it stopped before submitting it".into(),
            }));
        }
    }
}

impl SlurmLauncher {
    /// Launches not yet given a job: gathered into an array still open.
    pub(super) fn gathered(&self) -> usize {
        self.gathering
            .borrow()
            .as_ref()
            .map_or(0, |batch| batch.services.borrow().iter().flatten().count())
    }

    /// Joins the array gathering launches now, or opens one; the first launch of an
    /// array waits [`ARRAY_GATHER_WINDOW`] and submits it. `None`: Slurm refuses
    /// arrays, submit a single job.
    pub(super) async fn launch_in_array(
        &self,
        p: &Process,
        master: NodeId,
        service: &ServiceId,
    ) -> Option<Result<SlurmJob, LaunchError>> {
        let open = self.gathering.borrow().clone().filter(|batch| {
            batch.master == master && batch.services.borrow().len() < ARRAY_TASKS_MAX
        });
        let (batch, gathers) = match open {
            Some(batch) => (batch, false),
            None => {
                let batch = Rc::new(ArrayBatch {
                    master,
                    services: RefCell::new(Vec::new()),
                    outcome: RefCell::new(None),
                });
                *self.gathering.borrow_mut() = Some(batch.clone());
                (batch, true)
            }
        };
        let task = {
            let mut services = batch.services.borrow_mut();
            services.push(Some(service.clone()));
            services.len() - 1
        };
        let place = ArrayPlace {
            launcher: self,
            batch: batch.clone(),
            task,
            gathers,
        };
        if gathers {
            self.pacer.wait_turn(p).await;
            p.sleep(ARRAY_GATHER_WINDOW).await;
            self.gathering.borrow_mut().take();
            let services = batch.services.borrow().clone();
            let tasks = services.len();
            let array = format!("--array=0-{}%{}", tasks - 1, self.max_jobs);
            let script = self.array_script(master, &services);
            let outcome = match self
                .submit(
                    p,
                    &self.job_name(service),
                    (Some(array), &Resources::default()),
                    script,
                )
                .await
            {
                Ok(job) => {
                    tracing::info!(job, tasks, "submitted a job array of workers");
                    ArrayOutcome::Submitted(job)
                }
                Err(error) if error.why.to_ascii_lowercase().contains("array") => {
                    tracing::warn!(%error, "Slurm refused a job array; one job per worker from now on");
                    self.arrays_refused.set(true);
                    ArrayOutcome::Refused
                }
                Err(error) => ArrayOutcome::Failed(error),
            };
            *batch.outcome.borrow_mut() = Some(outcome);
        }
        let outcome = loop {
            if let Some(outcome) = batch.outcome.borrow().clone() {
                break outcome;
            }
            p.sleep(ARRAY_POLL_INTERVAL).await;
        };
        drop(place);
        match outcome {
            ArrayOutcome::Submitted(job) => {
                let task = u32::try_from(task).expect("at most ARRAY_TASKS_MAX tasks");
                let job = SlurmJob {
                    job,
                    task: Some(task),
                };
                Some(self.wait_running(p, job, service).await)
            }
            ArrayOutcome::Refused => None,
            ArrayOutcome::Failed(error) => Some(Err(error)),
        }
    }
}
