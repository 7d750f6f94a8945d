//! The [`Process`] side of typed exits (see [`exit`](super::exit) for the reasons):
//! ending with a reason of any type, asking another process to, and catching an exit
//! signal by its reason's type.

use std::fmt;
use std::future::Future;
use std::task::Poll;

use super::exit::{ExitReason, ProcessTermination};
use super::id::{DiedReason, ProcessId};
use super::Process;
use crate::message::{Fingerprint, Serializable};

impl Process {
    /// Ends this process with `reason`, of any serializable type; watchers (links,
    /// monitors) get [`DiedReason::Exit`] and can match it by type with
    /// [`DiedReason::reason_as`]. Never resolves, so it fits any type.
    ///
    /// ```
    /// use hyperion::{DiedReason, ProcessMonitorNotification};
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let (_, _) = p.spawn_monitor(|c| async move { c.die_with::<(), _>(404u16).await });
    /// let n: ProcessMonitorNotification = p.expect().await;
    /// assert_eq!(n.reason.reason_as::<u16>(), Some(404));
    /// # }).unwrap();
    /// ```
    pub fn die_with<T, R: Serializable + fmt::Debug>(&self, reason: R) -> super::Die<'_, T> {
        super::Die::new(self, DiedReason::Exit(ExitReason::new(&reason)))
    }

    /// Ends this process with [`ProcessTermination`] (Cloud Haskell's `terminate`).
    pub fn terminate<T>(&self) -> super::Die<'_, T> {
        self.die_with(ProcessTermination)
    }

    /// Asks `pid` to exit with `reason`, of any serializable type (Cloud Haskell's
    /// `exit`): it runs a [`catch_exit`](Process::catch_exit) handler for that type if
    /// it is in one, receives a [`ProcessExitSignal`] with the reason's text if it traps
    /// exits, and otherwise dies with [`DiedReason::Exit`].
    ///
    /// [`ProcessExitSignal`]: crate::ProcessExitSignal
    pub fn exit_with<R: Serializable + fmt::Debug>(&self, pid: ProcessId, reason: R) {
        self.node
            .state()
            .exit_signal_with(self.pid, pid, ExitReason::new(&reason));
    }

    /// Runs `body`; if an exit signal whose reason is an `R` arrives meanwhile, `body` is
    /// dropped and `handler(sender, reason)` runs instead (Cloud Haskell's
    /// `catchExit`). Exit signals of other types, kills and link failures are not
    /// caught. Catchers nest: the innermost for the reason's type takes it. A text
    /// reason ([`Process::exit`]) is a `String`.
    ///
    /// ```
    /// use std::time::Duration;
    /// # hyperion::Node::new().unwrap().run(|p| async move {
    /// let me = p.self_pid();
    /// let helper = p.spawn_local(move |h| async move { h.exit_with(me, 7u32) });
    /// let got = p.catch_exit(
    ///     async { p.sleep(Duration::from_secs(3600)).await; 0 },
    ///     |from, code: u32| async move { assert_eq!(from, helper); code },
    /// ).await;
    /// assert_eq!(got, 7);
    /// # }).unwrap();
    /// ```
    pub async fn catch_exit<R, T, Body, Handler, HandlerFut>(
        &self,
        body: Body,
        handler: Handler,
    ) -> T
    where
        R: Serializable,
        Body: Future<Output = T>,
        Handler: FnOnce(ProcessId, R) -> HandlerFut,
        HandlerFut: Future<Output = T>,
    {
        let id = {
            let mut state = self.node.state();
            let id = state.unique();
            let slot = self.running_slot(&mut state);
            slot.relations()
                .exit_catchers
                .active
                .push((id, Fingerprint::of::<R>()));
            id
        };
        let guard = CatcherGuard { process: self, id };
        let mut body = Box::pin(body);
        let outcome = std::future::poll_fn(|cx| {
            if let Some(caught) = guard.take_caught() {
                return Poll::Ready(Err(caught));
            }
            body.as_mut().poll(cx).map(Ok)
        })
        .await;
        drop(body);
        drop(guard);
        match outcome {
            Ok(value) => value,
            Err((from, reason)) => match reason.get::<R>() {
                Some(reason) => handler(from, reason).await,
                None => {
                    // The fingerprint matched but the bytes do not decode: die with it.
                    super::Die::new(self, DiedReason::Exit(reason)).await
                }
            },
        }
    }
}

/// Removes a catcher when its `catch_exit` ends (done, caught, or dropped).
struct CatcherGuard<'a> {
    process: &'a Process,
    id: u64,
}

impl CatcherGuard<'_> {
    fn take_caught(&self) -> Option<(ProcessId, ExitReason)> {
        let mut state = self.process.node.state();
        let slot = state.slot_mut(self.process.task)?.relations.as_mut()?;
        match &slot.exit_catchers.caught {
            Some((id, _, _)) if *id == self.id => {
                let (_, from, reason) = slot.exit_catchers.caught.take()?;
                Some((from, reason))
            }
            _ => None,
        }
    }
}

impl Drop for CatcherGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.process.node.state();
        let Some(slot) = state.slot_mut(self.process.task) else {
            return;
        };
        if let Some(relations) = slot.relations.as_mut() {
            let catchers = &mut relations.exit_catchers;
            catchers.active.retain(|(id, _)| *id != self.id);
            if catchers
                .caught
                .as_ref()
                .is_some_and(|(id, _, _)| *id == self.id)
            {
                catchers.caught = None;
            }
        }
    }
}
