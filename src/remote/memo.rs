//! A value built once, on first use, by an asynchronous action, and shared by every
//! caller: the memoized argument of a [`RemoteCall`](super::RemoteCall) (hyperion's
//! `SerializableClosureProcess`, whose `MVar` makes a second caller wait for the first
//! one's build).
//!
//! Callers are processes of one node (the cell is not `Send`). A caller that arrives
//! while the build runs waits for it; if the building process stops before the build
//! ends (it is killed, or its call is cancelled), the cell settles on an error rather
//! than leaving the waiters hanging.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Poll, Waker};

/// The action that builds the value.
pub(crate) type Builder<T> = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = T>>>>;

/// Where the cell's build stands.
enum Stage<T> {
    /// Not started: the first caller runs the builder.
    Unbuilt(Builder<T>),
    /// A caller is running the builder; the others wait.
    Building,
    /// Built: every caller gets a copy.
    Built(T),
}

/// A build-once cell whose callers may overlap.
pub(crate) struct Memo<T> {
    stage: RefCell<Stage<T>>,
    /// Callers waiting for the running build.
    waiters: RefCell<Vec<Waker>>,
    builds: Cell<u32>,
}

impl<T: Clone> Memo<T> {
    pub(crate) fn new(builder: Builder<T>) -> Memo<T> {
        Memo {
            stage: RefCell::new(Stage::Unbuilt(builder)),
            waiters: RefCell::new(Vec::new()),
            builds: Cell::new(0),
        }
    }

    /// How many times the builder ran (0 or 1).
    pub(crate) fn builds(&self) -> u32 {
        self.builds.get()
    }

    /// The value, built by this call if it is the first; `abandoned` is what every
    /// caller gets if the build's caller stops before the build ends.
    pub(crate) async fn get(&self, abandoned: impl Fn() -> T) -> T {
        let stage = std::mem::replace(&mut *self.stage.borrow_mut(), Stage::Building);
        match stage {
            Stage::Unbuilt(builder) => {
                self.builds.set(self.builds.get() + 1);
                let mut settle = Settle {
                    memo: self,
                    abandoned: Some(abandoned),
                };
                let value = builder().await;
                settle.abandoned = None;
                self.settle(value.clone());
                value
            }
            Stage::Built(value) => {
                *self.stage.borrow_mut() = Stage::Built(value.clone());
                value
            }
            Stage::Building => self.wait().await,
        }
    }

    /// Waits for the running build to settle.
    async fn wait(&self) -> T {
        poll_fn(|cx| match &*self.stage.borrow() {
            Stage::Built(value) => Poll::Ready(value.clone()),
            _ => {
                let mut waiters = self.waiters.borrow_mut();
                if !waiters.iter().any(|waiter| waiter.will_wake(cx.waker())) {
                    waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }

    fn settle(&self, value: T) {
        *self.stage.borrow_mut() = Stage::Built(value);
        for waiter in self.waiters.take() {
            waiter.wake();
        }
    }
}

/// Settles the cell on the `abandoned` value if the build's caller is dropped before
/// the build ends.
struct Settle<'a, T: Clone, F: Fn() -> T> {
    memo: &'a Memo<T>,
    abandoned: Option<F>,
}

impl<T: Clone, F: Fn() -> T> Drop for Settle<'_, T, F> {
    fn drop(&mut self) {
        if let Some(abandoned) = self.abandoned.take() {
            self.memo.settle(abandoned());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use futures::channel::oneshot;

    use super::*;
    use crate::{Node, ProcessMonitorNotification};

    type Text = Result<String, String>;

    /// A cell whose build waits for the returned sender.
    fn gated() -> (Rc<Memo<Text>>, oneshot::Sender<String>) {
        let (open, gate) = oneshot::channel::<String>();
        let memo = Memo::new(Box::new(move || {
            Box::pin(async move { gate.await.map_err(|_| "gate dropped".to_string()) })
                as Pin<Box<dyn Future<Output = Text>>>
        }));
        (Rc::new(memo), open)
    }

    fn abandoned() -> Text {
        Err("abandoned".to_string())
    }

    #[test]
    fn a_caller_arriving_during_the_build_waits_for_it_and_the_builder_runs_once() {
        let node = Node::new().unwrap();
        let (values, builds) = node
            .run(|p| async move {
                let (memo, open) = gated();
                let me = p.self_pid();
                for _ in 0..2 {
                    let memo = memo.clone();
                    p.spawn_local(move |c| async move {
                        let value = memo.get(abandoned).await;
                        c.send(me, value);
                    });
                }
                // Both callers run (one builds, one waits) before the build may end.
                p.yield_now().await;
                open.send("built".to_string()).unwrap();
                let first: Text = p.expect().await;
                let second: Text = p.expect().await;
                let again = memo.get(abandoned).await;
                (vec![first, second, again], memo.builds())
            })
            .unwrap();
        assert_eq!(values, vec![Ok("built".to_string()); 3]);
        assert_eq!(builds, 1);
    }

    #[test]
    fn waiters_get_the_abandoned_value_when_the_builder_is_killed() {
        let node = Node::new().unwrap();
        let (waiter_got, later_got, builds) = node
            .run(|p| async move {
                let (memo, _open) = gated();
                let me = p.self_pid();
                let builder = {
                    let memo = memo.clone();
                    p.spawn_local(move |_| async move {
                        let _never: Text = memo.get(abandoned).await;
                    })
                };
                p.monitor(builder);
                let memo_for_waiter = memo.clone();
                p.spawn_local(move |c| async move {
                    let value = memo_for_waiter.get(abandoned).await;
                    c.send(me, value);
                });
                p.yield_now().await; // the build has started and the waiter waits
                p.kill(builder, "stop the build");
                let _: ProcessMonitorNotification = p.expect().await;
                let waiter_got: Text = p.expect().await;
                (waiter_got, memo.get(abandoned).await, memo.builds())
            })
            .unwrap();
        assert_eq!(waiter_got, abandoned());
        assert_eq!(later_got, abandoned());
        assert_eq!(builds, 1);
    }
}
