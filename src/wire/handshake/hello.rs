//! The two kinds of handshake message as bytes: the hello and the proof (see the
//! layout in the parent module's doc). Decoding is bounds-checked and typed.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use sha2::{Digest, Sha256};

use super::{
    fill_random, HandshakeError, BUILD_TEXT_BYTES_MAX, MAC_BYTES, MAGIC, NONCE_BYTES,
    PROTOCOL_VERSION,
};
use crate::build_id::BuildId;
use crate::types::id::NodeId;

/// A handshake nonce: fresh randomness chosen by one side for the other to prove with.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

impl Nonce {
    /// A nonce from the operating system's random source.
    pub fn random() -> io::Result<Nonce> {
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce)?;
        Ok(Nonce(nonce))
    }
}

/// Which end of a connection a side is.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Role {
    /// Opened the connection.
    Initiator,
    /// Accepted it.
    Acceptor,
}

/// The first message of each side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Hello {
    /// The sender's protocol version.
    pub version: u32,
    /// The sender's role on this connection.
    pub role: Role,
    /// The sender's node id (claimed; proven by the proof that follows).
    pub node: NodeId,
    /// The sender's challenge to the receiver.
    pub nonce: Nonce,
    /// The build of the program the sender runs (see [`crate::build_id`]): nodes of
    /// incompatible builds refuse each other. A hash or version longer than
    /// [`BUILD_TEXT_BYTES_MAX`] travels as its SHA-256 in hex.
    pub build: BuildId,
}

impl Hello {
    /// The hello's bytes (see the [handshake module](super) doc for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.push(match self.role {
            Role::Initiator => 0,
            Role::Acceptor => 1,
        });
        match self.node.address {
            SocketAddr::V4(address) => {
                out.push(4);
                out.extend_from_slice(&address.ip().octets());
                out.extend_from_slice(&address.port().to_be_bytes());
            }
            SocketAddr::V6(address) => {
                out.push(6);
                out.extend_from_slice(&address.ip().octets());
                out.extend_from_slice(&address.port().to_be_bytes());
                out.extend_from_slice(&address.flowinfo().to_be_bytes());
                out.extend_from_slice(&address.scope_id().to_be_bytes());
            }
        }
        out.extend_from_slice(&self.node.incarnation.to_be_bytes());
        out.extend_from_slice(&self.nonce.0);
        put_text(&mut out, &self.build.hash);
        put_text(&mut out, &self.build.version);
        match self.build.protocol {
            None => out.push(0),
            Some(protocol) => {
                out.push(1);
                out.extend_from_slice(&protocol.to_be_bytes());
            }
        }
        out
    }

    /// Parses a hello. The magic is checked first, then the version (so that a peer of
    /// another version is told apart from garbage), then the rest, which must be
    /// consumed exactly.
    pub fn decode(bytes: &[u8]) -> Result<Hello, HandshakeError> {
        let mut cursor = Cursor { bytes };
        let magic = cursor
            .take(MAGIC.len())
            .map_err(|_| HandshakeError::BadMagic {
                found: bytes.to_vec(),
            })?;
        if magic != MAGIC {
            return Err(HandshakeError::BadMagic {
                found: magic.to_vec(),
            });
        }
        let version = cursor.u32()?;
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            });
        }
        let role = match cursor.u8()? {
            0 => Role::Initiator,
            1 => Role::Acceptor,
            other => return Err(HandshakeError::Malformed(format!("unknown role {other}"))),
        };
        let address = match cursor.u8()? {
            4 => {
                let ip = Ipv4Addr::from(cursor.array::<4>()?);
                SocketAddr::V4(SocketAddrV4::new(ip, cursor.u16()?))
            }
            6 => {
                let ip = Ipv6Addr::from(cursor.array::<16>()?);
                let port = cursor.u16()?;
                let flowinfo = cursor.u32()?;
                let scope_id = cursor.u32()?;
                SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope_id))
            }
            other => {
                return Err(HandshakeError::Malformed(format!(
                    "unknown address family {other}"
                )))
            }
        };
        let incarnation = cursor.u64()?;
        let nonce = Nonce(cursor.array::<NONCE_BYTES>()?);
        let hash = cursor.text("build hash")?;
        let build_version = cursor.text("build version")?;
        let protocol = match cursor.u8()? {
            0 => None,
            1 => Some(cursor.u32()?),
            other => {
                return Err(HandshakeError::Malformed(format!(
                    "unknown build protocol flag {other}"
                )))
            }
        };
        cursor.finish()?;
        Ok(Hello {
            version,
            role,
            node: NodeId {
                address,
                incarnation,
            },
            nonce,
            build: BuildId {
                hash,
                version: build_version,
                protocol,
            },
        })
    }
}

/// Appends `text` as a length (u8) and its wire form (see [`wire_text`]).
fn put_text(out: &mut Vec<u8>, text: &str) {
    let text = wire_text(text);
    // At most BUILD_TEXT_BYTES_MAX (64): the length fits in a byte.
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

/// A build text as a hello carries it: itself, or its SHA-256 in hex when it is longer
/// than [`BUILD_TEXT_BYTES_MAX`], so that a hello always fits the handshake's limit and
/// two equal texts still compare equal.
fn wire_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= BUILD_TEXT_BYTES_MAX {
        return text.into();
    }
    let digest = Sha256::digest(text.as_bytes());
    digest
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<String>()
        .into()
}

/// `build` as a peer decodes it from a hello: what comparisons between nodes use.
pub(super) fn wire_build(build: &BuildId) -> BuildId {
    BuildId {
        hash: wire_text(&build.hash).into_owned(),
        version: wire_text(&build.version).into_owned(),
        protocol: build.protocol,
    }
}

/// What a [`Proof`] proves, and so what its sender says.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ProofKind {
    /// The initiator holds the cookie.
    Initiator,
    /// The acceptor holds the cookie and takes this connection.
    Accept,
    /// The acceptor holds the cookie and is dialing the initiator: use that connection.
    Decline,
    /// The acceptor holds the cookie and already has a connection with the initiator.
    Alive,
    /// The initiator, after [`ProofKind::Alive`], has no other connection: replace it.
    Replace,
}

impl ProofKind {
    pub(super) fn tag(self) -> u8 {
        match self {
            ProofKind::Initiator => 1,
            ProofKind::Accept => 2,
            ProofKind::Decline => 3,
            ProofKind::Alive => 4,
            ProofKind::Replace => 5,
        }
    }

    fn from_tag(tag: u8) -> Option<ProofKind> {
        Some(match tag {
            1 => ProofKind::Initiator,
            2 => ProofKind::Accept,
            3 => ProofKind::Decline,
            4 => ProofKind::Alive,
            5 => ProofKind::Replace,
            _ => return None,
        })
    }
}

/// Every handshake message after the hellos: a kind and its MAC.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Proof {
    /// What the sender says.
    pub kind: ProofKind,
    /// HMAC-SHA256 over the domain, the kind and both hellos.
    pub mac: [u8; MAC_BYTES],
}

impl Proof {
    /// The proof's bytes: the kind's tag, then the MAC.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + MAC_BYTES);
        out.push(self.kind.tag());
        out.extend_from_slice(&self.mac);
        out
    }

    /// Parses a proof; it must be exactly a known tag and a MAC.
    pub fn decode(bytes: &[u8]) -> Result<Proof, HandshakeError> {
        let mut cursor = Cursor { bytes };
        let tag = cursor.u8()?;
        let kind = ProofKind::from_tag(tag)
            .ok_or_else(|| HandshakeError::Malformed(format!("unknown proof kind {tag}")))?;
        let mac = cursor.array::<MAC_BYTES>()?;
        cursor.finish()?;
        Ok(Proof { kind, mac })
    }
}

/// Reads a fixed layout; every read is bounds-checked and fails as `Malformed`.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], HandshakeError> {
        if self.bytes.len() < count {
            return Err(HandshakeError::Malformed(format!(
                "truncated: {count} more bytes expected, {} left",
                self.bytes.len()
            )));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HandshakeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, HandshakeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, HandshakeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, HandshakeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, HandshakeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A length-prefixed UTF-8 text of at most [`BUILD_TEXT_BYTES_MAX`] bytes.
    fn text(&mut self, what: &str) -> Result<String, HandshakeError> {
        let length = usize::from(self.u8()?);
        if length > BUILD_TEXT_BYTES_MAX {
            return Err(HandshakeError::Malformed(format!(
                "{what} of {length} bytes, over {BUILD_TEXT_BYTES_MAX}"
            )));
        }
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| HandshakeError::Malformed(format!("{what} is not UTF-8")))
    }

    fn finish(&self) -> Result<(), HandshakeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(HandshakeError::Malformed(format!(
                "{} trailing bytes",
                self.bytes.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::handshake::HANDSHAKE_BYTES_MAX;

    #[test]
    fn ipv6_node_ids_round_trip() {
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Initiator,
            node: NodeId {
                address: "[fe80::1%3]:9000".parse().unwrap(),
                incarnation: u64::MAX,
            },
            nonce: Nonce([0xab; 32]),
            build: BuildId::named("a1b2").with_protocol(u32::MAX),
        };
        let bytes = hello.encode();
        assert!(bytes.len() <= HANDSHAKE_BYTES_MAX);
        assert_eq!(Hello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn the_longest_hello_fits_and_a_long_build_name_travels_hashed() {
        let long = "x".repeat(1000);
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Acceptor,
            node: NodeId {
                address: "[fe80::1%3]:9000".parse().unwrap(),
                incarnation: 1,
            },
            nonce: Nonce([1; 32]),
            build: BuildId {
                hash: long.clone(),
                version: long,
                protocol: Some(1),
            },
        };
        let bytes = hello.encode();
        assert!(bytes.len() <= HANDSHAKE_BYTES_MAX, "{} bytes", bytes.len());
        let decoded = Hello::decode(&bytes).unwrap();
        assert_eq!(decoded.build.hash.len(), BUILD_TEXT_BYTES_MAX);
        assert_eq!(decoded.build.hash, decoded.build.version);
    }
}
