//! The standard streams as owned files, and `sendfile(2)`: the only
//! platform-specific code of the CGI front-end, kept in one place.
//! No `unsafe`: the file descriptors are duplicated through std's safe API
//! and `sendfile` is rustix's safe wrapper.

use std::fs::File;
use std::io::{self, Read, Write};

/// stdout as a file of our own (a duplicate of fd 1), so writes skip std's
/// line buffering and `sendfile` can target it.
#[derive(Debug)]
pub(crate) struct Stdout(Option<File>);

#[cfg(unix)]
fn dup_std(fd: std::os::fd::BorrowedFd<'_>) -> Option<File> {
    fd.try_clone_to_owned().ok().map(File::from)
}

#[cfg(unix)]
pub(crate) fn stdout() -> Stdout {
    use std::os::fd::AsFd;
    Stdout(dup_std(io::stdout().as_fd()))
}

#[cfg(not(unix))]
pub(crate) fn stdout() -> Stdout {
    Stdout(None)
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(f) => f.write(buf),
            None => io::stdout().write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(f) => f.flush(),
            None => io::stdout().flush(),
        }
    }
}

/// stdin as a reader (a duplicate of fd 0 where there is one). A closed fd 0
/// reads as empty.
pub(crate) fn stdin() -> Box<dyn Read + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        match dup_std(io::stdin().as_fd()) {
            Some(f) => Box::new(f),
            None => Box::new(io::empty()),
        }
    }
    #[cfg(not(unix))]
    {
        Box::new(io::stdin())
    }
}

/// stderr, unbuffered: every log line is one write.
pub(crate) fn stderr() -> io::Stderr {
    io::stderr()
}

/// Sends `count` bytes of `file` from `offset` to stdout with sendfile(2).
/// Returns the bytes sent; fewer than `count` (even 0) when the kernel
/// refuses (`EINVAL`, `ENOSYS`, ...), so the caller copies the rest.
#[cfg(target_os = "linux")]
pub(crate) fn sendfile(out: &Stdout, file: &File, offset: u64, count: u64) -> io::Result<u64> {
    use rustix::io::Errno;
    let Some(out) = &out.0 else { return Ok(0) };
    let mut off = offset;
    let mut sent = 0u64;
    while sent < count {
        // Linux moves at most 0x7ffff000 bytes per call.
        let chunk = usize::try_from((count - sent).min(0x7fff_f000)).unwrap_or(0x7fff_f000);
        match rustix::fs::sendfile(out, file, Some(&mut off), chunk) {
            Ok(0) => break,
            Ok(n) => sent += n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::AGAIN) if sent == 0 => {
                return Ok(0);
            }
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::AGAIN) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(sent)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn sendfile(_out: &Stdout, _file: &File, _offset: u64, _count: u64) -> io::Result<u64> {
    Ok(0)
}
