//! Letting the web server send a file itself: `X-Sendfile` and
//! `X-Accel-Redirect`, for front-ends behind one (FastCGI, SCGI).
//!
//! The app returns a `FileWrapper` as usual; with an [`Offload`]
//! configured, the front-end's `Transport::offload` finds the file's path
//! (Linux: `/proc/self/fd/N`, checked to still name the same file) and the
//! response carries the header instead of the bytes. Whatever cannot be
//! offloaded (a file with no path, outside `root`, a name that would need
//! escaping) is sent by gatekit as usual.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How the web server is told which file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Offload {
    /// `X-Sendfile: /absolute/path` (Apache mod_xsendfile, lighttpd
    /// `x-sendfile`): any file the web server may read.
    XSendfile,
    /// `X-Accel-Redirect: PREFIX + path below ROOT` (nginx): only files
    /// under `root`, served by an `internal` location at `prefix` with
    /// `alias ROOT/`.
    XAccelRedirect {
        /// The directory the nginx location serves.
        root: PathBuf,
        /// The URI prefix of that location, e.g. `/.gatekit-files/`.
        prefix: String,
    },
}

impl Offload {
    /// The header that hands `file` to the web server, or `None` when it
    /// cannot be offloaded.
    #[must_use]
    pub fn header(&self, file: &File) -> Option<(String, String)> {
        let path = path_of(file)?;
        match self {
            Offload::XSendfile => {
                let value = plain(&path)?;
                Some(("X-Sendfile".to_owned(), value.to_owned()))
            }
            Offload::XAccelRedirect { root, prefix } => {
                let relative = path.strip_prefix(root).ok()?;
                let relative = plain(relative)?;
                let mut value = prefix.trim_end_matches('/').to_owned();
                value.push('/');
                value.push_str(relative);
                Some(("X-Accel-Redirect".to_owned(), value))
            }
        }
    }
}

/// The path an open file was opened by, if it still names that file.
fn path_of(file: &File) -> Option<PathBuf> {
    let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let open = file.metadata().ok()?;
    let named = std::fs::metadata(&path).ok()?;
    (open.is_file() && open.dev() == named.dev() && open.ino() == named.ino()).then_some(path)
}

/// The path as text, if it needs no escaping in a header or a URI.
fn plain(path: &Path) -> Option<&str> {
    let s = path.to_str()?;
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-~+".contains(&b))
        .then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_for_a_file_under_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let path = root.join("sub/a-file.bin");
        std::fs::write(&path, b"x").unwrap();
        let file = File::open(&path).unwrap();
        let (name, value) = Offload::XSendfile.header(&file).unwrap();
        assert_eq!(name, "X-Sendfile");
        assert_eq!(value, path.to_str().unwrap());
        let accel = Offload::XAccelRedirect {
            root: root.clone(),
            prefix: "/files/".into(),
        };
        assert_eq!(
            accel.header(&file),
            Some(("X-Accel-Redirect".into(), "/files/sub/a-file.bin".into()))
        );
        // Outside the root: not offloaded.
        let other = Offload::XAccelRedirect {
            root: root.join("elsewhere"),
            prefix: "/files".into(),
        };
        assert_eq!(other.header(&file), None);
        // A name that would need escaping: not offloaded.
        let odd = root.join("sp ace");
        std::fs::write(&odd, b"x").unwrap();
        assert_eq!(Offload::XSendfile.header(&File::open(&odd).unwrap()), None);
        // A deleted file has no name.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(Offload::XSendfile.header(&file), None);
    }
}
