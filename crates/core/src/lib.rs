//! gatekit-core: one application trait, one request lifecycle, every gateway.
//!
//! This crate is the Rust counterpart of Python's `wsgiref` (the PEP 3333
//! reference implementation). An application implements [`App`] once; the
//! [`Gateway`] runs it for one request over any [`Transport`], and the
//! front-end crates (`gatekit-cgi`, `gatekit-fastcgi`, `gatekit-scgi`,
//! `gatekit-http`) supply only the transport.
//!
//! # Overview
//!
//! | wsgiref | gatekit-core |
//! |---|---|
//! | the application callable | [`App`] (closures are apps) |
//! | `environ` | [`Environ`] (byte-exact variables + `wsgi.*` keys) |
//! | `start_response` / `write` | [`StartResponse`] / [`Writer`] |
//! | the returned iterable, `close()` | [`Body`]; dropping it is `close()` |
//! | `wsgi.file_wrapper`, `util.FileWrapper` | [`FileWrapper`] |
//! | `handlers.BaseHandler` | [`Gateway`] |
//! | `BaseHandler` class attributes | [`Config`] |
//! | `_write`, `_flush`, `get_stdin`, `get_stderr`, `add_cgi_vars`, `sendfile` | [`Transport`] |
//! | `handlers.SimpleHandler`, `BaseCGIHandler` | [`StreamTransport`] with [`Config::gateway`] |
//! | `headers.Headers` | [`Headers`] |
//! | `util.*` | [`util`] |
//! | `validate.validator` | [`validate::validator`] |
//! | `simple_server.demo_app` | [`demo_app`] |
//!
//! The full map is in `docs/wsgiref-map.md`.
//!
//! # Example
//!
//! ```
//! use gatekit_core::{Body, BoxError, Config, Environ, Gateway, StartResponse, StreamTransport};
//!
//! fn hello(env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
//!     let who = env.get("QUERY_STRING").unwrap_or("world").to_owned();
//!     sr.start("200 OK", [("Content-Type", "text/plain")])?;
//!     Ok(Body::from(format!("Hello, {who}!\n")))
//! }
//!
//! let vars = vec![("REQUEST_METHOD".into(), "GET".into()), ("QUERY_STRING".into(), "gatekit".into())];
//! let transport = StreamTransport::new(std::io::empty(), Vec::new(), std::io::sink(), vars);
//! let mut gateway = Gateway::new(transport, Config::gateway());
//! gateway.run(&hello);
//! assert!(gateway.transport().output().ends_with(b"\r\n\r\nHello, gatekit!\n"));
//! ```
//!
//! # Features
//!
//! - `testing`: the `testing` module, an in-memory transport for tests.
//!
//! # Design
//!
//! Two traits meet in the gateway: [`App`], which users implement, and
//! [`Transport`], which front-ends implement. Everything between them (the
//! status line or `Status:` header, `Content-Length` rules, chunking, error
//! pages, logging, panics) is written once, in [`Gateway`], so every
//! front-end behaves the same and stays small. Policy is data ([`Config`]),
//! not subclassing. The crate has no network code and no async runtime, so
//! a CGI binary built on it starts in about a millisecond.

pub mod access_log;
mod app;
mod body;
mod date;
mod demo;
mod environ;
mod gateway;
mod headers;
mod pool;
mod status;
mod transport;
mod vars;

pub mod util;
pub mod validate;

#[cfg(feature = "testing")]
pub mod testing;

pub use access_log::AccessLog;
pub use app::{App, BoxError, ResponseSink, StartError, StartResponse, Writer};
pub use body::{BlockStream, Body, Chunk, FileWrapper, IntoChunk};
pub use date::{Clock, format_date_time};
pub use demo::{demo_app, echo_app};
pub use environ::{Environ, Errors, Input, ValueBuf};
pub use gateway::{Config, Gateway, HttpVersion, Outcome, is_client_gone};
pub use headers::{
    HeaderError, Headers, HeadersIter, IntoHeaders, check_name, check_value, is_tchar,
    latin1_to_string,
};
pub use status::{IntoStatus, Status, StatusError};
pub use transport::{StreamTransport, Transport};
