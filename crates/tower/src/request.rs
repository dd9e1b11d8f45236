//! Environ → `http::Request<RequestBody>`: method, URI (PEP 3333 URL
//! reconstruction), version, headers, the body, and extensions.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use gatekit_core::{Environ, Input};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Uri, Version};
use http_body::{Frame, SizeHint};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The most the request body reader holds at once: one block of this size.
pub(crate) const BLOCK: usize = 64 * 1024;

// ---------------------------------------------------------------------------
// Extensions

/// Request extension: the client's address, from `REMOTE_ADDR` and
/// `REMOTE_PORT` (port 0 when `REMOTE_PORT` is missing or not a number).
/// Absent when `REMOTE_ADDR` is not an IP address (a Unix socket peer, say).
///
/// With axum: `Extension(RemoteAddr(addr)): Extension<RemoteAddr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteAddr(pub SocketAddr);

/// Request extension: `SCRIPT_NAME`, the path the application is mounted
/// at, as the bytes the web server sent (it may be empty, and it is not
/// percent-encoded).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScriptName(pub Vec<u8>);

impl ScriptName {
    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The path prefix percent-encoded for use in a URL (as in the request URI).
    #[must_use]
    pub fn encoded(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        quote_path(&self.0, &mut out);
        out
    }
}

impl fmt::Debug for ScriptName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ScriptName")
            .field(&String::from_utf8_lossy(&self.0))
            .finish()
    }
}

/// Request extension: every CGI variable of the request environment, as
/// bytes, plus `wsgi.url_scheme`. Cheap to clone.
///
/// The escape hatch for what the `http::Request` cannot say: `PATH_INFO`
/// bytes that were `%2F` on the wire, `REMOTE_USER`, `HTTPS`,
/// `SERVER_SOFTWARE`, FastCGI's `FCGI_ROLE`, and so on.
#[derive(Clone, PartialEq, Eq)]
pub struct CgiVars {
    vars: Arc<[(Vec<u8>, Vec<u8>)]>,
    url_scheme: Arc<str>,
}

impl CgiVars {
    /// The variables of `environ` (sorted by name).
    #[must_use]
    pub fn from_environ(environ: &Environ) -> CgiVars {
        CgiVars {
            vars: environ
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
            url_scheme: Arc::from(environ.url_scheme.as_ref()),
        }
    }

    /// A variable's bytes.
    #[must_use]
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.vars
            .binary_search_by(|(k, _)| k.as_slice().cmp(name.as_bytes()))
            .ok()
            .and_then(|i| self.vars.get(i))
            .map(|(_, v)| v.as_slice())
    }

    /// A variable as text: `None` when absent or not UTF-8.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every variable, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.vars.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// The number of variables.
    #[must_use]
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// `wsgi.url_scheme`: `http` or `https`.
    #[must_use]
    pub fn url_scheme(&self) -> &str {
        &self.url_scheme
    }
}

impl fmt::Debug for CgiVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            m.entry(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        }
        m.finish()
    }
}

// ---------------------------------------------------------------------------
// The body

enum State {
    /// A small body, read whole before the service was called.
    Ready(Bytes),
    /// Nothing being read; the next block is read on demand.
    Idle(Input),
    /// A block being read on the blocking pool.
    Reading(JoinHandle<(Input, io::Result<Bytes>)>),
    /// Reading failed; reported at the next poll.
    Failed(io::Error),
    /// All of it was handed out (or it failed).
    Done,
}

/// The request body handed to the service: `wsgi.input` as an
/// [`http_body::Body`] of [`Bytes`].
///
/// It never holds more than one 64 KiB block: a body of up to 64 KiB is read
/// before the service is called; a larger one is read block by block as the
/// service polls for it, each read on tokio's blocking pool (so a slow
/// upload never stalls a runtime worker). The size hint is exact
/// (`CONTENT_LENGTH`). A body that ends before `CONTENT_LENGTH` (the client
/// went away) yields an [`io::ErrorKind::UnexpectedEof`] error.
pub struct RequestBody {
    state: State,
    remaining: u64,
    handle: Option<Handle>,
}

impl RequestBody {
    /// An empty body (for calling a service by hand, in tests).
    #[must_use]
    pub fn empty() -> RequestBody {
        RequestBody {
            state: State::Done,
            remaining: 0,
            handle: None,
        }
    }

    /// A body of these bytes (for calling a service by hand, in tests).
    #[must_use]
    pub fn from_bytes(bytes: impl Into<Bytes>) -> RequestBody {
        let bytes = bytes.into();
        RequestBody {
            remaining: bytes.len() as u64,
            state: State::Ready(bytes),
            handle: None,
        }
    }

    /// The body of `input`: read now if it is at most 64 KiB, else on demand
    /// on `handle`'s blocking pool.
    pub(crate) fn from_input(mut input: Input, handle: Handle) -> RequestBody {
        let remaining = input.remaining();
        let state = if remaining == 0 {
            State::Done
        } else if remaining <= BLOCK as u64 {
            // Reading a spooled body is quick, and the gateway thread is
            // free to block: this saves a hop through the blocking pool.
            let mut buf = Vec::with_capacity(usize::try_from(remaining).unwrap_or(BLOCK));
            match input.read_to_end(&mut buf) {
                Ok(_) => State::Ready(Bytes::from(buf)),
                Err(e) => State::Failed(e),
            }
        } else {
            State::Idle(input)
        };
        RequestBody {
            state,
            remaining,
            handle: Some(handle),
        }
    }
}

impl Default for RequestBody {
    fn default() -> Self {
        RequestBody::empty()
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// Reads the next block (at most [`BLOCK`] bytes); empty at the end.
fn read_block(input: &mut Input) -> io::Result<Bytes> {
    let len = usize::try_from(input.remaining()).map_or(BLOCK, |r| r.min(BLOCK));
    let mut buf = vec![0; len];
    let mut filled = 0;
    // Fill the block (reads from a socket or pipe may come in pieces).
    while filled < len {
        match input.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Hand out what arrived; the error comes back at the next read.
            Err(_) if filled > 0 => break,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Failed(e) => return Poll::Ready(Some(Err(e))),
                State::Ready(bytes) => {
                    this.remaining = 0;
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                State::Idle(mut input) => {
                    if input.remaining() == 0 {
                        this.remaining = 0;
                        return Poll::Ready(None);
                    }
                    let handle = match &this.handle {
                        Some(h) => h.clone(),
                        None => match Handle::try_current() {
                            Ok(h) => h,
                            Err(_) => {
                                // No runtime to read on: read here.
                                let read = read_block(&mut input);
                                this.state = State::Idle(input);
                                return Poll::Ready(this.finish_read(read));
                            }
                        },
                    };
                    this.state = State::Reading(handle.spawn_blocking(move || {
                        let read = read_block(&mut input);
                        (input, read)
                    }));
                }
                State::Reading(mut task) => match Pin::new(&mut task).poll(cx) {
                    Poll::Pending => {
                        this.state = State::Reading(task);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok((input, read))) => {
                        this.state = State::Idle(input);
                        return Poll::Ready(this.finish_read(read));
                    }
                    Poll::Ready(Err(join)) => {
                        return Poll::Ready(Some(Err(io::Error::other(format!(
                            "reading the request body failed: {join}"
                        )))));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && !matches!(self.state, State::Failed(_))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

impl RequestBody {
    /// Turns the result of one block read into a frame, keeping `remaining`
    /// right; an error or an empty read (the end) ends the body.
    fn finish_read(&mut self, read: io::Result<Bytes>) -> Option<Result<Frame<Bytes>, io::Error>> {
        match read {
            Ok(bytes) if !bytes.is_empty() => {
                self.remaining = self.remaining.saturating_sub(bytes.len() as u64);
                Some(Ok(Frame::data(bytes)))
            }
            Ok(_) => {
                // Input never reads 0 before CONTENT_LENGTH; treat it as the end.
                self.state = State::Done;
                self.remaining = 0;
                None
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The request head

/// Why an environ could not become a request (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadRequest {
    Method,
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::Method => f.write_str("invalid REQUEST_METHOD"),
        }
    }
}

/// True for a byte RFC 3986 allows unencoded in a path segment (`pchar`
/// less `%`): unreserved, sub-delims, `:` and `@`.
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

fn push_pct(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

/// Percent-encodes decoded path bytes (`SCRIPT_NAME`, `PATH_INFO`) back for a
/// URI: `/` and `pchar`s stay, everything else (`%`, `?`, `#`, space, control
/// and non-ASCII bytes) becomes `%XX`.
pub(crate) fn quote_path(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b == b'/' || is_pchar(b) {
            out.push(char::from(b));
        } else {
            push_pct(b, out);
        }
    }
}

/// `QUERY_STRING` is sent still encoded: it is kept as it is, except for the
/// bytes a URI query cannot hold (space, `#`, controls, non-ASCII, and the
/// ASCII that RFC 3986 excludes), which are encoded.
fn quote_query(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b == b'/' || b == b'?' || b == b'%' || is_pchar(b) {
            out.push(char::from(b));
        } else {
            push_pct(b, out);
        }
    }
}

/// The host part: `HTTP_HOST`, else `SERVER_NAME` with `SERVER_PORT` unless it
/// is the scheme's default; `None` when neither is a valid authority.
fn authority(environ: &Environ, https: bool) -> Option<Authority> {
    if let Some(host) = environ.get_bytes("HTTP_HOST").filter(|h| !h.is_empty()) {
        if let Ok(a) = Authority::try_from(host) {
            return Some(a);
        }
    }
    let name = environ.get_bytes("SERVER_NAME").filter(|n| !n.is_empty())?;
    let mut host = name.to_vec();
    if let Some(port) = environ.get_bytes("SERVER_PORT").filter(|p| !p.is_empty()) {
        let default: &[u8] = if https { b"443" } else { b"80" };
        if port != default {
            host.push(b':');
            host.extend_from_slice(port);
        }
    }
    Authority::try_from(host.as_slice()).ok()
}

/// The request URI, rebuilt as PEP 3333's "URL Reconstruction" does:
/// scheme, host, `SCRIPT_NAME` (unless `strip_script_name`) and `PATH_INFO`
/// percent-encoded back, `QUERY_STRING`. Never fails: an unusable host is
/// left out (an origin-form URI), an unusable path becomes `/`.
pub(crate) fn request_uri(environ: &Environ, strip_script_name: bool) -> Uri {
    let mut pq = String::new();
    if !strip_script_name {
        quote_path(
            environ.get_bytes("SCRIPT_NAME").unwrap_or_default(),
            &mut pq,
        );
    }
    quote_path(environ.get_bytes("PATH_INFO").unwrap_or_default(), &mut pq);
    if !pq.starts_with('/') {
        pq.insert(0, '/');
    }
    if let Some(q) = environ.get_bytes("QUERY_STRING").filter(|q| !q.is_empty()) {
        pq.push('?');
        quote_query(q, &mut pq);
    }
    let pq = PathAndQuery::try_from(pq).unwrap_or_else(|_| PathAndQuery::from_static("/"));
    let https = environ.url_scheme.eq_ignore_ascii_case("https");
    let Some(authority) = authority(environ, https) else {
        return Uri::from(pq);
    };
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(if https { Scheme::HTTPS } else { Scheme::HTTP });
    parts.authority = Some(authority);
    parts.path_and_query = Some(pq.clone());
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from(pq))
}

/// `SERVER_PROTOCOL` as an HTTP version (HTTP/1.1 when unknown).
fn version(environ: &Environ) -> Version {
    let p = environ.get_bytes("SERVER_PROTOCOL").unwrap_or_default();
    let is = |s: &str| p.eq_ignore_ascii_case(s.as_bytes());
    if is("HTTP/1.0") {
        Version::HTTP_10
    } else if is("HTTP/0.9") {
        Version::HTTP_09
    } else if is("HTTP/2") || is("HTTP/2.0") {
        Version::HTTP_2
    } else if is("HTTP/3") || is("HTTP/3.0") {
        Version::HTTP_3
    } else {
        Version::HTTP_11
    }
}

/// `HTTP_FOO_BAR` → `foo-bar`; `None` for a name that is not a header name.
fn header_name(var: &[u8]) -> Option<HeaderName> {
    let rest = var.strip_prefix(b"HTTP_")?;
    let name: Vec<u8> = rest
        .iter()
        .map(|&b| {
            if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect();
    HeaderName::from_bytes(&name).ok()
}

/// Builds the request head from `environ` and takes `wsgi.input` for the
/// body. Headers that are not valid `http` headers are left out.
pub(crate) fn from_environ(
    environ: &mut Environ,
    handle: &Handle,
    strip_script_name: bool,
) -> Result<Request<RequestBody>, BadRequest> {
    let method = match environ.get_bytes("REQUEST_METHOD") {
        None | Some(b"") => Method::GET,
        Some(m) => Method::from_bytes(m).map_err(|_| BadRequest::Method)?,
    };
    let mut builder = Request::builder()
        .method(method)
        .uri(request_uri(environ, strip_script_name))
        .version(version(environ));
    if let Some(headers) = builder.headers_mut() {
        let has_type = environ.contains("CONTENT_TYPE");
        for (k, v) in environ.iter() {
            let Some(name) = header_name(k) else {
                continue;
            };
            // The body handed over is never chunk-framed, and its length is
            // CONTENT_LENGTH's; CONTENT_TYPE wins over a stray HTTP_CONTENT_TYPE.
            if name == http::header::TRANSFER_ENCODING
                || name == CONTENT_LENGTH
                || (name == CONTENT_TYPE && has_type)
            {
                continue;
            }
            if let Ok(value) = HeaderValue::from_bytes(v) {
                headers.append(name, value);
            }
        }
        for (var, name) in [
            ("CONTENT_TYPE", CONTENT_TYPE),
            ("CONTENT_LENGTH", CONTENT_LENGTH),
        ] {
            if let Some(v) = environ.get_bytes(var).filter(|v| !v.is_empty()) {
                if let Ok(value) = HeaderValue::from_bytes(v) {
                    headers.insert(name, value);
                }
            }
        }
    }
    if let Some(ext) = builder.extensions_mut() {
        if let Some(addr) = remote_addr(environ) {
            ext.insert(RemoteAddr(addr));
        }
        ext.insert(ScriptName(
            environ
                .get_bytes("SCRIPT_NAME")
                .unwrap_or_default()
                .to_vec(),
        ));
        ext.insert(CgiVars::from_environ(environ));
    }
    let input = std::mem::replace(&mut environ.input, Input::empty());
    let body = RequestBody::from_input(input, handle.clone());
    // Every part was checked above; a failure here would be a bug in `http`,
    // answered 400 rather than a panic.
    builder.body(body).map_err(|_| BadRequest::Method)
}

/// `REMOTE_ADDR` (an IP) and `REMOTE_PORT` (0 when missing).
fn remote_addr(environ: &Environ) -> Option<SocketAddr> {
    let ip: IpAddr = environ.get("REMOTE_ADDR")?.trim().parse().ok()?;
    let port = environ
        .get("REMOTE_PORT")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;

    fn env(pairs: &[(&str, &[u8])]) -> Environ {
        pairs.iter().map(|(k, v)| (*k, v.to_vec())).collect()
    }

    #[test]
    fn uri_from_host_script_path_query() {
        let e = env(&[
            ("HTTP_HOST", b"example.com:8080"),
            ("SCRIPT_NAME", b"/app"),
            ("PATH_INFO", b"/a b/c"),
            ("QUERY_STRING", b"x=1&y=%20"),
        ]);
        assert_eq!(
            request_uri(&e, false).to_string(),
            "http://example.com:8080/app/a%20b/c?x=1&y=%20"
        );
        assert_eq!(
            request_uri(&e, true).to_string(),
            "http://example.com:8080/a%20b/c?x=1&y=%20"
        );
    }

    #[test]
    fn uri_from_server_name_and_port() {
        let mut e = env(&[
            ("SERVER_NAME", b"srv"),
            ("SERVER_PORT", b"443"),
            ("PATH_INFO", b"/"),
        ]);
        assert_eq!(request_uri(&e, false).to_string(), "http://srv:443/");
        e.url_scheme = "https".into();
        assert_eq!(request_uri(&e, false).to_string(), "https://srv/");
    }

    #[test]
    fn hostile_paths_are_encoded_not_panicking() {
        let e = env(&[
            ("HTTP_HOST", b"bad host\xff"),
            ("SERVER_NAME", b"\x00"),
            ("PATH_INFO", b"/a/b\xff%?#\x00\x7f\"<>\\^`{|}"),
            ("QUERY_STRING", b"q=\xff #\x01%zz"),
        ]);
        let uri = request_uri(&e, false);
        assert_eq!(uri.authority(), None);
        assert_eq!(
            uri.path(),
            "/a/b%FF%25%3F%23%00%7F%22%3C%3E%5C%5E%60%7B%7C%7D"
        );
        assert_eq!(uri.query(), Some("q=%FF%20%23%01%zz"));
        // Keeps the characters a path may hold as they are.
        let e = env(&[("PATH_INFO", b"/users/a:b@c;d=e,f+g!$&'()*")]);
        assert_eq!(request_uri(&e, false).path(), "/users/a:b@c;d=e,f+g!$&'()*");
        // No path at all.
        assert_eq!(request_uri(&Environ::new(), false).to_string(), "/");
        let e = env(&[("PATH_INFO", b"x")]);
        assert_eq!(request_uri(&e, false).path(), "/x");
    }

    #[test]
    fn headers_extensions_and_version() {
        let handle = crate::runtime().unwrap();
        let mut e = env(&[
            ("REQUEST_METHOD", b"POST"),
            ("SERVER_PROTOCOL", b"HTTP/1.0"),
            ("CONTENT_TYPE", b"application/json"),
            ("CONTENT_LENGTH", b"2"),
            ("HTTP_CONTENT_LENGTH", b"99"),
            ("HTTP_TRANSFER_ENCODING", b"chunked"),
            ("HTTP_X_FORWARDED_FOR", b"10.0.0.1"),
            ("HTTP_X_LATIN1", b"caf\xe9"),
            ("HTTP_X_BAD", b"a\nb"),
            ("HTTP_BAD NAME", b"x"),
            ("HTTP_COOKIE", b"a=1; b=2"),
            ("REMOTE_ADDR", b"::1"),
            ("REMOTE_PORT", b"5555"),
            ("SCRIPT_NAME", b"/app\xff"),
        ]);
        e.input = Input::new(Box::new(&b"{}"[..]), 2);
        let req = from_environ(&mut e, &handle, false).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.version(), Version::HTTP_10);
        let h = req.headers();
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h.get_all("content-length").iter().count(), 1);
        assert_eq!(h["content-length"], "2");
        assert!(h.get("transfer-encoding").is_none());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        assert_eq!(h["x-latin1"].as_bytes(), b"caf\xe9");
        assert!(h.get("x-bad").is_none());
        assert_eq!(h["cookie"], "a=1; b=2");
        assert_eq!(
            req.extensions().get::<RemoteAddr>(),
            Some(&RemoteAddr("[::1]:5555".parse().unwrap()))
        );
        let sn = req.extensions().get::<ScriptName>().unwrap();
        assert_eq!(sn.as_bytes(), b"/app\xff");
        assert_eq!(sn.encoded(), "/app%FF");
        let vars = req.extensions().get::<CgiVars>().unwrap();
        assert_eq!(vars.get("REMOTE_PORT"), Some("5555"));
        assert_eq!(vars.url_scheme(), "http");
        assert_eq!(req.body().size_hint().exact(), Some(2));
    }

    #[test]
    fn bad_method_is_refused() {
        let handle = crate::runtime().unwrap();
        let mut e = env(&[("REQUEST_METHOD", b"GE T")]);
        assert_eq!(
            from_environ(&mut e, &handle, false).unwrap_err(),
            BadRequest::Method
        );
    }

    fn collect(body: RequestBody) -> Result<Vec<u8>, io::Error> {
        let handle = crate::runtime().unwrap();
        handle.block_on(async move {
            let mut body = std::pin::pin!(body);
            let mut out = Vec::new();
            while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
                let frame = frame?;
                assert!(frame.data_ref().is_some_and(|d| d.len() <= BLOCK));
                out.extend_from_slice(frame.data_ref().unwrap());
            }
            assert!(body.is_end_stream());
            Ok(out)
        })
    }

    #[test]
    fn large_body_is_read_in_blocks() {
        let handle = crate::runtime().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let input = Input::new(Box::new(io::Cursor::new(data.clone())), data.len() as u64);
        let body = RequestBody::from_input(input, handle);
        assert_eq!(body.size_hint().exact(), Some(300_000));
        assert_eq!(collect(body).unwrap(), data);
    }

    #[test]
    fn short_body_is_an_error() {
        let handle = crate::runtime().unwrap();
        for declared in [10, 200_000] {
            let input = Input::new(Box::new(&b"abc"[..]), declared);
            let err = collect(RequestBody::from_input(input, handle.clone())).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }
}
