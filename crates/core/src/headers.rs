//! Response header lists: the equivalent of `wsgiref.headers.Headers`.
//!
//! A [`Headers`] value is an ordered list of `(name, value)` pairs. Lookups are
//! case-insensitive, repeated names are kept (two `Set-Cookie` headers stay two
//! headers), and the list formats itself as a header block.
//!
//! Validation is always on, in release builds too (wsgiref checks under
//! `if __debug__`, which `python -O` removes): a name must be an RFC 9110 token
//! and a value must be latin-1 text without control characters other than
//! HTAB. Anything else is refused with a [`HeaderError`] before it can reach the
//! wire, so a response can never be split by a CR or LF from the application.

use std::cell::RefCell;

use crate::pool::Pool;
use std::fmt;

/// Why a header name or value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The name is empty or holds a byte that is not an RFC 9110 `tchar`.
    InvalidName,
    /// The value holds a control character (other than HTAB), such as CR or LF.
    ControlCharacter,
    /// The value holds a character above U+00FF, which latin-1 cannot carry.
    NotLatin1,
    /// A hop-by-hop header (RFC 2616 §13.5.1), which PEP 3333 forbids applications to send.
    HopByHop,
    /// A MIME parameter name given to [`Headers::add_header`] is not a token.
    InvalidParam,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::InvalidName => "invalid header name",
            HeaderError::ControlCharacter => "control character in header value",
            HeaderError::NotLatin1 => "header value is not latin-1",
            HeaderError::HopByHop => "hop-by-hop header not allowed from an application",
            HeaderError::InvalidParam => "invalid header parameter name",
        })
    }
}

impl std::error::Error for HeaderError {}

/// `tchar` of RFC 9110 §5.6.2: the bytes allowed in a header name or a
/// method (a table lookup, for the parsers that check every byte).
///
/// ```
/// assert!(gatekit_core::is_tchar(b'X') && gatekit_core::is_tchar(b'~'));
/// assert!(!gatekit_core::is_tchar(b':') && !gatekit_core::is_tchar(0x80));
/// ```
#[must_use]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`] for every byte: a lookup instead of a chain of comparisons.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// Checks a header name: a non-empty RFC 9110 token.
///
/// # Errors
/// [`HeaderError::InvalidName`] when it is not.
pub fn check_name(name: &str) -> Result<(), HeaderError> {
    if !name.is_empty() && name.bytes().all(is_tchar) {
        Ok(())
    } else {
        Err(HeaderError::InvalidName)
    }
}

/// Checks a header value: latin-1 text with no control character but HTAB.
///
/// # Errors
/// [`HeaderError::ControlCharacter`] or [`HeaderError::NotLatin1`].
pub fn check_value(value: &str) -> Result<(), HeaderError> {
    for c in value.chars() {
        let n = u32::from(c);
        if n > 0xFF {
            return Err(HeaderError::NotLatin1);
        }
        if (n < 0x20 && c != '\t') || n == 0x7F {
            return Err(HeaderError::ControlCharacter);
        }
    }
    Ok(())
}

/// Appends `s` to `out` as latin-1 bytes. The caller has checked that every
/// character is at most U+00FF; a larger one (unreachable through [`Headers`])
/// is written as `?` rather than panicking.
pub(crate) fn push_latin1(out: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        out.extend_from_slice(s.as_bytes());
    } else {
        out.extend(
            s.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    }
}

/// Decodes latin-1 bytes into a string: every byte maps to one character, so
/// the conversion is lossless and writing the string as latin-1 gives the same bytes back.
#[must_use]
pub fn latin1_to_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// An ordered, case-insensitive list of response headers (`wsgiref.headers.Headers`).
///
/// ```
/// use gatekit_core::Headers;
/// let mut h = Headers::new();
/// h.set("Content-Type", "text/plain")?;
/// h.add_header("Content-Disposition", "attachment", &[("filename", Some("a b.txt"))])?;
/// assert_eq!(h.get("content-type"), Some("text/plain"));
/// assert_eq!(h.to_string(),
///     "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"a b.txt\"\r\n\r\n");
/// # Ok::<(), gatekit_core::HeaderError>(())
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// Every name and value, back to back: one allocation for the whole
    /// list instead of two per header.
    text: String,
    /// Where each header's name and value lie in `text`, in order.
    spans: Vec<Span>,
}

/// One header in [`Headers::text`]: the name is `start..mid`, the value
/// `mid..end`.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    mid: usize,
    end: usize,
}

/// What the first header reserves, so that a typical response's headers
/// (the app's and the gateway's) fit without growing the list again.
const FIRST_TEXT: usize = 256;
const FIRST_SPANS: usize = 8;

/// Lists a thread keeps for its next responses' headers.
const POOL_SIZE: usize = 4;
/// Larger lists are freed rather than kept.
const POOL_MAX_TEXT: usize = 4 * 1024;
const POOL_MAX_SPANS: usize = 64;

thread_local! {
    /// The buffers of dropped lists, for the next list's first header: a
    /// thread that answers request after request allocates none for its
    /// headers (the list is built by the app and dropped by the gateway,
    /// on the same thread).
    static POOL: Pool<(String, Vec<Span>)> = const { RefCell::new(Vec::new()) };
}

impl Headers {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Headers {
            text: String::new(),
            spans: Vec::new(),
        }
    }

    fn name_of(&self, span: Span) -> &str {
        self.text.get(span.start..span.mid).unwrap_or_default()
    }

    fn pair_of(&self, span: Span) -> (&str, &str) {
        (
            self.name_of(span),
            self.text.get(span.mid..span.end).unwrap_or_default(),
        )
    }

    /// The header in place `i`.
    fn nth(&self, i: usize) -> Option<(&str, &str)> {
        self.spans.get(i).map(|&span| self.pair_of(span))
    }

    /// Appends a checked header.
    fn push(&mut self, name: &str, value: &str) {
        if self.spans.capacity() == 0 && self.text.capacity() == 0 {
            if let Some((text, spans)) = crate::pool::take(&POOL) {
                self.text = text;
                self.spans = spans;
            }
        }
        if self.spans.capacity() == 0 {
            self.spans.reserve(FIRST_SPANS);
        }
        if self.text.capacity() == 0 {
            self.text.reserve(FIRST_TEXT.max(name.len() + value.len()));
        }
        let start = self.text.len();
        self.text.push_str(name);
        let mid = self.text.len();
        self.text.push_str(value);
        let end = self.text.len();
        self.spans.push(Span { start, mid, end });
    }

    /// A list from pairs, each checked (`Headers(list)`).
    ///
    /// # Errors
    /// The first invalid name or value.
    pub fn from_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Result<Self, HeaderError>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.append(n.as_ref(), v.as_ref())?;
        }
        Ok(h)
    }

    /// The number of headers, repeats included (`len(headers)`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no headers.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Appends a header, keeping any of the same name (`headers.append`).
    ///
    /// # Errors
    /// An invalid name or value.
    pub fn append(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        check_name(name)?;
        check_value(value)?;
        self.push(name, value);
        Ok(())
    }

    /// Appends a header the gateway built itself from checked parts.
    pub(crate) fn push_unchecked(&mut self, name: &str, value: &str) {
        debug_assert!(check_name(name).is_ok() && check_value(value).is_ok());
        self.push(name, value);
    }

    /// Appends a header whose value is raw bytes, decoded as latin-1 so that
    /// exactly these bytes go on the wire (for a UTF-8 `Content-Disposition`
    /// filename, say).
    ///
    /// # Errors
    /// An invalid name, or a control byte in the value.
    pub fn append_bytes(&mut self, name: &str, value: &[u8]) -> Result<(), HeaderError> {
        self.append(name, &latin1_to_string(value))
    }

    /// Replaces every header of this name with one (`headers[name] = value`).
    ///
    /// # Errors
    /// An invalid name or value; the list is then unchanged.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        check_name(name)?;
        check_value(value)?;
        self.remove(name);
        self.push(name, value);
        Ok(())
    }

    /// Removes every header of this name; absent is not an error (`del headers[name]`).
    pub fn remove(&mut self, name: &str) {
        if !self.contains(name) {
            return;
        }
        // The text is written again without the removed headers, so that
        // an app that keeps replacing a header does not keep growing it.
        let mut kept = Headers::new();
        for (n, v) in self.iter() {
            if !n.eq_ignore_ascii_case(name) {
                kept.push(n, v);
            }
        }
        *self = kept;
    }

    /// The first value of this name (`headers.get(name)`).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of this name, in order (`headers.get_all(name)`).
    #[must_use]
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// True when a header of this name is present (`name in headers`).
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Returns the first value of `name`, first appending `value` if there is
    /// none (`headers.setdefault(name, value)`).
    ///
    /// # Errors
    /// An invalid name or value when one has to be appended.
    pub fn setdefault(&mut self, name: &str, value: &str) -> Result<&str, HeaderError> {
        let pos = match self.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(pos) => pos,
            None => {
                self.append(name, value)?;
                self.spans.len() - 1
            }
        };
        Ok(self.nth(pos).map_or("", |(_, v)| v))
    }

    /// Appends a header with MIME parameters (`headers.add_header(name, value, **params)`).
    ///
    /// Each parameter is `(name, Some(value))`, written `name="value"` with `\`
    /// and `"` escaped, or `(name, None)`, written as the bare name. As in
    /// wsgiref, `_` in a parameter name becomes `-`.
    ///
    /// # Errors
    /// An invalid header name, parameter name, or value.
    pub fn add_header(
        &mut self,
        name: &str,
        value: &str,
        params: &[(&str, Option<&str>)],
    ) -> Result<(), HeaderError> {
        let mut full = String::from(value);
        for (param, pvalue) in params {
            let param = param.replace('_', "-");
            if check_name(&param).is_err() {
                return Err(HeaderError::InvalidParam);
            }
            if !full.is_empty() {
                full.push_str("; ");
            }
            full.push_str(&param);
            if let Some(v) = pvalue {
                full.push_str("=\"");
                for c in v.chars() {
                    if c == '\\' || c == '"' {
                        full.push('\\');
                    }
                    full.push(c);
                }
                full.push('"');
            }
        }
        self.append(name, &full)
    }

    /// The names, repeats included, in order (`headers.keys()`).
    #[must_use]
    pub fn keys(&self) -> Vec<&str> {
        self.iter().map(|(n, _)| n).collect()
    }

    /// The values, in order (`headers.values()`).
    #[must_use]
    pub fn values(&self) -> Vec<&str> {
        self.iter().map(|(_, v)| v).collect()
    }

    /// The pairs, in order (`headers.items()`).
    #[must_use]
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter {
            headers: self,
            spans: self.spans.iter(),
        }
    }

    /// The first hop-by-hop header name, if any (PEP 3333 forbids them from applications).
    #[must_use]
    pub fn find_hop_by_hop(&self) -> Option<&str> {
        self.spans
            .iter()
            .map(|&span| self.name_of(span))
            .find(|n| crate::util::is_hop_by_hop(n))
    }

    /// Appends the header lines (no final blank line) as latin-1 bytes.
    pub(crate) fn write_lines(&self, out: &mut Vec<u8>) {
        for (n, v) in self {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            push_latin1(out, v);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The header block as latin-1 bytes, ending in a blank line (`bytes(headers)`).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_lines(&mut out);
        out.extend_from_slice(b"\r\n");
        out
    }
}

impl Drop for Headers {
    fn drop(&mut self) {
        if self.text.capacity() == 0
            || self.text.capacity() > POOL_MAX_TEXT
            || self.spans.capacity() > POOL_MAX_SPANS
        {
            return;
        }
        let mut text = std::mem::take(&mut self.text);
        let mut spans = std::mem::take(&mut self.spans);
        text.clear();
        spans.clear();
        crate::pool::give_back(&POOL, POOL_SIZE, (text, spans));
    }
}

impl fmt::Display for Headers {
    /// The header block, ending in a blank line (`str(headers)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in self {
            write!(f, "{n}: {v}\r\n")?;
        }
        f.write_str("\r\n")
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Equal when the same headers are in the same order (names compared as
/// written, case included).
impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

/// The `(name, value)` pairs of a [`Headers`] list, in order
/// ([`Headers::iter`]).
#[derive(Debug, Clone)]
pub struct HeadersIter<'a> {
    headers: &'a Headers,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> Iterator for HeadersIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let span = *self.spans.next()?;
        Some(self.headers.pair_of(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for HeadersIter<'_> {}

impl<'a> DoubleEndedIterator for HeadersIter<'a> {
    fn next_back(&mut self) -> Option<(&'a str, &'a str)> {
        let span = *self.spans.next_back()?;
        Some(self.headers.pair_of(span))
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> HeadersIter<'a> {
        self.iter()
    }
}

/// Anything [`StartResponse::start`](crate::StartResponse::start) accepts as headers:
/// a [`Headers`] value, or a list of `(name, value)` string pairs.
pub trait IntoHeaders {
    /// Converts, checking every name and value.
    ///
    /// # Errors
    /// The first invalid name or value.
    fn into_headers(self) -> Result<Headers, HeaderError>;
}

impl IntoHeaders for Headers {
    fn into_headers(self) -> Result<Headers, HeaderError> {
        Ok(self)
    }
}

impl<N: AsRef<str>, V: AsRef<str>> IntoHeaders for Vec<(N, V)> {
    fn into_headers(self) -> Result<Headers, HeaderError> {
        Headers::from_pairs(self)
    }
}

impl<N: AsRef<str>, V: AsRef<str>, const K: usize> IntoHeaders for [(N, V); K] {
    fn into_headers(self) -> Result<Headers, HeaderError> {
        Headers::from_pairs(self)
    }
}

impl<N: AsRef<str>, V: AsRef<str>> IntoHeaders for &[(N, V)] {
    fn into_headers(self) -> Result<Headers, HeaderError> {
        Headers::from_pairs(self.iter().map(|(n, v)| (n, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dropped list's buffers serve the thread's next list, which starts
    /// empty; an oversized list's are freed.
    #[test]
    fn dropped_lists_lend_their_buffers_to_the_next() {
        POOL.with_borrow_mut(Vec::clear);
        let mut h = Headers::new();
        h.append("Content-Type", "text/plain").unwrap();
        h.append("X-Long", &"v".repeat(300)).unwrap();
        let text = h.text.as_ptr();
        drop(h);
        let mut next = Headers::new();
        assert!(next.is_empty());
        next.append("Server", "gatekit").unwrap();
        assert_eq!(next.text.as_ptr(), text, "the same buffer");
        assert_eq!(next.to_string(), "Server: gatekit\r\n\r\n");
        drop(next);
        let mut big = Headers::new();
        big.append("X-Big", &"v".repeat(2 * POOL_MAX_TEXT)).unwrap();
        drop(big);
        assert!(
            POOL.with_borrow(|p| p.iter().all(|(t, _)| t.capacity() <= POOL_MAX_TEXT)),
            "an oversized buffer is not kept"
        );
    }

    // test_wsgiref HeaderTests.testMappingInterface
    #[test]
    fn mapping_interface() {
        assert_eq!(Headers::new().len(), 0);
        let h = Headers::from_pairs([("x", "y")]).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h.keys(), ["x"]);
        assert_eq!(h.values(), ["y"]);
        assert_eq!(h.iter().collect::<Vec<_>>(), [("x", "y")]);

        let mut h = Headers::new();
        h.remove("foo"); // absent: no error
        h.set("Foo", "bar").unwrap();
        for name in ["foo", "Foo", "FOO"] {
            assert!(h.contains(name));
            assert_eq!(h.get(name), Some("bar"));
            assert_eq!(h.get_all(name), ["bar"]);
        }
        assert!(!h.contains("bar"));
        assert!(h.get_all("bar").is_empty());
        h.set("foo", "baz").unwrap();
        assert_eq!(h.get("FOO"), Some("baz"));
        assert_eq!(h.get_all("foo"), ["baz"]);
        assert_eq!(h.get("foo").unwrap_or("whee"), "baz");
        assert_eq!(h.get("zoo").unwrap_or("whee"), "whee");
        assert_eq!(h.setdefault("foo", "whee").unwrap(), "baz");
        assert_eq!(h.setdefault("zoo", "whee").unwrap(), "whee");
        assert_eq!(h.get("foo"), Some("baz"));
        assert_eq!(h.get("zoo"), Some("whee"));
    }

    // test_wsgiref HeaderTests.testExtras
    #[test]
    fn extras() {
        let mut h = Headers::new();
        assert_eq!(h.to_string(), "\r\n");
        h.add_header("foo", "bar", &[("baz", Some("spam"))])
            .unwrap();
        assert_eq!(h.get("foo"), Some("bar; baz=\"spam\""));
        assert_eq!(h.to_string(), "foo: bar; baz=\"spam\"\r\n\r\n");
        h.add_header("Foo", "bar", &[("cheese", None)]).unwrap();
        assert_eq!(h.get_all("foo"), ["bar; baz=\"spam\"", "bar; cheese"]);
        assert_eq!(
            h.to_string(),
            "foo: bar; baz=\"spam\"\r\nFoo: bar; cheese\r\n\r\n"
        );
    }

    // test_wsgiref HeaderTests.testRaisesControlCharacters
    #[test]
    fn raises_control_characters() {
        let mut h = Headers::new();
        for c in (0u8..0x20).chain([0x7F]).map(char::from) {
            assert!(h.set(&format!("key{c}"), "val").is_err());
            assert!(
                h.add_header(&format!("key{c}"), "val", &[("param", Some("p"))])
                    .is_err()
            );
            assert!(
                h.add_header("key", "val", &[(&format!("param{c}"), Some("p"))])
                    .is_err()
            );
            if c == '\t' {
                // HTAB is allowed in values (RFC 9110 §5.5), not in names.
                assert!(h.set("key", &format!("val{c}")).is_ok());
            } else {
                assert!(h.set("key", &format!("val{c}")).is_err(), "{c:?}");
                assert!(h.add_header("key", &format!("val{c}"), &[]).is_err());
                assert!(
                    h.add_header("key", "val", &[("param", Some(&format!("p{c}")))])
                        .is_err()
                );
            }
        }
    }

    #[test]
    fn repeated_headers_are_kept_in_order() {
        let h = Headers::from_pairs([("Set-Cookie", "a=1"), ("X", "y"), ("set-cookie", "b=2")])
            .unwrap();
        assert_eq!(h.get_all("Set-Cookie"), ["a=1", "b=2"]);
        assert_eq!(
            h.to_bytes(),
            b"Set-Cookie: a=1\r\nX: y\r\nset-cookie: b=2\r\n\r\n"
        );
    }

    #[test]
    fn latin1_values_round_trip_as_bytes() {
        let mut h = Headers::new();
        h.append_bytes(
            "Content-Disposition",
            "attachment; filename=\"é.txt\"".as_bytes(),
        )
        .unwrap();
        assert_eq!(
            h.to_bytes(),
            "Content-Disposition: attachment; filename=\"é.txt\"\r\n\r\n".as_bytes()
        );
        assert_eq!(h.append("X", "\u{0100}"), Err(HeaderError::NotLatin1));
        assert_eq!(h.append("X", "caf\u{e9}"), Ok(()));
        assert!(h.to_bytes().ends_with(b"X: caf\xe9\r\n\r\n"));
    }

    #[test]
    fn replacing_a_header_again_and_again_does_not_grow_the_list() {
        let mut h = Headers::from_pairs([("A", "1"), ("Set-Cookie", "x"), ("B", "2")]).unwrap();
        for i in 0..1_000 {
            h.set("set-cookie", &format!("n={i}")).unwrap();
        }
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("A", "1"), ("B", "2"), ("set-cookie", "n=999")]
        );
        assert!(h.text.len() < 64, "{} bytes of text", h.text.len());
        h.remove("a");
        assert_eq!(h.keys(), ["B", "set-cookie"]);
        assert_eq!(h.iter().next_back(), Some(("set-cookie", "n=999")));
        assert_eq!(h.iter().len(), 2);
    }

    #[test]
    fn equality_and_debug_see_the_headers_only() {
        let mut a = Headers::from_pairs([("X", "1"), ("Y", "2")]).unwrap();
        a.remove("x");
        let b = Headers::from_pairs([("Y", "2")]).unwrap();
        assert_eq!(a, b);
        assert_ne!(b, Headers::from_pairs([("y", "2")]).unwrap());
        assert_eq!(format!("{b:?}"), r#"[("Y", "2")]"#);
        assert_eq!(format!("{:?}", Headers::new()), "[]");
    }

    #[test]
    fn names_must_be_tokens() {
        for bad in ["", "a b", "a:b", "a\"b", "é", "a(b"] {
            assert_eq!(check_name(bad), Err(HeaderError::InvalidName), "{bad:?}");
        }
        check_name("X-Custom_1!#$%&'*+.^`|~").unwrap();
    }
}
