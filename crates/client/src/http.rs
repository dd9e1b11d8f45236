//! HTTP/1.1, the client's side: a request line, headers and body out (RFC 9112 §3), and a
//! response in with its body framed by `Content-Length`, chunked coding or the close of the
//! connection (RFC 9112 §6.3). Heads are parsed with `httparse`; everything read is bounded.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read};

use crate::request::host_header;
use crate::{Error, Request, Response, Target};

/// Most response headers accepted.
pub const MAX_HEADERS: usize = 128;

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Appends `request` as HTTP/1.1 to `out`: the request line, `Host` (unless given),
/// `User-Agent`, the caller's headers, `Content-Length` when there is a body or the method
/// usually carries one (unless given), `Connection: close` unless `keep_alive`, and the body.
///
/// # Errors
///
/// [`Error::InvalidRequest`] if the method, path or a header holds a byte HTTP forbids there
/// (a space or control character in the method or path, CR or LF in a header).
pub fn encode_request(
    request: &Request,
    target: &Target,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    if request.method.is_empty() || !request.method.bytes().all(is_token_byte) {
        return Err(Error::InvalidRequest("the method is not an HTTP token"));
    }
    if !request.path.starts_with('/') && request.path != "*" {
        return Err(Error::InvalidRequest("the path does not start with '/'"));
    }
    if request.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Error::InvalidRequest(
            "the path holds a space or a control character",
        ));
    }
    for (name, value) in &request.headers {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(Error::InvalidRequest("a header name is not an HTTP token"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(Error::InvalidRequest("a header value holds CR, LF or NUL"));
        }
    }
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    // Writing to a String cannot fail; the results below are ignored for that reason.
    if request.header("host").is_none() {
        let _ = write!(head, "Host: {}\r\n", host_header(target));
    }
    if request.header("user-agent").is_none() {
        head.push_str(concat!(
            "User-Agent: gatekit/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    for (name, value) in &request.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let wants_length = !request.body.is_empty()
        || ["POST", "PUT", "PATCH"]
            .iter()
            .any(|m| request.method.eq_ignore_ascii_case(m));
    if wants_length && request.header("content-length").is_none() {
        let _ = write!(head, "Content-Length: {}\r\n", request.body.len());
        if request.header("content-type").is_none() && !request.body.is_empty() {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
    }
    if !keep_alive && request.header("connection").is_none() {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&request.body);
    Ok(())
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Limits for reading a response.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest head, in bytes.
    pub max_head: usize,
    /// Largest response, head and body, in bytes.
    pub max_response: usize,
}

/// Reads one response from `reader`, with `buf` holding bytes already read (and, after the
/// call, any bytes read past the response). Interim 1xx responses are skipped. `head_request`
/// says the request was `HEAD`, so the response has no body whatever its headers say.
///
/// Returns the response and whether the connection can carry another request (HTTP/1.1
/// without `Connection: close`, or HTTP/1.0 with `keep-alive`, and a body that did not run
/// to the close).
///
/// # Errors
///
/// [`Error::HeadTooLarge`], [`Error::ResponseTooLarge`], [`Error::UnexpectedEof`],
/// [`Error::Io`], or [`Error::BadResponse`] for a malformed head, length or chunk.
pub fn read_response<R: Read>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    head_request: bool,
    limits: Limits,
) -> Result<(Response, bool), Error> {
    let mut input = Input { reader, buf };
    loop {
        let (mut response, version) = read_head(&mut input, limits.max_head)?;
        if (100..200).contains(&response.status) && response.status != 101 {
            continue;
        }
        let mut keep_alive = keep_alive(&response, version);
        let limit = limits.max_response.saturating_sub(response.head.len());
        let no_body = head_request
            || (100..200).contains(&response.status)
            || response.status == 204
            || response.status == 304;
        if no_body {
        } else if is_chunked(&response)? {
            read_chunked(&mut input, &mut response.body, limit, limits.max_head)?;
        } else if let Some(length) = content_length(&response)? {
            if length > limit as u64 {
                return Err(Error::ResponseTooLarge {
                    limit: limits.max_response,
                });
            }
            // Checked against a usize limit just above.
            input.take_exact(length as usize, &mut response.body)?;
        } else {
            keep_alive = false;
            input.take_to_end(&mut response.body, limit, limits.max_response)?;
        }
        return Ok((response, keep_alive));
    }
}

/// Reads a head; returns the response (no body yet) and the minor HTTP version.
fn read_head<R: Read>(input: &mut Input<'_, R>, max_head: usize) -> Result<(Response, u8), Error> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(input.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let mut response = Response {
                    status: parsed.code.unwrap_or_default(),
                    reason: parsed.reason.unwrap_or_default().to_owned(),
                    ..Response::default()
                };
                let version = parsed.version.unwrap_or_default();
                response.headers = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                if len > max_head {
                    return Err(Error::HeadTooLarge { limit: max_head });
                }
                response.head = input.buf.drain(..len).collect();
                return Ok((response, version));
            }
            Ok(httparse::Status::Partial) => {
                if input.buf.len() > max_head {
                    return Err(Error::HeadTooLarge { limit: max_head });
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::BadResponse("too many response headers"));
            }
            Err(_) => return Err(Error::BadResponse("malformed HTTP response head")),
        }
        if input.fill()? == 0 {
            return Err(Error::UnexpectedEof);
        }
    }
}

fn keep_alive(response: &Response, version: u8) -> bool {
    let mut close = version == 0;
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    return false;
                }
                if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        }
    }
    !close
}

/// Whether the body is chunked: `chunked` is the last transfer coding (RFC 9112 §6.3).
fn is_chunked(response: &Response) -> Result<bool, Error> {
    let mut last = None;
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                last = Some(coding);
            }
        }
    }
    match last {
        None => Ok(false),
        Some(c) if c.eq_ignore_ascii_case("chunked") => Ok(true),
        // Another final coding: the body runs to the close, which the caller does
        // when there is no Content-Length; refuse to guess otherwise.
        Some(_) => Err(Error::BadResponse("a transfer coding other than chunked")),
    }
}

/// The `Content-Length`, if any; several must agree.
fn content_length(response: &Response) -> Result<Option<u64>, Error> {
    let mut found: Option<u64> = None;
    for (name, value) in &response.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for part in value.split(',').map(str::trim) {
            let bad = Error::BadResponse("a bad Content-Length");
            if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad);
            }
            let n: u64 = part.parse().map_err(|_| bad)?;
            if found.is_some_and(|f| f != n) {
                return Err(Error::BadResponse("conflicting Content-Length values"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn read_chunked<R: Read>(
    input: &mut Input<'_, R>,
    body: &mut Vec<u8>,
    limit: usize,
    max_trailers: usize,
) -> Result<(), Error> {
    loop {
        let line = input.take_line(MAX_LINE)?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = size.trim_ascii();
        if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(Error::BadResponse("a bad chunk size"));
        }
        let size = usize::from_str_radix(std::str::from_utf8(size).unwrap_or("x"), 16)
            .map_err(|_| Error::BadResponse("a bad chunk size"))?;
        if size == 0 {
            let mut trailers = 0;
            loop {
                let line = input.take_line(MAX_LINE)?;
                if line.is_empty() {
                    return Ok(());
                }
                trailers += line.len();
                if trailers > max_trailers {
                    return Err(Error::HeadTooLarge {
                        limit: max_trailers,
                    });
                }
            }
        }
        if size > limit.saturating_sub(body.len()) {
            return Err(Error::ResponseTooLarge { limit });
        }
        input.take_exact(size, body)?;
        if !input.take_line(2)?.is_empty() {
            return Err(Error::BadResponse("a chunk is longer than its size"));
        }
    }
}

/// A reader with a buffer of bytes read but not used yet.
struct Input<'a, R> {
    reader: &'a mut R,
    buf: &'a mut Vec<u8>,
}

impl<R: Read> Input<'_, R> {
    /// Reads once more into the buffer; 0 at the end of the stream.
    fn fill(&mut self) -> Result<usize, Error> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.reader.read(&mut chunk) {
                Ok(n) => {
                    self.buf
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }

    /// The next line without its LF (or CRLF), at most `max` bytes long.
    fn take_line(&mut self, max: usize) -> Result<Vec<u8>, Error> {
        let mut searched = 0;
        loop {
            if let Some(at) = self
                .buf
                .get(searched..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            {
                let end = searched + at;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            searched = self.buf.len();
            if searched > max {
                return Err(Error::BadResponse("a line in the body framing is too long"));
            }
            if self.fill()? == 0 {
                return Err(Error::UnexpectedEof);
            }
        }
    }

    /// Moves exactly `n` bytes to `out` (the caller has checked `n` against its limit).
    fn take_exact(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut left = n;
        loop {
            let take = left.min(self.buf.len());
            out.extend(self.buf.drain(..take));
            left -= take;
            if left == 0 {
                return Ok(());
            }
            if self.fill()? == 0 {
                return Err(Error::UnexpectedEof);
            }
        }
    }

    /// Moves everything to the end of the stream to `out`, at most `limit` bytes.
    fn take_to_end(&mut self, out: &mut Vec<u8>, limit: usize, cap: usize) -> Result<(), Error> {
        loop {
            if self.buf.len() > limit.saturating_sub(out.len()) {
                return Err(Error::ResponseTooLarge { limit: cap });
            }
            out.append(self.buf);
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 1024,
        max_response: 4096,
    };

    /// A reader that hands out one byte per read, to exercise every split.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn read(wire: &[u8], head: bool) -> Result<(Response, bool), Error> {
        let whole = read_response(&mut &wire[..], &mut Vec::new(), head, LIMITS);
        let trickled = read_response(&mut Trickle(wire), &mut Vec::new(), head, LIMITS);
        assert_eq!(
            format!("{whole:?}"),
            format!("{trickled:?}"),
            "the same result one byte at a time"
        );
        whole
    }

    #[test]
    fn golden_request_bytes() {
        let target: Target = "127.0.0.1:8080".parse().unwrap();
        let mut r = Request::new("POST", "/echo?x=1");
        r.body = b"hi".to_vec();
        r.headers.push(("X-A".into(), "b".into()));
        let mut out = Vec::new();
        encode_request(&r, &target, false, &mut out).unwrap();
        let expected = format!(
            "POST /echo?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: gatekit/{}\r\n\
             X-A: b\r\nContent-Length: 2\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Connection: close\r\n\r\nhi",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        let mut out = Vec::new();
        encode_request(&Request::get("/"), &target, true, &mut out).unwrap();
        assert!(out.starts_with(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(!String::from_utf8_lossy(&out).contains("Connection"));
    }

    #[test]
    fn refuses_bad_requests() {
        let target: Target = "127.0.0.1:80".parse().unwrap();
        let mut out = Vec::new();
        for r in [
            Request::new("G T", "/"),
            Request::new("GET", "/a b"),
            Request::new("GET", "x"),
        ] {
            assert!(
                encode_request(&r, &target, true, &mut out).is_err(),
                "{r:?}"
            );
        }
        let mut r = Request::get("/");
        r.headers.push(("X".into(), "a\r\nB: c".into()));
        assert!(encode_request(&r, &target, true, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn content_length_body() {
        let (r, keep) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body, b"hello");
        assert_eq!(r.head, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert!(keep);
    }

    #[test]
    fn chunked_body_with_trailers_and_interim() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\
            Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n";
        let (r, keep) = read(wire, false).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hello");
        assert!(keep);
    }

    #[test]
    fn close_delimited_and_no_body() {
        let (r, keep) = read(b"HTTP/1.0 200 OK\r\n\r\nto the end", false).unwrap();
        assert_eq!(r.body, b"to the end");
        assert!(!keep);
        let (r, keep) = read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).unwrap();
        assert!(r.body.is_empty());
        assert!(keep);
        let (r, _) = read(b"HTTP/1.1 304 Not Modified\r\n\r\n", false).unwrap();
        assert!(r.body.is_empty());
        let (_, keep) = read(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(!keep);
    }

    #[test]
    fn malformed_and_oversized() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"HTTX/1.1 200 OK\r\n\r\n",
            b"",
        ] {
            assert!(
                read(bad, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n";
        assert!(matches!(
            read(huge, false),
            Err(Error::ResponseTooLarge { .. })
        ));
        let mut long_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        long_head.extend(std::iter::repeat_n(b'a', 2000));
        assert!(matches!(
            read(&long_head, false),
            Err(Error::HeadTooLarge { .. })
        ));
        let mut big_chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..10 {
            big_chunks.extend_from_slice(b"400\r\n");
            big_chunks.extend(std::iter::repeat_n(b'x', 0x400));
            big_chunks.extend_from_slice(b"\r\n");
        }
        assert!(matches!(
            read(&big_chunks, false),
            Err(Error::ResponseTooLarge { .. })
        ));
    }
}
