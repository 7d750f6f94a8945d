//! How a TCP transport is set up: where it listens, the address it gives out, the cookie,
//! and its limits.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::build_id::BuildId;
use crate::wire::handshake::Cookie;
use crate::wire::FRAME_BYTES_MAX;

use super::advertise::AdvertiseAddress;

/// How long a TCP connect may take unless configured.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// How long a handshake may take, from the TCP connection being up to the verdict,
/// unless configured.
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// Bytes that may wait to be written on one connection (or for one peer whose
/// connection is not up yet) unless configured: 64 MiB, four maximal frames.
pub const QUEUED_BYTES_MAX_DEFAULT: usize = 4 * FRAME_BYTES_MAX;

/// The queue to one peer under which a producer that waits for room
/// ([`Process::wait_for_room`](crate::Process::wait_for_room)) goes on sending, unless
/// configured: 4 MiB, far enough below [`QUEUED_BYTES_MAX_DEFAULT`] that the largest
/// frame still fits after it, and small enough to stay in cache.
pub const QUEUED_BYTES_HIGH_WATER_DEFAULT: usize = 4 * 1024 * 1024;

/// How long an inbound connection may take to deliver its hello (the first handshake
/// message, sent at once by any real peer) unless configured: a connection that sends
/// nothing, or dribbles bytes, gives its slot back long before the handshake timeout.
pub const HELLO_TIMEOUT_DEFAULT: Duration = Duration::from_secs(1);

/// What one inbound connection in its handshake costs this node at most, in bytes: its
/// state, the handshake, and read and write buffers capped at a handshake message's
/// size (the kernel's socket buffers come on top).
pub const INBOUND_HANDSHAKE_BYTES: usize = 4 * 1024;

/// Inbound connections that may be in their handshake at once unless configured: the
/// slots are cheap, so their number is set by memory, 16 MiB worth of
/// [`INBOUND_HANDSHAKE_BYTES`] (4,096): a master takes thousands of workers connecting
/// at once. When every slot is taken, the oldest connection that has not sent its hello
/// yet gives its slot to the newcomer; if all have, the newcomer is closed.
pub const INBOUND_HANDSHAKES_MAX_DEFAULT: usize = 16 * 1024 * 1024 / INBOUND_HANDSHAKE_BYTES;

/// Inbound connections from one source (an IPv4 address, or an IPv6 /64 network) that
/// may be in their handshake at once unless configured: a quarter of the slots, so one
/// host cannot take them all, yet enough for a thousand workers started on the
/// master's own host. Over it, that source's oldest connection still in its handshake
/// is closed for the newcomer.
pub const INBOUND_HANDSHAKES_PER_SOURCE_MAX_DEFAULT: usize = INBOUND_HANDSHAKES_MAX_DEFAULT / 4;

/// The address a transport listens on by default: loopback, a port chosen by the system.
pub const BIND_ADDRESS_DEFAULT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    0,
));

/// Where the cookie comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieSource {
    /// This cookie.
    Value(Cookie),
    /// The cookie in this file, generated there (mode `0600`) if the file is missing.
    File(PathBuf),
    /// `$HOME/.hyperion/cookie`, generated there if missing (see
    /// [`Cookie::load_or_generate`]).
    DefaultFile,
}

/// The settings of a [`TcpTransport`](super::TcpTransport).
///
/// Every option has a default; the constructor takes the one thing most programs set,
/// the address to listen on.
///
/// ```
/// use std::time::Duration;
/// use hyperion::transport::tcp::{AdvertiseAddress, TcpConfig};
/// use hyperion::wire::Cookie;
///
/// let config = TcpConfig::bind("0.0.0.0:7000")
///     .advertise(AdvertiseAddress::Hostname)
///     .cookie(Cookie::new("cluster secret").unwrap())
///     .connect_timeout(Duration::from_secs(2));
/// # let _ = config;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TcpConfig {
    pub(crate) bind_address: Result<SocketAddr, String>,
    pub(crate) advertise: AdvertiseAddress,
    pub(crate) cookie: CookieSource,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) frame_bytes_max: usize,
    pub(crate) queued_bytes_max: usize,
    /// `None`: [`QUEUED_BYTES_HIGH_WATER_DEFAULT`], lowered to fit under a smaller
    /// `queued_bytes_max`.
    pub(crate) queued_bytes_high_water: Option<usize>,
    pub(crate) inbound_handshakes_max: usize,
    pub(crate) inbound_handshakes_per_source_max: usize,
    pub(crate) hello_timeout: Duration,
    /// `None`: [`BuildId::fixed`]; a [`Node`](crate::Node) sets its own build here.
    pub(crate) build: Option<BuildId>,
}

impl fmt::Debug for TcpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConfig")
            .field("bind_address", &self.bind_address)
            .field("advertise", &self.advertise)
            .field("cookie", &self.cookie)
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("frame_bytes_max", &self.frame_bytes_max)
            .field("queued_bytes_max", &self.queued_bytes_max)
            .field("queued_bytes_high_water", &self.queued_bytes_high_water)
            .field("inbound_handshakes_max", &self.inbound_handshakes_max)
            .field(
                "inbound_handshakes_per_source_max",
                &self.inbound_handshakes_per_source_max,
            )
            .field("hello_timeout", &self.hello_timeout)
            .field("build", &self.build)
            .finish()
    }
}

impl Default for TcpConfig {
    /// Listens on [`BIND_ADDRESS_DEFAULT`] (loopback, any port), advertises the bound
    /// address, takes the cookie from `$HOME/.hyperion/cookie` (generated if missing),
    /// and uses the `*_DEFAULT` limits of this module and [`FRAME_BYTES_MAX`].
    fn default() -> Self {
        TcpConfig {
            bind_address: Ok(BIND_ADDRESS_DEFAULT),
            advertise: AdvertiseAddress::Bound,
            cookie: CookieSource::DefaultFile,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
            frame_bytes_max: FRAME_BYTES_MAX,
            queued_bytes_max: QUEUED_BYTES_MAX_DEFAULT,
            queued_bytes_high_water: None,
            build: None,
            inbound_handshakes_max: INBOUND_HANDSHAKES_MAX_DEFAULT,
            inbound_handshakes_per_source_max: INBOUND_HANDSHAKES_PER_SOURCE_MAX_DEFAULT,
            hello_timeout: HELLO_TIMEOUT_DEFAULT,
        }
    }
}

impl TcpConfig {
    /// Defaults, listening on `address` (`"0.0.0.0:7000"`, `"[::]:0"`, a host name and
    /// port, or a `SocketAddr`). An address that does not resolve is reported by
    /// [`TcpTransport::bind`](super::TcpTransport::bind).
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::bind("127.0.0.1:0");
    /// # let _ = config;
    /// ```
    pub fn bind(address: impl ToSocketAddrs) -> TcpConfig {
        let bind_address = match address.to_socket_addrs() {
            Ok(mut addresses) => addresses
                .next()
                .ok_or_else(|| "the bind address resolves to nothing".to_string()),
            Err(err) => Err(format!("cannot resolve the bind address: {err}")),
        };
        TcpConfig {
            bind_address,
            ..TcpConfig::default()
        }
    }

    /// Which address to give other nodes (default [`AdvertiseAddress::Bound`]).
    ///
    /// ```
    /// use hyperion::transport::tcp::{AdvertiseAddress, TcpConfig};
    /// let config = TcpConfig::bind("0.0.0.0:7000")
    ///     .advertise(AdvertiseAddress::Subnet("10.1.0.0/16".parse().unwrap()));
    /// # let _ = config;
    /// ```
    pub fn advertise(mut self, advertise: AdvertiseAddress) -> TcpConfig {
        self.advertise = advertise;
        self
    }

    /// The cluster cookie (default: the file `$HOME/.hyperion/cookie`, generated if
    /// missing).
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// use hyperion::wire::Cookie;
    /// let config = TcpConfig::default().cookie(Cookie::new("cluster secret").unwrap());
    /// # let _ = config;
    /// ```
    pub fn cookie(mut self, cookie: Cookie) -> TcpConfig {
        self.cookie = CookieSource::Value(cookie);
        self
    }

    /// The program build this transport's hellos carry: a peer of a build that is not
    /// [compatible](BuildId::compatible) is refused with an error naming both (see
    /// [`HandshakeError::BuildMismatch`](crate::wire::handshake::HandshakeError::BuildMismatch)).
    /// Default: [`BuildId::fixed`], the same for every transport that sets none; a
    /// [`Node`](crate::Node) sets its [`NodeConfig::build`](crate::NodeConfig::build)
    /// here (by default the hash of the running executable).
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// use hyperion::BuildId;
    /// let config = TcpConfig::default().build(BuildId::named("scan-2026-11").with_protocol(4));
    /// # let _ = config;
    /// ```
    pub fn build(mut self, build: BuildId) -> TcpConfig {
        self.build = Some(build);
        self
    }

    /// Reads the cookie from `path`, generating one there (mode `0600`) if the file is
    /// missing.
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().cookie_file("/etc/hyperion/cookie");
    /// # let _ = config;
    /// ```
    pub fn cookie_file(mut self, path: impl Into<PathBuf>) -> TcpConfig {
        self.cookie = CookieSource::File(path.into());
        self
    }

    /// How long a TCP connect may take before the peer is reported lost (default
    /// [`CONNECT_TIMEOUT_DEFAULT`], 5 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().connect_timeout(Duration::from_secs(1));
    /// # let _ = config;
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> TcpConfig {
        self.connect_timeout = timeout;
        self
    }

    /// How long a handshake may take once the TCP connection is up (default
    /// [`HANDSHAKE_TIMEOUT_DEFAULT`], 5 s). A peer that stalls mid-handshake is dropped
    /// when it runs out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().handshake_timeout(Duration::from_millis(500));
    /// # let _ = config;
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> TcpConfig {
        self.handshake_timeout = timeout;
        self
    }

    /// The longest frame body sent or accepted (default [`FRAME_BYTES_MAX`], 16 MiB), the
    /// one limit every encoder and decoder of the node uses. A node refuses to send a
    /// longer message (the sender's spawn or call gets an error; a plain send is logged
    /// and published as [`MxEvent::MessageRefused`](crate::mx::MxEvent::MessageRefused)),
    /// and the connection stays up. A longer frame from a peer breaks the connection
    /// before anything is allocated for it. Nodes that talk to each other should agree on
    /// it.
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().frame_bytes_max(1 << 20);
    /// # let _ = config;
    /// ```
    pub fn frame_bytes_max(mut self, bytes: usize) -> TcpConfig {
        self.frame_bytes_max = bytes;
        self
    }

    /// The most bytes that may wait to be written to one peer (default
    /// [`QUEUED_BYTES_MAX_DEFAULT`], 64 MiB), counting length prefixes. A send that would
    /// exceed it breaks the connection, which is reported lost
    /// ([`TransportEvent::PeerLost`](crate::transport::TransportEvent::PeerLost)),
    /// rather than letting a slow or stuck peer grow the queue without bound. Must be at
    /// least `frame_bytes_max + 4` so that one maximal frame fits.
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().frame_bytes_max(1 << 20).queued_bytes_max(8 << 20);
    /// # let _ = config;
    /// ```
    pub fn queued_bytes_max(mut self, bytes: usize) -> TcpConfig {
        self.queued_bytes_max = bytes;
        self
    }

    /// The high-water mark of the queue to one peer (default
    /// [`QUEUED_BYTES_HIGH_WATER_DEFAULT`], 4 MiB): a process awaiting
    /// [`Process::wait_for_room`](crate::Process::wait_for_room) resumes once fewer bytes
    /// than this wait for that peer. A producer that waits before each send never queues
    /// more than the mark plus one message, so it never reaches
    /// [`queued_bytes_max`](TcpConfig::queued_bytes_max) as long as
    /// `queued_bytes_high_water + frame_bytes_max + 4 <= queued_bytes_max` (checked by
    /// [`TcpTransport::bind`](super::TcpTransport::bind)). Left unset, the default is
    /// lowered as far as a smaller `queued_bytes_max` needs.
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().queued_bytes_high_water(256 * 1024);
    /// # let _ = config;
    /// ```
    pub fn queued_bytes_high_water(mut self, bytes: usize) -> TcpConfig {
        self.queued_bytes_high_water = Some(bytes);
        self
    }

    /// How long an inbound connection may take to deliver its hello, its first handshake
    /// message (default [`HELLO_TIMEOUT_DEFAULT`], 1 s; the handshake timeout still bounds
    /// the whole handshake). A connection that sends nothing, or too slowly, is closed
    /// when it runs out.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().hello_timeout(Duration::from_millis(250));
    /// # let _ = config;
    /// ```
    pub fn hello_timeout(mut self, timeout: Duration) -> TcpConfig {
        self.hello_timeout = timeout;
        self
    }

    /// How many inbound connections from one source (an IPv4 address, or an IPv6 /64
    /// network) may be in their handshake at once (default
    /// [`INBOUND_HANDSHAKES_PER_SOURCE_MAX_DEFAULT`]); over it, that source's oldest one
    /// is closed for the newcomer.
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().inbound_handshakes_per_source_max(64);
    /// # let _ = config;
    /// ```
    pub fn inbound_handshakes_per_source_max(mut self, count: usize) -> TcpConfig {
        self.inbound_handshakes_per_source_max = count;
        self
    }

    /// How many inbound connections may be in their handshake at once (default
    /// [`INBOUND_HANDSHAKES_MAX_DEFAULT`]); when all are taken, the oldest one that has
    /// not sent its hello is closed for the newcomer, and if all have, the newcomer is
    /// closed.
    ///
    /// ```
    /// use hyperion::transport::tcp::TcpConfig;
    /// let config = TcpConfig::default().inbound_handshakes_max(16);
    /// # let _ = config;
    /// ```
    pub fn inbound_handshakes_max(mut self, count: usize) -> TcpConfig {
        self.inbound_handshakes_max = count;
        self
    }
}
