//! Waiting for the first of several [`Async`]s (distributed-process-async's `waitAny`
//! and `waitAnyTimeout`).

use std::time::Duration;

use super::{Async, AsyncResult};
use crate::message::Serializable;
use crate::process::Process;
use crate::Match;

/// Waits until one of `tasks` finishes (done, failed or cancelled) and returns its
/// index and outcome; the others keep running. An outcome already known wins at once
/// (the first in the list). `None` only for an empty list, which nothing could end.
///
/// ```
/// use std::time::Duration;
/// use hyperion::{concurrency::wait_any, AsyncResult};
/// # hyperion::Node::new().unwrap().run(|p| async move {
/// let slow = p.async_task(|c| async move { c.sleep(Duration::from_secs(60)).await; 1u32 });
/// let fast = p.async_task(|_| async move { 2u32 });
/// assert_eq!(wait_any(&p, &[slow, fast]).await, Some((1, AsyncResult::Done(2))));
/// # }).unwrap();
/// ```
pub async fn wait_any<T: Serializable + Clone>(
    p: &Process,
    tasks: &[Async<T>],
) -> Option<(usize, AsyncResult<T>)> {
    wait_any_within(p, tasks, None).await
}

/// Like [`wait_any`], giving up with `None` after `timeout` (the tasks keep running).
pub async fn wait_any_timeout<T: Serializable + Clone>(
    p: &Process,
    tasks: &[Async<T>],
    timeout: Duration,
) -> Option<(usize, AsyncResult<T>)> {
    wait_any_within(p, tasks, Some(timeout)).await
}

async fn wait_any_within<T: Serializable + Clone>(
    p: &Process,
    tasks: &[Async<T>],
    timeout: Option<Duration>,
) -> Option<(usize, AsyncResult<T>)> {
    if tasks.is_empty() {
        return None;
    }
    if let Some(known) = tasks
        .iter()
        .enumerate()
        .find_map(|(index, task)| task.outcome.borrow().clone().map(|o| (index, o)))
    {
        return Some(known);
    }
    let mut matches: Vec<Match<'_, (usize, AsyncResult<T>)>> = Vec::new();
    for (index, task) in tasks.iter().enumerate() {
        for m in task.matches() {
            matches.push(m.map(move |outcome| (index, outcome)));
        }
    }
    let (index, outcome) = match timeout {
        None => p.receive_wait(matches).await,
        Some(timeout) => p.receive_timeout(timeout, matches).await?,
    };
    Some((index, tasks[index].settle(p, outcome)))
}
