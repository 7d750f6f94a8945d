//! What one node asks another to run: a [`Closure`] (a label and an encoded
//! environment) and why running one failed ([`ClosureError`]). Plain data the wire
//! carries, so it sits in the shared vocabulary, below the wire; the table that runs
//! closures, [`RemoteTable`](crate::RemoteTable), knows the `Process` layer and lives
//! above it (`closure::table`). Both are re-exported from `crate::closure`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message::{encode, CodecError, Serializable};

/// A label plus encoded arguments: a process another node can start, if its remote
/// table knows the label.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Closure {
    /// The entry in the remote table.
    pub label: String,
    /// The encoded argument.
    pub environment: Vec<u8>,
}

impl Closure {
    /// A closure that runs the table entry `label` with `argument`.
    ///
    /// ```
    /// let closure = hyperion::Closure::new("square", &7u64).unwrap();
    /// assert_eq!(closure.label, "square");
    /// ```
    pub fn new<A: Serializable>(label: &str, argument: &A) -> Result<Closure, CodecError> {
        Ok(Closure {
            label: label.to_string(),
            environment: encode(argument)?,
        })
    }
}

/// Why a closure could not be started.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClosureError {
    /// The label is not in the receiving node's remote table.
    UnknownLabel(String),
    /// The environment does not decode as the entry's argument type.
    BadEnvironment {
        /// The entry.
        label: String,
        /// The decoder's complaint.
        error: String,
    },
    /// The entry panicked while starting its process (decoding the environment or
    /// building the process); the process, if it existed, died at once.
    Panicked {
        /// The entry.
        label: String,
        /// The panic's text.
        error: String,
    },
}

impl fmt::Display for ClosureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosureError::UnknownLabel(label) => {
                write!(f, "no closure labelled {label:?} in the remote table")
            }
            ClosureError::BadEnvironment { label, error } => {
                write!(f, "closure {label:?}: bad environment: {error}")
            }
            ClosureError::Panicked { label, error } => {
                write!(f, "closure {label:?}: {error}")
            }
        }
    }
}

impl std::error::Error for ClosureError {}
