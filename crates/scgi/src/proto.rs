//! Sans-IO codec for the SCGI request head.
//!
//! An SCGI request is a header block framed as a netstring, followed by a body of exactly
//! `CONTENT_LENGTH` bytes (SCGI protocol.txt §3):
//!
//! > headers ::= header*
//! > header ::= name NUL value NUL
//! > name ::= notnull+
//! > value ::= notnull*
//!
//! > Duplicate names are not allowed in the headers. The first header must have the name
//! > "CONTENT_LENGTH" and a value that is a nonempty sequence of ASCII digits \[...\]. There must
//! > also always be a header with the name "SCGI" and a value of "1".
//!
//! The netstring is djb's `[len] ":" [bytes] ","`, where `len` is decimal ASCII without leading
//! zeros (except the single digit `0`).
//!
//! [`decode_request`] reads a head from a byte buffer and [`encode_request`] writes one. Neither
//! touches a socket: the caller owns the buffer, reads more bytes when `decode_request` returns
//! `Ok(None)`, and reads the body itself after the bytes the head consumed. Names and values are
//! bytes; nothing here checks or assumes UTF-8.

use std::fmt;

/// Default for [`Limits::max_head`]: 64 KiB of header block.
///
/// The SCGI spec sets no limit. A real head is a CGI environment of a few KiB; 64 KiB leaves
/// room for large cookies while bounding what one connection can make the server buffer.
pub const DEFAULT_MAX_HEAD: usize = 64 * 1024;

/// Default for [`Limits::max_headers`]: 1024 header pairs.
///
/// A CGI environment is a few dozen variables plus one `HTTP_*` variable per request header
/// (Apache's `LimitRequestFields` allows 100 by default). Without a cap a 64 KiB head could
/// carry about 21,000 pairs, and a decoded pair takes some 50 bytes of index memory against as
/// few as 3 bytes on the wire.
pub const DEFAULT_MAX_HEADERS: usize = 1024;

/// Most decimal digits accepted in the netstring length prefix.
///
/// Netstrings do not bound the length; we do, so that a long run of digits is rejected at the
/// eleventh byte whatever [`Limits::max_head`] says (scgi 0.3.4 indexed past a 10-byte array
/// there). Ten digits express every length below 10 GB.
pub const MAX_LENGTH_DIGITS: usize = 10;

/// The name of the header that must come first (SCGI §3).
const CONTENT_LENGTH: &[u8] = b"CONTENT_LENGTH";
/// The name of the header that marks the protocol version (SCGI §3).
const SCGI: &[u8] = b"SCGI";
/// The only protocol version defined (SCGI §3).
const SCGI_VERSION: &[u8] = b"1";

/// One header as `(name, value)`, both raw bytes without their terminating NUL.
pub type Header<'a> = (&'a [u8], &'a [u8]);

/// Resource limits applied by [`decode_request`].
///
/// Build one with [`Limits::default`] and the `with_*` setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Largest header block accepted, in bytes (the netstring's declared length, excluding the
    /// length prefix, `:` and `,`).
    ///
    /// The declared length is compared with this limit as each digit arrives, so an oversized
    /// head is rejected before its bytes are awaited or buffered.
    pub max_head: usize,
    /// Largest number of header pairs accepted, `CONTENT_LENGTH` and `SCGI` included.
    pub max_headers: usize,
}

impl Limits {
    /// Limits with the defaults [`DEFAULT_MAX_HEAD`] and [`DEFAULT_MAX_HEADERS`].
    #[must_use]
    pub const fn new() -> Self {
        Limits {
            max_head: DEFAULT_MAX_HEAD,
            max_headers: DEFAULT_MAX_HEADERS,
        }
    }

    /// Returns these limits with [`max_head`](Limits::max_head) set to `bytes`.
    #[must_use]
    pub const fn with_max_head(mut self, bytes: usize) -> Self {
        self.max_head = bytes;
        self
    }

    /// Returns these limits with [`max_headers`](Limits::max_headers) set to `count`.
    #[must_use]
    pub const fn with_max_headers(mut self, count: usize) -> Self {
        self.max_headers = count;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

/// Why a request head could not be decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The netstring does not start with a decimal digit (it is empty before `:`, or starts with
    /// some other byte).
    InvalidLength,
    /// The netstring length has a leading zero (`01:`); only `0:` may start with `0`.
    LeadingZero,
    /// The netstring length has more than [`MAX_LENGTH_DIGITS`] digits.
    TooManyLengthDigits,
    /// The header block is longer than [`Limits::max_head`] (or, when encoding, longer than a
    /// netstring length of [`MAX_LENGTH_DIGITS`] digits can express).
    HeadTooLarge,
    /// The netstring length is followed by a byte other than a digit or `:`.
    MissingColon,
    /// The header block is followed by a byte other than `,`.
    MissingComma,
    /// The header block does not end right after a value's NUL: a name or value is unterminated.
    UnterminatedHeader,
    /// A header name is empty.
    EmptyName,
    /// A header name or value to be encoded contains a NUL byte.
    NulInHeader,
    /// There are more header pairs than [`Limits::max_headers`].
    TooManyHeaders,
    /// There is no `CONTENT_LENGTH` header (this includes an empty header block).
    MissingContentLength,
    /// `CONTENT_LENGTH` is present but is not the first header.
    ContentLengthNotFirst,
    /// The `CONTENT_LENGTH` value is empty or contains a byte that is not an ASCII digit.
    InvalidContentLength,
    /// The `CONTENT_LENGTH` value does not fit in a `u64`.
    ContentLengthTooLarge,
    /// Two headers have the same name.
    DuplicateHeader,
    /// There is no `SCGI` header.
    MissingScgi,
    /// The `SCGI` header's value is not `1`.
    UnsupportedScgiVersion,
}

impl Error {
    /// The static message shown by `Display`.
    fn as_str(self) -> &'static str {
        match self {
            Error::InvalidLength => "netstring length is not a decimal number",
            Error::LeadingZero => "netstring length has a leading zero",
            Error::TooManyLengthDigits => "netstring length has too many digits",
            Error::HeadTooLarge => "header block is too large",
            Error::MissingColon => "netstring length is not followed by ':'",
            Error::MissingComma => "netstring is not terminated by ','",
            Error::UnterminatedHeader => "header name or value is not terminated by NUL",
            Error::EmptyName => "header name is empty",
            Error::NulInHeader => "header name or value contains NUL",
            Error::TooManyHeaders => "too many headers",
            Error::MissingContentLength => "missing CONTENT_LENGTH header",
            Error::ContentLengthNotFirst => "first header is not CONTENT_LENGTH",
            Error::InvalidContentLength => "invalid CONTENT_LENGTH value",
            Error::ContentLengthTooLarge => "content length does not fit in 64 bits",
            Error::DuplicateHeader => "duplicate header name",
            Error::MissingScgi => "missing SCGI header",
            Error::UnsupportedScgiVersion => "unsupported SCGI version",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Error {}

/// A decoded SCGI request head, borrowing its names and values from the input buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The parsed `CONTENT_LENGTH` value.
    content_length: u64,
    /// Header pairs in wire order; never empty, `CONTENT_LENGTH` first, names unique.
    headers: Vec<Header<'a>>,
}

impl<'a> Request<'a> {
    /// The body length in bytes, from the `CONTENT_LENGTH` header.
    ///
    /// The body follows the head; [`decode_request`] does not look at it.
    #[must_use]
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// The header pairs `(name, value)` in wire order, starting with `CONTENT_LENGTH`.
    #[must_use]
    pub fn headers(&self) -> impl ExactSizeIterator<Item = Header<'a>> + DoubleEndedIterator {
        self.headers.iter().copied()
    }

    /// The value of the header called `name`, if present.
    ///
    /// Names are compared byte for byte (CGI variable names are case-sensitive). This is a
    /// linear scan; to look at every header, iterate [`headers`](Request::headers) instead.
    #[must_use]
    pub fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }
}

/// The header pairs in wire order, by value: the request's own list, so a
/// caller that keeps the pairs in another form can reuse its allocation.
impl<'a> IntoIterator for Request<'a> {
    type Item = Header<'a>;
    type IntoIter = std::vec::IntoIter<Header<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.headers.into_iter()
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Shows a byte string as escaped ASCII in quotes.
        struct Bytes<'b>(&'b [u8]);
        impl fmt::Debug for Bytes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "\"{}\"", self.0.escape_ascii())
            }
        }
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|&(name, value)| (Bytes(name), Bytes(value)))
            .collect();
        f.debug_struct("Request")
            .field("content_length", &self.content_length)
            .field("headers", &headers)
            .finish()
    }
}

/// Decodes an SCGI request head from the start of `buf`.
///
/// Returns `Ok(None)` while `buf` holds only a valid prefix of a head: read more bytes and call
/// again with the whole buffer. On success returns the head and the number of bytes it took
/// (the netstring, including its final `,`); the body's
/// [`content_length`](Request::content_length) bytes start at that offset.
///
/// Errors in the length prefix are reported as soon as the offending byte is seen: in
/// particular a declared length above [`Limits::max_head`] fails at the digit that exceeds it,
/// so an oversized head is never waited for. Errors inside the header block are reported once
/// the whole netstring is present.
///
/// # Errors
///
/// Any violation of the netstring syntax or of SCGI §3 (see [`Error`]), or of `limits`.
pub fn decode_request<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Request<'a>, usize)>, Error> {
    let Some((block, consumed)) = decode_netstring(buf, limits.max_head)? else {
        return Ok(None);
    };
    let headers = split_headers(block, limits.max_headers)?;
    let content_length = check_headers(&headers)?;
    Ok(Some((
        Request {
            content_length,
            headers,
        },
        consumed,
    )))
}

/// Appends the SCGI request head for `headers` to `out` and returns the number of bytes appended.
///
/// The head is validated exactly as [`decode_request`] would (apart from [`Limits`]): the first
/// header must be `CONTENT_LENGTH` with a decimal value that fits a `u64`, an `SCGI` header with
/// value `1` must be present, names must be non-empty and unique, and no name or value may
/// contain NUL. On error `out` is left unchanged. The body is not written; append it after.
///
/// # Errors
///
/// The first violation found (see [`Error`]).
pub fn encode_request<N, V>(headers: &[(N, V)], out: &mut Vec<u8>) -> Result<usize, Error>
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut block_len: usize = 0;
    for (name, value) in headers {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.is_empty() {
            return Err(Error::EmptyName);
        }
        if name.contains(&0) || value.contains(&0) {
            return Err(Error::NulInHeader);
        }
        // Two NULs per pair. The sum cannot really overflow for distinct slices, but one slice
        // can be passed many times.
        block_len = block_len
            .checked_add(name.len())
            .and_then(|n| n.checked_add(value.len()))
            .and_then(|n| n.checked_add(2))
            .ok_or(Error::HeadTooLarge)?;
    }
    check_headers(headers)?;
    let len_digits = block_len.to_string();
    if len_digits.len() > MAX_LENGTH_DIGITS {
        return Err(Error::HeadTooLarge);
    }

    let start = out.len();
    out.reserve(len_digits.len() + block_len + 2);
    out.extend_from_slice(len_digits.as_bytes());
    out.push(b':');
    for (name, value) in headers {
        out.extend_from_slice(name.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out.push(b',');
    Ok(out.len() - start)
}

/// Reads the netstring at the start of `buf`: returns its content and the bytes consumed
/// (prefix, `:`, content and `,`), or `None` if `buf` is a valid but incomplete prefix.
fn decode_netstring(buf: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, Error> {
    let mut len: usize = 0;
    let mut digits: usize = 0;
    loop {
        let Some(&byte) = buf.get(digits) else {
            return Ok(None);
        };
        match byte {
            b'0'..=b'9' => {
                // `len == 0` after one digit means that digit was '0'.
                if digits == 1 && len == 0 {
                    return Err(Error::LeadingZero);
                }
                if digits == MAX_LENGTH_DIGITS {
                    return Err(Error::TooManyLengthDigits);
                }
                len = len
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(usize::from(byte - b'0')))
                    .filter(|&n| n <= max_len)
                    .ok_or(Error::HeadTooLarge)?;
                digits += 1;
            }
            b':' if digits > 0 => break,
            _ if digits == 0 => return Err(Error::InvalidLength),
            _ => return Err(Error::MissingColon),
        }
    }
    // `digits` indexes the ':'; `len <= max_len`, and the checked adds cover a `max_len` near
    // `usize::MAX`.
    let start = digits + 1;
    let Some(end) = start.checked_add(len) else {
        return Err(Error::HeadTooLarge);
    };
    let (Some(block), Some(&comma)) = (buf.get(start..end), buf.get(end)) else {
        return Ok(None);
    };
    if comma != b',' {
        return Err(Error::MissingComma);
    }
    Ok(Some((block, end + 1)))
}

/// Splits a header block into `(name, value)` pairs, checking the grammar of SCGI §3 and the
/// header count.
fn split_headers(block: &[u8], max_headers: usize) -> Result<Vec<Header<'_>>, Error> {
    // Room for a web server's usual head at once (nginx sends about 20 headers), so the list
    // does not grow pair by pair; bounded whatever the head says.
    let mut headers = Vec::with_capacity(max_headers.min(SMALL_HEAD));
    // Every name and value ends in NUL, so a non-empty block ends in NUL; without that final
    // NUL, splitting at NULs yields an even number of fields exactly when each has its own NUL.
    let fields = match block.split_last() {
        None => return Ok(headers),
        Some((&0, fields)) => fields,
        Some(_) => return Err(Error::UnterminatedHeader),
    };
    let mut fields = fields.split(|&b| b == 0);
    while let Some(name) = fields.next() {
        if name.is_empty() {
            return Err(Error::EmptyName);
        }
        let Some(value) = fields.next() else {
            return Err(Error::UnterminatedHeader);
        };
        if headers.len() == max_headers {
            return Err(Error::TooManyHeaders);
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// Checks the SCGI §3 rules on a header list (names already known non-empty and NUL-free) and
/// returns the parsed `CONTENT_LENGTH`.
///
/// Checked in this order: `CONTENT_LENGTH` first and valid, names unique, `SCGI` is `1`.
fn check_headers<N, V>(headers: &[(N, V)]) -> Result<u64, Error>
where
    N: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let content_length = match headers.first() {
        Some((name, value)) if name.as_ref() == CONTENT_LENGTH => {
            parse_content_length(value.as_ref())?
        }
        _ if headers
            .iter()
            .any(|(name, _)| name.as_ref() == CONTENT_LENGTH) =>
        {
            return Err(Error::ContentLengthNotFirst);
        }
        _ => return Err(Error::MissingContentLength),
    };

    if has_duplicate_name(headers) {
        return Err(Error::DuplicateHeader);
    }

    match headers.iter().find(|(name, _)| name.as_ref() == SCGI) {
        Some((_, value)) if value.as_ref() == SCGI_VERSION => Ok(content_length),
        Some(_) => Err(Error::UnsupportedScgiVersion),
        None => Err(Error::MissingScgi),
    }
}

/// Heads with at most this many headers are checked for duplicate names pairwise, on a short
/// key per name kept on the stack; larger ones by sorting.
const SMALL_HEAD: usize = 48;

/// Whether two headers share a name.
fn has_duplicate_name<N, V>(headers: &[(N, V)]) -> bool
where
    N: AsRef<[u8]>,
{
    if headers.len() <= SMALL_HEAD {
        // Each name sets one of 64 bits picked from its length and its first and last bytes.
        // Only a name whose bit is already set is compared with the names before it that share
        // its key, so a head of distinct names (the usual case) costs one pass.
        let key = |name: &[u8]| -> u64 {
            let ends = name
                .first()
                .zip(name.last())
                .map_or(0, |(&a, &b)| u64::from(a) << 8 | u64::from(b));
            (name.len() as u64) << 16 | ends
        };
        let mut keys = [0_u64; SMALL_HEAD];
        let mut seen = 0_u64;
        for (i, (name, _)) in headers.iter().enumerate() {
            let name = name.as_ref();
            let k = key(name);
            let bit = 1_u64 << (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58);
            if seen & bit != 0 {
                let earlier = keys.get(..i).unwrap_or_default();
                if earlier
                    .iter()
                    .zip(headers)
                    .any(|(&other, (n, _))| other == k && n.as_ref() == name)
                {
                    return true;
                }
            }
            seen |= bit;
            if let Some(slot) = keys.get_mut(i) {
                *slot = k;
            }
        }
        return false;
    }
    // Sorting makes duplicates adjacent: O(n log n). A pairwise scan would be quadratic, and a
    // 64 KiB head can carry some 20,000 names.
    let mut names: Vec<&[u8]> = headers.iter().map(|(name, _)| name.as_ref()).collect();
    names.sort_unstable();
    names
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if a == b))
}

/// Parses a `CONTENT_LENGTH` value: non-empty ASCII digits (SCGI §3), as a `u64`.
fn parse_content_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::InvalidContentLength);
    }
    value.iter().try_fold(0_u64, |n, &digit| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(digit - b'0')))
            .ok_or(Error::ContentLengthTooLarge)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header list as written in the fixtures.
    type Pairs = &'static [Header<'static>];

    /// A decode result as owned, comparable data: content length, headers, bytes consumed.
    type Summary = Result<Option<(u64, Vec<(Vec<u8>, Vec<u8>)>, usize)>, Error>;

    /// A successfully decoded fixture.
    struct Want {
        content_length: u64,
        headers: Pairs,
        consumed: usize,
    }

    /// What decoding a whole fixture must give.
    enum Expected {
        Decoded(Want),
        NeedMore,
        Fails(Error),
    }

    /// One golden fixture: the input bytes and the expected outcome.
    struct Case {
        desc: &'static str,
        bytes: &'static [u8],
        expected: Expected,
    }

    /// The request of SCGI protocol.txt §3, as pairs.
    const SPEC_HEADERS: Pairs = &[
        (b"CONTENT_LENGTH", b"27"),
        (b"SCGI", b"1"),
        (b"REQUEST_METHOD", b"POST"),
        (b"REQUEST_URI", b"/deepthought"),
    ];

    /// The request of SCGI protocol.txt §3, on the wire, body included.
    const SPEC_EXAMPLE: &[u8] = b"70:\
        CONTENT_LENGTH\x0027\x00\
        SCGI\x001\x00\
        REQUEST_METHOD\x00POST\x00\
        REQUEST_URI\x00/deepthought\x00\
        ,\
        What is the answer to life?";

    const MINIMAL: Pairs = &[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1")];

    fn ok(content_length: u64, headers: Pairs, consumed: usize) -> Expected {
        Expected::Decoded(Want {
            content_length,
            headers,
            consumed,
        })
    }

    #[allow(clippy::too_many_lines)]
    fn cases() -> Vec<Case> {
        vec![
            Case {
                desc: "the example request of SCGI §3, with its body",
                bytes: SPEC_EXAMPLE,
                expected: ok(27, SPEC_HEADERS, 74),
            },
            Case {
                desc: "only the two required headers",
                bytes: b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,",
                expected: ok(0, MINIMAL, 28),
            },
            Case {
                desc: "an empty value",
                bytes: b"31:CONTENT_LENGTH\x000\x00SCGI\x001\x00HTTPS\x00\x00,",
                expected: ok(
                    0,
                    &[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"HTTPS", b"")],
                    35,
                ),
            },
            Case {
                desc: "non-UTF-8 name and value",
                bytes: b"30:CONTENT_LENGTH\x000\x00SCGI\x001\x00\xff\xfe\x00\xc3\x28\x00,",
                expected: ok(
                    0,
                    &[
                        (b"CONTENT_LENGTH", b"0"),
                        (b"SCGI", b"1"),
                        (b"\xff\xfe", b"\xc3\x28"),
                    ],
                    34,
                ),
            },
            Case {
                desc: "CONTENT_LENGTH with leading zeros is still digits",
                bytes: b"26:CONTENT_LENGTH\x00007\x00SCGI\x001\x00,",
                expected: ok(7, &[(b"CONTENT_LENGTH", b"007"), (b"SCGI", b"1")], 30),
            },
            Case {
                desc: "CONTENT_LENGTH of u64::MAX",
                bytes: b"43:CONTENT_LENGTH\x0018446744073709551615\x00SCGI\x001\x00,",
                expected: ok(
                    u64::MAX,
                    &[
                        (b"CONTENT_LENGTH", b"18446744073709551615"),
                        (b"SCGI", b"1"),
                    ],
                    47,
                ),
            },
            Case {
                desc: "empty input needs more bytes",
                bytes: b"",
                expected: Expected::NeedMore,
            },
            Case {
                desc: "a truncated head needs more bytes",
                bytes: b"70:CONTENT_LENGTH\x0027\x00SC",
                expected: Expected::NeedMore,
            },
            Case {
                desc: "empty length",
                bytes: b":,",
                expected: Expected::Fails(Error::InvalidLength),
            },
            Case {
                desc: "length starts with a letter",
                bytes: b"x1:a,",
                expected: Expected::Fails(Error::InvalidLength),
            },
            Case {
                desc: "length starts with a space",
                bytes: b" 1:a,",
                expected: Expected::Fails(Error::InvalidLength),
            },
            Case {
                desc: "leading zero",
                bytes: b"01:\x00,",
                expected: Expected::Fails(Error::LeadingZero),
            },
            Case {
                desc: "two zeros",
                bytes: b"00:,",
                expected: Expected::Fails(Error::LeadingZero),
            },
            Case {
                desc: "empty block has no CONTENT_LENGTH",
                bytes: b"0:,",
                expected: Expected::Fails(Error::MissingContentLength),
            },
            Case {
                desc: "comma instead of colon",
                bytes: b"24,CONTENT_LENGTH\x000\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::MissingColon),
            },
            Case {
                desc: "letter inside the length",
                bytes: b"2x4:",
                expected: Expected::Fails(Error::MissingColon),
            },
            Case {
                desc: "zero length without colon",
                bytes: b"0,",
                expected: Expected::Fails(Error::MissingColon),
            },
            Case {
                desc: "semicolon instead of the final comma",
                bytes: b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00;",
                expected: Expected::Fails(Error::MissingComma),
            },
            Case {
                desc: "declared length one short of the block",
                bytes: b"23:CONTENT_LENGTH\x000\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::MissingComma),
            },
            Case {
                desc: "length over the default limit fails at its fifth digit",
                bytes: b"70000",
                expected: Expected::Fails(Error::HeadTooLarge),
            },
            Case {
                desc: "ten nines",
                bytes: b"9999999999:",
                expected: Expected::Fails(Error::HeadTooLarge),
            },
            Case {
                desc: "eleven digits",
                bytes: b"12345678901:",
                expected: Expected::Fails(Error::HeadTooLarge),
            },
            Case {
                desc: "CONTENT_LENGTH second",
                bytes: b"24:SCGI\x001\x00CONTENT_LENGTH\x000\x00,",
                expected: Expected::Fails(Error::ContentLengthNotFirst),
            },
            Case {
                desc: "no CONTENT_LENGTH at all",
                bytes: b"7:SCGI\x001\x00,",
                expected: Expected::Fails(Error::MissingContentLength),
            },
            Case {
                desc: "lowercase content_length is another name",
                bytes: b"24:content_length\x000\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::MissingContentLength),
            },
            Case {
                desc: "empty CONTENT_LENGTH",
                bytes: b"23:CONTENT_LENGTH\x00\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::InvalidContentLength),
            },
            Case {
                desc: "negative CONTENT_LENGTH",
                bytes: b"25:CONTENT_LENGTH\x00-1\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::InvalidContentLength),
            },
            Case {
                desc: "CONTENT_LENGTH with a plus sign",
                bytes: b"25:CONTENT_LENGTH\x00+1\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::InvalidContentLength),
            },
            Case {
                desc: "CONTENT_LENGTH with a trailing space",
                bytes: b"25:CONTENT_LENGTH\x001 \x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::InvalidContentLength),
            },
            Case {
                desc: "CONTENT_LENGTH of u64::MAX + 1",
                bytes: b"43:CONTENT_LENGTH\x0018446744073709551616\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::ContentLengthTooLarge),
            },
            Case {
                desc: "no SCGI header",
                bytes: b"17:CONTENT_LENGTH\x000\x00,",
                expected: Expected::Fails(Error::MissingScgi),
            },
            Case {
                desc: "SCGI 2",
                bytes: b"24:CONTENT_LENGTH\x000\x00SCGI\x002\x00,",
                expected: Expected::Fails(Error::UnsupportedScgiVersion),
            },
            Case {
                desc: "SCGI empty",
                bytes: b"23:CONTENT_LENGTH\x000\x00SCGI\x00\x00,",
                expected: Expected::Fails(Error::UnsupportedScgiVersion),
            },
            Case {
                desc: "SCGI 01",
                bytes: b"25:CONTENT_LENGTH\x000\x00SCGI\x0001\x00,",
                expected: Expected::Fails(Error::UnsupportedScgiVersion),
            },
            Case {
                desc: "duplicate SCGI",
                bytes: b"31:CONTENT_LENGTH\x000\x00SCGI\x001\x00SCGI\x001\x00,",
                expected: Expected::Fails(Error::DuplicateHeader),
            },
            Case {
                desc: "duplicate CONTENT_LENGTH",
                bytes: b"41:CONTENT_LENGTH\x000\x00SCGI\x001\x00CONTENT_LENGTH\x000\x00,",
                expected: Expected::Fails(Error::DuplicateHeader),
            },
            Case {
                desc: "empty name",
                bytes: b"27:CONTENT_LENGTH\x000\x00SCGI\x001\x00\x00x\x00,",
                expected: Expected::Fails(Error::EmptyName),
            },
            Case {
                desc: "block of two NULs",
                bytes: b"2:\x00\x00,",
                expected: Expected::Fails(Error::EmptyName),
            },
            Case {
                desc: "block ends inside a name",
                bytes: b"25:CONTENT_LENGTH\x000\x00SCGI\x001\x00X,",
                expected: Expected::Fails(Error::UnterminatedHeader),
            },
            Case {
                desc: "block ends after a name",
                bytes: b"26:CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00,",
                expected: Expected::Fails(Error::UnterminatedHeader),
            },
            Case {
                desc: "block ends inside a value",
                bytes: b"27:CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00v,",
                expected: Expected::Fails(Error::UnterminatedHeader),
            },
            Case {
                desc: "no NUL at all",
                bytes: b"14:CONTENT_LENGTH,",
                expected: Expected::Fails(Error::UnterminatedHeader),
            },
        ]
    }

    /// Turns a decode result into owned, comparable data.
    fn summary(result: Result<Option<(Request<'_>, usize)>, Error>) -> Summary {
        result.map(|found| {
            found.map(|(request, consumed)| {
                let headers = request
                    .headers()
                    .map(|(name, value)| (name.to_vec(), value.to_vec()))
                    .collect();
                (request.content_length(), headers, consumed)
            })
        })
    }

    fn want_summary(expected: &Expected) -> Summary {
        match expected {
            Expected::Decoded(want) => Ok(Some((
                want.content_length,
                want.headers
                    .iter()
                    .map(|(name, value)| (name.to_vec(), value.to_vec()))
                    .collect(),
                want.consumed,
            ))),
            Expected::NeedMore => Ok(None),
            Expected::Fails(error) => Err(*error),
        }
    }

    fn decode(bytes: &[u8]) -> Result<Option<(Request<'_>, usize)>, Error> {
        decode_request(bytes, &Limits::default())
    }

    fn encode(headers: &[Header<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let written = encode_request(headers, &mut out).expect("valid headers encode");
        assert_eq!(written, out.len());
        out
    }

    /// Builds the netstring around `block` without going through [`encode_request`].
    fn netstring(block: &[u8]) -> Vec<u8> {
        let mut out = format!("{}:", block.len()).into_bytes();
        out.extend_from_slice(block);
        out.push(b',');
        out
    }

    #[test]
    fn golden_fixtures_decode() {
        for case in cases() {
            let got = summary(decode(case.bytes));
            assert_eq!(
                got,
                want_summary(&case.expected),
                "{}: {:?}",
                case.desc,
                case.bytes.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn golden_fixtures_reencode_to_the_same_bytes() {
        for case in cases() {
            let Expected::Decoded(want) = &case.expected else {
                continue;
            };
            let out = encode(want.headers);
            assert_eq!(
                out.escape_ascii().to_string(),
                case.bytes[..want.consumed].escape_ascii().to_string(),
                "{}",
                case.desc
            );
        }
    }

    #[test]
    fn golden_fixtures_split_at_every_byte() {
        for case in cases() {
            let full = summary(decode(case.bytes));
            let mut settled = false;
            for cut in 0..=case.bytes.len() {
                let got = summary(decode(&case.bytes[..cut]));
                if got == Ok(None) {
                    assert!(!settled, "{}: cut {cut} went back to None", case.desc);
                    if let Ok(Some((_, _, consumed))) = &full {
                        assert!(cut < *consumed, "{}: cut {cut}", case.desc);
                    }
                } else {
                    assert_eq!(got, full, "{}: cut {cut}", case.desc);
                    settled = true;
                }
            }
            assert_eq!(settled, full != Ok(None), "{}", case.desc);
        }
    }

    #[test]
    fn spec_example_decodes_and_reencodes() {
        let (request, consumed) = decode(SPEC_EXAMPLE).unwrap().unwrap();
        assert_eq!(consumed, 74);
        assert_eq!(request.content_length(), 27);
        assert_eq!(&SPEC_EXAMPLE[consumed..], b"What is the answer to life?");
        assert_eq!(request.get(b"REQUEST_URI"), Some(&b"/deepthought"[..]));
        assert_eq!(request.get(b"SCGI"), Some(&b"1"[..]));
        assert_eq!(request.get(b"PATH_INFO"), None);
        assert_eq!(request.headers().len(), 4);
        assert_eq!(request.headers().next_back(), Some(SPEC_HEADERS[3]));

        let headers: Vec<_> = request.headers().collect();
        let mut out = encode(&headers);
        out.extend_from_slice(b"What is the answer to life?");
        assert_eq!(out, SPEC_EXAMPLE);
    }

    #[test]
    fn eleven_digit_length_is_rejected() {
        // With the default limit the length is already too large at its sixth digit.
        assert_eq!(decode(b"123456"), Err(Error::HeadTooLarge));
        // With no practical limit the digit count stops it at the eleventh digit.
        let unlimited = Limits::default().with_max_head(usize::MAX);
        assert_eq!(decode_request(b"1234567890", &unlimited).unwrap(), None);
        assert_eq!(
            decode_request(b"12345678901", &unlimited),
            Err(Error::TooManyLengthDigits)
        );
        assert_eq!(
            decode_request(b"12345678901:", &unlimited),
            Err(Error::TooManyLengthDigits)
        );
        assert_eq!(
            decode_request(b"99999999999999999999999:", &unlimited),
            Err(Error::TooManyLengthDigits)
        );
    }

    #[test]
    fn nine_gigabyte_length_fails_before_any_allocation() {
        // scgi 0.3.4 allocated 9.3 GB for these 11 bytes. The codec never allocates for the
        // block, and with the default limit it fails at the first digit over 64 KiB.
        assert_eq!(decode(b"9999999999:"), Err(Error::HeadTooLarge));
        assert_eq!(decode(b"99999"), Err(Error::HeadTooLarge));
        assert_eq!(decode(b"9999").unwrap(), None);
        // Even an unlimited decoder only waits for more bytes.
        let unlimited = Limits::default().with_max_head(usize::MAX);
        assert_eq!(decode_request(b"9999999999:", &unlimited).unwrap(), None);
    }

    #[test]
    fn leading_zero_is_rejected() {
        assert_eq!(decode(b"01:x,"), Err(Error::LeadingZero));
        assert_eq!(decode(b"01"), Err(Error::LeadingZero));
        assert_eq!(decode(b"00:"), Err(Error::LeadingZero));
        assert_eq!(decode(b"0").unwrap(), None);
        assert_eq!(decode(b"0:").unwrap(), None);
    }

    #[test]
    fn empty_block_is_missing_content_length() {
        assert_eq!(decode(b"0:,"), Err(Error::MissingContentLength));
        assert_eq!(decode(b"0:;"), Err(Error::MissingComma));
    }

    #[test]
    fn missing_colon_is_rejected() {
        assert_eq!(decode(b"24,"), Err(Error::MissingColon));
        assert_eq!(decode(b"24CONTENT_LENGTH"), Err(Error::MissingColon));
        assert_eq!(decode(b":"), Err(Error::InvalidLength));
    }

    #[test]
    fn missing_or_wrong_trailing_comma_is_rejected() {
        let good = b"24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,";
        let (head, _) = good.split_at(good.len() - 1);
        assert_eq!(decode(head).unwrap(), None);
        for wrong in [b';', b'\x00', b'\n', b'2', b':'] {
            let mut bytes = head.to_vec();
            bytes.push(wrong);
            assert_eq!(decode(&bytes), Err(Error::MissingComma), "{wrong}");
        }
    }

    #[test]
    fn content_length_not_first_is_rejected() {
        assert_eq!(
            decode(b"24:SCGI\x001\x00CONTENT_LENGTH\x000\x00,"),
            Err(Error::ContentLengthNotFirst)
        );
    }

    #[test]
    fn content_length_must_be_decimal_digits() {
        for value in [&b""[..], b"-1", b"1.0", b"0x1", b" 1", b"1 ", b"\xd9\xa1"] {
            let mut block = b"CONTENT_LENGTH\x00".to_vec();
            block.extend_from_slice(value);
            block.extend_from_slice(b"\x00SCGI\x001\x00");
            assert_eq!(
                decode(&netstring(&block)),
                Err(Error::InvalidContentLength),
                "{}",
                value.escape_ascii()
            );
        }
    }

    #[test]
    fn content_length_overflowing_u64_is_rejected() {
        let max = netstring(b"CONTENT_LENGTH\x0018446744073709551615\x00SCGI\x001\x00");
        assert_eq!(decode(&max).unwrap().unwrap().0.content_length(), u64::MAX);
        for value in [&b"18446744073709551616"[..], b"99999999999999999999999999"] {
            let mut block = b"CONTENT_LENGTH\x00".to_vec();
            block.extend_from_slice(value);
            block.extend_from_slice(b"\x00SCGI\x001\x00");
            assert_eq!(
                decode(&netstring(&block)),
                Err(Error::ContentLengthTooLarge)
            );
        }
    }

    #[test]
    fn scgi_header_must_be_present_and_one() {
        assert_eq!(
            decode(b"17:CONTENT_LENGTH\x000\x00,"),
            Err(Error::MissingScgi)
        );
        for value in [&b""[..], b"0", b"2", b"01", b"1.0", b"1 "] {
            let mut block = b"CONTENT_LENGTH\x000\x00SCGI\x00".to_vec();
            block.extend_from_slice(value);
            block.push(0);
            assert_eq!(
                decode(&netstring(&block)),
                Err(Error::UnsupportedScgiVersion),
                "{}",
                value.escape_ascii()
            );
        }
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00A\x00x\x00B\x00y\x00A\x00z\x00";
        assert_eq!(decode(&netstring(block)), Err(Error::DuplicateHeader));
        let block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00CONTENT_LENGTH\x000\x00";
        assert_eq!(decode(&netstring(block)), Err(Error::DuplicateHeader));
        // Same value, different case: two distinct names.
        let block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00A\x00x\x00a\x00x\x00";
        assert!(decode(&netstring(block)).unwrap().is_some());
    }

    #[test]
    fn empty_name_is_rejected() {
        let block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00\x00value\x00";
        assert_eq!(decode(&netstring(block)), Err(Error::EmptyName));
        assert_eq!(decode(b"1:\x00,"), Err(Error::EmptyName));
    }

    #[test]
    fn block_not_ending_in_nul_is_rejected() {
        for block in [
            &b"CONTENT_LENGTH\x000\x00SCGI\x001"[..],
            b"CONTENT_LENGTH\x000\x00SCGI\x001\x00X",
            b"CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00",
            b"CONTENT_LENGTH\x000\x00SCGI\x001\x00X\x00Y",
            b"CONTENT_LENGTH",
            b"CONTENT_LENGTH\x00",
        ] {
            assert_eq!(
                decode(&netstring(block)),
                Err(Error::UnterminatedHeader),
                "{}",
                block.escape_ascii()
            );
        }
    }

    #[test]
    fn non_utf8_names_and_values_pass_through() {
        let block = b"CONTENT_LENGTH\x000\x00SCGI\x001\x00\
            HTTP_X_\xff\x00caf\xe9\x00\
            \x80\x00\xc0\xaf\x00";
        let bytes = netstring(block);
        let (request, consumed) = decode(&bytes).unwrap().unwrap();
        assert_eq!(consumed, bytes.len());
        assert_eq!(request.get(b"HTTP_X_\xff"), Some(&b"caf\xe9"[..]));
        assert_eq!(request.get(b"\x80"), Some(&b"\xc0\xaf"[..]));
        let headers: Vec<_> = request.headers().collect();
        assert_eq!(encode(&headers), bytes);
    }

    /// A head whose block is exactly `len` bytes (`len` ≥ 27), padded with one filler value.
    fn head_of_block_len(len: usize) -> Vec<u8> {
        // CONTENT_LENGTH 0 (17 bytes) + SCGI 1 (7 bytes) + "X\0" value "\0" (3 bytes + filler).
        let filler = vec![b'f'; len - 27];
        let bytes = encode(&[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"X", &filler)]);
        assert_eq!(bytes.len(), len.to_string().len() + 1 + len + 1);
        bytes
    }

    #[test]
    fn head_at_the_limit_is_accepted_and_one_byte_over_is_rejected() {
        let at = head_of_block_len(DEFAULT_MAX_HEAD);
        let (_, consumed) = decode(&at).unwrap().unwrap();
        assert_eq!(consumed, at.len());
        let over = head_of_block_len(DEFAULT_MAX_HEAD + 1);
        assert_eq!(decode(&over), Err(Error::HeadTooLarge));
        // Rejected from the length prefix alone, before the block is buffered.
        assert_eq!(decode(b"65537:"), Err(Error::HeadTooLarge));
        assert_eq!(decode(b"65536:").unwrap(), None);

        let small = head_of_block_len(100);
        let limits = Limits::default().with_max_head(100);
        assert!(decode_request(&small, &limits).unwrap().is_some());
        let limits = Limits::default().with_max_head(99);
        assert_eq!(decode_request(&small, &limits), Err(Error::HeadTooLarge));
    }

    #[test]
    fn header_count_limit_is_enforced() {
        let bytes = encode(&[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"A", b"a")]);
        let limits = Limits::default().with_max_headers(3);
        assert!(decode_request(&bytes, &limits).unwrap().is_some());
        let limits = Limits::default().with_max_headers(2);
        assert_eq!(decode_request(&bytes, &limits), Err(Error::TooManyHeaders));
    }

    #[test]
    fn twenty_thousand_distinct_pairs_decode() {
        const PAIRS: usize = 20_000;
        let names: Vec<Vec<u8>> = (0..PAIRS)
            .map(|i| format!("HTTP_X_{i:05}").into_bytes())
            .collect();
        let mut headers: Vec<Header<'_>> = vec![(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1")];
        headers.extend(names.iter().map(|name| (name.as_slice(), &b"v"[..])));
        let bytes = encode(&headers);
        let limits = Limits::default()
            .with_max_head(1 << 20)
            .with_max_headers(PAIRS + 2);

        // No timing here (timed unit tests are flaky): the duplicate check is
        // a sort, O(n log n), by construction; this checks its correctness at scale.
        let (request, consumed) = decode_request(&bytes, &limits).unwrap().unwrap();
        assert_eq!(consumed, bytes.len());
        assert_eq!(request.headers().len(), PAIRS + 2);
        assert!(request.headers().eq(headers.iter().copied()));

        // A duplicate placed last must be found just as quickly.
        let mut with_duplicate = headers.clone();
        with_duplicate.push((b"HTTP_X_00000", b"again"));
        let mut block = Vec::new();
        for (name, value) in &with_duplicate {
            block.extend_from_slice(name);
            block.push(0);
            block.extend_from_slice(value);
            block.push(0);
        }
        let duplicate = netstring(&block);
        let limits = limits.with_max_headers(PAIRS + 3);
        assert_eq!(
            decode_request(&duplicate, &limits),
            Err(Error::DuplicateHeader)
        );
    }

    #[test]
    fn nginx_scgi_params_decode() {
        // What nginx sends with its stock `scgi_params` (CONTENT_LENGTH first, added by
        // ngx_http_scgi_module) followed by the request's headers as HTTP_*. HTTPS is shown
        // empty, as a plain `scgi_param HTTPS $https;` sends it over http.
        let env: &[Header<'_>] = &[
            (b"CONTENT_LENGTH", b"11"),
            (b"REQUEST_METHOD", b"POST"),
            (b"REQUEST_URI", b"/app/submit?x=1&y=%C3%A9"),
            (b"QUERY_STRING", b"x=1&y=%C3%A9"),
            (b"CONTENT_TYPE", b"application/x-www-form-urlencoded"),
            (b"DOCUMENT_URI", b"/app/submit"),
            (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
            (b"SCGI", b"1"),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"REQUEST_SCHEME", b"http"),
            (b"HTTPS", b""),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"REMOTE_PORT", b"51234"),
            (b"SERVER_PORT", b"8080"),
            (b"SERVER_NAME", b"localhost"),
            (b"HTTP_HOST", b"localhost:8080"),
            (b"HTTP_USER_AGENT", b"curl/8.5.0"),
            (b"HTTP_ACCEPT", b"*/*"),
            (b"HTTP_CONTENT_LENGTH", b"11"),
            (b"HTTP_CONTENT_TYPE", b"application/x-www-form-urlencoded"),
        ];
        let mut block = Vec::new();
        for (name, value) in env {
            block.extend_from_slice(name);
            block.push(0);
            block.extend_from_slice(value);
            block.push(0);
        }
        let mut bytes = netstring(&block);
        let head_len = bytes.len();
        bytes.extend_from_slice(b"hello=world");

        let (request, consumed) = decode(&bytes).unwrap().unwrap();
        assert_eq!(consumed, head_len);
        assert_eq!(request.content_length(), 11);
        assert_eq!(&bytes[consumed..], b"hello=world");
        assert!(request.headers().eq(env.iter().copied()));
        assert_eq!(request.get(b"HTTPS"), Some(&b""[..]));
        assert_eq!(request.get(b"SERVER_PORT"), Some(&b"8080"[..]));
        assert_eq!(encode(env), bytes[..consumed]);
    }

    #[test]
    fn encode_rejects_what_decode_rejects() {
        let table: &[(&str, &[Header<'_>], Error)] = &[
            ("no headers", &[], Error::MissingContentLength),
            (
                "CONTENT_LENGTH second",
                &[(b"SCGI", b"1"), (b"CONTENT_LENGTH", b"0")],
                Error::ContentLengthNotFirst,
            ),
            (
                "no CONTENT_LENGTH",
                &[(b"SCGI", b"1")],
                Error::MissingContentLength,
            ),
            (
                "bad CONTENT_LENGTH",
                &[(b"CONTENT_LENGTH", b"abc"), (b"SCGI", b"1")],
                Error::InvalidContentLength,
            ),
            (
                "huge CONTENT_LENGTH",
                &[
                    (b"CONTENT_LENGTH", b"18446744073709551616"),
                    (b"SCGI", b"1"),
                ],
                Error::ContentLengthTooLarge,
            ),
            (
                "NUL in a name",
                &[(b"CONTENT_LENGTH", b"0"), (b"SC\x00GI", b"1")],
                Error::NulInHeader,
            ),
            (
                "NUL in a value",
                &[
                    (b"CONTENT_LENGTH", b"0"),
                    (b"SCGI", b"1"),
                    (b"A", b"a\x00b"),
                ],
                Error::NulInHeader,
            ),
            (
                "empty name",
                &[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"", b"x")],
                Error::EmptyName,
            ),
            (
                "duplicate",
                &[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1"), (b"SCGI", b"1")],
                Error::DuplicateHeader,
            ),
            ("no SCGI", &[(b"CONTENT_LENGTH", b"0")], Error::MissingScgi),
            (
                "SCGI 2",
                &[(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"2")],
                Error::UnsupportedScgiVersion,
            ),
        ];
        for &(desc, headers, error) in table {
            let mut out = b"kept".to_vec();
            assert_eq!(encode_request(headers, &mut out), Err(error), "{desc}");
            assert_eq!(out, b"kept", "{desc}: output changed");
        }
    }

    #[test]
    fn encode_appends_and_accepts_str_pairs() {
        let mut out = b"prefix".to_vec();
        let written = encode_request(&[("CONTENT_LENGTH", "0"), ("SCGI", "1")], &mut out).unwrap();
        assert_eq!(written, 28);
        assert_eq!(out, b"prefix24:CONTENT_LENGTH\x000\x00SCGI\x001\x00,");
    }

    #[test]
    fn error_messages_are_lowercase_and_distinct() {
        let all = [
            Error::InvalidLength,
            Error::LeadingZero,
            Error::TooManyLengthDigits,
            Error::HeadTooLarge,
            Error::MissingColon,
            Error::MissingComma,
            Error::UnterminatedHeader,
            Error::EmptyName,
            Error::NulInHeader,
            Error::TooManyHeaders,
            Error::MissingContentLength,
            Error::ContentLengthNotFirst,
            Error::InvalidContentLength,
            Error::ContentLengthTooLarge,
            Error::DuplicateHeader,
            Error::MissingScgi,
            Error::UnsupportedScgiVersion,
        ];
        let mut messages: Vec<String> = all.iter().map(ToString::to_string).collect();
        for message in &messages {
            assert!(
                message.starts_with(|c: char| c.is_ascii_lowercase()),
                "{message}"
            );
            assert!(!message.ends_with(['.', '!']), "{message}");
        }
        messages.sort();
        messages.dedup();
        assert_eq!(messages.len(), all.len());
        let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(Error::EmptyName);
        assert_eq!(boxed.to_string(), "header name is empty");
    }

    #[test]
    fn request_debug_shows_escaped_bytes() {
        let (request, _) =
            decode(b"30:CONTENT_LENGTH\x000\x00SCGI\x001\x00\xff\xfe\x00\xc3\x28\x00,")
                .unwrap()
                .unwrap();
        let shown = format!("{request:?}");
        assert!(shown.contains(r#"("\xff\xfe", "\xc3(")"#), "{shown}");
        assert!(shown.contains("content_length: 0"), "{shown}");
    }
}
