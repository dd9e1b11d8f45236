//! The client's error type.

use std::fmt;
use std::io;

/// What went wrong talking to a backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address is not `HOST:PORT`, `[V6]:PORT` or `unix:PATH`.
    InvalidAddress(String),
    /// The request cannot be expressed in the protocol (say, a NUL byte in an SCGI header, or a
    /// header name with a space).
    InvalidRequest(&'static str),
    /// Connecting failed.
    Connect {
        /// The address, as given.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing failed after the connection was made (a timeout is an
    /// [`io::ErrorKind::WouldBlock`] or [`io::ErrorKind::TimedOut`] error here).
    Io(io::Error),
    /// The backend closed the connection before the response was complete.
    UnexpectedEof,
    /// The response is larger than the configured cap.
    ResponseTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The response head is larger than the configured cap.
    HeadTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The backend broke the FastCGI record format.
    FastCgi(gatekit_fastcgi::proto::Error),
    /// The backend answered the FastCGI request with a protocol status other than
    /// `FCGI_REQUEST_COMPLETE` (it cannot multiplex, is overloaded, or does not know the role).
    FastCgiRejected(gatekit_fastcgi::proto::ProtocolStatus),
    /// The SCGI request head could not be encoded.
    Scgi(gatekit_scgi::proto::Error),
    /// The response does not follow the protocol; the text says how.
    BadResponse(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidAddress(addr) => write!(
                f,
                "invalid address {addr:?} (expected HOST:PORT, [V6]:PORT or unix:PATH)"
            ),
            Error::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            Error::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::UnexpectedEof => f.write_str("the backend closed the connection mid-response"),
            Error::ResponseTooLarge { limit } => {
                write!(f, "response larger than the {limit}-byte limit")
            }
            Error::HeadTooLarge { limit } => {
                write!(f, "response head larger than the {limit}-byte limit")
            }
            Error::FastCgi(e) => write!(f, "bad FastCGI response: {e}"),
            Error::FastCgiRejected(status) => {
                write!(f, "the FastCGI backend rejected the request: {status:?}")
            }
            Error::Scgi(e) => write!(f, "cannot encode the SCGI request: {e}"),
            Error::BadResponse(why) => write!(f, "bad response: {why}"),
        }
    }
}

// The variants' Display already includes the underlying error's text, so `source` stays
// `None`: a caller printing the chain would otherwise show it twice.
impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<gatekit_fastcgi::proto::Error> for Error {
    fn from(e: gatekit_fastcgi::proto::Error) -> Self {
        Error::FastCgi(e)
    }
}

impl From<gatekit_scgi::proto::Error> for Error {
    fn from(e: gatekit_scgi::proto::Error) -> Self {
        Error::Scgi(e)
    }
}

impl Error {
    /// Whether the error is a timeout on the socket.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        let kind = match self {
            Error::Io(e) | Error::Connect { source: e, .. } => e.kind(),
            _ => return false,
        };
        matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
    }
}
