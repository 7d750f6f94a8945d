//! Typed exit reasons, as in Cloud Haskell: a process may end with any serializable
//! reason ([`Process::die_with`], [`Process::terminate`]), be asked to exit with one
//! ([`Process::exit_with`]), and catch an exit signal whose reason has a given type
//! instead of dying ([`Process::catch_exit`], Cloud Haskell's `catchExit`).
//!
//! The reason travels encoded with its type's fingerprint, so a watcher on another
//! node matches it by type: [`DiedReason::reason_as`].

use std::fmt;
use std::future::Future;
use std::task::Poll;

use serde::{Deserialize, Serialize};

use super::id::{DiedReason, ProcessId};
use super::Process;
use crate::message::{Fingerprint, Message, Serializable};
use crate::node::local::NodeState;
use crate::wire::Control;

/// A reason of any serializable type: its type's fingerprint, its encoded value, and
/// its text (`Debug`) for people and logs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ExitReason {
    fingerprint: Fingerprint,
    bytes: Vec<u8>,
    text: String,
}

impl ExitReason {
    /// Wraps `reason`. A value that cannot be encoded keeps only its text (it then
    /// matches no type).
    ///
    /// ```
    /// use hyperion::ExitReason;
    /// let reason = ExitReason::new(&7u32);
    /// assert_eq!(reason.get::<u32>(), Some(7));
    /// assert_eq!(reason.get::<String>(), None);
    /// ```
    pub fn new<R: Serializable + fmt::Debug>(reason: &R) -> ExitReason {
        let text = format!("{reason:?}");
        match crate::message::encode(reason) {
            Ok(bytes) => ExitReason {
                fingerprint: Fingerprint::of::<R>(),
                bytes,
                text,
            },
            Err(err) => {
                tracing::error!(%err, text, "exit reason cannot be encoded; only its text is kept");
                ExitReason {
                    fingerprint: Fingerprint(0),
                    bytes: Vec::new(),
                    text,
                }
            }
        }
    }

    /// A text reason (what [`Process::exit`] and [`Process::die`] give), typed `String`.
    pub fn text_reason(text: String) -> ExitReason {
        let mut reason = ExitReason::new(&text);
        reason.text = text;
        reason
    }

    /// The reason as a `T`, if it is one.
    pub fn get<T: Serializable>(&self) -> Option<T> {
        if self.fingerprint != Fingerprint::of::<T>() {
            return None;
        }
        Message::from_encoded(self.fingerprint, self.bytes.clone())
            .downcast::<T>()
            .ok()
    }

    /// Whether the reason is a `T`.
    pub fn is<T: Serializable>(&self) -> bool {
        self.fingerprint == Fingerprint::of::<T>()
    }

    /// The reason's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The reason [`Process::terminate`] ends a process with (Cloud Haskell's
/// `ProcessTerminationException`). Not normal: linked processes hear of it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProcessTermination;

/// The exit catchers of one process ([`Process::catch_exit`]), innermost last, and an
/// exit signal one of them caught, waiting for it to run.
#[derive(Default)]
pub(crate) struct ExitCatchers {
    active: Vec<(u64, Fingerprint)>,
    caught: Option<(u64, ProcessId, ExitReason)>,
}

impl NodeState {
    /// Hands an exit signal to the innermost catcher of `target` (a local process) for
    /// the reason's type; whether one took it. A caught signal wakes the process, whose
    /// catcher then runs its handler instead of the body.
    pub(crate) fn catch_exit_signal(
        &mut self,
        target: ProcessId,
        from: ProcessId,
        reason: &ExitReason,
    ) -> bool {
        let Some(task) = self.local_task(target) else {
            return false;
        };
        let Some(slot) = self.processes.get_mut(task) else {
            return false;
        };
        let Some(relations) = slot.relations.as_mut() else {
            return false;
        };
        let catchers = &mut relations.exit_catchers;
        if catchers.caught.is_some() {
            // One signal at a time: the catcher that took the first one is unwinding.
            return false;
        }
        let Some(&(id, _)) = catchers
            .active
            .iter()
            .rev()
            .find(|(_, fingerprint)| *fingerprint == reason.fingerprint)
        else {
            return false;
        };
        catchers.caught = Some((id, from, reason.clone()));
        self.schedule(task);
        true
    }

    /// A typed exit signal from `from` to `target`, wherever `target` lives: caught by
    /// a catcher for its type, delivered as a [`ProcessExitSignal`] (its text) to a
    /// process that traps exits, or the death of `target` with the reason.
    ///
    /// [`ProcessExitSignal`]: crate::ProcessExitSignal
    pub(crate) fn exit_signal_with(
        &mut self,
        from: ProcessId,
        target: ProcessId,
        reason: ExitReason,
    ) {
        if target.node != self.id {
            if let Some(network) = &mut self.network {
                network.send_control(
                    target.node,
                    Control::ExitWith {
                        from,
                        target,
                        reason,
                    },
                );
            }
            return;
        }
        if self.catch_exit_signal(target, from, &reason) {
            return;
        }
        let Some(task) = self.local_task(target) else {
            return;
        };
        let Some(slot) = self.processes.get(task) else {
            return;
        };
        if slot.trap_exits {
            let signal = crate::ProcessExitSignal {
                from,
                reason: reason.text().to_string(),
            };
            self.deliver(target, Message::new(signal));
        } else {
            self.doom(task, DiedReason::Exit(reason));
        }
    }
}

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
        let slot = state
            .processes
            .get_mut(self.process.task)?
            .relations
            .as_mut()?;
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
        let Some(slot) = state.processes.get_mut(self.process.task) else {
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
