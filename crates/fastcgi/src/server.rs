//! The FastCGI application server, on gatekit's engine.
//!
//! The I/O side decodes records ([`crate::proto`]), collects `PARAMS`,
//! spools `STDIN` (and a Filter's `DATA`) to memory or a temp file, and
//! calls the app only once its request is complete; the core [`Gateway`]
//! with [`Config::gateway`] writes the CGI-style response (`Status:`
//! header), which this module frames into `STDOUT` records.
//!
//! What the spec leaves to the application, decided here:
//!
//! - **One request per connection at a time** (no multiplexing):
//!   `FCGI_MPXS_CONNS` is `0`, and a `BEGIN_REQUEST` for a second id while a
//!   request is being received is answered `END_REQUEST` with
//!   `FCGI_CANT_MPX_CONN` (§5.5). Concurrency comes from connections, as
//!   every web server uses FastCGI.
//! - **Roles:** Responder, Authorizer (run once `PARAMS` is complete, with
//!   no body; the app answers 200 to allow and may add `Variable-NAME:`
//!   headers), Filter (`STDIN`, then `DATA`, bounded by `FCGI_DATA_LENGTH`,
//!   read through [`FilterData`]). Any other role: `END_REQUEST` with
//!   `FCGI_UNKNOWN_ROLE`, the connection kept.
//! - **Records for an inactive request id are ignored** (§3.3), as are
//!   record types only an application sends. An unknown management type is
//!   answered `UNKNOWN_TYPE` (§4.2), and `GET_VALUES` truthfully from the
//!   configuration (§4.1). A record that cannot be framed (wrong version)
//!   closes the connection: nothing after it can be trusted.
//! - **Cancellation:** `ABORT_REQUEST`, or the web server closing the
//!   connection, while the app runs raises the flag the app reads with
//!   `Environ::is_cancelled` (checked about every 100 ms). The app decides
//!   when to stop; `END_REQUEST` follows when it returns (§5.4: "a response
//!   from the application"). An abort that arrives before the app was
//!   called ends the request at once; the app is not called.
//! - **Errors:** `wsgi.errors` goes out as `STDERR` records, so an app's log
//!   lines reach the web server's error log (or to this process's stderr,
//!   [`ErrorsTo::Process`]). A body the app cuts short after its headers
//!   went out ends with the connection closed and no `END_REQUEST`, so the
//!   web server sees the response is incomplete.
//! - **Limits:** `PARAMS` larger than [`ServerConfig::max_params`] is
//!   answered `431`; a body over the spool's `max_body` `413`; a body that
//!   does not match `CONTENT_LENGTH` `400`. The request ends there, the
//!   connection is kept, and the rest of that request's records are ignored.
//! - **Who may connect:** [`ServerConfig::web_server_addrs`], from
//!   `FCGI_WEB_SERVER_ADDRS` (§3.2) when set: IPv4, IPv6 and v4-mapped
//!   peers are compared as addresses. Unix-socket peers are always
//!   allowed (as libfcgi and php-fpm do): the socket file's permissions
//!   guard them.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use gatekit_core::{App, Config, Environ, Gateway, Transport};
use gatekit_server::Endpoint;
use gatekit_server::allow::IpNet;
use gatekit_server::engine::{Conn, EngineConfig, Next, Protocol, Shutdown};
use gatekit_server::listen::{self, Addr, ListenOptions, Listener, Peer};
use gatekit_server::offload::Offload;
use gatekit_server::spool::{Spool, SpoolConfig, SpooledBody};
use gatekit_server::stdio::ProcessStderr;

use crate::proto::{
    self, BeginRequest, EndRequest, HEADER_LEN, Header, MAX_CONTENT_LEN, NULL_REQUEST_ID, Params,
    ParamsDecoder, ProtocolStatus, Record, RecordType, Role, UnknownType,
};

/// Where `wsgi.errors` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorsTo {
    /// `FCGI_STDERR` records, to the web server's error log (the default).
    #[default]
    Fastcgi,
    /// This process's standard error.
    Process,
}

/// Everything the FastCGI server can be told, with safe defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The gateway policy ([`Config::gateway`]: `Status:` header, no status
    /// line), with `omit_status_200` on (a `200 OK` response has no `Status:`).
    pub gateway: Config,
    /// Largest `PARAMS` stream accepted, in encoded bytes (default 128 KiB;
    /// `431` beyond).
    pub max_params: usize,
    /// Request body (`STDIN`, `DATA`) spooling and its size limit (`413`).
    pub spool: SpoolConfig,
    /// Threads, connections and timeouts.
    pub engine: EngineConfig,
    /// Listening socket options (backlog, Unix socket mode). Default:
    /// [`ListenOptions::backend`] (`TCP_DEFER_ACCEPT` of 1 s).
    pub listen: ListenOptions,
    /// The web servers allowed to connect over TCP (addresses or networks);
    /// `None` allows any (default). See
    /// [`ServerConfig::with_env_web_server_addrs`]. When set, it becomes the
    /// engine's [`EngineConfig::allow`] as the server starts.
    pub web_server_addrs: Option<Vec<IpNet>>,
    /// Where `wsgi.errors` goes (default: `FCGI_STDERR` records).
    pub errors_to: ErrorsTo,
    /// Let the web server send whole-file bodies itself (`X-Sendfile`,
    /// `X-Accel-Redirect`); default `None`: gatekit sends them with
    /// `sendfile(2)`.
    pub offload: Option<Offload>,
}

/// The default [`ServerConfig::max_params`].
pub const DEFAULT_MAX_PARAMS: usize = 128 * 1024;

/// `wsgi.errors` bytes held for `STDERR` records between flushes; past it,
/// the rest goes to this process's stderr rather than grow.
const STDERR_BUFFER: usize = 64 * 1024;

/// File content per `STDOUT` record when sending with `sendfile(2)`: the
/// largest multiple of 8 in a record, so no padding is needed between them.
const FILE_RECORD: usize = MAX_CONTENT_LEN & !7;

impl Default for ServerConfig {
    fn default() -> Self {
        let mut gateway = Config::gateway();
        gateway.multithread = true;
        gateway.multiprocess = false;
        gateway.omit_status_200 = true;
        ServerConfig {
            gateway,
            max_params: DEFAULT_MAX_PARAMS,
            spool: SpoolConfig::default(),
            engine: EngineConfig::default(),
            listen: ListenOptions::backend(),
            web_server_addrs: None,
            errors_to: ErrorsTo::default(),
            offload: None,
        }
    }
}

impl ServerConfig {
    /// Takes the allow-list from `FCGI_WEB_SERVER_ADDRS` (FastCGI §3.2: a
    /// comma-separated list of addresses; IPv6 accepted too) when it is set.
    ///
    /// # Errors
    /// [`Error::WebServerAddrs`] for a value that is not such a list.
    pub fn with_env_web_server_addrs(mut self) -> Result<ServerConfig, Error> {
        if let Some(value) = std::env::var_os("FCGI_WEB_SERVER_ADDRS") {
            let value = value
                .to_str()
                .ok_or_else(|| Error::WebServerAddrs("not valid UTF-8".into()))?;
            self.web_server_addrs = Some(parse_web_server_addrs(value)?);
        }
        Ok(self)
    }
}

/// Parses a `FCGI_WEB_SERVER_ADDRS` value: addresses separated by commas
/// (spaces around them allowed). A network in CIDR form (`10.0.0.0/8`) is
/// accepted too.
///
/// # Errors
/// [`Error::WebServerAddrs`] naming the first entry that is not an address.
pub fn parse_web_server_addrs(value: &str) -> Result<Vec<IpNet>, Error> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .map_err(|_| Error::WebServerAddrs(format!("{s:?} is not an IP address")))
        })
        .collect()
}

/// Why the server could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be parsed or bound, or fd 0 is not a listener.
    Listen(listen::Error),
    /// `FCGI_WEB_SERVER_ADDRS` is malformed.
    WebServerAddrs(String),
    /// The engine could not start.
    Io(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Listen(e) => e.fmt(f),
            Error::WebServerAddrs(why) => write!(f, "FCGI_WEB_SERVER_ADDRS: {why}"),
            Error::Io(e) => write!(f, "cannot start the server: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Listen(e) => e.source(),
            Error::WebServerAddrs(_) => None,
            Error::Io(e) => Some(e),
        }
    }
}

/// A FastCGI server for one app.
#[derive(Debug)]
pub struct Server<A> {
    app: Arc<A>,
    endpoint: Endpoint,
    config: ServerConfig,
}

/// Binds `addr` (`HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd:N`) and makes a
/// FastCGI server for `app` with the default configuration.
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

    /// A server on the listening socket a web server or process manager
    /// passed as fd 0 (`FCGI_LISTENSOCK_FILENO`: mod_fcgid, spawn-fcgi).
    ///
    /// # Errors
    /// fd 0 is not a listening socket.
    pub fn from_fd0(app: A, config: ServerConfig) -> Result<Server<A>, Error> {
        let listener = Listener::from_fd0().map_err(Error::Listen)?;
        Ok(Server::from_listeners(vec![listener], app, config))
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
    /// requests finish.
    ///
    /// # Errors
    /// The engine could not start.
    pub fn serve_forever(self) -> Result<(), Error> {
        let max_conns = self.config.engine.max_connections.max(1).to_string();
        // An Authorizer's answer is read for its status by web servers
        // that may not assume 200 when it is absent: it always says it.
        let mut authorizer = self.config.gateway.clone();
        authorizer.omit_status_200 = false;
        let protocol = FastCgi {
            app: self.app,
            gateway: Arc::new(self.config.gateway),
            authorizer_gateway: Arc::new(authorizer),
            max_params: self.config.max_params,
            spool: self.config.spool,
            errors_to: self.config.errors_to,
            offload: self.config.offload,
            // One request per connection: as many requests as connections.
            max_reqs: max_conns.clone(),
            max_conns,
        };
        let mut engine = self.config.engine;
        if let Some(list) = self.config.web_server_addrs {
            engine.allow = Some(list);
        }
        self.endpoint.serve(protocol, engine).map_err(Error::Io)
    }
}

/// The `DATA` stream of a Filter request (§6.4), in the environ as an
/// extension: `environ.extension::<FilterData>()`. Read `wsgi.input`
/// (`STDIN`) first, then take this.
#[derive(Debug)]
pub struct FilterData(Mutex<Option<SpooledBody>>);

impl FilterData {
    /// The data stream (`FCGI_DATA_LENGTH` bytes); `None` once taken.
    pub fn take(&self) -> Option<SpooledBody> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

struct FastCgi<A> {
    app: Arc<A>,
    gateway: Arc<Config>,
    /// `gateway` for the Authorizer role: with `Status: 200 OK` written.
    authorizer_gateway: Arc<Config>,
    max_params: usize,
    spool: SpoolConfig,
    errors_to: ErrorsTo,
    offload: Option<Offload>,
    max_conns: String,
    max_reqs: String,
}

/// Per-connection state. Besides the request being received, it keeps
/// what one request uses and the next can use again, so that a kept
/// connection's request costs few allocations.
struct Session {
    request: Option<Request>,
    /// `STDOUT` staging, kept between requests so it is allocated once.
    staging: Vec<u8>,
    /// The `PARAMS` buffer of the last request, for the next one.
    params_buf: Vec<u8>,
    /// The cancellation flag handed to the last request's environ; reused
    /// when nothing else holds it any more.
    cancel: Arc<AtomicBool>,
    /// The `STDERR` buffer handed to the last request; reused likewise.
    stderr: Option<Arc<Mutex<Vec<u8>>>>,
}

/// Buffers larger than this are not kept between requests, so an idle
/// connection does not hold the memory of one unusual request.
const KEEP_BUFFER: usize = 16 * 1024;
/// A new connection's first `PARAMS` buffer: a web server's usual variables
/// (nginx sends about 700 bytes of them) and the few the environ adds
/// after them fit, so it is allocated once rather than grown.
const FIRST_PARAMS: usize = 2048;
/// A new connection's first `STDOUT` staging buffer: a small response's
/// head and body.
const FIRST_STAGING: usize = 512;

/// A request being received.
struct Request {
    id: u16,
    role: Role,
    keep_conn: bool,
    /// `PARAMS` named a `CONTENT_LENGTH` (even an empty one).
    has_content_length: bool,
    params: ParamsState,
    stdin: Option<Spool>,
    stdin_done: bool,
    data: Option<Spool>,
}

enum ParamsState {
    Reading(ParamsDecoder),
    Done(Params),
}

/// What a record asks of the connection.
enum Step {
    Nothing,
    /// Send these bytes (a management answer, an `END_REQUEST`).
    Reply(Vec<u8>),
    /// Send this `END_REQUEST`, then close unless the connection is kept.
    Reject(u16, ProtocolStatus, bool),
    /// Answer the request with an error status and end it.
    Refuse(u16, bool),
    /// The request was aborted before the app ran: end it.
    Aborted(u16, bool),
    /// The request is complete: run the app.
    Run,
    /// The stream cannot be trusted any more.
    Close,
}

impl<A: App + 'static> Protocol for FastCgi<A> {
    type Session = Session;

    fn session(&self, _peer: &Peer, _conn: &Conn) -> Session {
        // The allow-list is the engine's (`EngineConfig::allow`): a refused
        // peer never gets a session.
        Session {
            request: None,
            staging: Vec::new(),
            params_buf: Vec::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            stderr: None,
        }
    }

    fn recycle(&self, session: &mut Session) -> bool {
        // A request cut off by the close is dropped; what it used to
        // receive is kept, as between two requests of a kept connection.
        session.request = None;
        session.staging.clear();
        session.params_buf.clear();
        if session.staging.capacity() > KEEP_BUFFER {
            session.staging = Vec::new();
        }
        true
    }

    fn on_input(&self, session: &mut Session, conn: &mut Conn) -> Next {
        loop {
            let (step, used) = match proto::decode_record(conn.input()) {
                Ok(Some((record, used))) => (self.on_record(session, &record), used),
                Ok(None) => {
                    return if session.request.is_none() && conn.input().is_empty() {
                        Next::Idle
                    } else {
                        Next::Continue
                    };
                }
                Err(_) => return Next::Close,
            };
            conn.consume(used);
            let sent = match step {
                Step::Nothing => Ok(()),
                Step::Reply(bytes) => conn.write(&bytes).and_then(|()| conn.flush()),
                Step::Reject(id, status, keep_conn) => {
                    let mut out = Vec::with_capacity(2 * HEADER_LEN);
                    proto::encode_end_request(
                        id,
                        EndRequest {
                            app_status: 0,
                            protocol_status: status,
                        },
                        &mut out,
                    );
                    if conn.write(&out).and_then(|()| conn.flush()).is_err() || !keep_conn {
                        return Next::Close;
                    }
                    Ok(())
                }
                Step::Refuse(status, keep_conn) => {
                    let Some(request) = session.request.take() else {
                        return Next::Close;
                    };
                    if Self::refuse(conn, request.id, status).is_err() || !keep_conn {
                        return Next::Close;
                    }
                    Ok(())
                }
                Step::Aborted(id, keep_conn) => {
                    session.request = None;
                    let mut out = Vec::with_capacity(3 * HEADER_LEN);
                    proto::encode_stream_end(RecordType::Stdout, id, &mut out);
                    proto::encode_end_request(id, EndRequest::complete(0), &mut out);
                    if conn.write(&out).and_then(|()| conn.flush()).is_err() || !keep_conn {
                        return Next::Close;
                    }
                    Ok(())
                }
                Step::Run => {
                    let Some(request) = session.request.take() else {
                        return Next::Close;
                    };
                    let keep_conn = request.keep_conn;
                    if !self.run(session, conn, request) {
                        return Next::Close;
                    }
                    if !keep_conn {
                        // §3.5: without KEEP_CONN the application closes
                        // after the response; the web server sent it all.
                        return if conn.input().is_empty() {
                            Next::Done
                        } else {
                            Next::Close
                        };
                    }
                    Ok(())
                }
                Step::Close => return Next::Close,
            };
            if sent.is_err() {
                return Next::Close;
            }
        }
    }
}

impl<A: App + 'static> FastCgi<A> {
    /// Applies one record to the session's state.
    fn on_record(&self, session: &mut Session, record: &Record<'_>) -> Step {
        let id = record.request_id;
        if id == NULL_REQUEST_ID {
            return self.on_management(record);
        }
        if record.record_type == RecordType::BeginRequest {
            if let Some(active) = &session.request {
                if active.id == id {
                    // A second BEGIN_REQUEST for the active id: nothing in
                    // the spec makes it mean anything; ignore it.
                    return Step::Nothing;
                }
                return Step::Reject(id, ProtocolStatus::CantMpxConn, true);
            }
            let Ok(begin) = BeginRequest::decode(record.content) else {
                return Step::Close;
            };
            if let Role::Unknown(_) = begin.role {
                return Step::Reject(id, ProtocolStatus::UnknownRole, begin.keep_conn());
            }
            let buffer = take_or_new(&mut session.params_buf, FIRST_PARAMS.min(self.max_params));
            session.request = Some(Request {
                id,
                role: begin.role,
                keep_conn: begin.keep_conn(),
                has_content_length: false,
                params: ParamsState::Reading(ParamsDecoder::with_buffer(self.max_params, buffer)),
                stdin: None,
                stdin_done: false,
                data: None,
            });
            return Step::Nothing;
        }
        let Some(request) = session.request.as_mut().filter(|r| r.id == id) else {
            // §3.3: records for an inactive request id are ignored.
            return Step::Nothing;
        };
        let keep = request.keep_conn;
        match record.record_type {
            RecordType::AbortRequest => Step::Aborted(id, keep),
            RecordType::Params => self.on_params(request, record.content),
            RecordType::Stdin => {
                if !matches!(request.params, ParamsState::Done(_)) {
                    // §6.1: PARAMS comes first; a server that breaks this
                    // cannot be followed.
                    return Step::Close;
                }
                if request.stdin_done {
                    return Step::Nothing;
                }
                if record.content.is_empty() {
                    request.stdin_done = true;
                    if request.role != Role::Filter {
                        return Step::Run;
                    }
                    let declared = match &request.params {
                        ParamsState::Done(p) => p.get(b"FCGI_DATA_LENGTH"),
                        ParamsState::Reading(_) => None,
                    };
                    return match self.new_spool(declared) {
                        Ok(spool) => {
                            request.data = Some(spool);
                            Step::Nothing
                        }
                        Err(status) => Step::Refuse(status, keep),
                    };
                }
                match request.stdin.as_mut().map(|s| s.write(record.content)) {
                    Some(Ok(())) => Step::Nothing,
                    Some(Err(e)) => Step::Refuse(e.status(), keep),
                    None => Step::Close,
                }
            }
            RecordType::Data => {
                let Some(data) = request.data.as_mut() else {
                    // DATA only belongs to a Filter, after STDIN.
                    return Step::Nothing;
                };
                if record.content.is_empty() {
                    return Step::Run;
                }
                match data.write(record.content) {
                    Ok(()) => Step::Nothing,
                    Err(e) => Step::Refuse(e.status(), keep),
                }
            }
            // Types only an application sends, or unknown ones, on a request
            // id: not ours to act on.
            _ => Step::Nothing,
        }
    }

    fn on_management(&self, record: &Record<'_>) -> Step {
        let mut out = Vec::new();
        match record.record_type {
            RecordType::GetValues => {
                let mut answers: Vec<(&[u8], &[u8])> = Vec::with_capacity(3);
                for name in proto::decode_get_values(record.content).map_while(Result::ok) {
                    let value: &[u8] = match name {
                        proto::MAX_CONNS => self.max_conns.as_bytes(),
                        proto::MAX_REQS => self.max_reqs.as_bytes(),
                        proto::MPXS_CONNS => b"0",
                        _ => continue,
                    };
                    if !answers.iter().any(|(n, _)| *n == name) {
                        answers.push((name, value));
                    }
                }
                if proto::encode_get_values_result(&answers, &mut out).is_err() {
                    return Step::Nothing;
                }
            }
            other => proto::encode_unknown_type(UnknownType { record_type: other }, &mut out),
        }
        Step::Reply(out)
    }

    fn on_params(&self, request: &mut Request, content: &[u8]) -> Step {
        let keep = request.keep_conn;
        let ParamsState::Reading(decoder) = &mut request.params else {
            return Step::Nothing;
        };
        if !content.is_empty() {
            return match decoder.feed(content) {
                Ok(()) => Step::Nothing,
                Err(_) => Step::Refuse(431, keep),
            };
        }
        let decoder = std::mem::replace(decoder, ParamsDecoder::new(0));
        let Ok(params) = decoder.finish() else {
            return Step::Refuse(400, keep);
        };
        let content_length = params.content_length();
        request.has_content_length = content_length.is_some();
        let spool = if request.role == Role::Authorizer {
            // §6.3: an Authorizer gets no body; it runs on PARAMS alone.
            Spool::new(Some(0), &self.spool).map_err(|e| e.status())
        } else {
            self.new_spool(content_length)
        };
        request.params = ParamsState::Done(params);
        match spool {
            Ok(spool) => request.stdin = Some(spool),
            Err(status) => return Step::Refuse(status, keep),
        }
        if request.role == Role::Authorizer {
            request.stdin_done = true;
            return Step::Run;
        }
        Step::Nothing
    }

    /// A spool for a stream whose length a parameter declares (or not).
    fn new_spool(&self, declared: Option<&[u8]>) -> Result<Spool, u16> {
        let expected = match declared {
            None | Some(b"") => None,
            Some(v) => Some(gatekit_core::util::parse_content_length(v).ok_or(400_u16)?),
        };
        Spool::new(expected, &self.spool).map_err(|e| e.status())
    }

    /// Runs the app for a complete request; true if the connection may go on.
    fn run(&self, session: &mut Session, conn: &mut Conn, request: Request) -> bool {
        let Request {
            id,
            role,
            has_content_length,
            params,
            stdin,
            data,
            ..
        } = request;
        let ParamsState::Done(params) = params else {
            return false;
        };
        let body = match stdin.map(Spool::finish) {
            Some(Ok(body)) => body,
            Some(Err(e)) => return Self::refuse(conn, id, e.status()).is_ok(),
            None => return false,
        };
        let data = match data.map(Spool::finish) {
            Some(Ok(data)) => Some(data),
            Some(Err(e)) => return Self::refuse(conn, id, e.status()).is_ok(),
            None => None,
        };
        // A body sent without CONTENT_LENGTH (nginx with a chunked request
        // and fastcgi_request_buffering off) gets its real length.
        let body_len = (!has_content_length && !body.is_empty()).then(|| body.len());
        let role_name: &'static [u8] = match role {
            Role::Authorizer => b"AUTHORIZER",
            Role::Filter => b"FILTER",
            Role::Responder | Role::Unknown(_) => b"RESPONDER",
        };
        // The flag and the STDERR buffer of the last request are used again
        // when nothing else holds them (the usual case: the environ that
        // held them is gone).
        let cancel = match Arc::get_mut(&mut session.cancel) {
            Some(flag) => {
                *flag.get_mut() = false;
                Arc::clone(&session.cancel)
            }
            None => {
                session.cancel = Arc::new(AtomicBool::new(false));
                Arc::clone(&session.cancel)
            }
        };
        let _watch = conn.watch_cancel(Arc::clone(&cancel), aborts, u64::from(id));
        let stderr = match self.errors_to {
            ErrorsTo::Fastcgi => Some(reuse_stderr(&mut session.stderr)),
            ErrorsTo::Process => None,
        };
        let mut transport = FcgiTransport {
            conn,
            id,
            params: Some(params),
            params_spare: Vec::new(),
            body_len,
            role_name,
            input: Some(body),
            data,
            cancel,
            staging: take_or_new(&mut session.staging, FIRST_STAGING),
            stderr,
            stderr_used: false,
            aborted: false,
            offload: self.offload.as_ref(),
        };
        let config = if role == Role::Authorizer {
            &self.authorizer_gateway
        } else {
            &self.gateway
        };
        // The gateway borrows the transport: moving it in and out again
        // cost two copies of it per request.
        let outcome = Gateway::new(&mut transport, Arc::clone(config)).run(&*self.app);
        let ended = !transport.aborted
            && !outcome.client_gone
            && transport.end_request(u32::from(outcome.app_failed)).is_ok();
        session.staging = std::mem::take(&mut transport.staging);
        session.staging.clear();
        let buffer = match transport.params.take() {
            Some(params) => params.into_buffer(),
            None => std::mem::take(&mut transport.params_spare),
        };
        if buffer.capacity() <= KEEP_BUFFER {
            session.params_buf = buffer;
        }
        ended
    }

    /// Ends request `id` with a short error response of `status`.
    fn refuse(conn: &mut Conn, id: u16, status: u16) -> io::Result<()> {
        let response = gatekit_core::util::cgi_error_response(status);
        let mut out = Vec::with_capacity(response.len() + 4 * HEADER_LEN);
        proto::encode_stream_data(RecordType::Stdout, id, &response, &mut out);
        proto::encode_stream_end(RecordType::Stdout, id, &mut out);
        proto::encode_end_request(id, EndRequest::complete(0), &mut out);
        conn.write(&out)?;
        conn.flush()
    }
}

/// The buffer kept in `slot` from the last request (its user empties it), or,
/// on a new connection or after an unusually large one was dropped, a new
/// buffer of `first` bytes, so that it is allocated once, not grown.
fn take_or_new(slot: &mut Vec<u8>, first: usize) -> Vec<u8> {
    if slot.capacity() == 0 {
        Vec::with_capacity(first)
    } else {
        std::mem::take(slot)
    }
}

/// The `STDERR` buffer kept in `slot`, emptied, if nothing else holds it;
/// else a new one, kept there for the next request.
fn reuse_stderr(slot: &mut Option<Arc<Mutex<Vec<u8>>>>) -> Arc<Mutex<Vec<u8>>> {
    if let Some(buffer) = slot.as_mut().and_then(Arc::get_mut) {
        let pending = buffer.get_mut().unwrap_or_else(PoisonError::into_inner);
        pending.clear();
        if pending.capacity() > KEEP_BUFFER {
            *pending = Vec::new();
        }
    } else {
        *slot = Some(Arc::new(Mutex::new(Vec::new())));
    }
    slot.as_ref()
        .map_or_else(|| Arc::new(Mutex::new(Vec::new())), Arc::clone)
}

/// Reads bytes waiting on a connection as a cancellation of request `tag`:
/// an `ABORT_REQUEST` for it among the complete records there.
fn aborts(mut peeked: &[u8], tag: u64) -> bool {
    while let Ok(Some(header)) = Header::decode(peeked) {
        if header.record_type == RecordType::AbortRequest && u64::from(header.request_id) == tag {
            return true;
        }
        match peeked.get(header.record_len()..) {
            Some(rest) => peeked = rest,
            None => return false,
        }
    }
    false
}

/// The gateway's view of one FastCGI request.
struct FcgiTransport<'c> {
    conn: &'c mut Conn,
    id: u16,
    /// The request's `PARAMS`, until their buffer becomes the environ's
    /// storage for its variables.
    params: Option<Params>,
    /// The buffer the environ gave back for it, for the next request's `PARAMS`.
    params_spare: Vec<u8>,
    /// `CONTENT_LENGTH` to add: the length of a body sent without one.
    body_len: Option<u64>,
    /// `FCGI_ROLE`'s value.
    role_name: &'static [u8],
    input: Option<SpooledBody>,
    data: Option<SpooledBody>,
    cancel: Arc<AtomicBool>,
    /// `STDOUT` bytes not yet framed: small writes share a record.
    staging: Vec<u8>,
    /// `wsgi.errors` bytes waiting to go out as `STDERR` records.
    stderr: Option<Arc<Mutex<Vec<u8>>>>,
    stderr_used: bool,
    aborted: bool,
    offload: Option<&'c Offload>,
}

impl FcgiTransport<'_> {
    /// Frames the staged `STDOUT` bytes (and waiting `STDERR` bytes) into
    /// records on the connection's output, without sending.
    fn frame(&mut self) -> io::Result<()> {
        self.frame_stderr()?;
        if !self.staging.is_empty() {
            let (header, padding) =
                proto::record_header(RecordType::Stdout, self.id, self.staging.len())
                    .map_err(io::Error::other)?;
            self.conn.write(&header)?;
            self.conn.write(&self.staging)?;
            self.conn.write(padding)?;
            self.staging.clear();
        }
        Ok(())
    }

    fn frame_stderr(&mut self) -> io::Result<()> {
        let Some(stderr) = &self.stderr else {
            return Ok(());
        };
        let pending = std::mem::take(&mut *stderr.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Ok(());
        }
        self.stderr_used = true;
        let mut out = Vec::with_capacity(pending.len() + 2 * HEADER_LEN);
        proto::encode_stream_data(RecordType::Stderr, self.id, &pending, &mut out);
        self.conn.write(&out)
    }

    /// Ends the request: what is left of `STDOUT`, the streams' empty
    /// records, and `END_REQUEST`, in one write.
    fn end_request(&mut self, app_status: u32) -> io::Result<()> {
        self.frame()?;
        let mut out = [0u8; 3 * HEADER_LEN + proto::BODY_LEN];
        let mut n = 0;
        let mut push = |bytes: &[u8]| {
            if let Some(slot) = out.get_mut(n..n + bytes.len()) {
                slot.copy_from_slice(bytes);
                n += bytes.len();
            }
        };
        push(&Header::new(RecordType::Stdout, self.id, 0).encode());
        if self.stderr_used {
            push(&Header::new(RecordType::Stderr, self.id, 0).encode());
        }
        push(&Header::new(RecordType::EndRequest, self.id, proto::BODY_LEN as u16).encode());
        push(&EndRequest::complete(app_status).to_bytes());
        self.conn.write(out.get(..n).unwrap_or_default())?;
        self.conn.flush()
    }
}

impl Transport for FcgiTransport<'_> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.staging.len() + data.len() > MAX_CONTENT_LEN {
            self.frame()?;
            // Whole records straight from the caller's buffer; the tail is staged.
            while data.len() > MAX_CONTENT_LEN {
                let (record, rest) = data.split_at(MAX_CONTENT_LEN);
                let (header, padding) =
                    proto::record_header(RecordType::Stdout, self.id, record.len())
                        .map_err(io::Error::other)?;
                self.conn.write(&header)?;
                self.conn.write(record)?;
                self.conn.write(padding)?;
                data = rest;
            }
        }
        self.staging.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.frame()?;
        self.conn.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        // Held back: end_request sends it with the end-of-request records.
        self.frame()
    }

    fn input(&mut self) -> Box<dyn BufRead + Send> {
        SpooledBody::boxed_or_empty(self.input.take())
    }

    fn errors(&mut self) -> Box<dyn Write + Send> {
        match &self.stderr {
            Some(buffer) => Box::new(StderrRecords(Arc::clone(buffer))),
            None => Box::new(ProcessStderr),
        }
    }

    fn add_cgi_vars(&mut self, environ: &mut Environ) {
        if let Some(params) = self.params.take() {
            self.params_spare = environ.set_all_from(params.into_buffer(), proto::pair_layout);
        }
        if let Some(len) = self.body_len {
            environ.set_bytes("CONTENT_LENGTH", len.to_string());
        }
        environ.set_bytes("FCGI_ROLE", self.role_name);
        environ.set_cancel_flag(Arc::clone(&self.cancel));
        if let Some(data) = self.data.take() {
            environ.insert_extension(FilterData(Mutex::new(Some(data))));
        }
    }

    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.frame()?;
        let mut sent = 0;
        while sent < count {
            let len = usize::try_from(count - sent).map_or(FILE_RECORD, |n| n.min(FILE_RECORD));
            let header = Header::new(RecordType::Stdout, self.id, len as u16);
            self.conn.write(&header.encode())?;
            let at = offset + sent;
            let mut done = usize::try_from(self.conn.sendfile(file, at, len as u64)?).unwrap_or(0);
            if done < len {
                // sendfile was refused part-way: the record's header is out,
                // so its content is completed by reading; then the gateway
                // reads the rest.
                let mut buf = vec![0; len - done];
                file.read_exact_at(&mut buf, at + done as u64)?;
                self.conn.write(&buf)?;
                done = len;
                sent += done as u64;
                self.conn.write(header.padding())?;
                return Ok(sent);
            }
            self.conn.write(header.padding())?;
            sent += done as u64;
        }
        Ok(sent)
    }

    fn offload(&mut self, file: &File, _len: u64) -> Option<(String, String)> {
        self.offload?.header(file)
    }

    fn abort(&mut self) {
        // No END_REQUEST: the closed connection tells the web server the
        // response is incomplete.
        self.aborted = true;
    }
}

/// `wsgi.errors` as `STDERR` records: bytes wait here until the next flush
/// of the response; past [`STDERR_BUFFER`] they go to this process's stderr.
struct StderrRecords(Arc<Mutex<Vec<u8>>>);

impl Write for StderrRecords {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() + buf.len() > STDERR_BUFFER {
            drop(pending);
            return io::stderr().write(buf);
        }
        pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatekit_server::allow::is_allowed;

    #[test]
    fn abort_probe_finds_an_abort_for_its_id_only() {
        let mut wire = Vec::new();
        proto::encode_stream_end(RecordType::Stdin, 1, &mut wire);
        proto::encode_abort_request(2, &mut wire);
        assert!(!aborts(&wire, 1));
        assert!(aborts(&wire, 2));
        proto::encode_abort_request(1, &mut wire);
        assert!(aborts(&wire, 1));
        // A header cut short is not an abort.
        assert!(!aborts(&wire[..3], 1));
    }

    #[test]
    fn web_server_addrs_parse() {
        let list = parse_web_server_addrs("127.0.0.1, ::1,10.0.0.2").unwrap();
        assert_eq!(list.len(), 3);
        assert!(parse_web_server_addrs("127.0.0.1,localhost").is_err());
        assert!(is_allowed(&list, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_allowed(&list, "10.0.0.3".parse().unwrap()));
    }
}
