//! The address a node gives other nodes, which is not always the one it listens on: a
//! node bound to `0.0.0.0` must name one of its interfaces, and a host may have several.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;

use nix::net::if_::InterfaceFlags;

/// Which address a node advertises (puts in its [`NodeId`](crate::NodeId)). Every
/// choice but [`Explicit`](AdvertiseAddress::Explicit) uses the port the transport is
/// bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdvertiseAddress {
    /// The address the listener is bound to. If that is the unspecified address
    /// (`0.0.0.0` or `::`), the first non-loopback interface address of that family, or
    /// loopback if the host has none (logged).
    Bound,
    /// The host name (`gethostname`), resolved; an address of the bound family is
    /// preferred.
    Hostname,
    /// The first address of an interface that is up and not loopback (IPv4 before IPv6;
    /// link-local IPv6 addresses are skipped, they need a scope to be reached).
    FirstNonLoopback,
    /// The first address (IPv4 before IPv6) of the interface with this name (`"eth0"`).
    Interface(String),
    /// The first interface address inside this subnet (`"10.1.0.0/16"`).
    Subnet(Subnet),
    /// Exactly this address (for a node behind a port mapping, say).
    Explicit(SocketAddr),
}

/// An IP subnet in CIDR notation.
///
/// ```
/// use hyperion::transport::tcp::Subnet;
/// let subnet: Subnet = "10.1.0.0/16".parse().unwrap();
/// assert!(subnet.contains("10.1.200.3".parse().unwrap()));
/// assert!(!subnet.contains("10.2.0.1".parse().unwrap()));
/// assert!("10.1.0.0/33".parse::<Subnet>().is_err());
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    network: IpAddr,
    prefix_bits: u8,
}

impl Subnet {
    /// The subnet of `network`'s first `prefix_bits` bits; `None` if the prefix is longer
    /// than the address.
    pub fn new(network: IpAddr, prefix_bits: u8) -> Option<Subnet> {
        let address_bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix_bits <= address_bits).then_some(Subnet {
            network,
            prefix_bits,
        })
    }

    /// Whether `ip` lies in the subnet (an address of the other family never does).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_bits))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_bits))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_bits)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(text: &str) -> Result<Subnet, String> {
        let (network, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not of the form address/prefix"))?;
        let network: IpAddr = network
            .parse()
            .map_err(|err| format!("{text:?}: bad address: {err}"))?;
        let prefix_bits: u8 = prefix
            .parse()
            .map_err(|err| format!("{text:?}: bad prefix length: {err}"))?;
        Subnet::new(network, prefix_bits)
            .ok_or_else(|| format!("{text:?}: prefix longer than the address"))
    }
}

/// One address of one interface that is up.
struct InterfaceAddress {
    name: String,
    ip: IpAddr,
    loopback: bool,
}

fn interface_addresses() -> io::Result<Vec<InterfaceAddress>> {
    let addresses = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(addresses
        .filter(|entry| entry.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|entry| {
            let address = entry.address.as_ref()?;
            let ip = if let Some(v4) = address.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(address.as_sockaddr_in6()?.ip())
            };
            Some(InterfaceAddress {
                loopback: entry.flags.contains(InterfaceFlags::IFF_LOOPBACK) || ip.is_loopback(),
                name: entry.interface_name,
                ip,
            })
        })
        .collect())
}

fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// IPv4 first, then IPv6 without link-local addresses, each in the system's order.
fn first_preferring_v4<'a>(
    candidates: impl Iterator<Item = &'a InterfaceAddress>,
) -> Option<IpAddr> {
    let candidates: Vec<IpAddr> = candidates
        .map(|candidate| candidate.ip)
        .filter(|ip| !is_link_local_v6(ip))
        .collect();
    candidates
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| candidates.first())
        .copied()
}

fn not_found(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, what)
}

/// The address to advertise for a listener bound at `bound`.
pub(crate) fn resolve(choice: &AdvertiseAddress, bound: SocketAddr) -> io::Result<SocketAddr> {
    let port = bound.port();
    let ip = match choice {
        AdvertiseAddress::Explicit(address) => return Ok(*address),
        AdvertiseAddress::Bound if !bound.ip().is_unspecified() => return Ok(bound),
        AdvertiseAddress::Bound => {
            let interfaces = interface_addresses()?;
            let same_family = interfaces
                .iter()
                .filter(|candidate| !candidate.loopback)
                .filter(|candidate| candidate.ip.is_ipv4() == bound.is_ipv4())
                .map(|candidate| candidate.ip)
                .find(|ip| !is_link_local_v6(ip));
            same_family.unwrap_or_else(|| {
                let loopback = if bound.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    IpAddr::V6(Ipv6Addr::LOCALHOST)
                };
                tracing::warn!(
                    %bound,
                    %loopback,
                    "bound to every interface but none is up besides loopback; \
                     advertising loopback, which other hosts cannot reach"
                );
                loopback
            })
        }
        AdvertiseAddress::Hostname => {
            let name = nix::unistd::gethostname().map_err(io::Error::from)?;
            let name = name.to_str().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "the host name is not UTF-8")
            })?;
            let resolved: Vec<SocketAddr> = (name, port).to_socket_addrs()?.collect();
            let chosen = resolved
                .iter()
                .find(|address| address.is_ipv4() == bound.is_ipv4())
                .or_else(|| resolved.first())
                .ok_or_else(|| not_found(format!("host name {name:?} resolves to nothing")))?;
            if chosen.ip().is_loopback() {
                tracing::warn!(
                    host = name,
                    address = %chosen,
                    "the host name resolves to loopback, which other hosts cannot reach"
                );
            }
            chosen.ip()
        }
        AdvertiseAddress::FirstNonLoopback => {
            let interfaces = interface_addresses()?;
            first_preferring_v4(interfaces.iter().filter(|candidate| !candidate.loopback))
                .ok_or_else(|| not_found("no interface is up besides loopback".into()))?
        }
        AdvertiseAddress::Interface(name) => {
            let interfaces = interface_addresses()?;
            first_preferring_v4(
                interfaces
                    .iter()
                    .filter(|candidate| candidate.name == *name),
            )
            .ok_or_else(|| not_found(format!("interface {name:?} is not up or has no address")))?
        }
        AdvertiseAddress::Subnet(subnet) => {
            let interfaces = interface_addresses()?;
            interfaces
                .iter()
                .map(|candidate| candidate.ip)
                .find(|ip| subnet.contains(*ip))
                .ok_or_else(|| not_found(format!("no interface address lies in {subnet}")))?
        }
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> SocketAddr {
        "127.0.0.1:4567".parse().unwrap()
    }

    #[test]
    fn bound_and_explicit_are_taken_as_they_are() {
        assert_eq!(resolve(&AdvertiseAddress::Bound, bound()).unwrap(), bound());
        let explicit: SocketAddr = "192.0.2.7:80".parse().unwrap();
        assert_eq!(
            resolve(&AdvertiseAddress::Explicit(explicit), bound()).unwrap(),
            explicit
        );
    }

    #[test]
    fn the_loopback_interface_and_subnet_resolve_to_loopback_with_the_bound_port() {
        let loopback: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        assert_eq!(
            resolve(&AdvertiseAddress::Interface("lo".into()), bound()).unwrap(),
            loopback
        );
        assert_eq!(
            resolve(
                &AdvertiseAddress::Subnet("127.0.0.0/8".parse().unwrap()),
                bound()
            )
            .unwrap(),
            loopback
        );
    }

    #[test]
    fn a_missing_interface_or_empty_subnet_is_an_error() {
        assert!(resolve(
            &AdvertiseAddress::Interface("no-such-interface0".into()),
            bound()
        )
        .is_err());
        assert!(resolve(
            &AdvertiseAddress::Subnet("198.51.100.0/24".parse().unwrap()),
            bound()
        )
        .is_err());
    }

    #[test]
    fn first_non_loopback_and_unspecified_bound_never_give_loopback_when_another_exists() {
        let interfaces = interface_addresses().unwrap();
        let has_other = interfaces
            .iter()
            .any(|candidate| !candidate.loopback && !is_link_local_v6(&candidate.ip));
        match resolve(&AdvertiseAddress::FirstNonLoopback, bound()) {
            Ok(address) => {
                assert!(!address.ip().is_loopback());
                assert_eq!(address.port(), 4567);
            }
            Err(_) => assert!(!has_other),
        }
        let any: SocketAddr = "0.0.0.0:4567".parse().unwrap();
        let advertised = resolve(&AdvertiseAddress::Bound, any).unwrap();
        assert!(!advertised.ip().is_unspecified());
        let has_other_v4 = interfaces
            .iter()
            .any(|candidate| !candidate.loopback && candidate.ip.is_ipv4());
        assert_eq!(advertised.ip().is_loopback(), !has_other_v4);
    }

    #[test]
    fn the_hostname_resolves_with_the_bound_port() {
        // The host name of a test machine may not resolve; when it does, the port is kept.
        if let Ok(address) = resolve(&AdvertiseAddress::Hostname, bound()) {
            assert_eq!(address.port(), 4567);
        }
    }

    #[test]
    fn subnets_match_by_prefix() {
        let v6: Subnet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd00::2".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let everything: Subnet = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains("203.0.113.9".parse().unwrap()));
        let host: Subnet = "10.0.0.1/32".parse().unwrap();
        assert!(host.contains("10.0.0.1".parse().unwrap()));
        assert!(!host.contains("10.0.0.2".parse().unwrap()));
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("::/129".parse::<Subnet>().is_err());
    }
}
