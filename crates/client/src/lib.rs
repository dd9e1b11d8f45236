//! Clients for FastCGI, SCGI and HTTP backends: one request, or a bounded load.
//!
//! This is the library behind `gatekit request` and `gatekit bench`. It talks to a backend
//! directly, with no web server in between: php-fpm, a gatekit server, flup, any HTTP/1.1
//! origin.
//!
//! # Overview
//!
//! - [`Target`]: where the backend listens (`HOST:PORT`, `[V6]:PORT`, `unix:PATH`).
//! - [`Request`]: what to send, as a web server would describe it (method, path, headers,
//!   body, script file), turned into CGI variables ([`Request::cgi_params`]) for FastCGI and
//!   SCGI, or into a request line and headers for HTTP.
//! - [`Connection`]: one connection to a backend speaking one [`Protocol`]; [`send`] is the
//!   one-request shortcut. A [`Response`] holds the status, the headers, the body and, for
//!   FastCGI, the `STDERR` output and the application's exit status.
//! - [`mod@bench`]: a load generator, one thread per connection for a bounded time, with a
//!   log-linear latency [`bench::Histogram`].
//! - [`fastcgi`], [`scgi`], [`http`]: the per-protocol encoders and bounded decoders.
//!
//! # Example
//!
//! ```no_run
//! use gatekit_client::{Options, Protocol, Request, Target, send};
//!
//! let target: Target = "unix:/run/php/php8.2-fpm.sock".parse()?;
//! let mut request = Request::get("/hello.php?name=you");
//! request.script_filename = Some("/var/www/hello.php".into());
//! let response = send(Protocol::FastCgi, &target, &request, &Options::default())?;
//! println!("{} {}", response.status, String::from_utf8_lossy(&response.body));
//! # Ok::<(), gatekit_client::Error>(())
//! ```
//!
//! # Design
//!
//! Blocking sockets and threads, no async runtime: a request is a write and a few reads, and a
//! load generator with one thread per connection measures the backend rather than a scheduler.
//! FastCGI and SCGI heads are built with the same sans-IO codecs the servers use
//! (`gatekit_fastcgi::proto`, `gatekit_scgi::proto`), and HTTP heads are parsed with
//! `httparse`. Everything read from the backend is bounded: the head by
//! [`Options::max_head`], the whole response by [`Options::max_response`], so a hostile
//! backend cannot make the client allocate without limit.

// Reason: clippy's doc lint takes protocol names (FastCGI) for identifiers.
#![allow(clippy::doc_markdown)]

pub mod bench;
mod conn;
mod error;
pub mod fastcgi;
pub mod http;
mod request;
pub mod scgi;
mod target;

use std::time::Duration;

pub use conn::{Connection, PreparedRequest, send};
pub use error::Error;
pub use request::{Request, Response, parse_cgi_response};
pub use target::{Stream, Target};

/// The protocol a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// FastCGI 1.0, Responder role.
    FastCgi,
    /// SCGI: a netstring head and the body; the response runs to end of stream.
    Scgi,
    /// HTTP/1.1.
    Http,
}

impl Protocol {
    /// The protocol's lower-case name, as the command line spells it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::FastCgi => "fastcgi",
            Protocol::Scgi => "scgi",
            Protocol::Http => "http",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default for [`Options::max_response`]: 64 MiB.
pub const DEFAULT_MAX_RESPONSE: usize = 64 << 20;

/// Default for [`Options::max_head`]: 64 KiB.
pub const DEFAULT_MAX_HEAD: usize = 64 << 10;

/// How a client behaves: limits and timeouts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Largest response accepted, in bytes: body plus head (plus, for FastCGI, `STDERR`
    /// output). A larger one is [`Error::ResponseTooLarge`].
    pub max_response: usize,
    /// Largest response head (status line or `Status:` and headers), in bytes.
    pub max_head: usize,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for any one read or write on the socket.
    pub io_timeout: Duration,
    /// FastCGI: set `FCGI_KEEP_CONN` so the backend keeps the connection for another request.
    pub keep_conn: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_response: DEFAULT_MAX_RESPONSE,
            max_head: DEFAULT_MAX_HEAD,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            keep_conn: false,
        }
    }
}
