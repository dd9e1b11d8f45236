//! gatekit-tower's integration tests: the example's axum router served by
//! gatekit's HTTP server (curl), behind real nginx over FastCGI and SCGI,
//! and as CGI (in-process, as a process, and under Apache mod_cgid).
//!
//! One test binary, so axum links once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

/// The example program; its `router()` is the app every test talks to.
#[path = "../../examples/axum_app.rs"]
#[allow(dead_code)]
mod example;

mod behind_nginx;
mod cgi;
mod common;
mod http_server;
