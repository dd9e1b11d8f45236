//! FastCGI 1.0 front-end for gatekit.
//!
//! Three layers:
//!
//! - [`server`]: the application server. [`make_server`] / [`Server`] run a gatekit
//!   [`App`](gatekit_core::App) behind nginx `fastcgi_pass`, Apache `mod_proxy_fcgi`, lighttpd
//!   `mod_fastcgi`, or on fd 0 under spawn-fcgi and mod_fcgid, on the shared socket engine of
//!   gatekit-server. All of FastCGI 1.0: the Responder, Authorizer and Filter roles,
//!   `FCGI_KEEP_CONN`, `GET_VALUES`, `ABORT_REQUEST` (as a cancellation flag), `STDERR` for
//!   `wsgi.errors`, `sendfile(2)` for file bodies. The module docs list each decision the spec
//!   leaves open.
//! - [`proto`]: the sans-IO wire codec: record headers and records ([`proto::decode_record`],
//!   [`proto::encode_record`], [`proto::encode_stream_data`]), the fixed-size `BEGIN_REQUEST` /
//!   `END_REQUEST` / `UNKNOWN_TYPE` bodies, name-value pairs with the size-limited, incremental
//!   [`proto::ParamsDecoder`], and the `GET_VALUES` management records.
//! - [`sdk`]: a blocking, low-level API in the style of the FastCGI SDK (libfcgi's
//!   `FCGX_Accept_r` loop) on the same codec: [`sdk::Listener`], a per-thread [`sdk::Acceptor`],
//!   and [`sdk::Request`] with its `STDIN` reader and `STDOUT` / `STDERR` writers.
//!
//! ```no_run
//! use gatekit_core::{Body, BoxError, Environ, StartResponse};
//!
//! fn hello(_: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
//!     sr.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(Body::from("Hello, world!\n"))
//! }
//!
//! // nginx: fastcgi_pass 127.0.0.1:9000; include fastcgi_params;
//! gatekit_fastcgi::make_server("127.0.0.1:9000", hello)?.serve_forever()?;
//! # Ok::<(), gatekit_fastcgi::server::Error>(())
//! ```
//!
//! The codec alone:
//!
//! # Example
//!
//! ```
//! use gatekit_fastcgi::proto::{
//!     decode_record, encode_pair, encode_stream_data, encode_stream_end, ParamsDecoder,
//!     RecordType,
//! };
//!
//! // What a web server sends: one PARAMS pair, then the empty record that ends the stream.
//! let mut pairs = Vec::new();
//! encode_pair(b"REQUEST_METHOD", b"GET", &mut pairs)?;
//! let mut wire = Vec::new();
//! encode_stream_data(RecordType::Params, 1, &pairs, &mut wire);
//! encode_stream_end(RecordType::Params, 1, &mut wire);
//!
//! // What the application does with it.
//! let mut params = ParamsDecoder::new(64 * 1024);
//! let mut rest = &wire[..];
//! while let Some((record, used)) = decode_record(rest)? {
//!     assert_eq!(record.record_type, RecordType::Params);
//!     params.feed(record.content)?;
//!     rest = &rest[used..];
//! }
//! let params = params.finish()?;
//! assert_eq!(params.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
//! # Ok::<(), gatekit_fastcgi::proto::Error>(())
//! ```
//!
//! # Design
//!
//! The codec is sans-IO: it sees `&[u8]`, borrows record content from the input, and appends its
//! output to a `Vec<u8>`. "Need more bytes" is `Ok(None)`, not an error, so the same code serves
//! blocking and event-driven servers and can be fuzzed and tested byte by byte without a socket.
//! Every length on the wire is checked before it is trusted: a truncated or hostile record is a
//! typed [`proto::Error`] or a wait for more input, never a panic or an allocation sized by the
//! peer.

// Reason: clippy's doc lint takes the protocol's name, FastCGI, for an identifier that needs
// backticks. (A `doc-valid-idents` entry in clippy.toml would let this go.)
#![allow(clippy::doc_markdown)]

mod idle;
pub mod proto;
pub mod sdk;
pub mod server;

pub use server::{Server, ServerConfig, make_server};
