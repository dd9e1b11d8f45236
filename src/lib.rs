//! gatekit: one web application, every classic gateway.
//!
//! Write an [`App`] once and run it as a CGI program (Apache `cgi-bin`),
//! as a FastCGI backend (nginx `fastcgi_pass`, Apache `mod_proxy_fcgi`,
//! lighttpd, spawn-fcgi, mod_fcgid), as an SCGI backend, or on gatekit's
//! own HTTP server. This crate re-exports [`gatekit_core`] (the
//! app contract and the request lifecycle, Python's `wsgiref` in Rust) and
//! the front-ends, and [`run`] picks the gateway the program was started under.
//!
//! ```no_run
//! use gatekit::{Body, BoxError, Environ, StartResponse};
//!
//! fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
//!     sr.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(Body::from("Hello, world!\n"))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     match gatekit::run(&hello) {
//!         Ok(code) => code,
//!         Err(e) => {
//!             eprintln!("hello: {e}");
//!             std::process::ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```
//!
//! # Features
//! - `cli` (default): the `gatekit` command-line tool (clap and anyhow live only there).
//! - `tower`: `gatekit::tower` (the gatekit-tower crate), which serves any `http`/tower
//!   service (an axum `Router`, say) as an [`App`]: `gatekit::run(gatekit::tower::app(router))`.

use std::fmt;
use std::process::ExitCode;

pub use gatekit_cgi as cgi;
pub use gatekit_core as core;
pub use gatekit_core::{
    App, Body, BoxError, Config, Environ, FileWrapper, Gateway, Headers, Outcome, StartResponse,
    Status, Transport, demo_app, echo_app, util, validate,
};
pub use gatekit_fastcgi as fastcgi;
pub use gatekit_http as http;
pub use gatekit_scgi as scgi;
pub use gatekit_server as server;
pub use gatekit_static as static_files;
#[cfg(feature = "tower")]
pub use gatekit_tower as tower;

/// The gateway a program was started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detected {
    /// A CGI request: `GATEWAY_INTERFACE` is set (RFC 3875 §4.1.4).
    Cgi,
    /// A FastCGI backend: fd 0 is a listening socket (FastCGI §2.2:
    /// `FCGI_LISTENSOCK_FILENO`, as spawn-fcgi and mod_fcgid start one).
    FastCgi,
    /// systemd socket activation: `LISTEN_PID` is this process and
    /// `LISTEN_FDS` is at least 1. Served as FastCGI.
    SocketActivation,
}

/// Looks at how the program was started. CGI is recognised by its
/// environment first, so a CGI program whose stdin is a socket (Apache
/// mod_cgid) is never taken for a FastCGI backend; then fd 0 is checked
/// the FastCGI spec's way (`getpeername` fails with `ENOTCONN`); then
/// systemd's variables.
#[must_use]
pub fn detect() -> Option<Detected> {
    if std::env::var_os("GATEWAY_INTERFACE").is_some() {
        return Some(Detected::Cgi);
    }
    if server::listen::fd0_is_listener() {
        return Some(Detected::FastCgi);
    }
    let ours = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    let some = std::env::var("LISTEN_FDS").is_ok_and(|n| n.parse::<u32>().is_ok_and(|n| n > 0));
    (ours && some).then_some(Detected::SocketActivation)
}

/// Why [`run`] could not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// The FastCGI server could not start.
    FastCgi(fastcgi::server::Error),
    /// The HTTP server could not start (e.g. 127.0.0.1:8000 is taken).
    Http(http::server::Error),
    /// The listening sockets passed in are unusable.
    Listen(server::listen::Error),
    /// Signal handlers could not be installed.
    Io(std::io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::FastCgi(e) => e.fmt(f),
            RunError::Http(e) => e.fmt(f),
            RunError::Listen(e) => e.fmt(f),
            RunError::Io(e) => write!(f, "cannot install signal handlers: {e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::FastCgi(e) => Some(e),
            RunError::Http(e) => Some(e),
            RunError::Listen(e) => Some(e),
            RunError::Io(e) => Some(e),
        }
    }
}

/// Where [`run`] serves HTTP when no gateway started the program.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8000";

/// Serves `app` under the gateway the program was started under and returns
/// the exit status to end with:
///
/// - one CGI request ([`Detected::Cgi`]);
/// - a FastCGI server on fd 0 or on systemd's sockets until SIGTERM, then
///   in-flight requests finish; its allow-list comes from
///   `FCGI_WEB_SERVER_ADDRS`;
/// - otherwise HTTP on [`DEFAULT_HTTP_ADDR`], with a line on stderr saying so.
///
/// # Errors
/// A server could not start.
pub fn run<A: App + 'static>(app: A) -> Result<ExitCode, RunError> {
    let listeners = match detect() {
        Some(Detected::Cgi) => return Ok(cgi::serve(&app).exit_code()),
        Some(Detected::FastCgi) => {
            vec![server::listen::Listener::from_fd0().map_err(RunError::Listen)?]
        }
        Some(Detected::SocketActivation) => {
            server::listen::systemd_listeners().map_err(RunError::Listen)?
        }
        None => {
            let server = http::Server::bind(DEFAULT_HTTP_ADDR, app, http::ServerConfig::default())
                .map_err(RunError::Http)?;
            eprintln!("serving HTTP on http://{DEFAULT_HTTP_ADDR}/ (Ctrl-C to stop)");
            server
                .shutdown_handle()
                .on_signals()
                .map_err(RunError::Io)?;
            server.serve_forever().map_err(RunError::Http)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let config = fastcgi::ServerConfig::default()
        .with_env_web_server_addrs()
        .map_err(RunError::FastCgi)?;
    let server = fastcgi::Server::from_listeners(listeners, app, config);
    server
        .shutdown_handle()
        .on_signals()
        .map_err(RunError::Io)?;
    server.serve_forever().map_err(RunError::FastCgi)?;
    Ok(ExitCode::SUCCESS)
}

// Keeps the README's example compiling.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
