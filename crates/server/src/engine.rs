//! The I/O engine every socket front-end runs on.
//!
//! # Design
//!
//! One epoll instance is shared by a pool of worker threads, of which one
//! at a time waits in `epoll_wait` (the turn, see `turn.rs`: it saves a
//! context switch per event; the sweeper wakes a parked worker when events
//! wait and the awake ones are busy). The listeners are level-triggered
//! and stay armed (only the turn's holder waits, so a connection wakes one
//! worker): a worker woken by one accepts a single connection (the next
//! worker to take the turn finds any other connection waiting) and serves
//! it at once, on its own thread, without registering it (a web server
//! writes its request right after connecting, so it is usually there to
//! read). A connection is registered,
//! edge-triggered, the first time it has to wait for input or for the socket
//! to take output, and stays registered for the rest of its life (no
//! `epoll_ctl` per request). So a connection that carries one request costs
//! accept, read, write and close, and nothing else. Which thread owns a
//! connection is an atomic state in its slot: nobody, a thread, or a thread with an event to look at. A worker
//! that gets an event claims the connection; an event that comes while
//! another thread owns it only leaves that note, and the owner looks again
//! (reading until the socket is empty) before it lets go, so an edge is
//! never lost and a connection is never served by two threads at once. The
//! worker that reads a complete request runs the (blocking) application
//! itself, on the same thread, and writes the response: no request ever
//! hops between threads. A connection that is idle, or whose client is slow
//! to send or to read, is only a registered descriptor and a buffer; it
//! holds no worker. A slow application holds the one worker running it,
//! while the others keep serving every other connection (unlike a loop per
//! thread, where the connections of a busy loop would wait). Linux only.
//!
//! A [`Protocol`] (HTTP, FastCGI, SCGI) sees a [`Conn`]: the bytes read so
//! far, and a `write`/`flush`/`sendfile` side that sends straight to the
//! socket and keeps what the socket would not take, to be sent when it
//! becomes writable again, so the worker can return. Output a slow reader
//! has not taken is bounded (`max_pending_output`): past it, the writer
//! waits (up to `write_timeout`), which is the backpressure on an app that
//! produces faster than its client reads. A file is never copied into that
//! buffer: what `sendfile(2)` could not send yet stays queued as a file range.
//!
//! Timeouts are checked by a sweeper thread that visits idle connections
//! (it claims those nobody owns, and hands an event that came during its
//! visit back to the workers): between requests `idle_timeout`, and from the
//! first byte of a request to its end `request_timeout`, so a client that
//! trickles a request byte by byte (slowloris) is cut off at a fixed time.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rustix::event::{Timespec, epoll};
use rustix::io::Errno;

use crate::allow::{IpNet, is_allowed};
use crate::listen::{Listener, Peer, Stream, is_transient_accept_error};
use crate::turn::{Turn, WatchState};

/// Tuning and limits of the engine, with safe defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Worker threads: how many requests run at once (default: twice the
    /// CPUs, at least 4).
    pub workers: usize,
    /// Connections open at once; past it, new ones wait in the listen
    /// backlog (default 10,000).
    pub max_connections: usize,
    /// How long a connection may sit between requests (default 60 s).
    pub idle_timeout: Duration,
    /// How long a request may take to arrive, from its first byte (default 30 s).
    pub request_timeout: Duration,
    /// How long a client may take to accept more of a response (default 60 s).
    pub write_timeout: Duration,
    /// Response bytes kept for a slow reader before the writer waits (default 1 MiB).
    pub max_pending_output: usize,
    /// On shutdown, how long in-flight requests may take to finish (default 30 s).
    pub shutdown_grace: Duration,
    /// The TCP peers allowed to connect; others are closed at once, before
    /// a byte is read. `None` (default) allows any; Unix-socket peers are
    /// always allowed (the socket file's permissions decide). See [`crate::allow`].
    pub allow: Option<Vec<IpNet>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        EngineConfig {
            workers: (cpus * 2).max(4),
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            max_pending_output: 1 << 20,
            shutdown_grace: Duration::from_secs(30),
            allow: None,
        }
    }
}

/// What a connection waits for after [`Protocol::on_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Between requests: wait for the next one (`idle_timeout` applies).
    Idle,
    /// In the middle of a request: wait for the rest (`request_timeout`
    /// applies, counted from the request's first byte).
    Continue,
    /// Close once the pending output is written, lingering: our side is
    /// shut down and input drained for a while first, so that a peer still
    /// sending (a refused request's body) gets the response, not a reset.
    Close,
    /// The exchange is over and the peer has sent everything it meant to
    /// (a FastCGI request without keep-conn, an SCGI request): close as soon
    /// as the pending output is written, without lingering.
    Done,
}

/// A wire protocol served by the engine.
pub trait Protocol: Send + Sync + 'static {
    /// Per-connection protocol state.
    type Session: Send + 'static;

    /// A new connection from `peer`.
    fn session(&self, peer: &Peer, conn: &Conn) -> Self::Session;

    /// Bytes arrived (or the peer closed: [`Conn::is_eof`]). Called on a
    /// worker thread that owns the connection: parse from [`Conn::input`],
    /// [`consume`](Conn::consume) what was used, run complete requests
    /// (blocking is fine here), write their responses, and say what next.
    fn on_input(&self, session: &mut Self::Session, conn: &mut Conn) -> Next;

    /// A timeout struck (`in_request`: in the middle of a request, else
    /// between requests). The protocol may write a last word (HTTP's 408);
    /// the connection is closed after.
    fn on_timeout(&self, session: &mut Self::Session, conn: &mut Conn, in_request: bool) {
        let _ = (session, conn, in_request);
    }

    /// A closed connection's session, offered to serve the next connection
    /// its slot gets (from any peer) instead of a new one from
    /// [`session`](Protocol::session): reset it and return true, keeping
    /// what is worth keeping (small buffers), or return false to drop it.
    /// By default sessions are dropped.
    fn recycle(&self, session: &mut Self::Session) -> bool {
        let _ = session;
        false
    }
}

/// Files from this size on are sent with `TCP_CORK` ([`Conn::sendfile`]).
pub const CORK_MIN: u64 = 256 * 1024;

/// Bytes of input read per readable event at most, and held at most.
const INPUT_CHUNK: usize = 16 * 1024;
const INPUT_CAP: usize = 256 * 1024;
/// Buffer capacity an idle connection keeps; larger buffers are freed.
const IDLE_KEEP: usize = 4 * 1024;
/// How long a closed connection's leftovers ([`Spare`]) wait for a new
/// connection in its slot before the sweeper frees them.
const SPARE_KEEP: Duration = Duration::from_secs(10);
/// What the output buffer takes at its first write: a small response with
/// its framing fits, so a new connection's buffer is allocated once instead
/// of growing write by write.
const OUT_FIRST: usize = 512;

/// A file range `sendfile(2)` has not finished sending.
#[derive(Debug)]
struct PendingFile {
    file: File,
    offset: u64,
    remaining: u64,
}

/// Decides, from bytes that arrived while a request runs (looked at, not
/// consumed), whether the peer cancelled that request. `tag` is what the
/// protocol passed to [`Conn::watch_cancel`] (e.g. a FastCGI request id).
/// The peer closing its side, or a reset, always cancels.
pub type CancelProbe = fn(peeked: &[u8], tag: u64) -> bool;

/// A request whose connection the sweeper watches for a cancellation.
struct Watch {
    key: u64,
    stream: Arc<Stream>,
    flag: Arc<AtomicBool>,
    probe: CancelProbe,
    tag: u64,
}

/// The requests being watched, shared by the connections and the sweeper.
#[derive(Default)]
struct Watches {
    next: AtomicU64,
    list: Mutex<Vec<Watch>>,
}

impl Watches {
    /// Looks at each watched connection without taking its bytes: the peer
    /// gone, or bytes the probe reads as a cancellation, raise the flag.
    fn check(&self) {
        let list = lock(&self.list);
        let mut buf = [0u8; 512];
        for w in list.iter() {
            if w.flag.load(Ordering::Relaxed) {
                continue;
            }
            let peeked = rustix::net::recv(
                &*w.stream,
                &mut buf,
                rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT,
            );
            let cancelled = match peeked {
                Ok((0, _)) => true,
                Ok((n, _)) => (w.probe)(buf.get(..n).unwrap_or_default(), w.tag),
                Err(Errno::AGAIN | Errno::INTR) => false,
                Err(_) => true,
            };
            if cancelled {
                w.flag.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// Ends a [`Conn::watch_cancel`] when dropped.
#[must_use = "the watch ends when this is dropped"]
pub struct CancelWatch {
    watches: Arc<Watches>,
    key: u64,
}

impl std::fmt::Debug for CancelWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelWatch")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        let mut list = lock(&self.watches.list);
        if let Some(i) = list.iter().position(|w| w.key == self.key) {
            list.swap_remove(i);
        }
    }
}

/// One connection as a protocol sees it.
#[derive(Debug)]
pub struct Conn {
    stream: Arc<Stream>,
    peer: Peer,
    input: Vec<u8>,
    start: usize,
    out: Vec<u8>,
    out_pos: usize,
    file: Option<PendingFile>,
    /// `TCP_CORK` is set while a big file (and the head before it) is sent.
    corked: bool,
    eof: bool,
    write_timeout: Duration,
    max_pending: usize,
    watches: Arc<Watches>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").finish_non_exhaustive()
    }
}

impl Conn {
    #[cfg(test)]
    fn new(stream: Stream, peer: Peer, config: &EngineConfig, watches: Arc<Watches>) -> Conn {
        Conn::with_buffers(stream, peer, config, watches, (Vec::new(), Vec::new()))
    }

    /// A connection whose input and output start in `buffers` (empty ones
    /// a closed connection left, see [`Spare`]).
    fn with_buffers(
        stream: Stream,
        peer: Peer,
        config: &EngineConfig,
        watches: Arc<Watches>,
        (input, out): (Vec<u8>, Vec<u8>),
    ) -> Conn {
        debug_assert!(input.is_empty() && out.is_empty());
        Conn {
            stream: Arc::new(stream),
            watches,
            peer,
            input,
            start: 0,
            out,
            out_pos: 0,
            file: None,
            corked: false,
            eof: false,
            write_timeout: config.write_timeout,
            max_pending: config.max_pending_output,
        }
    }

    /// The bytes read and not consumed yet.
    #[must_use]
    pub fn input(&self) -> &[u8] {
        self.input.get(self.start..).unwrap_or_default()
    }

    /// Marks `n` bytes of [`input`](Conn::input) as used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.input.len());
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        }
    }

    /// True once the peer has closed its sending side.
    #[must_use]
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Who is connected.
    #[must_use]
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The socket.
    #[must_use]
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Raises `flag` if the peer cancels the request that is about to run:
    /// it closes the connection, or sends bytes that `probe` reads as a
    /// cancellation (FastCGI's `ABORT_REQUEST`). Input already read is
    /// probed at once; what arrives later is looked at (never consumed) by
    /// the engine's sweeper, about every 100 ms, until the returned guard is
    /// dropped. For long requests whose app checks
    /// `Environ::is_cancelled` to stop early.
    pub fn watch_cancel(
        &mut self,
        flag: Arc<AtomicBool>,
        probe: CancelProbe,
        tag: u64,
    ) -> CancelWatch {
        if self.eof || probe(self.input(), tag) {
            flag.store(true, Ordering::SeqCst);
        }
        let key = self.watches.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.watches.list).push(Watch {
            key,
            stream: Arc::clone(&self.stream),
            flag,
            probe,
            tag,
        });
        CancelWatch {
            watches: Arc::clone(&self.watches),
            key,
        }
    }

    /// Queues bytes to send; they go out at the next [`flush`](Conn::flush)
    /// (or sooner, when a lot has gathered).
    ///
    /// # Errors
    /// The socket failed, or a slow reader let `write_timeout` pass.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.file.is_some() {
            // Bytes must follow the queued file: wait for it to go.
            self.drain_blocking(true)?;
        }
        if self.out.capacity() == 0 {
            self.out.reserve(data.len().max(OUT_FIRST));
        }
        self.out.extend_from_slice(data);
        if self.out.len() - self.out_pos >= 64 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends what the socket takes now; if more than `max_pending_output`
    /// is left, waits for the reader (backpressure).
    ///
    /// # Errors
    /// The socket failed, or `write_timeout` passed.
    pub fn flush(&mut self) -> io::Result<()> {
        self.try_send()?;
        if self.out.len() - self.out_pos > self.max_pending {
            self.drain_blocking(false)?;
        }
        Ok(())
    }

    /// Sends `count` bytes of `file` from `offset` with `sendfile(2)`,
    /// after the bytes written before it. What the socket does not take at
    /// once is queued (as a file range, not copied) and sent as the reader
    /// takes it. Returns how many bytes are sent or queued: all of them, or
    /// fewer (even 0) when the kernel refuses sendfile for this file, and
    /// the caller sends the rest by reading.
    ///
    /// Over TCP, a file of [`CORK_MIN`] bytes or more is sent with
    /// `TCP_CORK` set from before the bytes written ahead of it (a head) to
    /// the file's last byte, so that everything leaves in full-sized
    /// segments, the head in the first (nginx's `tcp_nopush`): measured on
    /// loopback in three runs, a 100 MB download went from 0.85-0.94x to
    /// 1.00-1.02x nginx's speed with `tcp_nopush on`.
    ///
    /// # Errors
    /// The socket failed.
    pub fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        if count >= CORK_MIN && !self.corked && matches!(self.peer, Peer::Tcp(_)) {
            // Only a saving: without it the bytes go out all the same.
            self.corked = rustix::net::sockopt::set_tcp_cork(&*self.stream, true).is_ok();
        }
        let sent = self.sendfile_now(file, offset, count);
        if self.file.is_none() {
            // All handed to the kernel (or refused): let the last partial
            // segment go, and what the caller writes next.
            self.uncork();
        }
        sent
    }

    fn sendfile_now(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.try_send()?;
        if self.out_pos < self.out.len() || self.file.is_some() {
            // Earlier bytes are still waiting; queue the file behind them.
            self.drain_blocking(true)?;
        }
        let mut off = offset;
        let mut sent = 0;
        while sent < count {
            let chunk = usize::try_from((count - sent).min(0x7fff_f000)).unwrap_or(0x7fff_f000);
            match rustix::fs::sendfile(&*self.stream, file, Some(&mut off), chunk) {
                // The file ended early, or the kernel refuses sendfile here:
                // the caller reads and sends what is left.
                Ok(0) | Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => return Ok(sent),
                Ok(n) => sent += n as u64,
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    self.file = Some(PendingFile {
                        file: file.try_clone()?,
                        offset: off,
                        remaining: count - sent,
                    });
                    return Ok(count);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(sent)
    }

    /// Clears `TCP_CORK` if [`Conn::sendfile`] set it.
    fn uncork(&mut self) {
        if self.corked {
            self.corked = false;
            let _ = rustix::net::sockopt::set_tcp_cork(&*self.stream, false);
        }
    }

    fn has_pending(&self) -> bool {
        self.out_pos < self.out.len() || self.file.is_some()
    }

    /// Writes without blocking until the socket is full or all is sent.
    fn try_send(&mut self) -> io::Result<()> {
        while self.out_pos < self.out.len() {
            match (&*self.stream).write(self.out.get(self.out_pos..).unwrap_or_default()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > 256 * 1024 {
            self.out.shrink_to(64 * 1024);
        }
        while let Some(pending) = &mut self.file {
            let chunk = usize::try_from(pending.remaining.min(0x7fff_f000)).unwrap_or(0x7fff_f000);
            match rustix::fs::sendfile(
                &*self.stream,
                &pending.file,
                Some(&mut pending.offset),
                chunk,
            ) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended early",
                    ));
                }
                Ok(n) => {
                    pending.remaining -= n as u64;
                    if pending.remaining == 0 {
                        self.file = None;
                        self.uncork();
                    }
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Waits for the socket until the output is down to the limit (or, with
    /// `all`, empty), up to `write_timeout`.
    fn drain_blocking(&mut self, all: bool) -> io::Result<()> {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            self.try_send()?;
            let left = self.out.len() - self.out_pos;
            if (!all && left <= self.max_pending) || !self.has_pending() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading the response",
                ));
            }
            let wait = (deadline - now).min(Duration::from_secs(1));
            let mut fds = [rustix::event::PollFd::new(
                &*self.stream,
                rustix::event::PollFlags::OUT,
            )];
            let ts = Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(wait.subsec_nanos()).max(1_000_000),
            };
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Its input and output buffers, emptied (what was not sent is
    /// dropped), as an idle connection keeps them: for the next connection
    /// in its slot ([`Spare`]).
    fn take_buffers(&mut self) -> (Vec<u8>, Vec<u8>) {
        self.input.clear();
        self.start = 0;
        self.out.clear();
        self.out_pos = 0;
        self.file = None;
        self.release_idle_buffers();
        (
            std::mem::take(&mut self.input),
            std::mem::take(&mut self.out),
        )
    }

    /// Between requests: gives back buffers a request grew, so an idle
    /// keep-alive connection costs a few hundred bytes, not a read buffer.
    /// Small ones are kept (no allocation per request on the fast path).
    fn release_idle_buffers(&mut self) {
        if self.input().is_empty() && self.input.capacity() > IDLE_KEEP {
            self.input = Vec::new();
            self.start = 0;
        }
        if !self.has_pending() && self.out.capacity() > IDLE_KEEP {
            self.out = Vec::new();
            self.out_pos = 0;
        }
    }

    /// Reads what is there, up to about [`INPUT_CAP`] of input. Each read
    /// goes into the worker thread's own buffer and only the bytes that came
    /// are appended, so a connection's input holds what arrived, not a
    /// read-sized buffer, and nothing is allocated or zeroed per read.
    ///
    /// Returns true if the socket is known empty (or at its end): a read
    /// came back short, would block, or saw the end. A short read is
    /// trusted unless `to_end` (then the next read must say so), because
    /// the socket is edge-triggered: bytes left in it give no new event.
    fn fill(&mut self, to_end: bool) -> io::Result<bool> {
        if self.start > 0 && self.start * 2 >= self.input.len() {
            self.input.drain(..self.start);
            self.start = 0;
        }
        READ_BUF.with_borrow_mut(|buf| {
            let mut reads = 0;
            while self.input.len() < INPUT_CAP && reads < 4 {
                match (&*self.stream).read(&mut buf[..]) {
                    Ok(0) => {
                        self.eof = true;
                        return Ok(true);
                    }
                    Ok(n) => {
                        self.input
                            .extend_from_slice(buf.get(..n).unwrap_or_default());
                        reads += 1;
                        if n < INPUT_CHUNK && !to_end {
                            return Ok(true);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) => return Err(e),
                }
            }
            Ok(false)
        })
    }
}

thread_local! {
    /// Each worker's read buffer (see [`Conn::fill`]).
    static READ_BUF: std::cell::RefCell<Box<[u8; INPUT_CHUNK]>> =
        std::cell::RefCell::new(Box::new([0; INPUT_CHUNK]));
}

/// Asks a running engine to stop: stop accepting, let in-flight requests
/// finish within `shutdown_grace`, close idle connections, return.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// A new, untriggered handle.
    #[must_use]
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the graceful shutdown.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once triggered.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Triggers on SIGTERM and SIGINT; a second such signal ends the
    /// process at once (exit status 1), for when a drain takes too long.
    ///
    /// # Errors
    /// Installing a signal handler failed.
    pub fn on_signals(&self) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for signal in [SIGTERM, SIGINT] {
            // Registered first, so it sees the flag as it was before this signal.
            signal_hook::flag::register_conditional_shutdown(signal, 1, self.flag())?;
            signal_hook::flag::register(signal, self.flag())?;
        }
        Ok(())
    }

    /// The flag itself.
    #[must_use]
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

struct Live<S> {
    conn: Conn,
    session: S,
    deadline: Instant,
    in_request: bool,
    closing: bool,
    /// Close without lingering ([`Next::Done`]).
    done: bool,
    /// Our side is shut down; input is read and dropped until the peer closes.
    lingering: bool,
    /// The socket is registered for output too (while it is full).
    out_armed: bool,
    /// The socket is registered with epoll (a connection served at once by
    /// the thread that accepted it is not, until it has to wait).
    watched: bool,
}

/// How long a closing connection's input is drained after our last byte.
/// Closing a socket that still has unread input makes the kernel send a
/// reset, which can destroy the response (an error page) before the client
/// reads it; draining first lets it arrive (nginx's "lingering close").
const LINGER: Duration = Duration::from_secs(2);

/// How long a new connection waits for the sweeper to let go of its free
/// slot before it is dropped (the sweeper holds a slot for microseconds,
/// unless it is preempted meanwhile).
const FRESH_SLOT_WAIT: Duration = Duration::from_secs(5);

/// Who holds a slot's connection (the low bits of [`Slot::state`]).
const IDLE: u64 = 0;
/// A worker (or the sweeper) holds it.
const OWNED: u64 = 1;
/// It is held, and an event came meanwhile: the holder looks again before
/// letting go.
const PENDING: u64 = 2;
const OWNER_BITS: u64 = 3;

/// One connection's place. `state` holds the generation of the slot's
/// connection in its high 32 bits (as its epoll token does, so an event
/// meant for a closed connection is told from one for the slot's next)
/// and who holds it in its low bits: nobody ([`IDLE`]), a thread
/// ([`OWNED`]), or a thread that has an event to look at ([`PENDING`]).
/// Only the thread holding a connection locks `live`, so that lock is
/// waited for only in the instant after a holder that still has it locked
/// hands the connection back ([`hand_back`]).
struct Slot<S> {
    state: AtomicU64,
    live: Mutex<Option<Box<Live<S>>>>,
    /// What the last connection here left for the next one. Only the
    /// slot's holder touches it.
    spare: Mutex<Option<Spare<S>>>,
}

/// A closed connection's buffers, emptied, and its session, reset by
/// [`Protocol::recycle`]: the next connection in the same slot starts with
/// them and allocates none of its own. Slots are handed out last-closed
/// first, so under a steady churn of connections (a web server opening
/// and closing its upstream connections) the same few stay warm. Only
/// buffers an idle connection may keep ([`IDLE_KEEP`]) are kept, and the
/// sweeper frees leftovers no connection took within [`SPARE_KEEP`].
struct Spare<S> {
    input: Vec<u8>,
    out: Vec<u8>,
    session: Option<S>,
    expires: Instant,
}

impl<S> Spare<S> {
    /// Closes `live` and returns what it leaves, if anything.
    fn from_closed<P: Protocol<Session = S>>(protocol: &P, live: Live<S>) -> Option<Spare<S>> {
        let Live {
            mut conn,
            mut session,
            ..
        } = live;
        let (input, out) = conn.take_buffers();
        // Closes the socket.
        drop(conn);
        let session = protocol.recycle(&mut session).then_some(session);
        if session.is_none() && input.capacity() == 0 && out.capacity() == 0 {
            return None;
        }
        Some(Spare {
            input,
            out,
            session,
            expires: Instant::now() + SPARE_KEEP,
        })
    }
}

impl<S> Slot<S> {
    fn new() -> Slot<S> {
        Slot {
            state: AtomicU64::new(IDLE),
            live: Mutex::new(None),
            spare: Mutex::new(None),
        }
    }

    /// Frees what a closed connection left here if it has waited too long
    /// (or `all`); the caller holds the slot.
    fn drop_stale_spare(&self, now: Instant, all: bool) {
        let mut spare = lock(&self.spare);
        if all || spare.as_ref().is_some_and(|s| s.expires <= now) {
            *spare = None;
        }
    }

    fn generation(&self) -> u32 {
        (self.state.load(Ordering::SeqCst) >> 32) as u32
    }

    /// On an event for `generation`: takes the connection if nobody holds
    /// it (true); if a thread does, leaves it a note to look again (false).
    fn claim(&self, generation: u32) -> bool {
        let g = u64::from(generation) << 32;
        let mut s = self.state.load(Ordering::SeqCst);
        // Each failed exchange means the state moved; it settles at once.
        for _ in 0..1024 {
            if s & !OWNER_BITS != g {
                return false;
            }
            let next = match s & OWNER_BITS {
                IDLE => g | OWNED,
                OWNED => g | PENDING,
                _ => return false,
            };
            match self
                .state
                .compare_exchange(s, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next & OWNER_BITS == OWNED,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Takes the connection only if nobody holds it (the sweeper's visit,
    /// and a new connection taking a free slot).
    fn claim_idle(&self, generation: u32) -> bool {
        let g = u64::from(generation) << 32;
        self.state
            .compare_exchange(g | IDLE, g | OWNED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Takes a free slot for a new connection. No event can name it, but
    /// the sweeper's round holds every slot for an instant, free ones too:
    /// wait for it to let go. The wait is bounded by time, not by a count
    /// of tries, since on a loaded machine the sweeper can be preempted
    /// while it holds the slot. False only if it stays held for seconds.
    fn take_fresh(&self, generation: u32) -> bool {
        for _ in 0..1000 {
            if self.claim_idle(generation) {
                return true;
            }
            std::thread::yield_now();
        }
        let deadline = Instant::now() + FRESH_SLOT_WAIT;
        while Instant::now() < deadline {
            if self.claim_idle(generation) {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        self.claim_idle(generation)
    }

    /// Lets the connection go (true), unless an event came while it was
    /// held: then it stays held and the holder must look again (false).
    fn release(&self, generation: u32) -> bool {
        let g = u64::from(generation) << 32;
        if self
            .state
            .compare_exchange(g | OWNED, g | IDLE, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return true;
        }
        self.state.store(g | OWNED, Ordering::SeqCst);
        false
    }

    /// Lets the connection go whatever came meanwhile.
    fn let_go(&self, generation: u32) {
        self.state
            .store((u64::from(generation) << 32) | IDLE, Ordering::SeqCst);
    }

    /// The connection is gone: events still carrying its token are stale.
    fn retire(&self) {
        // 31 bits, so a token never has the listener bit.
        let next = u64::from(self.generation().wrapping_add(1) & 0x7fff_ffff) << 32;
        self.state.store(next | IDLE, Ordering::SeqCst);
    }
}

struct Shared<P: Protocol> {
    protocol: P,
    config: EngineConfig,
    epoll: OwnedFd,
    listeners: Vec<Listener>,
    slots: Vec<Slot<P::Session>>,
    /// Free slots, lowest index on top: a new connection takes the slot
    /// closed last, or else the lowest never used.
    free: Mutex<Vec<u32>>,
    /// How many slots, from the first, have ever held a connection: the
    /// sweeper visits those only, not all `max_connections`.
    used: AtomicUsize,
    open: AtomicUsize,
    paused_until: Mutex<Option<Instant>>,
    stopping: Shutdown,
    accepting: AtomicBool,
    done: AtomicBool,
    watches: Arc<Watches>,
    /// Which worker waits in `epoll_wait` (one at a time).
    turn: Turn,
}

const LISTENER_BIT: u64 = 1 << 63;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection's epoll interest: edge-triggered input always, output only
/// while the socket is full (a Unix socket would otherwise report every
/// time its reader takes some bytes).
fn conn_flags(out: bool) -> epoll::EventFlags {
    let base = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ET;
    if out {
        base | epoll::EventFlags::OUT
    } else {
        base
    }
}

fn conn_token(generation: u32, idx: u32) -> epoll::EventData {
    epoll::EventData::new_u64((u64::from(generation) << 32) | u64::from(idx))
}

/// Serves `protocol` on `listeners` until `shutdown` is triggered and the
/// drain is over. Runs `config.workers` threads plus a sweeper; returns
/// when they have all stopped.
///
/// # Errors
/// Creating the epoll instance or registering a listener failed.
pub fn serve<P: Protocol>(
    protocol: P,
    listeners: Vec<Listener>,
    config: EngineConfig,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    for (i, l) in listeners.iter().enumerate() {
        l.set_nonblocking(true)?;
        epoll::add(
            &epoll,
            l,
            epoll::EventData::new_u64(LISTENER_BIT | i as u64),
            LISTENER_FLAGS,
        )?;
    }
    let max = config.max_connections.clamp(1, u32::MAX as usize);
    let shared = Arc::new(Shared {
        protocol,
        epoll,
        listeners,
        slots: (0..max).map(|_| Slot::new()).collect(),
        free: Mutex::new((0..max as u32).rev().collect()),
        used: AtomicUsize::new(0),
        open: AtomicUsize::new(0),
        paused_until: Mutex::new(None),
        stopping: shutdown.clone(),
        accepting: AtomicBool::new(true),
        done: AtomicBool::new(false),
        watches: Arc::new(Watches::default()),
        turn: Turn::default(),
        config,
    });
    let workers = shared.config.workers.max(1);
    let mut threads = Vec::with_capacity(workers + 1);
    for i in 0..workers {
        let s = Arc::clone(&shared);
        threads.push(
            std::thread::Builder::new()
                .name(format!("gatekit-worker-{i}"))
                .spawn(move || worker(&s))?,
        );
    }
    let s = Arc::clone(&shared);
    threads.push(
        std::thread::Builder::new()
            .name("gatekit-sweeper".into())
            .spawn(move || sweeper(&s))?,
    );
    for t in threads {
        // A worker that panicked has already lost its request; the others
        // finished the drain. Nothing more to do with the panic here.
        let _ = t.join();
    }
    Ok(())
}

fn worker<P: Protocol>(shared: &Shared<P>) {
    let mut events: Vec<epoll::Event> = Vec::with_capacity(1);
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    loop {
        if shared.done.load(Ordering::SeqCst) {
            return;
        }
        if !shared.turn.take() {
            shared.turn.park(&shared.done, crate::turn::PARK);
            continue;
        }
        events.clear();
        let start = Instant::now();
        let waited = epoll::wait(
            &shared.epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&tick),
        );
        shared.turn.give_up(events.len(), start.elapsed());
        match waited {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => {
                eprintln!("gatekit: epoll_wait failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for ev in &events {
            let token = ev.data.u64();
            if token & LISTENER_BIT != 0 {
                accept(shared, (token & !LISTENER_BIT) as usize);
            } else {
                handle(shared, token, ev.flags);
            }
        }
    }
}

/// A listener's epoll interest: level-triggered. Only the worker that holds
/// the turn waits in `epoll_wait` ([`crate::turn`]), so a waiting
/// connection wakes one worker, and the listener stays armed: no
/// `epoll_ctl` per connection (a one-shot interest needs one to re-arm it).
/// A second worker that takes the turn before the first has accepted may
/// be told of the same connection and find it gone (`EAGAIN`, one wasted
/// `accept`); that takes a watch's wake-up in that instant, so it is rare.
/// While accepting is paused, or the server stops, the listener is left
/// without interest, or it would be reported again and again.
const LISTENER_FLAGS: epoll::EventFlags = epoll::EventFlags::IN;

/// Arms a listener (`on`), or leaves it without interest (while accepting
/// is paused; the sweeper turns it back on).
fn arm_listener<P: Protocol>(shared: &Shared<P>, i: usize, on: bool) {
    if let Some(l) = shared.listeners.get(i) {
        let data = epoll::EventData::new_u64(LISTENER_BIT | i as u64);
        let flags = if on {
            LISTENER_FLAGS
        } else {
            epoll::EventFlags::empty()
        };
        match epoll::modify(&shared.epoll, l, data, flags) {
            // Taken out by the sweeper: stopping.
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => eprintln!("gatekit: cannot re-arm a listener: {e}"),
        }
    }
}

/// Disarms listener `i` if accepting is paused, pausing for `d` first when
/// `d` is given; returns whether it is paused. Under the pause's lock, so
/// that the sweeper, which ends a pause and re-arms every listener under
/// the same lock, cannot re-arm it first and leave it disarmed for good.
fn disarm_if_paused<P: Protocol>(shared: &Shared<P>, i: usize, d: Option<Duration>) -> bool {
    let mut paused = lock(&shared.paused_until);
    if let Some(d) = d {
        *paused = Some(Instant::now() + d);
    }
    if paused.is_some() {
        arm_listener(shared, i, false);
    }
    paused.is_some()
}

/// Takes one connection waiting on listener `i` and serves it on this
/// thread at once: its request has usually arrived with it (a web server
/// writes right after connecting), so it needs no registration and no
/// wake-up when the request is all there. It is registered with epoll only
/// when it has to wait.
fn accept<P: Protocol>(shared: &Shared<P>, i: usize) {
    let Some(listener) = shared.listeners.get(i) else {
        return;
    };
    if shared.stopping.is_triggered() {
        // The sweeper takes the listeners out; until then, no more events.
        arm_listener(shared, i, false);
        return;
    }
    if disarm_if_paused(shared, i, None) {
        // The sweeper re-arms it when the pause is over.
        return;
    }
    let Some(idx) = lock(&shared.free).pop() else {
        // Full: leave new connections in the backlog until a slot frees up
        // (the sweeper re-arms the listener).
        disarm_if_paused(shared, i, Some(Duration::from_millis(20)));
        return;
    };
    match listener.accept_nonblocking() {
        Ok((stream, peer)) => {
            if let Some((slot, generation)) = adopt(shared, idx, stream, peer) {
                drive(shared, slot, idx, generation, epoll::EventFlags::IN);
            }
        }
        Err(e) => {
            lock(&shared.free).push(idx);
            if e.kind() == io::ErrorKind::WouldBlock
                || e.kind() == io::ErrorKind::Interrupted
                || e.raw_os_error() == Some(Errno::CONNABORTED.raw_os_error())
            {
                // Another worker took it, or it went away.
                return;
            }
            if is_transient_accept_error(&e) {
                eprintln!("gatekit: accept: {e}; pausing accepts briefly");
            } else {
                eprintln!("gatekit: accept: {e}");
            }
            disarm_if_paused(shared, i, Some(Duration::from_millis(100)));
        }
    }
}

/// Puts a new connection in slot `idx` (after the allow-list check), held
/// by this thread and not yet watched by epoll, and returns the slot and
/// its generation for [`drive`]; `None` if it was refused.
fn adopt<P: Protocol>(
    shared: &Shared<P>,
    idx: u32,
    stream: Stream,
    peer: Peer,
) -> Option<(&Slot<P::Session>, u32)> {
    if let (Some(nets), Peer::Tcp(addr)) = (&shared.config.allow, &peer) {
        if !is_allowed(nets, addr.ip()) {
            eprintln!("gatekit: connection from {addr} refused: not in the allow list");
            drop(stream);
            lock(&shared.free).push(idx);
            return None;
        }
    }
    let slot = shared.slots.get(idx as usize)?;
    shared.used.fetch_max(idx as usize + 1, Ordering::SeqCst);
    let generation = slot.generation();
    // Dropping the connection here would reset the client's connection.
    if !slot.take_fresh(generation) {
        eprintln!("gatekit: a connection's slot stayed held; connection dropped");
        lock(&shared.free).push(idx);
        return None;
    }
    let (buffers, session) = match lock(&slot.spare).take() {
        Some(spare) => ((spare.input, spare.out), spare.session),
        None => ((Vec::new(), Vec::new()), None),
    };
    let watches = Arc::clone(&shared.watches);
    let conn = Conn::with_buffers(stream, peer, &shared.config, watches, buffers);
    let session = session.unwrap_or_else(|| shared.protocol.session(&peer, &conn));
    *lock(&slot.live) = Some(Box::new(Live {
        conn,
        session,
        deadline: Instant::now() + shared.config.idle_timeout,
        in_request: false,
        closing: false,
        done: false,
        lingering: false,
        out_armed: false,
        watched: false,
    }));
    shared.open.fetch_add(1, Ordering::SeqCst);
    Some((slot, generation))
}

/// On stop: takes every connection already waiting on listener `i` and
/// hands it to the workers, so a request that arrived before the stop is
/// answered (with the connection closed after it) rather than reset when
/// the listener closes.
fn take_backlog<P: Protocol>(shared: &Shared<P>, i: usize) {
    let Some(listener) = shared.listeners.get(i) else {
        return;
    };
    for _ in 0..shared.slots.len() {
        let Some(idx) = lock(&shared.free).pop() else {
            return;
        };
        match listener.accept_nonblocking() {
            Ok((stream, peer)) => register(shared, idx, stream, peer),
            Err(e) => {
                lock(&shared.free).push(idx);
                if e.kind() != io::ErrorKind::Interrupted
                    && e.raw_os_error() != Some(Errno::CONNABORTED.raw_os_error())
                {
                    return;
                }
            }
        }
    }
}

/// Puts a new connection in slot `idx` and watches it: the first worker
/// its input wakes serves it.
fn register<P: Protocol>(shared: &Shared<P>, idx: u32, stream: Stream, peer: Peer) {
    let Some((slot, generation)) = adopt(shared, idx, stream, peer) else {
        return;
    };
    let mut guard = lock(&slot.live);
    let watched = guard
        .as_deref_mut()
        .is_some_and(|live| watch(shared, live, generation, idx, false));
    match guard.as_deref() {
        Some(live) if watched => hand_back(&shared.epoll, slot, generation, idx, live),
        _ => close(shared, slot, &mut guard, idx),
    }
}

/// Makes epoll watch the connection for input, and for output too if
/// `out`: registers it the first time, changes its interest only when
/// `out` changes. False if epoll refused (the connection is to close).
fn watch<P: Protocol>(
    shared: &Shared<P>,
    live: &mut Live<P::Session>,
    generation: u32,
    idx: u32,
    out: bool,
) -> bool {
    if live.watched && live.out_armed == out {
        return true;
    }
    let stream = live.conn.stream();
    let token = conn_token(generation, idx);
    // Registering reports the socket at once if it is ready.
    let done = if live.watched {
        epoll::modify(&shared.epoll, stream, token, conn_flags(out))
    } else {
        epoll::add(&shared.epoll, stream, token, conn_flags(out))
    };
    if done.is_err() {
        return false;
    }
    live.watched = true;
    live.out_armed = out;
    true
}

/// Closes the connection of a slot the caller holds.
fn close<P: Protocol>(
    shared: &Shared<P>,
    slot: &Slot<P::Session>,
    live: &mut Option<Box<Live<P::Session>>>,
    idx: u32,
) {
    if let Some(live) = live.take() {
        if Arc::strong_count(&live.conn.stream) > 1 {
            // Another handle keeps the descriptor open past this close, so
            // the kernel would keep it registered: take it out by hand.
            let _ = epoll::delete(&shared.epoll, live.conn.stream());
        }
        let spare = Spare::from_closed(&shared.protocol, *live);
        *lock(&slot.spare) = spare;
        slot.retire();
        lock(&shared.free).push(idx);
        shared.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a connection waits for after [`step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Input (the socket is registered for it, edge-triggered).
    Read,
    /// The socket to take more output.
    Write,
    /// Nothing: input may be left unread in the socket, look again now.
    Again,
    /// Close the connection.
    Close,
}

/// An event for the connection `token` names. The worker that claims the
/// connection keeps it until nothing more is to be done: events that come
/// while it holds it (from other workers' `epoll_wait`) only leave a note,
/// and it looks again before letting go. So there is no re-arming per
/// request, and an edge is never lost.
fn handle<P: Protocol>(shared: &Shared<P>, token: u64, flags: epoll::EventFlags) {
    let idx = (token & 0xffff_ffff) as u32;
    let generation = (token >> 32) as u32;
    let Some(slot) = shared.slots.get(idx as usize) else {
        return;
    };
    if !slot.claim(generation) {
        return;
    }
    drive(shared, slot, idx, generation, flags);
}

/// Serves the connection of a slot this thread has claimed, for as long as
/// it has something to do, then lets it go (or closes it).
fn drive<P: Protocol>(
    shared: &Shared<P>,
    slot: &Slot<P::Session>,
    idx: u32,
    generation: u32,
    flags: epoll::EventFlags,
) {
    let mut guard = lock(&slot.live);
    // After the first round the event's flags are not known: read until
    // the socket is empty.
    let mut thorough = false;
    // Each round after the first starts only because the peer sent more
    // (or the socket took more) while the last one ran; a lingering close
    // ends at its deadline.
    loop {
        let Some(live) = guard.as_deref_mut() else {
            slot.let_go(generation);
            return;
        };
        let wait = step(shared, live, flags, thorough);
        thorough = true;
        let wait = match wait {
            Wait::Read | Wait::Write
                if !watch(shared, live, generation, idx, wait == Wait::Write) =>
            {
                Wait::Close
            }
            other => other,
        };
        match wait {
            Wait::Close => {
                close(shared, slot, &mut guard, idx);
                return;
            }
            Wait::Again => {}
            Wait::Read | Wait::Write => {
                if slot.release(generation) {
                    return;
                }
            }
        }
    }
}

/// Advances one connection and says what it waits for next. `thorough`:
/// read until the socket is empty rather than trusting a short read.
fn step<P: Protocol>(
    shared: &Shared<P>,
    live: &mut Live<P::Session>,
    flags: epoll::EventFlags,
    thorough: bool,
) -> Wait {
    if live.lingering && Instant::now() >= live.deadline {
        // The sweeper only visits connections nobody holds; a peer that
        // keeps sending keeps this one held, so the deadline is checked here.
        return Wait::Close;
    }
    if !thorough && flags.contains(epoll::EventFlags::ERR) && !flags.contains(epoll::EventFlags::IN)
    {
        return Wait::Close;
    }
    if live.conn.has_pending() {
        if live.conn.try_send().is_err() {
            return Wait::Close;
        }
        if live.conn.has_pending() {
            return Wait::Write;
        }
    }
    if live.lingering {
        return drain_input(live);
    }
    if live.closing {
        return start_linger(live);
    }
    let mut drained = true;
    let hangup = epoll::EventFlags::RDHUP | epoll::EventFlags::HUP;
    if thorough || flags.intersects(epoll::EventFlags::IN | hangup) {
        // A peer's close that came with the data shows only in the flags:
        // then read on to the end of input, or no later edge would tell.
        match live.conn.fill(thorough || flags.intersects(hangup)) {
            Ok(d) => drained = d,
            Err(_) => return Wait::Close,
        }
    }
    if live.conn.input().is_empty() && !live.conn.is_eof() {
        return Wait::Read;
    }
    let Ok(next) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.protocol.on_input(&mut live.session, &mut live.conn)
    })) else {
        // Apps' panics are caught by the gateway; this is the protocol's own.
        eprintln!("gatekit: protocol handler panicked; connection closed");
        return Wait::Close;
    };
    let now = Instant::now();
    match next {
        Next::Close => live.closing = true,
        Next::Done => {
            live.closing = true;
            live.done = true;
        }
        Next::Idle => {
            live.in_request = false;
            live.deadline = now + shared.config.idle_timeout;
            if live.conn.is_eof() || shared.stopping.is_triggered() {
                live.closing = true;
            }
        }
        Next::Continue => {
            if live.conn.is_eof() {
                live.closing = true;
            } else if !live.in_request {
                live.in_request = true;
                live.deadline = now + shared.config.request_timeout;
            }
        }
    }
    if live.conn.has_pending() {
        // Input left in the socket is read when the output has gone.
        return Wait::Write;
    }
    if live.closing {
        return start_linger(live);
    }
    if !live.in_request {
        live.conn.release_idle_buffers();
    }
    // Input left in the socket gives no new edge: read it now, unless the
    // protocol leaves a full buffer unread (then the request times out).
    if !drained && live.conn.input().len() < INPUT_CAP {
        return Wait::Again;
    }
    Wait::Read
}

/// Everything is written and the connection is to close: close at once if
/// the peer has nothing more to send, else half-close and drain for a while.
fn start_linger<S>(live: &mut Live<S>) -> Wait {
    if live.conn.is_eof() || live.done {
        return Wait::Close;
    }
    if live
        .conn
        .stream()
        .shutdown(std::net::Shutdown::Write)
        .is_err()
    {
        return Wait::Close;
    }
    live.lingering = true;
    live.deadline = Instant::now() + LINGER;
    drain_input(live)
}

fn drain_input<S>(live: &mut Live<S>) -> Wait {
    let mut scratch = [0u8; 4096];
    for _ in 0..64 {
        match (&*live.conn.stream).read(&mut scratch) {
            Ok(0) => return Wait::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Wait::Read,
            Err(_) => return Wait::Close,
        }
    }
    Wait::Again
}

/// The sweeper lets go of a connection it visited. An event that came
/// meanwhile is handed to the workers: re-registering makes epoll report
/// the socket again if it is ready (the sweeper never runs a protocol).
fn hand_back<S>(epoll_fd: &OwnedFd, slot: &Slot<S>, generation: u32, idx: u32, live: &Live<S>) {
    // Each turn needs a worker to have taken the re-reported event in
    // the instant before the release; it settles at once.
    for _ in 0..64 {
        if slot.release(generation) {
            return;
        }
        if epoll::modify(
            epoll_fd,
            live.conn.stream(),
            conn_token(generation, idx),
            conn_flags(live.out_armed),
        )
        .is_err()
        {
            break;
        }
    }
    // Never leave it owned by nobody: the next visit can still time it out.
    slot.let_go(generation);
}

fn sweeper<P: Protocol>(shared: &Shared<P>) {
    let mut drain_deadline: Option<Instant> = None;
    let mut watch = WatchState::default();
    loop {
        // Between rounds, the sweeper keeps watch over the workers' turn.
        shared.turn.watch(
            &shared.epoll,
            shared.config.workers.max(1),
            Duration::from_millis(100),
            &mut watch,
        );
        shared.watches.check();
        let now = Instant::now();
        let stopping = shared.stopping.is_triggered();
        if stopping && shared.accepting.swap(false, Ordering::SeqCst) {
            for (i, l) in shared.listeners.iter().enumerate() {
                let _ = epoll::delete(&shared.epoll, l);
                take_backlog(shared, i);
            }
            drain_deadline = Some(now + shared.config.shutdown_grace);
        }
        if !stopping {
            // Re-armed under the pause's lock: see `disarm_if_paused`.
            let mut paused = lock(&shared.paused_until);
            if paused.is_some_and(|t| t <= now) && !lock(&shared.free).is_empty() {
                *paused = None;
                for i in 0..shared.listeners.len() {
                    arm_listener(shared, i, true);
                }
            }
        }
        let drain_over = drain_deadline.is_some_and(|d| now >= d);
        let used = shared.used.load(Ordering::SeqCst);
        for (idx, slot) in shared.slots.iter().enumerate().take(used) {
            let generation = slot.generation();
            if !slot.claim_idle(generation) {
                // A worker holds it (its timeouts wait for it to let go).
                continue;
            }
            let mut guard = lock(&slot.live);
            let Some(live) = guard.as_deref_mut() else {
                // Empty: no socket, so no event can have come.
                slot.drop_stale_spare(now, stopping);
                slot.let_go(generation);
                continue;
            };
            let idle = !live.in_request && !live.conn.has_pending();
            // On stop, a kept-alive connection whose next request has already
            // arrived (waiting for a free worker) is left to the worker, which
            // answers it with `Connection: close`: closing it would reset it.
            let expired = live.deadline <= now
                || drain_over
                || (stopping
                    && idle
                    && (live.lingering || live.closing || !readable(live.conn.stream())));
            if expired {
                if live.deadline <= now && !stopping && !live.lingering {
                    let in_request = live.in_request;
                    shared
                        .protocol
                        .on_timeout(&mut live.session, &mut live.conn, in_request);
                    let _ = live.conn.try_send();
                }
                close(shared, slot, &mut guard, idx as u32);
            } else {
                hand_back(&shared.epoll, slot, generation, idx as u32, live);
            }
        }
        if stopping && (shared.open.load(Ordering::SeqCst) == 0 || drain_over) {
            // Workers wait with a short timeout, see the flag and stop
            // (one still running an app finishes that request first).
            shared.done.store(true, Ordering::SeqCst);
            shared.turn.wake_all();
            return;
        }
    }
}

/// True if a read would not block: bytes (a request) or the peer's close
/// wait; for an epoll instance, events ready to be taken.
pub(crate) fn readable(fd: impl std::os::fd::AsFd) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listen::{Addr, ListenOptions, bind};
    use std::net::TcpStream;

    /// A TCP listener on a free loopback port, and its address.
    fn loopback_listener() -> (Listener, std::net::SocketAddr) {
        let addr: Addr = "127.0.0.1:0".parse().unwrap();
        let listener = bind(&addr, &ListenOptions::default()).unwrap();
        let Ok(Addr::Ip(at)) = listener.local_addr() else {
            panic!("not TCP")
        };
        (listener, at)
    }

    struct Silent;

    impl Protocol for Silent {
        type Session = ();
        fn session(&self, _peer: &Peer, _conn: &Conn) {}
        fn on_input(&self, _session: &mut (), _conn: &mut Conn) -> Next {
            Next::Idle
        }
    }

    fn shared(listener: Listener) -> Shared<Silent> {
        shared_with(listener, Silent)
    }

    fn shared_with<P: Protocol>(listener: Listener, protocol: P) -> Shared<P> {
        Shared {
            protocol,
            config: EngineConfig::default(),
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC).unwrap(),
            listeners: vec![listener],
            slots: (0..2).map(|_| Slot::new()).collect(),
            free: Mutex::new(vec![1, 0]),
            used: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            paused_until: Mutex::new(None),
            stopping: Shutdown::new(),
            accepting: AtomicBool::new(true),
            done: AtomicBool::new(false),
            watches: Arc::new(Watches::default()),
            turn: Turn::default(),
        }
    }

    /// The sweeper's round holds every slot for an instant, free ones too.
    /// A connection accepted into a slot it holds must wait for it, not be
    /// dropped (which reset the client's connection: seen under load).
    #[test]
    fn a_new_connection_waits_for_the_sweeper_to_let_go_of_its_slot() {
        let (listener, at) = loopback_listener();
        let shared = shared(listener);
        let _client = TcpStream::connect(at).unwrap();
        let (stream, peer) = shared.listeners[0].accept().unwrap();
        let idx = lock(&shared.free).pop().unwrap();
        let slot = &shared.slots[idx as usize];
        let generation = slot.generation();
        assert!(slot.claim_idle(generation), "the sweeper's visit");
        std::thread::scope(|s| {
            s.spawn(|| {
                // Longer than a bounded number of yields would last: a
                // sweeper preempted while it holds the slot.
                std::thread::sleep(Duration::from_millis(300));
                slot.let_go(generation);
            });
            let adopted = adopt(&shared, idx, stream, peer).map(|(_, g)| g);
            assert_eq!(adopted, Some(generation));
        });
        assert!(lock(&slot.live).is_some());
        assert!(!slot.claim_idle(generation), "held by the adopting thread");
        assert_eq!(shared.open.load(Ordering::SeqCst), 1);
    }

    /// A closed connection leaves its buffers and its recycled session to
    /// the next connection in its slot; the sweeper frees leftovers that
    /// wait too long.
    #[test]
    fn a_closed_connection_leaves_its_buffers_and_session_to_the_next() {
        /// Sessions are numbered as made; a recycled one gains 100.
        struct Numbered(AtomicUsize);
        impl Protocol for Numbered {
            type Session = usize;
            fn session(&self, _peer: &Peer, _conn: &Conn) -> usize {
                self.0.fetch_add(1, Ordering::SeqCst)
            }
            fn on_input(&self, _session: &mut usize, _conn: &mut Conn) -> Next {
                Next::Idle
            }
            fn recycle(&self, session: &mut usize) -> bool {
                *session += 100;
                true
            }
        }
        let (listener, at) = loopback_listener();
        let shared = shared_with(listener, Numbered(AtomicUsize::new(0)));
        let connect = || {
            let client = TcpStream::connect(at).unwrap();
            let (stream, peer) = shared.listeners[0].accept().unwrap();
            let idx = lock(&shared.free).pop().unwrap();
            let (slot, _) = adopt(&shared, idx, stream, peer).unwrap();
            (client, slot, idx)
        };
        let (mut first, slot, idx) = connect();
        {
            let mut guard = lock(&slot.live);
            let live = guard.as_deref_mut().unwrap();
            assert_eq!(live.session, 0);
            live.conn.write(b"queued, never sent").unwrap();
            close(&shared, slot, &mut guard, idx);
        }
        // The socket is closed at once, not kept with the leftovers.
        let mut byte = [0u8; 1];
        assert_eq!(first.read(&mut byte).unwrap(), 0);
        {
            let spare = lock(&slot.spare);
            let spare = spare.as_ref().unwrap();
            assert_eq!(spare.session, Some(100));
            assert!(spare.out.is_empty() && spare.out.capacity() >= OUT_FIRST);
        }
        // Slots go out last-closed first: the next connection gets this one.
        let (_second, again, idx2) = connect();
        assert_eq!(idx2, idx);
        assert_eq!(
            shared.used.load(Ordering::SeqCst),
            1,
            "the sweeper visits one slot"
        );
        {
            let mut guard = lock(&again.live);
            let live = guard.as_deref_mut().unwrap();
            assert_eq!(live.session, 100, "the recycled session");
            assert!(live.conn.out.capacity() >= OUT_FIRST && !live.conn.has_pending());
            assert_eq!(
                shared.protocol.0.load(Ordering::SeqCst),
                1,
                "no new session made"
            );
            assert!(lock(&again.spare).is_none());
            close(&shared, again, &mut guard, idx);
        }
        let now = Instant::now();
        slot.drop_stale_spare(now, false);
        assert!(lock(&slot.spare).is_some(), "fresh leftovers stay");
        slot.drop_stale_spare(now + SPARE_KEEP, false);
        assert!(lock(&slot.spare).is_none(), "stale leftovers are freed");
    }

    /// Answers each line: `slow` after 600 ms in the "application", any
    /// other line at once.
    struct Lines;

    impl Protocol for Lines {
        type Session = ();
        fn session(&self, _peer: &Peer, _conn: &Conn) {}
        fn on_input(&self, _session: &mut (), conn: &mut Conn) -> Next {
            let Some(end) = conn.input().iter().position(|&b| b == b'\n') else {
                return if conn.is_eof() {
                    Next::Done
                } else {
                    Next::Continue
                };
            };
            let slow = conn.input().get(..end) == Some(b"slow".as_slice());
            conn.consume(end + 1);
            if slow {
                std::thread::sleep(Duration::from_millis(600));
            }
            let _ = conn.write(b"ok\n");
            let _ = conn.flush();
            Next::Idle
        }
    }

    /// Serves [`Lines`] on `listener` in a thread; trigger the returned
    /// shutdown, then join the thread.
    fn serve_lines(
        listener: Listener,
        config: EngineConfig,
    ) -> (Shutdown, std::thread::JoinHandle<io::Result<()>>) {
        let stop = Shutdown::new();
        let server = {
            let stop = stop.clone();
            std::thread::spawn(move || serve(Lines, vec![listener], config, &stop))
        };
        (stop, server)
    }

    fn ask(at: std::net::SocketAddr, line: &[u8]) -> TcpStream {
        let mut c = TcpStream::connect(at).unwrap();
        c.write_all(line).unwrap();
        c
    }

    fn answer(c: &mut TcpStream) -> Vec<u8> {
        let mut got = [0u8; 3];
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.read_exact(&mut got).unwrap();
        got.to_vec()
    }

    /// Only one worker waits for events at a time; one stuck in a slow
    /// application must not keep the others' connections waiting, and
    /// several stuck at once each hold only their own worker.
    #[test]
    fn slow_applications_hold_only_their_workers() {
        let (listener, at) = loopback_listener();
        let config = EngineConfig {
            workers: 4,
            ..EngineConfig::default()
        };
        let (stop, server) = serve_lines(listener, config);
        // Warm up: every worker has started.
        let mut c = ask(at, b"fast\n");
        assert_eq!(answer(&mut c), b"ok\n");
        // Three slow requests: three of the four workers are stuck in them.
        let mut slow: Vec<TcpStream> = (0..3)
            .map(|_| {
                let c = ask(at, b"slow\n");
                std::thread::sleep(Duration::from_millis(20));
                c
            })
            .collect();
        for round in 0..5 {
            let start = Instant::now();
            let mut c = ask(at, b"fast\n");
            assert_eq!(answer(&mut c), b"ok\n");
            let took = start.elapsed();
            assert!(
                took < Duration::from_millis(300),
                "round {round}: a fast request took {took:?} beside three slow ones"
            );
        }
        for c in &mut slow {
            assert_eq!(answer(c), b"ok\n");
        }
        stop.trigger();
        server.join().unwrap().unwrap();
    }

    /// Whether an epoll instance of this process watches descriptor `fd`
    /// for input, from `/proc/self/fdinfo` (the `tfd: FD events: HEX ...`
    /// lines of epoll descriptors; the kernel adds ERR and HUP to every
    /// interest, so a disarmed one shows as `18`); `None` if none watches it.
    fn armed_for_input(fd: i32) -> Option<bool> {
        for entry in std::fs::read_dir("/proc/self/fdinfo").ok()?.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for line in text.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let ["tfd:", tfd, "events:", events, ..] = words.as_slice() {
                    if tfd.parse() == Ok(fd) {
                        let events = u32::from_str_radix(events, 16).ok()?;
                        return Some(events & epoll::EventFlags::IN.bits() != 0);
                    }
                }
            }
        }
        None
    }

    /// With every slot taken, new connections wait in the backlog (the
    /// listener disarmed, not reported again and again to a spinning
    /// worker) and are served once a slot frees up (the sweeper re-arms it).
    #[test]
    fn a_full_server_leaves_connections_in_the_backlog_then_serves_them() {
        let (listener, at) = loopback_listener();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
        let config = EngineConfig {
            workers: 2,
            max_connections: 2,
            ..EngineConfig::default()
        };
        let (stop, server) = serve_lines(listener, config);
        let mut held: Vec<TcpStream> = (0..2).map(|_| ask(at, b"fast\n")).collect();
        for c in &mut held {
            assert_eq!(answer(c), b"ok\n");
        }
        // Both slots are taken by idle kept connections: a third waits.
        let mut third = ask(at, b"fast\n");
        third
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = [0u8; 3];
        assert!(third.read_exact(&mut got).is_err(), "served past the limit");
        // The listener is disarmed meanwhile: a level-triggered interest
        // left on would report it to a spinning worker.
        assert_eq!(
            armed_for_input(fd),
            Some(false),
            "the listener stayed armed"
        );
        // One leaves: the third is served, the listener armed again.
        drop(held.pop());
        assert_eq!(answer(&mut third), b"ok\n");
        assert_eq!(
            armed_for_input(fd),
            Some(true),
            "the listener was not re-armed"
        );
        stop.trigger();
        server.join().unwrap().unwrap();
    }

    /// A big file over TCP goes out corked, head included, and the cork is
    /// gone once the file is all sent; a small one is not corked at all.
    #[test]
    fn a_big_file_is_sent_corked_with_its_head_and_uncorked_after() {
        let (listener, at) = loopback_listener();
        let len = 4 * CORK_MIN as usize;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        for count in [len as u64, CORK_MIN - 1] {
            let mut client = TcpStream::connect(at).unwrap();
            let (stream, peer) = listener.accept_nonblocking().unwrap();
            let mut conn = Conn::new(
                stream,
                peer,
                &EngineConfig::default(),
                Arc::new(Watches::default()),
            );
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                client.read_to_end(&mut got).unwrap();
                got
            });
            conn.write(b"HEAD\r\n").unwrap();
            assert_eq!(conn.sendfile(&file, 0, count).unwrap(), count);
            let deadline = Instant::now() + Duration::from_secs(10);
            while conn.has_pending() {
                assert!(conn.corked, "corked while the file is sent");
                assert!(Instant::now() < deadline, "never sent");
                conn.try_send().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            let corked = rustix::net::sockopt::tcp_cork(conn.stream()).unwrap();
            assert!(!corked && !conn.corked, "uncorked after {count} bytes");
            drop(conn);
            let got = reader.join().unwrap();
            assert_eq!(got.get(..6), Some(b"HEAD\r\n".as_slice()));
            assert!(got.get(6..) == data.get(..count as usize), "{count} bytes");
        }
    }
}
