//! gatekit's process-level and interop tests: the built `gatekit` binary run
//! as a CGI child, and behind real web servers started on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod util;

mod apache_cgi;
mod cgi_process;
mod cli_apps;
mod cli_client;
mod fastcgi_binary;
mod http_server;
