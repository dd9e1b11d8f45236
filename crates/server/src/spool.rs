//! Request-body spooling: a body is held in memory up to a threshold, then in
//! an anonymous temporary file, so the I/O thread can take in the whole body
//! before the blocking app runs on a worker (waitress's `inbuf_overflow`).
//!
//! The I/O thread makes a [`Spool`] per request, [`write`](Spool::write)s
//! each piece of body as it is parsed, and [`finish`](Spool::finish)es it
//! into a [`SpooledBody`], which the worker hands to the app as
//! `wsgi.input` ([`SpooledBody::into_input`]).
//!
//! # Memory and disk
//!
//! Memory is bounded by [`SpoolConfig::memory_threshold`], never by the body:
//! the in-memory buffer's capacity never passes the threshold (it grows in
//! steps capped at the threshold, and at most `min(declared length,
//! threshold)` is reserved up front). A body that passes the threshold moves
//! to a temporary file; from then on the spool holds only a write buffer of
//! `min(threshold, 64 KiB)`. A body whose declared length is already over the
//! threshold goes to the file from its first byte, so it never takes
//! threshold-sized memory nor a copy.
//!
//! The file is made with [`tempfile::tempfile_in`] (or [`tempfile::tempfile`]
//! when no directory is configured): it is unlinked at once (or never linked,
//! with `O_TMPFILE`), so nothing is left behind even if the process is killed.
//! The file is made only when the body passes the threshold, not when the
//! request is announced, so a client that declares a large body and sends
//! nothing costs no file descriptor.
//!
//! # Limits
//!
//! Limits are checked before anything is allocated or written: a declared
//! length over [`SpoolConfig::max_body`] is refused by [`Spool::new`], and a
//! body of unknown length (HTTP chunked, FastCGI/SCGI without a usable
//! `CONTENT_LENGTH`) is refused by the first [`Spool::write`] that would take
//! it past `max_body`. See [`SpoolError`] for the answer each failure gets.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, Read, Seek, Write};
use std::path::PathBuf;

use gatekit_core::Input;

/// Largest write buffer kept while a body is on disk (capped further by the
/// memory threshold).
const WRITE_BUF: usize = 64 * 1024;

/// Read buffer of a body read back from disk.
const READ_BUF: usize = 64 * 1024;

/// Smallest step the in-memory buffer grows by, so a body arriving in tiny
/// pieces is not reallocated for each (still capped at the threshold).
const MIN_GROW: usize = 8 * 1024;

/// How request bodies are spooled.
///
/// Fields are public; the struct is `#[non_exhaustive]`, so outside this
/// crate start from [`SpoolConfig::new`] (or `Default`) and set fields or use
/// the `with_*` methods:
///
/// ```
/// use gatekit_server::spool::SpoolConfig;
///
/// let config = SpoolConfig::new()
///     .with_memory_threshold(64 * 1024)
///     .with_max_body(16 * 1024 * 1024);
/// assert_eq!(config.memory_threshold, 64 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// Bodies up to this many bytes stay in memory; a longer one moves to a
    /// temporary file. Default 512 KiB ([`SpoolConfig::DEFAULT_MEMORY_THRESHOLD`],
    /// waitress's `inbuf_overflow`). `0` sends every non-empty body to disk.
    pub memory_threshold: usize,
    /// Largest body accepted, in bytes, whether its length is declared or
    /// not. Default 1 GiB ([`SpoolConfig::DEFAULT_MAX_BODY`]).
    pub max_body: u64,
    /// Directory for the temporary files; `None` uses the system's
    /// (`TMPDIR`, else `/tmp`). Pick a disk-backed directory with room for
    /// `max_body` times the number of concurrent uploads: on a tmpfs `/tmp`
    /// the "file" is memory again.
    pub temp_dir: Option<PathBuf>,
}

impl SpoolConfig {
    /// Default [`memory_threshold`](SpoolConfig::memory_threshold): 512 KiB,
    /// waitress's `inbuf_overflow`.
    pub const DEFAULT_MEMORY_THRESHOLD: usize = 512 * 1024;

    /// Default [`max_body`](SpoolConfig::max_body): 1 GiB, waitress's
    /// `max_request_body_size`. Large enough that the uploads gatekit promises
    /// to carry (1 GiB with flat RSS) pass without configuration, small
    /// enough that one request cannot fill an ordinary disk; sites that take
    /// only forms should lower it.
    pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024 * 1024;

    /// The defaults: 512 KiB in memory, 1 GiB at most, the system's
    /// temporary directory.
    #[must_use]
    pub fn new() -> SpoolConfig {
        SpoolConfig {
            memory_threshold: SpoolConfig::DEFAULT_MEMORY_THRESHOLD,
            max_body: SpoolConfig::DEFAULT_MAX_BODY,
            temp_dir: None,
        }
    }

    /// Sets [`memory_threshold`](SpoolConfig::memory_threshold).
    #[must_use]
    pub fn with_memory_threshold(mut self, bytes: usize) -> SpoolConfig {
        self.memory_threshold = bytes;
        self
    }

    /// Sets [`max_body`](SpoolConfig::max_body).
    #[must_use]
    pub fn with_max_body(mut self, bytes: u64) -> SpoolConfig {
        self.max_body = bytes;
        self
    }

    /// Sets [`temp_dir`](SpoolConfig::temp_dir).
    #[must_use]
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> SpoolConfig {
        self.temp_dir = Some(dir.into());
        self
    }
}

impl Default for SpoolConfig {
    fn default() -> SpoolConfig {
        SpoolConfig::new()
    }
}

/// Why a body could not be spooled.
///
/// What the front-end answers:
///
/// - [`TooLarge`](SpoolError::TooLarge) ([`is_too_large`](SpoolError::is_too_large)):
///   413 Content Too Large.
/// - [`TooLong`](SpoolError::TooLong) and [`Incomplete`](SpoolError::Incomplete):
///   the client broke its own framing; a protocol error (HTTP 400 and close,
///   FastCGI/SCGI: close the request). An `Incomplete` body usually means the
///   client went away, so there is often no one to answer.
/// - [`Io`](SpoolError::Io): 500, except when
///   [`is_disk_full`](SpoolError::is_disk_full), which is 503 Service
///   Unavailable: the request was within the limits and the shortage is the
///   server's and temporary, so 413 would wrongly tell the client to send
///   less.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpoolError {
    /// The body is, or would become, larger than
    /// [`SpoolConfig::max_body`].
    TooLarge {
        /// The limit passed, in bytes.
        limit: u64,
    },
    /// More bytes arrived than the declared length.
    TooLong,
    /// The body ended before its declared length.
    Incomplete {
        /// The declared length.
        expected: u64,
        /// The bytes that arrived.
        got: u64,
    },
    /// Memory or the temporary file failed (no memory, disk full, temporary
    /// directory missing, ...). After this the spool is unusable.
    Io(io::Error),
}

impl SpoolError {
    /// The body passed [`SpoolConfig::max_body`]: the front-end answers 413.
    #[must_use]
    pub fn is_too_large(&self) -> bool {
        matches!(self, SpoolError::TooLarge { .. })
    }

    /// The HTTP status that answers this failure, for every front-end:
    /// 413 for a body over the limit, 503 for a full disk, 500 for another
    /// I/O error of the spool, 400 for a body that does not match its
    /// declared length.
    #[must_use]
    pub fn status(&self) -> u16 {
        if self.is_too_large() {
            413
        } else if self.is_disk_full() {
            503
        } else if matches!(self, SpoolError::Io(_)) {
            500
        } else {
            400
        }
    }

    /// The temporary file's filesystem is full, the disk quota is used up,
    /// or the file reached the largest size this process may write
    /// (`ENOSPC`, `EDQUOT`, `EFBIG` from RLIMIT_FSIZE): the front-end answers 503 Service Unavailable
    /// (see [`SpoolError`] for why not 413).
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        match self {
            SpoolError::Io(e) => e.raw_os_error().is_some_and(|code| {
                code == rustix::io::Errno::NOSPC.raw_os_error()
                    || code == rustix::io::Errno::DQUOT.raw_os_error()
                    || code == rustix::io::Errno::FBIG.raw_os_error()
            }),
            _ => false,
        }
    }

    /// The error returned once the spool has failed.
    fn failed_earlier() -> SpoolError {
        SpoolError::Io(io::Error::other(
            "an earlier spool error left the body unusable",
        ))
    }
}

impl fmt::Display for SpoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpoolError::TooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            SpoolError::TooLong => f.write_str("request body is longer than its declared length"),
            SpoolError::Incomplete { expected, got } => {
                write!(f, "request body ended after {got} of {expected} bytes")
            }
            SpoolError::Io(_) => f.write_str("cannot spool the request body"),
        }
    }
}

impl std::error::Error for SpoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpoolError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> SpoolError {
        SpoolError::Io(e)
    }
}

/// Where the body is so far.
enum State {
    /// In memory; capacity never passes the threshold.
    Memory(Vec<u8>),
    /// In an anonymous temporary file.
    Disk(BufWriter<File>),
    /// An I/O error happened; the body is lost.
    Failed,
}

/// A request body being received: in memory up to the threshold, then in an
/// anonymous temporary file. See the [module docs](self).
pub struct Spool {
    state: State,
    len: u64,
    expected: Option<u64>,
    threshold: usize,
    max_body: u64,
    temp_dir: Option<PathBuf>,
}

impl Spool {
    /// A spool for a body of `expected_len` bytes (`None`: unknown, as with
    /// a chunked body).
    ///
    /// Refuses an `expected_len` over [`SpoolConfig::max_body`] with
    /// [`SpoolError::TooLarge`] before reserving anything. Otherwise reserves
    /// `expected_len` bytes when that is within the threshold, and nothing
    /// when the length is unknown or over the threshold (such a body grows in
    /// memory in capped steps, or goes to disk from its first byte).
    pub fn new(expected_len: Option<u64>, config: &SpoolConfig) -> Result<Spool, SpoolError> {
        if let Some(expected) = expected_len {
            if expected > config.max_body {
                return Err(SpoolError::TooLarge {
                    limit: config.max_body,
                });
            }
        }
        let mut buf = Vec::new();
        if let Some(expected) = expected_len {
            if let Ok(n) = usize::try_from(expected) {
                if n <= config.memory_threshold {
                    buf.try_reserve_exact(n).map_err(|_| out_of_memory())?;
                }
            }
        }
        Ok(Spool {
            state: State::Memory(buf),
            len: 0,
            expected: expected_len,
            threshold: config.memory_threshold,
            max_body: config.max_body,
            temp_dir: config.temp_dir.clone(),
        })
    }

    /// Appends `data` to the body.
    ///
    /// Moves the body to a temporary file when memory would pass the
    /// threshold (the memory part is written to the file and its buffer
    /// freed). Refuses, writing nothing, data that would take the body past
    /// the declared length ([`SpoolError::TooLong`]) or past
    /// [`SpoolConfig::max_body`] ([`SpoolError::TooLarge`]); the spool stays
    /// usable after those. After [`SpoolError::Io`] it is not: every later
    /// call fails too.
    pub fn write(&mut self, data: &[u8]) -> Result<(), SpoolError> {
        if matches!(self.state, State::Failed) {
            return Err(SpoolError::failed_earlier());
        }
        if data.is_empty() {
            return Ok(());
        }
        let new_len = self.len.saturating_add(data.len() as u64);
        if self.expected.is_some_and(|expected| new_len > expected) {
            return Err(SpoolError::TooLong);
        }
        if new_len > self.max_body {
            return Err(SpoolError::TooLarge {
                limit: self.max_body,
            });
        }
        let threshold = self.threshold as u64;
        let result = match &mut self.state {
            State::Memory(buf)
                if new_len <= threshold && self.expected.is_none_or(|e| e <= threshold) =>
            {
                extend_capped(buf, data, self.threshold)
            }
            State::Memory(buf) => {
                let memory = std::mem::take(buf);
                match self.spill(&memory, data) {
                    Ok(writer) => {
                        // The memory part is in the file: free it before
                        // anything else is read.
                        drop(memory);
                        self.state = State::Disk(writer);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            State::Disk(writer) => writer.write_all(data),
            State::Failed => return Err(SpoolError::failed_earlier()),
        };
        match result {
            Ok(()) => {
                self.len = new_len;
                Ok(())
            }
            Err(e) => {
                self.state = State::Failed;
                Err(SpoolError::Io(e))
            }
        }
    }

    /// Makes the temporary file and writes `memory` then `data` to it.
    fn spill(&self, memory: &[u8], data: &[u8]) -> io::Result<BufWriter<File>> {
        let file = match &self.temp_dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        let mut writer = BufWriter::with_capacity(self.threshold.min(WRITE_BUF), file);
        writer.write_all(memory)?;
        writer.write_all(data)?;
        Ok(writer)
    }

    /// Bytes received so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// No bytes received yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The declared length, if there is one.
    #[must_use]
    pub fn expected_len(&self) -> Option<u64> {
        self.expected
    }

    /// The body has moved to a temporary file.
    #[must_use]
    pub fn is_on_disk(&self) -> bool {
        matches!(self.state, State::Disk(_))
    }

    /// The body is complete: checks that exactly the declared length arrived
    /// ([`SpoolError::Incomplete`] if not) and returns it ready to be read
    /// from its first byte.
    pub fn finish(self) -> Result<SpooledBody, SpoolError> {
        if let Some(expected) = self.expected {
            if self.len != expected {
                return Err(SpoolError::Incomplete {
                    expected,
                    got: self.len,
                });
            }
        }
        let inner = match self.state {
            State::Memory(buf) => Body::Memory(Cursor::new(buf)),
            State::Disk(writer) => {
                let mut file = writer
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)?;
                file.rewind()?;
                Body::Disk(BufReader::with_capacity(READ_BUF, file))
            }
            State::Failed => return Err(SpoolError::failed_earlier()),
        };
        Ok(SpooledBody {
            inner,
            len: self.len,
        })
    }

    /// Capacity of the in-memory buffer (0 once on disk).
    #[cfg(test)]
    fn memory_capacity(&self) -> usize {
        match &self.state {
            State::Memory(buf) => buf.capacity(),
            State::Disk(_) | State::Failed => 0,
        }
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("len", &self.len)
            .field("expected", &self.expected)
            .field("on_disk", &self.is_on_disk())
            .field("failed", &matches!(self.state, State::Failed))
            .field("threshold", &self.threshold)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// Grows `buf` in steps capped at `cap` and appends `data`; the caller has
/// checked that `buf.len() + data.len() <= cap`.
fn extend_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize) -> io::Result<()> {
    let needed = buf.len().saturating_add(data.len());
    if needed > buf.capacity() {
        let target = buf
            .capacity()
            .saturating_mul(2)
            .max(MIN_GROW)
            .min(cap)
            .max(needed);
        buf.try_reserve_exact(target - buf.len())
            .map_err(|_| out_of_memory())?;
    }
    buf.extend_from_slice(data);
    Ok(())
}

fn out_of_memory() -> io::Error {
    io::Error::from(io::ErrorKind::OutOfMemory)
}

/// Where a finished body is.
enum Body {
    Memory(Cursor<Vec<u8>>),
    Disk(BufReader<File>),
}

/// A complete request body, read from its first byte: from memory, or from
/// the anonymous temporary file (deleted when this is dropped, as it never
/// had a name).
pub struct SpooledBody {
    inner: Body,
    len: u64,
}

impl SpooledBody {
    /// `wsgi.input` for a transport's [`Transport::input`]: the body, or
    /// [`io::empty`] when there is none or it is empty (zero-sized, so no
    /// allocation for the usual GET).
    ///
    /// [`Transport::input`]: gatekit_core::Transport::input
    #[must_use]
    pub fn boxed_or_empty(body: Option<SpooledBody>) -> Box<dyn BufRead + Send> {
        match body {
            Some(body) if !body.is_empty() => Box::new(body),
            _ => Box::new(io::empty()),
        }
    }

    /// The body's length in bytes (for a body of unknown length, what
    /// arrived: the `CONTENT_LENGTH` to give the app).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The body is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body is in a temporary file.
    #[must_use]
    pub fn is_on_disk(&self) -> bool {
        matches!(self.inner, Body::Disk(_))
    }

    /// `wsgi.input` for the app: this body with its length as the
    /// content length.
    #[must_use]
    pub fn into_input(self) -> Input {
        let len = self.len;
        Input::new(Box::new(self), len)
    }
}

impl Read for SpooledBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Body::Memory(cursor) => cursor.read(buf),
            Body::Disk(reader) => reader.read(buf),
        }
    }
}

impl BufRead for SpooledBody {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.inner {
            Body::Memory(cursor) => cursor.fill_buf(),
            Body::Disk(reader) => reader.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match &mut self.inner {
            Body::Memory(cursor) => cursor.consume(amt),
            Body::Disk(reader) => reader.consume(amt),
        }
    }
}

impl fmt::Debug for SpooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpooledBody")
            .field("len", &self.len)
            .field("on_disk", &self.is_on_disk())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    const KIB: usize = 1024;

    fn config(threshold: usize, max_body: u64) -> SpoolConfig {
        SpoolConfig::new()
            .with_memory_threshold(threshold)
            .with_max_body(max_body)
    }

    /// Byte `i` of a body that does not repeat with any short period.
    fn pattern(i: u64) -> u8 {
        (i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24)).wrapping_mul(31) as u8
    }

    fn pattern_vec(len: usize) -> Vec<u8> {
        (0..len as u64).map(pattern).collect()
    }

    fn read_all(mut body: SpooledBody) -> Vec<u8> {
        let mut out = Vec::new();
        body.read_to_end(&mut out).unwrap();
        out
    }

    fn dir_entries(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn defaults() {
        let c = SpoolConfig::default();
        assert_eq!(c.memory_threshold, 512 * KIB);
        assert_eq!(c.max_body, 1 << 30);
        assert_eq!(c.temp_dir, None);
        assert_eq!(c, SpoolConfig::new());
        let c = SpoolConfig::new().with_temp_dir("/var/tmp");
        assert_eq!(c.temp_dir, Some(PathBuf::from("/var/tmp")));
    }

    #[test]
    fn small_body_stays_in_memory() {
        let mut spool = Spool::new(Some(11), &SpoolConfig::default()).unwrap();
        assert!(spool.is_empty());
        spool.write(b"hello ").unwrap();
        spool.write(b"world").unwrap();
        assert_eq!(spool.len(), 11);
        assert!(!spool.is_on_disk());
        let body = spool.finish().unwrap();
        assert_eq!(body.len(), 11);
        assert!(!body.is_on_disk());
        assert_eq!(read_all(body), b"hello world");
    }

    #[test]
    fn empty_body() {
        let body = Spool::new(Some(0), &SpoolConfig::default())
            .unwrap()
            .finish()
            .unwrap();
        assert!(body.is_empty());
        assert_eq!(read_all(body), b"");
        let mut spool = Spool::new(None, &SpoolConfig::default()).unwrap();
        spool.write(b"").unwrap();
        assert!(spool.finish().unwrap().is_empty());
    }

    #[test]
    fn body_at_threshold_stays_in_memory() {
        let data = pattern_vec(4 * KIB);
        let mut spool = Spool::new(None, &config(4 * KIB, 1 << 20)).unwrap();
        spool.write(&data).unwrap();
        assert!(!spool.is_on_disk());
        assert!(spool.memory_capacity() <= 4 * KIB);
        assert_eq!(read_all(spool.finish().unwrap()), data);
    }

    #[test]
    fn crossing_threshold_moves_to_disk_and_frees_memory() {
        let data = pattern_vec(10 * KIB);
        let mut spool = Spool::new(None, &config(4 * KIB, 1 << 20)).unwrap();
        spool.write(&data[..3 * KIB]).unwrap();
        assert!(!spool.is_on_disk());
        assert!(spool.memory_capacity() >= 3 * KIB);
        spool.write(&data[3 * KIB..6 * KIB]).unwrap();
        assert!(spool.is_on_disk());
        assert_eq!(spool.memory_capacity(), 0);
        spool.write(&data[6 * KIB..]).unwrap();
        assert_eq!(spool.len(), data.len() as u64);
        let body = spool.finish().unwrap();
        assert!(body.is_on_disk());
        assert_eq!(body.len(), data.len() as u64);
        assert_eq!(read_all(body), data);
    }

    #[test]
    fn many_small_pieces() {
        let data = pattern_vec(20 * KIB + 7);
        for declared in [None, Some(data.len() as u64)] {
            let mut spool = Spool::new(declared, &config(4 * KIB, 1 << 20)).unwrap();
            for (i, byte) in data.iter().enumerate() {
                spool.write(std::slice::from_ref(byte)).unwrap();
                assert!(spool.memory_capacity() <= 4 * KIB);
                assert_eq!(spool.is_on_disk(), declared.is_some() || i >= 4 * KIB);
            }
            assert_eq!(read_all(spool.finish().unwrap()), data);
        }
    }

    #[test]
    fn one_big_piece() {
        let data = pattern_vec(100 * KIB);
        for declared in [None, Some(data.len() as u64)] {
            let mut spool = Spool::new(declared, &config(4 * KIB, 1 << 20)).unwrap();
            spool.write(&data).unwrap();
            assert!(spool.is_on_disk());
            assert_eq!(read_all(spool.finish().unwrap()), data);
        }
    }

    #[test]
    fn threshold_zero_sends_every_body_to_disk() {
        let mut spool = Spool::new(None, &config(0, 1 << 20)).unwrap();
        assert_eq!(spool.memory_capacity(), 0);
        spool.write(b"x").unwrap();
        assert!(spool.is_on_disk());
        spool.write(b"yz").unwrap();
        assert_eq!(read_all(spool.finish().unwrap()), b"xyz");
    }

    #[test]
    fn reserves_declared_length_within_threshold() {
        let spool = Spool::new(Some(1000), &config(4 * KIB, 1 << 20)).unwrap();
        assert!((1000..=4 * KIB).contains(&spool.memory_capacity()));
        let spool = Spool::new(None, &config(4 * KIB, 1 << 20)).unwrap();
        assert_eq!(spool.memory_capacity(), 0);
    }

    #[test]
    fn declared_length_over_threshold_goes_straight_to_disk() {
        let mut spool = Spool::new(Some(1 << 30), &SpoolConfig::default()).unwrap();
        assert_eq!(spool.memory_capacity(), 0);
        assert!(!spool.is_on_disk(), "no file before the first byte");
        spool.write(b"first").unwrap();
        assert!(spool.is_on_disk());
        assert_eq!(spool.memory_capacity(), 0);
    }

    #[test]
    fn declared_length_over_max_body_refused_before_allocation() {
        let c = config(4 * KIB, 1 << 20);
        for declared in [(1 << 20) + 1, 1 << 40, u64::MAX] {
            let err = Spool::new(Some(declared), &c).unwrap_err();
            assert!(err.is_too_large(), "{declared}");
            assert!(matches!(err, SpoolError::TooLarge { limit } if limit == 1 << 20));
        }
        // Exactly max_body is accepted, and reserves no more than the threshold.
        let spool = Spool::new(Some(1 << 20), &c).unwrap();
        assert!(spool.memory_capacity() <= 4 * KIB);
        // A declared length over the threshold but within max_body: nothing.
        let spool = Spool::new(Some(1 << 19), &c).unwrap();
        assert_eq!(spool.memory_capacity(), 0);
    }

    #[test]
    fn unknown_length_refused_once_past_max_body() {
        let mut spool = Spool::new(None, &config(100, 1000)).unwrap();
        spool.write(&[b'a'; 600]).unwrap();
        let err = spool.write(&[b'b'; 401]).unwrap_err();
        assert!(err.is_too_large());
        assert!(matches!(err, SpoolError::TooLarge { limit: 1000 }));
        // Nothing of the refused piece was taken; exactly max_body passes.
        assert_eq!(spool.len(), 600);
        spool.write(&[b'c'; 400]).unwrap();
        assert_eq!(spool.len(), 1000);
        assert!(spool.write(b"d").unwrap_err().is_too_large());
        let body = read_all(spool.finish().unwrap());
        assert_eq!(body.len(), 1000);
        assert!(body.ends_with(&[b'c'; 400]));
    }

    #[test]
    fn unknown_length_in_memory_refused_past_max_body() {
        // max_body below the threshold: refused while still in memory.
        let mut spool = Spool::new(None, &config(4 * KIB, 10)).unwrap();
        spool.write(b"0123456789").unwrap();
        assert!(spool.write(b"x").unwrap_err().is_too_large());
        assert!(!spool.is_on_disk());
        assert!(spool.memory_capacity() <= 4 * KIB);
    }

    #[test]
    fn more_than_declared_is_too_long() {
        let mut spool = Spool::new(Some(5), &SpoolConfig::default()).unwrap();
        spool.write(b"abc").unwrap();
        let err = spool.write(b"def").unwrap_err();
        assert!(matches!(err, SpoolError::TooLong));
        assert!(!err.is_too_large());
        assert_eq!(spool.len(), 3);
        spool.write(b"de").unwrap();
        assert_eq!(read_all(spool.finish().unwrap()), b"abcde");

        let mut spool = Spool::new(Some(5 * KIB as u64), &config(KIB, 1 << 20)).unwrap();
        spool.write(&[0; 5 * KIB]).unwrap();
        assert!(spool.is_on_disk());
        assert!(matches!(spool.write(b"!"), Err(SpoolError::TooLong)));
    }

    #[test]
    fn finishing_short_is_incomplete() {
        let mut spool = Spool::new(Some(10), &SpoolConfig::default()).unwrap();
        spool.write(b"1234").unwrap();
        let err = spool.finish().unwrap_err();
        assert!(matches!(
            err,
            SpoolError::Incomplete {
                expected: 10,
                got: 4
            }
        ));
        assert_eq!(err.to_string(), "request body ended after 4 of 10 bytes");

        let mut spool = Spool::new(Some(10 * KIB as u64), &config(KIB, 1 << 20)).unwrap();
        spool.write(&[1; 2 * KIB]).unwrap();
        assert!(matches!(
            spool.finish(),
            Err(SpoolError::Incomplete { expected, got }) if expected == 10 * KIB as u64 && got == 2 * KIB as u64
        ));
    }

    #[test]
    fn bufread_in_memory_and_on_disk() {
        let mut text = Vec::new();
        for i in 0..500 {
            text.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        text.extend_from_slice(b"no newline at the end");
        for threshold in [1 << 20, 256] {
            let mut spool = Spool::new(None, &config(threshold, 1 << 20)).unwrap();
            for piece in text.chunks(100) {
                spool.write(piece).unwrap();
            }
            let mut body = spool.finish().unwrap();
            assert_eq!(body.is_on_disk(), threshold == 256);

            assert!(body.fill_buf().unwrap().starts_with(b"line 0\n"));
            body.consume(2);
            let mut line = String::new();
            body.read_line(&mut line).unwrap();
            assert_eq!(line, "ne 0\n");
            for i in 1..500 {
                line.clear();
                body.read_line(&mut line).unwrap();
                assert_eq!(line, format!("line {i}\n"));
            }
            line.clear();
            body.read_line(&mut line).unwrap();
            assert_eq!(line, "no newline at the end");
            assert!(body.fill_buf().unwrap().is_empty());
            assert_eq!(body.read(&mut [0; 10]).unwrap(), 0);
        }
    }

    #[test]
    fn large_body_through_tiny_threshold() {
        const LEN: u64 = 64 << 20;
        const PIECE: usize = 48 * KIB + 3;
        let dir = tempfile::tempdir().unwrap();
        let c = config(64 * KIB, LEN).with_temp_dir(dir.path());
        let mut spool = Spool::new(None, &c).unwrap();
        let mut piece = vec![0; PIECE];
        let mut offset = 0;
        while offset < LEN {
            let n = PIECE.min((LEN - offset) as usize);
            for (i, byte) in piece[..n].iter_mut().enumerate() {
                *byte = pattern(offset + i as u64);
            }
            spool.write(&piece[..n]).unwrap();
            assert!(spool.memory_capacity() <= 64 * KIB);
            offset += n as u64;
        }
        let mut body = spool.finish().unwrap();
        assert_eq!(body.len(), LEN);
        let mut offset = 0;
        loop {
            let buf = body.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            for (i, &byte) in buf.iter().enumerate() {
                assert_eq!(
                    byte,
                    pattern(offset + i as u64),
                    "byte {}",
                    offset + i as u64
                );
            }
            let n = buf.len();
            offset += n as u64;
            body.consume(n);
        }
        assert_eq!(offset, LEN);
    }

    #[test]
    fn temp_file_in_temp_dir_leaves_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(KIB, 1 << 20).with_temp_dir(dir.path());
        let mut spool = Spool::new(None, &c).unwrap();
        spool.write(&[7; 3 * KIB]).unwrap();
        assert!(spool.is_on_disk());
        assert_eq!(dir_entries(dir.path()), 0);
        let body = spool.finish().unwrap();
        assert_eq!(dir_entries(dir.path()), 0);

        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd as _;
            let Body::Disk(reader) = &body.inner else {
                panic!("body should be on disk");
            };
            let fd = reader.get_ref().as_raw_fd();
            let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
            let dir = dir.path().canonicalize().unwrap();
            assert!(target.starts_with(&dir), "{target:?} not in {dir:?}");
        }

        assert_eq!(read_all(body), [7; 3 * KIB]);
        assert_eq!(dir_entries(dir.path()), 0);
    }

    #[test]
    fn missing_temp_dir_is_an_io_error_and_poisons() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(KIB, 1 << 20).with_temp_dir(dir.path().join("missing"));
        let mut spool = Spool::new(None, &c).unwrap();
        spool.write(&[1; KIB]).unwrap();
        let err = spool.write(b"over").unwrap_err();
        assert!(matches!(err, SpoolError::Io(_)));
        assert!(!err.is_disk_full());
        assert!(!err.is_too_large());
        assert!(err.source().is_some());
        assert_eq!(spool.len(), KIB as u64);
        assert!(!spool.is_on_disk());
        assert!(matches!(spool.write(b"more"), Err(SpoolError::Io(_))));
        assert!(matches!(spool.finish(), Err(SpoolError::Io(_))));
    }

    #[test]
    fn into_input_has_content_length() {
        for threshold in [1 << 20, 16] {
            let mut spool = Spool::new(None, &config(threshold, 1 << 20)).unwrap();
            spool.write(b"name=value&other=thing").unwrap();
            let mut input = spool.finish().unwrap().into_input();
            assert_eq!(input.content_length(), 22);
            let mut out = String::new();
            input.read_to_string(&mut out).unwrap();
            assert_eq!(out, "name=value&other=thing");
            assert_eq!(input.remaining(), 0);
        }
        let input = Spool::new(Some(0), &SpoolConfig::default())
            .unwrap()
            .finish()
            .unwrap()
            .into_input();
        assert_eq!(input.content_length(), 0);
    }

    #[test]
    fn boxed_or_empty_reads_the_body_or_nothing() {
        let mut spool = Spool::new(Some(5), &SpoolConfig::default()).unwrap();
        spool.write(b"hello").unwrap();
        let mut out = String::new();
        SpooledBody::boxed_or_empty(Some(spool.finish().unwrap()))
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        let empty = Spool::new(Some(0), &SpoolConfig::default())
            .unwrap()
            .finish()
            .unwrap();
        for body in [Some(empty), None] {
            let mut out = Vec::new();
            SpooledBody::boxed_or_empty(body)
                .read_to_end(&mut out)
                .unwrap();
            assert!(out.is_empty());
        }
    }

    #[test]
    fn disk_full_mapping() {
        let nospc = rustix::io::Errno::NOSPC.raw_os_error();
        let dquot = rustix::io::Errno::DQUOT.raw_os_error();
        for code in [nospc, dquot] {
            let err = SpoolError::from(io::Error::from_raw_os_error(code));
            assert!(err.is_disk_full());
            assert!(!err.is_too_large());
        }
        let eio = rustix::io::Errno::IO.raw_os_error();
        assert!(!SpoolError::Io(io::Error::from_raw_os_error(eio)).is_disk_full());
        assert!(!SpoolError::TooLarge { limit: 1 }.is_disk_full());
        assert!(!SpoolError::TooLong.is_disk_full());
    }

    #[test]
    fn display_and_source() {
        let cases: [(SpoolError, &str); 4] = [
            (
                SpoolError::TooLarge { limit: 1024 },
                "request body is larger than the limit of 1024 bytes",
            ),
            (
                SpoolError::TooLong,
                "request body is longer than its declared length",
            ),
            (
                SpoolError::Incomplete {
                    expected: 3,
                    got: 1,
                },
                "request body ended after 1 of 3 bytes",
            ),
            (
                SpoolError::Io(io::Error::other("boom")),
                "cannot spool the request body",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
            assert_eq!(err.source().is_some(), matches!(err, SpoolError::Io(_)));
        }
    }

    #[test]
    fn types_are_send_and_static() {
        fn send_static<T: Send + 'static>() {}
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        send_static::<SpooledBody>();
        send_static::<Spool>();
        error::<SpoolError>();
        let body = Spool::new(None, &SpoolConfig::default())
            .unwrap()
            .finish()
            .unwrap();
        let _boxed: Box<dyn BufRead + Send> = Box::new(body);
    }
}
