//! The connection handshake: who is at the other end, and do they hold the cookie.
//!
//! Like Erlang distribution, nodes of one cluster share a secret *cookie*; unlike it, the
//! cookie never crosses the wire, not even hashed: each side proves knowledge of it
//! with an HMAC-SHA256 over a transcript that contains a fresh random nonce chosen by the
//! *other* side. The module is sans-I/O: [`Handshake`] consumes message bodies and
//! produces message bodies; the transport frames them (see [`super::framing`]) like
//! every other frame, with bodies limited to [`HANDSHAKE_BYTES_MAX`].
//!
//! # The exchange
//!
//! The node that opened the TCP connection is the *initiator* `I`, the one that accepted
//! it the *acceptor* `A`.
//!
//! ```text
//! I -> A   Hello { magic, version, role: initiator, node id of I, nonce nI, build of I }
//! A -> I   Hello { magic, version, role: acceptor,  node id of A, nonce nA, build of A }
//!          (both hellos are sent at once, without waiting for the other)
//! I -> A   Proof(Initiator)          I proves first, only to the node it chose to dial
//! A -> I   Proof(Accept | Decline | Alive)   the acceptor's verdict, proving A
//! I -> A   Proof(Replace)            only after Alive, if I wants the new connection
//! ```
//!
//! Every `Proof(kind)` is `kind` (one byte) and
//! `HMAC-SHA256(cookie, DOMAIN ‖ kind ‖ len ‖ hello_I ‖ len ‖ hello_A)`, where `hello_I`
//! and `hello_A` are the exact bytes of the two hellos (so the MAC covers both node
//! ids, both nonces, both versions and both roles). It is checked in constant time.
//!
//! Why this resists the classic attacks:
//! - **Replay**: a proof covers the verifier's fresh 32-byte nonce; a proof recorded on
//!   one connection is worthless on any other.
//! - **Reflection** (sending a node its own challenge on a second connection so that it
//!   computes the answer): the kind byte differs by role (an initiator's `Initiator` and
//!   `Replace`, an acceptor's verdicts), the transcript orders the hellos by role, and a
//!   hello that claims the receiver's own role, node id or nonce is refused.
//! - **Offline guessing**: the acceptor reveals a MAC only after the initiator proved it
//!   holds the cookie, so a scanner that connects to a listening node learns nothing it
//!   could test cookie guesses against. (An initiator reveals its MAC to the node it
//!   dialed; generated cookies are 256 random bits anyway.)
//! - **Downgrade or tampering**: the MAC covers both hellos byte for byte.
//!
//! A hello with the wrong magic is refused ([`HandshakeError::BadMagic`]); one with
//! another protocol version is refused with an error naming both versions
//! ([`HandshakeError::VersionMismatch`]); one of a build that is not
//! [compatible](crate::BuildId::compatible) with this node's is refused by both sides
//! with an error naming both builds and what to do ([`HandshakeError::BuildMismatch`]);
//! a proof that does not verify is [`HandshakeError::WrongCookie`], and nothing the
//! peer sent is acted on. Future
//! versions must keep the hello's first twelve bytes (magic, then version) so that the
//! mismatch can still be named.
//!
//! # The acceptor's verdict
//!
//! After the initiator's proof, the acceptor knows (authentically) who connects, and
//! decides with its connection table, so that one pair of nodes ends up with one
//! connection (see the TCP transport):
//! - [`Verdict::Accept`]: this connection is the pair's connection;
//! - [`Verdict::Decline`]: the acceptor is dialing the initiator at the same moment, and
//!   the rule for simultaneous connections keeps the acceptor's own; the initiator waits
//!   for it;
//! - [`Verdict::Alive`]: the acceptor already has a connection with the initiator. The
//!   initiator answers [`Handshake::replace`] if it has none (it lost the old one, which
//!   the acceptor then drops as lost), or closes the connection if it has one (this
//!   connection was a stale simultaneous attempt).
//!
//! # Layout
//!
//! Integers are big-endian. A hello is: magic (8 bytes, [`MAGIC`]), version (u32), role
//! (u8: 0 initiator, 1 acceptor), node address (u8 family 4 or 6; the IP, 4 or 16 bytes;
//! port u16; for IPv6 also flow info u32 and scope id u32), incarnation (u64), nonce (32
//! bytes), build hash and build version (each a u8 length, at most
//! [`BUILD_TEXT_BYTES_MAX`], then UTF-8), build protocol (u8: 0 none, 1 then a u32).
//! A proof is a kind (u8: 1 initiator, 2 accept, 3 decline, 4 alive, 5 replace)
//! and the MAC (32 bytes). Nothing may follow.
//!
//! ```
//! use hyperion::wire::handshake::{Cookie, Handshake, Nonce, Step, Verdict};
//! use hyperion::NodeId;
//!
//! let cookie = Cookie::new("sesame").unwrap();
//! let i_id = NodeId { address: "127.0.0.1:4000".parse().unwrap(), incarnation: 1 };
//! let a_id = NodeId { address: "127.0.0.1:5000".parse().unwrap(), incarnation: 2 };
//! let mut i = Handshake::initiate(i_id, cookie.clone(), Nonce([1; 32]));
//! let mut a = Handshake::accept(a_id, cookie, Nonce([2; 32]));
//!
//! assert!(matches!(a.receive(i.hello()), Ok(Step::Hello { reply: None, .. })));
//! let Ok(Step::Hello { reply: Some(proof), .. }) = i.receive(a.hello()) else { panic!() };
//! assert_eq!(a.receive(&proof), Ok(Step::Proven { peer: i_id }));
//! let verdict = a.decide(Verdict::Accept).unwrap();
//! assert_eq!(i.receive(&verdict), Ok(Step::Verdict { peer: a_id, verdict: Verdict::Accept }));
//! ```
//!
//! # Files
//!
//! - `cookie`: the cluster's shared secret and the private file that keeps it;
//! - `hello`: the byte layout of the two message kinds (hello, proof);
//! - this module: the state machine that orders them and checks the proofs.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::frame::WireError;
use crate::build_id::BuildId;
use crate::types::id::NodeId;

mod cookie;
mod hello;
#[cfg(test)]
mod tests;

pub(crate) use cookie::fill_random;
pub use cookie::{Cookie, CookieError};
pub use hello::{Hello, Nonce, Proof, ProofKind, Role};

/// The first eight bytes of every hello.
pub const MAGIC: [u8; 8] = *b"HYPERION";

/// The version of the node-to-node protocol (handshake and frames) this build speaks.
/// Nodes of different versions refuse each other. (2: a node id in a frame keeps an IPv6
/// address's flow info and scope id, as the hello does; 3: the hello carries the
/// program's build identity.)
pub const PROTOCOL_VERSION: u32 = 3;

/// Longest build hash or version a hello carries, in bytes; a longer one travels as its
/// SHA-256 in hex (64 bytes).
pub const BUILD_TEXT_BYTES_MAX: usize = 64;

/// Largest handshake message body, in bytes. A connection accepts nothing larger until
/// its handshake is done.
pub const HANDSHAKE_BYTES_MAX: usize = 256;

/// Bytes in a nonce.
pub const NONCE_BYTES: usize = 32;

/// Bytes in a MAC (HMAC-SHA256).
pub const MAC_BYTES: usize = 32;

/// Largest cookie, in bytes.
pub const COOKIE_BYTES_MAX: usize = 1024;

/// Bytes of randomness in a generated cookie (written as twice as many hex digits).
pub const COOKIE_RANDOM_BYTES: usize = 32;

/// Separates hyperion's MACs from any other use of the same key.
const DOMAIN: &[u8] = b"hyperion handshake v1\0";

type HmacSha256 = Hmac<Sha256>;

/// Why a handshake failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum HandshakeError {
    /// The peer's first message does not start with [`MAGIC`]: not a hyperion node.
    BadMagic {
        /// Up to the first eight bytes the peer sent.
        found: Vec<u8>,
    },
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// This node's version.
        ours: u32,
        /// The peer's version.
        theirs: u32,
    },
    /// The peer runs another build of the program, and the two builds do not declare
    /// one protocol version (see [`BuildId::compatible`]): their messages may encode
    /// differently.
    BuildMismatch {
        /// This node's build (boxed: the error stays small on every other path).
        ours: Box<BuildId>,
        /// The peer's build.
        theirs: Box<BuildId>,
        /// Who the peer claimed to be (not proven: the hello comes before the proofs).
        claimed: NodeId,
    },
    /// A handshake message that does not parse.
    Malformed(String),
    /// The peer's proof does not verify: it does not hold this node's cookie.
    WrongCookie {
        /// Who the peer claimed to be (not proven, since the proof failed).
        claimed: NodeId,
    },
    /// The peer's hello claims this node's own role, node id or nonce: a reflection of
    /// this node's messages, or a node connected to itself.
    Reflected(String),
    /// A message that is not the one expected at this step.
    OutOfOrder(String),
    /// The framing of a handshake message was refused (too long).
    Framing(WireError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BadMagic { found } => {
                write!(f, "not a hyperion node: bad magic {found:02x?}")
            }
            HandshakeError::VersionMismatch { ours, theirs } => write!(
                f,
                "protocol version mismatch: this node speaks version {ours}, \
                 the peer speaks version {theirs}"
            ),
            HandshakeError::BuildMismatch {
                ours,
                theirs,
                claimed,
            } => write!(
                f,
                "the node {claimed} runs another build of the program: rebuild so that \
                 both run one build, or declare the builds compatible with one protocol \
                 version (BuildId::with_protocol) (this node: {ours}; the peer: {theirs})"
            ),
            HandshakeError::Malformed(why) => write!(f, "malformed handshake message: {why}"),
            HandshakeError::WrongCookie { claimed } => write!(
                f,
                "peer claiming to be {claimed} failed to prove the cookie (wrong cookie)"
            ),
            HandshakeError::Reflected(why) => write!(f, "handshake refused: {why}"),
            HandshakeError::OutOfOrder(why) => write!(f, "handshake out of order: {why}"),
            HandshakeError::Framing(err) => write!(f, "handshake framing: {err}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<WireError> for HandshakeError {
    fn from(err: WireError) -> Self {
        HandshakeError::Framing(err)
    }
}

/// The acceptor's decision about a connection whose initiator proved itself.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Use this connection.
    Accept,
    /// Simultaneous connection: the acceptor's own dial to the initiator is kept.
    Decline,
    /// The acceptor already has a connection with the initiator; the initiator says
    /// whether to replace it ([`Handshake::replace`]) or closes this one.
    Alive,
}

/// What a handshake step yields.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// The peer's hello is acceptable. `peer` is claimed, not yet proven. The initiator
    /// sends `reply` (its proof) once it is content with `peer`; the acceptor has nothing
    /// to send and waits for the proof.
    Hello {
        /// Who the peer says it is.
        peer: NodeId,
        /// The message to send next, if any.
        reply: Option<Vec<u8>>,
    },
    /// Acceptor: the initiator proved it holds the cookie; answer with
    /// [`Handshake::decide`].
    Proven {
        /// The initiator, authenticated.
        peer: NodeId,
    },
    /// Initiator: the acceptor proved itself and decided. After
    /// [`Verdict::Alive`], answer with [`Handshake::replace`] or close.
    Verdict {
        /// The acceptor, authenticated.
        peer: NodeId,
        /// Its decision.
        verdict: Verdict,
    },
    /// Acceptor: after [`Verdict::Alive`], the initiator asked for this connection to
    /// replace the one the acceptor has.
    Replace {
        /// The initiator.
        peer: NodeId,
    },
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Stage {
    AwaitHello,
    AwaitProof,
    Decide,
    AwaitVerdict,
    Alive,
    AwaitReplace,
    Done,
    Failed,
}

/// One side of one connection's handshake (see the module doc for the exchange).
///
/// Feed it the peer's handshake message bodies in order with
/// [`receive`](Handshake::receive); send what it returns. Any error is final.
pub struct Handshake {
    role: Role,
    local: NodeId,
    cookie: Cookie,
    nonce: Nonce,
    /// This side's build as the peer sees it (its wire form).
    build: BuildId,
    hello: Vec<u8>,
    peer_hello: Option<(Hello, Vec<u8>)>,
    stage: Stage,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("local", &self.local)
            .field("peer", &self.peer())
            .field("stage", &self.stage)
            .finish()
    }
}

impl Handshake {
    /// The handshake of the side that opened the connection.
    pub fn initiate(local: NodeId, cookie: Cookie, nonce: Nonce) -> Handshake {
        Handshake::new(Role::Initiator, local, cookie, nonce)
    }

    /// The handshake of the side that accepted the connection.
    pub fn accept(local: NodeId, cookie: Cookie, nonce: Nonce) -> Handshake {
        Handshake::new(Role::Acceptor, local, cookie, nonce)
    }

    fn new(role: Role, local: NodeId, cookie: Cookie, nonce: Nonce) -> Handshake {
        let mut handshake = Handshake {
            role,
            local,
            cookie,
            nonce,
            build: BuildId::fixed(),
            hello: Vec::new(),
            peer_hello: None,
            stage: Stage::AwaitHello,
        };
        handshake.encode_hello();
        handshake
    }

    /// This side runs `build` (default [`BuildId::fixed`]): a peer whose build is not
    /// [compatible](BuildId::compatible) is refused with
    /// [`HandshakeError::BuildMismatch`]. Set before the hello is sent.
    ///
    /// ```
    /// use hyperion::wire::handshake::{Cookie, Handshake, HandshakeError, Nonce};
    /// use hyperion::{BuildId, NodeId};
    ///
    /// let cookie = Cookie::new("sesame").unwrap();
    /// let i_id = NodeId { address: "127.0.0.1:4000".parse().unwrap(), incarnation: 1 };
    /// let a_id = NodeId { address: "127.0.0.1:5000".parse().unwrap(), incarnation: 2 };
    /// let mut i = Handshake::initiate(i_id, cookie.clone(), Nonce([1; 32]))
    ///     .with_build(BuildId::named("aaaa"));
    /// let a = Handshake::accept(a_id, cookie, Nonce([2; 32])).with_build(BuildId::named("bbbb"));
    /// let refused = i.receive(a.hello()).unwrap_err();
    /// assert!(matches!(refused, HandshakeError::BuildMismatch { .. }));
    /// assert!(refused.to_string().contains("runs another build of the program"));
    /// ```
    pub fn with_build(mut self, build: BuildId) -> Handshake {
        self.build = hello::wire_build(&build);
        self.encode_hello();
        self
    }

    fn encode_hello(&mut self) {
        self.hello = Hello {
            version: PROTOCOL_VERSION,
            role: self.role,
            node: self.local,
            nonce: self.nonce,
            build: self.build.clone(),
        }
        .encode();
    }

    /// This side's hello: the first message to send, at once.
    pub fn hello(&self) -> &[u8] {
        &self.hello
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Who the peer claims to be, once its hello arrived (proven only once a
    /// [`Step::Proven`] or [`Step::Verdict`] was returned).
    pub fn peer(&self) -> Option<NodeId> {
        self.peer_hello.as_ref().map(|(hello, _)| hello.node)
    }

    /// Whether the exchange is over (a verdict sent or received, and the reply to
    /// `Alive` if there was one).
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Takes the peer's next handshake message body.
    pub fn receive(&mut self, body: &[u8]) -> Result<Step, HandshakeError> {
        let result = self.step(body);
        if result.is_err() {
            self.stage = Stage::Failed;
        }
        result
    }

    fn step(&mut self, body: &[u8]) -> Result<Step, HandshakeError> {
        match (self.stage, self.role) {
            (Stage::AwaitHello, _) => self.receive_hello(body),
            (Stage::AwaitProof, Role::Acceptor) => {
                let (peer, proof) = self.receive_proof(body, &[ProofKind::Initiator])?;
                debug_assert_eq!(proof, ProofKind::Initiator);
                self.stage = Stage::Decide;
                Ok(Step::Proven { peer })
            }
            (Stage::AwaitVerdict, Role::Initiator) => {
                let expected = [ProofKind::Accept, ProofKind::Decline, ProofKind::Alive];
                let (peer, kind) = self.receive_proof(body, &expected)?;
                let verdict = match kind {
                    ProofKind::Decline => Verdict::Decline,
                    ProofKind::Alive => Verdict::Alive,
                    _ => Verdict::Accept,
                };
                self.stage = if verdict == Verdict::Alive {
                    Stage::Alive
                } else {
                    Stage::Done
                };
                Ok(Step::Verdict { peer, verdict })
            }
            (Stage::AwaitReplace, Role::Acceptor) => {
                let (peer, _) = self.receive_proof(body, &[ProofKind::Replace])?;
                self.stage = Stage::Done;
                Ok(Step::Replace { peer })
            }
            (stage, role) => Err(HandshakeError::OutOfOrder(format!(
                "a message arrived while the {role:?} was at {stage:?}"
            ))),
        }
    }

    fn receive_hello(&mut self, body: &[u8]) -> Result<Step, HandshakeError> {
        let hello = Hello::decode(body)?;
        if hello.role == self.role {
            return Err(HandshakeError::Reflected(format!(
                "the peer claims to be the {:?} too",
                self.role
            )));
        }
        if hello.node == self.local {
            return Err(HandshakeError::Reflected(format!(
                "the peer claims this node's own id {}",
                self.local
            )));
        }
        if hello.nonce == self.nonce {
            return Err(HandshakeError::Reflected(
                "the peer sent this node's own nonce".into(),
            ));
        }
        // Refused before any proof: the builds decide whether the two may talk at all,
        // and both sides see the mismatch (each checks the other's hello).
        if !self.build.compatible(&hello.build) {
            return Err(HandshakeError::BuildMismatch {
                ours: Box::new(self.build.clone()),
                theirs: Box::new(hello.build),
                claimed: hello.node,
            });
        }
        let peer = hello.node;
        self.peer_hello = Some((hello, body.to_vec()));
        match self.role {
            Role::Initiator => {
                self.stage = Stage::AwaitVerdict;
                let reply = self.seal(ProofKind::Initiator)?.encode();
                Ok(Step::Hello {
                    peer,
                    reply: Some(reply),
                })
            }
            Role::Acceptor => {
                self.stage = Stage::AwaitProof;
                Ok(Step::Hello { peer, reply: None })
            }
        }
    }

    /// Parses and verifies a proof of one of the `expected` kinds.
    fn receive_proof(
        &self,
        body: &[u8],
        expected: &[ProofKind],
    ) -> Result<(NodeId, ProofKind), HandshakeError> {
        let proof = Proof::decode(body)?;
        if !expected.contains(&proof.kind) {
            return Err(HandshakeError::OutOfOrder(format!(
                "a {:?} proof where {expected:?} was expected",
                proof.kind
            )));
        }
        let claimed = self
            .peer()
            .ok_or_else(|| HandshakeError::OutOfOrder("a proof before the hello".into()))?;
        self.transcript_mac(proof.kind)?
            .verify_slice(&proof.mac)
            .map_err(|_| HandshakeError::WrongCookie { claimed })?;
        Ok((claimed, proof.kind))
    }

    /// Acceptor, after [`Step::Proven`]: the verdict message to send.
    pub fn decide(&mut self, verdict: Verdict) -> Result<Vec<u8>, HandshakeError> {
        if self.stage != Stage::Decide {
            return Err(HandshakeError::OutOfOrder(format!(
                "decide called at {:?}",
                self.stage
            )));
        }
        let kind = match verdict {
            Verdict::Accept => ProofKind::Accept,
            Verdict::Decline => ProofKind::Decline,
            Verdict::Alive => ProofKind::Alive,
        };
        let message = self.seal(kind)?.encode();
        self.stage = if verdict == Verdict::Alive {
            Stage::AwaitReplace
        } else {
            Stage::Done
        };
        Ok(message)
    }

    /// Initiator, after [`Verdict::Alive`]: the message asking the acceptor to replace
    /// its connection with this one.
    pub fn replace(&mut self) -> Result<Vec<u8>, HandshakeError> {
        if self.stage != Stage::Alive {
            return Err(HandshakeError::OutOfOrder(format!(
                "replace called at {:?}",
                self.stage
            )));
        }
        let message = self.seal(ProofKind::Replace)?.encode();
        self.stage = Stage::Done;
        Ok(message)
    }

    fn seal(&self, kind: ProofKind) -> Result<Proof, HandshakeError> {
        let mac = self.transcript_mac(kind)?.finalize().into_bytes();
        let mut bytes = [0u8; MAC_BYTES];
        bytes.copy_from_slice(&mac);
        Ok(Proof { kind, mac: bytes })
    }

    /// The MAC state over the domain, `kind` and both hellos, initiator's first.
    fn transcript_mac(&self, kind: ProofKind) -> Result<HmacSha256, HandshakeError> {
        let (_, peer_hello) = self
            .peer_hello
            .as_ref()
            .ok_or_else(|| HandshakeError::OutOfOrder("no hello from the peer yet".into()))?;
        let (initiator_hello, acceptor_hello) = match self.role {
            Role::Initiator => (&self.hello, peer_hello),
            Role::Acceptor => (peer_hello, &self.hello),
        };
        let mut mac = self.cookie.mac();
        mac.update(DOMAIN);
        mac.update(&[kind.tag()]);
        for hello in [initiator_hello, acceptor_hello] {
            // Hellos are at most HANDSHAKE_BYTES_MAX long: the length always fits.
            mac.update(&(hello.len() as u32).to_be_bytes());
            mac.update(hello);
        }
        Ok(mac)
    }
}
