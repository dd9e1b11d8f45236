//! gatekit: one web application, every classic gateway.
//!
//! Write an [`App`] once and run it as a CGI program (Apache `cgi-bin`),
//! and, as their front-ends land, as a FastCGI or SCGI backend or on
//! gatekit's own HTTP server. This crate re-exports [`gatekit_core`] (the
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

/// The gateway a program was started under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detected {
    /// A CGI request: `GATEWAY_INTERFACE` is set (RFC 3875 §4.1.4).
    Cgi,
}

/// Looks at how the program was started. CGI is recognised by its
/// environment first, so a CGI program whose stdin is a socket (Apache
/// mod_cgid) is never taken for a FastCGI backend.
#[must_use]
pub fn detect() -> Option<Detected> {
    std::env::var_os("GATEWAY_INTERFACE").map(|_| Detected::Cgi)
}

/// Why [`run`] could not serve.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// No gateway was recognised.
    NoGateway,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NoGateway => f.write_str(
                "no gateway detected: run under a web server as CGI (GATEWAY_INTERFACE set)",
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Serves `app` under the gateway the program was started under and returns
/// the exit status to end with.
///
/// # Errors
/// [`RunError::NoGateway`] when none is recognised.
pub fn run<A: App + ?Sized>(app: &A) -> Result<ExitCode, RunError> {
    match detect() {
        Some(Detected::Cgi) => Ok(cgi::serve(app).exit_code()),
        None => Err(RunError::NoGateway),
    }
}

// Keeps the README's example compiling.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
