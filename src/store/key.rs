//! Result keys: content hashes that name a computation the same way in every run and on
//! every machine.

use std::fmt;

use sha2::{Digest, Sha256};

/// Tags the hash input, so that a key can never collide with another use of SHA-256 on
/// the same bytes, and so that a future change of the layout is a new domain.
const KEY_DOMAIN: &[u8] = b"hyperion.result-key.v1\0";

/// The key of a stored result: SHA-256 of the closure's label, the user's version tag
/// and the encoded argument, each preceded by its length (so that no two different
/// triples hash the same input).
///
/// The hash is a fixed algorithm over bytes only, so one argument gets one key in every
/// run and on every machine, as long as its encoding does not change (`bincode` is
/// pinned for this reason). Changing the version tag changes every key: a program whose
/// results mean something else bumps its tag, and old results are never reused.
///
/// ```
/// use hyperion::store::Key;
/// let a = Key::new("integrate", "v1", &[1, 2, 3]);
/// assert_eq!(a, Key::new("integrate", "v1", &[1, 2, 3]));
/// assert_ne!(a, Key::new("integrate", "v2", &[1, 2, 3]));
/// assert_eq!(a.to_string().len(), 64); // hex
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key([u8; 32]);

impl Key {
    /// The key of `label` called on the encoded `argument` under `version`.
    pub fn new(label: &str, version: &str, argument: &[u8]) -> Key {
        let mut hash = Sha256::new();
        hash.update(KEY_DOMAIN);
        for part in [label.as_bytes(), version.as_bytes(), argument] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        Key(hash.finalize().into())
    }

    /// A key from its 32 bytes (as read back from a store).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key computed once and written down: if this changes, every stored result of
    /// every user silently stops being found. Never update it without a new domain.
    /// (Computed independently: Python's hashlib over the documented layout.)
    #[test]
    fn a_key_is_the_same_in_every_run_and_on_every_machine() {
        let argument = crate::message::encode(&1.5f64).unwrap();
        assert_eq!(
            argument,
            1.5f64.to_le_bytes().to_vec(),
            "bincode's f64 encoding"
        );
        let key = Key::new("integrate", "scan-v1", &argument);
        assert_eq!(
            key.to_string(),
            "d5451a5a27a56e5211019e74c49f4406c9aaad3b8367b0bca8e4fca604e48253"
        );
    }

    #[test]
    fn the_version_tag_changes_the_key() {
        let argument = [7u8; 8];
        assert_ne!(
            Key::new("integrate", "v1", &argument),
            Key::new("integrate", "v2", &argument)
        );
        assert_ne!(
            Key::new("integrate", "", &argument),
            Key::new("integrate", "v1", &argument)
        );
    }

    #[test]
    fn label_version_and_argument_cannot_trade_bytes() {
        // Without length prefixes these would hash the same concatenation.
        assert_ne!(Key::new("ab", "c", b"d"), Key::new("a", "bc", b"d"));
        assert_ne!(Key::new("a", "b", b"cd"), Key::new("a", "bc", b"d"));
        assert_ne!(Key::new("f", "v", b"1"), Key::new("g", "v", b"1"));
    }
}
