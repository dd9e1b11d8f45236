//! Listening sockets for the socket front-ends: TCP, Unix-domain sockets, a
//! socket inherited on fd 0 (FastCGI's `FCGI_LISTENSOCK_FILENO`), a socket
//! named by number (`fd:N`), and systemd socket activation (`LISTEN_FDS`).
//!
//! # Overview
//!
//! - [`Addr`] is what the user writes: `127.0.0.1:8000`, `localhost:8000`,
//!   `[::1]:8000`, `unix:/run/app.sock` or `fd:3`.
//! - [`ListenOptions`] holds the knobs, with safe defaults (a backlog of
//!   [`DEFAULT_BACKLOG`], `SO_REUSEADDR` on TCP).
//! - [`bind`] turns an address into a [`Listener`]; [`Listener::from_fd0`],
//!   [`Listener::from_inherited_fd`] and [`systemd_listeners`] adopt sockets
//!   that a parent process opened for us, and [`fd0_is_listener`] tells
//!   whether there is one on fd 0.
//! - [`Listener::accept`] gives a [`Stream`] and its [`Peer`]. Accept errors
//!   are returned, never panicked on; [`is_transient_accept_error`] says
//!   which ones mean "back off and try again".
//!
//! ```no_run
//! use gatekit_server::listen::{self, Addr, ListenOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let addr: Addr = "127.0.0.1:8000".parse()?;
//! let listener = listen::bind(&addr, &ListenOptions::default())?;
//! eprintln!("listening on {}", listener.local_addr()?);
//! let (stream, peer) = listener.accept()?;
//! # drop((stream, peer));
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! The peers measured for gatekit taught three things, each a default here:
//! a listen backlog of 128 (Rust std's and tokio's) overflows at 256
//! concurrent connections, so ours is 1024; an accepted TCP stream without
//! `TCP_NODELAY` stalls 40 ms per response on kept-alive connections, so it
//! is set on every one; and a library must not panic when `accept` fails
//! with `EMFILE`, or mistake Apache mod_cgid's *connected* socket on stdin
//! for a listener (FastCGI 1.0 §2.2 prescribes the `getpeername` test used
//! by [`fd0_is_listener`]). Every descriptor is close-on-exec, so CGI
//! scripts started by the server inherit no listener.
//!
//! Sockets are made with rustix and handed to std's `TcpListener` and
//! `UnixListener`; the only `unsafe` (adopting an inherited descriptor
//! number) lives in the private `sys` module.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{self as rnet, AddressFamily, SocketAddrUnix, SocketFlags, SocketType, sockopt};

use crate::sys;

/// The listen backlog [`ListenOptions::default`] asks for.
///
/// Rust std and tokio use 128; at 256 concurrent connections without
/// keep-alive that queue overflows, SYNs are dropped, and p99 latency jumps
/// past a second (the client retransmits after 1 s). Linux caps the value at
/// `net.core.somaxconn` (4096 by default since 5.4).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// The longest `LISTEN_FDS` we accept; systemd passes a handful.
const MAX_LISTEN_FDS: u32 = 65_536;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// What went wrong while parsing an address or setting up a listener.
///
/// `Display` gives context and cause on one line, e.g.
/// `cannot bind 127.0.0.1:80: permission denied`. The cause is part of that
/// text, so [`std::error::Error::source`] is `None`; the underlying
/// [`io::Error`], if any, is available from [`Error::io_error`].
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    io: Option<io::Error>,
}

/// The kinds of [`Error`], with the context each one names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A listen address that does not parse.
    InvalidAddr {
        /// The text as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A [`ListenOptions`] value that cannot be applied.
    InvalidOption {
        /// Which value, and why.
        reason: String,
    },
    /// Looking up a host name failed, or found no address.
    Resolve {
        /// The address as written, `HOST:PORT`.
        addr: String,
    },
    /// Creating the socket or `bind(2)` failed.
    Bind {
        /// The address, as [`Addr`] displays it.
        addr: String,
    },
    /// `listen(2)` failed.
    Listen {
        /// The address, as [`Addr`] displays it.
        addr: String,
    },
    /// A Unix socket path is held by a live socket: a process accepts
    /// connections on it (or might; the check could not tell).
    AddrInUse {
        /// The address, `unix:PATH`.
        addr: String,
    },
    /// Something other than a socket (a file, a directory, a symlink)
    /// exists at a Unix socket path. It is never removed.
    NotASocket {
        /// The address, `unix:PATH`.
        addr: String,
    },
    /// Setting the Unix socket's mode failed.
    SetMode {
        /// The address, `unix:PATH`.
        addr: String,
        /// The requested mode.
        mode: u32,
    },
    /// Changing the Unix socket's owner or group failed.
    SetOwner {
        /// The address, `unix:PATH`.
        addr: String,
    },
    /// An inherited descriptor that cannot be used: not open, negative, or
    /// already taken by this process.
    BadFd {
        /// The descriptor number.
        fd: RawFd,
    },
    /// An inherited descriptor that is not a listening socket (a connected
    /// socket, a pipe, a file, a tty, ...).
    NotListening {
        /// The descriptor number.
        fd: RawFd,
    },
    /// An inherited listening socket of a kind we do not serve (a datagram
    /// or seqpacket socket, or a family other than IPv4, IPv6 and Unix).
    Unsupported {
        /// The descriptor number.
        fd: RawFd,
        /// What it is.
        what: String,
    },
    /// A malformed systemd socket-activation variable.
    Systemd {
        /// `LISTEN_PID`, `LISTEN_FDS` or `LISTEN_FDNAMES`.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    fn new(kind: ErrorKind) -> Self {
        Error { kind, io: None }
    }

    fn with_io(kind: ErrorKind, io: impl Into<io::Error>) -> Self {
        Error {
            kind,
            io: Some(io.into()),
        }
    }

    fn invalid_addr(input: &str, reason: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidAddr {
            input: input.to_owned(),
            reason: reason.into(),
        })
    }

    /// What kind of error this is, with its context.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The operating-system error behind this one, if there is one.
    #[must_use]
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::InvalidAddr { input, reason } => {
                write!(f, "invalid listen address {input:?}: {reason}")?;
            }
            ErrorKind::InvalidOption { reason } => write!(f, "invalid listen option: {reason}")?,
            ErrorKind::Resolve { addr } => {
                write!(f, "cannot resolve {addr}")?;
                if self.io.is_none() {
                    f.write_str(": no address found")?;
                }
            }
            ErrorKind::Bind { addr } => write!(f, "cannot bind {addr}")?,
            ErrorKind::Listen { addr } => write!(f, "cannot listen on {addr}")?,
            ErrorKind::AddrInUse { addr } => {
                write!(f, "cannot bind {addr}: address in use by a live socket")?;
                if let Some(e) = &self.io {
                    return write!(f, " (probing it failed: {})", describe(e));
                }
            }
            ErrorKind::NotASocket { addr } => write!(
                f,
                "cannot bind {addr}: the path exists and is not a socket (left in place)"
            )?,
            ErrorKind::SetMode { addr, mode } => write!(f, "cannot set mode {mode:04o} on {addr}")?,
            ErrorKind::SetOwner { addr } => write!(f, "cannot change the owner of {addr}")?,
            ErrorKind::BadFd { fd } => write!(f, "cannot use fd {fd}")?,
            ErrorKind::NotListening { fd } => write!(f, "fd {fd} is not a listening socket")?,
            ErrorKind::Unsupported { fd, what } => {
                write!(
                    f,
                    "fd {fd} is a listening socket of an unsupported kind ({what})"
                )?;
            }
            ErrorKind::Systemd { var, reason } => write!(f, "invalid {var}: {reason}")?,
        }
        if let Some(e) = &self.io {
            write!(f, ": {}", describe(e))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// An I/O error as a lowercase phrase without the "(os error N)" suffix:
/// "Permission denied (os error 13)" becomes "permission denied".
fn describe(e: &io::Error) -> String {
    let mut text = e.to_string();
    if let Some(code) = e.raw_os_error() {
        let suffix = format!(" (os error {code})");
        if text.ends_with(&suffix) {
            text.truncate(text.len() - suffix.len());
        }
    }
    let mut chars = text.chars();
    match chars.next() {
        // Lowercase only a capitalised word ("Permission"), not an acronym.
        Some(first) if !chars.next().is_some_and(char::is_uppercase) => first
            .to_lowercase()
            .chain(text[first.len_utf8()..].chars())
            .collect(),
        _ => text,
    }
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/// Where to listen, as written on a command line.
///
/// | Text | Value |
/// |---|---|
/// | `127.0.0.1:8000`, `0.0.0.0:0` | [`Addr::Ip`] |
/// | `[::1]:8000`, `[::]:8000` | [`Addr::Ip`] (IPv6 needs the brackets) |
/// | `localhost:8000` | [`Addr::Host`], resolved by [`bind`] |
/// | `unix:/run/app.sock`, `unix:app.sock` | [`Addr::Unix`] |
/// | `fd:3` | [`Addr::Fd`], an inherited listening socket |
///
/// `Display` writes the same forms back, so `"listening on {addr}"` reads
/// as the user wrote it (IP addresses in their canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// An IP address and port. Port 0 asks the kernel for a free one.
    Ip(SocketAddr),
    /// A host name and port, resolved when bound.
    Host {
        /// The host name, e.g. `localhost`.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix-domain socket at this path.
    Unix(PathBuf),
    /// An inherited listening socket on this descriptor.
    Fd(RawFd),
}

const ADDR_FORMS: &str = "expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd:N";

impl FromStr for Addr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::invalid_addr(s, format!("empty ({ADDR_FORMS})")));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            return parse_unix(s, path);
        }
        if let Some(num) = s.strip_prefix("fd:") {
            return parse_fd(s, num);
        }
        if s.contains("://") {
            return Err(Error::invalid_addr(s, format!("not a URL ({ADDR_FORMS})")));
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Addr::Ip(sa));
        }
        if let Some(rest) = s.strip_prefix('[') {
            return Err(Error::invalid_addr(s, bracketed_reason(rest)));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(Error::invalid_addr(
                s,
                format!("missing port ({ADDR_FORMS})"),
            ));
        };
        if host.contains(':') {
            return Err(Error::invalid_addr(
                s,
                "an IPv6 address needs brackets, as in [::1]:8000",
            ));
        }
        let port = parse_port(s, port)?;
        if host.is_empty() {
            return Err(Error::invalid_addr(
                s,
                "missing host (0.0.0.0:PORT or [::]:PORT listens on all interfaces)",
            ));
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(Error::invalid_addr(
                s,
                format!("invalid IPv4 address {host:?}"),
            ));
        }
        let valid_name = host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !valid_name {
            return Err(Error::invalid_addr(
                s,
                format!("invalid host name {host:?}"),
            ));
        }
        Ok(Addr::Host {
            host: host.to_owned(),
            port,
        })
    }
}

fn parse_unix(s: &str, path: &str) -> Result<Addr, Error> {
    if path.is_empty() {
        return Err(Error::invalid_addr(s, "missing path after unix:"));
    }
    if path.contains('\0') {
        return Err(Error::invalid_addr(s, "the path contains a NUL byte"));
    }
    if SocketAddrUnix::new(path).is_err() {
        return Err(Error::invalid_addr(
            s,
            format!(
                "the path is too long for a unix socket ({} bytes; the limit is about 100)",
                path.len()
            ),
        ));
    }
    Ok(Addr::Unix(PathBuf::from(path)))
}

fn parse_fd(s: &str, num: &str) -> Result<Addr, Error> {
    let digits = !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit());
    match num.parse::<RawFd>() {
        Ok(n) if digits => Ok(Addr::Fd(n)),
        _ => Err(Error::invalid_addr(
            s,
            "expected fd:N with N a descriptor number",
        )),
    }
}

fn parse_port(s: &str, port: &str) -> Result<u16, Error> {
    let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(p) if digits => Ok(p),
        _ if port.is_empty() => Err(Error::invalid_addr(s, "missing port")),
        _ => Err(Error::invalid_addr(
            s,
            format!("invalid port {port:?} (0 to 65535)"),
        )),
    }
}

/// Why `[...]...` did not parse as `[IPV6]:PORT`.
fn bracketed_reason(rest: &str) -> String {
    let Some((ip, after)) = rest.split_once(']') else {
        return "missing ']' (expected [IPV6]:PORT)".to_owned();
    };
    if ip.parse::<std::net::Ipv6Addr>().is_err() {
        return format!("invalid IPv6 address {ip:?}");
    }
    match after.strip_prefix(':') {
        None | Some("") => "missing port (expected [IPV6]:PORT)".to_owned(),
        Some(port) => format!("invalid port {port:?} (0 to 65535)"),
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Ip(sa) => write!(f, "{sa}"),
            Addr::Host { host, port } => write!(f, "{host}:{port}"),
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
            Addr::Fd(n) => write!(f, "fd:{n}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Options and bind
// ---------------------------------------------------------------------------

/// How [`bind`] sets up a listener. Start from [`ListenOptions::default`]
/// and change fields:
///
/// ```
/// let mut opts = gatekit_server::listen::ListenOptions::default();
/// opts.unix_mode = Some(0o660);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenOptions {
    /// The `listen(2)` backlog: connections the kernel queues before we
    /// accept them. Default [`DEFAULT_BACKLOG`] (1024); the kernel caps it
    /// at `net.core.somaxconn`.
    pub backlog: u32,
    /// Set `SO_REUSEADDR` on TCP sockets, so a restarted server can bind
    /// while connections of the old one linger in `TIME_WAIT`. Default
    /// `true`. (It does not let two servers listen on one port.)
    pub reuse_addr: bool,
    /// Permission bits for a Unix socket file, e.g. `0o660` (at most
    /// `0o7777`). Default `None`: what the umask gives.
    pub unix_mode: Option<u32>,
    /// Owner (user id) for a Unix socket file. Default `None`: unchanged.
    pub unix_uid: Option<u32>,
    /// Group (group id) for a Unix socket file. Default `None`: unchanged.
    pub unix_gid: Option<u32>,
    /// `TCP_DEFER_ACCEPT` for a TCP socket, in seconds: the kernel hands
    /// over a new connection only once its first bytes have arrived (a
    /// client that sends nothing is handed over after about that long), so
    /// the server is never woken for a connection it cannot read yet and
    /// reads the request straight after accepting it. Right where the
    /// client always writes first, as a web server does to its FastCGI or
    /// SCGI backend: their servers set 1 by default. Default `None` (off).
    /// A kernel that refuses the option is not an error.
    pub defer_accept: Option<u32>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: DEFAULT_BACKLOG,
            reuse_addr: true,
            unix_mode: None,
            unix_uid: None,
            unix_gid: None,
            defer_accept: None,
        }
    }
}

impl ListenOptions {
    /// The defaults for a FastCGI or SCGI backend: those of
    /// [`ListenOptions::default`], with [`defer_accept`](Self::defer_accept)
    /// of 1 s, since the web server always writes its request first.
    #[must_use]
    pub fn backend() -> ListenOptions {
        ListenOptions {
            defer_accept: Some(1),
            ..ListenOptions::default()
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::new(ErrorKind::InvalidOption { reason }));
        if let Some(mode) = self.unix_mode {
            if mode & !0o7777 != 0 {
                return bad(format!("unix socket mode {mode:o} has bits beyond 7777"));
            }
        }
        // -1 means "leave unchanged" to chown(2); it is not an id.
        if self.unix_uid == Some(u32::MAX) {
            return bad(format!("user id {} is not valid", u32::MAX));
        }
        if self.unix_gid == Some(u32::MAX) {
            return bad(format!("group id {} is not valid", u32::MAX));
        }
        Ok(())
    }

    fn backlog(&self) -> i32 {
        i32::try_from(self.backlog).unwrap_or(i32::MAX)
    }
}

/// Opens a listener on `addr`.
///
/// - `HOST:PORT` and `[IPV6]:PORT`: a TCP socket, close-on-exec, with
///   `SO_REUSEADDR` if asked. A host name is resolved and the first address
///   that binds is used (one listener, not one per address). `[::]` leaves
///   the system's `IPV6_V6ONLY` default alone, which on Linux also accepts
///   IPv4 connections.
/// - `unix:PATH`: a Unix socket. A socket file left by a dead process (a
///   socket nobody accepts on: connecting is refused) is removed first; a
///   live socket gives [`ErrorKind::AddrInUse`], and anything that is not a
///   socket gives [`ErrorKind::NotASocket`] and is left alone. The owner and
///   mode from `opts` are applied *before* `listen(2)`, so no client can
///   connect while the file still has the umask's permissions. The file is
///   not removed when the listener is dropped; the next start removes it as
///   stale.
/// - `fd:N`: [`Listener::from_inherited_fd`]; `opts` are not applied.
///
/// # Errors
///
/// An [`Error`] naming the address and the cause, e.g. `cannot bind
/// 127.0.0.1:80: permission denied`.
pub fn bind(addr: &Addr, opts: &ListenOptions) -> Result<Listener, Error> {
    opts.validate()?;
    match addr {
        Addr::Ip(sa) => bind_tcp(*sa, &addr.to_string(), opts),
        Addr::Host { host, port } => {
            let label = addr.to_string();
            let found: Vec<SocketAddr> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| {
                    Error::with_io(
                        ErrorKind::Resolve {
                            addr: label.clone(),
                        },
                        e,
                    )
                })?
                .collect();
            let mut first_err = None;
            for sa in found {
                match bind_tcp(sa, &format!("{label} ({sa})"), opts) {
                    Ok(l) => return Ok(l),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            Err(first_err.unwrap_or_else(|| Error::new(ErrorKind::Resolve { addr: label })))
        }
        Addr::Unix(path) => bind_unix(path, &addr.to_string(), opts),
        Addr::Fd(n) => Listener::from_inherited_fd(*n),
    }
}

fn bind_tcp(sa: SocketAddr, label: &str, opts: &ListenOptions) -> Result<Listener, Error> {
    let bind_err = |e: Errno| {
        Error::with_io(
            ErrorKind::Bind {
                addr: label.to_owned(),
            },
            e,
        )
    };
    let family = if sa.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rnet::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(bind_err)?;
    if opts.reuse_addr {
        sockopt::set_socket_reuseaddr(&fd, true).map_err(bind_err)?;
    }
    // Before listen(), so every connection inherits it (one inherited with
    // connections already queued gets it per connection instead).
    let nodelay_inherited = sockopt::set_tcp_nodelay(&fd, true).is_ok();
    if let Some(seconds) = opts.defer_accept {
        // Only saves wake-ups: without it the server works the same.
        let _ = crate::sys::set_tcp_defer_accept(fd.as_fd(), seconds);
    }
    rnet::bind(&fd, &sa).map_err(bind_err)?;
    rnet::listen(&fd, opts.backlog()).map_err(|e| {
        Error::with_io(
            ErrorKind::Listen {
                addr: label.to_owned(),
            },
            e,
        )
    })?;
    let mut listener = Listener::new(Sock::Tcp(TcpListener::from(fd)));
    listener.nodelay_inherited = nodelay_inherited;
    Ok(listener)
}

fn bind_unix(path: &Path, label: &str, opts: &ListenOptions) -> Result<Listener, Error> {
    let bind_err = |e: io::Error| {
        Error::with_io(
            ErrorKind::Bind {
                addr: label.to_owned(),
            },
            e,
        )
    };
    let sun = SocketAddrUnix::new(path).map_err(|e| bind_err(e.into()))?;
    let fd = rnet::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| bind_err(e.into()))?;
    match rnet::bind(&fd, &sun) {
        Ok(()) => {}
        Err(Errno::ADDRINUSE) => {
            remove_stale_socket(path, &sun, label)?;
            rnet::bind(&fd, &sun).map_err(|e| bind_err(e.into()))?;
        }
        Err(e) => return Err(bind_err(e.into())),
    }
    // From here on the file at `path` is the one we just made: remove it
    // again if the listener cannot be completed.
    let finish = || -> Result<(), Error> {
        if opts.unix_uid.is_some() || opts.unix_gid.is_some() {
            std::os::unix::fs::chown(path, opts.unix_uid, opts.unix_gid).map_err(|e| {
                Error::with_io(
                    ErrorKind::SetOwner {
                        addr: label.to_owned(),
                    },
                    e,
                )
            })?;
        }
        if let Some(mode) = opts.unix_mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
                Error::with_io(
                    ErrorKind::SetMode {
                        addr: label.to_owned(),
                        mode,
                    },
                    e,
                )
            })?;
        }
        rnet::listen(&fd, opts.backlog()).map_err(|e| {
            Error::with_io(
                ErrorKind::Listen {
                    addr: label.to_owned(),
                },
                e,
            )
        })
    };
    if let Err(e) = finish() {
        // Ignored: the error being returned is the one that matters, and a
        // file left behind is removed as stale by the next bind.
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(Listener::new(Sock::Unix(UnixListener::from(fd))))
}

/// `bind` found something at `path`. Removes it if it is a socket file that
/// nobody accepts on; otherwise says why not.
fn remove_stale_socket(path: &Path, sun: &SocketAddrUnix, label: &str) -> Result<(), Error> {
    let in_use = || {
        Error::new(ErrorKind::AddrInUse {
            addr: label.to_owned(),
        })
    };
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        // Gone since bind looked: the caller binds again.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::with_io(
                ErrorKind::Bind {
                    addr: label.to_owned(),
                },
                e,
            ));
        }
    };
    if !before.file_type().is_socket() {
        return Err(Error::new(ErrorKind::NotASocket {
            addr: label.to_owned(),
        }));
    }
    // Non-blocking, so a live server with a full backlog answers EAGAIN at
    // once instead of making us wait for room.
    let probe = rnet::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .map_err(|e| {
        Error::with_io(
            ErrorKind::Bind {
                addr: label.to_owned(),
            },
            e,
        )
    })?;
    match rnet::connect(&probe, sun) {
        Err(Errno::CONNREFUSED) => {}
        Err(Errno::NOENT) => return Ok(()),
        Ok(()) | Err(Errno::AGAIN | Errno::INPROGRESS) => return Err(in_use()),
        // EACCES and the like: we cannot tell, so it stays.
        Err(e) => {
            return Err(Error::with_io(
                ErrorKind::AddrInUse {
                    addr: label.to_owned(),
                },
                e,
            ));
        }
    }
    drop(probe);
    // Unlink only the file we probed: if another process has replaced it
    // meanwhile, that one is not ours to remove.
    match std::fs::symlink_metadata(path) {
        Ok(now) if now.dev() == before.dev() && now.ino() == before.ino() => {}
        Ok(_) => return Err(in_use()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::with_io(
                ErrorKind::Bind {
                    addr: label.to_owned(),
                },
                e,
            ));
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::with_io(
            ErrorKind::Bind {
                addr: label.to_owned(),
            },
            e,
        )),
    }
}

// ---------------------------------------------------------------------------
// Listener, Stream, Peer
// ---------------------------------------------------------------------------

/// A listening socket, TCP or Unix.
///
/// Close-on-exec. For an event loop, call [`Listener::set_nonblocking`] and
/// register [`AsFd::as_fd`] (or the [`OwnedFd`] from `OwnedFd::from`); mio
/// takes any descriptor through `SourceFd`.
#[derive(Debug)]
pub struct Listener {
    sock: Sock,
    name: Option<String>,
    /// `TCP_NODELAY` was set on the socket before it listened, so every
    /// connection it accepts starts with it (Linux copies it into the
    /// accepted socket): one `setsockopt` per listener, not per connection.
    nodelay_inherited: bool,
}

#[derive(Debug)]
enum Sock {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// The socket family of a listener, found by [`inspect_listener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ip,
    Unix,
}

impl Listener {
    fn new(sock: Sock) -> Self {
        Listener {
            sock,
            name: None,
            nodelay_inherited: false,
        }
    }

    fn from_checked(fd: OwnedFd, family: Family) -> Self {
        Listener::new(match family {
            Family::Ip => Sock::Tcp(TcpListener::from(fd)),
            Family::Unix => Sock::Unix(UnixListener::from(fd)),
        })
    }

    /// Adopts the listening socket a parent process left on fd 0, as
    /// FastCGI 1.0 §2.2 (`FCGI_LISTENSOCK_FILENO`) has mod_fcgid and
    /// spawn-fcgi do. Works on a duplicate of fd 0; fd 0 itself stays open
    /// (std's stdin handle refers to it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotListening`] if fd 0 is not a listening socket (use
    /// [`fd0_is_listener`] to decide first), [`ErrorKind::Unsupported`] for
    /// a listening socket that is not TCP or Unix stream.
    pub fn from_fd0() -> Result<Listener, Error> {
        Self::dup_std(io::stdin().as_fd(), 0)
    }

    fn dup_std(fd: BorrowedFd<'_>, n: RawFd) -> Result<Listener, Error> {
        let owned = fd
            .try_clone_to_owned()
            .map_err(|e| Error::with_io(ErrorKind::BadFd { fd: n }, e))?;
        let family = inspect_listener(owned.as_fd(), n)?;
        Ok(Listener::from_checked(owned, family))
    }

    /// Adopts the inherited listening socket on descriptor `fd` (what
    /// `fd:N` names). The descriptor is checked through a borrow first; on
    /// any error it is left open and untouched. Once adopted it is owned by
    /// the `Listener` (closed when dropped) and made close-on-exec. fd 0, 1
    /// and 2 are duplicated instead, as in [`Listener::from_fd0`].
    ///
    /// Meant for descriptors a parent process passed across exec; the same
    /// number cannot be adopted twice. Do not name a descriptor that other
    /// code in this process owns: it would then have two owners.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadFd`] if `fd` is negative, not open, or already
    /// adopted; [`ErrorKind::NotListening`] or [`ErrorKind::Unsupported`]
    /// as for [`Listener::from_fd0`].
    pub fn from_inherited_fd(fd: RawFd) -> Result<Listener, Error> {
        match fd {
            0 => Self::from_fd0(),
            1 => Self::dup_std(io::stdout().as_fd(), 1),
            2 => Self::dup_std(io::stderr().as_fd(), 2),
            n if n < 0 => Err(Error::with_io(ErrorKind::BadFd { fd: n }, Errno::BADF)),
            n => match sys::claim_inherited(n, |b| inspect_listener(b, n)) {
                Ok((owned, family)) => Ok(Listener::from_checked(owned, family)),
                Err(sys::ClaimError::Rejected(e)) => Err(e),
                Err(sys::ClaimError::NotOpen(e)) => {
                    Err(Error::with_io(ErrorKind::BadFd { fd: n }, e))
                }
                Err(sys::ClaimError::AlreadyTaken) => Err(Error::with_io(
                    ErrorKind::BadFd { fd: n },
                    io::Error::other("already adopted by this process"),
                )),
                // Unreachable (handled above); kept as an error, not a panic.
                Err(sys::ClaimError::Stdio) => {
                    Err(Error::with_io(ErrorKind::BadFd { fd: n }, Errno::INVAL))
                }
            },
        }
    }

    /// Wraps a descriptor the caller already owns, after checking that it
    /// is a listening TCP or Unix stream socket.
    ///
    /// # Errors
    ///
    /// As for [`Listener::from_fd0`]; the descriptor is closed on error.
    pub fn from_owned_fd(fd: OwnedFd) -> Result<Listener, Error> {
        let family = inspect_listener(fd.as_fd(), fd.as_raw_fd())?;
        Ok(Listener::from_checked(fd, family))
    }

    /// Accepts one connection: a blocking stream (close-on-exec) and its
    /// peer. TCP streams have `TCP_NODELAY` set. `EINTR` is retried.
    ///
    /// # Errors
    ///
    /// The `accept(2)` error. On a non-blocking listener,
    /// [`io::ErrorKind::WouldBlock`] means no connection is waiting;
    /// [`is_transient_accept_error`] tells which others to back off on and
    /// retry. Never panics.
    pub fn accept(&self) -> io::Result<(Stream, Peer)> {
        self.accept_with(SocketFlags::CLOEXEC)
    }

    /// Like [`Listener::accept`], but the stream comes back non-blocking
    /// (one system call, for an event loop).
    ///
    /// # Errors
    ///
    /// As for [`Listener::accept`].
    pub fn accept_nonblocking(&self) -> io::Result<(Stream, Peer)> {
        self.accept_with(SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)
    }

    fn accept_with(&self, flags: SocketFlags) -> io::Result<(Stream, Peer)> {
        if let Sock::Unix(_) = self.sock {
            // A Unix peer's address is not used (it is unnamed anyway):
            // the kernel is not asked to copy it.
            let fd = loop {
                match rnet::accept_with(self.as_fd(), flags) {
                    Err(Errno::INTR) => {}
                    other => break other?,
                }
            };
            return Ok((Stream::Unix(UnixStream::from(fd)), Peer::Unix));
        }
        let (fd, addr) = loop {
            match rnet::acceptfrom_with(self.as_fd(), flags) {
                Err(Errno::INTR) => {}
                other => break other?,
            }
        };
        match self.sock {
            Sock::Tcp(_) => {
                // TCP always reports the peer; without one the connection
                // is already gone, which is what ECONNABORTED says.
                let peer = addr
                    .and_then(|a| SocketAddr::try_from(a).ok())
                    .ok_or_else(|| io::Error::from(Errno::CONNABORTED))?;
                let stream = TcpStream::from(fd);
                if !self.nodelay_inherited {
                    // Ignored: this fails only once the peer has reset the
                    // connection, and the first read or write reports that.
                    let _ = stream.set_nodelay(true);
                }
                Ok((Stream::Tcp(stream), Peer::Tcp(peer)))
            }
            Sock::Unix(_) => Ok((Stream::Unix(UnixStream::from(fd)), Peer::Unix)),
        }
    }

    /// Switches the listener between blocking and non-blocking accepts.
    /// For an inherited socket this changes the open file description that
    /// the parent (and its other children) share.
    ///
    /// # Errors
    ///
    /// The `fcntl`/`ioctl` error.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match &self.sock {
            Sock::Tcp(l) => l.set_nonblocking(nonblocking),
            Sock::Unix(l) => l.set_nonblocking(nonblocking),
        }
    }

    /// The address listened on, for a banner such as `listening on
    /// 127.0.0.1:8000` or `listening on unix:/run/app.sock`. A Unix socket
    /// without a path (abstract or unnamed, e.g. from systemd) reports its
    /// descriptor as [`Addr::Fd`].
    ///
    /// # Errors
    ///
    /// The `getsockname(2)` error.
    pub fn local_addr(&self) -> io::Result<Addr> {
        match &self.sock {
            Sock::Tcp(l) => l.local_addr().map(Addr::Ip),
            Sock::Unix(l) => Ok(match l.local_addr()?.as_pathname() {
                Some(p) => Addr::Unix(p.to_path_buf()),
                None => Addr::Fd(l.as_raw_fd()),
            }),
        }
    }

    /// Whether this is a Unix-domain socket (otherwise TCP).
    #[must_use]
    pub fn is_unix(&self) -> bool {
        matches!(self.sock, Sock::Unix(_))
    }

    /// The socket's name from `LISTEN_FDNAMES` (systemd's `FileDescriptorName=`),
    /// for listeners from [`systemd_listeners`] when it was set.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// A second handle on the same socket (a close-on-exec duplicate), e.g.
    /// for another accepting thread.
    ///
    /// # Errors
    ///
    /// The `dup` error (e.g. `EMFILE`).
    pub fn try_clone(&self) -> io::Result<Listener> {
        let sock = match &self.sock {
            Sock::Tcp(l) => Sock::Tcp(l.try_clone()?),
            Sock::Unix(l) => Sock::Unix(l.try_clone()?),
        };
        Ok(Listener {
            sock,
            name: self.name.clone(),
            nodelay_inherited: self.nodelay_inherited,
        })
    }
}

/// Is `fd` a listening stream socket, and of which family? Only borrows it.
fn inspect_listener(fd: BorrowedFd<'_>, n: RawFd) -> Result<Family, Error> {
    match sockopt::socket_acceptconn(fd) {
        Ok(true) => {}
        Ok(false) | Err(Errno::NOTSOCK) => {
            return Err(Error::new(ErrorKind::NotListening { fd: n }));
        }
        Err(Errno::BADF) => return Err(Error::with_io(ErrorKind::BadFd { fd: n }, Errno::BADF)),
        Err(e) => return Err(Error::with_io(ErrorKind::NotListening { fd: n }, e)),
    }
    let unsupported = |what: String| Error::new(ErrorKind::Unsupported { fd: n, what });
    let ty = sockopt::socket_type(fd)
        .map_err(|e| Error::with_io(ErrorKind::NotListening { fd: n }, e))?;
    if ty != SocketType::STREAM {
        return Err(unsupported(format!("socket type {}", ty.as_raw())));
    }
    let family = rnet::getsockname(fd)
        .map_err(|e| Error::with_io(ErrorKind::NotListening { fd: n }, e))?
        .address_family();
    if family == AddressFamily::INET || family == AddressFamily::INET6 {
        Ok(Family::Ip)
    } else if family == AddressFamily::UNIX {
        Ok(Family::Unix)
    } else {
        Err(unsupported(format!("address family {}", family.as_raw())))
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.sock {
            Sock::Tcp(l) => l.as_fd(),
            Sock::Unix(l) => l.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<Listener> for OwnedFd {
    fn from(l: Listener) -> OwnedFd {
        match l.sock {
            Sock::Tcp(l) => l.into(),
            Sock::Unix(l) => l.into(),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Listener {
        Listener::new(Sock::Tcp(l))
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Listener {
        Listener::new(Sock::Unix(l))
    }
}

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection (with `TCP_NODELAY` set).
    Tcp(TcpStream),
    /// A Unix-domain connection.
    Unix(UnixStream),
}

impl Stream {
    /// Switches the stream between blocking and non-blocking I/O.
    ///
    /// # Errors
    ///
    /// The `fcntl`/`ioctl` error.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(nonblocking),
            Stream::Unix(s) => s.set_nonblocking(nonblocking),
        }
    }

    /// Sets the read timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// The `setsockopt` error; a zero duration is `InvalidInput`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Unix(s) => s.set_read_timeout(timeout),
        }
    }

    /// Sets the write timeout (`None`: wait forever).
    ///
    /// # Errors
    ///
    /// The `setsockopt` error; a zero duration is `InvalidInput`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(timeout),
            Stream::Unix(s) => s.set_write_timeout(timeout),
        }
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// The `shutdown(2)` error (e.g. `ENOTCONN` after the peer left).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
            Stream::Unix(s) => (&*s).write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl From<Stream> for OwnedFd {
    fn from(s: Stream) -> OwnedFd {
        match s {
            Stream::Tcp(s) => s.into(),
            Stream::Unix(s) => s.into(),
        }
    }
}

/// Who connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A TCP peer's address and port.
    Tcp(SocketAddr),
    /// A Unix-domain peer (clients connect from unnamed sockets).
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(sa) => write!(f, "{sa}"),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

// ---------------------------------------------------------------------------
// Accept errors
// ---------------------------------------------------------------------------

/// Errors after which an accept loop should back off briefly and retry,
/// rather than give up on the listener:
///
/// - out of resources: `EMFILE`, `ENFILE` (descriptors), `ENOBUFS`,
///   `ENOMEM` (kernel memory); back off, since retrying at once spins;
/// - the connection died before we took it: `ECONNABORTED`, and on Linux
///   the pending network errors accept(2) passes on (`EPROTO`, `ENETDOWN`,
///   `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`, `EHOSTUNREACH`, `EOPNOTSUPP`,
///   `ENETUNREACH`) and `EPERM` (refused by a firewall rule);
/// - `EINTR` (a signal; [`Listener::accept`] already retries it).
///
/// `WouldBlock` (`EAGAIN`) is not an error in this sense: it means no
/// connection is waiting, so check it first. Anything else (`EBADF`,
/// `EINVAL`: the listener itself is broken) is not transient.
#[must_use]
pub fn is_transient_accept_error(e: &io::Error) -> bool {
    const TRANSIENT: &[Errno] = &[
        Errno::MFILE,
        Errno::NFILE,
        Errno::NOBUFS,
        Errno::NOMEM,
        Errno::CONNABORTED,
        Errno::INTR,
        Errno::PROTO,
        Errno::NETDOWN,
        Errno::NOPROTOOPT,
        Errno::HOSTDOWN,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Errno::NONET,
        Errno::HOSTUNREACH,
        Errno::OPNOTSUPP,
        Errno::NETUNREACH,
        Errno::PERM,
    ];
    match Errno::from_io_error(e) {
        Some(errno) => TRANSIENT.contains(&errno),
        None => matches!(
            e.kind(),
            io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::OutOfMemory
        ),
    }
}

// ---------------------------------------------------------------------------
// Inherited sockets
// ---------------------------------------------------------------------------

/// Whether fd 0 is a listening socket, by FastCGI 1.0 §2.2's test: it is a
/// socket (`fstat`: `S_ISSOCK`) and `getpeername(0)` fails with `ENOTCONN`.
///
/// A connected socket (Apache mod_cgid hands CGI scripts one as stdin), a
/// pipe, a file, a tty, `/dev/null` or a closed fd 0 all give `false`. The
/// test only reads; fd 0 is not changed. An unconnected socket that is not
/// listening passes it too; [`Listener::from_fd0`] then refuses it with
/// [`ErrorKind::NotListening`].
#[must_use]
pub fn fd0_is_listener() -> bool {
    fd_is_listener(io::stdin().as_fd())
}

fn fd_is_listener(fd: BorrowedFd<'_>) -> bool {
    let Ok(stat) = rustix::fs::fstat(fd) else {
        return false;
    };
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return false;
    }
    matches!(rnet::getpeername(fd), Err(Errno::NOTCONN))
}

/// The listening sockets systemd passed us (socket activation).
///
/// When `LISTEN_PID` is this process's id and `LISTEN_FDS` is n ≥ 1, these
/// are descriptors 3 to 3+n−1, in order, each checked to be a listening TCP
/// or Unix stream socket and adopted as by [`Listener::from_inherited_fd`].
/// Names from `LISTEN_FDNAMES` (colon-separated) are kept, see
/// [`Listener::name`]. Otherwise (no `LISTEN_PID`, another process's pid,
/// `LISTEN_FDS` unset or 0) the result is empty.
///
/// The variables are left set: removing them needs `std::env::remove_var`,
/// which is `unsafe` in edition 2024. They do no harm, because a child
/// process has another pid and so ignores them. Call this once: a second
/// call finds the descriptors already adopted and fails.
///
/// # Errors
///
/// [`ErrorKind::Systemd`] for a malformed variable (or a name count that
/// does not match), and the errors of [`Listener::from_inherited_fd`] for a
/// descriptor that is not a listening stream socket (e.g. `Accept=yes`
/// passes connected sockets, which gatekit does not serve).
/// Listeners adopted before the failing descriptor are closed.
pub fn systemd_listeners() -> Result<Vec<Listener>, Error> {
    let Some(pid) = std::env::var_os("LISTEN_PID") else {
        return Ok(Vec::new());
    };
    if parse_env_number("LISTEN_PID", &pid)? != std::process::id() {
        return Ok(Vec::new());
    }
    let Some(count) = std::env::var_os("LISTEN_FDS") else {
        return Ok(Vec::new());
    };
    let count = parse_env_number("LISTEN_FDS", &count)?;
    if count > MAX_LISTEN_FDS {
        return Err(Error::new(ErrorKind::Systemd {
            var: "LISTEN_FDS",
            reason: format!("{count} descriptors is more than {MAX_LISTEN_FDS}"),
        }));
    }
    let names: Option<Vec<String>> = std::env::var_os("LISTEN_FDNAMES")
        .map(|v| v.to_string_lossy().split(':').map(str::to_owned).collect());
    if let Some(names) = &names {
        if names.len() != count as usize {
            return Err(Error::new(ErrorKind::Systemd {
                var: "LISTEN_FDNAMES",
                reason: format!("{} names, but LISTEN_FDS is {count}", names.len()),
            }));
        }
    }
    let mut listeners = Vec::with_capacity(count as usize);
    for (i, fd) in (LISTEN_FDS_START..).take(count as usize).enumerate() {
        let mut listener = Listener::from_inherited_fd(fd)?;
        listener.name = names
            .as_ref()
            .and_then(|n| n.get(i))
            .filter(|n| !n.is_empty())
            .cloned();
        listeners.push(listener);
    }
    Ok(listeners)
}

fn parse_env_number(var: &'static str, value: &OsStr) -> Result<u32, Error> {
    let bytes = value.as_bytes();
    let parsed = std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok());
    parsed.ok_or_else(|| {
        Error::new(ErrorKind::Systemd {
            var,
            reason: format!("{:?} is not a number", value.to_string_lossy()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_lowercases_and_drops_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(Errno::ACCESS.raw_os_error());
        assert_eq!(describe(&e), "permission denied");
        let e = io::Error::from_raw_os_error(Errno::ADDRINUSE.raw_os_error());
        assert_eq!(describe(&e), "address already in use");
        assert_eq!(describe(&io::Error::other("EOF early")), "EOF early");
    }

    #[test]
    fn options_validation_rejects_out_of_range_values() {
        let mut o = ListenOptions {
            unix_mode: Some(0o10000),
            ..ListenOptions::default()
        };
        assert!(matches!(
            o.validate().map_err(|e| e.kind),
            Err(ErrorKind::InvalidOption { .. })
        ));
        o.unix_mode = Some(0o7777);
        assert!(o.validate().is_ok());
        o.unix_uid = Some(u32::MAX);
        assert!(o.validate().is_err());
        o.unix_uid = None;
        o.unix_gid = Some(u32::MAX);
        assert!(o.validate().is_err());
    }

    #[test]
    fn backlog_beyond_i32_is_clamped() {
        let mut o = ListenOptions::default();
        assert_eq!(o.backlog(), 1024);
        o.backlog = u32::MAX;
        assert_eq!(o.backlog(), i32::MAX);
    }

    #[test]
    fn env_numbers_are_plain_decimal() {
        assert_eq!(
            parse_env_number("LISTEN_FDS", OsStr::new("2")).ok(),
            Some(2)
        );
        for bad in ["", "+1", "-1", "1 ", "x", "99999999999"] {
            let err = parse_env_number("LISTEN_FDS", OsStr::new(bad));
            assert!(err.is_err(), "{bad:?}");
        }
        let e = parse_env_number("LISTEN_PID", OsStr::new("abc")).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("invalid LISTEN_PID: \"abc\" is not a number")
        );
    }

    #[test]
    fn public_types_are_send_sync_and_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
        check::<Listener>();
        check::<Stream>();
        check::<Addr>();
        check::<ListenOptions>();
    }

    #[test]
    fn defer_accept_hands_over_a_connection_only_once_it_has_bytes() {
        use std::io::{Read, Write};
        let options = ListenOptions {
            defer_accept: Some(1),
            ..ListenOptions::default()
        };
        let listener = bind(&"127.0.0.1:0".parse().expect("addr"), &options).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let Ok(Addr::Ip(at)) = listener.local_addr() else {
            panic!("not TCP")
        };
        let mut client = std::net::TcpStream::connect(at).expect("connect");
        // Connected on the client's side, but not yet handed over.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let early = listener.accept_nonblocking().map(|_| ());
        assert_eq!(early.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
        client.write_all(b"request").expect("write");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let (mut stream, _) = loop {
            match listener.accept_nonblocking() {
                Ok(accepted) => break accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    assert!(std::time::Instant::now() < deadline, "never handed over");
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking");
        let mut got = [0u8; 7];
        stream.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"request");
    }

    #[test]
    fn pipe_and_connected_socket_are_not_listeners_in_process() {
        let (a, _b) = UnixStream::pair().expect("socketpair");
        assert!(!fd_is_listener(a.as_fd()));
        let file = tempfile::tempfile().expect("tempfile");
        assert!(!fd_is_listener(file.as_fd()));
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        assert!(fd_is_listener(l.as_fd()));
    }
}
