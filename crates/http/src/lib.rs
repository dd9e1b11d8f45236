//! HTTP/1.x origin-server front-end for gatekit (the `wsgiref.simple_server`
//! equivalent).
//!
//! # Overview
//!
//! - [`make_server`] / [`Server`]: the server (`wsgiref.simple_server.make_server`,
//!   `WSGIServer.serve_forever`), on gatekit-server's engine.
//! - [`proto`]: the sans-IO request codec. [`proto::parse_head`] turns bytes into
//!   a [`proto::RequestHead`] with its body framing, keep-alive and
//!   `Expect: 100-continue` already decided; [`proto::ChunkedDecoder`] removes the
//!   chunked transfer coding from a request body; [`proto::cgi_vars`] maps a head
//!   to CGI meta-variables (RFC 3875 §4.1, PEP 3333 "environ Variables").
//!
//! # Design
//!
//! The codec takes `&[u8]` and never touches a socket or a clock, so it can be
//! fuzzed, tested byte by byte and reused by any I/O engine. Parsing is strict:
//! anything that two HTTP implementations could frame differently (request
//! smuggling) is an error that the server answers with [`proto::Error::status`]
//! and then closes the connection.

pub mod proto;
pub mod server;

pub use server::{Server, ServerConfig, make_server};
