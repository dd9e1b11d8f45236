//! The one application trait and `start_response` (PEP 3333 in Rust).

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::{Body, Environ, HeaderError, Headers, IntoHeaders, IntoStatus, Status, StatusError};

/// The error type applications return: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A web application, written once and run under every front-end: the WSGI
/// application callable.
///
/// `call` receives the request environment and the `start_response` handle,
/// must call [`StartResponse::start`] before it returns, and returns the body.
/// An `Err` or a panic becomes a 500 (or, after the headers were sent, an
/// aborted response) and a log line through `wsgi.errors`; it never takes the
/// process down.
///
/// Closures with the same signature are apps:
///
/// ```
/// use gatekit_core::{App, Body, BoxError, Environ, StartResponse};
/// fn hello(_env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
///     sr.start("200 OK", [("Content-Type", "text/plain")])?;
///     Ok(Body::from("Hello, world!\n"))
/// }
/// fn takes_app(_: impl App) {}
/// takes_app(hello);
/// ```
pub trait App: Send + Sync {
    /// Handles one request.
    ///
    /// # Errors
    /// Any error; the gateway turns it into an error response or an aborted one.
    fn call(
        &self,
        environ: &mut Environ,
        start_response: &mut StartResponse<'_>,
    ) -> Result<Body, BoxError>;
}

impl<F> App for F
where
    F: Fn(&mut Environ, &mut StartResponse<'_>) -> Result<Body, BoxError> + Send + Sync,
{
    fn call(&self, environ: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        self(environ, sr)
    }
}

// `&A` and `Box<A>` are not given impls: closures are (`&F` and `Box<F>` are
// `Fn` too, and the impls would overlap). Share an app with `Arc<A>`.
impl<T: App + ?Sized> App for Arc<T> {
    fn call(&self, environ: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        (**self).call(environ, sr)
    }
}

/// Why `start_response` refused a call.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// Called a second time without an error (PEP 3333: "a fatal error").
    AlreadyStarted,
    /// Called with an error after the headers were sent: PEP 3333 says the
    /// error must propagate, and here it is, handed back.
    HeadersSent(BoxError),
    /// The status line is malformed.
    Status(StatusError),
    /// A header name or value is malformed, or hop-by-hop.
    Header(HeaderError),
    /// A checking middleware (such as [`validate`](crate::validate)) refused the call.
    Rejected(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted => {
                f.write_str("start_response called twice without an error")
            }
            StartError::HeadersSent(_) => f.write_str("error after the response headers were sent"),
            StartError::Status(_) => f.write_str("invalid status"),
            StartError::Header(_) => f.write_str("invalid response header"),
            StartError::Rejected(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::HeadersSent(e) => Some(&**e),
            StartError::Status(e) => Some(e),
            StartError::Header(e) => Some(e),
            StartError::AlreadyStarted | StartError::Rejected(_) => None,
        }
    }
}

impl From<StatusError> for StartError {
    fn from(e: StatusError) -> Self {
        StartError::Status(e)
    }
}

impl From<HeaderError> for StartError {
    fn from(e: HeaderError) -> Self {
        StartError::Header(e)
    }
}

/// The receiving end of `start_response` and `write()`: implemented by the
/// gateway, and by middleware that wants to watch or change a response (as
/// WSGI middleware passes its own `start_response` down).
pub trait ResponseSink {
    /// Records the status and headers (PEP 3333 `start_response`).
    ///
    /// Called with `error: None` a second time: [`StartError::AlreadyStarted`].
    /// With an error before headers were sent: replaces status and headers.
    /// With an error after: returns [`StartError::HeadersSent`] carrying it.
    ///
    /// # Errors
    /// As above, plus malformed status or headers.
    fn start_response(
        &mut self,
        status: Status,
        headers: Headers,
        error: Option<BoxError>,
    ) -> Result<(), StartError>;

    /// Sends body bytes at once (PEP 3333's `write()` callable); the headers
    /// go first, on the first non-empty write.
    ///
    /// # Errors
    /// The transport failed, or `start_response` was not called yet.
    fn write(&mut self, data: &[u8]) -> io::Result<()>;

    /// True once the status line and headers have gone to the transport.
    fn headers_sent(&self) -> bool;
}

/// The `start_response` callable handed to [`App::call`].
pub struct StartResponse<'a> {
    sink: &'a mut dyn ResponseSink,
}

impl<'a> StartResponse<'a> {
    /// Wraps a sink (the gateway, or a middleware's own).
    pub fn new(sink: &'a mut dyn ResponseSink) -> StartResponse<'a> {
        StartResponse { sink }
    }

    /// Sets the status and headers, and returns the `write()` handle.
    ///
    /// The status is `NNN reason` (or a [`Status`], or a `u16`); the headers are
    /// a [`Headers`] or a list of `(name, value)` pairs. Hop-by-hop headers,
    /// CR/LF and non-latin-1 text are refused, in every build.
    ///
    /// # Errors
    /// A second call, or a malformed status or header.
    pub fn start(
        &mut self,
        status: impl IntoStatus,
        headers: impl IntoHeaders,
    ) -> Result<Writer<'_, 'a>, StartError> {
        let status = status.into_status()?;
        let headers = headers.into_headers()?;
        self.sink.start_response(status, headers, None)?;
        Ok(Writer { sr: self })
    }

    /// `start_response(status, headers, exc_info)`: replaces the status and
    /// headers after an error, if they were not sent yet; otherwise hands the
    /// error back inside [`StartError::HeadersSent`] so it propagates.
    ///
    /// # Errors
    /// As above.
    pub fn start_with_error(
        &mut self,
        status: impl IntoStatus,
        headers: impl IntoHeaders,
        error: BoxError,
    ) -> Result<Writer<'_, 'a>, StartError> {
        if self.sink.headers_sent() {
            return Err(StartError::HeadersSent(error));
        }
        let status = status.into_status()?;
        let headers = headers.into_headers()?;
        self.sink.start_response(status, headers, Some(error))?;
        Ok(Writer { sr: self })
    }

    /// Sends bytes at once (the `write()` callable). Prefer returning a
    /// [`Body`]: then the gateway can set `Content-Length`.
    ///
    /// # Errors
    /// The transport failed (for instance the client went away).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.sink.write(data)
    }

    /// A `write()` handle, e.g. to use with `write!`.
    pub fn writer(&mut self) -> Writer<'_, 'a> {
        Writer { sr: self }
    }

    /// True once the headers have been sent.
    #[must_use]
    pub fn headers_sent(&self) -> bool {
        self.sink.headers_sent()
    }
}

impl fmt::Debug for StartResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartResponse")
            .field("headers_sent", &self.headers_sent())
            .finish()
    }
}

/// The `write()` callable returned by [`StartResponse::start`]; an [`io::Write`].
pub struct Writer<'s, 'a> {
    sr: &'s mut StartResponse<'a>,
}

impl io::Write for Writer<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sr.write(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for Writer<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writer")
    }
}
