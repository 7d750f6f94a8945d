//! What a sink decides after an input ([`MxAction`]) and the one-byte form the agent's
//! loop acts on (`Verdict`): a leaf of the agent modules.

/// Where an agent looks first for its next input.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum MxSource {
    /// Its own mailbox.
    Mailbox,
    /// The node's management event bus.
    Bus,
}

/// What a sink decides after handling an input (Cloud Haskell's `MxAction`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MxAction {
    /// Continue with the next input, from the bus first if both sources have one
    /// ([`mx_ready`]).
    Ready,
    /// Pass the input on to the next sink ([`mx_skip`]).
    Skip,
    /// Continue, taking the next input from `source` first if both have one
    /// ([`mx_receive`], [`mx_receive_chan`]).
    Prioritise(MxSource),
    /// Stop the agent ([`mx_deactivate`]): its finalizer runs and its process ends
    /// normally.
    Deactivate(String),
}

/// Continue with the next input (`mxReady`).
pub fn mx_ready() -> MxAction {
    MxAction::Ready
}

/// Pass this input on to the next sink (`mxSkip`): the only way two sinks can handle
/// the same type.
pub fn mx_skip() -> MxAction {
    MxAction::Skip
}

/// Continue, preferring the agent's mailbox for the next input (`mxReceive`).
pub fn mx_receive() -> MxAction {
    MxAction::Prioritise(MxSource::Mailbox)
}

/// Continue, preferring the event bus for the next input (`mxReceiveChan`).
pub fn mx_receive_chan() -> MxAction {
    MxAction::Prioritise(MxSource::Bus)
}

/// Stop the agent (`mxDeactivate`); `reason` reaches its finalizer.
pub fn mx_deactivate(reason: impl Into<String>) -> MxAction {
    MxAction::Deactivate(reason.into())
}

/// What the loop needs of a sink's [`MxAction`]: one byte (a deactivation's reason
/// waits in the agent's core).
#[derive(Copy, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Ready,
    Prioritise(MxSource),
    Deactivate,
}
