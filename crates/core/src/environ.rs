//! The request environment: CGI meta-variables plus the `wsgi.*` keys (PEP 3333).
//!
//! Variables are stored as bytes, exactly as the web server sent them: a
//! `PATH_INFO` of `/\xff` (Apache's decoding of `%FF`) passes through losslessly.
//! [`Environ::get`] offers `&str` for the common case and [`Environ::get_bytes`]
//! never loses anything.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::vars::Vars;

/// The request environment handed to an [`App`](crate::App).
///
/// | PEP 3333 key | here |
/// |---|---|
/// | CGI variables (`REQUEST_METHOD`, `PATH_INFO`, `HTTP_*`, …) | [`get`](Environ::get), [`get_bytes`](Environ::get_bytes), [`set`](Environ::set), [`iter`](Environ::iter) |
/// | `wsgi.input` | [`input`](Environ::input) |
/// | `wsgi.errors` | [`errors`](Environ::errors) |
/// | `wsgi.url_scheme` | [`url_scheme`](Environ::url_scheme) |
/// | `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once` | the fields of the same names |
/// | `wsgi.version` | [`VERSION`](Environ::VERSION) |
/// | `wsgi.file_wrapper` | [`file_wrapper`](Environ::file_wrapper): whether [`FileWrapper`](crate::FileWrapper) bodies get the fast path |
pub struct Environ {
    vars: Vars,
    /// `wsgi.input`: the request body, ending at `CONTENT_LENGTH`.
    pub input: Input,
    /// `wsgi.errors`: text written here reaches the web server's error log
    /// where the protocol has one (FastCGI's `FCGI_STDERR`, CGI's stderr).
    pub errors: Errors,
    /// `wsgi.url_scheme`: `http` or `https`.
    pub url_scheme: Cow<'static, str>,
    /// `wsgi.multithread`: other threads may run the app at the same time.
    pub multithread: bool,
    /// `wsgi.multiprocess`: other processes may run the app at the same time.
    pub multiprocess: bool,
    /// `wsgi.run_once`: the process handles this one request (CGI).
    pub run_once: bool,
    /// `wsgi.file_wrapper` is offered: [`FileWrapper`](crate::FileWrapper)
    /// bodies are sent with the transport's sendfile path.
    pub file_wrapper: bool,
    cancel: Option<Arc<AtomicBool>>,
    extensions: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl Environ {
    /// `wsgi.version`.
    pub const VERSION: (u32, u32) = (1, 0);

    /// An empty environment: no variables, an empty input, errors discarded.
    #[must_use]
    pub fn new() -> Environ {
        Environ {
            vars: Vars::new(),
            input: Input::empty(),
            errors: Errors::sink(),
            url_scheme: Cow::Borrowed("http"),
            multithread: false,
            multiprocess: false,
            run_once: false,
            file_wrapper: true,
            cancel: None,
            extensions: HashMap::new(),
        }
    }

    /// A variable as text: `None` when it is absent *or not UTF-8* (use
    /// [`get_bytes`](Environ::get_bytes) or [`get_lossy`](Environ::get_lossy)
    /// where bytes such as `%FF` in a path must be seen).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A variable as the exact bytes the web server sent.
    #[must_use]
    pub fn get_bytes(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.vars.get(name.as_ref())
    }

    /// A variable as text, invalid UTF-8 replaced by U+FFFD.
    #[must_use]
    pub fn get_lossy(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get_bytes(name).map(String::from_utf8_lossy)
    }

    /// True when the variable is present (even if empty).
    #[must_use]
    pub fn contains(&self, name: impl AsRef<[u8]>) -> bool {
        self.vars.contains(name.as_ref())
    }

    /// Sets a variable, replacing any earlier value.
    pub fn set(&mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.vars.set(&name.into(), &value.into());
    }

    /// Sets a variable from borrowed bytes, replacing any earlier value: like
    /// [`set`](Environ::set), without making owned copies first.
    pub fn set_bytes(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.vars.set(name.as_ref(), value.as_ref());
    }

    /// Sets every variable held in `buf`, a front-end's buffer of encoded
    /// name-value pairs (FastCGI's PARAMS, SCGI's header), by keeping `buf`
    /// as the variables' storage instead of copying each name and value.
    ///
    /// `next` is given the unread rest of `buf` and returns the ranges, within
    /// what it was given, of the next pair's name and value and the number of
    /// bytes the pair takes; `None` ends the list, as does an answer that
    /// points outside the slice or takes no bytes. A name that comes again
    /// replaces the earlier value, as with [`set_bytes`](Environ::set_bytes).
    ///
    /// Returns a buffer for the caller to fill next time: the environ's
    /// previous (empty) storage, or, when variables were already set and each
    /// pair had to be copied in, `buf` itself; emptied either way.
    ///
    /// ```
    /// use gatekit_core::Environ;
    /// // "NAME\0value\0" pairs, as in an SCGI header.
    /// fn next(rest: &[u8]) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>, usize)> {
    ///     let n = rest.iter().position(|&b| b == 0)?;
    ///     let v = rest[n + 1..].iter().position(|&b| b == 0)? + n + 1;
    ///     Some((0..n, n + 1..v, v + 1))
    /// }
    /// let mut env = Environ::new();
    /// let spare = env.set_all_from(b"A\x001\0B\x002\0A\x003\0".to_vec(), next);
    /// assert!(spare.is_empty());
    /// assert_eq!(env.get("A"), Some("3"));
    /// assert_eq!(env.get("B"), Some("2"));
    /// assert_eq!(env.len(), 2);
    /// ```
    pub fn set_all_from(
        &mut self,
        buf: Vec<u8>,
        next: impl FnMut(&[u8]) -> Option<(Range<usize>, Range<usize>, usize)>,
    ) -> Vec<u8> {
        self.vars.set_all_from(buf, next)
    }

    /// Sets a variable to the bytes `fill` appends to the [`ValueBuf`] it is
    /// given, replacing any earlier value. For values built in place, such
    /// as a decoded path or merged header fields, with no buffer of their own.
    pub fn set_with(&mut self, name: impl AsRef<[u8]>, fill: impl FnOnce(&mut ValueBuf<'_>)) {
        self.vars
            .set_with(name.as_ref(), |buf| fill(&mut ValueBuf { buf }));
    }

    /// Sets a variable only when it is absent (`environ.setdefault`).
    pub fn set_default(&mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.vars.set_default(&name.into(), &value.into());
    }

    /// [`set_default`](Environ::set_default) from borrowed bytes.
    pub(crate) fn set_default_bytes(&mut self, name: &[u8], value: &[u8]) {
        self.vars.set_default(name, value);
    }

    /// Removes a variable, returning its value.
    pub fn remove(&mut self, name: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.vars.remove(name.as_ref())
    }

    /// The variables sorted by name, as bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.vars.iter()
    }

    /// The number of variables.
    #[must_use]
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when there are no variables.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.vars.len() == 0
    }

    /// True when the front-end has learnt that the request was abandoned: a
    /// FastCGI `FCGI_ABORT_REQUEST`, or the web server closing the connection.
    /// A long-running app should check it and return early.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Shares a cancellation flag with the front-end (see [`is_cancelled`](Environ::is_cancelled)).
    pub fn set_cancel_flag(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    /// Stores a typed value for middleware and adapters (the place for the
    /// non-CGI keys a WSGI environ would carry), replacing one of the same type.
    pub fn insert_extension<T: Any + Send + Sync>(&mut self, value: T) -> Option<T> {
        self.extensions
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// A typed value stored with [`insert_extension`](Environ::insert_extension).
    #[must_use]
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extensions
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
    }
}

impl Default for Environ {
    fn default() -> Self {
        Environ::new()
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.vars.iter() {
            m.entry(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        }
        m.entry(&"wsgi.url_scheme", &self.url_scheme)
            .entry(&"wsgi.multithread", &self.multithread)
            .entry(&"wsgi.multiprocess", &self.multiprocess)
            .entry(&"wsgi.run_once", &self.run_once)
            .finish()
    }
}

impl<K: Into<Vec<u8>>, V: Into<Vec<u8>>> FromIterator<(K, V)> for Environ {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut e = Environ::new();
        e.extend(iter);
        e
    }
}

impl<K: Into<Vec<u8>>, V: Into<Vec<u8>>> Extend<(K, V)> for Environ {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.set(k, v);
        }
    }
}

/// Where [`Environ::set_with`] builds a variable's value: bytes can only be
/// appended to it.
pub struct ValueBuf<'a> {
    buf: &'a mut Vec<u8>,
}

impl ValueBuf<'_> {
    /// Appends one byte.
    pub fn push(&mut self, byte: u8) {
        self.buf.push(byte);
    }

    /// Appends bytes.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Makes room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }
}

impl fmt::Debug for ValueBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValueBuf")
    }
}

/// `wsgi.input`: the request body, never read past `CONTENT_LENGTH`.
///
/// PEP 3333 asks servers to "simulate an end-of-file condition" at
/// `CONTENT_LENGTH`, and RFC 3875 §4.2 forbids scripts to read past it. A body
/// that ends early (the client went away) is an [`io::ErrorKind::UnexpectedEof`]
/// error, not a quiet short read, so an app never mistakes half a body for all
/// of it.
pub struct Input {
    inner: Box<dyn BufRead + Send>,
    remaining: u64,
    declared: u64,
}

impl Input {
    /// An input of `content_length` bytes read from `inner`.
    #[must_use]
    pub fn new(inner: Box<dyn BufRead + Send>, content_length: u64) -> Input {
        Input {
            inner,
            remaining: content_length,
            declared: content_length,
        }
    }

    /// An input with no body.
    #[must_use]
    pub fn empty() -> Input {
        Input::new(Box::new(io::empty()), 0)
    }

    /// The declared length (`CONTENT_LENGTH`).
    #[must_use]
    pub fn content_length(&self) -> u64 {
        self.declared
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    fn short(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "request body ended after {} of {} bytes",
                self.declared - self.remaining,
                self.declared
            ),
        )
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(buf.get_mut(..max).unwrap_or_default())?;
        if n == 0 {
            return Err(self.short());
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl BufRead for Input {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let remaining = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        let short = self.short();
        let buf = self.inner.fill_buf()?;
        if buf.is_empty() {
            return Err(short);
        }
        let n = buf.len().min(remaining);
        Ok(buf.get(..n).unwrap_or_default())
    }

    fn consume(&mut self, amt: usize) {
        let amt = usize::try_from(self.remaining).map_or(amt, |r| amt.min(r));
        self.inner.consume(amt);
        self.remaining -= amt as u64;
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("content_length", &self.declared)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// `wsgi.errors`: a text stream to the web server's error log.
pub struct Errors {
    inner: Box<dyn Write + Send>,
}

impl Errors {
    /// Errors written to `inner`.
    #[must_use]
    pub fn new(inner: Box<dyn Write + Send>) -> Errors {
        Errors { inner }
    }

    /// Errors discarded.
    #[must_use]
    pub fn sink() -> Errors {
        Errors::new(Box::new(io::sink()))
    }
}

impl Write for Errors {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl fmt::Debug for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Errors")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_stops_at_content_length() {
        let mut input = Input::new(Box::new(&b"hello world"[..]), 5);
        let mut s = String::new();
        input.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        assert_eq!(input.read(&mut [0; 4]).unwrap(), 0);
    }

    #[test]
    fn input_short_body_is_an_error() {
        let mut input = Input::new(Box::new(&b"abc"[..]), 10);
        let err = input.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(err.to_string(), "request body ended after 3 of 10 bytes");
    }

    #[test]
    fn input_bufread_is_bounded() {
        let mut input = Input::new(Box::new(&b"line1\nline2\nline3\n"[..]), 8);
        let mut line = String::new();
        input.read_line(&mut line).unwrap();
        assert_eq!(line, "line1\n");
        line.clear();
        input.read_line(&mut line).unwrap();
        assert_eq!(line, "li");
    }

    #[test]
    fn bytes_pass_through() {
        let mut e = Environ::new();
        e.set("PATH_INFO", b"/\xff".to_vec());
        assert_eq!(e.get_bytes("PATH_INFO"), Some(&b"/\xff"[..]));
        assert_eq!(e.get("PATH_INFO"), None);
        assert_eq!(e.get_lossy("PATH_INFO").unwrap(), "/\u{fffd}");
    }

    #[test]
    fn set_bytes_and_set_with_replace() {
        let mut e = Environ::new();
        e.set("A", "old");
        e.set_bytes("A", b"new");
        e.set_with("B", |v| {
            v.extend_from_slice(b"x, ");
            v.push(b'y');
        });
        e.set_with("A", |v| v.extend_from_slice(b"newest"));
        let all: Vec<_> = e.iter().collect();
        assert_eq!(
            all,
            [(&b"A"[..], &b"newest"[..]), (&b"B"[..], &b"x, y"[..])]
        );
    }

    #[test]
    fn extensions_are_typed() {
        #[derive(Debug, PartialEq)]
        struct Peer(u16);
        let mut e = Environ::new();
        assert!(e.insert_extension(Peer(1)).is_none());
        assert_eq!(e.insert_extension(Peer(2)), Some(Peer(1)));
        assert_eq!(e.extension::<Peer>(), Some(&Peer(2)));
    }
}
