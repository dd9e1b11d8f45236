//! Where a backend listens, and the stream to it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// A backend's address: `HOST:PORT`, `[V6]:PORT` or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A TCP address. The host is a name or an IP literal (without brackets); it is resolved
    /// when connecting.
    Tcp {
        /// Host name or IP address, without brackets.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix(PathBuf),
}

impl FromStr for Target {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidAddress(s.to_owned());
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(invalid());
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Target::Tcp {
                host: addr.ip().to_string(),
                port: addr.port(),
            });
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(invalid)?;
        let port: u16 = port.parse().map_err(|_| invalid())?;
        // A bracketed host that did not parse above is not an IPv6 literal; a bare one with a
        // colon is ambiguous.
        if host.is_empty() || host.contains([':', '[', ']', '/']) {
            return Err(invalid());
        }
        Ok(Target::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Target {
    /// The `SERVER_NAME` a web server in front of this backend would report: the host, or
    /// `localhost` for a Unix socket.
    #[must_use]
    pub fn server_name(&self) -> &str {
        match self {
            Target::Tcp { host, .. } => host,
            Target::Unix(_) => "localhost",
        }
    }

    /// The `SERVER_PORT` a web server in front of this backend would report: the port, or 80
    /// for a Unix socket.
    #[must_use]
    pub fn server_port(&self) -> u16 {
        match self {
            Target::Tcp { port, .. } => *port,
            Target::Unix(_) => 80,
        }
    }

    /// Connects, trying each resolved address in turn, and sets `io_timeout` on the socket
    /// (and `TCP_NODELAY` on TCP).
    pub fn connect(
        &self,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Stream, Error> {
        let fail = |source: io::Error| Error::Connect {
            addr: self.to_string(),
            source,
        };
        let stream = match self {
            Target::Unix(path) => Stream::Unix(UnixStream::connect(path).map_err(fail)?),
            Target::Tcp { host, port } => {
                let addrs = (host.as_str(), *port).to_socket_addrs().map_err(fail)?;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address found");
                let mut connected = None;
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, connect_timeout) {
                        Ok(s) => {
                            connected = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let stream = connected.ok_or_else(|| fail(last))?;
                stream.set_nodelay(true).map_err(fail)?;
                Stream::Tcp(stream)
            }
        };
        stream.set_timeouts(io_timeout).map_err(fail)?;
        Ok(stream)
    }
}

/// A connected socket to a backend.
#[derive(Debug)]
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix domain socket.
    Unix(UnixStream),
}

impl Stream {
    fn set_timeouts(&self, timeout: Duration) -> io::Result<()> {
        // A zero duration is refused by std; it would mean "no timeout" to a user.
        let timeout = (!timeout.is_zero()).then_some(timeout);
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(timeout)?;
                s.set_write_timeout(timeout)
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let t: Target = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(
            t,
            Target::Tcp {
                host: "127.0.0.1".into(),
                port: 9000
            }
        );
        assert_eq!(t.to_string(), "127.0.0.1:9000");
        let t: Target = "[::1]:80".parse().unwrap();
        assert_eq!(t.to_string(), "[::1]:80");
        assert_eq!(t.server_name(), "::1");
        let t: Target = "localhost:8080".parse().unwrap();
        assert_eq!(t.server_port(), 8080);
        let t: Target = "unix:/run/x.sock".parse().unwrap();
        assert_eq!(t, Target::Unix("/run/x.sock".into()));
        assert_eq!(t.server_name(), "localhost");
        for bad in [
            "",
            "unix:",
            "host",
            "host:",
            "host:99999",
            ":80",
            "::1:80",
            "[x]:80",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad:?}");
        }
    }
}
