//! The peer allow-list: which TCP clients may connect at all.
//!
//! FastCGI and SCGI have no authentication: whoever can connect can set
//! every CGI variable (`REMOTE_ADDR`, `REMOTE_USER`, `HTTPS`, ...) the app
//! trusts. So only the web server should be able to connect. Like flup's
//! `allowedServers` and FastCGI's `FCGI_WEB_SERVER_ADDRS`, the engine checks
//! each TCP peer's address against a list of networks
//! ([`EngineConfig::allow`](crate::engine::EngineConfig::allow)) and closes
//! the connection at once when none matches. Unix-socket peers are always
//! allowed: the socket file's permissions decide who connects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and a prefix length, as in `10.0.0.0/8`, or
/// one address (`127.0.0.1`, `::1`: the whole length is the prefix).
///
/// The address is kept with its host bits cleared, so `10.1.2.3/8` is
/// `10.0.0.0/8`. An IPv4 network also matches the IPv4-mapped IPv6 form of
/// its addresses (`::ffff:10.0.0.1`), which is how IPv4 clients appear on a
/// `[::]` listener.
///
/// ```
/// use gatekit_server::allow::IpNet;
///
/// let net: IpNet = "10.0.0.0/8".parse()?;
/// assert!(net.contains("10.20.30.40".parse()?));
/// assert!(net.contains("::ffff:10.0.0.1".parse()?));
/// assert!(!net.contains("11.0.0.1".parse()?));
/// assert_eq!("::1".parse::<IpNet>()?.to_string(), "::1/128");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits (at most 32 for
    /// IPv4, 128 for IPv6); host bits of `addr` are cleared.
    ///
    /// # Errors
    /// The prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNet, ParseIpNetError> {
        let addr = match addr {
            IpAddr::V4(a) => {
                if prefix > 32 {
                    return Err(ParseIpNetError(ParseErrorKind::Prefix));
                }
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(a.to_bits() & mask))
            }
            IpAddr::V6(a) => {
                if prefix > 128 {
                    return Err(ParseIpNetError(ParseErrorKind::Prefix));
                }
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(a.to_bits() & mask))
            }
        };
        Ok(IpNet { addr, prefix })
    }

    /// The network holding only `addr`.
    #[must_use]
    pub fn host(addr: IpAddr) -> IpNet {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }

    /// The network address (host bits cleared).
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True if `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is compared as the IPv4 address it carries, and
    /// an IPv6 network (`::ffff:127.0.0.1`, `::/0`) matches IPv4 addresses
    /// in their mapped form.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let ip = match (self.addr, ip) {
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            _ => false,
        }
    }

    /// The loopback networks, `127.0.0.0/8` and `::1/128`: the default
    /// allow-list, for a web server on the same host.
    #[must_use]
    pub fn loopback() -> Vec<IpNet> {
        vec![
            IpNet {
                addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            },
            IpNet::host(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]
    }

    /// Every address, `0.0.0.0/0` and `::/0`: an allow-list that lets any
    /// peer in (for a server reachable only by the web server, e.g. on a
    /// private network or behind a firewall).
    #[must_use]
    pub fn any() -> Vec<IpNet> {
        vec![
            IpNet {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            },
            IpNet {
                addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                prefix: 0,
            },
        ]
    }
}

impl From<IpAddr> for IpNet {
    fn from(addr: IpAddr) -> IpNet {
        IpNet::host(addr)
    }
}

impl FromStr for IpNet {
    type Err = ParseIpNetError;

    /// Parses `ADDR` or `ADDR/PREFIX` (decimal prefix, no sign).
    fn from_str(s: &str) -> Result<IpNet, ParseIpNetError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| ParseIpNetError(ParseErrorKind::Addr))?;
        match prefix {
            None => Ok(IpNet::host(addr)),
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseIpNetError(ParseErrorKind::Prefix));
                }
                let prefix: u8 = p
                    .parse()
                    .map_err(|_| ParseIpNetError(ParseErrorKind::Prefix))?;
                IpNet::new(addr, prefix)
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why a text is not an [`IpNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseIpNetError(ParseErrorKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseErrorKind {
    Addr,
    Prefix,
}

impl fmt::Display for ParseIpNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            ParseErrorKind::Addr => "invalid IP address (expected ADDR or ADDR/PREFIX)",
            ParseErrorKind::Prefix => "invalid prefix length for this address family",
        })
    }
}

impl std::error::Error for ParseIpNetError {}

/// Whether `ip` lies in one of `nets`.
#[must_use]
pub fn is_allowed(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|net| net.contains(ip))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_hosts_and_networks() {
        assert_eq!(
            "127.0.0.1".parse::<IpNet>().unwrap(),
            IpNet::host(ip("127.0.0.1"))
        );
        let net: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.addr(), ip("10.0.0.0"));
        assert_eq!(net.prefix(), 8);
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert_eq!(
            "fd00::1/8".parse::<IpNet>().unwrap().to_string(),
            "fd00::/8"
        );
        assert_eq!("0.0.0.0/0".parse::<IpNet>().unwrap().prefix(), 0);
        assert_eq!("::/0".parse::<IpNet>().unwrap().prefix(), 0);
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/0008",
            "localhost",
            "10.0.0.0/8/8",
            "[::1]",
            "10.0.0.256",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?} parsed");
        }
        assert!(IpNet::new(ip("1.2.3.4"), 33).is_err());
        assert!(IpNet::new(ip("::"), 129).is_err());
    }

    #[test]
    fn contains_respects_the_prefix() {
        let net: IpNet = "192.168.4.0/22".parse().unwrap();
        assert!(net.contains(ip("192.168.4.0")));
        assert!(net.contains(ip("192.168.7.255")));
        assert!(!net.contains(ip("192.168.8.0")));
        assert!(!net.contains(ip("192.168.3.255")));
        assert!(!net.contains(ip("::1")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("32.1.13.184")));
    }

    #[test]
    fn mapped_ipv4_matches_ipv4_networks() {
        let lo = IpNet::loopback();
        assert!(is_allowed(&lo, ip("127.0.0.1")));
        assert!(is_allowed(&lo, ip("127.9.9.9")));
        assert!(is_allowed(&lo, ip("::1")));
        assert!(is_allowed(&lo, ip("::ffff:127.0.0.1")));
        assert!(!is_allowed(&lo, ip("::ffff:10.0.0.1")));
        assert!(!is_allowed(&lo, ip("10.0.0.1")));
        assert!(!is_allowed(&lo, ip("::2")));
        assert!(!is_allowed(&[], ip("127.0.0.1")));
        let mapped: IpNet = "::ffff:127.0.0.1".parse().unwrap();
        assert!(mapped.contains(ip("127.0.0.1")));
        assert!(!mapped.contains(ip("127.0.0.2")));
    }

    #[test]
    fn any_allows_everything() {
        let any = IpNet::any();
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "ffff::1",
            "::ffff:1.2.3.4",
        ] {
            assert!(is_allowed(&any, ip(a)), "{a}");
        }
    }
}
