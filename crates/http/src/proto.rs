//! Sans-IO HTTP/1.x request codec: request heads, chunked request bodies and the
//! CGI view of a request.
//!
//! Everything here takes `&[u8]` and returns owned values or slices of the
//! input; nothing reads a socket or a clock. Responses are encoded by the core
//! crate, not here.
//!
//! - [`parse_head`] parses a request head (request-line and header section,
//!   RFC 9112 §2-§5) and decides its body framing (§6.3), persistence (§9.3)
//!   and `Expect` handling (RFC 9110 §10.1.1). `Ok(None)` means "need more
//!   bytes", as in httparse.
//! - [`ChunkedDecoder`] removes the chunked transfer coding (RFC 9112 §7.1)
//!   incrementally, over input split anywhere, in constant memory.
//! - [`cgi_vars`] and [`percent_decode`] turn a head into CGI meta-variables
//!   (RFC 3875 §4.1, PEP 3333 "environ Variables").
//!
//! # Strictness
//!
//! Every input that two HTTP/1.1 implementations could frame differently is an
//! [`Error`]: the server answers [`Error::status`] and closes the connection.
//! That covers `Content-Length` together with `Transfer-Encoding`, repeated or
//! listed `Content-Length`, transfer codings other than a final `chunked`,
//! `Transfer-Encoding` on HTTP/1.0, obs-fold, whitespace before the colon, and
//! line endings other than CRLF. httparse (used for the request-line and field
//! syntax) accepts a bare LF as a line ending; this module does not:
//!
//! > Although the line terminator for the start-line and fields is the sequence
//! > CRLF, a recipient MAY recognize a single LF as a line terminator and ignore
//! > any preceding CR. (RFC 9112 §2.2)
//!
//! "MAY" is a leniency that front proxies do not all share, so a bare LF is
//! rejected with 400 here, in the head, in chunk framing and in trailers alike.

use std::fmt;

use gatekit_core::util::format_u64;
use gatekit_core::{Environ, is_tchar};

/// Default for [`Limits::max_head`]: 64 KiB for the request-line plus all
/// header fields (nginx's `large_client_header_buffers` allows 4 × 8 KiB,
/// Apache's `LimitRequestFieldSize` × `LimitRequestFields` far more).
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;
/// Default for [`Limits::max_headers`]: 100 header field lines (Apache's
/// `LimitRequestFields`).
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Default for [`Limits::max_target`]: 8 KiB request-target. RFC 9112 §3
/// recommends supporting request-lines of at least 8000 octets.
pub const DEFAULT_MAX_TARGET: usize = 8 * 1024;
/// Default for [`Limits::max_chunk_ext`]: 16 KiB of chunk extensions and
/// whitespace per body, counted over all chunks together.
pub const DEFAULT_MAX_CHUNK_EXT: usize = 16 * 1024;
/// Default for [`Limits::max_trailers`]: 16 KiB of trailer section.
pub const DEFAULT_MAX_TRAILERS: usize = 16 * 1024;

/// Most hex digits a chunk-size may have: 16 digits are 64 bits, so any
/// accepted chunk-size fits a `u64` (RFC 9112 §7.1: "Recipients MUST anticipate
/// potentially large hexadecimal numerals and prevent parsing errors due to
/// integer conversion overflows").
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// Size limits for request heads and chunked bodies.
///
/// Breaching one is an [`Error`] whose [`Error::status`] is the answer the
/// server owes the client (431, 414, 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of a request head, counted from the first byte of the buffer
    /// (empty lines before the request-line included) to the end of the empty
    /// line that closes the header section. Beyond it: [`Error::HeadTooLarge`].
    pub max_head: usize,
    /// Most header field lines in a head. Beyond it: [`Error::TooManyHeaders`].
    pub max_headers: usize,
    /// Most bytes of the request-target. Beyond it: [`Error::UriTooLong`].
    pub max_target: usize,
    /// Most bytes of chunk extensions (and the whitespace around them) in one
    /// chunked body, all chunks together. Beyond it:
    /// [`Error::ChunkExtensionTooLong`]. Counting per body rather than per chunk
    /// keeps a stream of tiny chunks from carrying unbounded non-data bytes.
    pub max_chunk_ext: usize,
    /// Most bytes of the trailer section of a chunked body (its field lines and
    /// the final CRLF). Beyond it: [`Error::TrailersTooLarge`].
    pub max_trailers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: DEFAULT_MAX_HEAD,
            max_headers: DEFAULT_MAX_HEADERS,
            max_target: DEFAULT_MAX_TARGET,
            max_chunk_ext: DEFAULT_MAX_CHUNK_EXT,
            max_trailers: DEFAULT_MAX_TRAILERS,
        }
    }
}

/// Why a request head or chunked body was refused.
///
/// After any of these the server answers [`Error::status`] and closes the
/// connection: the framing of whatever follows cannot be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The request-line is malformed (method, spacing, or what follows the
    /// version).
    BadRequestLine,
    /// The request-target is not origin-form, absolute-form (`http`/`https`
    /// only) or asterisk-form with `OPTIONS`; or it has a fragment, userinfo,
    /// or bytes outside printable ASCII.
    BadTarget,
    /// The method is `CONNECT`, which an origin server does not support.
    MethodNotImplemented,
    /// The request-target is longer than [`Limits::max_target`].
    UriTooLong,
    /// A well-formed HTTP version other than 1.0 or 1.1.
    VersionNotSupported,
    /// A header field name is empty or has a byte that is not a token byte.
    BadHeaderName,
    /// A header field value has a control byte other than HTAB (NUL, DEL, ...).
    BadHeaderValue,
    /// A line ends in LF without a preceding CR.
    BareLf,
    /// A CR is not followed by LF.
    BareCr,
    /// A header line starts with whitespace (obsolete line folding, RFC 9112
    /// §5.2, or whitespace before the first field, §2.2).
    ObsFold,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1: "A server
    /// MUST reject, with a response status code of 400").
    SpaceBeforeColon,
    /// The head is larger than [`Limits::max_head`].
    HeadTooLarge,
    /// The head has more than [`Limits::max_headers`] field lines.
    TooManyHeaders,
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    MissingHost,
    /// More than one `Host` field line (RFC 9112 §3.2).
    DuplicateHost,
    /// A `Host` value (or absolute-form authority) that is not `host[:port]`.
    BadHost,
    /// More than one `Content-Length` field line, or a list of values, even
    /// equal ones.
    DuplicateContentLength,
    /// A `Content-Length` value that is not one or more ASCII digits.
    BadContentLength,
    /// A `Content-Length` that does not fit in a `u64`.
    ContentLengthTooLarge,
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.1: "ought to
    /// be handled as an error").
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` on an HTTP/1.0 request (RFC 9112 §6.1: the framing
    /// "MUST" be treated as faulty).
    TransferEncodingHttp10,
    /// `Transfer-Encoding` is empty or not a list of transfer codings, or
    /// `chunked` has parameters.
    BadTransferEncoding,
    /// `chunked` is not the final transfer coding, or appears twice (RFC 9112
    /// §6.3 rule 4: the server "MUST respond with the 400").
    ChunkedNotLast,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1: 501).
    UnsupportedTransferCoding,
    /// An `Expect` value other than `100-continue` (RFC 9110 §10.1.1: 417).
    ExpectationFailed,
    /// A chunk-size line that is not hex digits, optionally followed by
    /// extensions.
    BadChunkSize,
    /// A chunk-size of more than 16 hex digits (would not fit a `u64`).
    ChunkSizeTooLarge,
    /// A chunk extension that is not `;name[=token|quoted-string]`.
    BadChunkExtension,
    /// Chunk extensions longer than [`Limits::max_chunk_ext`] in one body.
    ChunkExtensionTooLong,
    /// Chunk data not followed by CRLF.
    MissingChunkCrlf,
    /// A malformed trailer field line.
    BadTrailer,
    /// A trailer section longer than [`Limits::max_trailers`].
    TrailersTooLarge,
}

impl Error {
    /// The HTTP status code the server should answer with before closing the
    /// connection.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Error::ContentLengthTooLarge | Error::ChunkSizeTooLarge => 413,
            Error::UriTooLong => 414,
            Error::ExpectationFailed => 417,
            Error::HeadTooLarge | Error::TooManyHeaders | Error::TrailersTooLarge => 431,
            Error::MethodNotImplemented | Error::UnsupportedTransferCoding => 501,
            Error::VersionNotSupported => 505,
            Error::BadRequestLine
            | Error::BadTarget
            | Error::BadHeaderName
            | Error::BadHeaderValue
            | Error::BareLf
            | Error::BareCr
            | Error::ObsFold
            | Error::SpaceBeforeColon
            | Error::MissingHost
            | Error::DuplicateHost
            | Error::BadHost
            | Error::DuplicateContentLength
            | Error::BadContentLength
            | Error::ContentLengthWithTransferEncoding
            | Error::TransferEncodingHttp10
            | Error::BadTransferEncoding
            | Error::ChunkedNotLast
            | Error::BadChunkSize
            | Error::BadChunkExtension
            | Error::ChunkExtensionTooLong
            | Error::MissingChunkCrlf
            | Error::BadTrailer => 400,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Error::BadRequestLine => "malformed request line",
            Error::BadTarget => "invalid request target",
            Error::MethodNotImplemented => "method not implemented",
            Error::UriTooLong => "request target too long",
            Error::VersionNotSupported => "unsupported http version",
            Error::BadHeaderName => "invalid header name",
            Error::BadHeaderValue => "invalid byte in header value",
            Error::BareLf => "line ends in lf without cr",
            Error::BareCr => "cr not followed by lf",
            Error::ObsFold => "header line starts with whitespace",
            Error::SpaceBeforeColon => "whitespace before colon in header",
            Error::HeadTooLarge => "request head too large",
            Error::TooManyHeaders => "too many headers",
            Error::MissingHost => "missing host header",
            Error::DuplicateHost => "more than one host header",
            Error::BadHost => "invalid host",
            Error::DuplicateContentLength => "more than one content-length",
            Error::BadContentLength => "invalid content-length",
            Error::ContentLengthTooLarge => "content-length too large",
            Error::ContentLengthWithTransferEncoding => "both content-length and transfer-encoding",
            Error::TransferEncodingHttp10 => "transfer-encoding in an http/1.0 request",
            Error::BadTransferEncoding => "invalid transfer-encoding",
            Error::ChunkedNotLast => "chunked is not the final transfer coding",
            Error::UnsupportedTransferCoding => "unsupported transfer coding",
            Error::ExpectationFailed => "unsupported expectation",
            Error::BadChunkSize => "invalid chunk size",
            Error::ChunkSizeTooLarge => "chunk size too large",
            Error::BadChunkExtension => "invalid chunk extension",
            Error::ChunkExtensionTooLong => "chunk extensions too long",
            Error::MissingChunkCrlf => "chunk data not followed by crlf",
            Error::BadTrailer => "invalid trailer field",
            Error::TrailersTooLarge => "trailer section too large",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Neither `Content-Length` nor `Transfer-Encoding`: the body is empty
    /// (§6.3 rule 7 for requests).
    None,
    /// Exactly this many body bytes follow the head (`Length(0)` is possible).
    Length(u64),
    /// `Transfer-Encoding: chunked`; decode with [`ChunkedDecoder`].
    Chunked,
}

/// Which form of request-target the request used (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query` (§3.2.1).
    Origin,
    /// `http://authority/path?query` (§3.2.2); the authority replaces `Host`.
    Absolute,
    /// `*`, only with `OPTIONS` (§3.2.4).
    Asterisk,
}

/// A byte range inside [`RequestHead`]'s own copy of the head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span of `part` inside `base`; `part` must be a subslice of `base`.
    /// Were it not, `of` would give an empty slice rather than panic.
    fn within(base: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr().addr().wrapping_sub(base.as_ptr().addr());
        Span {
            start,
            end: start.wrapping_add(part.len()),
        }
    }

    fn shift(self, by: usize) -> Span {
        Span {
            start: self.start.saturating_add(by),
            end: self.end.saturating_add(by),
        }
    }

    fn of(self, bytes: &[u8]) -> &[u8] {
        bytes.get(self.start..self.end).unwrap_or_default()
    }
}

/// A parsed, validated request head, owning a copy of its bytes.
///
/// Built only by [`parse_head`], so the derived facts ([`framing`],
/// [`keep_alive`], [`expect_continue`], the target parts) always agree with the
/// header fields.
///
/// [`framing`]: RequestHead::framing
/// [`keep_alive`]: RequestHead::keep_alive
/// [`expect_continue`]: RequestHead::expect_continue
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    bytes: Vec<u8>,
    method: Span,
    target: Span,
    minor: u8,
    headers: Vec<(Span, Span)>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    form: TargetForm,
    /// `None` for an absolute-form target without a path, which means `/`.
    path: Option<Span>,
    query: Option<Span>,
    authority: Option<Span>,
}

impl RequestHead {
    /// The method, e.g. `b"GET"` (case-sensitive, RFC 9110 §9.1).
    #[must_use]
    pub fn method(&self) -> &[u8] {
        self.method.of(&self.bytes)
    }

    /// The raw request-target as received, e.g. `b"/a%20b?x=1"`.
    #[must_use]
    pub fn target(&self) -> &[u8] {
        self.target.of(&self.bytes)
    }

    /// The minor HTTP version: `0` for HTTP/1.0, `1` for HTTP/1.1.
    #[must_use]
    pub fn version(&self) -> u8 {
        self.minor
    }

    /// The header fields in order, as `(name, value)`; values have surrounding
    /// whitespace removed and may hold any byte but CTLs other than HTAB.
    #[must_use]
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|&(name, value)| (name.of(&self.bytes), value.of(&self.bytes)))
    }

    /// The value of the first header field called `name` (ASCII
    /// case-insensitive).
    #[must_use]
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How the body that follows the head is delimited.
    #[must_use]
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the connection may carry another request after this one's
    /// response (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`; HTTP/1.0
    /// only with `Connection: keep-alive` and no `close`.
    #[must_use]
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether an HTTP/1.1 client sent `Expect: 100-continue` and waits for
    /// `100 Continue` before sending the body. Always `false` for HTTP/1.0,
    /// whose expectation a server "MUST ignore" (RFC 9110 §10.1.1).
    #[must_use]
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// The form of the request-target.
    #[must_use]
    pub fn form(&self) -> TargetForm {
        self.form
    }

    /// The path, still percent-encoded: the target up to `?`. `/` for an
    /// absolute-form target without a path, `*` for asterisk-form.
    #[must_use]
    pub fn path(&self) -> &[u8] {
        match self.path {
            Some(span) => span.of(&self.bytes),
            None => b"/",
        }
    }

    /// The query after the first `?`, without it (possibly empty), or `None`
    /// when the target has no `?`.
    #[must_use]
    pub fn query(&self) -> Option<&[u8]> {
        self.query.map(|span| span.of(&self.bytes))
    }

    /// The authority (`host[:port]`) of an absolute-form target.
    #[must_use]
    pub fn authority(&self) -> Option<&[u8]> {
        self.authority.map(|span| span.of(&self.bytes))
    }

    /// The host the request is for: the absolute-form authority if there is
    /// one (RFC 9112 §3.2.2: the server "MUST ignore the received Host header
    /// field"), else the `Host` value, which may be empty.
    #[must_use]
    pub fn host(&self) -> Option<&[u8]> {
        self.authority().or_else(|| self.header(b"host"))
    }
}

/// Parses one request head from the start of `buf`.
///
/// Returns `Ok(Some((head, consumed)))` where `consumed` is the length of the
/// head, including any empty lines before the request-line (RFC 9112 §2.2
/// lets a server skip them); the body or the next pipelined request starts at
/// `buf[consumed..]`. Returns `Ok(None)` when `buf` holds only the start of a
/// head: call again with more bytes appended.
///
/// # Errors
///
/// Any [`Error`] except the chunked-body ones. [`Error::HeadTooLarge`] once
/// `buf` is longer than [`Limits::max_head`] without holding a complete head;
/// [`Error::UriTooLong`] and [`Error::TooManyHeaders`] as soon as the
/// offending part is seen, even before the head is complete.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, Error> {
    let window = buf.get(..limits.max_head).unwrap_or(buf);
    let scan = match scan_lines(window, limits) {
        Ok(scan) => scan,
        Err((at, e)) => {
            // Report whatever httparse finds before that point first, so the
            // error is the earliest one however the input was split.
            check_partial(window.get(..at).unwrap_or(window))?;
            return Err(e);
        }
    };
    let Some(scan) = scan else {
        // A final CR is undecided (CRLF or bare CR) until the next byte comes;
        // hide it from httparse so that a bare CR always gets `BareCr`.
        check_partial(window.strip_suffix(b"\r").unwrap_or(window))?;
        if buf.len() > limits.max_head {
            return Err(Error::HeadTooLarge);
        }
        return Ok(None);
    };
    let head = window.get(scan.start..scan.end).unwrap_or_default();
    // Most heads have a few fields: their slots live on the stack.
    let mut on_stack = [httparse::EMPTY_HEADER; 32];
    let mut on_heap = Vec::new();
    let slots = if scan.fields <= on_stack.len() {
        on_stack.get_mut(..scan.fields).unwrap_or_default()
    } else {
        on_heap.resize(scan.fields, httparse::EMPTY_HEADER);
        on_heap.as_mut_slice()
    };
    let mut req = httparse::Request::new(slots);
    match parser_config().parse_request(&mut req, head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        // The line scan and httparse disagree on where the head ends; that
        // cannot happen for a head both accept, so refuse it.
        Ok(_) => return Err(Error::BadRequestLine),
        Err(e) => return Err(map_httparse(e, head)),
    }
    let head = build_head(head, &req)?;
    Ok(Some((head, scan.end)))
}

/// httparse in its strict request mode. These are the defaults; they are set
/// here so that a change of defaults cannot loosen this parser.
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(false)
        .allow_space_before_first_header_name(false)
        .ignore_invalid_headers_in_requests(false);
    config
}

/// Where the head is in the window, once its closing empty line is seen.
struct Scan {
    /// First byte of the request-line (after skipped empty lines).
    start: usize,
    /// One past the CRLF of the empty line that ends the head.
    end: usize,
    /// Number of header field lines.
    fields: usize,
}

/// A scan error and the offset of the byte that caused it.
type ScanError = (usize, Error);

/// Walks the lines of a (possibly partial) head and checks what httparse does
/// not: CRLF-only line endings, no obs-fold, no whitespace before a colon, the
/// target and field-count limits. Returns `None` while the head is incomplete.
fn scan_lines(window: &[u8], limits: &Limits) -> Result<Option<Scan>, ScanError> {
    let mut pos = 0;
    loop {
        match (window.get(pos), window.get(pos + 1)) {
            (Some(b'\r'), Some(b'\n')) => pos += 2,
            (Some(b'\r'), None) | (None, _) => return Ok(None),
            (Some(b'\r'), Some(_)) => return Err((pos, Error::BareCr)),
            (Some(b'\n'), _) => return Err((pos, Error::BareLf)),
            (Some(_), _) => break,
        }
    }
    let start = pos;
    let mut fields = 0;
    loop {
        let rest = window.get(pos..).unwrap_or_default();
        let eol = rest.iter().position(|&b| b == b'\r' || b == b'\n');
        let line = rest.get(..eol.unwrap_or(rest.len())).unwrap_or_default();
        let checked = if pos == start {
            check_request_line(line, limits)
        } else if line.is_empty() {
            Ok(())
        } else {
            fields += 1;
            if fields > limits.max_headers {
                Err((0, Error::TooManyHeaders))
            } else {
                check_field_line(line)
            }
        };
        checked.map_err(|(at, e)| (pos + at, e))?;
        let Some(eol) = eol else { return Ok(None) };
        match (rest.get(eol), rest.get(eol + 1)) {
            (Some(b'\r'), Some(b'\n')) => {}
            (Some(b'\r'), None) => return Ok(None),
            (Some(b'\r'), Some(_)) => return Err((pos + eol, Error::BareCr)),
            _ => return Err((pos + eol, Error::BareLf)),
        }
        pos += eol + 2;
        // The request-line is never empty (empty lines were skipped above),
        // so an empty line here is the one that ends the header section.
        if line.is_empty() {
            return Ok(Some(Scan {
                start,
                end: pos,
                fields,
            }));
        }
    }
}

/// Bounds the request-target, even while the request-line is incomplete.
fn check_request_line(line: &[u8], limits: &Limits) -> Result<(), ScanError> {
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return Ok(());
    };
    let target = line.get(space + 1..).unwrap_or_default();
    let target_len = target
        .iter()
        .position(|&b| b == b' ')
        .unwrap_or(target.len());
    if target_len > limits.max_target {
        return Err((space + 1 + limits.max_target, Error::UriTooLong));
    }
    Ok(())
}

/// Refuses obs-fold and whitespace before the colon (RFC 9112 §5.1, §5.2),
/// which httparse reports only as a generic bad header name. Any whitespace
/// before the first colon counts, so that a line cut short after `Name\t`
/// gives the same error as the whole line.
fn check_field_line(line: &[u8]) -> Result<(), ScanError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err((0, Error::ObsFold));
    }
    let name = line.split(|&b| b == b':').next().unwrap_or_default();
    if let Some(ws) = name.iter().position(|&b| b == b' ' || b == b'\t') {
        return Err((ws, Error::SpaceBeforeColon));
    }
    Ok(())
}

/// Runs httparse over an incomplete head so that a bad request-line (say, a TLS
/// handshake sent to a plain HTTP port) is refused at once rather than after
/// `max_head` bytes. No header slots are given: httparse reports
/// `TooManyHeaders` once the request-line and one field line parsed, which here
/// only means "fine so far".
fn check_partial(window: &[u8]) -> Result<(), Error> {
    let mut req = httparse::Request::new(&mut []);
    match parser_config().parse_request(&mut req, window) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(e) => Err(map_httparse(e, window)),
    }
}

fn map_httparse(e: httparse::Error, head: &[u8]) -> Error {
    match e {
        httparse::Error::HeaderName => Error::BadHeaderName,
        httparse::Error::HeaderValue => Error::BadHeaderValue,
        httparse::Error::TooManyHeaders => Error::TooManyHeaders,
        httparse::Error::Version => version_error(head),
        httparse::Error::NewLine | httparse::Error::Status | httparse::Error::Token => {
            Error::BadRequestLine
        }
    }
}

/// httparse refuses every version but 1.0 and 1.1 alike; a version that is
/// well-formed (`HTTP/` then a digit) gets 505, anything else 400.
fn version_error(head: &[u8]) -> Error {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    match version.strip_prefix(b"HTTP/") {
        Some(rest) if rest.first().is_some_and(u8::is_ascii_digit) => Error::VersionNotSupported,
        _ => Error::BadRequestLine,
    }
}

/// Copies a head httparse accepted and derives target, framing, persistence
/// and expectation from it.
fn build_head(head: &[u8], req: &httparse::Request<'_, '_>) -> Result<RequestHead, Error> {
    let method = req.method.unwrap_or_default().as_bytes();
    let target = req.path.unwrap_or_default().as_bytes();
    let minor = req.version.unwrap_or_default();
    let mut headers = Vec::with_capacity(req.headers.len());
    for field in req.headers.iter() {
        if !field
            .value
            .iter()
            .all(|&b| b == b'\t' || (b >= b' ' && b != 0x7f))
        {
            return Err(Error::BadHeaderValue);
        }
        let name = Span::within(head, field.name.as_bytes());
        headers.push((name, Span::within(head, field.value)));
    }
    let mut parsed = RequestHead {
        bytes: head.to_vec(),
        method: Span::within(head, method),
        target: Span::within(head, target),
        minor,
        headers,
        framing: Framing::None,
        keep_alive: false,
        expect_continue: false,
        form: TargetForm::Origin,
        path: None,
        query: None,
        authority: None,
    };
    if method == b"CONNECT" {
        return Err(Error::MethodNotImplemented);
    }
    let parts = parse_target(method, target)?;
    let base = parsed.target.start;
    parsed.form = parts.form;
    parsed.path = parts.path.map(|s| s.shift(base));
    parsed.query = parts.query.map(|s| s.shift(base));
    parsed.authority = parts.authority.map(|s| s.shift(base));
    check_host(&parsed)?;
    parsed.framing = framing(&parsed)?;
    parsed.expect_continue = expectation(&parsed)?;
    parsed.keep_alive = persistence(&parsed);
    Ok(parsed)
}

/// The parts of a request-target, as spans relative to the target.
struct TargetParts {
    form: TargetForm,
    path: Option<Span>,
    query: Option<Span>,
    authority: Option<Span>,
}

fn parse_target(method: &[u8], target: &[u8]) -> Result<TargetParts, Error> {
    // httparse admits any visible ASCII and UTF-8; a request-target is a URI
    // (RFC 9112 §3.2), so raw non-ASCII and fragments are refused here.
    if target.iter().any(|&b| b == b'#' || !b.is_ascii_graphic()) {
        return Err(Error::BadTarget);
    }
    if target == b"*" {
        if method != b"OPTIONS" {
            return Err(Error::BadTarget);
        }
        return Ok(TargetParts {
            form: TargetForm::Asterisk,
            path: Some(Span::within(target, target)),
            query: None,
            authority: None,
        });
    }
    if target.first() == Some(&b'/') {
        let (path, query) = split_query(target);
        return Ok(TargetParts {
            form: TargetForm::Origin,
            path: Some(Span::within(target, path)),
            query: query.map(|q| Span::within(target, q)),
            authority: None,
        });
    }
    let rest = strip_prefix_ignore_case(target, b"http://")
        .or_else(|| strip_prefix_ignore_case(target, b"https://"))
        .ok_or(Error::BadTarget)?;
    let authority_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at_checked(authority_len).unwrap_or((rest, &[]));
    // RFC 9110 §4.2.4: userinfo "SHOULD" be treated as an error; §4.2.1: an
    // empty host "MUST" be rejected.
    if authority.contains(&b'@') || !valid_authority(authority) {
        return Err(Error::BadTarget);
    }
    let (path, query) = split_query(path_query);
    Ok(TargetParts {
        form: TargetForm::Absolute,
        path: (!path.is_empty()).then(|| Span::within(target, path)),
        query: query.map(|q| Span::within(target, q)),
        authority: Some(Span::within(target, authority)),
    })
}

fn split_query(path_query: &[u8]) -> (&[u8], Option<&[u8]>) {
    match path_query.iter().position(|&b| b == b'?') {
        Some(q) => (
            path_query.get(..q).unwrap_or_default(),
            Some(path_query.get(q + 1..).unwrap_or_default()),
        ),
        None => (path_query, None),
    }
}

fn strip_prefix_ignore_case<'a>(bytes: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, rest) = bytes.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// `host [ ":" port ]` with a non-empty host (RFC 9110 §7.2, RFC 3986 §3.2):
/// an IP-literal in brackets, or a reg-name / IPv4 address of unreserved,
/// sub-delims and percent-encoded bytes; the port is digits (possibly none).
fn valid_authority(authority: &[u8]) -> bool {
    let (host, port) = if authority.first() == Some(&b'[') {
        let Some(close) = authority.iter().position(|&b| b == b']') else {
            return false;
        };
        let Some((literal, port)) = authority.split_at_checked(close + 1) else {
            return false;
        };
        let inner = literal.get(1..close).unwrap_or_default();
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b == b':' || is_unreserved_or_sub_delim(b))
        {
            return false;
        }
        (literal, port)
    } else {
        let colon = authority
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(authority.len());
        let (host, port) = authority
            .split_at_checked(colon)
            .unwrap_or((authority, &[]));
        if host.is_empty() || !valid_reg_name(host) {
            return false;
        }
        (host, port)
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    !host.is_empty() && port_ok
}

fn valid_reg_name(host: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = host.get(i) {
        if b == b'%' {
            let hex = |j: usize| host.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if is_unreserved_or_sub_delim(b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

/// The values of every field called `name`, in order.
fn values<'a>(head: &'a RequestHead, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The non-empty elements of comma-separated list fields, trimmed (RFC 9110
/// §5.6.1: a recipient "MUST parse and ignore a reasonable number of empty list
/// elements").
fn list<'a>(head: &'a RequestHead, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    values(head, name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code
/// to any HTTP/1.1 request message that lacks a Host header field and to any
/// request message that contains more than one Host header field line or a
/// Host header field with an invalid field value."
fn check_host(head: &RequestHead) -> Result<(), Error> {
    let mut hosts = values(head, b"host");
    match (hosts.next(), hosts.next()) {
        (None, _) if head.minor >= 1 => Err(Error::MissingHost),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err(Error::DuplicateHost),
        // An empty Host is what a client sends when the target URI has none
        // (RFC 9110 §7.2).
        (Some(host), None) if host.is_empty() || valid_authority(host) => Ok(()),
        (Some(_), None) => Err(Error::BadHost),
    }
}

/// Decides the body framing (RFC 9112 §6.1, §6.3).
fn framing(head: &RequestHead) -> Result<Framing, Error> {
    let has_te = values(head, b"transfer-encoding").next().is_some();
    let mut lengths = values(head, b"content-length");
    let length = lengths.next();
    if has_te {
        if head.minor == 0 {
            return Err(Error::TransferEncodingHttp10);
        }
        if length.is_some() {
            return Err(Error::ContentLengthWithTransferEncoding);
        }
        return transfer_coding(head);
    }
    let Some(length) = length else {
        return Ok(Framing::None);
    };
    if lengths.next().is_some() || length.contains(&b',') {
        return Err(Error::DuplicateContentLength);
    }
    if length.is_empty() || !length.iter().all(u8::is_ascii_digit) {
        return Err(Error::BadContentLength);
    }
    length
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map(Framing::Length)
        .ok_or(Error::ContentLengthTooLarge)
}

/// Accepts exactly one `chunked`, the last coding; any other coding is not
/// implemented (501), and `chunked` anywhere but last is a framing error (400).
fn transfer_coding(head: &RequestHead) -> Result<Framing, Error> {
    let mut any = false;
    let mut last_chunked = false;
    let mut unsupported = false;
    for coding in list(head, b"transfer-encoding") {
        if last_chunked {
            return Err(Error::ChunkedNotLast);
        }
        any = true;
        let mut parts = coding.splitn(2, |&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        let has_params = parts.next().is_some();
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(Error::BadTransferEncoding);
        }
        if name.eq_ignore_ascii_case(b"chunked") {
            if has_params {
                return Err(Error::BadTransferEncoding);
            }
            last_chunked = true;
        } else {
            unsupported = true;
        }
    }
    if !any {
        return Err(Error::BadTransferEncoding);
    }
    if unsupported {
        return Err(Error::UnsupportedTransferCoding);
    }
    Ok(Framing::Chunked)
}

/// `Expect: 100-continue` is the only expectation defined (RFC 9110 §10.1.1);
/// "A server that receives an Expect field value containing a member other
/// than 100-continue MAY respond with a 417" and this one does.
fn expectation(head: &RequestHead) -> Result<bool, Error> {
    let mut expect_continue = false;
    for member in list(head, b"expect") {
        if !member.eq_ignore_ascii_case(b"100-continue") {
            return Err(Error::ExpectationFailed);
        }
        expect_continue = true;
    }
    Ok(expect_continue && head.minor >= 1)
}

/// RFC 9112 §9.3: `close` ends the connection; otherwise HTTP/1.1 persists and
/// HTTP/1.0 persists only with `keep-alive`.
fn persistence(head: &RequestHead) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for option in list(head, b"connection") {
        close |= option.eq_ignore_ascii_case(b"close");
        keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
    }
    !close && (head.minor >= 1 || keep_alive)
}

/// What one [`ChunkedDecoder::decode`] call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Body bytes: `data` is a slice of the input, and `consumed` counts the
    /// framing before it plus `data` itself. Call again with the rest.
    Data {
        /// Input bytes used up, `data` included.
        consumed: usize,
        /// Decoded body bytes, never empty.
        data: &'a [u8],
    },
    /// The input ended inside framing; all of it was used up (`consumed` is
    /// its length) and the decoder remembers where it was. Call again with the
    /// next bytes.
    NeedMore {
        /// Input bytes used up: always the whole input.
        consumed: usize,
    },
    /// The body ended (last chunk and trailer section). `consumed` stops right
    /// after the final CRLF; what follows is the next pipelined request.
    Done {
        /// Input bytes used up by the end of the body.
        consumed: usize,
    },
}

impl Decoded<'_> {
    /// Input bytes used up, whatever the variant.
    #[must_use]
    pub fn consumed(&self) -> usize {
        match *self {
            Decoded::Data { consumed, .. }
            | Decoded::NeedMore { consumed }
            | Decoded::Done { consumed } => consumed,
        }
    }
}

/// Where the decoder is in the chunked body grammar (RFC 9112 §7.1):
///
/// ```text
/// chunked-body   = *chunk last-chunk trailer-section CRLF
/// chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-val  = token / quoted-string
/// trailer-section = *( field-line CRLF )
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading chunk-size hex digits.
    Size,
    /// Whitespace after the size; only `;` may follow.
    SizeBws,
    /// After `;`, before an extension name.
    ExtPreName,
    /// In an extension name.
    ExtName,
    /// Whitespace after an extension name; `=` or `;` must follow.
    ExtPostName,
    /// After `=`, before the value.
    ExtPreValue,
    /// In a token value.
    ExtToken,
    /// In a quoted-string value.
    ExtQuoted,
    /// After a backslash in a quoted-string.
    ExtEscape,
    /// Right after a closing quote; whitespace, `;` or CR may follow.
    ExtPostQuote,
    /// Whitespace after a value; only `;` may follow.
    ExtValueBws,
    /// After the CR ending the size line.
    SizeLf,
    /// Inside chunk data; `remaining` bytes left.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// After the CR ending a trailer line.
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
    /// A previous call failed; every later call fails the same way.
    Failed(Error),
}

/// Incremental decoder for a `Transfer-Encoding: chunked` request body
/// (RFC 9112 §7.1).
///
/// Feed it the bytes after the head, in pieces split anywhere; it keeps only a
/// few counters, whatever the input. Chunk extensions are syntax-checked and
/// ignored; trailer fields are syntax-checked and discarded (RFC 9110 §6.5
/// lets a recipient discard them), so a server never merges them into the
/// environ.
///
/// ```
/// use gatekit_http::proto::{ChunkedDecoder, Decoded, Limits};
///
/// let mut decoder = ChunkedDecoder::new(&Limits::default());
/// let mut input: &[u8] = b"5\r\nhello\r\n0\r\n\r\nGET /next";
/// let mut body = Vec::new();
/// loop {
///     let step = decoder.decode(input)?;
///     if let Decoded::Data { data, .. } = step {
///         body.extend_from_slice(data);
///     }
///     input = &input[step.consumed()..];
///     if !matches!(step, Decoded::Data { .. }) {
///         break;
///     }
/// }
/// assert_eq!(body, b"hello");
/// assert_eq!(input, b"GET /next");
/// # Ok::<(), gatekit_http::proto::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size being read, then the data bytes left in the chunk.
    remaining: u64,
    /// Hex digits read for the current chunk-size.
    digits: u8,
    /// Extension bytes seen in this body.
    ext_len: usize,
    /// Trailer bytes seen in this body.
    trailer_len: usize,
    max_chunk_ext: usize,
    max_trailers: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new(&Limits::default())
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, bounded by
    /// [`Limits::max_chunk_ext`] and [`Limits::max_trailers`].
    #[must_use]
    pub fn new(limits: &Limits) -> Self {
        ChunkedDecoder {
            state: State::Size,
            remaining: 0,
            digits: 0,
            ext_len: 0,
            trailer_len: 0,
            max_chunk_ext: limits.max_chunk_ext,
            max_trailers: limits.max_trailers,
        }
    }

    /// Whether the whole body, trailers included, has been decoded.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the start of `buf` up to the next run of body data, the end
    /// of the body, or the end of `buf`, whichever comes first.
    ///
    /// # Errors
    ///
    /// The chunked-body [`Error`]s, plus [`Error::BareLf`], [`Error::BareCr`],
    /// [`Error::ObsFold`] and [`Error::SpaceBeforeColon`] in framing and
    /// trailers. An error is final: later calls return it again.
    pub fn decode<'b>(&mut self, buf: &'b [u8]) -> Result<Decoded<'b>, Error> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done => return Ok(Decoded::Done { consumed: pos }),
                State::Data => {
                    let rest = buf.get(pos..).unwrap_or_default();
                    if rest.is_empty() {
                        return Ok(Decoded::NeedMore { consumed: pos });
                    }
                    let take =
                        usize::try_from(self.remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    let data = rest.get(..take).unwrap_or(rest);
                    self.remaining = self.remaining.saturating_sub(data.len() as u64);
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Decoded::Data {
                        consumed: pos + data.len(),
                        data,
                    });
                }
                _ => {
                    let Some(&b) = buf.get(pos) else {
                        return Ok(Decoded::NeedMore { consumed: pos });
                    };
                    pos += 1;
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Advances over one framing byte.
    fn step(&mut self, b: u8) -> Result<(), Error> {
        match self.state {
            State::Size => self.size_byte(b),
            State::SizeLf => {
                if b != b'\n' {
                    return Err(Error::BareCr);
                }
                self.state = if self.remaining == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
                Ok(())
            }
            State::DataCr => match b {
                b'\r' => {
                    self.state = State::DataLf;
                    Ok(())
                }
                b'\n' => Err(Error::BareLf),
                _ => Err(Error::MissingChunkCrlf),
            },
            State::DataLf => {
                if b != b'\n' {
                    return Err(Error::BareCr);
                }
                self.state = State::Size;
                self.digits = 0;
                Ok(())
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => self.trailer_byte(b),
            State::SizeBws
            | State::ExtPreName
            | State::ExtName
            | State::ExtPostName
            | State::ExtPreValue
            | State::ExtToken
            | State::ExtQuoted
            | State::ExtEscape
            | State::ExtPostQuote
            | State::ExtValueBws => self.ext_byte(b),
            // `decode` handles these without calling `step`.
            State::Data | State::Done => Ok(()),
            State::Failed(e) => Err(e),
        }
    }

    /// chunk-size = 1*HEXDIG, then BWS before `;`, `;`, or CRLF.
    fn size_byte(&mut self, b: u8) -> Result<(), Error> {
        if let Some(digit) = hex_value(b) {
            if self.digits == MAX_CHUNK_SIZE_DIGITS {
                return Err(Error::ChunkSizeTooLarge);
            }
            self.digits += 1;
            self.remaining = (self.remaining << 4) | u64::from(digit);
            return Ok(());
        }
        if self.digits == 0 {
            return Err(Error::BadChunkSize);
        }
        match b {
            b'\r' => {
                self.state = State::SizeLf;
                Ok(())
            }
            _ => self.ext_byte(b),
        }
    }

    /// One byte of chunk extensions (or the whitespace before them). Each is
    /// counted against `max_chunk_ext`; the extensions themselves are ignored
    /// (RFC 9112 §7.1.1: a recipient "MUST ignore unrecognized chunk
    /// extensions").
    fn ext_byte(&mut self, b: u8) -> Result<(), Error> {
        if b == b'\r' {
            // The CR ends the size line; it is not an extension byte. It may
            // follow a name, a value, or a closing quote, but no whitespace.
            return match self.state {
                State::ExtName | State::ExtToken | State::ExtPostQuote => {
                    self.state = State::SizeLf;
                    Ok(())
                }
                State::Size | State::SizeBws => Err(Error::BadChunkSize),
                _ => Err(Error::BadChunkExtension),
            };
        }
        if b == b'\n' {
            return Err(Error::BareLf);
        }
        self.ext_len += 1;
        if self.ext_len > self.max_chunk_ext {
            return Err(Error::ChunkExtensionTooLong);
        }
        let ws = b == b' ' || b == b'\t';
        self.state = match self.state {
            State::Size | State::SizeBws if ws => State::SizeBws,
            State::Size | State::SizeBws if b == b';' => State::ExtPreName,
            State::Size | State::SizeBws => return Err(Error::BadChunkSize),
            State::ExtPreName if ws => State::ExtPreName,
            State::ExtPreName | State::ExtName if is_tchar(b) => State::ExtName,
            State::ExtName | State::ExtPostName if ws => State::ExtPostName,
            State::ExtName | State::ExtPostName if b == b'=' => State::ExtPreValue,
            State::ExtPreValue if ws => State::ExtPreValue,
            State::ExtPreValue if b == b'"' => State::ExtQuoted,
            State::ExtPreValue | State::ExtToken if is_tchar(b) => State::ExtToken,
            State::ExtQuoted if b == b'"' => State::ExtPostQuote,
            State::ExtQuoted if b == b'\\' => State::ExtEscape,
            State::ExtQuoted if is_qdtext(b) => State::ExtQuoted,
            State::ExtEscape if b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80 => {
                State::ExtQuoted
            }
            State::ExtToken | State::ExtPostQuote | State::ExtValueBws if ws => State::ExtValueBws,
            State::ExtName
            | State::ExtPostName
            | State::ExtToken
            | State::ExtPostQuote
            | State::ExtValueBws
                if b == b';' =>
            {
                State::ExtPreName
            }
            _ => return Err(Error::BadChunkExtension),
        };
        Ok(())
    }

    /// One byte of the trailer section: field lines checked like header lines
    /// (token name, colon, no CTL but HTAB in the value, CRLF), then dropped.
    fn trailer_byte(&mut self, b: u8) -> Result<(), Error> {
        self.trailer_len += 1;
        if self.trailer_len > self.max_trailers {
            return Err(Error::TrailersTooLarge);
        }
        let next = match (self.state, b) {
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, b' ' | b'\t') => return Err(Error::ObsFold),
            (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerName, b' ' | b'\t') => return Err(Error::SpaceBeforeColon),
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if b == b'\t' || (b >= b' ' && b != 0x7f) => {
                State::TrailerValue
            }
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(Error::BareCr),
            (_, b'\n') => return Err(Error::BareLf),
            _ => return Err(Error::BadTrailer),
        };
        self.state = next;
        Ok(())
    }
}

/// qdtext (RFC 9110 §5.6.4): HTAB, SP, `!`, `#`-`[`, `]`-`~`, obs-text.
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | b'!' | b'#'..=b'[' | b']'..=b'~' | 0x80..=0xff)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Header fields [`cgi_vars`] does not turn into `HTTP_*` variables (see there).
const NOT_HTTP_VARS: [&[u8]; 5] = [
    b"content-type",
    b"content-length",
    b"host",
    b"transfer-encoding",
    b"proxy",
];

pub use gatekit_core::util::percent_decode;
use gatekit_core::util::percent_decode_each;

/// The CGI meta-variables a request head determines (RFC 3875 §4.1, PEP 3333
/// "environ Variables"), as byte pairs, in this order:
///
/// - `REQUEST_METHOD`, `SERVER_PROTOCOL` (`HTTP/1.0` or `HTTP/1.1`);
/// - `PATH_INFO`: the path, [`percent_decode`]d (so `%2F` is `/` and `%FF` is
///   the byte 0xFF); `*` for `OPTIONS *`;
/// - `QUERY_STRING`: the raw query, `""` when there is none (§4.1.7 "MUST be
///   set");
/// - `REQUEST_URI`: the raw request-target;
/// - `CONTENT_TYPE` from `Content-Type`, and `CONTENT_LENGTH` when the framing
///   is [`Framing::Length`]. For a chunked body the server sets
///   `CONTENT_LENGTH` itself once the body is de-chunked (§4.2);
/// - `HTTP_HOST`: the absolute-form authority if any, else the `Host` value;
/// - `HTTP_*` for every other field, name upper-cased with `-` as `_`, in order
///   of first appearance; repeated fields are merged with `", "` (§4.1.18), but
///   `Cookie` with `"; "` (RFC 6265 §5.4).
///
/// Fields left out:
///
/// - names containing `_`: `X_Forwarded_For` and `X-Forwarded-For` would both
///   become `HTTP_X_FORWARDED_FOR`, so a client could forge a variable a front
///   proxy believes it set or stripped. nginx (`underscores_in_headers off`)
///   and Apache 2.4 drop such fields the same way;
/// - `Content-Type`, `Content-Length` (promoted above, never `HTTP_CONTENT_*`)
///   and `Host` (above);
/// - `Transfer-Encoding`: the server removes the coding before the app reads
///   the body (§4.2), so the field would describe a body the app never sees;
/// - `Proxy`: `HTTP_PROXY` is read by HTTP client libraries as a proxy
///   setting ("httpoxy", CVE-2016-5385).
///
/// `Authorization` is kept: the app is the origin server's own application,
/// and WSGI apps implement authentication from `HTTP_AUTHORIZATION`.
/// Server-side variables (`SERVER_NAME`, `REMOTE_ADDR`, `SCRIPT_NAME`, ...)
/// are the server's to add. Values are bytes as received.
#[must_use]
pub fn cgi_vars(head: &RequestHead) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(8 + head.headers.len());
    let protocol: &[u8] = if head.version() >= 1 {
        b"HTTP/1.1"
    } else {
        b"HTTP/1.0"
    };
    vars.push((b"REQUEST_METHOD".to_vec(), head.method().to_vec()));
    vars.push((b"SERVER_PROTOCOL".to_vec(), protocol.to_vec()));
    vars.push((b"PATH_INFO".to_vec(), percent_decode(head.path())));
    vars.push((
        b"QUERY_STRING".to_vec(),
        head.query().unwrap_or_default().to_vec(),
    ));
    vars.push((b"REQUEST_URI".to_vec(), head.target().to_vec()));
    let mut content_type: Option<Vec<u8>> = None;
    for value in values(head, b"content-type") {
        match &mut content_type {
            Some(merged) => {
                merged.extend_from_slice(b", ");
                merged.extend_from_slice(value);
            }
            None => content_type = Some(value.to_vec()),
        }
    }
    if let Some(content_type) = content_type {
        vars.push((b"CONTENT_TYPE".to_vec(), content_type));
    }
    if let Framing::Length(n) = head.framing() {
        vars.push((b"CONTENT_LENGTH".to_vec(), n.to_string().into_bytes()));
    }
    if let Some(host) = head.host() {
        vars.push((b"HTTP_HOST".to_vec(), host.to_vec()));
    }
    let first_http = vars.len();
    for (name, value) in head.headers() {
        if name.contains(&b'_') || NOT_HTTP_VARS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
            continue;
        }
        let mut key = Vec::with_capacity(5 + name.len());
        key.extend_from_slice(b"HTTP_");
        key.extend(name.iter().map(|&b| {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_uppercase()
            }
        }));
        let existing = vars
            .get_mut(first_http..)
            .unwrap_or_default()
            .iter_mut()
            .find(|(k, _)| *k == key);
        match existing {
            Some((_, merged)) => {
                let separator: &[u8] = if name.eq_ignore_ascii_case(b"cookie") {
                    b"; "
                } else {
                    b", "
                };
                merged.extend_from_slice(separator);
                merged.extend_from_slice(value);
            }
            None => vars.push((key, value.to_vec())),
        }
    }
    vars
}

/// Sets the variables [`cgi_vars`] lists straight into `environ`, without
/// an owned copy of each name and value: what the server does per request.
/// The same variables and values as [`cgi_vars`].
pub fn cgi_vars_into(head: &RequestHead, environ: &mut Environ) {
    let protocol: &[u8] = if head.version() >= 1 {
        b"HTTP/1.1"
    } else {
        b"HTTP/1.0"
    };
    environ.set_bytes("REQUEST_METHOD", head.method());
    environ.set_bytes("SERVER_PROTOCOL", protocol);
    environ.set_with("PATH_INFO", |out| {
        out.reserve(head.path().len());
        percent_decode_each(head.path(), |b| out.push(b));
    });
    environ.set_bytes("QUERY_STRING", head.query().unwrap_or_default());
    environ.set_bytes("REQUEST_URI", head.target());
    let fields = || head.headers().enumerate();
    for (i, (name, value)) in fields() {
        let http =
            !(name.contains(&b'_') || NOT_HTTP_VARS.iter().any(|s| name.eq_ignore_ascii_case(s)));
        if !http && !name.eq_ignore_ascii_case(b"content-type") {
            continue;
        }
        // Repeated fields become one variable, set at the first of them.
        if fields()
            .take(i)
            .any(|(_, (n, _))| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let mut key_buf = [0u8; 64];
        let mut key_heap = Vec::new();
        let key: &[u8] = if http {
            let key = if 5 + name.len() <= key_buf.len() {
                key_buf.get_mut(..5 + name.len()).unwrap_or_default()
            } else {
                key_heap.resize(5 + name.len(), 0);
                key_heap.as_mut_slice()
            };
            for (k, &b) in key.iter_mut().zip(b"HTTP_".iter().chain(name)) {
                *k = if b == b'-' {
                    b'_'
                } else {
                    b.to_ascii_uppercase()
                };
            }
            key
        } else {
            b"CONTENT_TYPE"
        };
        let separator: &[u8] = if name.eq_ignore_ascii_case(b"cookie") {
            b"; "
        } else {
            b", "
        };
        environ.set_with(key, |out| {
            out.extend_from_slice(value);
            for (_, (n, v)) in fields().skip(i + 1) {
                if n.eq_ignore_ascii_case(name) {
                    out.extend_from_slice(separator);
                    out.extend_from_slice(v);
                }
            }
        });
    }
    if let Framing::Length(n) = head.framing() {
        let mut digits = [0u8; 20];
        environ.set_bytes("CONTENT_LENGTH", format_u64(n, &mut digits));
    }
    if let Some(host) = head.host() {
        environ.set_bytes("HTTP_HOST", host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- helpers -------------------------------------------------------

    /// Parses `input` whole, and checks that every prefix of it gives
    /// `Ok(None)` before the head is complete and the same answer after;
    /// for a refused input, every prefix gives `Ok(None)` or the same error.
    fn parse_split(input: &[u8], limits: &Limits) -> Result<(RequestHead, usize), Error> {
        match parse_every_prefix(input, limits) {
            Ok(Some(done)) => Ok(done),
            Ok(None) => panic!("incomplete head: {:?}", show(input)),
            Err(e) => Err(e),
        }
    }

    fn parse_every_prefix(
        input: &[u8],
        limits: &Limits,
    ) -> Result<Option<(RequestHead, usize)>, Error> {
        let full = parse_head(input, limits);
        for k in 0..input.len() {
            let part = parse_head(&input[..k], limits);
            match &full {
                Ok(Some((_, n))) if k < *n => {
                    assert_eq!(part, Ok(None), "prefix {k} of {:?}", show(input));
                }
                Ok(Some(_)) => assert_eq!(part, full, "prefix {k} of {:?}", show(input)),
                Ok(None) => assert_eq!(part, Ok(None), "prefix {k} of {:?}", show(input)),
                Err(e) => assert!(
                    part == Ok(None) || part == Err(*e),
                    "prefix {k} of {:?}: {part:?}, whole: {e:?}",
                    show(input)
                ),
            }
        }
        full
    }

    fn parse(input: &[u8]) -> Result<(RequestHead, usize), Error> {
        parse_split(input, &Limits::default())
    }

    fn head(input: &[u8]) -> RequestHead {
        match parse(input) {
            Ok((head, n)) => {
                assert_eq!(n, input.len(), "consumed");
                head
            }
            Err(e) => panic!("{:?} refused: {e}", show(input)),
        }
    }

    fn show(bytes: &[u8]) -> String {
        bytes.escape_ascii().to_string()
    }

    fn assert_rejects(input: &[u8], want: Error, status: u16) {
        match parse(input) {
            Err(e) => assert_eq!(e, want, "{:?}", show(input)),
            Ok((head, _)) => panic!("{:?} accepted: {head:?}", show(input)),
        }
        assert_eq!(want.status(), status);
    }

    /// One named test per refused head.
    macro_rules! rejects {
        ($($name:ident: $input:expr => $err:ident, $status:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    assert_rejects($input, Error::$err, $status);
                }
            )*
        };
    }

    // ----- golden heads ----------------------------------------------------

    struct Case {
        desc: &'static str,
        input: &'static [u8],
        method: &'static [u8],
        version: u8,
        framing: Framing,
        keep_alive: bool,
        expect_continue: bool,
        form: TargetForm,
        path: &'static [u8],
        query: Option<&'static [u8]>,
        host: Option<&'static [u8]>,
    }

    const GOLDEN: &[Case] = &[
        Case {
            desc: "simple get",
            input: b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"example.com"),
        },
        Case {
            desc: "path and query",
            input: b"GET /a/b%20c?x=1&y=%2F HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/a/b%20c",
            query: Some(b"x=1&y=%2F"),
            host: Some(b"h"),
        },
        Case {
            desc: "empty query",
            input: b"GET /p? HTTP/1.1\r\nHost: h\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/p",
            query: Some(b""),
            host: Some(b"h"),
        },
        Case {
            desc: "second question mark stays in the query",
            input: b"GET /p?a?b HTTP/1.1\r\nHost: h\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/p",
            query: Some(b"a?b"),
            host: Some(b"h"),
        },
        Case {
            desc: "post with content-length",
            input: b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
            method: b"POST",
            version: 1,
            framing: Framing::Length(5),
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/form",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "content-length with leading zeros and ows",
            input: b"PUT /x HTTP/1.1\r\nHost: h\r\ncontent-length:  007 \r\n\r\n",
            method: b"PUT",
            version: 1,
            framing: Framing::Length(7),
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/x",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "content-length zero",
            input: b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            method: b"POST",
            version: 1,
            framing: Framing::Length(0),
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "content-length u64 max",
            input: b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n",
            method: b"POST",
            version: 1,
            framing: Framing::Length(u64::MAX),
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "chunked, any case",
            input: b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n",
            method: b"POST",
            version: 1,
            framing: Framing::Chunked,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/up",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "chunked with empty list elements",
            input: b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked ,\r\n\r\n",
            method: b"POST",
            version: 1,
            framing: Framing::Chunked,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "http/1.0 closes by default, host optional",
            input: b"GET /old HTTP/1.0\r\n\r\n",
            method: b"GET",
            version: 0,
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/old",
            query: None,
            host: None,
        },
        Case {
            desc: "http/1.0 keep-alive",
            input: b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            method: b"GET",
            version: 0,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: None,
        },
        Case {
            desc: "http/1.0 keep-alive and close: close wins",
            input: b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
            method: b"GET",
            version: 0,
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: None,
        },
        Case {
            desc: "http/1.1 connection close in a token list",
            input: b"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, CLOSE\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "http/1.1 close is a whole token only",
            input: b"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, x-close\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "expect 100-continue",
            input:
                b"PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n",
            method: b"PUT",
            version: 1,
            framing: Framing::Length(3),
            keep_alive: true,
            expect_continue: true,
            form: TargetForm::Origin,
            path: b"/f",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "expect 100-continue ignored on http/1.0",
            input: b"PUT /f HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
            method: b"PUT",
            version: 0,
            framing: Framing::Length(3),
            keep_alive: false,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/f",
            query: None,
            host: None,
        },
        Case {
            desc: "absolute-form with port",
            input: b"GET http://example.com:8080/p/q?x=y HTTP/1.1\r\nHost: other\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Absolute,
            path: b"/p/q",
            query: Some(b"x=y"),
            host: Some(b"example.com:8080"),
        },
        Case {
            desc: "absolute-form without path",
            input: b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Absolute,
            path: b"/",
            query: None,
            host: Some(b"example.com"),
        },
        Case {
            desc: "absolute-form https, upper-case scheme, query without path",
            input: b"GET HTTPS://Example.COM?x HTTP/1.0\r\n\r\n",
            method: b"GET",
            version: 0,
            framing: Framing::None,
            keep_alive: false,
            expect_continue: false,
            form: TargetForm::Absolute,
            path: b"/",
            query: Some(b"x"),
            host: Some(b"Example.COM"),
        },
        Case {
            desc: "absolute-form ipv6",
            input: b"GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Absolute,
            path: b"/",
            query: None,
            host: Some(b"[::1]:80"),
        },
        Case {
            desc: "options asterisk",
            input: b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            method: b"OPTIONS",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Asterisk,
            path: b"*",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "empty lines before the request-line are skipped",
            input: b"\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            method: b"HEAD",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b"h"),
        },
        Case {
            desc: "empty host is valid",
            input: b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
            method: b"GET",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/",
            query: None,
            host: Some(b""),
        },
        Case {
            desc: "extension method, host with port, tab and obs-text in values",
            input: b"PURGE /c HTTP/1.1\r\nHost: h.example:81\r\nX-A: a\tb \xff\xfe\r\n\r\n",
            method: b"PURGE",
            version: 1,
            framing: Framing::None,
            keep_alive: true,
            expect_continue: false,
            form: TargetForm::Origin,
            path: b"/c",
            query: None,
            host: Some(b"h.example:81"),
        },
    ];

    #[test]
    fn golden_heads() {
        for case in GOLDEN {
            let head = head(case.input);
            let desc = case.desc;
            assert_eq!(head.method(), case.method, "{desc}");
            assert_eq!(head.version(), case.version, "{desc}");
            assert_eq!(head.framing(), case.framing, "{desc}");
            assert_eq!(head.keep_alive(), case.keep_alive, "{desc}");
            assert_eq!(head.expect_continue(), case.expect_continue, "{desc}");
            assert_eq!(head.form(), case.form, "{desc}");
            assert_eq!(head.path(), case.path, "{desc}");
            assert_eq!(head.query(), case.query, "{desc}");
            assert_eq!(head.host(), case.host, "{desc}");
        }
    }

    #[test]
    fn headers_kept_in_order_with_values_trimmed() {
        let head = head(b"GET /t HTTP/1.1\r\nHost: h\r\nX-B:  two \r\nx-a: 1\r\nX-B:\r\n\r\n");
        let got: Vec<_> = head.headers().collect();
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"h"),
            (b"X-B", b"two"),
            (b"x-a", b"1"),
            (b"X-B", b""),
        ];
        assert_eq!(got, want);
        assert_eq!(head.headers().len(), 4);
        assert_eq!(head.header(b"x-b"), Some(&b"two"[..]));
        assert_eq!(head.header(b"missing"), None);
        assert_eq!(head.target(), b"/t");
        assert_eq!(head.authority(), None);
    }

    #[test]
    fn absolute_form_target() {
        let head = head(b"GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n");
        assert_eq!(head.form(), TargetForm::Absolute);
        assert_eq!(head.authority(), Some(&b"example.com:8080"[..]));
        assert_eq!(head.host(), Some(&b"example.com:8080"[..]));
        assert_eq!(head.path(), b"/p");
        assert_eq!(head.query(), Some(&b"q=1"[..]));
        assert_eq!(head.target(), b"http://example.com:8080/p?q=1");
        assert_eq!(head.header(b"host"), Some(&b"ignored"[..]));
    }

    #[test]
    fn options_asterisk() {
        let head = head(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(head.form(), TargetForm::Asterisk);
        assert_eq!(head.path(), b"*");
        assert_eq!(head.query(), None);
    }

    #[test]
    fn incomplete_head_needs_more() {
        let limits = Limits::default();
        assert_eq!(parse_head(b"", &limits), Ok(None));
        assert_eq!(parse_head(b"\r\n", &limits), Ok(None));
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n", &limits),
            Ok(None)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r", &limits),
            Ok(None)
        );
    }

    #[test]
    fn pipelined_requests_consumed_is_exact() {
        let first = b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
        let second = b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
        let mut buf = Vec::new();
        buf.extend_from_slice(first);
        buf.extend_from_slice(second);
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(first);
        let (one, n) = parse(&buf).unwrap();
        assert_eq!(n, first.len());
        assert_eq!(one.path(), b"/one");
        let rest = &buf[n..];
        let (two, m) = parse(rest).unwrap();
        assert_eq!(m, second.len());
        assert_eq!(two.path(), b"/two");
        assert_eq!(two.framing(), Framing::Length(3));
        let rest = &rest[m..];
        assert_eq!(&rest[..3], b"abc");
        let (three, k) = parse(&rest[3..]).unwrap();
        assert_eq!(k, first.len());
        assert_eq!(three, one);
    }

    #[test]
    fn keep_alive_rules() {
        let cases: &[(&[u8], bool)] = &[
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: te,  close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
            (
                b"GET / HTTP/1.0\r\nConnection: foo, KEEP-ALIVE\r\n\r\n",
                true,
            ),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\nKeep-Alive: 300\r\n\r\n", false),
        ];
        for &(input, want) in cases {
            assert_eq!(head(input).keep_alive(), want, "{:?}", show(input));
        }
    }

    // ----- framing and smuggling: one named test each ------------------------

    rejects! {
        cl_and_te_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            => ContentLengthWithTransferEncoding, 400;
        te_and_cl_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            => ContentLengthWithTransferEncoding, 400;
        duplicate_content_length_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
            => DuplicateContentLength, 400;
        content_length_list_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n"
            => DuplicateContentLength, 400;
        content_length_plus_sign_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n"
            => BadContentLength, 400;
        content_length_minus_sign_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"
            => BadContentLength, 400;
        content_length_space_inside_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n"
            => BadContentLength, 400;
        content_length_empty_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"
            => BadContentLength, 400;
        content_length_hex_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"
            => BadContentLength, 400;
        content_length_overflow_413:
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n"
            => ContentLengthTooLarge, 413;
        te_not_chunked_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"
            => UnsupportedTransferCoding, 501;
        te_identity_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"
            => UnsupportedTransferCoding, 501;
        te_unknown_before_chunked_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            => UnsupportedTransferCoding, 501;
        te_chunked_not_last_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
            => ChunkedNotLast, 400;
        te_chunked_twice_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
            => ChunkedNotLast, 400;
        te_chunked_not_last_across_fields_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n"
            => ChunkedNotLast, 400;
        te_empty_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n"
            => BadTransferEncoding, 400;
        te_chunked_with_parameter_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"
            => BadTransferEncoding, 400;
        te_not_a_token_rejected:
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"
            => BadTransferEncoding, 400;
        te_on_http10_rejected:
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
            => TransferEncodingHttp10, 400;
        obs_fold_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n"
            => ObsFold, 400;
        obs_fold_tab_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n"
            => ObsFold, 400;
        space_before_first_header_rejected:
            b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"
            => ObsFold, 400;
        bare_lf_rejected:
            b"GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n"
            => BareLf, 400;
        bare_lf_request_line_rejected:
            b"GET / HTTP/1.1\nHost: h\r\n\r\n"
            => BareLf, 400;
        bare_lf_end_of_head_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\n\n"
            => BareLf, 400;
        bare_lf_leading_empty_line_rejected:
            b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
            => BareLf, 400;
        bare_cr_rejected:
            b"GET / HTTP/1.1\r\nHost: h\rX-A: 1\r\n\r\n"
            => BareCr, 400;
        bare_cr_in_value_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n"
            => BareCr, 400;
        bare_cr_request_line_rejected:
            b"GET / HTTP/1.1\rHost: h\r\n\r\n"
            => BareCr, 400;
        space_before_colon_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n"
            => SpaceBeforeColon, 400;
        tab_before_colon_rejected:
            b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"
            => SpaceBeforeColon, 400;
        missing_host_http11_rejected:
            b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"
            => MissingHost, 400;
        missing_host_absolute_form_http11_rejected:
            b"GET http://h/ HTTP/1.1\r\n\r\n"
            => MissingHost, 400;
        double_host_rejected:
            b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"
            => DuplicateHost, 400;
        double_host_http10_rejected:
            b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"
            => DuplicateHost, 400;
        host_with_space_rejected:
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n"
            => BadHost, 400;
        host_with_userinfo_rejected:
            b"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"
            => BadHost, 400;
        host_with_bad_port_rejected:
            b"GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n"
            => BadHost, 400;
        host_with_path_rejected:
            b"GET / HTTP/1.1\r\nHost: h/x\r\n\r\n"
            => BadHost, 400;
        nul_in_value_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"
            => BadHeaderValue, 400;
        del_in_value_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n"
            => BadHeaderValue, 400;
        ctl_in_value_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n"
            => BadHeaderValue, 400;
        empty_header_name_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n"
            => BadHeaderName, 400;
        bad_header_name_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n"
            => BadHeaderName, 400;
        header_without_colon_rejected:
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n"
            => BadHeaderName, 400;
        version_505:
            b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"
            => VersionNotSupported, 505;
        version_1_2_505:
            b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"
            => VersionNotSupported, 505;
        version_0_9_505:
            b"GET / HTTP/0.9\r\n\r\n"
            => VersionNotSupported, 505;
        lower_case_version_rejected:
            b"GET / http/1.1\r\nHost: h\r\n\r\n"
            => BadRequestLine, 400;
        version_trailing_garbage_rejected:
            b"GET / HTTP/1.10\r\nHost: h\r\n\r\n"
            => BadRequestLine, 400;
        missing_version_rejected:
            b"GET /\r\n\r\n"
            => BadRequestLine, 400;
        double_space_request_line_rejected:
            b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadRequestLine, 400;
        bad_method_rejected:
            b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadRequestLine, 400;
        expect_other_417:
            b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n"
            => ExpectationFailed, 417;
        expect_list_with_other_417:
            b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n"
            => ExpectationFailed, 417;
        connect_rejected:
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
            => MethodNotImplemented, 501;
        authority_form_rejected:
            b"GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n"
            => BadTarget, 400;
        asterisk_without_options_rejected:
            b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadTarget, 400;
        fragment_rejected:
            b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadTarget, 400;
        raw_utf8_target_rejected:
            b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadTarget, 400;
        raw_non_utf8_target_rejected:
            b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadRequestLine, 400;
        userinfo_rejected:
            b"GET http://u:p@h/ HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadTarget, 400;
        absolute_form_empty_host_rejected:
            b"GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadTarget, 400;
        other_scheme_rejected:
            b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"
            => BadTarget, 400;
    }

    // ----- limits --------------------------------------------------------------

    fn small(max_head: usize, max_headers: usize, max_target: usize) -> Limits {
        Limits {
            max_head,
            max_headers,
            max_target,
            ..Limits::default()
        }
    }

    #[test]
    fn head_too_large_431() {
        let input = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        // A complete head one byte over the limit.
        let limits = small(input.len() - 1, 100, 100);
        assert_eq!(parse_head(input, &limits), Err(Error::HeadTooLarge));
        // Up to the limit it just needs more bytes.
        assert_eq!(parse_head(&input[..input.len() - 1], &limits), Ok(None));
        // An incomplete head already over the limit.
        let limits = small(input.len() - 3, 100, 100);
        assert_eq!(
            parse_head(&input[..input.len() - 2], &limits),
            Err(Error::HeadTooLarge)
        );
        assert_eq!(Error::HeadTooLarge.status(), 431);
        // A head of exactly max_head bytes is fine, whatever follows it.
        let limits = small(input.len(), 100, 100);
        let mut pipelined = input.to_vec();
        pipelined.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (_, n) = parse_split(&pipelined, &limits).unwrap();
        assert_eq!(n, input.len());
    }

    #[test]
    fn head_too_large_counts_leading_empty_lines() {
        let input = b"\r\n\r\nGET / HTTP/1.0\r\n\r\n";
        assert_eq!(
            parse_head(input, &small(input.len() - 1, 100, 100)),
            Err(Error::HeadTooLarge)
        );
        assert!(
            parse_head(input, &small(input.len(), 100, 100))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn too_many_headers_431() {
        let input = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        assert!(parse_split(input, &small(1024, 3, 100)).is_ok());
        assert_eq!(
            parse_split(input, &small(1024, 2, 100)),
            Err(Error::TooManyHeaders)
        );
        // Refused before the head is complete.
        assert_eq!(
            parse_head(&input[..32], &small(1024, 2, 100)),
            Err(Error::TooManyHeaders)
        );
        assert_eq!(parse_head(&input[..31], &small(1024, 2, 100)), Ok(None));
        assert_eq!(Error::TooManyHeaders.status(), 431);
    }

    #[test]
    fn uri_too_long_414() {
        let input = b"GET /0123456789 HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(parse_split(input, &small(1024, 10, 11)).is_ok());
        assert_eq!(
            parse_split(input, &small(1024, 10, 10)),
            Err(Error::UriTooLong)
        );
        // Refused while the request-line is still arriving.
        assert_eq!(
            parse_head(&input[..15], &small(1024, 10, 10)),
            Err(Error::UriTooLong)
        );
        // A long target is 414 even when the head limit is smaller still.
        assert_eq!(
            parse_head(&input[..20], &small(16, 10, 10)),
            Err(Error::UriTooLong)
        );
        assert_eq!(Error::UriTooLong.status(), 414);
    }

    #[test]
    fn garbage_refused_before_head_complete() {
        // A TLS ClientHello sent to a plain HTTP port.
        let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        assert_eq!(
            parse_head(hello, &Limits::default()),
            Err(Error::BadRequestLine)
        );
        assert_eq!(
            parse_head(b"GET / HTTP/3", &Limits::default()),
            Err(Error::VersionNotSupported)
        );
    }

    // ----- errors ---------------------------------------------------------------

    const ALL_ERRORS: &[Error] = &[
        Error::BadRequestLine,
        Error::BadTarget,
        Error::MethodNotImplemented,
        Error::UriTooLong,
        Error::VersionNotSupported,
        Error::BadHeaderName,
        Error::BadHeaderValue,
        Error::BareLf,
        Error::BareCr,
        Error::ObsFold,
        Error::SpaceBeforeColon,
        Error::HeadTooLarge,
        Error::TooManyHeaders,
        Error::MissingHost,
        Error::DuplicateHost,
        Error::BadHost,
        Error::DuplicateContentLength,
        Error::BadContentLength,
        Error::ContentLengthTooLarge,
        Error::ContentLengthWithTransferEncoding,
        Error::TransferEncodingHttp10,
        Error::BadTransferEncoding,
        Error::ChunkedNotLast,
        Error::UnsupportedTransferCoding,
        Error::ExpectationFailed,
        Error::BadChunkSize,
        Error::ChunkSizeTooLarge,
        Error::BadChunkExtension,
        Error::ChunkExtensionTooLong,
        Error::MissingChunkCrlf,
        Error::BadTrailer,
        Error::TrailersTooLarge,
    ];

    #[test]
    fn error_messages_are_lowercase_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for e in ALL_ERRORS {
            let msg = e.to_string();
            assert!(!msg.is_empty());
            assert_eq!(msg, msg.to_lowercase(), "{e:?}");
            assert!(!msg.ends_with('.'), "{e:?}");
            assert!(seen.insert(msg), "{e:?}");
            assert!(
                [400, 413, 414, 417, 431, 501, 505].contains(&e.status()),
                "{e:?}"
            );
        }
    }

    #[test]
    fn error_is_std_error_send_sync() {
        fn check<E: std::error::Error + Send + Sync + Copy + 'static>(_: E) {}
        check(Error::BareLf);
    }

    // ----- chunked bodies -------------------------------------------------------

    /// How a chunked body ended, for comparing whole and split runs.
    #[derive(Debug, PartialEq, Eq)]
    enum End {
        /// Done at this offset of the whole input.
        Done(usize),
        /// The input ran out inside the body.
        NeedMore,
        Failed(Error),
    }

    /// Runs a decoder over `pieces` in turn, collecting body data.
    fn decode_pieces(limits: &Limits, pieces: &[&[u8]]) -> (Vec<u8>, End) {
        let mut decoder = ChunkedDecoder::new(limits);
        let mut body = Vec::new();
        let mut offset = 0;
        for piece in pieces {
            let mut rest: &[u8] = piece;
            loop {
                match decoder.decode(rest) {
                    Ok(Decoded::Data { consumed, data }) => {
                        assert!(!data.is_empty());
                        assert!(consumed <= rest.len());
                        body.extend_from_slice(data);
                        rest = &rest[consumed..];
                        offset += consumed;
                    }
                    Ok(Decoded::NeedMore { consumed }) => {
                        assert_eq!(consumed, rest.len());
                        offset += consumed;
                        break;
                    }
                    Ok(Decoded::Done { consumed }) => {
                        assert!(decoder.is_done());
                        return (body, End::Done(offset + consumed));
                    }
                    Err(e) => return (body, End::Failed(e)),
                }
            }
        }
        (body, End::NeedMore)
    }

    /// Decodes `input` whole, split at every offset, and byte by byte; all
    /// must agree. Returns the whole run's result.
    fn decode_split(limits: &Limits, input: &[u8]) -> (Vec<u8>, End) {
        let whole = decode_pieces(limits, &[input]);
        for k in 0..=input.len() {
            let (a, b) = input.split_at(k);
            let split = decode_pieces(limits, &[a, b]);
            assert_eq!(split, whole, "split at {k} of {:?}", show(input));
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            decode_pieces(limits, &bytes),
            whole,
            "byte by byte {:?}",
            show(input)
        );
        whole
    }

    fn dechunk(input: &[u8]) -> (Vec<u8>, End) {
        decode_split(&Limits::default(), input)
    }

    /// Test-only encoder: each part as one chunk, then the last chunk.
    fn chunked(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    #[test]
    fn chunked_round_trip() {
        let big = vec![b'z'; 70_000];
        let cases: &[&[&[u8]]] = &[
            &[],
            &[b"a"],
            &[b"hello", b" ", b"world"],
            &[b"\r\n0\r\n\r\n", b"\0\xff"],
            &[&big],
        ];
        for parts in cases {
            let encoded = chunked(parts);
            let want: Vec<u8> = parts.concat();
            let got = if encoded.len() < 2000 {
                dechunk(&encoded)
            } else {
                decode_pieces(&Limits::default(), &[&encoded])
            };
            assert_eq!(got, (want, End::Done(encoded.len())));
        }
    }

    #[test]
    fn golden_chunked_bodies() {
        let cases: &[(&str, &[u8], &[u8], End)] = &[
            (
                "one chunk",
                b"5\r\nhello\r\n0\r\n\r\n",
                b"hello",
                End::Done(15),
            ),
            (
                "upper and lower hex",
                b"A\r\n0123456789\r\nb\r\nabcdefghijk\r\n0\r\n\r\n",
                b"0123456789abcdefghijk",
                End::Done(36),
            ),
            (
                "leading zeros",
                b"0005\r\nhello\r\n000\r\n\r\n",
                b"hello",
                End::Done(20),
            ),
            (
                "extension without value",
                b"5;a\r\nhello\r\n0\r\n\r\n",
                b"hello",
                End::Done(17),
            ),
            (
                "extensions with values",
                b"5;a=b;c=\"d;e\\\"\"\r\nhello\r\n0\r\n\r\n",
                b"hello",
                End::Done(29),
            ),
            (
                "bws around extension parts",
                b"5 \t; a = b ; c\r\nhello\r\n0\r\n\r\n",
                b"hello",
                End::Done(28),
            ),
            (
                "quoted value then whitespace",
                b"5;a=\"x\" ;b\r\nhello\r\n0\r\n\r\n",
                b"hello",
                End::Done(24),
            ),
            (
                "extension on the last chunk",
                b"0;done\r\n\r\n",
                b"",
                End::Done(10),
            ),
            (
                "trailers are discarded",
                b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-B:\tq\xff\r\n\r\n",
                b"abc",
                End::Done(32),
            ),
            (
                "data looks like framing",
                b"5\r\n0\r\n\r\n\r\n0\r\n\r\n",
                b"0\r\n\r\n",
                End::Done(15),
            ),
            (
                "pipelined bytes after the body",
                b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
                b"x",
                End::Done(11),
            ),
            ("body not finished", b"5\r\nhel", b"hel", End::NeedMore),
            (
                "huge chunk, partial data",
                b"ffffffffffffffff\r\nab",
                b"ab",
                End::NeedMore,
            ),
            (
                "trailers not finished",
                b"0\r\nX: y\r\n",
                b"",
                End::NeedMore,
            ),
        ];
        for (desc, input, data, end) in cases {
            let got = dechunk(input);
            assert_eq!(got.0, *data, "{desc}");
            assert_eq!(got.1, *end, "{desc}");
        }
    }

    #[test]
    fn decoded_consumed_covers_framing_and_data() {
        let mut decoder = ChunkedDecoder::default();
        let input = b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT";
        assert_eq!(
            decoder.decode(input),
            Ok(Decoded::Data {
                consumed: 10,
                data: b"abc"
            })
        );
        assert_eq!(
            decoder.decode(&input[10..]),
            Ok(Decoded::Data {
                consumed: 7,
                data: b"de"
            })
        );
        assert_eq!(
            decoder.decode(&input[17..]),
            Ok(Decoded::Done { consumed: 7 })
        );
        assert_eq!(&input[24..], b"NEXT");
        assert!(decoder.is_done());
        assert_eq!(decoder.decode(b"more"), Ok(Decoded::Done { consumed: 0 }));
        assert_eq!(Decoded::NeedMore { consumed: 4 }.consumed(), 4);
    }

    #[test]
    fn empty_input_needs_more() {
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(decoder.decode(b""), Ok(Decoded::NeedMore { consumed: 0 }));
        assert!(!decoder.is_done());
    }

    fn assert_chunk_rejects(input: &[u8], want: Error, status: u16) {
        assert_chunk_rejects_with(&Limits::default(), input, want, status);
    }

    fn assert_chunk_rejects_with(limits: &Limits, input: &[u8], want: Error, status: u16) {
        let (_, end) = decode_split(limits, input);
        assert_eq!(end, End::Failed(want), "{:?}", show(input));
        assert_eq!(want.status(), status);
    }

    /// One named test per refused chunked body.
    macro_rules! chunk_rejects {
        ($($name:ident: $input:expr => $err:ident, $status:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    assert_chunk_rejects($input, Error::$err, $status);
                }
            )*
        };
    }

    chunk_rejects! {
        bad_chunk_size_rejected: b"x\r\nhello\r\n0\r\n\r\n" => BadChunkSize, 400;
        chunk_size_empty_rejected: b"\r\n\r\n" => BadChunkSize, 400;
        chunk_size_leading_space_rejected: b" 5\r\nhello\r\n0\r\n\r\n" => BadChunkSize, 400;
        chunk_size_trailing_space_rejected: b"5 \r\nhello\r\n0\r\n\r\n" => BadChunkSize, 400;
        chunk_size_plus_sign_rejected: b"+5\r\nhello\r\n0\r\n\r\n" => BadChunkSize, 400;
        chunk_size_0x_rejected: b"0x5\r\nhello\r\n0\r\n\r\n" => BadChunkSize, 400;
        chunk_size_junk_after_digits_rejected: b"5g\r\nhello\r\n0\r\n\r\n" => BadChunkSize, 400;
        chunk_size_overflow_rejected: b"10000000000000000\r\n" => ChunkSizeTooLarge, 413;
        chunk_size_too_many_zeros_rejected: b"00000000000000001\r\nx\r\n0\r\n\r\n" => ChunkSizeTooLarge, 413;
        chunk_ext_empty_name_rejected: b"5;\r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        chunk_ext_value_without_name_rejected: b"5;=x\r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        chunk_ext_two_words_rejected: b"5;a b\r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        chunk_ext_trailing_space_rejected: b"5;a=b \r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        chunk_ext_empty_value_rejected: b"5;a=\r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        chunk_ext_unclosed_quote_rejected: b"5;a=\"b\r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        chunk_ext_ctl_rejected: b"5;a=\x01\r\nhello\r\n0\r\n\r\n" => BadChunkExtension, 400;
        missing_crlf_after_chunk_rejected: b"5\r\nhelloX\r\n0\r\n\r\n" => MissingChunkCrlf, 400;
        chunk_longer_than_size_rejected: b"3\r\nhello\r\n0\r\n\r\n" => MissingChunkCrlf, 400;
        bare_lf_after_chunk_rejected: b"5\r\nhello\n0\r\n\r\n" => BareLf, 400;
        bare_lf_after_size_rejected: b"5\nhello\r\n0\r\n\r\n" => BareLf, 400;
        bare_lf_after_extension_rejected: b"5;a\nhello\r\n0\r\n\r\n" => BareLf, 400;
        bare_lf_end_of_body_rejected: b"0\r\n\n" => BareLf, 400;
        bare_cr_after_size_rejected: b"5\rhello\r\n0\r\n\r\n" => BareCr, 400;
        bare_cr_after_chunk_rejected: b"5\r\nhello\rX0\r\n\r\n" => BareCr, 400;
        bare_cr_end_of_body_rejected: b"0\r\n\rX" => BareCr, 400;
        trailer_obs_fold_rejected: b"0\r\nX: a\r\n b\r\n\r\n" => ObsFold, 400;
        trailer_space_before_colon_rejected: b"0\r\nX : a\r\n\r\n" => SpaceBeforeColon, 400;
        trailer_without_colon_rejected: b"0\r\nX\r\n\r\n" => BadTrailer, 400;
        trailer_bad_name_rejected: b"0\r\n(X): a\r\n\r\n" => BadTrailer, 400;
        trailer_nul_rejected: b"0\r\nX: a\0\r\n\r\n" => BadTrailer, 400;
        trailer_bare_lf_rejected: b"0\r\nX: a\n\r\n" => BareLf, 400;
    }

    #[test]
    fn chunk_ext_too_long_rejected() {
        let limits = Limits {
            max_chunk_ext: 8,
            ..Limits::default()
        };
        // Exactly 8 extension bytes: fine.
        let ok = b"5;abcdefg\r\nhello\r\n0\r\n\r\n";
        assert_eq!(
            decode_split(&limits, ok),
            (b"hello".to_vec(), End::Done(ok.len()))
        );
        assert_chunk_rejects_with(
            &limits,
            b"5;abcdefgh\r\nhello\r\n0\r\n\r\n",
            Error::ChunkExtensionTooLong,
            400,
        );
        // Whitespace before the `;` counts too.
        assert_chunk_rejects_with(
            &limits,
            b"5        ;a\r\nhello\r\n0\r\n\r\n",
            Error::ChunkExtensionTooLong,
            400,
        );
    }

    #[test]
    fn chunk_ext_limit_counts_the_whole_body() {
        let limits = Limits {
            max_chunk_ext: 8,
            ..Limits::default()
        };
        // Four bytes per chunk: the third chunk's extension breaks the limit.
        let input = b"1;abc\r\nx\r\n1;abc\r\nx\r\n1;abc\r\nx\r\n0\r\n\r\n";
        assert_chunk_rejects_with(&limits, input, Error::ChunkExtensionTooLong, 400);
    }

    #[test]
    fn trailers_too_large_431() {
        let limits = Limits {
            max_trailers: 12,
            ..Limits::default()
        };
        // "X: 1234567\r\n" is 12 bytes; the final CRLF makes 14.
        assert_chunk_rejects_with(
            &limits,
            b"0\r\nX: 1234567\r\n\r\n",
            Error::TrailersTooLarge,
            431,
        );
        let ok = b"0\r\nX: 1234\r\n\r\n";
        assert_eq!(decode_split(&limits, ok), (Vec::new(), End::Done(ok.len())));
    }

    #[test]
    fn decoder_error_is_sticky() {
        let mut decoder = ChunkedDecoder::default();
        assert_eq!(decoder.decode(b"zz"), Err(Error::BadChunkSize));
        assert_eq!(
            decoder.decode(b"5\r\nhello\r\n0\r\n\r\n"),
            Err(Error::BadChunkSize)
        );
        assert!(!decoder.is_done());
    }

    // ----- CGI view --------------------------------------------------------------

    fn vars(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        cgi_vars(&head(input))
    }

    fn var<'a>(vars: &'a [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'a [u8]> {
        let mut found = vars.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_slice());
        assert!(found.next().is_none(), "{} set twice", show(name));
        first
    }

    #[test]
    fn percent_decode_cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"/plain", b"/plain"),
            (b"/a%20b", b"/a b"),
            (b"/a%2Fb%2f", b"/a/b/"),
            (b"%FF%fe%00", b"\xff\xfe\0"),
            (b"%zz%4", b"%zz%4"),
            (b"%", b"%"),
            (b"100%%41", b"100%A"),
            (b"a+b", b"a+b"),
            (b"%e2%82%ac", "\u{20ac}".as_bytes()),
        ];
        for &(input, want) in cases {
            assert_eq!(percent_decode(input), want, "{:?}", show(input));
        }
    }

    #[test]
    fn percent_ff_path_yields_byte_ff() {
        let vars = vars(b"GET /caf%FF/x%2Fy?q=%FF HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(var(&vars, b"PATH_INFO"), Some(&b"/caf\xff/x/y"[..]));
        assert_eq!(var(&vars, b"QUERY_STRING"), Some(&b"q=%FF"[..]));
        assert_eq!(
            var(&vars, b"REQUEST_URI"),
            Some(&b"/caf%FF/x%2Fy?q=%FF"[..])
        );
    }

    #[test]
    fn cgi_vars_full_list() {
        let got = vars(
            b"POST /app/run?a=1 HTTP/1.1\r\n\
              Host: example.com\r\n\
              Content-Type: text/plain\r\n\
              Content-Length: 11\r\n\
              User-Agent: t/1\r\n\
              Accept: a\r\n\
              accept: b\r\n\
              X-Dashed-Name: v\r\n\
              \r\n",
        );
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"REQUEST_METHOD", b"POST"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"PATH_INFO", b"/app/run"),
            (b"QUERY_STRING", b"a=1"),
            (b"REQUEST_URI", b"/app/run?a=1"),
            (b"CONTENT_TYPE", b"text/plain"),
            (b"CONTENT_LENGTH", b"11"),
            (b"HTTP_HOST", b"example.com"),
            (b"HTTP_USER_AGENT", b"t/1"),
            (b"HTTP_ACCEPT", b"a, b"),
            (b"HTTP_X_DASHED_NAME", b"v"),
        ];
        let got: Vec<(&[u8], &[u8])> = got
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn cgi_vars_into_sets_what_cgi_vars_lists() {
        let long_name = format!("X-{}: v\r\n", "N".repeat(80));
        let heads: [&[u8]; 6] = [
            b"POST /app/run?a=1 HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n\
              Content-Length: 11\r\nUser-Agent: t/1\r\nAccept: a\r\naccept: b\r\n\
              X-Dashed-Name: v\r\nCookie: a=1\r\ncookie: b=2\r\nACCEPT: c\r\n\r\n",
            b"GET /x%20y%2F%FF HTTP/1.0\r\n\r\n",
            b"GET http://h:81/p?q HTTP/1.1\r\nHost: other\r\nContent-Type: a\r\ncontent-type: b\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\nX_Under: 1\r\nProxy: p\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A-B-C: 1\r\nx-a-b-c: 2\r\n\r\n",
        ];
        let long = format!("GET / HTTP/1.1\r\nHost: h\r\n{long_name}{long_name}\r\n");
        for input in heads.iter().copied().chain([long.as_bytes()]) {
            let (head, _) = parse_head(input, &Limits::default()).unwrap().unwrap();
            let mut environ = Environ::new();
            cgi_vars_into(&head, &mut environ);
            let mut want = cgi_vars(&head);
            want.sort();
            let got: Vec<(Vec<u8>, Vec<u8>)> = environ
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(got, want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn query_string_empty_when_absent() {
        let vars = vars(b"GET /x HTTP/1.0\r\n\r\n");
        assert_eq!(var(&vars, b"QUERY_STRING"), Some(&b""[..]));
        assert_eq!(var(&vars, b"SERVER_PROTOCOL"), Some(&b"HTTP/1.0"[..]));
        assert_eq!(var(&vars, b"HTTP_HOST"), None);
        assert_eq!(var(&vars, b"CONTENT_LENGTH"), None);
        assert_eq!(var(&vars, b"CONTENT_TYPE"), None);
    }

    #[test]
    fn underscore_headers_dropped() {
        let vars = vars(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX_Forwarded_For: 6.6.6.6\r\nX_Other: 1\r\n\r\n",
        );
        assert_eq!(var(&vars, b"HTTP_X_FORWARDED_FOR"), Some(&b"10.0.0.1"[..]));
        assert_eq!(var(&vars, b"HTTP_X_OTHER"), None);
    }

    #[test]
    fn cookies_merged_with_semicolon() {
        let vars = vars(
            b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nX-A: 1\r\ncookie: b=2\r\nX-A: 2\r\n\r\n",
        );
        assert_eq!(var(&vars, b"HTTP_COOKIE"), Some(&b"a=1; b=2"[..]));
        assert_eq!(var(&vars, b"HTTP_X_A"), Some(&b"1, 2"[..]));
    }

    #[test]
    fn content_headers_promoted_never_http() {
        let vars =
            vars(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\ncontent-type: a/b\r\n\r\n");
        assert_eq!(var(&vars, b"CONTENT_LENGTH"), Some(&b"0"[..]));
        assert_eq!(var(&vars, b"CONTENT_TYPE"), Some(&b"a/b"[..]));
        assert_eq!(var(&vars, b"HTTP_CONTENT_LENGTH"), None);
        assert_eq!(var(&vars, b"HTTP_CONTENT_TYPE"), None);
    }

    #[test]
    fn chunked_body_has_no_content_length_var() {
        let vars = vars(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(var(&vars, b"CONTENT_LENGTH"), None);
        assert_eq!(var(&vars, b"HTTP_TRANSFER_ENCODING"), None);
    }

    #[test]
    fn proxy_header_dropped() {
        let vars = vars(b"GET / HTTP/1.1\r\nHost: h\r\nProxy: http://evil:1\r\n\r\n");
        assert_eq!(var(&vars, b"HTTP_PROXY"), None);
    }

    #[test]
    fn http_host_from_absolute_form() {
        let vars = vars(b"GET http://real.example:8080/p HTTP/1.1\r\nHost: fake.example\r\n\r\n");
        assert_eq!(var(&vars, b"HTTP_HOST"), Some(&b"real.example:8080"[..]));
        assert_eq!(var(&vars, b"PATH_INFO"), Some(&b"/p"[..]));
        assert_eq!(
            var(&vars, b"REQUEST_URI"),
            Some(&b"http://real.example:8080/p"[..])
        );
        let vars = super::tests::vars(b"GET http://only.example HTTP/1.0\r\n\r\n");
        assert_eq!(var(&vars, b"HTTP_HOST"), Some(&b"only.example"[..]));
        assert_eq!(var(&vars, b"PATH_INFO"), Some(&b"/"[..]));
    }

    #[test]
    fn non_utf8_values_pass_through() {
        let vars = vars(b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: \xe9t\xe9\r\n\r\n");
        assert_eq!(var(&vars, b"HTTP_X_NAME"), Some(&b"\xe9t\xe9"[..]));
    }

    #[test]
    fn options_asterisk_path_info() {
        let vars = vars(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(var(&vars, b"PATH_INFO"), Some(&b"*"[..]));
        assert_eq!(var(&vars, b"REQUEST_URI"), Some(&b"*"[..]));
    }

    // ----- deterministic mini-fuzz --------------------------------------------

    /// xorshift64*: a fixed stream of pseudo-random bytes.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Mutates a valid input: flip, insert or delete a few bytes drawn from
    /// the bytes that matter to HTTP framing.
    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        const PALETTE: &[u8] = b"\r\n :;=\"\\\t0aF,\x00\x7f\xff";
        let mut out = seed.to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(out.len() + 1);
            let byte = PALETTE[rng.below(PALETTE.len())];
            match rng.below(3) {
                0 if at < out.len() => out[at] = byte,
                1 if at < out.len() => {
                    out.remove(at);
                }
                _ => out.insert(at, byte),
            }
        }
        out
    }

    #[test]
    fn mutated_heads_never_panic_and_split_consistently() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let limits = small(200, 6, 40);
        for _ in 0..3000 {
            let seed = GOLDEN[rng.below(GOLDEN.len())].input;
            let input = mutate(&mut rng, seed);
            if let Ok(Some((head, n))) = parse_every_prefix(&input, &limits) {
                assert!(n <= input.len());
                let again = parse_head(&input[..n], &limits);
                assert_eq!(again, Ok(Some((head.clone(), n))));
                let _ = cgi_vars(&head);
            }
        }
    }

    #[test]
    fn mutated_bodies_never_panic_and_split_consistently() {
        let seeds: &[&[u8]] = &[
            b"5;a=\"b\"\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n",
            b"1 ; x = y\r\nz\r\n0\r\n\r\n",
        ];
        let mut rng = Rng(42);
        let limits = Limits {
            max_chunk_ext: 16,
            max_trailers: 16,
            ..Limits::default()
        };
        for _ in 0..2000 {
            let seed = seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, seed);
            let (data, _) = decode_split(&limits, &input);
            assert!(data.len() <= input.len());
        }
    }
}
