//! The request lifecycle, written once: wsgiref's `BaseHandler`.
//!
//! [`Gateway::run`] does what `BaseHandler.run` does: `setup_environ`, call
//! the app, `finish_response` (the sendfile hook first for file bodies, else
//! block by block), `close`. Errors before the headers are sent become
//! `error_output` (a plain 500 with no diagnostics for the client) and a log
//! line through `wsgi.errors` (`log_exception`); errors after the headers are
//! sent abort the response through [`Transport::abort`], so the client can
//! tell it is incomplete. A client that went away is not an error worth a log
//! line. A panic in the app is caught and handled like an error.

use std::any::Any;
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::app::{BoxError, ResponseSink, StartError, StartResponse};
use crate::body::{Body, FileWrapper};
use crate::date::{Clock, push_date};
use crate::environ::{Environ, Errors, Input};
use crate::headers::{Headers, push_latin1};
use crate::status::Status;
use crate::transport::Transport;
use crate::{App, HeaderError, util};

/// The HTTP version an origin server speaks (wsgiref's `http_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl HttpVersion {
    /// `1.0` or `1.1`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
        }
    }
}

/// Policy as data: wsgiref's `BaseHandler` class attributes.
///
/// Start from [`Config::gateway`] (behind a web server: a `Status:` header;
/// wsgiref's `BaseCGIHandler`) or [`Config::origin`] (the HTTP server itself:
/// a status line, `Date` and `Server`), then change fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `origin_server`: write an HTTP status line (true) or a CGI `Status:` header.
    pub origin_server: bool,
    /// Behind a web server, leave out `Status: 200 OK`: the status RFC 3875
    /// §6.3.3 has the web server assume when the header is absent, and what
    /// libfcgi and php-fpm programs send. It is still written when the
    /// response has a `Location` header (without a `Status`, that asks the
    /// web server for a redirect, §6.2.2-6.2.3) and for any other status or
    /// reason phrase. Default `false`, as wsgiref (which always writes it);
    /// the FastCGI and SCGI servers turn it on, sparing the web server the
    /// parsing of one header a response.
    pub omit_status_200: bool,
    /// `http_version`: the version in an origin server's status line.
    pub http_version: HttpVersion,
    /// `server_software`: the `Server` header and `SERVER_SOFTWARE` of an origin server.
    pub server_software: Option<String>,
    /// `wsgi_multithread`.
    pub multithread: bool,
    /// `wsgi_multiprocess`.
    pub multiprocess: bool,
    /// `wsgi_run_once`.
    pub run_once: bool,
    /// `os_environ`: variables copied into every environ before the request's own.
    pub os_environ: Vec<(Vec<u8>, Vec<u8>)>,
    /// `error_status`.
    pub error_status: Status,
    /// `error_headers`.
    pub error_headers: Headers,
    /// `error_body`: no diagnostics for the client, by default.
    pub error_body: Cow<'static, [u8]>,
    /// `traceback_limit`: how many causes of an error are logged (`None`: all).
    pub traceback_limit: Option<usize>,
    /// `wsgi_file_wrapper`: offer the file wrapper's sendfile path.
    pub file_wrapper: bool,
    /// Chunked responses when an origin server talks HTTP/1.1 and the length is unknown.
    pub chunked_responses: bool,
    /// The clock for `Date:` headers and access log times.
    pub clock: Clock,
    /// Where each request's access log line goes (Common Log Format), if
    /// anywhere: wsgiref's `log_request`. Default `None`.
    pub access_log: Option<Arc<AccessLog>>,
}

impl Config {
    /// Behind a web server: `Status:` header output (wsgiref's `BaseCGIHandler`).
    #[must_use]
    pub fn gateway() -> Config {
        let mut error_headers = Headers::new();
        error_headers.push_unchecked("Content-Type", "text/plain");
        Config {
            origin_server: false,
            omit_status_200: false,
            http_version: HttpVersion::Http10,
            server_software: None,
            multithread: true,
            multiprocess: true,
            run_once: false,
            os_environ: Vec::new(),
            error_status: Status::INTERNAL_SERVER_ERROR,
            error_headers,
            error_body: Cow::Borrowed(
                b"A server error occurred.  Please contact the administrator.",
            ),
            traceback_limit: None,
            file_wrapper: true,
            chunked_responses: true,
            clock: Clock::System,
            access_log: None,
        }
    }

    /// The HTTP server itself: status line, `Date` and `Server` headers, HTTP/1.1.
    #[must_use]
    pub fn origin() -> Config {
        Config {
            origin_server: true,
            http_version: HttpVersion::Http11,
            server_software: Some(concat!("gatekit/", env!("CARGO_PKG_VERSION")).to_owned()),
            ..Config::gateway()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::gateway()
    }
}

/// How a request ended, for the front-end (keep the connection or not) and
/// its access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Outcome {
    /// The status code sent, if a status was sent.
    pub status: Option<u16>,
    /// Body bytes handed to the transport.
    pub body_bytes: u64,
    /// The response was sent whole.
    pub complete: bool,
    /// The response's end is marked (`Content-Length` matched, chunked, or no
    /// body), so an HTTP connection may carry another request.
    pub delimited: bool,
    /// The application failed (error page or aborted response).
    pub app_failed: bool,
    /// An origin server may read another request from this connection: the
    /// front-end asked for it ([`Gateway::set_keep_alive`]), and the response
    /// went out whole and delimited, with no `Connection: close`.
    pub keep_alive: bool,
    /// The client went away.
    pub client_gone: bool,
}

/// Why a request did not end normally; logged, never shown to the client.
enum Failure {
    App(BoxError),
    Panic(String),
    Io(io::Error),
    NoStart,
    ShortBody { sent: u64, declared: u64 },
    BadRequest(&'static str),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::App(e) => write!(f, "application error: {e}"),
            Failure::Panic(msg) => write!(f, "application panicked: {msg}"),
            Failure::Io(e) => write!(f, "write failed: {e}"),
            Failure::NoStart => f.write_str("application returned without calling start_response"),
            Failure::ShortBody { sent, declared } => write!(
                f,
                "response body shorter than its Content-Length ({sent} of {declared} bytes); response aborted"
            ),
            Failure::BadRequest(why) => write!(f, "bad request: {why}"),
        }
    }
}

/// True for the I/O errors that mean the client went away: the set wsgiref's
/// `run()` swallows (`BrokenPipe`, `ConnectionReset`, `ConnectionAborted`).
#[must_use]
pub fn is_client_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// Looks through an error's chain for a client-gone I/O error.
fn chain_is_client_gone(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if is_client_gone(io) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

/// Writes `len` in hex followed by CRLF into `buf` (a chunk-size line);
/// returns its length. 16 hex digits + CRLF fit in 18 bytes.
fn chunk_size_line(mut len: usize, buf: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[len & 15];
        len >>= 4;
        if len == 0 || i == 0 {
            break;
        }
    }
    let n = digits.len() - i;
    buf[..n].copy_from_slice(&digits[i..]);
    buf[n..n + 2].copy_from_slice(b"\r\n");
    n + 2
}

thread_local! {
    /// Each thread's buffer for formatting response heads (see `send_headers`).
    static HEAD_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The request lifecycle over a [`Transport`]: wsgiref's `BaseHandler`.
///
/// One `Gateway` serves one request. After a normal run its state is cleared
/// (wsgiref's `close()`); after a failure it is kept for inspection
/// (test_wsgiref `testDontResetInternalStateOnException`).
pub struct Gateway<T: Transport> {
    transport: T,
    config: Arc<Config>,
    // State variables ("don't mess with these", as wsgiref says).
    environ: Option<Environ>,
    status: Option<Status>,
    headers: Option<Headers>,
    headers_sent: bool,
    bytes_sent: u64,
    content_length: Option<u64>,
    one_block: Option<u64>,
    chunked: bool,
    overflowed: bool,
    head: bool,
    client_modern: bool,
    client_http11: bool,
    client_gone: bool,
    bad_request: Option<&'static str>,
    keep_alive: Option<bool>,
    pending_log: Vec<String>,
}

impl<T: Transport> Gateway<T> {
    /// A gateway for one request over `transport`.
    pub fn new(transport: T, config: impl Into<Arc<Config>>) -> Gateway<T> {
        Gateway {
            transport,
            config: config.into(),
            environ: None,
            status: None,
            headers: None,
            headers_sent: false,
            bytes_sent: 0,
            content_length: None,
            one_block: None,
            chunked: false,
            overflowed: false,
            head: false,
            client_modern: true,
            client_http11: false,
            client_gone: false,
            bad_request: None,
            keep_alive: None,
            pending_log: Vec::new(),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives back the transport.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The environ, between `setup_environ` and `close`.
    pub fn environ(&self) -> Option<&Environ> {
        self.environ.as_ref()
    }

    /// The status the app set, until `close`.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// The headers the app set (plus the gateway's), until `close`.
    pub fn headers(&self) -> Option<&Headers> {
        self.headers.as_ref()
    }

    /// True once the headers went to the transport.
    pub fn headers_sent(&self) -> bool {
        self.headers_sent
    }

    /// For an origin server that keeps connections open: whether the client
    /// asked for this connection to stay open (HTTP/1.1 by default, HTTP/1.0
    /// with `Connection: keep-alive`). The gateway then writes
    /// `Connection: close` (or `keep-alive` for HTTP/1.0) as the response's
    /// framing allows, and reports the result in [`Outcome::keep_alive`].
    /// Without this call no `Connection` header is written.
    pub fn set_keep_alive(&mut self, wanted: bool) {
        self.keep_alive = Some(wanted);
    }

    /// Runs the app for this request (`run`): setup_environ, call,
    /// finish_response, close; errors handled as the module doc says.
    pub fn run<A: App + ?Sized>(&mut self, app: &A) -> Outcome {
        self.setup_environ();
        let mut app_failed = false;
        let result = self.call_and_finish(app);
        let complete = match result {
            Ok(()) => true,
            Err(failure) => {
                app_failed = !matches!(failure, Failure::Io(_) | Failure::BadRequest(_));
                self.handle_error(failure);
                false
            }
        };
        self.flush_pending_log();
        let status = self
            .status
            .as_ref()
            .filter(|_| self.headers_sent)
            .map(Status::code);
        let delimited = complete && self.is_delimited();
        let complete = complete && !self.client_gone;
        let outcome = Outcome {
            status,
            body_bytes: self.bytes_sent,
            complete,
            delimited,
            app_failed,
            keep_alive: complete && delimited && self.keep_alive == Some(true),
            client_gone: self.client_gone,
        };
        if let (Some(log), Some(env)) = (&self.config.access_log, &self.environ) {
            log.record(env, &outcome, self.config.clock.now());
        }
        if outcome.complete {
            self.close();
        }
        outcome
    }

    fn call_and_finish<A: App + ?Sized>(&mut self, app: &A) -> Result<(), Failure> {
        if let Some(why) = self.bad_request {
            return self.bad_request_output(why);
        }
        let mut environ = self.environ.take().unwrap_or_default();
        let called = catch_unwind(AssertUnwindSafe(|| {
            let mut sr = StartResponse::new(&mut *self);
            app.call(&mut environ, &mut sr)
        }));
        self.environ = Some(environ);
        let body = match called {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => return Err(Failure::App(e)),
            Err(payload) => return Err(Failure::Panic(panic_message(&*payload))),
        };
        if self.status.is_none() {
            return Err(Failure::NoStart);
        }
        match catch_unwind(AssertUnwindSafe(|| self.finish_response(body))) {
            Ok(r) => r,
            Err(payload) => Err(Failure::Panic(panic_message(&*payload))),
        }
    }

    /// Builds the environ (`setup_environ`): `os_environ`, then the
    /// transport's CGI variables, then the `wsgi.*` keys.
    pub fn setup_environ(&mut self) {
        let mut env = Environ::new();
        for (name, value) in &self.config.os_environ {
            env.set_bytes(name, value);
        }
        self.transport.add_cgi_vars(&mut env);
        let declared = match env.get_bytes("CONTENT_LENGTH") {
            None | Some(b"") => Ok(0),
            Some(v) => util::parse_content_length(v).ok_or("invalid CONTENT_LENGTH"),
        };
        let declared = declared.unwrap_or_else(|why| {
            self.bad_request = Some(why);
            0
        });
        env.input = Input::new(self.transport.input(), declared);
        env.errors = Errors::new(self.transport.errors());
        env.url_scheme = Cow::Borrowed(util::guess_scheme(&env));
        env.multithread = self.config.multithread;
        env.multiprocess = self.config.multiprocess;
        env.run_once = self.config.run_once;
        env.file_wrapper = self.config.file_wrapper;
        if self.config.origin_server {
            if let Some(sw) = &self.config.server_software {
                env.set_default_bytes(b"SERVER_SOFTWARE", sw.as_bytes());
            }
        }
        let protocol = env.get_bytes("SERVER_PROTOCOL").unwrap_or(b"HTTP/1.0");
        // Exact bytes first: what every web server sends, and cheaper than
        // comparing without case.
        self.client_http11 = protocol == b"HTTP/1.1" || protocol.eq_ignore_ascii_case(b"HTTP/1.1");
        self.client_modern = self.client_http11 || !protocol.eq_ignore_ascii_case(b"HTTP/0.9");
        self.head = env.get_bytes("REQUEST_METHOD") == Some(b"HEAD");
        self.environ = Some(env);
    }

    /// Sends the body (`finish_response`): a file through the sendfile hook
    /// when it can, else block by block; then `finish_content`.
    fn finish_response(&mut self, body: Body) -> Result<(), Failure> {
        match body {
            Body::Empty => {}
            Body::Bytes(b) => {
                if !self.headers_sent {
                    self.one_block = Some(b.len() as u64);
                }
                // No flush of its own: finish_content ends the response
                // right after, so head, block and any end-of-response framing
                // the transport adds can leave in one write.
                self.write_unflushed(&b)?;
            }
            Body::Stream(blocks) => {
                for block in blocks {
                    let block = block.map_err(Failure::App)?;
                    self.write_block(&block)?;
                }
            }
            Body::File(wrapper) => self.send_file(wrapper)?,
        }
        self.finish_content()
    }

    /// Sends a file body: headers, then `sendfile`, then reads for the rest.
    fn send_file(&mut self, mut wrapper: FileWrapper) -> Result<(), Failure> {
        if self.try_offload(&wrapper) {
            // The web server sends the file; finish_content sends the head.
            return Ok(());
        }
        if let (true, Some(remaining)) = (self.config.file_wrapper, wrapper.remaining()) {
            if !self.headers_sent {
                self.one_block = Some(remaining);
                self.send_headers()?;
            }
            if !self.body_allowed() {
                return Ok(());
            }
            let room = self
                .content_length
                .map_or(u64::MAX, |cl| cl.saturating_sub(self.bytes_sent));
            let count = remaining.min(room);
            if count > 0 && !self.chunked {
                self.transport
                    .flush_before_sendfile()
                    .map_err(|e| self.io_failure(e))?;
                if let Some((file, offset, _)) = wrapper.as_file() {
                    let sent = self
                        .transport
                        .sendfile(file, offset, count)
                        .map_err(|e| self.io_failure(e))?;
                    self.bytes_sent += sent;
                    wrapper.advance(sent).map_err(|e| Failure::App(e.into()))?;
                }
            }
        } else if !self.body_allowed() && self.headers_sent {
            return Ok(());
        }
        let mut buf = vec![0; wrapper.block_size()];
        loop {
            if self.content_length.is_some_and(|cl| self.bytes_sent >= cl) {
                break;
            }
            let n = wrapper
                .read_block(&mut buf)
                .map_err(|e| Failure::App(e.into()))?;
            if n == 0 {
                break;
            }
            self.write_block(buf.get(..n).unwrap_or_default())?;
        }
        Ok(())
    }

    /// Hands a whole-file `200` body to the web server if the transport
    /// can ([`Transport::offload`]): its header replaces the body and any
    /// `Content-Length` the app set.
    fn try_offload(&mut self, wrapper: &FileWrapper) -> bool {
        let Some((file, 0, len)) = wrapper.as_file() else {
            return false;
        };
        if self.headers_sent
            || !self.config.file_wrapper
            || self.status.as_ref().map(Status::code) != Some(200)
            || self.content_length.is_some_and(|cl| cl != len)
        {
            return false;
        }
        let Some((name, value)) = self.transport.offload(file, len) else {
            return false;
        };
        let Some(headers) = self.headers.as_mut() else {
            return false;
        };
        if headers.set(&name, &value).is_err() {
            return false;
        }
        headers.remove("Content-Length");
        self.content_length = None;
        true
    }

    fn body_allowed(&self) -> bool {
        !self.head && !self.status.as_ref().is_some_and(Status::forbids_body)
    }

    /// wsgiref's `write`: headers first (on the first non-empty block), then
    /// the block, then a flush so nothing is delayed.
    fn write_block(&mut self, data: &[u8]) -> Result<(), Failure> {
        if self.write_unflushed(data)? {
            self.transport.flush().map_err(|e| self.io_failure(e))?;
        }
        Ok(())
    }

    /// [`write_block`](Self::write_block) without the flush; true if
    /// anything was written.
    fn write_unflushed(&mut self, data: &[u8]) -> Result<bool, Failure> {
        if self.status.is_none() {
            return Err(Failure::App("write() before start_response()".into()));
        }
        if data.is_empty() {
            return Ok(false);
        }
        if !self.headers_sent {
            self.send_headers()?;
        }
        self.write_body(data)?;
        Ok(true)
    }

    /// Writes body bytes, never more than the declared `Content-Length`,
    /// chunk-framed when chunking, and not at all for HEAD or bodiless statuses.
    fn write_body(&mut self, mut data: &[u8]) -> Result<(), Failure> {
        if let Some(cl) = self.content_length {
            let room = usize::try_from(cl.saturating_sub(self.bytes_sent)).unwrap_or(usize::MAX);
            if data.len() > room {
                if !self.overflowed {
                    self.overflowed = true;
                    self.pending_log.push(format!(
                        "response body longer than its Content-Length ({cl} bytes); the excess was not sent"
                    ));
                }
                data = data.get(..room).unwrap_or_default();
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        self.bytes_sent += data.len() as u64;
        if !self.body_allowed() {
            return Ok(());
        }
        let result = if self.chunked {
            // Size line, block, CRLF: three writes into the transport's
            // buffer, so the block is not copied into a frame of its own.
            let mut size = [0u8; 18];
            let n = chunk_size_line(data.len(), &mut size);
            self.transport
                .write(size.get(..n).unwrap_or_default())
                .and_then(|()| self.transport.write(data))
                .and_then(|()| self.transport.write(b"\r\n"))
        } else {
            self.transport.write(data)
        };
        result.map_err(|e| self.io_failure(e))
    }

    fn io_failure(&mut self, e: io::Error) -> Failure {
        if is_client_gone(&e) {
            self.client_gone = true;
        }
        Failure::Io(e)
    }

    /// Header defaults before sending (`cleanup_headers`): `Content-Length`
    /// from a one-block body or a sized file (`set_content_length`), else
    /// chunked framing for an HTTP/1.1 origin server.
    fn cleanup_headers(&mut self) {
        let forbids_body = self.status.as_ref().is_some_and(Status::forbids_body);
        let Some(headers) = self.headers.as_mut() else {
            return;
        };
        if self.content_length.is_none() && !forbids_body {
            if let Some(n) = self.one_block {
                let mut digits = [0u8; 20];
                headers.push_unchecked("Content-Length", util::format_u64(n, &mut digits));
                self.content_length = Some(n);
            } else if self.config.origin_server
                && self.config.chunked_responses
                && self.config.http_version == HttpVersion::Http11
                && self.client_http11
                && !self.head
            {
                headers.push_unchecked("Transfer-Encoding", "chunked");
                self.chunked = true;
            }
        }
    }

    /// Transmits the status and headers (`send_headers`, with `send_preamble`).
    fn send_headers(&mut self) -> Result<(), Failure> {
        self.cleanup_headers();
        self.headers_sent = true;
        if self.config.origin_server && !self.client_modern {
            // HTTP/0.9: no head at all.
            return Ok(());
        }
        let mut head = HEAD_BUF
            .try_with(|b| std::mem::take(&mut *b.borrow_mut()))
            .unwrap_or_default();
        head.clear();
        self.format_head(&mut head);
        let result = self.transport.write(&head);
        if head.capacity() <= 4096 {
            // Kept for this thread's next response head.
            let _ = HEAD_BUF.try_with(|b| {
                if let Ok(mut b) = b.try_borrow_mut() {
                    *b = head;
                }
            });
        }
        result.map_err(|e| self.io_failure(e))
    }

    /// The status line or `Status:` header, the headers and the blank line.
    fn format_head(&mut self, head: &mut Vec<u8>) {
        let status = self
            .status
            .as_ref()
            .map_or("500 Internal Server Error", Status::as_str);
        let headers = self.headers.as_ref();
        let has = |name: &str| headers.is_some_and(|h| h.contains(name));
        if self.config.origin_server {
            head.extend_from_slice(b"HTTP/");
            head.extend_from_slice(self.config.http_version.as_str().as_bytes());
            head.push(b' ');
            push_latin1(head, status);
            head.extend_from_slice(b"\r\n");
            if !has("Date") {
                head.extend_from_slice(b"Date: ");
                push_date(head, self.config.clock.now());
                head.extend_from_slice(b"\r\n");
            }
            if let Some(sw) = &self.config.server_software {
                if !has("Server") {
                    head.extend_from_slice(b"Server: ");
                    push_latin1(head, sw);
                    head.extend_from_slice(b"\r\n");
                }
            }
        } else if !(self.config.omit_status_200 && status == "200 OK" && !has("Location")) {
            head.extend_from_slice(b"Status: ");
            push_latin1(head, status);
            head.extend_from_slice(b"\r\n");
        }
        if let Some(h) = headers {
            h.write_lines(head);
        }
        if let (true, Some(wanted)) = (self.config.origin_server, self.keep_alive) {
            // The connection can carry another request only if this
            // response's end is marked; say which way it goes (RFC 9112 §9.3).
            let persist = wanted && self.is_delimited();
            if !persist {
                head.extend_from_slice(b"Connection: close\r\n");
            } else if !self.client_http11 {
                head.extend_from_slice(b"Connection: keep-alive\r\n");
            }
            self.keep_alive = Some(persist);
        }
        head.extend_from_slice(b"\r\n");
    }

    /// Makes sure headers and body were both sent (`finish_content`): a
    /// response with no body gets `Content-Length: 0` unless the app set one
    /// (so HEAD works, bpo-3839); a short body is an error; a chunked body
    /// gets its last chunk.
    fn finish_content(&mut self) -> Result<(), Failure> {
        if !self.headers_sent {
            let forbids_body = self.status.as_ref().is_some_and(Status::forbids_body);
            if self.content_length.is_none() && !forbids_body {
                self.one_block = Some(0);
            }
            self.send_headers()?;
        } else if let Some(declared) = self.content_length {
            if self.bytes_sent < declared && self.body_allowed() {
                return Err(Failure::ShortBody {
                    sent: self.bytes_sent,
                    declared,
                });
            }
        }
        if self.chunked {
            self.transport
                .write(b"0\r\n\r\n")
                .map_err(|e| self.io_failure(e))?;
        }
        self.transport.finish().map_err(|e| self.io_failure(e))
    }

    fn is_delimited(&self) -> bool {
        self.chunked
            || self.content_length.is_some()
            || self.head
            || self.status.as_ref().is_some_and(Status::forbids_body)
    }

    /// Handles a failure (`handle_error`): quiet for a departed client;
    /// otherwise `log_exception`, then `error_output` if the headers were not
    /// sent yet, else an aborted response.
    #[allow(clippy::needless_pass_by_value)] // a failure is handled once, then gone
    fn handle_error(&mut self, failure: Failure) {
        let gone = match &failure {
            Failure::Io(e) => is_client_gone(e),
            Failure::App(e) => chain_is_client_gone(&**e),
            _ => false,
        };
        if gone || self.client_gone {
            self.client_gone = true;
            return;
        }
        if let Failure::BadRequest(_) = failure {
            return;
        }
        self.log_exception(&failure);
        if matches!(failure, Failure::Io(_)) {
            // The transport itself failed: nothing more can be sent.
            self.transport.abort();
            return;
        }
        if self.headers_sent {
            self.transport.abort();
            return;
        }
        if let Err(second) = self.error_output() {
            if !self.client_gone {
                self.log_exception(&second);
                self.transport.abort();
            }
        }
    }

    /// Sends the configured error page (`error_output`).
    fn error_output(&mut self) -> Result<(), Failure> {
        let config = Arc::clone(&self.config);
        self.replace_response(config.error_status.clone(), config.error_headers.clone());
        self.finish_response(Body::Bytes(config.error_body.clone()))
    }

    fn bad_request_output(&mut self, why: &'static str) -> Result<(), Failure> {
        let mut headers = Headers::new();
        headers.push_unchecked("Content-Type", "text/plain");
        self.replace_response(Status::BAD_REQUEST, headers);
        self.pending_log.push(format!("bad request: {why}"));
        self.finish_response(Body::Bytes(Cow::Borrowed(b"Bad Request\n")))?;
        Err(Failure::BadRequest(why))
    }

    fn replace_response(&mut self, status: Status, headers: Headers) {
        self.status = Some(status);
        self.headers = Some(headers);
        self.content_length = None;
        self.one_block = None;
        self.chunked = false;
        self.overflowed = false;
        self.bytes_sent = 0;
    }

    /// Writes a failure to `wsgi.errors` (`log_exception`), with its causes
    /// up to `traceback_limit`.
    fn log_exception(&mut self, failure: &Failure) {
        let mut text = String::new();
        let (method, path) =
            self.environ
                .as_ref()
                .map_or((Cow::Borrowed("-"), Cow::Borrowed("")), |e| {
                    (
                        e.get_lossy("REQUEST_METHOD").unwrap_or(Cow::Borrowed("-")),
                        Cow::Owned(format!(
                            "{}{}",
                            e.get_lossy("SCRIPT_NAME").unwrap_or_default(),
                            e.get_lossy("PATH_INFO").unwrap_or_default()
                        )),
                    )
                });
        let _ = writeln!(text, "gatekit: {method} {path}: {failure}");
        if let Failure::App(e) = failure {
            let mut cause = e.source();
            let mut depth = 0;
            while let Some(c) = cause {
                if self
                    .config
                    .traceback_limit
                    .is_some_and(|limit| depth >= limit)
                {
                    break;
                }
                let _ = writeln!(text, "  caused by: {c}");
                cause = c.source();
                depth += 1;
            }
        }
        self.pending_log.push(text);
        self.flush_pending_log();
    }

    fn flush_pending_log(&mut self) {
        if self.pending_log.is_empty() {
            return;
        }
        let Some(env) = self.environ.as_mut() else {
            return;
        };
        for line in self.pending_log.drain(..) {
            let line = if line.ends_with('\n') {
                line
            } else {
                line + "\n"
            };
            // The error log is best effort: if it is gone too there is
            // nowhere left to report that.
            let _ = env.errors.write_all(line.as_bytes());
        }
        let _ = env.errors.flush();
    }

    /// Drops the per-request state (`close`).
    fn close(&mut self) {
        self.environ = None;
        self.status = None;
        self.headers = None;
    }
}

impl<T: Transport> ResponseSink for Gateway<T> {
    fn start_response(
        &mut self,
        status: Status,
        headers: Headers,
        error: Option<BoxError>,
    ) -> Result<(), StartError> {
        match error {
            Some(e) if self.headers_sent => return Err(StartError::HeadersSent(e)),
            None if self.status.is_some() => return Err(StartError::AlreadyStarted),
            Some(_) | None => {}
        }
        if headers.find_hop_by_hop().is_some() {
            return Err(StartError::Header(HeaderError::HopByHop));
        }
        let mut lengths = headers.get_all("Content-Length").into_iter();
        let content_length = match (lengths.next(), lengths.next()) {
            (None, _) => None,
            (Some(v), None) => Some(
                util::parse_content_length(v.as_bytes())
                    .ok_or_else(|| StartError::Rejected(format!("invalid Content-Length {v:?}")))?,
            ),
            (Some(_), Some(_)) => {
                return Err(StartError::Rejected(
                    "more than one Content-Length header".into(),
                ));
            }
        };
        self.status = Some(status);
        self.headers = Some(headers);
        self.content_length = content_length;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self.write_block(data) {
            Ok(()) => Ok(()),
            Err(Failure::Io(e)) => Err(e),
            Err(other) => Err(io::Error::other(other.to_string())),
        }
    }

    fn headers_sent(&self) -> bool {
        self.headers_sent
    }
}

impl<T: Transport + fmt::Debug> fmt::Debug for Gateway<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("transport", &self.transport)
            .field("status", &self.status)
            .field("headers_sent", &self.headers_sent)
            .field("bytes_sent", &self.bytes_sent)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_size_lines() {
        for (len, want) in [
            (0, "0\r\n"),
            (7, "7\r\n"),
            (255, "ff\r\n"),
            (65536, "10000\r\n"),
        ] {
            let mut buf = [0; 18];
            let n = super::chunk_size_line(len, &mut buf);
            assert_eq!(&buf[..n], want.as_bytes());
        }
        let mut buf = [0; 18];
        let n = super::chunk_size_line(usize::MAX, &mut buf);
        assert_eq!(&buf[..n], b"ffffffffffffffff\r\n");
    }
}
