//! [`MxAgentId`]: an agent's name on its node (a leaf of the agent modules).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The name of an agent, unique on its node (Cloud Haskell's `MxAgentId`). The agent
/// is also registered under this name in the node's registry, so other processes can
/// `nsend` to it.
///
/// ```
/// use hyperion::mx::MxAgentId;
/// let id = MxAgentId::new("message-counter");
/// assert_eq!(id.as_str(), "message-counter");
/// assert_eq!(id, MxAgentId::from("message-counter"));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct MxAgentId(String);

impl MxAgentId {
    /// An agent id.
    pub fn new(id: impl Into<String>) -> MxAgentId {
        MxAgentId(id.into())
    }

    /// The id as text (the registered name).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MxAgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for MxAgentId {
    fn from(id: &str) -> MxAgentId {
        MxAgentId::new(id)
    }
}

impl From<String> for MxAgentId {
    fn from(id: String) -> MxAgentId {
        MxAgentId(id)
    }
}
