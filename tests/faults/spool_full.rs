//! The spool's disk full: request bodies over the memory threshold go to
//! an unlinked temp file in `TMPDIR`, here a 1 MiB tmpfs. A body that does
//! not fit is answered 503 (`SpoolError::status` for `ENOSPC`), the server
//! lives on, and nothing is left on the disk.
//!
//! Mounting needs root (CAP_SYS_ADMIN). Without it the test says so and
//! returns, or fails under `CI=true`. A second test needs no privilege: a
//! file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes the spool
//! file's writes fail with `EFBIG`, which is answered 503 the same way.

use std::path::Path;
use std::process::Command;

use crate::client::{Answer, once, post};
use crate::running::{Limit, Running};

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Tmpfs(dir));
        }
        assert!(
            !gatekit_testkit::in_ci(),
            "CI=true and a tmpfs cannot be mounted (needs root)"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
        None
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Bytes in use on the filesystem (`df`'s Used, in 1K blocks).
    fn used_kib(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=used", "-k"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status(); // best effort; the dir goes next
    }
}

#[test]
fn a_full_spool_disk_is_answered_503_and_cleaned_up() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let tmpdir = tmpfs.path().to_str().unwrap().to_owned();
    let server = Running::start_with(
        "http",
        &["--spool-threshold", "16384", "echo"],
        &[("TMPDIR", &tmpdir)],
        None,
    );
    spool_overflows(server, tmpfs.path());
    assert_eq!(tmpfs.used_kib(), 0, "space still in use on the spool disk");
}

#[test]
fn a_spool_file_over_the_file_size_limit_is_answered_503_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let tmpdir = dir.path().to_str().unwrap().to_owned();
    let server = Running::start_with(
        "http",
        &["--spool-threshold", "16384", "echo"],
        &[("TMPDIR", &tmpdir)],
        Some(Limit::Fsize(1024 * 1024)),
    );
    spool_overflows(server, dir.path());
}

/// Bodies that fit and bodies that do not (more than 1 MiB) against a
/// server whose spool directory `dir` holds at most 1 MiB.
fn spool_overflows(mut server: Running, dir: &Path) {
    let port = server.port;
    let fits = gatekit_testkit::pattern(600 * 1024);
    let too_big = gatekit_testkit::pattern(3 * 1024 * 1024);
    // A body that fits on the disk is spooled there and echoed.
    assert_eq!(once(port, &post(&fits)), Some(Answer::Complete(200)));
    // Bodies that do not fit: 503, several times and at once.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let request = post(&too_big);
            std::thread::spawn(move || once(port, &request))
        })
        .collect();
    for t in threads {
        let answer = t.join().unwrap();
        assert!(
            matches!(answer, Some(Answer::Complete(503) | Answer::NotStarted)),
            "a body larger than the disk: {answer:?}"
        );
    }
    assert_eq!(once(port, &post(&too_big)), Some(Answer::Complete(503)));
    // The space is given back: what fitted before fits again, and the disk
    // holds nothing once the requests are done.
    assert_eq!(once(port, &post(&fits)), Some(Answer::Complete(200)));
    assert_eq!(once(port, &post(b"small")), Some(Answer::Complete(200)));
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(left.is_empty(), "files left in the spool dir: {left:?}");
    server.assert_healthy("a full spool disk");
    drop(server);
}
