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
//! I -> A   Hello { magic, version, role: initiator, node id of I, nonce nI }
//! A -> I   Hello { magic, version, role: acceptor,  node id of A, nonce nA }
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
//! ([`HandshakeError::VersionMismatch`]); a proof that does not verify is
//! [`HandshakeError::WrongCookie`], and nothing the peer sent is acted on. Future
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
//! bytes). A proof is a kind (u8: 1 initiator, 2 accept, 3 decline, 4 alive, 5 replace)
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

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::frame::WireError;
use crate::process::id::NodeId;

/// The first eight bytes of every hello.
pub const MAGIC: [u8; 8] = *b"HYPERION";

/// The version of the node-to-node protocol (handshake and frames) this build speaks.
/// Nodes of different versions refuse each other. (2: a node id in a frame keeps an IPv6
/// address's flow info and scope id, as the hello does.)
pub const PROTOCOL_VERSION: u32 = 2;

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

/// Why a cookie could not be had.
#[derive(Debug)]
pub enum CookieError {
    /// A cookie must have at least one byte (after trimming trailing white space).
    Empty,
    /// A cookie longer than [`COOKIE_BYTES_MAX`].
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// Neither a cookie nor a cookie file was configured, and `$HOME` is not set, so there
    /// is no default place for one.
    NoHome,
    /// The cookie file is accessible to others than its owner: anyone who can read it
    /// can join the cluster. Refused; the text says which `chmod` fixes it.
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading, creating or writing the cookie file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CookieError::Empty => write!(f, "the cookie is empty"),
            CookieError::TooLong { bytes } => write!(
                f,
                "the cookie has {bytes} bytes, more than the limit of {COOKIE_BYTES_MAX}"
            ),
            CookieError::NoHome => write!(
                f,
                "no cookie configured and $HOME is not set: configure a cookie or a cookie file"
            ),
            CookieError::NotPrivate { path, mode } => write!(
                f,
                "cookie file {path} is accessible to group or others (mode {mode:03o}), so \
                 anyone who can read it can join the cluster; run `chmod 600 {path}`",
                path = path.display()
            ),
            CookieError::Io { path, source } => {
                write!(f, "cookie file {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for CookieError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CookieError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<CookieError> for io::Error {
    fn from(err: CookieError) -> Self {
        let kind = match &err {
            CookieError::Io { source, .. } => source.kind(),
            CookieError::NotPrivate { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}

/// The shared secret of a cluster: only nodes holding the same cookie connect.
///
/// Its `Debug` output does not show the secret.
///
/// ```
/// use hyperion::wire::handshake::Cookie;
/// let cookie = Cookie::new("correct horse battery staple").unwrap();
/// assert_eq!(format!("{cookie:?}"), "Cookie(<28 bytes>)");
/// assert!(Cookie::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cookie(Vec<u8>);

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie(<{} bytes>)", self.0.len())
    }
}

impl Cookie {
    /// A cookie with these bytes (1 to [`COOKIE_BYTES_MAX`] of them).
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Cookie, CookieError> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            return Err(CookieError::Empty);
        }
        if bytes.len() > COOKIE_BYTES_MAX {
            return Err(CookieError::TooLong { bytes: bytes.len() });
        }
        Ok(Cookie(bytes.to_vec()))
    }

    /// A new random cookie: [`COOKIE_RANDOM_BYTES`] bytes from the operating system's
    /// random source, as lowercase hex digits (so it can be pasted into a file).
    pub fn generate() -> io::Result<Cookie> {
        let mut random = [0u8; COOKIE_RANDOM_BYTES];
        fill_random(&mut random)?;
        let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(Cookie(hex.into_bytes()))
    }

    /// The cookie stored in `path`: the file's bytes without trailing white space.
    ///
    /// A file that others than its owner may access (any group or other permission bit)
    /// is refused with [`CookieError::NotPrivate`], which names the `chmod` to run.
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    /// use hyperion::wire::handshake::Cookie;
    /// let path = std::env::temp_dir().join(format!("hyperion-doc-cookie-{}", std::process::id()));
    /// std::fs::write(&path, "sesame\n").unwrap();
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    /// let refused = Cookie::from_file(&path).unwrap_err().to_string();
    /// assert!(refused.contains(&format!("chmod 600 {}", path.display())), "{refused}");
    /// std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    /// assert_eq!(Cookie::from_file(&path).unwrap(), Cookie::new("sesame").unwrap());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Cookie, CookieError> {
        let path = path.as_ref();
        let io_error = |source| CookieError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_error)?;
        refuse_if_not_private(path, &file)?;
        // Room for the longest cookie plus a line ending; a file that fills it all is too
        // long, and is not read to its end.
        let read_max = COOKIE_BYTES_MAX + 2;
        let mut bytes = Vec::new();
        file.take(read_max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        if bytes.len() > read_max {
            return Err(CookieError::TooLong { bytes: bytes.len() });
        }
        Cookie::new(bytes.trim_ascii_end())
    }

    /// The cookie in `path`; if there is no such file, a new random cookie stored there
    /// (owner-only permissions, `0600`, in a directory created `0700` if missing), and
    /// the path logged, so that a node is never open by default.
    ///
    /// Nodes starting at once agree, and none reads a half-written file: each writes its
    /// cookie to a temporary file in the same directory and links it into place, which
    /// succeeds for one of them only (a link never replaces a file); the others read the
    /// winner's cookie, complete.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Cookie, CookieError> {
        let path = path.as_ref();
        match Cookie::from_file(path) {
            Err(CookieError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let io_error = |source| CookieError::Io {
            path: path.to_path_buf(),
            source,
        };
        let cookie = Cookie::generate().map_err(io_error)?;
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            create_private_dir(parent).map_err(io_error)?;
        }
        let temporary = write_temporary(path, &cookie).map_err(io_error)?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated a new cluster cookie");
                Ok(cookie)
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Cookie::from_file(path),
            Err(err) => Err(io_error(err)),
        }
    }

    /// Where a node keeps its cookie unless told otherwise: `$HOME/.hyperion/cookie`.
    pub fn default_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
        Some(PathBuf::from(home).join(".hyperion").join("cookie"))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// Writes `cookie` (and a line ending) to a new owner-only file beside `path`, synced,
/// and returns the file's path. Its name is unique to this process and call.
fn write_temporary(path: &Path, cookie: &Cookie) -> io::Result<PathBuf> {
    let mut random = [0u8; 8];
    fill_random(&mut random)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cookie".into());
    let suffix: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    let temporary = path.with_file_name(format!(".{name}.{}.{suffix}.tmp", std::process::id()));
    let mut file = create_private_file(&temporary)?;
    let written = file
        .write_all(&cookie.0)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all());
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(err);
    }
    Ok(temporary)
}

#[cfg(unix)]
fn refuse_if_not_private(path: &Path, file: &std::fs::File) -> Result<(), CookieError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = file.metadata().map_err(|source| CookieError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CookieError::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_not_private(_path: &Path, _file: &std::fs::File) -> Result<(), CookieError> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Fills `bytes` from the operating system's random source. Production code only: the
/// simulator never reaches a handshake.
pub(crate) fn fill_random(bytes: &mut [u8]) -> io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(bytes)
}

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
}

impl Hello {
    /// The hello's bytes (see the module doc for the layout).
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
        cursor.finish()?;
        Ok(Hello {
            version,
            role,
            node: NodeId {
                address,
                incarnation,
            },
            nonce,
        })
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
    fn tag(self) -> u8 {
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
        let hello = Hello {
            version: PROTOCOL_VERSION,
            role,
            node: local,
            nonce,
        }
        .encode();
        Handshake {
            role,
            local,
            cookie,
            nonce,
            hello,
            peer_hello: None,
            stage: Stage::AwaitHello,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(port: u16, incarnation: u64) -> NodeId {
        NodeId {
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            incarnation,
        }
    }

    fn pair(initiator_cookie: &str, acceptor_cookie: &str) -> (Handshake, Handshake) {
        (
            Handshake::initiate(
                id(1000, 1),
                Cookie::new(initiator_cookie).unwrap(),
                Nonce([0x11; 32]),
            ),
            Handshake::accept(
                id(2000, 2),
                Cookie::new(acceptor_cookie).unwrap(),
                Nonce([0x22; 32]),
            ),
        )
    }

    /// Runs hellos and the initiator's proof; returns the acceptor's answer to the proof.
    fn up_to_proof(i: &mut Handshake, a: &mut Handshake) -> Result<Step, HandshakeError> {
        let i_hello = i.hello().to_vec();
        let a_hello = a.hello().to_vec();
        assert!(matches!(
            a.receive(&i_hello),
            Ok(Step::Hello { reply: None, .. })
        ));
        let Ok(Step::Hello {
            peer,
            reply: Some(proof),
        }) = i.receive(&a_hello)
        else {
            panic!("the initiator accepts the acceptor's hello");
        };
        assert_eq!(peer, id(2000, 2));
        a.receive(&proof)
    }

    #[test]
    fn the_right_cookie_completes_with_each_verdict() {
        for verdict in [Verdict::Accept, Verdict::Decline, Verdict::Alive] {
            let (mut i, mut a) = pair("sesame", "sesame");
            assert_eq!(
                up_to_proof(&mut i, &mut a),
                Ok(Step::Proven { peer: id(1000, 1) })
            );
            let message = a.decide(verdict).unwrap();
            assert_eq!(
                i.receive(&message),
                Ok(Step::Verdict {
                    peer: id(2000, 2),
                    verdict
                })
            );
            if verdict == Verdict::Alive {
                let replace = i.replace().unwrap();
                assert_eq!(a.receive(&replace), Ok(Step::Replace { peer: id(1000, 1) }));
            }
            assert!(i.is_done() && a.is_done());
        }
    }

    #[test]
    fn the_acceptor_refuses_an_initiator_with_the_wrong_cookie() {
        let (mut i, mut a) = pair("guess", "sesame");
        assert_eq!(
            up_to_proof(&mut i, &mut a),
            Err(HandshakeError::WrongCookie {
                claimed: id(1000, 1)
            })
        );
        // Nothing more is accepted from it, and it gets no verdict.
        assert!(a.decide(Verdict::Accept).is_err());
    }

    #[test]
    fn the_initiator_refuses_a_verdict_made_with_the_wrong_cookie() {
        // A forged acceptor: it skips checking the proof and answers with its own cookie.
        let (mut i, _) = pair("sesame", "sesame");
        let mut forged =
            Handshake::accept(id(2000, 2), Cookie::new("guess").unwrap(), Nonce([3; 32]));
        forged.receive(i.hello()).unwrap();
        let Ok(Step::Hello {
            reply: Some(proof), ..
        }) = i.receive(forged.hello())
        else {
            panic!()
        };
        assert!(matches!(
            forged.receive(&proof),
            Err(HandshakeError::WrongCookie { .. })
        ));
        let fake_verdict = Proof {
            kind: ProofKind::Accept,
            mac: [0; MAC_BYTES],
        }
        .encode();
        assert_eq!(
            i.receive(&fake_verdict),
            Err(HandshakeError::WrongCookie {
                claimed: id(2000, 2)
            })
        );
    }

    #[test]
    fn a_version_mismatch_names_both_versions() {
        let (mut i, _) = pair("sesame", "sesame");
        let hello = Hello {
            version: 7,
            role: Role::Acceptor,
            node: id(2000, 2),
            nonce: Nonce([5; 32]),
        };
        let err = i.receive(&hello.encode()).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: 7
            }
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("version {PROTOCOL_VERSION}")) && text.contains("version 7"),
            "{text}"
        );
    }

    #[test]
    fn a_future_version_with_another_layout_is_still_named() {
        let mut bytes = MAGIC.to_vec();
        let future = PROTOCOL_VERSION + 1;
        bytes.extend_from_slice(&future.to_be_bytes());
        bytes.extend_from_slice(b"whatever the next version says next");
        assert_eq!(
            Hello::decode(&bytes),
            Err(HandshakeError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: future
            })
        );
    }

    #[test]
    fn wrong_magic_and_garbage_are_refused() {
        let (mut i, mut a) = pair("sesame", "sesame");
        assert!(matches!(
            a.receive(b"GET / HTTP/1.1\r\n"),
            Err(HandshakeError::BadMagic { .. })
        ));
        assert!(matches!(
            i.receive(b""),
            Err(HandshakeError::BadMagic { .. })
        ));
        let mut truncated = i.hello().to_vec();
        truncated.pop();
        assert!(matches!(
            Hello::decode(&truncated),
            Err(HandshakeError::Malformed(_))
        ));
        let mut trailing = a.hello().to_vec();
        trailing.push(0);
        assert!(matches!(
            Hello::decode(&trailing),
            Err(HandshakeError::Malformed(_))
        ));
    }

    #[test]
    fn a_reflected_hello_is_refused() {
        let (mut i, mut a) = pair("sesame", "sesame");
        // The acceptor's own hello sent back to it: same role, same id, same nonce.
        let own = a.hello().to_vec();
        assert!(matches!(a.receive(&own), Err(HandshakeError::Reflected(_))));
        // An initiator hello claiming the receiver's id.
        let claiming_self = Hello {
            version: PROTOCOL_VERSION,
            role: Role::Acceptor,
            node: id(1000, 1),
            nonce: Nonce([9; 32]),
        };
        assert!(matches!(
            i.receive(&claiming_self.encode()),
            Err(HandshakeError::Reflected(_))
        ));
    }

    #[test]
    fn a_proof_recorded_on_one_connection_is_refused_on_another() {
        let (mut i, mut a) = pair("sesame", "sesame");
        a.receive(i.hello()).unwrap();
        let Ok(Step::Hello {
            reply: Some(recorded),
            ..
        }) = i.receive(a.hello())
        else {
            panic!("the initiator accepts the acceptor's hello");
        };
        // An eavesdropper replays the initiator's hello and proof to a new connection,
        // where the acceptor chose a fresh nonce.
        let mut a2 = Handshake::accept(
            id(2000, 2),
            Cookie::new("sesame").unwrap(),
            Nonce([0x33; 32]),
        );
        a2.receive(i.hello()).unwrap();
        assert_eq!(
            a2.receive(&recorded),
            Err(HandshakeError::WrongCookie {
                claimed: id(1000, 1)
            })
        );
    }

    #[test]
    fn an_acceptor_verdict_is_not_a_valid_initiator_proof() {
        // Reflection across roles: a MAC the acceptor made cannot pass as the initiator's.
        let (mut i, mut a) = pair("sesame", "sesame");
        up_to_proof(&mut i, &mut a).unwrap();
        let verdict = Proof::decode(&a.decide(Verdict::Accept).unwrap()).unwrap();
        let relabelled = Proof {
            kind: ProofKind::Initiator,
            mac: verdict.mac,
        };
        let (mut i2, mut a2) = pair("sesame", "sesame");
        a2.receive(i2.hello()).unwrap();
        i2.receive(a2.hello()).unwrap();
        assert!(matches!(
            a2.receive(&relabelled.encode()),
            Err(HandshakeError::WrongCookie { .. })
        ));
    }

    #[test]
    fn messages_out_of_order_are_refused() {
        let (mut i, mut a) = pair("sesame", "sesame");
        let proof = Proof {
            kind: ProofKind::Initiator,
            mac: [0; MAC_BYTES],
        };
        // A proof where a hello is expected does not parse as a hello.
        assert!(a.receive(&proof.encode()).is_err());
        assert!(i.replace().is_err());
        let (mut i, mut a) = pair("sesame", "sesame");
        a.receive(i.hello()).unwrap();
        i.receive(a.hello()).unwrap();
        let second_hello = i.hello().to_vec();
        assert!(matches!(
            a.receive(&second_hello),
            Err(HandshakeError::Malformed(_))
        ));
    }

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
        };
        let bytes = hello.encode();
        assert!(bytes.len() <= HANDSHAKE_BYTES_MAX);
        assert_eq!(Hello::decode(&bytes), Ok(hello));
    }

    #[test]
    fn every_truncation_of_every_message_is_a_typed_error() {
        let (mut i, mut a) = pair("sesame", "sesame");
        let hello = i.hello().to_vec();
        for cut in 0..hello.len() {
            assert!(Hello::decode(&hello[..cut]).is_err());
        }
        let proof = {
            a.receive(&hello).unwrap();
            match i.receive(a.hello()) {
                Ok(Step::Hello {
                    reply: Some(proof), ..
                }) => proof,
                other => panic!("{other:?}"),
            }
        };
        for cut in 0..proof.len() {
            assert!(Proof::decode(&proof[..cut]).is_err());
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hyperion-cookie-test-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_missing_cookie_file_is_generated_private_and_then_reused() {
        let dir = temp_dir("generate");
        let path = dir.join("sub").join("cookie");
        let first = Cookie::load_or_generate(&path).unwrap();
        assert_eq!(first.0.len(), 2 * COOKIE_RANDOM_BYTES);
        assert_eq!(Cookie::load_or_generate(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
        let other = Cookie::load_or_generate(dir.join("other")).unwrap();
        assert_ne!(other, first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes a cookie file with owner-only permissions.
    fn write_private(path: &Path, bytes: impl AsRef<[u8]>) {
        std::fs::write(path, bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn empty_and_oversized_cookie_files_are_refused() {
        let dir = temp_dir("refuse");
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        write_private(&empty, " \n");
        assert!(matches!(Cookie::from_file(&empty), Err(CookieError::Empty)));
        let huge = dir.join("huge");
        write_private(&huge, vec![b'x'; COOKIE_BYTES_MAX + 1]);
        assert!(matches!(
            Cookie::from_file(&huge),
            Err(CookieError::TooLong { .. })
        ));
        let at_limit = dir.join("at-limit");
        write_private(&at_limit, vec![b'x'; COOKIE_BYTES_MAX]);
        assert!(Cookie::from_file(&at_limit).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_cookie_file_readable_by_group_or_others_is_refused_with_the_chmod_to_run() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("not-private");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cookie");
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::write(&path, "sesame\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            for outcome in [Cookie::from_file(&path), Cookie::load_or_generate(&path)] {
                let err = outcome.unwrap_err();
                assert!(
                    matches!(&err, CookieError::NotPrivate { mode: m, .. } if *m == mode),
                    "{err:?}"
                );
                let text = err.to_string();
                assert!(
                    text.contains(&format!("chmod 600 {}", path.display())),
                    "{text}"
                );
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Cookie::from_file(&path).unwrap(),
            Cookie::new("sesame").unwrap()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn eight_threads_creating_one_cookie_at_once_all_read_the_same_secret() {
        let dir = temp_dir("race");
        for round in 0..50 {
            let path = dir.join(format!("round-{round}")).join("cookie");
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    let create = move || {
                        start.wait();
                        Cookie::load_or_generate(&path).map_err(|err| err.to_string())
                    };
                    std::thread::spawn(create) // real-world only: the cookie file on disk
                })
                .collect();
            let cookies: Vec<_> = threads
                .into_iter()
                .map(|thread| thread.join().unwrap())
                .collect();
            let first = cookies[0]
                .clone()
                .unwrap_or_else(|err| panic!("round {round}: {err}"));
            for cookie in &cookies {
                assert_eq!(cookie.as_ref(), Ok(&first), "round {round}");
            }
            assert_eq!(Cookie::from_file(&path).unwrap(), first, "round {round}");
            // No temporary file is left beside it.
            let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert_eq!(left, [std::ffi::OsString::from("cookie")], "round {round}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
