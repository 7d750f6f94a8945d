//! Typed exit reasons, as in Cloud Haskell: a process may end with any serializable
//! reason ([`Process::die_with`], [`Process::terminate`]), be asked to exit with one
//! ([`Process::exit_with`]), and catch an exit signal whose reason has a given type
//! instead of dying ([`Process::catch_exit`], Cloud Haskell's `catchExit`). This module
//! holds the reasons (a leaf: the wire carries them); the `Process` methods are in
//! `process::typed_exit`.
//!
//! [`Process::die_with`]: crate::Process::die_with
//! [`Process::terminate`]: crate::Process::terminate
//! [`Process::exit_with`]: crate::Process::exit_with
//! [`Process::catch_exit`]: crate::Process::catch_exit
//!
//! The reason travels encoded with its type's fingerprint, so a watcher on another
//! node matches it by type: [`DiedReason::reason_as`](crate::process::id::DiedReason::reason_as).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message::{Fingerprint, Message, Serializable};

/// A reason of any serializable type: its type's fingerprint, its encoded value, and
/// its text (`Debug`) for people and logs.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ExitReason {
    pub(crate) fingerprint: Fingerprint,
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

    /// A text reason (what [`Process::exit`](crate::process::Process::exit) and [`Process::die`](crate::process::Process::die) give), typed `String`.
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

/// The reason [`Process::terminate`](crate::Process::terminate) ends a process with (Cloud Haskell's
/// `ProcessTerminationException`). Not normal: linked processes hear of it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProcessTermination;
