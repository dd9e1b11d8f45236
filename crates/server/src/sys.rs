//! Claiming an inherited file descriptor number as an [`OwnedFd`], and the
//! one socket option rustix has no call for: the one place in
//! gatekit-server that needs `unsafe`.
//!
//! A listening socket handed down by systemd (`LISTEN_FDS`) or named on the
//! command line (`fd:N`) arrives as a bare number. Nothing in the process
//! owns it yet, and std offers no safe way to turn a number into an owned
//! descriptor, because only the program knows what the number means.
//! Everything else in this crate goes through std's and rustix's safe APIs.

// Reason: `OwnedFd::from_raw_fd` and `BorrowedFd::borrow_raw` are the only
// ways to adopt a descriptor inherited across exec, and `TCP_DEFER_ACCEPT`
// has no safe wrapper. Each block below states why it holds.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use rustix::io::FdFlags;

/// Why [`claim_inherited`] refused a descriptor.
#[derive(Debug)]
pub(crate) enum ClaimError<E> {
    /// fd 0, 1 and 2 belong to std's stdio handles; duplicate them instead.
    Stdio,
    /// A number this module has handed out before. It is owned (or was, and
    /// has been closed and maybe reused), so it is not ours to take again.
    AlreadyTaken,
    /// The number is not an open descriptor (`EBADF`), or `fcntl` failed.
    NotOpen(io::Error),
    /// The caller's check rejected the descriptor; it was left untouched.
    Rejected(E),
}

/// Every number [`claim_inherited`] has turned into an `OwnedFd`. Never
/// shrinks: once claimed, a number may be closed and reused for something
/// that is not inherited, so claiming it again would be wrong.
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of the inherited descriptor `fd`, after `inspect` has
/// approved it through a borrow. The descriptor is marked close-on-exec, so
/// programs we spawn (CGI scripts) do not inherit the listener.
///
/// On any error the descriptor is left open and untouched: a number that
/// turns out to be, say, a log file some other code uses is never closed.
///
/// The caller asserts what `fd:N` and `LISTEN_FDS` assert: `fd` was inherited
/// across exec for this program to use, and no other code in the process
/// owns it. What can be checked is checked here: the number is open, it is
/// not stdio, it was not claimed before, and `inspect` (a listening-socket
/// test) accepts it.
pub(crate) fn claim_inherited<T, E>(
    fd: RawFd,
    inspect: impl FnOnce(BorrowedFd<'_>) -> Result<T, E>,
) -> Result<(OwnedFd, T), ClaimError<E>> {
    if fd <= 2 {
        return Err(ClaimError::Stdio);
    }
    // A poisoned lock only means another thread panicked while holding it;
    // the list itself is always consistent (one push per claim).
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if taken.contains(&fd) {
        return Err(ClaimError::AlreadyTaken);
    }
    let (flags, checked) = {
        // SAFETY: `fd` is not -1 (it is > 2). The borrow lives only inside
        // this block, for the `fcntl(F_GETFD)` probe and `inspect`, while we
        // hold the `TAKEN` lock; nothing here closes it. If the number is not
        // open, `fcntl` fails with EBADF before `inspect` runs, and the
        // descriptor is never used further.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = rustix::io::fcntl_getfd(borrowed).map_err(|e| ClaimError::NotOpen(e.into()))?;
        let checked = inspect(borrowed).map_err(ClaimError::Rejected)?;
        (flags, checked)
    };
    // SAFETY: `fd` is open (F_GETFD succeeded just above) and is not stdio.
    // This module has never handed it out before (checked under the lock,
    // and recorded below before the lock is released), so the `OwnedFd` is
    // its only owner within this module. The caller's contract (see the doc
    // comment) covers the rest of the process: the number was inherited for
    // us to take, as `fd:N` and `LISTEN_FDS` state.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    taken.push(fd);
    drop(taken);
    if !flags.contains(FdFlags::CLOEXEC) {
        // Ignored on failure (F_SETFD on an open descriptor does not fail in
        // practice): the listener still works, it only stays inheritable by
        // children, which is how it arrived.
        let _ = rustix::io::fcntl_setfd(&owned, flags | FdFlags::CLOEXEC);
    }
    Ok((owned, checked))
}

/// Sets `TCP_DEFER_ACCEPT` on a TCP socket: once it listens, the kernel
/// hands over a new connection only when its first bytes have arrived (or
/// after about `seconds`, when it hands it over anyway).
pub(crate) fn set_tcp_defer_accept(fd: BorrowedFd<'_>, seconds: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: `fd` is an open descriptor for the whole call (it is
    // borrowed), and the option value points to a live `c_int` whose size
    // is the length passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const value).cast(),
            len,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
