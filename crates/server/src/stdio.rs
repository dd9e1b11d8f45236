//! This process's own stderr: where gatekit's messages (and an app's
//! `wsgi.errors`, when it goes to the process) are written.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// `wsgi.errors` when it goes to the process's stderr: [`io::stderr`],
/// looked up at each write, so the stream is zero-sized and boxing it for
/// a request allocates nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStderr;

impl Write for ProcessStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::stderr().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Sends everything written to this process's stderr (fd 2) from now on to
/// the file at `path`, opened for appending (created with mode 0644 when
/// missing), as `--error-log` does. Lines from concurrent writers are not
/// interleaved within one `write(2)` of up to `PIPE_BUF` bytes on a local
/// file opened with `O_APPEND`.
///
/// # Errors
/// The file cannot be opened, or `dup2(2)` failed.
pub fn redirect_stderr(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    rustix::stdio::dup2_stderr(&file)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn process_stderr_is_zero_sized() {
        assert_eq!(std::mem::size_of::<ProcessStderr>(), 0);
        let mut errors: Box<dyn Write + Send> = Box::new(ProcessStderr);
        errors.flush().unwrap();
    }

    #[test]
    fn missing_directory_is_an_error() {
        assert!(redirect_stderr(Path::new("/nonexistent-dir/x/error.log")).is_err());
    }
}
