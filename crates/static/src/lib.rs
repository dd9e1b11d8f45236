//! Static files served as a gatekit [`App`]: what `gatekit serve static DIR`
//! runs, usable as a library under any front-end (CGI, FastCGI, SCGI, HTTP).
//!
//! # Overview
//!
//! [`StaticFiles`] maps the request path to a file under one root
//! directory and answers the way nginx's static module does:
//!
//! - **Path.** The file is named by `PATH_INFO`, relative to the root; the
//!   app is mounted at `SCRIPT_NAME` (PEP 3333 / RFC 3875 semantics). Under
//!   gatekit's HTTP server `SCRIPT_NAME` is empty and `PATH_INFO` is the
//!   whole percent-decoded path. Behind a web server, make it send
//!   `PATH_INFO` (nginx's stock `fastcgi_params` does not; see
//!   `docs/deploy-nginx.md`): a missing `PATH_INFO` is the mount point
//!   itself.
//! - **Methods.** `GET` and `HEAD`; anything else is `405` with
//!   `Allow: GET, HEAD`.
//! - **Bodies.** A [`Body::File`], so every front-end sends the bytes with
//!   `sendfile(2)` (a `206` too, through [`FileWrapper::from_file_range`]).
//! - **Headers.** `Content-Type` by extension ([`content_type`]; text types
//!   with `; charset=utf-8`, unknown ones `application/octet-stream`),
//!   `Content-Length`, `Last-Modified`, `ETag`, `Accept-Ranges: bytes`.
//! - **Validators.** The `ETag` is *strong*: `"INODE-SIZE-SECS.NANOS"` in
//!   hex, from the file's inode, length and modification time (nanosecond
//!   precision, so a rewrite within the same second still changes it).
//!   Strong, so that `If-Range` can use it (RFC 9110 §13.1.5).
//! - **Conditional requests** (RFC 9110 §13.2.2 order): `If-Match`
//!   (strong comparison) or, when it is absent, `If-Unmodified-Since`
//!   failing is `412 Precondition Failed`; then `If-None-Match` (weak
//!   comparison, `*` allowed) and, only when it is absent,
//!   `If-Modified-Since` (any of the three HTTP-date forms) answer
//!   `304 Not Modified` with the validators and no body.
//! - **Ranges** (`GET` only; RFC 9110 §14.2 has `HEAD` ignore them): one
//!   `bytes=a-b`, `a-` or `-n` range is `206 Partial Content` with
//!   `Content-Range`; a range that starts past the end is `416` with
//!   `Content-Range: bytes */LEN`. Several ranges, another unit, or an
//!   invalid value are answered with the whole file (`200`), as RFC 9110
//!   allows, so there is never a `multipart/byteranges` body. `If-Range`
//!   with the current strong `ETag` or the exact `Last-Modified` keeps the
//!   range; anything else gets the whole file.
//! - **Directories.** `/dir/` serves `dir/index.html` (see
//!   [`StaticFiles::index`]); `/dir` is `301` to `/dir/` under the same
//!   `SCRIPT_NAME`, keeping the query string. There are no listings: a
//!   directory without an index is `404`.
//! - **Errors.** Missing: `404`. Not readable (`EACCES`): `403`. Any other
//!   I/O error: `500`, with a line in `wsgi.errors`.
//!
//! # What it refuses, and why
//!
//! Nothing outside the root is ever opened, and a suspicious path is
//! refused rather than cleaned up, because a path that needs cleaning did
//! not come from a link the site published:
//!
//! | request | answer | why |
//! |---|---|---|
//! | a `..` or `.` segment, also as `%2e%2e`, `%2E%2e/`, `..%2f` | `404` | `PATH_INFO` arrives percent-decoded, so these are plain `..` segments; a path with `..` in it is never followed |
//! | `%2F` or `%5C` in the raw path (`REQUEST_URI`) | `404` | an encoded slash cannot name a file; it only hides a separator from a proxy (Apache's `AllowEncodedSlashes Off` answers the same) |
//! | a backslash in the path | `404` | a separator elsewhere (`..\`); never needed on Unix |
//! | a NUL byte (`%00`) | `400` | malformed: no file name holds one |
//! | a path not starting with `/` (`OPTIONS *`) | `404` | not a path under the root |
//! | a path whose real location (every symlink resolved) lies outside the root | `403` | like nginx's `disable_symlinks`; symlinks that resolve inside the root are followed, even through a directory symlink that leaves the root and comes back |
//! | a FIFO, socket or device file | `404` | only regular files are served |
//!
//! Containment is checked on the canonical path (every symlink resolved)
//! against the canonical root, for the file and again for a directory's
//! index; the final component is opened with `O_NOFOLLOW`. The root itself
//! is trusted: someone who can create symlinks in it while it is served can
//! race the check, as with nginx without `disable_symlinks`.
//! Hidden files (`.well-known/`, `.htaccess`) are served like any other,
//! as nginx does; keep secrets out of the root.
//!
//! # Example
//!
//! ```
//! use gatekit_core::Config;
//! use gatekit_core::testing::memory_gateway;
//! use gatekit_static::StaticFiles;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("hello.txt"), "Hello, world!\n")?;
//! let app = StaticFiles::new(dir.path())?.index("index.html");
//!
//! let (mut gateway, _errors) =
//!     memory_gateway(&[("PATH_INFO", b"/hello.txt")], b"", Config::gateway());
//! gateway.run(&app);
//! let out = String::from_utf8_lossy(gateway.transport().output()).into_owned();
//! assert!(out.starts_with("Status: 200 OK\r\n"));
//! assert!(out.contains("Content-Type: text/plain; charset=utf-8\r\n"));
//! assert!(out.ends_with("\r\n\r\nHello, world!\n"));
//!
//! // Serving it over HTTP instead:
//! // gatekit_http::make_server("127.0.0.1:8000", app)?.serve_forever()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//!
//! The app only reads the environ and answers: framing, `Date`, `HEAD`
//! bodies and the sendfile path are the [`Gateway`](gatekit_core::Gateway)'s,
//! so it behaves the same under every front-end. Path checks work on the
//! bytes of `PATH_INFO` before the file system is touched; the HTTP rules
//! (ranges, entity-tags, dates) are pure functions over header bytes that
//! never allocate in proportion to their input.

mod path;
mod rules;

pub use rules::content_type;

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use gatekit_core::{App, Body, BoxError, Environ, FileWrapper, StartResponse, format_date_time};
use rustix::io::Errno;

use crate::path::{PathRefusal, RequestPath};
use crate::rules::RangeAnswer;

/// The static file app: serves the files under one directory.
///
/// Cheap to clone; share one between threads with `Arc` or by value.
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
    index: Option<OsString>,
}

/// Why a request gets no file.
#[derive(Debug)]
enum Refusal {
    BadRequest,
    Forbidden,
    NotFound,
    Io(io::Error),
}

/// What a request path names.
#[allow(clippy::large_enum_variant)] // one short-lived value per request, never stored
enum Found {
    /// A regular file, opened, with its metadata and the name its type comes from.
    File {
        file: File,
        meta: Metadata,
        name: Vec<u8>,
    },
    /// A directory asked for without the trailing slash.
    Redirect,
}

impl StaticFiles {
    /// The default index file name.
    pub const DEFAULT_INDEX: &'static str = "index.html";

    /// Serves the files under `root`, with `index.html` as the index.
    ///
    /// The root is canonicalized now (symlinks resolved), so the
    /// containment check compares real paths.
    ///
    /// # Errors
    /// `root` does not exist or cannot be resolved, or it is not a
    /// directory ([`io::ErrorKind::NotADirectory`]); the message names it.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<StaticFiles> {
        let given = root.into();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", given.display()));
        let root = fs::canonicalize(&given).map_err(named)?;
        if !fs::metadata(&root).map_err(named)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", given.display()),
            ));
        }
        Ok(StaticFiles {
            root,
            index: Some(OsString::from(Self::DEFAULT_INDEX)),
        })
    }

    /// Sets the file served for a directory asked for with a trailing
    /// slash (default [`DEFAULT_INDEX`](StaticFiles::DEFAULT_INDEX)). It
    /// is a name inside that directory, under the same containment check
    /// as any request.
    #[must_use]
    pub fn index(mut self, name: impl Into<OsString>) -> StaticFiles {
        self.index = Some(name.into());
        self
    }

    /// Serves no index file: every directory is `404`.
    #[must_use]
    pub fn no_index(mut self) -> StaticFiles {
        self.index = None;
        self
    }

    /// The canonical root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The index file name, if any.
    #[must_use]
    pub fn index_name(&self) -> Option<&OsStr> {
        self.index.as_deref()
    }

    /// Finds and opens what `request` names, inside the root.
    fn lookup(&self, request: &RequestPath<'_>) -> Result<Found, Refusal> {
        let mut candidate = self.root.clone();
        for segment in &request.segments {
            candidate.push(OsStr::from_bytes(segment));
        }
        let real = self.confine(&candidate)?;
        let meta = fs::metadata(&real).map_err(refusal)?;
        if meta.is_dir() {
            if !request.trailing_slash {
                return Ok(Found::Redirect);
            }
            let index = self.index.as_ref().ok_or(Refusal::NotFound)?;
            let real = self.confine(&real.join(index))?;
            let (file, meta) = open_regular(&real)?;
            return Ok(Found::File {
                file,
                meta,
                name: index.as_bytes().to_vec(),
            });
        }
        if request.trailing_slash || !meta.is_file() {
            return Err(Refusal::NotFound);
        }
        let (file, meta) = open_regular(&real)?;
        let name = request
            .segments
            .last()
            .copied()
            .unwrap_or_default()
            .to_vec();
        Ok(Found::File { file, meta, name })
    }

    /// The canonical form of `path`, refused when it lies outside the root.
    fn confine(&self, path: &Path) -> Result<PathBuf, Refusal> {
        let real = fs::canonicalize(path).map_err(refusal)?;
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(Refusal::Forbidden)
        }
    }
}

impl App for StaticFiles {
    fn call(&self, env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
        let head = match env.get_bytes("REQUEST_METHOD").unwrap_or_default() {
            b"GET" => false,
            b"HEAD" => true,
            _ => {
                return reply(
                    sr,
                    "405 Method Not Allowed",
                    vec![("Allow", "GET, HEAD".into())],
                );
            }
        };
        let path_info = env.get_bytes("PATH_INFO").unwrap_or_default().to_vec();
        let request = match path::parse(&path_info, env.get_bytes("REQUEST_URI")) {
            Ok(request) => request,
            Err(PathRefusal::Malformed) => return reply(sr, "400 Bad Request", vec![]),
            Err(PathRefusal::Refused) => return reply(sr, "404 Not Found", vec![]),
        };
        match self.lookup(&request) {
            Ok(Found::File { file, meta, name }) => serve_file(env, sr, file, &meta, &name, head),
            Ok(Found::Redirect) => redirect(env, sr, &request),
            Err(Refusal::BadRequest) => reply(sr, "400 Bad Request", vec![]),
            Err(Refusal::Forbidden) => reply(sr, "403 Forbidden", vec![]),
            Err(Refusal::NotFound) => reply(sr, "404 Not Found", vec![]),
            Err(Refusal::Io(e)) => {
                let _ = writeln!(
                    env.errors,
                    "gatekit-static: {}: {e}",
                    String::from_utf8_lossy(&path_info)
                );
                reply(sr, "500 Internal Server Error", vec![])
            }
        }
    }
}

/// Maps a file-system error to an answer: a name that does not resolve is
/// `404`, a permission problem `403`, anything else a `500`.
fn refusal(e: io::Error) -> Refusal {
    match e.raw_os_error().map(Errno::from_raw_os_error) {
        Some(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::NAMETOOLONG | Errno::NXIO) => {
            Refusal::NotFound
        }
        Some(Errno::ACCESS | Errno::PERM) => Refusal::Forbidden,
        Some(Errno::ILSEQ | Errno::INVAL) => Refusal::BadRequest,
        _ => Refusal::Io(e),
    }
}

/// Opens a regular file for reading: the last component not followed if
/// it became a symlink since it was resolved, and never blocking on a FIFO.
fn open_regular(path: &Path) -> Result<(File, Metadata), Refusal> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
        .open(path)
        .map_err(refusal)?;
    let meta = file.metadata().map_err(Refusal::Io)?;
    if !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok((file, meta))
}

/// Answers with a file: `304`, `206`, `416` or `200`.
fn serve_file(
    env: &Environ,
    sr: &mut StartResponse<'_>,
    file: File,
    meta: &Metadata,
    name: &[u8],
    head: bool,
) -> Result<Body, BoxError> {
    let len = meta.len();
    let mtime_secs = u64::try_from(meta.mtime()).unwrap_or(0);
    let mtime_nanos = u64::try_from(meta.mtime_nsec()).unwrap_or(0);
    let etag = format!(
        "\"{:x}-{len:x}-{mtime_secs:x}.{mtime_nanos:x}\"",
        meta.ino()
    );
    let last_modified = format_date_time(UNIX_EPOCH + Duration::from_secs(mtime_secs));

    // RFC 9110 §13.2.2, in its order: If-Match, else If-Unmodified-Since
    // (412 when they fail); then If-None-Match, else If-Modified-Since (304).
    let precondition_failed = match env.get_bytes("HTTP_IF_MATCH") {
        Some(tags) => !rules::if_match(tags, &etag),
        None => env
            .get_bytes("HTTP_IF_UNMODIFIED_SINCE")
            .and_then(rules::parse_http_date)
            .is_some_and(|since| mtime_secs > since),
    };
    if precondition_failed {
        return reply(
            sr,
            "412 Precondition Failed",
            vec![("ETag", etag), ("Last-Modified", last_modified)],
        );
    }
    let not_modified = match env.get_bytes("HTTP_IF_NONE_MATCH") {
        Some(tags) => rules::if_none_match(tags, &etag),
        None => env
            .get_bytes("HTTP_IF_MODIFIED_SINCE")
            .and_then(rules::parse_http_date)
            .is_some_and(|since| mtime_secs <= since),
    };
    if not_modified {
        sr.start(
            "304 Not Modified",
            [("ETag", etag), ("Last-Modified", last_modified)],
        )?;
        return Ok(Body::Empty);
    }

    let answer = match env.get_bytes("HTTP_RANGE") {
        Some(range)
            if !head
                && env
                    .get_bytes("HTTP_IF_RANGE")
                    .is_none_or(|v| rules::if_range(v, &etag, mtime_secs)) =>
        {
            rules::evaluate_range(range, len)
        }
        _ => RangeAnswer::Whole,
    };
    let mut headers = vec![
        ("Content-Type", content_type(name).to_owned()),
        ("Accept-Ranges", "bytes".to_owned()),
        ("ETag", etag),
        ("Last-Modified", last_modified),
    ];
    match answer {
        RangeAnswer::Whole => {
            headers.push(("Content-Length", len.to_string()));
            let body = FileWrapper::from_file_range(file, 0, len)?;
            sr.start("200 OK", headers)?;
            Ok(Body::File(body))
        }
        RangeAnswer::Part { start, end } => {
            let count = end - start + 1;
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            headers.push(("Content-Length", count.to_string()));
            let body = FileWrapper::from_file_range(file, start, count)?;
            sr.start("206 Partial Content", headers)?;
            Ok(Body::File(body))
        }
        RangeAnswer::Unsatisfiable => reply(
            sr,
            "416 Range Not Satisfiable",
            vec![("Content-Range", format!("bytes */{len}"))],
        ),
    }
}

/// `301` from a directory without its trailing slash to the same path with
/// one, under the same `SCRIPT_NAME`, keeping the query string.
///
/// The location is rebuilt from the checked segments (empty ones dropped),
/// so it always starts with exactly one `/`: a path such as `//evil.example`
/// cannot turn into a protocol-relative redirect to another host.
fn redirect(
    env: &Environ,
    sr: &mut StartResponse<'_>,
    request: &RequestPath<'_>,
) -> Result<Body, BoxError> {
    let mut location = String::new();
    let script = env.get_bytes("SCRIPT_NAME").unwrap_or_default();
    let script_segments = script.split(|&b| b == b'/').filter(|s| !s.is_empty());
    for segment in script_segments.chain(request.segments.iter().copied()) {
        location.push('/');
        path::encode_path(segment, &mut location);
    }
    location.push('/');
    if let Some(query) = env.get_bytes("QUERY_STRING").filter(|q| !q.is_empty()) {
        location.push('?');
        path::encode_query(query, &mut location);
    }
    reply(sr, "301 Moved Permanently", vec![("Location", location)])
}

/// A short plain-text answer: the status line as the body.
fn reply(
    sr: &mut StartResponse<'_>,
    status: &'static str,
    extra: Vec<(&'static str, String)>,
) -> Result<Body, BoxError> {
    let mut headers = vec![("Content-Type", "text/plain; charset=utf-8".to_owned())];
    headers.extend(extra);
    sr.start(status, headers)?;
    Ok(Body::from(format!("{status}\n")))
}

#[cfg(test)]
mod tests;
