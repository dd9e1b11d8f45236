//! A blocking, low-level FastCGI API in the style of the FastCGI SDK (libfcgi's `fcgiapp.h`):
//! the application runs its own accept loop, one request at a time per thread, and reads and
//! writes the request's streams itself.
//!
//! This is the accept-loop model of libfcgi, beside the [`crate::server`] model (an
//! [`App`](gatekit_core::App) called by gatekit's socket engine). It uses std's blocking sockets
//! (and, between requests, one epoll instance the threads wait on) and the sans-IO codec of
//! [`crate::proto`]; there is no engine, no async, no spooling.
//!
//! - [`Listener`] is the listening socket (`FCGX_OpenSocket`, or fd 0 as
//!   `FCGI_LISTENSOCK_FILENO`), shared by every accepting thread (it is `Sync`).
//! - [`Acceptor`] is one thread's accept loop (`FCGX_Request` with `FCGX_InitRequest`);
//!   [`Acceptor::accept`] is `FCGX_Accept_r`. Connections a web server asked to keep
//!   (`FCGI_KEEP_CONN`) wait between requests with the listener, for any thread.
//! - [`Request`] is one request: its role, id, `PARAMS`, `STDIN` and `DATA` as readers (records
//!   are read on demand), `STDOUT` and `STDERR` as buffered writers, and
//!   [`Request::finish`] (`FCGX_Finish_r`).
//!
//! docs/fastcgi-sdk.md maps every libfcgi call to its equivalent here.
//!
//! # Example
//!
//! ```no_run
//! use std::io::{Read, Write};
//!
//! use gatekit_fastcgi::sdk::Listener;
//!
//! // nginx: fastcgi_pass 127.0.0.1:9000; include fastcgi_params;
//! let listener = Listener::bind("127.0.0.1:9000")?;
//! std::thread::scope(|threads| {
//!     for _ in 0..4 {
//!         threads.spawn(|| -> std::io::Result<()> {
//!             let mut acceptor = listener.acceptor();
//!             while let Some(mut req) = acceptor.accept()? {
//!                 let mut body = Vec::new();
//!                 req.stdin().read_to_end(&mut body)?;
//!                 let method = req.param_str("REQUEST_METHOD").unwrap_or("?").to_owned();
//!                 let mut out = req.stdout();
//!                 write!(out, "Content-Type: text/plain\r\n\r\n")?;
//!                 writeln!(out, "{method} with {} bytes", body.len())?;
//!                 req.finish(0)?;
//!             }
//!             Ok(())
//!         });
//!     }
//! });
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Design
//!
//! What the spec (and libfcgi) leave open, decided here:
//!
//! - **Threads, not multiplexing.** Each thread has its own [`Acceptor`]; a request belongs to
//!   one connection and one thread from `BEGIN_REQUEST` to `END_REQUEST`. `FCGI_MPXS_CONNS` is
//!   `0`, and a `BEGIN_REQUEST` for a second id while a request is active is answered
//!   `END_REQUEST` with `FCGI_CANT_MPX_CONN` (§5.5). `FCGI_MAX_REQS` is the number of threads
//!   accepting on the listener, `FCGI_MAX_CONNS` that plus [`Config::max_kept_conns`]
//!   ([`Config::max_conns`] overrides both).
//! - **Kept connections are shared, not held by a thread.** libfcgi keeps a kept connection in
//!   the `FCGX_Request`, and the thread waits on it for the web server's next request, serving
//!   nobody else meanwhile: behind nginx with `keepalive 32` and four threads, four connections
//!   are served and the rest wait (seconds at p99). Here, when a request with `FCGI_KEEP_CONN`
//!   is finished, its connection waits with the listener: the threads in `accept` wait on
//!   the listening socket and on all the idle kept connections at once (one epoll instance),
//!   and take whichever has something first, one thread per event. So any number of idle
//!   connections (up to [`Config::max_kept_conns`], 256) costs no thread. A connection is
//!   registered with that epoll instance (edge-triggered) the first time it waits there, and
//!   stays registered until it is closed, and the listener is level-triggered: a request on a
//!   kept connection costs no `epoll_ctl`. A connection whose
//!   next request was already read with the last one stays with the thread, whose next
//!   `accept` serves it first. The web server closing an idle kept connection is normal.
//! - **One thread waits at a time.** Of the threads in `accept`, one waits in `epoll_wait` and
//!   the others sleep until they are needed, as the App server's workers do
//!   ([`gatekit_server::turn`]): a thread that finishes a request takes what came meanwhile
//!   without a wake-up, and a watch thread (started when a second thread waits) wakes a
//!   sleeping one within a millisecond or two when the awake threads are all busy or stuck in
//!   the application (and, while requests cost 40 µs or more each, lets several wait at
//!   once). With every thread waiting in `epoll_wait`, each request woke a sleeping thread;
//!   behind nginx at `wrk -c 256` with kept connections that served a fifth to over a third
//!   fewer requests.
//! - **Records.** `GET_VALUES` is answered truthfully and unknown management types with
//!   `UNKNOWN_TYPE` (§4), whenever they arrive; records for inactive ids are ignored (§3.3), as are
//!   record types only an application sends. An unknown role is answered `END_REQUEST` with
//!   `FCGI_UNKNOWN_ROLE`. A malformed record (version ≠ 1, a short `BEGIN_REQUEST` body, a record
//!   cut short, `STDIN` before `PARAMS` ended) closes that connection; `accept` goes on with the
//!   next one. None of these ever reaches the application.
//! - **Limits.** `PARAMS` over [`Config::max_params`] (128 KiB) is answered `431` without
//!   reaching the application; nothing is allocated from a length on the wire before it is checked
//!   against that limit. `STDIN` is read on demand, one record at a time, and yields at most
//!   `CONTENT_LENGTH` bytes (§6.2): more, or fewer before the stream ends, is an
//!   [`io::ErrorKind::InvalidData`] error from the reader. A Filter's `DATA` is bounded the same
//!   way by `FCGI_DATA_LENGTH`.
//! - **Aborts.** [`Request::abort_requested`] is true once an `ABORT_REQUEST` for the request has
//!   been read, or the web server closed the connection; it looks at the socket without waiting.
//!   The application still calls [`Request::finish`]: §5.4 wants the `END_REQUEST` to be "a
//!   response from the application".
//! - **Output.** `STDOUT` and `STDERR` are buffered ([`Config::buffer_size`], 8 KiB as in
//!   libfcgi) and framed into records when the buffer fills, on `flush`, and at `finish`, which
//!   sends the rest, the empty `STDOUT` record (and empty `STDERR`, if it was used) and
//!   `END_REQUEST` in one write. A write larger than the buffer goes out as records straight from
//!   the caller's slice.
//! - **No silent endings.** Dropping a [`Request`] without [`Request::finish`] finishes it with
//!   application status 1.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufRead, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use gatekit_server::allow::{IpNet, is_allowed};
use gatekit_server::listen::{self, Addr, ListenOptions, Peer, Stream};

use crate::idle::{Idle, Ready};
use crate::proto::{
    self, BeginRequest, EndRequest, HEADER_LEN, Header, MAX_CONTENT_LEN, MAX_PADDING,
    NULL_REQUEST_ID, Params, ParamsDecoder, ProtocolStatus, RecordType, Role, UnknownType,
};

/// The default [`Config::max_params`]: 128 KiB of encoded name-value pairs.
pub const DEFAULT_MAX_PARAMS: usize = 128 * 1024;

/// The default [`Config::buffer_size`]: 8 KiB, as libfcgi buffers its streams.
pub const DEFAULT_BUFFER_SIZE: usize = 8 * 1024;

/// The default [`Config::max_kept_conns`]: 256 idle kept connections (nginx keeps at most its
/// `keepalive N` per worker process).
pub const DEFAULT_MAX_KEPT_CONNS: usize = 256;

/// The longest record on the wire: header, 65,535 bytes of content, 255 of padding.
const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_CONTENT_LEN + MAX_PADDING;

/// The first size of a connection's read buffer; it grows up to [`MAX_RECORD_LEN`] when a
/// record needs it.
const FIRST_READ_BUFFER: usize = 16 * 1024;

/// How long closing a connection waits for the web server to stop sending, so that unread
/// input does not make the kernel reset the connection under the response.
const LINGER: Duration = Duration::from_secs(2);

/// The longest pause after a transient `accept(2)` failure (`EMFILE` and the like).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// What a [`Listener`] can be told, with safe defaults. Start from [`Config::default`] and change
/// fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Largest `PARAMS` stream accepted, in encoded bytes (default [`DEFAULT_MAX_PARAMS`]);
    /// larger ones are answered `431` and never reach the application.
    pub max_params: usize,
    /// Bytes of `STDOUT` (and, separately, `STDERR`) held before they are framed into a record
    /// and sent (default [`DEFAULT_BUFFER_SIZE`]; at most 65,535, one record). `0` sends every
    /// write at once.
    pub buffer_size: usize,
    /// The `FCGI_MAX_CONNS` and `FCGI_MAX_REQS` answered to `GET_VALUES`; `None` (the default)
    /// answers the number of threads accepting on the listener for `FCGI_MAX_REQS`, and that
    /// plus [`Config::max_kept_conns`] for `FCGI_MAX_CONNS`.
    pub max_conns: Option<usize>,
    /// Idle kept connections (`FCGI_KEEP_CONN`) held at once, waiting for the web server's next
    /// request (default [`DEFAULT_MAX_KEPT_CONNS`]). A connection the web server asks to keep
    /// beyond that is closed after its request; the web server opens a new one when it needs
    /// it. `0` closes every connection after its request.
    pub max_kept_conns: usize,
    /// The web servers allowed to connect over TCP (FastCGI §3.2, `FCGI_WEB_SERVER_ADDRS`);
    /// `None` allows any (default). Unix-socket peers are always allowed, as in libfcgi.
    pub web_server_addrs: Option<Vec<IpNet>>,
    /// How long a read from a web server may block (default `None`: forever, as libfcgi). Idle
    /// kept connections are closed once idle that long.
    pub read_timeout: Option<Duration>,
    /// How long a write to a web server may block (default `None`: forever).
    pub write_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_params: DEFAULT_MAX_PARAMS,
            buffer_size: DEFAULT_BUFFER_SIZE,
            max_conns: None,
            max_kept_conns: DEFAULT_MAX_KEPT_CONNS,
            web_server_addrs: None,
            read_timeout: None,
            write_timeout: None,
        }
    }
}

impl Config {
    /// Takes [`Config::web_server_addrs`] from `FCGI_WEB_SERVER_ADDRS` when it is set, as
    /// libfcgi's `FCGX_Init` does: a comma-separated list of addresses (IPv6 accepted too).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a value that is not such a list.
    pub fn with_env_web_server_addrs(mut self) -> io::Result<Config> {
        if let Some(value) = std::env::var_os("FCGI_WEB_SERVER_ADDRS") {
            let invalid = |e: crate::server::Error| io::Error::new(io::ErrorKind::InvalidInput, e);
            let value = value.to_str().ok_or_else(|| {
                invalid(crate::server::Error::WebServerAddrs(
                    "not valid UTF-8".into(),
                ))
            })?;
            self.web_server_addrs =
                Some(crate::server::parse_web_server_addrs(value).map_err(invalid)?);
        }
        Ok(self)
    }

    /// [`Config::buffer_size`] as the content of one record.
    fn record_buffer(&self) -> usize {
        self.buffer_size.min(MAX_CONTENT_LEN)
    }
}

// ---------------------------------------------------------------------------------------------
// Listener
// ---------------------------------------------------------------------------------------------

/// Numbers listeners, so a thread's kept connections are found again by [`Listener::accept`].
static NEXT_LISTENER_ID: AtomicU64 = AtomicU64::new(1);

/// A listening socket that FastCGI requests are accepted from (`FCGX_OpenSocket`, or fd 0).
///
/// `Listener` is `Sync`: share it (by reference, or in an `Arc`) between threads that each run
/// an accept loop with their own [`Acceptor`].
#[derive(Debug)]
pub struct Listener {
    socket: listen::Listener,
    config: Config,
    id: u64,
    /// Threads accepting on this listener: live acceptors and threads that used
    /// [`Listener::accept`].
    threads: Arc<AtomicUsize>,
    /// Where the threads wait: the listener and the idle kept connections (made by the first
    /// `accept`).
    idle: OnceLock<Idle<Conn>>,
    shut_down: AtomicBool,
}

impl Listener {
    /// Binds `addr`: `HOST:PORT`, `[IPV6]:PORT`, `unix:PATH` (or `fd:N`, an inherited socket),
    /// with [`ListenOptions::backend`] (backlog 1024, `TCP_DEFER_ACCEPT` of 1 s: a web server
    /// always writes first, so `accept` returns a connection whose request is there), and the
    /// default [`Config`].
    ///
    /// # Errors
    ///
    /// The address does not parse ([`io::ErrorKind::InvalidInput`]) or cannot be bound; the
    /// error's source is the [`listen::Error`] naming the address and the cause.
    pub fn bind(addr: &str) -> io::Result<Listener> {
        Listener::bind_with(addr, &ListenOptions::backend())
    }

    /// Like [`Listener::bind`], with listening socket options (backlog, a Unix socket's mode and
    /// owner).
    ///
    /// # Errors
    ///
    /// As for [`Listener::bind`].
    pub fn bind_with(addr: &str, options: &ListenOptions) -> io::Result<Listener> {
        let addr: Addr = addr.parse().map_err(listen_error)?;
        let socket = listen::bind(&addr, options).map_err(listen_error)?;
        Ok(Listener::from_listener(socket))
    }

    /// The listening socket a web server or process manager left on fd 0
    /// (`FCGI_LISTENSOCK_FILENO`, FastCGI §2.2: spawn-fcgi, mod_fcgid). Decide first with
    /// [`Listener::is_cgi`].
    ///
    /// # Errors
    ///
    /// fd 0 is not a listening socket.
    pub fn from_fd0() -> io::Result<Listener> {
        listen::Listener::from_fd0()
            .map(Listener::from_listener)
            .map_err(listen_error)
    }

    /// A listener on a socket made elsewhere (systemd socket activation, `fd:N`).
    #[must_use]
    pub fn from_listener(socket: listen::Listener) -> Listener {
        Listener {
            socket,
            config: Config::default(),
            id: NEXT_LISTENER_ID.fetch_add(1, Ordering::Relaxed),
            threads: Arc::new(AtomicUsize::new(0)),
            idle: OnceLock::new(),
            shut_down: AtomicBool::new(false),
        }
    }

    /// This listener with `config`.
    #[must_use]
    pub fn with_config(mut self, config: Config) -> Listener {
        self.config = config;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this process was started as a CGI program rather than as a FastCGI application
    /// (`FCGX_IsCGI`): true unless fd 0 is a listening socket, by FastCGI 1.0 §2.2's test
    /// ([`listen::fd0_is_listener`]: `getpeername(0)` fails with `ENOTCONN`).
    #[must_use]
    pub fn is_cgi() -> bool {
        !listen::fd0_is_listener()
    }

    /// The address listened on.
    ///
    /// # Errors
    ///
    /// The `getsockname(2)` error.
    pub fn local_addr(&self) -> io::Result<Addr> {
        self.socket.local_addr()
    }

    /// A new accept loop for the calling thread (`FCGX_InitRequest`); see [`Acceptor`].
    #[must_use]
    pub fn acceptor(&self) -> Acceptor<'_> {
        Acceptor {
            listener: self,
            kept: None,
            _seat: Seat::new(&self.threads),
        }
    }

    /// Waits for the next request (`FCGX_Accept`), like [`Acceptor::accept`] with an acceptor
    /// the calling thread keeps for this listener in thread-local storage: a kept connection
    /// whose next request was read already is served by this thread's next `accept` (and
    /// closed if the thread exits first); idle kept connections wait with the listener.
    ///
    /// Returns `Ok(None)` once [`Listener::shutdown`] was called.
    ///
    /// # Errors
    ///
    /// `accept(2)` failed for a reason other than a transient one (those are retried after a
    /// short pause): the listener itself is broken.
    pub fn accept(&self) -> io::Result<Option<Request<'_>>> {
        let kept = THREAD_SLOTS
            .try_with(|slots| {
                let mut slots = slots.try_borrow_mut().ok()?;
                match slots.iter_mut().find(|slot| slot.listener == self.id) {
                    Some(slot) => slot.conn.take(),
                    None => {
                        slots.push(ThreadSlot {
                            listener: self.id,
                            conn: None,
                            _seat: Seat::new(&self.threads),
                        });
                        None
                    }
                }
            })
            .ok()
            .flatten();
        let Some((conn, begun)) = self.next_request(kept)? else {
            return Ok(None);
        };
        let home = Home::Thread {
            listener: self.id,
            thread: thread::current().id(),
        };
        Ok(Some(Request::new(conn, begun, self, home)))
    }

    /// Stops the accept loops: every later `accept` returns `Ok(None)`, and threads waiting in
    /// `accept` return at once. Requests being handled are not interrupted; idle kept
    /// connections are closed when the listener is dropped.
    pub fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        if let Some(idle) = self.idle.get() {
            idle.wake_all();
        }
    }

    /// Whether [`Listener::shutdown`] was called.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::SeqCst)
    }

    /// What `GET_VALUES` answers: a request at a time per accepting thread
    /// (`FCGI_MAX_REQS`), and a connection for each of those and for each idle kept one
    /// (`FCGI_MAX_CONNS`); or [`Config::max_conns`] for both.
    fn limits(&self) -> Limits {
        match self.config.max_conns {
            Some(n) => Limits { conns: n, reqs: n },
            None => {
                let reqs = self.threads.load(Ordering::Relaxed).max(1);
                Limits {
                    conns: reqs.saturating_add(self.config.max_kept_conns),
                    reqs,
                }
            }
        }
    }

    /// The listener and idle connections' waiting place, made on first use (the listening
    /// socket becomes non-blocking then).
    fn idle(&self) -> io::Result<&Idle<Conn>> {
        if let Some(idle) = self.idle.get() {
            return Ok(idle);
        }
        self.socket.set_nonblocking(true)?;
        let idle = Idle::new(
            &self.socket,
            self.config.max_kept_conns,
            self.config.read_timeout,
            Arc::clone(&self.threads),
        )?;
        // Another thread may have made one first: this one is dropped, with its registration.
        let _ = self.idle.set(idle);
        let idle = self
            .idle
            .get()
            .ok_or_else(|| io::Error::other("no idle set"))?;
        if self.is_shut_down() {
            idle.wake_all();
        }
        Ok(idle)
    }

    /// Hands a connection between requests (no whole record buffered) to whichever thread its
    /// next input wakes. Gives it back when [`Config::max_kept_conns`] are held already.
    fn park(&self, mut conn: Conn) -> Result<(), Conn> {
        if self.is_shut_down() {
            return Err(conn);
        }
        let Ok(idle) = self.idle() else {
            return Err(conn);
        };
        let registration = conn.registration.take();
        idle.park(conn, registration).map_err(|mut back| {
            back.registration = registration;
            back
        })
    }

    /// Reads requests from `kept`, then from idle kept connections and new connections, until
    /// one request's `PARAMS` are complete; `None` once the listener is shut down.
    fn next_request(&self, kept: Option<Conn>) -> io::Result<Option<(Conn, Begun)>> {
        let mut kept = kept;
        loop {
            if self.is_shut_down() {
                return Ok(None);
            }
            let conn = match kept.take() {
                Some(conn) => conn,
                None => match self.next_conn()? {
                    Some(conn) => conn,
                    None => return Ok(None),
                },
            };
            if let Some(found) = self.read_begin(conn) {
                return Ok(Some(found));
            }
        }
    }

    /// Waits for an idle kept connection with input or a new allowed connection; `None` once
    /// the listener is shut down.
    fn next_conn(&self) -> io::Result<Option<Conn>> {
        let idle = self.idle()?;
        let mut backoff = Duration::from_millis(5);
        loop {
            if self.is_shut_down() {
                return Ok(None);
            }
            match idle.wait(None)? {
                Ready::Conn(mut conn, registration) => {
                    conn.registration = Some(registration);
                    return Ok(Some(conn));
                }
                Ready::Woken | Ready::TimedOut => continue,
                Ready::Listener => {}
            }
            let accepted = self.socket.accept();
            let transient = matches!(&accepted, Err(e) if listen::is_transient_accept_error(e));
            if transient {
                // EMFILE and the like: the connection stays in the backlog; try again later.
                // Meanwhile the other threads are not told of it, and serve kept connections.
                idle.arm_listener(&self.socket, false)?;
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                idle.arm_listener(&self.socket, true)?;
            }
            match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    if self.is_shut_down() {
                        return Ok(None);
                    }
                    if !self.allowed(&peer) {
                        continue;
                    }
                    // The stream is blocking although the listening socket is not (Linux's
                    // accept(2) does not pass O_NONBLOCK on). A socket fresh from accept(2)
                    // has no timeouts: only those configured are set (two system calls saved
                    // per connection).
                    let read = self.config.read_timeout.filter(|d| !d.is_zero());
                    let write = self.config.write_timeout.filter(|d| !d.is_zero());
                    let timeouts = read
                        .map_or(Ok(()), |d| stream.set_read_timeout(Some(d)))
                        .and_then(|()| write.map_or(Ok(()), |d| stream.set_write_timeout(Some(d))));
                    if timeouts.is_err() {
                        // The connection is already unusable (reset by the peer).
                        continue;
                    }
                    return Ok(Some(Conn::new(stream)));
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted
                        || transient => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `peer` may talk to this application (FastCGI §3.2).
    fn allowed(&self, peer: &Peer) -> bool {
        match (&self.config.web_server_addrs, peer) {
            (None, _) | (Some(_), Peer::Unix) => true,
            (Some(list), Peer::Tcp(addr)) => is_allowed(list, addr.ip()),
        }
    }

    /// Reads records from `conn` until one request's `PARAMS` are complete, answering what the
    /// library answers. `None` when the connection ended (closed, broken, or not kept after a
    /// request the library answered itself); it is closed then.
    ///
    /// Until a `BEGIN_REQUEST` arrives, only what has arrived is read: a connection without a
    /// whole record waits with the listener again ([`Listener::park`]), so neither an idle
    /// kept connection nor a new one that sends nothing holds a thread. Once a request has
    /// begun, the rest of its head is on its way and is waited for. When the idle set is full,
    /// a kept connection is closed, and a new one (whose request may be a moment behind its
    /// connection) is waited for here.
    fn read_begin(&self, mut conn: Conn) -> Option<(Conn, Begun)> {
        let mut pending: Option<Pending> = None;
        let mut wait = false;
        loop {
            let record = match conn.next_record(wait || pending.is_some()) {
                Ok(record) => record?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match self.park(conn) {
                    Err(back) if back.fresh && !self.is_shut_down() => {
                        conn = back;
                        wait = true;
                        continue;
                    }
                    // Parked, or closed.
                    _ => return None,
                },
                Err(_) => return None,
            };
            let content = conn.bytes(record.content);
            let id = record.request_id;
            if id == NULL_REQUEST_ID {
                let reply = management_reply(record.record_type, content, self.limits());
                conn.send(&reply).ok()?;
                continue;
            }
            let Some(active) = pending.as_mut() else {
                if record.record_type != RecordType::BeginRequest {
                    // §3.3: records for an inactive id are ignored (here too the rest of a
                    // request that was already answered).
                    continue;
                }
                // A body that is not 8 bytes: nothing after it can be trusted.
                let begin = BeginRequest::decode(content).ok()?;
                if let Role::Unknown(_) = begin.role {
                    let reply = end_request(id, 0, ProtocolStatus::UnknownRole);
                    conn.send(&reply).ok()?;
                    if !begin.keep_conn() {
                        conn.close_lingering();
                        return None;
                    }
                    continue;
                }
                conn.fresh = false;
                pending = Some(Pending {
                    id,
                    role: begin.role,
                    keep_conn: begin.keep_conn(),
                    decoder: ParamsDecoder::new(self.config.max_params),
                });
                continue;
            };
            if id != active.id {
                if record.record_type == RecordType::BeginRequest {
                    // §5.5: one request at a time on a connection.
                    let reply = end_request(id, 0, ProtocolStatus::CantMpxConn);
                    conn.send(&reply).ok()?;
                }
                continue;
            }
            let keep_conn = active.keep_conn;
            let refusal = match record.record_type {
                RecordType::Params if content.is_empty() => {
                    let decoder = std::mem::replace(&mut active.decoder, ParamsDecoder::new(0));
                    match decoder.finish() {
                        Ok(params) => {
                            let begun = Begun {
                                id,
                                role: active.role,
                                keep_conn,
                                params,
                            };
                            return Some((conn, begun));
                        }
                        Err(_) => refusal(id, 400),
                    }
                }
                RecordType::Params => match active.decoder.feed(content) {
                    Ok(()) => continue,
                    Err(_) => refusal(id, 431),
                },
                RecordType::AbortRequest => {
                    // Aborted before the application saw it: the library answers (§5.4).
                    let mut out = Vec::with_capacity(3 * HEADER_LEN);
                    proto::encode_stream_end(RecordType::Stdout, id, &mut out);
                    proto::encode_end_request(id, EndRequest::complete(0), &mut out);
                    out
                }
                // §6.1: PARAMS come first; a web server that breaks this cannot be followed.
                RecordType::Stdin | RecordType::Data => return None,
                _ => continue,
            };
            pending = None;
            conn.send(&refusal).ok()?;
            if !keep_conn {
                conn.close_lingering();
                return None;
            }
        }
    }
}

/// An I/O error carrying a [`listen::Error`] as its source.
fn listen_error(e: listen::Error) -> io::Error {
    let kind = e
        .io_error()
        .map_or(io::ErrorKind::InvalidInput, io::Error::kind);
    io::Error::new(kind, e)
}

/// A request whose `BEGIN_REQUEST` arrived and whose `PARAMS` are being read.
struct Pending {
    id: u16,
    role: Role,
    keep_conn: bool,
    decoder: ParamsDecoder,
}

/// A request whose `PARAMS` are complete.
struct Begun {
    id: u16,
    role: Role,
    keep_conn: bool,
    params: Params,
}

/// The `FCGI_MAX_CONNS` and `FCGI_MAX_REQS` a listener answers.
#[derive(Debug, Clone, Copy)]
struct Limits {
    conns: usize,
    reqs: usize,
}

/// The answer to a management record (request id 0, §4).
fn management_reply(record_type: RecordType, content: &[u8], limits: Limits) -> Vec<u8> {
    let mut out = Vec::new();
    if record_type != RecordType::GetValues {
        proto::encode_unknown_type(UnknownType { record_type }, &mut out);
        return out;
    }
    let max_conns = limits.conns.to_string();
    let max_reqs = limits.reqs.to_string();
    let mut answers: Vec<(&[u8], &[u8])> = Vec::with_capacity(3);
    for name in proto::decode_get_values(content).map_while(Result::ok) {
        let value: &[u8] = match name {
            proto::MAX_CONNS => max_conns.as_bytes(),
            proto::MAX_REQS => max_reqs.as_bytes(),
            // One request per connection at a time.
            proto::MPXS_CONNS => b"0",
            // §4.1: names the application does not know are left out.
            _ => continue,
        };
        if !answers.iter().any(|&(known, _)| known == name) {
            answers.push((name, value));
        }
    }
    if proto::encode_get_values_result(&answers, &mut out).is_err() {
        // Three short answers always fit one record; answer nothing rather than too much.
        out.clear();
        proto::encode_stream_end(RecordType::GetValuesResult, NULL_REQUEST_ID, &mut out);
    }
    out
}

/// An `END_REQUEST` record.
fn end_request(id: u16, app_status: u32, protocol_status: ProtocolStatus) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * HEADER_LEN);
    let body = EndRequest {
        app_status,
        protocol_status,
    };
    proto::encode_end_request(id, body, &mut out);
    out
}

/// A whole response the library sends for a request it refuses: `status` as a short text page,
/// then the end of `STDOUT` and `END_REQUEST`.
fn refusal(id: u16, status: u16) -> Vec<u8> {
    let reason = match status {
        431 => "Request Header Fields Too Large",
        _ => "Bad Request",
    };
    let body = format!("{reason}\n");
    let response = format!(
        "Status: {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut out = Vec::with_capacity(response.len() + 4 * HEADER_LEN);
    proto::encode_stream_data(RecordType::Stdout, id, response.as_bytes(), &mut out);
    proto::encode_stream_end(RecordType::Stdout, id, &mut out);
    proto::encode_end_request(id, EndRequest::complete(0), &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Acceptors and kept connections
// ---------------------------------------------------------------------------------------------

/// One thread's accept loop on a [`Listener`]: libfcgi's `FCGX_Request` after
/// `FCGX_InitRequest`, with [`Acceptor::accept`] as `FCGX_Accept_r`.
///
/// A connection the web server asked to keep (`FCGI_KEEP_CONN`) waits with the listener, for
/// any thread's `accept` (see the [module docs](self)); the acceptor itself holds one only when
/// its next request was read with the last one, and its next `accept` serves that first.
/// Dropping the acceptor closes such a connection. Make one per thread:
///
/// ```no_run
/// # fn serve(listener: &gatekit_fastcgi::sdk::Listener) -> std::io::Result<()> {
/// let mut acceptor = listener.acceptor();
/// while let Some(mut req) = acceptor.accept()? {
///     req.stdout().write_all(b"Content-Type: text/plain\r\n\r\nhello\n")?;
///     req.finish(0)?;
/// }
/// # Ok(())
/// # }
/// # use std::io::Write;
/// ```
#[derive(Debug)]
pub struct Acceptor<'l> {
    listener: &'l Listener,
    kept: Option<Conn>,
    _seat: Seat,
}

impl<'l> Acceptor<'l> {
    /// Waits for the next request: the one already read on this acceptor's kept connection if
    /// there is one, else the first to come on an idle kept connection or a new connection
    /// from the listener. Returns once the request's `PARAMS` are complete; its
    /// `STDIN` is read as the application reads [`Request::stdin`]. Management records, unknown
    /// roles, multiplexing attempts and malformed connections are dealt with inside (see the
    /// [module docs](self)).
    ///
    /// Returns `Ok(None)` once [`Listener::shutdown`] was called.
    ///
    /// # Errors
    ///
    /// `accept(2)` failed for a reason other than a transient one (those are retried after a
    /// short pause): the listener itself is broken.
    pub fn accept(&mut self) -> io::Result<Option<Request<'_>>> {
        let kept = self.kept.take();
        let Some((conn, begun)) = self.listener.next_request(kept)? else {
            return Ok(None);
        };
        Ok(Some(Request::new(
            conn,
            begun,
            self.listener,
            Home::Acceptor(&mut self.kept),
        )))
    }

    /// The listener this acceptor takes connections from.
    #[must_use]
    pub fn listener(&self) -> &'l Listener {
        self.listener
    }

    /// Whether this acceptor holds a kept connection with its next request read already (or
    /// begun), for the next `accept`. Idle kept connections wait with the listener instead.
    #[must_use]
    pub fn has_kept_connection(&self) -> bool {
        self.kept.is_some()
    }
}

/// Counts one accepting thread on a listener for as long as it lives.
#[derive(Debug)]
struct Seat(Arc<AtomicUsize>);

impl Seat {
    fn new(threads: &Arc<AtomicUsize>) -> Seat {
        threads.fetch_add(1, Ordering::Relaxed);
        Seat(Arc::clone(threads))
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What [`Listener::accept`] keeps per thread and listener.
struct ThreadSlot {
    listener: u64,
    conn: Option<Conn>,
    _seat: Seat,
}

thread_local! {
    /// The kept connections of the threads that use [`Listener::accept`]; closed when the
    /// thread exits.
    static THREAD_SLOTS: RefCell<Vec<ThreadSlot>> = const { RefCell::new(Vec::new()) };
}

/// Where a request's kept connection goes when its next request is read already: back to the
/// thread's loop. (One with nothing buffered waits with the listener, [`Listener::park`].)
enum Home<'a> {
    Acceptor(&'a mut Option<Conn>),
    Thread { listener: u64, thread: ThreadId },
}

impl Home<'_> {
    fn put(&mut self, conn: Conn, listener: &Listener) {
        if conn.buffered().is_empty() {
            // Refused (too many idle already): closed; the web server opens another when it
            // needs one.
            let _ = listener.park(conn);
            return;
        }
        match self {
            Home::Acceptor(slot) => **slot = Some(conn),
            Home::Thread { listener, thread } => {
                if thread::current().id() != *thread {
                    // Finished on another thread: the accepting thread cannot get it back, so
                    // it is closed; the web server opens another.
                    return;
                }
                let listener = *listener;
                // Ignored: while the thread is being torn down its slots are gone, and the
                // connection (moved into the closure) is closed instead.
                let _ = THREAD_SLOTS.try_with(move |slots| {
                    if let Ok(mut slots) = slots.try_borrow_mut() {
                        if let Some(slot) = slots.iter_mut().find(|s| s.listener == listener) {
                            slot.conn = Some(conn);
                        }
                    }
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

/// Where a record's content lies in a connection's read buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }

    fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A record read from a connection; its content stays in the read buffer until the next record
/// is read.
#[derive(Debug, Clone, Copy)]
struct RawRecord {
    record_type: RecordType,
    request_id: u16,
    content: Span,
}

/// Reads from `stream` into the free capacity of `buf` and appends what it read (0 at the end of
/// input). The bytes are not zeroed first: a new connection's buffer costs an allocation and
/// nothing more. With `wait`, waits as a blocking read does (the socket's read timeout
/// applies); without, reads only what has arrived (`MSG_DONTWAIT`: the socket itself stays
/// blocking), [`io::ErrorKind::WouldBlock`] when nothing has.
fn recv_into(stream: &Stream, buf: &mut Vec<u8>, wait: bool) -> io::Result<usize> {
    let flags = if wait {
        rustix::net::RecvFlags::empty()
    } else {
        rustix::net::RecvFlags::DONTWAIT
    };
    rustix::net::recv(stream, rustix::buffer::spare_capacity(buf), flags)
        .map(|(n, _)| n)
        .map_err(io::Error::from)
}

/// A connection to a web server with its read buffer.
struct Conn {
    stream: Stream,
    /// Bytes read (its capacity is the buffer's size); those from `start` on are not consumed
    /// yet and begin at a record boundary.
    buf: Vec<u8>,
    start: usize,
    /// The web server closed its side.
    eof: bool,
    /// No request has begun on it yet.
    fresh: bool,
    /// Its registration with the idle set, from when it was parked there before (it stays in
    /// the epoll set until it is closed).
    registration: Option<u32>,
}

impl std::os::fd::AsFd for Conn {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("stream", &self.stream)
            .field("buffered", &self.unread())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl Conn {
    fn new(stream: Stream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            start: 0,
            eof: false,
            fresh: true,
            registration: None,
        }
    }

    /// How many bytes are read and not consumed.
    fn unread(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The bytes read and not consumed.
    fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// The bytes of `span`.
    fn bytes(&self, span: Span) -> &[u8] {
        self.buf.get(span.start..span.end).unwrap_or_default()
    }

    /// Reads until `need` (at most [`MAX_RECORD_LEN`]) unconsumed bytes are buffered; false if
    /// the web server closed the connection first. Without `wait`, reads only what has arrived
    /// and fails with [`io::ErrorKind::WouldBlock`] when that is not enough. May move the
    /// unconsumed bytes to the front of the buffer: spans of earlier records are invalid
    /// afterwards.
    fn fill(&mut self, need: usize, wait: bool) -> io::Result<bool> {
        if self.unread() >= need {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        if self.start.saturating_add(need) > self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
            if need > self.buf.capacity() {
                let size = need
                    .max(self.buf.capacity().saturating_mul(2))
                    .clamp(FIRST_READ_BUFFER, MAX_RECORD_LEN);
                if size < need {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "FastCGI record longer than the protocol allows",
                    ));
                }
                self.buf.reserve_exact(size - self.buf.len());
            }
        }
        while self.unread() < need {
            // Room for `need` from `start` was made above, so a read never gets an empty buffer
            // (whose 0 would read as the end of input).
            debug_assert!(self.buf.len() < self.buf.capacity());
            match recv_into(&self.stream, &mut self.buf, wait) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads the next record. `Ok(None)` if the web server closed the connection between
    /// records.
    ///
    /// # Errors
    ///
    /// A read error; [`io::ErrorKind::InvalidData`] for a version other than 1;
    /// [`io::ErrorKind::UnexpectedEof`] for a connection closed inside a record;
    /// [`io::ErrorKind::WouldBlock`] without `wait` when the whole record has not arrived.
    fn next_record(&mut self, wait: bool) -> io::Result<Option<RawRecord>> {
        let truncated = || {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the web server closed the connection inside a FastCGI record",
            )
        };
        if !self.fill(HEADER_LEN, wait)? {
            return if self.unread() == 0 {
                Ok(None)
            } else {
                Err(truncated())
            };
        }
        let header = match Header::decode(self.buffered()) {
            Ok(Some(header)) => header,
            Ok(None) => return Err(truncated()),
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        };
        let len = header.record_len();
        if !self.fill(len, wait)? {
            return Err(truncated());
        }
        let content_start = self.start + HEADER_LEN;
        let content = Span {
            start: content_start,
            end: content_start + usize::from(header.content_length),
        };
        self.start += len;
        Ok(Some(RawRecord {
            record_type: header.record_type,
            request_id: header.request_id,
            content,
        }))
    }

    /// Whether a whole record is buffered, so [`Conn::next_record`] returns it without reading.
    fn record_buffered(&self) -> bool {
        let buffered = self.buffered();
        matches!(Header::decode(buffered), Ok(Some(header)) if header.record_len() <= buffered.len())
    }

    /// Reads what the web server has sent, without waiting, into the buffer's free space.
    /// Moves nothing (spans stay valid).
    fn poll(&mut self) -> io::Result<()> {
        if self.eof {
            return Ok(());
        }
        if self.buf.len() == self.buf.capacity() && self.buf.capacity() < MAX_RECORD_LEN {
            let size = self
                .buf
                .capacity()
                .saturating_mul(2)
                .clamp(FIRST_READ_BUFFER, MAX_RECORD_LEN);
            self.buf.reserve_exact(size - self.buf.len());
        }
        if self.buf.len() == self.buf.capacity() {
            return Ok(());
        }
        let read = loop {
            match recv_into(&self.stream, &mut self.buf, false) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match read {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Whether the complete records buffered and not yet consumed hold an `ABORT_REQUEST` for
    /// `id`.
    fn abort_buffered(&self, id: u16) -> bool {
        let mut rest = self.buffered();
        while let Ok(Some(header)) = Header::decode(rest) {
            if header.record_type == RecordType::AbortRequest && header.request_id == id {
                return true;
            }
            match rest.get(header.record_len()..) {
                Some(next) => rest = next,
                None => return false,
            }
        }
        false
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one record whose content is `content` (at most 65,535 bytes), without copying it.
    fn send_record(&mut self, record_type: RecordType, id: u16, content: &[u8]) -> io::Result<()> {
        let (header, padding) =
            proto::record_header(record_type, id, content.len()).map_err(io::Error::other)?;
        let mut slices = [
            IoSlice::new(&header),
            IoSlice::new(content),
            IoSlice::new(padding),
        ];
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.stream.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Closes the connection after letting the web server finish sending (for at most
    /// [`LINGER`]), so that input left unread does not make the kernel reset the connection
    /// before the web server has read the response.
    fn close_lingering(mut self) {
        // Ignored: if the peer is already gone there is nothing left to tell it.
        let _ = self.stream.shutdown(Shutdown::Write);
        if self.eof {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut scratch = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// How many bytes an input stream declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// No length given: the stream ends with its empty record.
    Any,
    /// `CONTENT_LENGTH` or `FCGI_DATA_LENGTH`.
    Exactly(u64),
}

/// Why an input stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputError {
    /// More bytes than declared.
    TooLong,
    /// The stream ended before the declared length.
    TooShort,
    /// The declared length is not a number.
    BadLength,
}

/// The reading state of `STDIN` or `DATA`.
#[derive(Debug)]
struct InState {
    record_type: RecordType,
    expected: Expected,
    received: u64,
    /// Content of the current record not yet handed to the application.
    pending: Span,
    /// The empty record that ends the stream arrived.
    done: bool,
    error: Option<InputError>,
}

impl InState {
    /// A stream whose length `declared` (the parameter's value) gives, if present.
    fn new(record_type: RecordType, declared: Option<&[u8]>) -> InState {
        let (expected, error) = match declared {
            None | Some(b"") => (Expected::Any, None),
            Some(value) => match gatekit_core::util::parse_content_length(value) {
                Some(n) => (Expected::Exactly(n), None),
                None => (Expected::Any, Some(InputError::BadLength)),
            },
        };
        InState {
            record_type,
            expected,
            received: 0,
            pending: Span::default(),
            done: false,
            error,
        }
    }

    /// A stream the role does not have: it yields nothing.
    fn absent(record_type: RecordType) -> InState {
        InState {
            expected: Expected::Exactly(0),
            ..InState::new(record_type, None)
        }
    }

    /// Everything declared was handed over: reads return 0 without waiting for the empty
    /// record.
    fn complete(&self) -> bool {
        self.expected == Expected::Exactly(self.received) && self.pending.is_empty()
    }

    /// No more bytes will be handed to the application.
    fn finished(&self) -> bool {
        self.done || self.error.is_some() || self.complete()
    }

    /// Takes one record of this stream.
    fn receive(&mut self, content: Span) {
        if self.done || self.error.is_some() {
            return;
        }
        if content.is_empty() {
            self.done = true;
            if let Expected::Exactly(n) = self.expected {
                if self.received < n {
                    self.error = Some(InputError::TooShort);
                }
            }
            return;
        }
        self.received = self.received.saturating_add(content.len() as u64);
        match self.expected {
            Expected::Exactly(n) if self.received > n => self.error = Some(InputError::TooLong),
            _ => self.pending = content,
        }
    }

    fn error(&self, error: InputError) -> io::Error {
        let (stream, param) = if self.record_type == RecordType::Data {
            ("FCGI_DATA", "FCGI_DATA_LENGTH")
        } else {
            ("FCGI_STDIN", "CONTENT_LENGTH")
        };
        let message = match (error, self.expected) {
            (InputError::TooLong, _) => format!("{stream} is longer than {param}"),
            (InputError::TooShort, Expected::Exactly(n)) => format!(
                "{stream} ended after {} of the {n} bytes {param} declares",
                self.received
            ),
            (InputError::TooShort, Expected::Any) => format!("{stream} ended early"),
            (InputError::BadLength, _) => format!("{param} is not a number"),
        };
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

/// Which input stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    Stdin,
    Data,
}

/// A buffered output stream: `STDOUT` or `STDERR`.
#[derive(Debug)]
struct OutBuf {
    record_type: RecordType,
    /// Room for a record header, then the buffered content.
    buf: Vec<u8>,
    /// Content bytes held before a record is sent.
    capacity: usize,
    /// A non-empty record was sent, so the stream must be ended.
    used: bool,
}

impl OutBuf {
    fn new(record_type: RecordType, capacity: usize) -> OutBuf {
        OutBuf {
            record_type,
            buf: Vec::new(),
            capacity,
            used: false,
        }
    }

    fn content_len(&self) -> usize {
        self.buf.len().saturating_sub(HEADER_LEN)
    }

    fn write(&mut self, conn: &mut Conn, id: u16, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            // An empty record would end the stream (§3.3).
            return Ok(());
        }
        if self.content_len() + data.len() > self.capacity {
            self.flush(conn, id)?;
        }
        if data.len() >= self.capacity {
            for chunk in data.chunks(MAX_CONTENT_LEN) {
                self.used = true;
                conn.send_record(self.record_type, id, chunk)?;
            }
            return Ok(());
        }
        if self.buf.is_empty() {
            self.buf
                .reserve(HEADER_LEN + self.capacity + proto::ALIGNMENT);
            self.buf.resize(HEADER_LEN, 0);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Makes the buffered content one whole record in place; false if there is none.
    fn frame(&mut self, id: u16) -> bool {
        let len = self.content_len();
        if len == 0 {
            return false;
        }
        let Ok(header) = Header::for_content(self.record_type, id, len) else {
            return false;
        };
        if let Some(slot) = self.buf.get_mut(..HEADER_LEN) {
            slot.copy_from_slice(&header.encode());
        }
        self.buf.extend_from_slice(header.padding());
        self.used = true;
        true
    }

    /// Sends the buffered content as one record.
    fn flush(&mut self, conn: &mut Conn, id: u16) -> io::Result<()> {
        let sent = if self.frame(id) {
            conn.send(&self.buf)
        } else {
            Ok(())
        };
        self.buf.clear();
        sent
    }

    /// The buffered content as one whole record (or nothing), leaving the buffer empty.
    fn take_framed(&mut self, id: u16) -> Vec<u8> {
        if self.frame(id) {
            std::mem::take(&mut self.buf)
        } else {
            self.buf.clear();
            Vec::new()
        }
    }
}

/// A request's connection and stream state.
#[derive(Debug)]
struct Io {
    conn: Conn,
    id: u16,
    role: Role,
    stdin: InState,
    data: InState,
    stdout: OutBuf,
    stderr: OutBuf,
    limits: Limits,
    /// An `ABORT_REQUEST` for this request was read.
    aborted: bool,
    /// The connection cannot be read any more (closed by the web server, or malformed).
    closed: bool,
    /// A write failed, or the connection is out of step: it is closed at the end.
    broken: bool,
}

impl Io {
    fn input(&mut self, which: In) -> &mut InState {
        match which {
            In::Stdin => &mut self.stdin,
            In::Data => &mut self.data,
        }
    }

    /// The unread content of `which`'s current record, reading records until there is some;
    /// an empty span at the end of the stream.
    fn fill_input(&mut self, which: In) -> io::Result<Span> {
        loop {
            let state = self.input(which);
            if let Some(error) = state.error {
                return Err(state.error(error));
            }
            if !state.pending.is_empty() {
                return Ok(state.pending);
            }
            if state.done || state.complete() {
                return Ok(Span::default());
            }
            if which == In::Data && !self.stdin.finished() {
                // §6.4: DATA follows STDIN; what the application did not read of STDIN is
                // skipped.
                self.stdin.pending = Span::default();
            }
            if self.aborted {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the web server aborted the request",
                ));
            }
            if self.closed {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the web server closed the connection",
                ));
            }
            self.step()?;
        }
    }

    fn consume(&mut self, which: In, n: usize) {
        let pending = &mut self.input(which).pending;
        pending.start = pending.start.saturating_add(n).min(pending.end);
    }

    /// Reads one record and applies it. Called only when neither stream has pending content,
    /// since reading may move the buffer.
    fn step(&mut self) -> io::Result<()> {
        let record = match self.conn.next_record(true) {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.closed = true;
                return Ok(());
            }
            Err(e) => {
                self.closed = true;
                self.broken = true;
                return Err(e);
            }
        };
        let id = record.request_id;
        if id == NULL_REQUEST_ID {
            let reply = management_reply(
                record.record_type,
                self.conn.bytes(record.content),
                self.limits,
            );
            return self.send(&reply);
        }
        if id != self.id {
            if record.record_type == RecordType::BeginRequest {
                // §5.5: one request at a time on a connection.
                return self.send(&end_request(id, 0, ProtocolStatus::CantMpxConn));
            }
            // §3.3: records for an inactive id are ignored.
            return Ok(());
        }
        match record.record_type {
            RecordType::AbortRequest => self.aborted = true,
            RecordType::Stdin => self.stdin.receive(record.content),
            RecordType::Data if self.role == Role::Filter && self.stdin.finished() => {
                self.data.receive(record.content);
            }
            // A repeated BEGIN_REQUEST or PARAMS, DATA out of place, or types only an
            // application sends: nothing to act on.
            _ => {}
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.send(bytes).inspect_err(|_| self.broken = true)
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection to the web server failed",
            ));
        }
        Ok(())
    }

    fn write(&mut self, which: RecordType, data: &[u8]) -> io::Result<()> {
        self.check_writable()?;
        let out = if which == RecordType::Stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        out.write(&mut self.conn, self.id, data)
            .inspect_err(|_| self.broken = true)
    }

    fn flush(&mut self, which: RecordType) -> io::Result<()> {
        self.check_writable()?;
        let out = if which == RecordType::Stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        out.flush(&mut self.conn, self.id)
            .inspect_err(|_| self.broken = true)
    }

    /// Whether the request's input streams were read to their empty records.
    fn input_done(&self) -> bool {
        self.stdin.done && (self.role != Role::Filter || self.data.done)
    }

    /// Skips the input the application left unread among the records already read, without
    /// waiting for more. When the web server sent the whole request at once (a `GET` from
    /// nginx), the input is then done and the connection closes at once, with no lingering.
    fn skip_buffered_input(&mut self) {
        while !self.input_done() && !self.closed && !self.broken && self.conn.record_buffered() {
            self.stdin.pending = Span::default();
            self.data.pending = Span::default();
            if self.step().is_err() {
                return;
            }
        }
    }

    /// Whether the web server asked to abort or went away, looking at the socket without
    /// waiting.
    fn abort_requested(&mut self) -> bool {
        if !(self.aborted || self.closed || self.conn.eof) {
            if self.conn.poll().is_err() {
                self.closed = true;
            }
            if self.conn.abort_buffered(self.id) {
                self.aborted = true;
            }
        }
        self.aborted || self.closed || self.conn.eof
    }

    /// Sends what is buffered, the ends of the streams and `END_REQUEST`, in one write.
    fn end(&mut self, app_status: u32) -> io::Result<()> {
        self.check_writable()?;
        let mut out = self.stdout.take_framed(self.id);
        out.extend_from_slice(&self.stderr.take_framed(self.id));
        out.reserve(3 * HEADER_LEN + proto::BODY_LEN);
        // §6.1: STDOUT is always ended, even if nothing was written; STDERR only if used.
        proto::encode_stream_end(RecordType::Stdout, self.id, &mut out);
        if self.stderr.used {
            proto::encode_stream_end(RecordType::Stderr, self.id, &mut out);
        }
        proto::encode_end_request(self.id, EndRequest::complete(app_status), &mut out);
        self.send(&out)
    }
}

/// One FastCGI request, from [`Acceptor::accept`] or [`Listener::accept`]: its parameters,
/// input streams and output streams (libfcgi's `FCGX_Request` between `FCGX_Accept_r` and
/// `FCGX_Finish_r`).
///
/// End it with [`Request::finish`]; dropping it unfinished finishes it with application status
/// 1, so the web server always gets an `END_REQUEST` (or sees the connection close).
pub struct Request<'a> {
    id: u16,
    role: Role,
    keep_conn: bool,
    params: Params,
    /// `None` only once finished.
    io: Option<Io>,
    home: Home<'a>,
    listener: &'a Listener,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("keep_conn", &self.keep_conn)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl<'a> Request<'a> {
    fn new(conn: Conn, begun: Begun, listener: &'a Listener, home: Home<'a>) -> Request<'a> {
        let Begun {
            id,
            role,
            keep_conn,
            params,
        } = begun;
        let stdin = match role {
            // §6.3: an Authorizer gets no body.
            Role::Authorizer => InState::absent(RecordType::Stdin),
            _ => InState::new(RecordType::Stdin, params.content_length()),
        };
        let data = match role {
            Role::Filter => InState::new(RecordType::Data, params.get(b"FCGI_DATA_LENGTH")),
            _ => {
                let mut data = InState::absent(RecordType::Data);
                data.done = true;
                data
            }
        };
        let capacity = listener.config.record_buffer();
        let io = Io {
            conn,
            id,
            role,
            stdin,
            data,
            stdout: OutBuf::new(RecordType::Stdout, capacity),
            stderr: OutBuf::new(RecordType::Stderr, capacity),
            limits: listener.limits(),
            aborted: false,
            closed: false,
            broken: false,
        };
        Request {
            id,
            role,
            keep_conn,
            params,
            io: Some(io),
            home,
            listener,
        }
    }

    /// The request id (§3.3).
    #[must_use]
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The role: [`Role::Responder`], [`Role::Authorizer`] or [`Role::Filter`] (unknown roles
    /// are refused before a request is returned).
    #[must_use]
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the web server asked to keep the connection (`FCGI_KEEP_CONN`, §3.5).
    #[must_use]
    pub fn keep_conn(&self) -> bool {
        self.keep_conn
    }

    /// Every parameter, byte-exact, in the order sent (duplicates kept): `params().get(b"NAME")`
    /// and `params().iter()`.
    #[must_use]
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The value of the parameter `name` (`FCGX_GetParam`), as bytes; the last one if it was
    /// sent twice.
    #[must_use]
    pub fn param(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        self.params.get(name.as_ref())
    }

    /// The value of the parameter `name` if it is valid UTF-8.
    #[must_use]
    pub fn param_str(&self, name: impl AsRef<[u8]>) -> Option<&str> {
        self.param(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The request body, `STDIN` (libfcgi's `in` stream, `FCGX_GetStr`): records are read from
    /// the connection as this is read. It yields at most `CONTENT_LENGTH` bytes (nothing for an
    /// Authorizer); see [`Input`] for its errors.
    pub fn stdin(&mut self) -> Input<'_> {
        Input {
            io: self.io.as_mut(),
            which: In::Stdin,
        }
    }

    /// A Filter's second input stream, `DATA` (§6.4), at most `FCGI_DATA_LENGTH` bytes. It
    /// follows `STDIN`: reading it skips whatever of `STDIN` was not read. Empty for the other
    /// roles.
    pub fn data(&mut self) -> Input<'_> {
        Input {
            io: self.io.as_mut(),
            which: In::Data,
        }
    }

    /// The response, `STDOUT` (libfcgi's `out` stream, `FCGX_PutStr`): a CGI response, headers
    /// (`Status:`, `Content-Type:`, ...), a blank line, the body.
    pub fn stdout(&mut self) -> Output<'_> {
        Output {
            io: self.io.as_mut(),
            which: RecordType::Stdout,
        }
    }

    /// `STDERR` (libfcgi's `err` stream): text for the web server's error log.
    pub fn stderr(&mut self) -> Output<'_> {
        Output {
            io: self.io.as_mut(),
            which: RecordType::Stderr,
        }
    }

    /// Sends what `STDOUT` and `STDERR` hold (`FCGX_FFlush` on both).
    ///
    /// # Errors
    ///
    /// The write error; the connection is closed at [`Request::finish`] then.
    pub fn flush(&mut self) -> io::Result<()> {
        let io = self.io.as_mut().ok_or_else(finished)?;
        io.flush(RecordType::Stderr)?;
        io.flush(RecordType::Stdout)
    }

    /// Whether the web server asked to abort this request (`ABORT_REQUEST`, §5.4) or closed the
    /// connection. Looks at what has arrived without waiting (one system call). The
    /// application should stop early and still call [`Request::finish`].
    pub fn abort_requested(&mut self) -> bool {
        self.io.as_mut().is_none_or(Io::abort_requested)
    }

    /// Ends the request (`FCGX_Finish_r`): sends what is buffered, the empty `STDOUT` record
    /// (and the empty `STDERR` record if `STDERR` was used) and `END_REQUEST` with `app_status`
    /// (the CGI exit status: 0 for success) and `FCGI_REQUEST_COMPLETE`. A connection the web
    /// server asked to keep waits for its next request with the listener (see the
    /// [module docs](self)); any other is closed.
    ///
    /// # Errors
    ///
    /// The write error (the web server went away); the connection is closed.
    pub fn finish(mut self, app_status: u32) -> io::Result<()> {
        self.finish_inner(app_status)
    }

    fn finish_inner(&mut self, app_status: u32) -> io::Result<()> {
        let Some(mut io) = self.io.take() else {
            return Ok(());
        };
        let ended = io.end(app_status);
        let reusable = ended.is_ok() && self.keep_conn && !io.broken && !io.closed;
        if reusable && !io.conn.eof {
            // The end of STDIN often arrived with the request: skipped here, so that the
            // connection has nothing buffered and waits with the listener.
            io.skip_buffered_input();
            self.home.put(io.conn, self.listener);
        } else if ended.is_ok() && !io.input_done() {
            io.skip_buffered_input();
            if !io.input_done() {
                io.conn.close_lingering();
            }
        }
        ended
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        if self.io.is_some() {
            // Ignored: drop cannot report it, and a failed write means the web server is gone;
            // the closed connection tells it what it needs to know.
            let _ = self.finish_inner(1);
        }
    }
}

fn finished() -> io::Error {
    io::Error::other("the request is finished")
}

/// A request's input stream, `STDIN` or `DATA`: [`Read`] and [`BufRead`], reading records from
/// the connection on demand (from [`Request::stdin`] and [`Request::data`]).
///
/// Management records and records for other request ids that arrive meanwhile are dealt with
/// as [`Acceptor::accept`] does.
///
/// # Errors
///
/// Reads fail with [`io::ErrorKind::InvalidData`] when the stream is longer than its declared
/// length, ends before it, or the declared length is not a number;
/// [`io::ErrorKind::ConnectionAborted`] after an `ABORT_REQUEST`;
/// [`io::ErrorKind::UnexpectedEof`] when the web server closed the connection first.
#[derive(Debug)]
pub struct Input<'r> {
    io: Option<&'r mut Io>,
    which: In,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let Some(io) = self.io.as_deref_mut() else {
            return Ok(&[]);
        };
        let span = io.fill_input(self.which)?;
        Ok(io.conn.bytes(span))
    }

    fn consume(&mut self, amt: usize) {
        if let Some(io) = self.io.as_deref_mut() {
            io.consume(self.which, amt);
        }
    }
}

/// A request's output stream, `STDOUT` or `STDERR`: [`Write`], framed into records of the
/// stream's type and buffered (from [`Request::stdout`] and [`Request::stderr`]).
///
/// `flush` sends what is buffered as one record. A write error marks the connection broken:
/// later writes fail too, and [`Request::finish`] closes it.
#[derive(Debug)]
pub struct Output<'r> {
    io: Option<&'r mut Io>,
    which: RecordType,
}

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let io = self.io.as_deref_mut().ok_or_else(finished)?;
        io.write(self.which, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let io = self.io.as_deref_mut().ok_or_else(finished)?;
        io.flush(self.which)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_thread_friendly() {
        fn sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        sync::<Listener>();
        send::<Acceptor<'static>>();
        send::<Request<'static>>();
        sync::<Config>();
    }

    #[test]
    fn get_values_answers_known_names_once() {
        let mut query = Vec::new();
        proto::encode_get_values(
            &[
                proto::MAX_CONNS,
                b"OTHER",
                proto::MPXS_CONNS,
                proto::MAX_CONNS,
            ],
            &mut query,
        )
        .unwrap();
        let (record, _) = proto::decode_record(&query).unwrap().unwrap();
        let limits = Limits { conns: 4, reqs: 2 };
        let reply = management_reply(RecordType::GetValues, record.content, limits);
        let (answer, used) = proto::decode_record(&reply).unwrap().unwrap();
        assert_eq!(used, reply.len());
        assert_eq!(answer.record_type, RecordType::GetValuesResult);
        let pairs: Vec<_> = proto::pairs(answer.content).map(Result::unwrap).collect();
        assert_eq!(
            pairs,
            [(proto::MAX_CONNS, &b"4"[..]), (proto::MPXS_CONNS, b"0")]
        );
        let unknown = management_reply(RecordType::Unknown(42), b"", limits);
        assert_eq!(
            unknown,
            b"\x01\x0b\x00\x00\x00\x08\x00\x00\x2a\0\0\0\0\0\0\0"
        );
    }

    #[test]
    fn input_state_bounds_the_stream() {
        let mut s = InState::new(RecordType::Stdin, Some(b"5"));
        s.receive(Span { start: 0, end: 3 });
        assert_eq!(s.pending.len(), 3);
        s.pending = Span::default();
        assert!(!s.complete());
        s.receive(Span { start: 0, end: 3 });
        assert_eq!(s.error, Some(InputError::TooLong));
        assert!(s.finished());

        let mut s = InState::new(RecordType::Stdin, Some(b"5"));
        s.receive(Span { start: 0, end: 2 });
        s.pending = Span::default();
        s.receive(Span::default());
        assert_eq!(s.error, Some(InputError::TooShort));
        assert_eq!(
            s.error(InputError::TooShort).to_string(),
            "FCGI_STDIN ended after 2 of the 5 bytes CONTENT_LENGTH declares"
        );

        let s = InState::new(RecordType::Data, Some(b"x1"));
        assert_eq!(s.error, Some(InputError::BadLength));
        assert!(InState::new(RecordType::Stdin, Some(b"0")).complete());
        assert!(!InState::new(RecordType::Stdin, None).complete());
    }

    #[test]
    fn refusal_is_a_whole_response() {
        let wire = refusal(3, 431);
        let mut rest = &wire[..];
        let mut types = Vec::new();
        while let Some((record, used)) = proto::decode_record(rest).unwrap() {
            assert_eq!(record.request_id, 3);
            types.push(record.record_type);
            if record.record_type == RecordType::Stdout && !record.content.is_empty() {
                assert!(record.content.starts_with(b"Status: 431 "));
            }
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        assert_eq!(
            types,
            [
                RecordType::Stdout,
                RecordType::Stdout,
                RecordType::EndRequest
            ]
        );
    }
}
