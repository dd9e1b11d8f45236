//! What an application returns: the response body (PEP 3333's iterable) and
//! the file wrapper (`wsgi.file_wrapper`).

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek};

use crate::BoxError;

/// One block of a response body.
pub type Chunk = Cow<'static, [u8]>;

/// Anything that can be a body block: `&'static str`, `String`, `Vec<u8>`,
/// `&'static [u8]` or a [`Chunk`].
pub trait IntoChunk {
    /// Converts into a block.
    fn into_chunk(self) -> Chunk;
}

impl IntoChunk for Chunk {
    fn into_chunk(self) -> Chunk {
        self
    }
}

impl IntoChunk for Vec<u8> {
    fn into_chunk(self) -> Chunk {
        Cow::Owned(self)
    }
}

impl IntoChunk for String {
    fn into_chunk(self) -> Chunk {
        Cow::Owned(self.into_bytes())
    }
}

impl IntoChunk for &'static str {
    fn into_chunk(self) -> Chunk {
        Cow::Borrowed(self.as_bytes())
    }
}

impl IntoChunk for &'static [u8] {
    fn into_chunk(self) -> Chunk {
        Cow::Borrowed(self)
    }
}

/// A boxed, fallible stream of blocks.
pub type BlockStream = Box<dyn Iterator<Item = Result<Chunk, BoxError>> + Send>;

/// A response body: the Rust form of the iterable a WSGI application returns.
///
/// Dropping a `Body` is WSGI's `close()`: the gateway always drops it, after
/// the last block or on error, so any `Drop` of the iterator runs.
#[non_exhaustive]
pub enum Body {
    /// No body.
    Empty,
    /// One block. As with a one-item WSGI list, the gateway sets
    /// `Content-Length` from it when the app did not (wsgiref's `set_content_length`).
    Bytes(Chunk),
    /// Blocks sent as they are produced, each flushed at once (PEP 3333's
    /// "Buffering and Streaming"). No `Content-Length` is guessed: streams stay streams.
    Stream(BlockStream),
    /// A file, sent with the transport's sendfile path when it can be.
    File(FileWrapper),
}

impl Body {
    /// No body.
    #[must_use]
    pub fn empty() -> Body {
        Body::Empty
    }

    /// A stream of blocks from an infallible iterator.
    pub fn chunks<I, B>(iter: I) -> Body
    where
        I: IntoIterator<Item = B>,
        I::IntoIter: Send + 'static,
        B: IntoChunk,
    {
        Body::Stream(Box::new(iter.into_iter().map(|b| Ok(b.into_chunk()))))
    }

    /// A stream of blocks from a fallible iterator: an `Err` ends the response
    /// as an application error.
    pub fn stream<I, B, E>(iter: I) -> Body
    where
        I: IntoIterator<Item = Result<B, E>>,
        I::IntoIter: Send + 'static,
        B: IntoChunk,
        E: Into<BoxError>,
    {
        Body::Stream(Box::new(
            iter.into_iter()
                .map(|r| r.map(IntoChunk::into_chunk).map_err(Into::into)),
        ))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Bytes(b) => write!(f, "Body::Bytes({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream(..)"),
            Body::File(w) => write!(f, "Body::File({w:?})"),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::Bytes(Cow::Owned(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(Cow::Owned(s.into_bytes()))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Bytes(Cow::Borrowed(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::Bytes(Cow::Borrowed(s))
    }
}

impl From<FileWrapper> for Body {
    fn from(w: FileWrapper) -> Body {
        Body::File(w)
    }
}

enum Source {
    /// A regular file: its length from `offset` on is known, so it can be
    /// given a `Content-Length` and sent with sendfile.
    File {
        file: File,
        offset: u64,
        remaining: u64,
    },
    /// Anything else: read block by block.
    Reader(Box<dyn Read + Send>),
}

/// `wsgi.file_wrapper`: a file or reader returned as a body.
///
/// As PEP 3333 asks, sending starts at the file's *current position* and stops
/// at end of file or after `Content-Length` bytes. For a regular
/// [`std::fs::File`] the gateway knows the remaining length: it sets
/// `Content-Length` when the app did not, and hands the file to the
/// transport's [`sendfile`](crate::Transport::sendfile) hook so the bytes need
/// not pass through user space. Any other reader falls back to blocks of
/// `block_size` bytes. Dropping the wrapper closes the file (WSGI's `close()`).
///
/// ```no_run
/// use gatekit_core::{Body, FileWrapper};
/// let file = std::fs::File::open("/etc/hostname")?;
/// let body = Body::File(FileWrapper::new(file, FileWrapper::DEFAULT_BLOCK_SIZE));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct FileWrapper {
    source: Source,
    block_size: usize,
}

impl FileWrapper {
    /// The default block size, 32 KiB.
    pub const DEFAULT_BLOCK_SIZE: usize = 32 * 1024;

    /// Wraps a reader. A `std::fs::File` that is a regular file gets the
    /// sendfile path; anything else is read in blocks of `block_size`
    /// (0 means the default).
    pub fn new<R: Read + Send + 'static>(reader: R, block_size: usize) -> FileWrapper {
        let block_size = if block_size == 0 {
            Self::DEFAULT_BLOCK_SIZE
        } else {
            block_size
        };
        let mut slot = Some(reader);
        let as_any: &mut dyn std::any::Any = &mut slot;
        if let Some(file_slot) = as_any.downcast_mut::<Option<File>>() {
            if let Some(file) = file_slot.take() {
                return FileWrapper::from_file_with(file, block_size);
            }
        }
        match slot {
            Some(reader) => FileWrapper {
                source: Source::Reader(Box::new(reader)),
                block_size,
            },
            None => FileWrapper {
                source: Source::Reader(Box::new(io::empty())),
                block_size,
            },
        }
    }

    /// Wraps a file with the default block size.
    #[must_use]
    pub fn from_file(file: File) -> FileWrapper {
        FileWrapper::from_file_with(file, Self::DEFAULT_BLOCK_SIZE)
    }

    /// Wraps `len` bytes of a regular file starting at byte `offset`: the
    /// body of a `206 Partial Content` answer, still sent with sendfile.
    /// The file is positioned at `offset`, so the read fallback starts there.
    ///
    /// # Errors
    /// The file's metadata cannot be read or it cannot be positioned, it is
    /// not a regular file, or `offset + len` is past its end
    /// ([`io::ErrorKind::InvalidInput`]).
    ///
    /// ```no_run
    /// use gatekit_core::FileWrapper;
    /// let file = std::fs::File::open("/etc/hostname")?;
    /// let part = FileWrapper::from_file_range(file, 2, 3)?;
    /// assert_eq!(part.remaining(), Some(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_file_range(mut file: File, offset: u64, len: u64) -> io::Result<FileWrapper> {
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a file range needs a regular file",
            ));
        }
        if offset.checked_add(len).is_none_or(|end| end > meta.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "range of {len} bytes at {offset} is past the end of a {}-byte file",
                    meta.len()
                ),
            ));
        }
        file.seek(io::SeekFrom::Start(offset))?;
        Ok(FileWrapper {
            source: Source::File {
                file,
                offset,
                remaining: len,
            },
            block_size: Self::DEFAULT_BLOCK_SIZE,
        })
    }

    fn from_file_with(mut file: File, block_size: usize) -> FileWrapper {
        let known = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|meta| {
                let offset = file.stream_position().ok()?;
                Some((offset, meta.len().saturating_sub(offset)))
            });
        let source = match known {
            Some((offset, remaining)) => Source::File {
                file,
                offset,
                remaining,
            },
            None => Source::Reader(Box::new(file)),
        };
        FileWrapper { source, block_size }
    }

    /// The block size for the read fallback.
    #[must_use]
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes left to send, when known (a regular file).
    #[must_use]
    pub fn remaining(&self) -> Option<u64> {
        match &self.source {
            Source::File { remaining, .. } => Some(*remaining),
            Source::Reader(_) => None,
        }
    }

    /// The file, the offset to send from, and the bytes left, for sendfile.
    #[must_use]
    pub fn as_file(&self) -> Option<(&File, u64, u64)> {
        match &self.source {
            Source::File {
                file,
                offset,
                remaining,
            } => Some((file, *offset, *remaining)),
            Source::Reader(_) => None,
        }
    }

    /// Records that `n` bytes were sent from outside (by sendfile), so the
    /// read fallback and [`remaining`](FileWrapper::remaining) continue after them.
    ///
    /// # Errors
    /// Seeking the file failed.
    pub fn advance(&mut self, n: u64) -> io::Result<()> {
        if let Source::File {
            file,
            offset,
            remaining,
        } = &mut self.source
        {
            let n = n.min(*remaining);
            *offset += n;
            *remaining -= n;
            file.seek(io::SeekFrom::Start(*offset))?;
        }
        Ok(())
    }

    /// Reads the next bytes into `buf` (at most one block); 0 means the end.
    ///
    /// # Errors
    /// The underlying read failed.
    pub fn read_block(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let limit = buf.len().min(self.block_size);
        match &mut self.source {
            Source::File {
                file,
                offset,
                remaining,
            } => {
                let limit = usize::try_from(*remaining).map_or(limit, |r| limit.min(r));
                let n = read_retrying(file, buf.get_mut(..limit).unwrap_or_default())?;
                *offset += n as u64;
                *remaining -= n as u64;
                Ok(n)
            }
            Source::Reader(r) => read_retrying(r, buf.get_mut(..limit).unwrap_or_default()),
        }
    }
}

fn read_retrying<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

impl Iterator for FileWrapper {
    type Item = io::Result<Vec<u8>>;

    /// The next block (`iter(filelike.read, b'')`).
    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = vec![0; self.block_size];
        match self.read_block(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(Ok(buf))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl fmt::Debug for FileWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileWrapper")
            .field("remaining", &self.remaining())
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    // test_wsgiref UtilityTests.testFileWrapper: blocks of the given size, last one short.
    #[test]
    fn file_wrapper_blocks() {
        let text = "xyz".repeat(50);
        let blocks: Vec<Vec<u8>> =
            FileWrapper::new(io::Cursor::new(text.clone().into_bytes()), 120)
                .map(Result::unwrap)
                .collect();
        assert_eq!(
            blocks,
            [
                text.as_bytes()[..120].to_vec(),
                "xyz".repeat(10).into_bytes()
            ]
        );
    }

    #[test]
    fn file_wrapper_starts_at_current_position() {
        let mut f = tempfile_with(b"0123456789");
        f.seek(io::SeekFrom::Start(4)).unwrap();
        let w = FileWrapper::new(f, 3);
        assert_eq!(w.remaining(), Some(6));
        let blocks: Vec<Vec<u8>> = w.map(Result::unwrap).collect();
        assert_eq!(blocks.concat(), b"456789");
    }

    #[test]
    fn file_wrapper_advance_after_sendfile() {
        let mut w = FileWrapper::from_file(tempfile_with(b"abcdefgh"));
        w.advance(5).unwrap();
        assert_eq!(w.as_file().map(|(_, o, r)| (o, r)), Some((5, 3)));
        assert_eq!(w.map(Result::unwrap).collect::<Vec<_>>().concat(), b"fgh");
    }

    #[test]
    fn file_wrapper_range() {
        let w = FileWrapper::from_file_range(tempfile_with(b"0123456789"), 2, 5).unwrap();
        assert_eq!(w.remaining(), Some(5));
        assert_eq!(w.as_file().map(|(_, o, r)| (o, r)), Some((2, 5)));
        assert_eq!(w.map(Result::unwrap).collect::<Vec<_>>().concat(), b"23456");

        // After sendfile sent part of it, the reads continue inside the range.
        let mut w = FileWrapper::from_file_range(tempfile_with(b"0123456789"), 1, 6).unwrap();
        w.advance(2).unwrap();
        assert_eq!(w.as_file().map(|(_, o, r)| (o, r)), Some((3, 4)));
        let mut buf = [0; 3];
        assert_eq!(w.read_block(&mut buf).unwrap(), 3);
        assert_eq!(&buf, b"345");
        assert_eq!(w.read_block(&mut buf).unwrap(), 1);
        assert_eq!(&buf[..1], b"6");
        assert_eq!(w.read_block(&mut buf).unwrap(), 0);
        assert_eq!(w.remaining(), Some(0));

        // The whole file, an empty range at the end, and ranges past the end.
        let w = FileWrapper::from_file_range(tempfile_with(b"abc"), 0, 3).unwrap();
        assert_eq!(w.remaining(), Some(3));
        let w = FileWrapper::from_file_range(tempfile_with(b"abc"), 3, 0).unwrap();
        assert_eq!(w.map(Result::unwrap).count(), 0);
        for (offset, len) in [(0, 4), (3, 1), (u64::MAX, 2)] {
            let err = FileWrapper::from_file_range(tempfile_with(b"abc"), offset, len).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{offset} {len}");
        }
    }

    fn tempfile_with(data: &[u8]) -> File {
        let path = std::env::temp_dir().join(format!(
            "gatekit-body-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(data).unwrap();
        f.seek(io::SeekFrom::Start(0)).unwrap();
        f
    }
}
