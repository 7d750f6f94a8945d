//! Sinks: the typed handlers an agent offers each input to, in order ([`mx_sink`],
//! [`mx_sink_events`]), and the input they are offered.

use std::any::{Any, TypeId};
use std::fmt;

use super::action::{mx_skip, MxAction, Verdict};
use super::context::MxAgent;
use crate::bus::events::{MxEvent, MxEventKind};
use crate::bus::BusItem;
use crate::message::Message;
use crate::types::id::NodeId;
use crate::Serializable;

/// One input: a message (from the mailbox, or a user's value from the bus) or a
/// system event from the bus.
pub(super) enum Input {
    Message(Message),
    Event(MxEvent),
}

impl Input {
    #[inline]
    pub(super) fn from_bus(item: BusItem, node: NodeId) -> Input {
        match item.into_event(node) {
            Ok(event) => Input::Event(event),
            Err(message) => Input::Message(message),
        }
    }

    /// The system event, if the input is one from the bus.
    #[inline(always)]
    pub(super) fn event(&self) -> Option<&MxEvent> {
        match self {
            Input::Message(_) => None,
            Input::Event(event) => Some(event),
        }
    }

    /// The input as a `T`, if it is one (decoding encoded bytes in place, once).
    #[inline]
    fn peek<T: Serializable>(&mut self) -> Option<&T> {
        match self {
            Input::Message(message) => message.peek::<T>(),
            Input::Event(event) => (event as &dyn Any).downcast_ref::<T>(),
        }
    }
}

type SinkFn<S> = dyn FnMut(&mut MxAgent<'_, S>, &mut Input) -> Option<Verdict>;
type EventFn<S> = dyn FnMut(&mut MxAgent<'_, S>, &MxEvent) -> Option<Verdict>;

/// How a sink takes its inputs.
enum Handler<S> {
    /// System events of the given kinds (bits of [`MxEventKind::bit`]), handed over
    /// with no check of their type.
    Events { kinds: u32, handle: Box<EventFn<S>> },
    /// Values of one type other than [`MxEvent`], from the mailbox or the bus.
    Typed(Box<SinkFn<S>>),
}

/// A typed handler of an agent's inputs, made by [`mx_sink`].
pub struct MxSink<S> {
    handler: Handler<S>,
}

impl<S> MxSink<S> {
    /// The event kinds it takes: an agent is sent only the system events some sink of
    /// it takes.
    pub(super) fn kinds(&self) -> u32 {
        match self.handler {
            Handler::Events { kinds, .. } => kinds,
            Handler::Typed(_) => 0,
        }
    }

    /// Offers a system event from the bus, of kind bit `kind`; `None` passes it on (a
    /// sink of another type never takes an event).
    #[inline(always)]
    pub(super) fn offer_event(
        &mut self,
        agent: &mut MxAgent<'_, S>,
        event: &MxEvent,
        kind: u32,
    ) -> Option<Verdict> {
        match &mut self.handler {
            Handler::Events { kinds, handle } if *kinds & kind != 0 => handle(agent, event),
            _ => None,
        }
    }

    /// Offers a value (from the mailbox, or a user's from the bus), which may be an
    /// event sent as a message; `None` passes it on.
    #[inline]
    pub(super) fn offer_value(
        &mut self,
        agent: &mut MxAgent<'_, S>,
        input: &mut Input,
    ) -> Option<Verdict> {
        match &mut self.handler {
            Handler::Events { kinds, handle } => {
                let event = input.peek::<MxEvent>()?;
                if *kinds & event.kind().bit() == 0 {
                    return None;
                }
                handle(agent, event)
            }
            Handler::Typed(handle) => handle(agent, input),
        }
    }
}

impl<S> fmt::Debug for MxSink<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MxSink")
    }
}

/// A sink for inputs of type `T`, from the bus or the mailbox alike (`mxSink`). Sinks
/// are tried in order; the first whose type matches handles the input, unless it
/// returns [`mx_skip`]. An input no sink takes is dropped.
///
/// A sink runs synchronously inside the agent's process; it reaches the process
/// through [`MxAgent::process`] / [`MxAgent::lift_mx`], and queues actions that must
/// wait (a receive, a sleep) with [`MxAgent::lift_mx_async`].
///
/// ```
/// use hyperion::mx::{mx_ready, mx_sink, MxAgent, MxEvent, MxSink};
/// let count_spawns: MxSink<u64> = mx_sink(|agent: &mut MxAgent<'_, u64>, event: &MxEvent| {
///     if let MxEvent::Spawned(_) = event {
///         agent.mx_update_local(|n| *n += 1);
///     }
///     mx_ready()
/// });
/// ```
pub fn mx_sink<S, T, F>(mut handler: F) -> MxSink<S>
where
    S: 'static,
    T: Serializable,
    F: FnMut(&mut MxAgent<'_, S>, &T) -> MxAction + 'static,
{
    if TypeId::of::<T>() == TypeId::of::<MxEvent>() {
        return mx_sink_events(&MxEventKind::ALL, move |agent, event| {
            // `T` is `MxEvent`: the cast cannot fail.
            match (event as &dyn Any).downcast_ref::<T>() {
                Some(event) => handler(agent, event),
                None => mx_skip(),
            }
        });
    }
    MxSink {
        handler: Handler::Typed(Box::new(move |agent, input| {
            let value = input.peek::<T>()?;
            let action = handler(agent, value);
            agent.verdict(action)
        })),
    }
}

/// A sink for system events of the given kinds only (an [`mx_sink`] of [`MxEvent`]
/// that passes other kinds on, as if their type did not match). An agent is sent only
/// the kinds its sinks take, so an agent that needs few kinds costs the node less: one
/// that takes [`MxEventKind::Sent`] alone costs nothing per message received.
///
/// ```
/// use hyperion::mx::{mx_ready, mx_sink_events, MxAgent, MxEvent, MxEventKind, MxSink};
/// let count_sends: MxSink<u64> = mx_sink_events(
///     &[MxEventKind::Sent],
///     |agent: &mut MxAgent<'_, u64>, _: &MxEvent| {
///         agent.mx_update_local(|n| *n += 1);
///         mx_ready()
///     },
/// );
/// ```
pub fn mx_sink_events<S, F>(kinds: &[MxEventKind], mut handler: F) -> MxSink<S>
where
    S: 'static,
    F: FnMut(&mut MxAgent<'_, S>, &MxEvent) -> MxAction + 'static,
{
    MxSink {
        handler: Handler::Events {
            kinds: kinds.iter().fold(0, |mask, kind| mask | kind.bit()),
            handle: Box::new(move |agent, event| {
                let action = handler(agent, event);
                agent.verdict(action)
            }),
        },
    }
}
