//! distributed-process-async parity, in the simulator over many seeds: `wait_any`,
//! `wait_any_timeout`, `async_linked`, `cancel_wait`, `cancel_with`.

use std::time::Duration;

use hyperion::concurrency::{wait_any, wait_any_timeout};
use hyperion::{AsyncResult, DiedReason, Process, ProcessId, ProcessMonitorNotification};
use hyperion_sim::{seeds, Sim};

fn for_seeds<F, Fut>(body: F)
where
    F: Fn(Process) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    for seed in seeds(100) {
        Sim::run_alone(seed, body.clone()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

async fn after(p: Process, seconds: u64, value: u32) -> u32 {
    p.sleep(Duration::from_secs(seconds)).await;
    value
}

#[test]
fn wait_any_returns_the_index_and_outcome_of_the_first_to_finish() {
    for_seeds(|p| async move {
        let tasks = vec![
            p.async_task(|c| after(c, 3, 30)),
            p.async_task(|c| after(c, 1, 10)),
            p.async_task(|c| after(c, 2, 20)),
        ];
        assert_eq!(wait_any(&p, &tasks).await, Some((1, AsyncResult::Done(10))));
        // The winner's outcome is settled: it wins again at once.
        assert_eq!(wait_any(&p, &tasks).await, Some((1, AsyncResult::Done(10))));
        assert_eq!(tasks[2].wait(&p).await, AsyncResult::Done(20));
    });
}

#[test]
fn wait_any_reports_a_failure_that_comes_first() {
    for_seeds(|p| async move {
        let tasks = vec![
            p.async_task(|c| after(c, 3, 30)),
            p.async_task(|c| async move {
                c.sleep(Duration::from_secs(1)).await;
                c.die::<u32>("broke").await
            }),
        ];
        assert_eq!(
            wait_any(&p, &tasks).await,
            Some((
                1,
                AsyncResult::Failed(DiedReason::Exception("broke".into()))
            ))
        );
    });
}

#[test]
fn wait_any_timeout_gives_up_and_the_tasks_run_on() {
    for_seeds(|p| async move {
        let tasks = vec![
            p.async_task(|c| after(c, 10, 1)),
            p.async_task(|c| after(c, 20, 2)),
        ];
        assert_eq!(
            wait_any_timeout(&p, &tasks, Duration::from_secs(1)).await,
            None
        );
        assert_eq!(
            wait_any_timeout(&p, &tasks, Duration::from_secs(60)).await,
            Some((0, AsyncResult::Done(1)))
        );
        let none: Vec<hyperion::Async<u32>> = Vec::new();
        assert_eq!(wait_any(&p, &none).await, None);
    });
}

#[test]
fn an_async_linked_failure_kills_its_owner() {
    for_seeds(|p| async move {
        let (_, watch) = p.spawn_monitor(|owner| async move {
            let _task = owner.async_linked(|c| async move {
                c.sleep(Duration::from_secs(1)).await;
                c.die::<u32>("broke").await
            });
            owner.sleep(Duration::from_secs(3600)).await;
        });
        let n: ProcessMonitorNotification = p.expect().await;
        assert_eq!(n.monitor_ref, watch);
        assert!(!n.reason.is_normal(), "{:?}", n.reason);
    });
}

#[test]
fn an_async_linked_task_dies_when_its_owner_ends_even_normally() {
    for_seeds(|p| async move {
        let me = p.self_pid();
        p.spawn_local(move |owner| async move {
            let task = owner.async_linked(|c| after(c, 3600, 1));
            owner.send(me, task.pid());
        });
        let task: ProcessId = p.expect().await;
        p.monitor(task);
        let n: ProcessMonitorNotification = p.expect().await;
        assert!(
            matches!(
                n.reason,
                DiedReason::Exception(_) | DiedReason::UnknownProcess
            ),
            "{:?}",
            n.reason
        );
        assert!(!p.local_node().is_alive(task));
    });
}

#[test]
fn cancelling_an_async_linked_task_does_not_kill_its_owner() {
    for_seeds(|p| async move {
        let task = p.async_linked(|c| after(c, 3600, 1));
        assert_eq!(task.cancel_wait(&p).await, AsyncResult::Cancelled);
        p.sleep(Duration::from_secs(1)).await; // still alive to get here
    });
}

#[test]
fn cancel_with_is_caught_by_a_task_that_catches_its_type() {
    for_seeds(|p| async move {
        let me = p.self_pid();
        let catching = p.async_task(move |c| async move {
            c.catch_exit(
                async {
                    c.send(me, "armed".to_string());
                    c.sleep(Duration::from_secs(3600)).await;
                    0u32
                },
                |_, code: u32| async move { code + 1 },
            )
            .await
        });
        let plain = p.async_task(|c| after(c, 3600, 1));
        assert_eq!(p.expect::<String>().await, "armed");
        assert_eq!(catching.cancel_with(&p, 41u32).await, AsyncResult::Done(42));
        assert_eq!(plain.cancel_with(&p, 41u32).await, AsyncResult::Cancelled);
    });
}

#[test]
fn another_process_of_the_node_can_wait_on_an_async() {
    for_seeds(|p| async move {
        let me = p.self_pid();
        let task = std::rc::Rc::new(p.async_task(|c| after(c, 2, 7)));
        let failing = std::rc::Rc::new(p.async_task(|c| async move {
            c.sleep(Duration::from_secs(1)).await;
            c.die::<u32>("broke").await
        }));
        let (shared, shared_failing) = (task.clone(), failing.clone());
        p.spawn_local(move |other| async move {
            let got = shared.wait(&other).await;
            let failed = shared_failing.wait(&other).await;
            other.send(me, (got, failed));
        });
        let (got, failed): (AsyncResult<u32>, AsyncResult<u32>) = p.expect().await;
        assert_eq!(got, AsyncResult::Done(7));
        assert_eq!(
            failed,
            AsyncResult::Failed(DiedReason::Exception("broke".into()))
        );
        // The owner's own wait is unaffected.
        assert_eq!(task.wait(&p).await, AsyncResult::Done(7));
    });
}
