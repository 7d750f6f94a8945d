//! A program's build identity: which build of the program a node runs, so that a
//! master refuses a worker of another build (one that was recompiled while the run
//! went on) instead of exchanging messages whose encodings may differ.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which build of the program a node runs: a hash of its executable (or a value set in
/// its configuration), hyperion's version, and an optional protocol version that the
/// user bumps by hand to declare builds compatible on purpose.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct BuildId {
    /// The executable's SHA-256 in hex (or a name chosen by whoever set it).
    pub hash: String,
    /// hyperion's version.
    pub version: String,
    /// When set on both sides, only this is compared: builds that declare the same
    /// protocol version are compatible whatever their hashes.
    pub protocol: Option<u32>,
}

impl BuildId {
    /// An identity with this hash and hyperion's version (the simulator gives each
    /// node one; tests name builds this way).
    pub fn named(hash: &str) -> BuildId {
        BuildId {
            hash: hash.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            protocol: None,
        }
    }

    /// The identity a node has when nobody set one in the simulator: the same for
    /// every node, so that existing worlds behave as before.
    pub fn fixed() -> BuildId {
        BuildId::named("unset")
    }

    /// The running executable's identity, hashed once per process.
    // real-world only: reads the executable from the file system.
    pub fn of_current_exe() -> BuildId {
        static CURRENT: OnceLock<BuildId> = OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let hashed = std::env::current_exe().and_then(|exe| BuildId::of_file(&exe));
                hashed.unwrap_or_else(|err| {
                    tracing::warn!(%err, "cannot hash the executable; its build identity is unknown");
                    BuildId::named("unknown")
                })
            })
            .clone()
    }

    /// The identity of the executable at `path` (its SHA-256).
    pub fn of_file(path: &Path) -> std::io::Result<BuildId> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        let digest = hasher.finalize();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(BuildId::named(&hex))
    }

    /// Declares this build compatible with every build of the same protocol version.
    pub fn with_protocol(mut self, protocol: u32) -> BuildId {
        self.protocol = Some(protocol);
        self
    }

    /// Whether a node of build `other` may work with this one: the same protocol
    /// version when both declare one, else the same hash and hyperion version.
    pub fn compatible(&self, other: &BuildId) -> bool {
        match (self.protocol, other.protocol) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => self.hash == other.hash && self.version == other.version,
        }
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 16 hex digits tell builds apart for a reader; the comparison uses them all.
        let short: String = self.hash.chars().take(16).collect();
        write!(f, "build {short} (hyperion {})", self.version)?;
        if let Some(protocol) = self.protocol {
            write!(f, ", protocol {protocol}")?;
        }
        Ok(())
    }
}

/// The error a master gives for a worker of another build: both identities and what
/// to do.
pub fn refusal_text(master: &BuildId, worker: &BuildId) -> String {
    format!(
        "this worker runs another build of the program: rebuild, or start a new run \
         (master: {master}; worker: {worker})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_differ_by_hash_unless_both_declare_one_protocol() {
        let a = BuildId::named("aaaa");
        let b = BuildId::named("bbbb");
        assert!(a.compatible(&a.clone()));
        assert!(!a.compatible(&b));
        assert!(a
            .clone()
            .with_protocol(3)
            .compatible(&b.clone().with_protocol(3)));
        assert!(!a
            .clone()
            .with_protocol(3)
            .compatible(&b.clone().with_protocol(4)));
        // Only one side declaring a protocol: the hashes decide.
        assert!(!a.clone().with_protocol(3).compatible(&b));
    }

    #[test]
    fn the_refusal_names_both_builds_and_what_to_do() {
        let text = refusal_text(&BuildId::named("aaaa"), &BuildId::named("bbbb"));
        assert!(text.contains("build aaaa"), "{text}");
        assert!(text.contains("build bbbb"), "{text}");
        assert!(text.contains("rebuild, or start a new run"), "{text}");
    }
}
