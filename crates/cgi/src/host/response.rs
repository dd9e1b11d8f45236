//! The CGI response parser (RFC 3875 §6): the header block a script writes
//! to its stdout, before the body. Sans-IO: bytes in, a parsed head (or
//! "need more bytes") out; it never reads, blocks or allocates past its
//! [`Limits`].
//!
//! Lines end in LF or CRLF (scripts write either). Each header is
//! `name: value`, the name an RFC 9110 token, surrounding blanks of the value
//! trimmed; obsolete line folding, NUL and other control bytes are refused.
//! The block ends at the first empty line.

use std::fmt;

use gatekit_core::{Status, is_tchar, latin1_to_string};

/// The default [`Limits::max_header_bytes`]: 64 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// The default [`Limits::max_headers`].
pub const DEFAULT_MAX_HEADERS: usize = 256;

/// How large a header block may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The header block's size in bytes, its closing empty line included.
    pub max_header_bytes: usize,
    /// The number of header lines.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }
}

impl Limits {
    /// These limits with another header block size.
    #[must_use]
    pub fn with_max_header_bytes(mut self, n: usize) -> Limits {
        self.max_header_bytes = n;
        self
    }

    /// These limits with another header count.
    #[must_use]
    pub fn with_max_headers(mut self, n: usize) -> Limits {
        self.max_headers = n;
        self
    }
}

/// Why a script's output is not a CGI response. Each is answered with a
/// `502 Bad Gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// No empty line within [`Limits::max_header_bytes`].
    TooLarge,
    /// More than [`Limits::max_headers`] header lines.
    TooManyHeaders,
    /// The block ends before any header (RFC 3875 §6.2: at least one is required).
    NoHeaders,
    /// A line with no colon.
    NoColon,
    /// A header name that is not a token.
    BadName,
    /// A control byte (or a bare CR) in a header value.
    BadValue,
    /// A line starting with a blank: obsolete line folding.
    Folded,
    /// A `Status` that is not a 3-digit code from 100 and a reason.
    BadStatus,
    /// Two `Status` or two `Location` headers.
    Duplicate,
}

impl ParseError {
    fn as_str(self) -> &'static str {
        match self {
            ParseError::TooLarge => "header block too large",
            ParseError::TooManyHeaders => "too many header lines",
            ParseError::NoHeaders => "no header before the empty line",
            ParseError::NoColon => "header line without a colon",
            ParseError::BadName => "invalid header name",
            ParseError::BadValue => "control character in a header value",
            ParseError::Folded => "folded header line",
            ParseError::BadStatus => "invalid Status header",
            ParseError::Duplicate => "Status or Location given twice",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ParseError {}

/// A parsed header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    status: Option<Status>,
    location: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
}

/// What kind of response a head makes (RFC 3875 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'h> {
    /// A document (or a client redirect): the status and headers go to the client.
    Document,
    /// `Location: /path` and nothing else (§6.2.2): the server fetches the
    /// path itself and answers with that.
    LocalRedirect(&'h [u8]),
}

impl Head {
    /// The `Status` header, when the script sent one.
    #[must_use]
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// The `Location` header's value, when the script sent one.
    #[must_use]
    pub fn location(&self) -> Option<&[u8]> {
        self.location.as_deref()
    }

    /// The headers in order, `Status` left out, `Location` included; values
    /// are the script's bytes (latin-1 on the wire).
    #[must_use]
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The number of header lines (`Status` included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.headers.len() + usize::from(self.status.is_some())
    }

    /// True for a head with no line; [`parse_head`] never returns one.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A local redirect or a document.
    #[must_use]
    pub fn kind(&self) -> Kind<'_> {
        match &self.location {
            Some(loc) if loc.first() == Some(&b'/') && self.len() == 1 => Kind::LocalRedirect(loc),
            _ => Kind::Document,
        }
    }

    /// The status to send: `Status` when given, else `302 Found` with a
    /// `Location` (a client redirect, §6.2.3), else `200 OK`.
    #[must_use]
    pub fn response_status(&self) -> Status {
        match (&self.status, &self.location) {
            (Some(s), _) => s.clone(),
            (None, Some(_)) => Status::parse("302 Found").unwrap_or(Status::OK),
            (None, None) => Status::OK,
        }
    }
}

fn trim_blanks(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn parse_status(value: &[u8]) -> Result<Status, ParseError> {
    let code = value.get(..3).ok_or(ParseError::BadStatus)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadStatus);
    }
    let status = if value.len() == 3 {
        let n = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        Status::from_code(n)
    } else {
        Status::parse(&latin1_to_string(value))
    };
    status.map_err(|_| ParseError::BadStatus)
}

/// Parses a header block from the start of `buf`.
///
/// `Ok(None)`: no empty line yet and still within the limits, read more.
/// `Ok(Some((head, n)))`: the head and the bytes it took, its empty line
/// included; the body starts at `buf[n..]`. Only the first
/// [`Limits::max_header_bytes`] bytes of `buf` are ever looked at.
///
/// # Errors
/// A [`ParseError`] for output that is not a CGI response.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(Head, usize)>, ParseError> {
    let window = buf.get(..limits.max_header_bytes).unwrap_or(buf);
    let mut head = Head {
        status: None,
        location: None,
        headers: Vec::new(),
    };
    let mut lines = 0usize;
    let mut at = 0usize;
    loop {
        let rest = window.get(at..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            // A line cut short may still be malformed; reject what is
            // already known bad so the caller need not wait for more bytes.
            check_partial(rest)?;
            if window.len() < buf.len() || buf.len() >= limits.max_header_bytes {
                return Err(ParseError::TooLarge);
            }
            return Ok(None);
        };
        let raw = rest.get(..nl).unwrap_or_default();
        at += nl + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            if head.is_empty() {
                return Err(ParseError::NoHeaders);
            }
            return Ok(Some((head, at)));
        }
        lines += 1;
        if lines > limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        let (name, value) = split_line(line)?;
        if name.eq_ignore_ascii_case("status") {
            if head.status.is_some() {
                return Err(ParseError::Duplicate);
            }
            head.status = Some(parse_status(value)?);
            continue;
        }
        if name.eq_ignore_ascii_case("location") {
            if head.location.is_some() {
                return Err(ParseError::Duplicate);
            }
            head.location = Some(value.to_vec());
        }
        head.headers.push((name.to_owned(), value.to_vec()));
    }
}

/// One header line (no line ending) split into name and trimmed value.
fn split_line(line: &[u8]) -> Result<(&str, &[u8]), ParseError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ParseError::Folded);
    }
    // The name runs to the first byte that is not a token character, which
    // must be the colon (so a partial line is judged as the whole one is).
    let colon = match line.iter().position(|&b| !is_tchar(b)) {
        Some(i) if line.get(i) == Some(&b':') && i > 0 => i,
        Some(_) => return Err(ParseError::BadName),
        None => return Err(ParseError::NoColon),
    };
    let (name, value) = line.split_at(colon);
    let value = trim_blanks(value.get(1..).unwrap_or_default());
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7F) {
        return Err(ParseError::BadValue);
    }
    // Every tchar is ASCII, so the name is UTF-8.
    let name = std::str::from_utf8(name).map_err(|_| ParseError::BadName)?;
    Ok((name, value))
}

/// Rejects an unfinished line that can already be seen to be malformed:
/// a fold, or a name with a byte no token has.
fn check_partial(line: &[u8]) -> Result<(), ParseError> {
    if line.is_empty() || line == b"\r" {
        return Ok(());
    }
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ParseError::Folded);
    }
    match line.iter().position(|&b| !is_tchar(b)) {
        Some(i) if i > 0 && line.get(i) == Some(&b':') => Ok(()),
        Some(_) => Err(ParseError::BadName),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
        parse_head(buf, &Limits::default())
    }

    /// Every split of `buf` parses to `Ok(None)` or the same error, then the
    /// whole to `whole`.
    fn at_every_split(buf: &[u8]) -> Result<Option<(Head, usize)>, ParseError> {
        let whole = parse(buf);
        for i in 0..buf.len() {
            let part = parse(&buf[..i]);
            match (&part, &whole) {
                (Ok(None), _) => {}
                (Err(e), Err(w)) => assert_eq!(e, w, "split at {i} of {buf:?}"),
                (Ok(Some((h, n))), Ok(Some((hw, nw)))) => {
                    assert_eq!((h, n), (hw, nw), "split at {i}");
                }
                _ => panic!("split at {i} of {buf:?}: {part:?} vs {whole:?}"),
            }
        }
        whole
    }

    #[test]
    fn document_with_lf_and_crlf() {
        for text in [
            &b"Content-Type: text/plain\nX-A:  b \n\nbody"[..],
            &b"Content-Type: text/plain\r\nX-A:  b \r\n\r\nbody"[..],
        ] {
            let (head, n) = at_every_split(text).unwrap().unwrap();
            assert_eq!(&text[n..], b"body");
            let h: Vec<_> = head.headers().collect();
            assert_eq!(h, [("Content-Type", &b"text/plain"[..]), ("X-A", b"b")]);
            assert_eq!(head.response_status(), Status::OK);
            assert_eq!(head.kind(), Kind::Document);
        }
    }

    #[test]
    fn status_header() {
        let (head, _) = at_every_split(b"Status: 404 Not Here\nContent-Type: text/html\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.response_status().as_str(), "404 Not Here");
        assert_eq!(head.headers().len(), 1);
        let (head, _) = parse(b"status: 503\n\n").unwrap().unwrap();
        assert_eq!(head.response_status().as_str(), "503 Service Unavailable");
        for bad in [
            &b"Status: 20\n\n"[..],
            b"Status: abc OK\n\n",
            b"Status: 099 x\n\n",
        ] {
            assert_eq!(at_every_split(bad).unwrap_err(), ParseError::BadStatus);
        }
        assert_eq!(
            parse(b"Status: 200 OK\nStatus: 404 No\n\n").unwrap_err(),
            ParseError::Duplicate
        );
    }

    #[test]
    fn redirects() {
        let (head, n) = at_every_split(b"Location: /other?x=1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(n, 24);
        assert_eq!(head.kind(), Kind::LocalRedirect(b"/other?x=1"));
        let (head, _) = parse(b"Location: http://example.com/\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.kind(), Kind::Document);
        assert_eq!(head.response_status().code(), 302);
        // A local path with other headers is a client redirect.
        let (head, _) = parse(b"Location: /x\nContent-Type: text/plain\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.kind(), Kind::Document);
        assert_eq!(head.response_status().code(), 302);
        let (head, _) = parse(b"Status: 301 Moved\nLocation: /x\n\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.kind(), Kind::Document);
        assert_eq!(head.response_status().code(), 301);
    }

    #[test]
    fn malformed() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"\n", ParseError::NoHeaders),
            (b"\r\nbody", ParseError::NoHeaders),
            (b"hello\n\n", ParseError::NoColon),
            (b"hello world\n\n", ParseError::BadName),
            (b"Bad Name: x\n\n", ParseError::BadName),
            (b": x\n\n", ParseError::BadName),
            (b"X-A: a\x00b\n\n", ParseError::BadValue),
            (b"X-A: a\rb\n\n", ParseError::BadValue),
            (b"X-A: a\n b\n\n", ParseError::Folded),
            (b"<html>\n", ParseError::BadName),
        ];
        for (text, want) in cases {
            assert_eq!(at_every_split(text).unwrap_err(), *want, "{text:?}");
        }
        // Known bad before the line ends.
        assert_eq!(parse(b"<html").unwrap_err(), ParseError::BadName);
        assert_eq!(parse(b" x").unwrap_err(), ParseError::Folded);
    }

    #[test]
    fn limits() {
        let limits = Limits::default()
            .with_max_header_bytes(32)
            .with_max_headers(2);
        let ok = b"A: 1\nB: 2\n\n";
        assert!(parse_head(ok, &limits).unwrap().is_some());
        assert_eq!(
            parse_head(b"A: 1\nB: 2\nC: 3\n\n", &limits).unwrap_err(),
            ParseError::TooManyHeaders
        );
        // Exactly at the limit: the empty line is the 32nd byte.
        let line = |digits: usize| {
            let mut v = b"A: ".to_vec();
            v.resize(3 + digits, b'7');
            v.extend_from_slice(b"\n\n");
            v
        };
        assert_eq!(line(27).len(), 32);
        assert!(parse_head(&line(27), &limits).unwrap().is_some());
        assert_eq!(
            parse_head(&line(28), &limits).unwrap_err(),
            ParseError::TooLarge
        );
        // An unfinished block reaching the limit is too large, not "more".
        assert_eq!(
            parse_head(&[b'a'; 32], &limits).unwrap_err(),
            ParseError::TooLarge
        );
        assert!(parse_head(&[b'a'; 31], &limits).unwrap().is_none());
    }

    #[test]
    fn body_bytes_are_not_parsed() {
        let text = b"Content-Type: a/b\n\n\x00\xff\nnot: a header\n";
        let (head, n) = at_every_split(text).unwrap().unwrap();
        assert_eq!(head.len(), 1);
        assert_eq!(&text[n..], b"\x00\xff\nnot: a header\n");
    }
}
