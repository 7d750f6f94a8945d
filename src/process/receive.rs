//! Selective receive: match lists, and the futures that wait for a message.
//!
//! The mailbox is scanned from the oldest message; the first message that any match
//! accepts (tried in list order) is taken and the rest stay queued, in order. A waiting
//! receive remembers how far it has scanned, so a message it rejected once is not
//! looked at again: waiting costs time linear in the new arrivals, not in the mailbox.
//! Channel matches are tried after the mailbox, in list order.

use crate::bus::events::{MxEvent, MxEventKind};
use crate::node::local::NodeState;
use crate::types::id::ProcessId;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::channel::{PortSource, ReceivePort};
use super::handle::Process;
use super::timer::Deadline;
use crate::message::{Message, Serializable};

/// One alternative of a [`Process::receive_wait`]: which messages it accepts and what
/// to make of the one it takes.
pub struct Match<'a, R> {
    kind: MatchKind<'a, R>,
}

type Accepts<'a> = Box<dyn FnMut(&mut Message) -> bool + 'a>;
type Handle<'a, R> = Box<dyn FnOnce(Message) -> R + 'a>;

enum MatchKind<'a, R> {
    Mailbox {
        accepts: Accepts<'a>,
        handle: Handle<'a, R>,
    },
    Channel {
        source: &'a PortSource,
        handle: Handle<'a, R>,
    },
}

impl<'a, R: 'a> Match<'a, R> {
    /// The same match, with its result transformed by `f`.
    pub fn map<S>(self, f: impl FnOnce(R) -> S + 'a) -> Match<'a, S> {
        let kind = match self.kind {
            MatchKind::Mailbox { accepts, handle } => MatchKind::Mailbox {
                accepts,
                handle: Box::new(move |message| f(handle(message))),
            },
            MatchKind::Channel { source, handle } => MatchKind::Channel {
                source,
                handle: Box::new(move |message| f(handle(message))),
            },
        };
        Match { kind }
    }
}

/// Accepts any message of type `T`.
///
/// ```
/// # use hyperion::{match_type, Match};
/// let m: Match<'_, String> = match_type(|n: u64| format!("got {n}"));
/// ```
pub fn match_type<'a, T: Serializable, R>(handle: impl FnOnce(T) -> R + 'a) -> Match<'a, R> {
    Match {
        kind: MatchKind::Mailbox {
            accepts: Box::new(|message| message.accepts::<T>()),
            handle: Box::new(move |message| handle(downcast_accepted(message))),
        },
    }
}

/// Accepts a message of type `T` for which `predicate` holds.
///
/// ```
/// # use hyperion::{match_if, Match};
/// let big: Match<'_, u64> = match_if(|n: &u64| *n > 100, |n| n);
/// ```
pub fn match_if<'a, T: Serializable, R>(
    predicate: impl Fn(&T) -> bool + 'a,
    handle: impl FnOnce(T) -> R + 'a,
) -> Match<'a, R> {
    Match {
        kind: MatchKind::Mailbox {
            accepts: Box::new(move |message| message.peek::<T>().is_some_and(&predicate)),
            handle: Box::new(move |message| handle(downcast_accepted(message))),
        },
    }
}

/// Accepts any message at all, handing it over undecoded.
///
/// ```
/// # use hyperion::{match_any, Match, message::Message};
/// let any: Match<'_, Message> = match_any(|message| message);
/// ```
pub fn match_any<'a, R>(handle: impl FnOnce(Message) -> R + 'a) -> Match<'a, R> {
    Match {
        kind: MatchKind::Mailbox {
            accepts: Box::new(|_| true),
            handle: Box::new(handle),
        },
    }
}

/// Accepts a message of type `T` for which `predicate` holds, handing it over
/// undecoded (Cloud Haskell's `matchAnyIf`: to forward it, say).
///
/// ```
/// # use hyperion::{match_any_if, Match, message::Message};
/// let big: Match<'_, Message> = match_any_if(|n: &u64| *n > 100, |message| message);
/// ```
pub fn match_any_if<'a, T: Serializable, R>(
    predicate: impl Fn(&T) -> bool + 'a,
    handle: impl FnOnce(Message) -> R + 'a,
) -> Match<'a, R> {
    Match {
        kind: MatchKind::Mailbox {
            accepts: Box::new(move |message| message.peek::<T>().is_some_and(&predicate)),
            handle: Box::new(handle),
        },
    }
}

/// Accepts the next value on a typed channel (or merged port).
pub fn match_chan<'a, T: Serializable, R>(
    port: &'a ReceivePort<T>,
    handle: impl FnOnce(T) -> R + 'a,
) -> Match<'a, R> {
    Match {
        kind: MatchKind::Channel {
            source: &port.source,
            handle: Box::new(move |message| handle(downcast_accepted(message))),
        },
    }
}

fn downcast_accepted<T: Serializable>(message: Message) -> T {
    match message.downcast::<T>() {
        Ok(value) => value,
        Err(message) => unreachable!("a match accepted {message:?} as another type"),
    }
}

/// How far a waiting receive has scanned its mailbox.
#[derive(Default)]
pub(crate) struct Scan {
    cursor: usize,
    removals_seen: u64,
}

impl Scan {
    /// Takes the first message from the scan position on that `accept` takes, returning
    /// which alternative took it; otherwise remembers how far it looked. A message
    /// passed over that turned out not to decode as its type is dropped (a waiting
    /// receive would otherwise decode and log it at every scan); `dropped` gets the
    /// type each one claimed to be.
    fn scan(
        &mut self,
        mailbox: &mut VecDeque<Message>,
        removals: &mut u64,
        dropped: &mut Vec<&'static str>,
        mut accept: impl FnMut(&mut Message) -> Option<usize>,
    ) -> Option<(Message, usize)> {
        if *removals != self.removals_seen {
            self.cursor = 0;
            self.removals_seen = *removals;
        }
        let mut index = self.cursor;
        let found = loop {
            let Some(message) = mailbox.get_mut(index) else {
                break None;
            };
            if let Some(which) = accept(message) {
                break Some((index, which));
            }
            match message.undecodable() {
                None => index += 1,
                Some(type_name) => {
                    mailbox.remove(index);
                    *removals += 1;
                    self.removals_seen = *removals;
                    dropped.push(type_name);
                }
            }
        };
        match found {
            Some((index, which)) => {
                // The head is what most receives take: `pop_front` moves no other
                // message (`remove` at 0 still goes through its general copy).
                let message = if index == 0 {
                    mailbox.pop_front()
                } else {
                    mailbox.remove(index)
                }
                .expect("index from the scan");
                *removals += 1;
                self.removals_seen = *removals;
                self.cursor = 0;
                Some((message, which))
            }
            None => {
                self.cursor = mailbox.len();
                None
            }
        }
    }

    /// [`scan`](Scan::scan) for matches that run user code (predicates): the mailbox is
    /// taken out of the node while they run, so they may use the node freely.
    pub(crate) fn take_first(
        &mut self,
        process: &Process,
        accept: impl FnMut(&mut Message) -> Option<usize>,
    ) -> Option<(Message, usize)> {
        let node = process.node();
        let (mut mailbox, mut removals) = {
            let mut state = node.state();
            let slot = process.running_slot(&mut state);
            if slot.mailbox_removals == self.removals_seen && slot.mailbox.len() <= self.cursor {
                return None;
            }
            (std::mem::take(&mut slot.mailbox), slot.mailbox_removals)
        };
        let mut dropped = Vec::new();
        let found = self.scan(&mut mailbox, &mut removals, &mut dropped, accept);
        let mut state = node.state();
        let slot = process.running_slot(&mut state);
        // Messages that arrived during the scan go after the ones already there.
        mailbox.append(&mut slot.mailbox);
        slot.mailbox = mailbox;
        slot.mailbox_removals = removals;
        report_dropped(&mut state, process.self_pid(), dropped);
        found
    }

    /// [`scan`](Scan::scan) for a match on type alone: no user code runs, so the mailbox
    /// is scanned where it lies (the message hot path).
    pub(crate) fn take_first_of_type<T: Serializable>(&mut self, process: &Process) -> Option<T> {
        let mut state = process.node().state();
        let slot = process.running_slot(&mut state);
        // Where the scan would start at the head (the usual case), a value held in the
        // envelope there is taken at once: what `scan` would do, without its steps.
        let at_head = self.cursor == 0 || slot.mailbox_removals != self.removals_seen;
        if at_head && slot.mailbox.front().is_some_and(Message::holds_inline::<T>) {
            let value = slot.mailbox.pop_front().and_then(Message::into_inline::<T>);
            slot.mailbox_removals += 1;
            self.removals_seen = slot.mailbox_removals;
            self.cursor = 0;
            return value;
        }
        let mut dropped = Vec::new();
        let found = self.scan(
            &mut slot.mailbox,
            &mut slot.mailbox_removals,
            &mut dropped,
            |message| message.accepts::<T>().then_some(0),
        );
        report_dropped(&mut state, process.self_pid(), dropped);
        drop(state);
        found.map(|(message, _)| downcast_accepted(message))
    }
}

/// Tells the management bus of messages a scan dropped for not decoding as the type
/// they claimed (logged when they failed to decode). Inline for the check alone: a
/// scan almost never drops anything.
#[inline(always)]
fn report_dropped(state: &mut NodeState, pid: ProcessId, dropped: Vec<&'static str>) {
    if !dropped.is_empty() {
        report_dropped_slow(state, pid, dropped);
    }
}

#[cold]
#[inline(never)]
fn report_dropped_slow(state: &mut NodeState, pid: ProcessId, dropped: Vec<&'static str>) {
    for type_name in dropped {
        state.mx_event(MxEventKind::Log, || {
            MxEvent::Log(format!(
                "{pid}: dropped a message that did not decode as its type {type_name}"
            ))
        });
    }
}

/// The future of [`Process::receive_wait`] and [`Process::receive_timeout`]: `None`
/// only when the timeout passed.
pub struct Receive<'a, R> {
    process: &'a Process,
    matches: Vec<Match<'a, R>>,
    scan: Scan,
    timeout: Option<Duration>,
    deadline: Deadline,
}

impl<'a, R> Receive<'a, R> {
    pub(crate) fn new(
        process: &'a Process,
        matches: Vec<Match<'a, R>>,
        timeout: Option<Duration>,
    ) -> Self {
        Receive {
            process,
            matches,
            scan: Scan::default(),
            timeout,
            deadline: Deadline::default(),
        }
    }

    fn take_from_mailbox(&mut self) -> Option<R> {
        if !self
            .matches
            .iter()
            .any(|m| matches!(m.kind, MatchKind::Mailbox { .. }))
        {
            return None;
        }
        let matches = &mut self.matches;
        let (message, which) = self.scan.take_first(self.process, |message| {
            matches.iter_mut().position(|m| match &mut m.kind {
                MatchKind::Mailbox { accepts, .. } => accepts(message),
                MatchKind::Channel { .. } => false,
            })
        })?;
        match self.matches.swap_remove(which).kind {
            MatchKind::Mailbox { handle, .. } => Some(handle(message)),
            MatchKind::Channel { .. } => unreachable!("only mailbox matches accept"),
        }
    }

    fn take_from_channels(&mut self) -> Option<R> {
        let task = self.process.task;
        let (message, which) = {
            let mut state = self.process.node().state();
            self.matches
                .iter()
                .enumerate()
                .find_map(|(which, m)| match &m.kind {
                    MatchKind::Channel { source, .. } => state
                        .take_from_channel(source, task)
                        .map(|message| (message, which)),
                    MatchKind::Mailbox { .. } => None,
                })?
        };
        match self.matches.swap_remove(which).kind {
            MatchKind::Channel { handle, .. } => Some(handle(message)),
            MatchKind::Mailbox { .. } => unreachable!("only channel matches take here"),
        }
    }
}

impl<R> Future for Receive<'_, R> {
    type Output = Option<R>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<R>> {
        let this = self.get_mut();
        this.process.assert_running();
        if let Some(result) = this
            .take_from_mailbox()
            .or_else(|| this.take_from_channels())
        {
            this.deadline.cancel(this.process);
            return Poll::Ready(Some(result));
        }
        if let Some(timeout) = this.timeout {
            if this.deadline.expired(this.process, timeout) {
                return Poll::Ready(None);
            }
        }
        this.process.wait_for_delivery();
        Poll::Pending
    }
}

impl<R> Drop for Receive<'_, R> {
    fn drop(&mut self) {
        self.deadline.cancel(self.process);
    }
}

/// The future of [`Process::expect`] and [`Process::expect_timeout`]: the first message
/// of type `T`, or `None` when the timeout passed.
pub struct Expect<'a, T> {
    process: &'a Process,
    scan: Scan,
    timeout: Option<Duration>,
    deadline: Deadline,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T> Expect<'a, T> {
    pub(crate) fn new(process: &'a Process, timeout: Option<Duration>) -> Self {
        Expect {
            process,
            scan: Scan::default(),
            timeout,
            deadline: Deadline::default(),
            _type: std::marker::PhantomData,
        }
    }
}

impl<T: Serializable> Future for Expect<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if let Some(value) = this.scan.take_first_of_type::<T>(this.process) {
            this.deadline.cancel(this.process);
            return Poll::Ready(Some(value));
        }
        if let Some(timeout) = this.timeout {
            if this.deadline.expired(this.process, timeout) {
                return Poll::Ready(None);
            }
        }
        this.process.wait_for_delivery();
        Poll::Pending
    }
}

impl<T> Drop for Expect<'_, T> {
    fn drop(&mut self) {
        self.deadline.cancel(self.process);
    }
}
