//! The SCGI server for real: raw SCGI over sockets (golden bytes, every
//! malformed head, the allow-list), and behind real nginx `scgi_pass`,
//! Apache `mod_proxy_scgi` and lighttpd `mod_scgi` (docs/deploy-scgi.md).
//! Each test starts its own in-process server on a free port and stops it
//! with its shutdown handle.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod common;
mod raw;
mod web;
