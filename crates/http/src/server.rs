//! The HTTP/1.x origin server: `wsgiref.simple_server`, on gatekit's engine.
//!
//! The I/O side parses the head ([`crate::proto`]) and spools the body
//! (memory, then a temp file), so the app is called only once its request
//! is complete; the core [`Gateway`] with [`Config::origin`] writes the
//! response (status line, `Date`, `Server`, `Content-Length` or chunked
//! framing, `Connection`). Keep-alive and pipelining follow the request's
//! framing; anything the codec refuses is answered with its status and the
//! connection is closed.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use gatekit_core::util::format_u64;
use gatekit_core::{App, Config, Environ, Gateway, Status, Transport, format_date_time};
use gatekit_server::Endpoint;
use gatekit_server::engine::{Conn, EngineConfig, Next, Protocol, Shutdown};
use gatekit_server::listen::{self, Addr, ListenOptions, Listener, Peer};
use gatekit_server::spool::{Spool, SpoolConfig, SpooledBody};
use gatekit_server::stdio::ProcessStderr;

use crate::proto::{self, ChunkedDecoder, Decoded, Framing, Limits, RequestHead};

/// Everything the HTTP server can be told, with safe defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The gateway policy ([`Config::origin`]: HTTP/1.1, `Server: gatekit/…`).
    pub gateway: Config,
    /// Request head limits (431, 414).
    pub limits: Limits,
    /// Request body spooling and its size limit (413).
    pub spool: SpoolConfig,
    /// Threads, connections and timeouts.
    pub engine: EngineConfig,
    /// Listening socket options (backlog, Unix socket mode).
    pub listen: ListenOptions,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let mut gateway = Config::origin();
        gateway.multithread = true;
        gateway.multiprocess = false;
        ServerConfig {
            gateway,
            limits: Limits::default(),
            spool: SpoolConfig::default(),
            engine: EngineConfig::default(),
            listen: ListenOptions::default(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be parsed or bound.
    Listen(listen::Error),
    /// The engine could not start.
    Io(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Listen(e) => e.fmt(f),
            Error::Io(e) => write!(f, "cannot start the server: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Listen(e) => e.source(),
            Error::Io(e) => Some(e),
        }
    }
}

/// An HTTP server for one app (`wsgiref.simple_server.WSGIServer`).
#[derive(Debug)]
pub struct Server<A> {
    app: Arc<A>,
    endpoint: Endpoint,
    config: ServerConfig,
}

/// Binds `addr` (`HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd:N`) and makes a
/// server for `app` with the default configuration (`make_server`).
///
/// # Errors
/// The address is malformed or cannot be bound.
pub fn make_server<A: App + 'static>(addr: &str, app: A) -> Result<Server<A>, Error> {
    Server::bind(addr, app, ServerConfig::default())
}

impl<A: App + 'static> Server<A> {
    /// Binds `addr` and makes a server for `app`.
    ///
    /// # Errors
    /// The address is malformed or cannot be bound.
    pub fn bind(addr: &str, app: A, config: ServerConfig) -> Result<Server<A>, Error> {
        let endpoint = Endpoint::bind(addr, &config.listen).map_err(Error::Listen)?;
        Ok(Server {
            app: Arc::new(app),
            endpoint,
            config,
        })
    }

    /// A server on listeners made elsewhere (inherited, socket activation).
    pub fn from_listeners(listeners: Vec<Listener>, app: A, config: ServerConfig) -> Server<A> {
        Server {
            app: Arc::new(app),
            endpoint: Endpoint::new(listeners),
            config,
        }
    }

    /// Where the server listens.
    #[must_use]
    pub fn local_addrs(&self) -> Vec<Addr> {
        self.endpoint.local_addrs()
    }

    /// A handle that stops [`serve_forever`](Server::serve_forever) gracefully.
    #[must_use]
    pub fn shutdown_handle(&self) -> Shutdown {
        self.endpoint.shutdown_handle()
    }

    /// Serves until the shutdown handle is triggered, then lets in-flight
    /// requests finish (`serve_forever`).
    ///
    /// # Errors
    /// The engine could not start.
    pub fn serve_forever(self) -> Result<(), Error> {
        let protocol = Http {
            app: self.app,
            gateway: Arc::new(self.config.gateway),
            limits: self.config.limits,
            spool: self.config.spool,
            shutdown: self.endpoint.shutdown_handle(),
        };
        self.endpoint
            .serve(protocol, self.config.engine)
            .map_err(Error::Io)
    }
}

struct Http<A> {
    app: Arc<A>,
    gateway: Arc<Config>,
    limits: Limits,
    spool: SpoolConfig,
    shutdown: Shutdown,
}

/// Per-connection state: the server-side CGI variables are formatted once
/// per connection, not per request.
struct Session {
    state: State,
    server_name: Vec<u8>,
    server_port: Vec<u8>,
    /// `REMOTE_ADDR` and `REMOTE_PORT` of a TCP peer.
    remote: Option<(Vec<u8>, Vec<u8>)>,
}

enum State {
    Head,
    Body(Box<Pending>),
}

/// A request whose head is parsed and whose body is arriving.
struct Pending {
    head: RequestHead,
    spool: Spool,
    chunked: Option<ChunkedDecoder>,
    remaining: u64,
}

impl<A: App + 'static> Protocol for Http<A> {
    type Session = Session;

    fn session(&self, peer: &Peer, conn: &Conn) -> Session {
        let local = match conn.stream() {
            listen::Stream::Tcp(s) => s.local_addr().ok(),
            listen::Stream::Unix(_) => None,
        };
        Session {
            state: State::Head,
            server_name: local.map_or_else(
                || b"localhost".to_vec(),
                |a| a.ip().to_string().into_bytes(),
            ),
            server_port: local
                .map_or_else(|| b"80".to_vec(), |a| a.port().to_string().into_bytes()),
            remote: match peer {
                Peer::Tcp(a) => Some(remote_vars(a)),
                Peer::Unix => None,
            },
        }
    }

    fn on_input(&self, session: &mut Session, conn: &mut Conn) -> Next {
        loop {
            match &mut session.state {
                State::Head => {
                    if conn.input().is_empty() {
                        return Next::Idle;
                    }
                    let (head, used) = match proto::parse_head(conn.input(), &self.limits) {
                        Ok(Some(parsed)) => parsed,
                        Ok(None) => return Next::Continue,
                        Err(e) => return self.refuse(conn, e.status()),
                    };
                    conn.consume(used);
                    let (expected, chunked) = match head.framing() {
                        Framing::None => (Some(0), None),
                        Framing::Length(n) => (Some(n), None),
                        Framing::Chunked => (None, Some(ChunkedDecoder::new(&self.limits))),
                    };
                    let spool = match Spool::new(expected, &self.spool) {
                        Ok(spool) => spool,
                        Err(e) if e.is_too_large() => return self.refuse(conn, 413),
                        Err(_) => return self.refuse(conn, 500),
                    };
                    if head.expect_continue() && expected != Some(0) {
                        // Sent up front: the body is read by the I/O side,
                        // before the app runs.
                        if conn
                            .write(b"HTTP/1.1 100 Continue\r\n\r\n")
                            .and_then(|()| conn.flush())
                            .is_err()
                        {
                            return Next::Close;
                        }
                    }
                    if expected == Some(0) {
                        // No body (most requests): nothing to spool.
                        if !self.run(session, conn, &head, None) {
                            return Next::Close;
                        }
                        continue;
                    }
                    let remaining = expected.unwrap_or(0);
                    session.state = State::Body(Box::new(Pending {
                        head,
                        spool,
                        chunked,
                        remaining,
                    }));
                }
                State::Body(pending) => {
                    match Self::feed(pending, conn) {
                        Ok(true) => {}
                        Ok(false) => return Next::Continue,
                        Err(status) => return self.refuse(conn, status),
                    }
                    let State::Body(pending) = std::mem::replace(&mut session.state, State::Head)
                    else {
                        return Next::Close;
                    };
                    let Pending { head, spool, .. } = *pending;
                    let Ok(body) = spool.finish() else {
                        return self.refuse(conn, 400);
                    };
                    if !self.run(session, conn, &head, Some(body)) {
                        return Next::Close;
                    }
                }
            }
        }
    }

    fn on_timeout(&self, _session: &mut Session, conn: &mut Conn, in_request: bool) {
        if in_request {
            self.write_error(conn, 408);
        }
    }
}

impl<A: App + 'static> Http<A> {
    /// Moves body bytes from the connection into the spool; `Ok(true)` once
    /// the body is complete, `Err(status)` when it must be refused.
    fn feed(pending: &mut Pending, conn: &mut Conn) -> Result<bool, u16> {
        if let Some(decoder) = &mut pending.chunked {
            loop {
                let (consumed, done) =
                    match decoder.decode(conn.input()).map_err(proto::Error::status)? {
                        Decoded::Data { consumed, data } => {
                            pending.spool.write(data).map_err(|e| e.status())?;
                            (consumed, false)
                        }
                        Decoded::NeedMore { consumed } => {
                            conn.consume(consumed);
                            return Ok(false);
                        }
                        Decoded::Done { consumed } => (consumed, true),
                    };
                conn.consume(consumed);
                if done {
                    return Ok(true);
                }
            }
        }
        let available = conn.input().len();
        let take = usize::try_from(pending.remaining).map_or(available, |r| r.min(available));
        pending
            .spool
            .write(conn.input().get(..take).unwrap_or_default())
            .map_err(|e| e.status())?;
        conn.consume(take);
        pending.remaining -= take as u64;
        Ok(pending.remaining == 0)
    }

    /// Runs the app for a complete request (`body`: `None` when it has
    /// none); true if the connection may go on.
    fn run(
        &self,
        session: &Session,
        conn: &mut Conn,
        head: &RequestHead,
        body: Option<SpooledBody>,
    ) -> bool {
        let transport = HttpTransport {
            conn,
            head,
            session,
            input: body,
            aborted: false,
        };
        let mut gateway = Gateway::new(transport, Arc::clone(&self.gateway));
        gateway.set_keep_alive(head.keep_alive() && !self.shutdown.is_triggered());
        let outcome = gateway.run(&*self.app);
        outcome.keep_alive && !gateway.transport().aborted
    }

    fn refuse(&self, conn: &mut Conn, status: u16) -> Next {
        self.write_error(conn, status);
        Next::Close
    }

    /// A short plain-text error response, then the connection closes.
    fn write_error(&self, conn: &mut Conn, status: u16) {
        let status = Status::from_code(status).unwrap_or(Status::BAD_REQUEST);
        let body = format!("{}\n", status.reason());
        let server = self
            .gateway
            .server_software
            .as_deref()
            .map(|s| format!("Server: {s}\r\n"))
            .unwrap_or_default();
        let response = format!(
            "HTTP/1.1 {status}\r\nDate: {}\r\n{server}Content-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            format_date_time(self.gateway.clock.now()),
            body.len()
        );
        // The connection closes next either way; a failed write changes nothing.
        let _ = conn.write(response.as_bytes()).and_then(|()| conn.flush());
    }
}

/// `REMOTE_ADDR` and `REMOTE_PORT` for a TCP peer.
fn remote_vars(addr: &SocketAddr) -> (Vec<u8>, Vec<u8>) {
    (
        addr.ip().to_string().into_bytes(),
        addr.port().to_string().into_bytes(),
    )
}

/// The gateway's view of one HTTP connection.
struct HttpTransport<'c> {
    conn: &'c mut Conn,
    head: &'c RequestHead,
    session: &'c Session,
    input: Option<SpooledBody>,
    aborted: bool,
}

impl Transport for HttpTransport<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.write(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }

    fn input(&mut self) -> Box<dyn BufRead + Send> {
        SpooledBody::boxed_or_empty(self.input.take())
    }

    fn errors(&mut self) -> Box<dyn Write + Send> {
        Box::new(ProcessStderr)
    }

    fn add_cgi_vars(&mut self, environ: &mut Environ) {
        let head = self.head;
        proto::cgi_vars_into(head, environ);
        if head.framing() == Framing::Chunked {
            let len = self.input.as_ref().map_or(0, SpooledBody::len);
            let mut digits = [0u8; 20];
            environ.set_bytes("CONTENT_LENGTH", format_u64(len, &mut digits));
        }
        let session = self.session;
        environ.set_bytes("GATEWAY_INTERFACE", "CGI/1.1");
        environ.set_bytes("SCRIPT_NAME", "");
        environ.set_bytes("SERVER_NAME", &session.server_name);
        environ.set_bytes("SERVER_PORT", &session.server_port);
        if let Some((addr, port)) = &session.remote {
            environ.set_bytes("REMOTE_ADDR", addr);
            environ.set_bytes("REMOTE_PORT", port);
        }
    }

    fn flush_before_sendfile(&mut self) -> io::Result<()> {
        // `Conn::sendfile` sends the head first, in the same TCP_CORK as a
        // big file, so both leave in full-sized segments.
        Ok(())
    }

    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.conn.sendfile(file, offset, count)
    }

    fn abort(&mut self) {
        // Closing the connection is what marks the response as cut short:
        // the client sees fewer bytes than Content-Length, or no last chunk.
        self.aborted = true;
    }
}
