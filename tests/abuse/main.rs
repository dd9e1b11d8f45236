//! Hostile clients against every running front-end, over real sockets.
//!
//! Each test starts one `gatekit serve` process (FastCGI, SCGI or HTTP) on
//! loopback and throws a group of hostile cases at it: truncated input at
//! every offset, lengths at their boundaries, oversized parts, unknown
//! record types and roles, aborts, half-closed and reset connections,
//! slowloris and slow readers, pipelined floods. Each case must be answered
//! as the protocol says or closed (a read timeout turns a hang into a
//! failure), a normal request must be served right after, and at the end
//! the process must be alive, below a memory bound and without "panicked"
//! on its stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod running;

mod fastcgi;
mod http;
mod scgi;
