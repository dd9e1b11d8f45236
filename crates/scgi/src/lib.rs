//! SCGI front-end for gatekit: run an [`App`](gatekit_core::App) behind
//! nginx `scgi_pass`, Apache `mod_proxy_scgi` or lighttpd `mod_scgi`.
//!
//! # Overview
//!
//! - [`make_server`] / [`Server`]: the SCGI server, on gatekit-server's epoll
//!   engine (TCP, Unix socket, inherited or socket-activated listeners; a
//!   worker pool; bodies spooled before the app runs; graceful drain).
//! - [`proto`]: the sans-IO codec. [`proto::decode_request`] reads an SCGI
//!   request head (a netstring of NUL-separated header pairs) from a byte
//!   buffer and [`proto::encode_request`] writes one.
//! - [`IpNet`] ([`allow`]): the allow-list of TCP peers (loopback by default).
//!
//! Deployment recipes for the three web servers are in `docs/deploy-scgi.md`.
//!
//! # Example
//!
//! ```no_run
//! use gatekit_core::{Body, BoxError, Environ, StartResponse};
//!
//! fn hello(env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
//!     let path = env.get_lossy("PATH_INFO").unwrap_or_default().into_owned();
//!     sr.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(Body::from(format!("Hello from {path}\n")))
//! }
//!
//! let server = gatekit_scgi::make_server("127.0.0.1:4000", hello)?;
//! server.shutdown_handle().on_signals()?; // SIGTERM: finish in-flight requests, return
//! server.serve_forever()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The codec alone:
//!
//! ```
//! use gatekit_scgi::proto::{decode_request, encode_request, Limits};
//!
//! let mut wire = Vec::new();
//! encode_request(&[("CONTENT_LENGTH", "5"), ("SCGI", "1"), ("REQUEST_METHOD", "POST")], &mut wire)?;
//! wire.extend_from_slice(b"hello");
//!
//! let (request, consumed) = decode_request(&wire, &Limits::default())?
//!     .expect("the whole head is in the buffer");
//! assert_eq!(request.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
//! assert_eq!(&wire[consumed..], b"hello");
//! assert_eq!(request.content_length(), 5);
//! # Ok::<(), gatekit_scgi::proto::Error>(())
//! ```
//!
//! # Design
//!
//! The codec is sans-IO: it sees `&[u8]` and returns borrowed slices, never reading or blocking.
//! "Need more bytes" is `Ok(None)`, not an error, so the same code serves blocking and
//! event-driven servers, and it can be fuzzed and tested byte by byte without a socket. It is
//! strict (SCGI protocol.txt §3) and bounded by [`proto::Limits`] before it waits for input.
//!
//! The server is a small `Protocol` over that codec: it decodes the head,
//! spools exactly `CONTENT_LENGTH` body bytes, runs the app through the
//! core `Gateway` with CGI-style output (`Status:` header), and closes the
//! connection (SCGI serves one request per connection). Malformed heads get
//! a `Status: 400` (431, 413 for the size limits) and a close, never a panic.

/// The allow-list of TCP peers (shared with the other front-ends).
pub use gatekit_server::allow;
pub mod proto;
pub mod server;

pub use allow::IpNet;
pub use server::{Server, ServerConfig, make_server};
