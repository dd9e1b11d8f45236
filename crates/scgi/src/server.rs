//! The SCGI server: an app behind nginx `scgi_pass`, Apache
//! `mod_proxy_scgi` or lighttpd `mod_scgi`, on gatekit's engine.
//!
//! One request per connection (SCGI protocol.txt §2): the I/O side decodes
//! the head ([`crate::proto`]) and spools exactly `CONTENT_LENGTH` body
//! bytes (memory, then a temp file) as they arrive, so the app is called
//! only once its request is whole; the core [`Gateway`] with
//! [`Config::gateway`] writes a CGI-style response (`Status:` header, no
//! status line), and the connection closes, which is what ends the
//! response for the web server. A head the codec refuses is answered with
//! a `Status: 400` (431 for an oversized head, 413 for an oversized body)
//! and the connection is closed.
//!
//! The SCGI headers become the app's CGI variables byte for byte
//! (`CONTENT_LENGTH` and `SCGI` included). nginx's stock `scgi_params`
//! sends neither `SCRIPT_NAME` nor `PATH_INFO`; when they are missing the
//! server derives them (see [`ServerConfig`]).
//!
//! SCGI has no authentication, so TCP peers are checked against
//! [`ServerConfig::allow`] (loopback by default) and others are closed at once.

use gatekit_core::util::percent_decode;
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use gatekit_core::{App, Config, Environ, Gateway, Transport};
use gatekit_server::Endpoint;
use gatekit_server::engine::{Conn, EngineConfig, Next, Protocol, Shutdown};
use gatekit_server::listen::{self, Addr, ListenOptions, Listener, Peer};
use gatekit_server::spool::{Spool, SpoolConfig, SpooledBody};
use gatekit_server::stdio::ProcessStderr;

use crate::proto::{self, Limits, Request};
use gatekit_server::allow::IpNet;

/// Everything the SCGI server can be told, with safe defaults.
///
/// `SCRIPT_NAME` and `PATH_INFO`: with [`script_name`](ServerConfig::script_name)
/// set, they are computed from it. Otherwise what the web server sends is
/// used (lighttpd, nginx with the two `scgi_param` lines of
/// `docs/deploy-scgi.md`), and what it leaves out is derived: a missing
/// `PATH_INFO` from `DOCUMENT_URI` (nginx's decoded `$document_uri`) if
/// present, else from `REQUEST_URI` up to `?`, percent-decoded to bytes,
/// minus the `SCRIPT_NAME` the web server sent, if any; a missing
/// `SCRIPT_NAME` is `""`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The gateway policy ([`Config::gateway`]: a `Status:` header, no
    /// status line; `wsgi.multithread` true, `wsgi.multiprocess` false;
    /// `omit_status_200` on, so a `200 OK` response has no `Status:`).
    pub gateway: Config,
    /// Request head limits (431 when passed). Keep `max_head` under the
    /// engine's 256 KiB input buffer.
    pub limits: Limits,
    /// Request body spooling and its size limit (413 when passed).
    pub spool: SpoolConfig,
    /// Threads, connections and timeouts.
    pub engine: EngineConfig,
    /// Listening socket options (backlog, Unix socket mode: the web server
    /// must be able to connect, e.g. `Some(0o666)` for Apache as www-data).
    /// Default: [`ListenOptions::backend`] (`TCP_DEFER_ACCEPT` of 1 s).
    pub listen: ListenOptions,
    /// The TCP peers allowed to connect (flup's `allowedServers`); others
    /// are closed at once. Default: loopback ([`IpNet::loopback`]); use
    /// [`IpNet::any`] to allow every address. Unix-socket peers are always
    /// allowed (the socket file's permissions decide). It becomes the
    /// engine's [`EngineConfig::allow`] when the server starts.
    pub allow: Vec<IpNet>,
    /// Where the app is mounted in the site's URL space (flup's
    /// `scriptName`), e.g. `Some("".into())` for the site root or
    /// `Some("/app".into())`. When the request path is under it, it becomes
    /// `SCRIPT_NAME` and the rest of the path `PATH_INFO`, whatever the web
    /// server sent. Needed behind Apache `mod_proxy_scgi`, which sends the
    /// whole path as `SCRIPT_NAME` and no `PATH_INFO`. Default `None`: use
    /// what the web server sends, deriving what is missing.
    pub script_name: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let mut gateway = Config::gateway();
        gateway.multithread = true;
        gateway.multiprocess = false;
        gateway.omit_status_200 = true;
        ServerConfig {
            gateway,
            limits: Limits::default(),
            spool: SpoolConfig::default(),
            engine: EngineConfig::default(),
            listen: ListenOptions::backend(),
            allow: IpNet::loopback(),
            script_name: None,
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
            Error::Io(e) => write!(f, "cannot start the SCGI server: {e}"),
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

/// An SCGI server for one app.
#[derive(Debug)]
pub struct Server<A> {
    app: Arc<A>,
    endpoint: Endpoint,
    config: ServerConfig,
}

/// Binds `addr` (`HOST:PORT`, `[V6]:PORT`, `unix:PATH`, `fd:N`) and makes an
/// SCGI server for `app` with the default configuration.
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
    /// requests finish.
    ///
    /// # Errors
    /// The engine could not start.
    pub fn serve_forever(self) -> Result<(), Error> {
        let protocol = Scgi {
            app: self.app,
            gateway: Arc::new(self.config.gateway),
            limits: self.config.limits,
            spool: self.config.spool,
            script_name: self.config.script_name,
        };
        let mut engine = self.config.engine;
        engine.allow = Some(self.config.allow);
        self.endpoint.serve(protocol, engine).map_err(Error::Io)
    }
}

/// The protocol as the engine runs it.
struct Scgi<A> {
    app: Arc<A>,
    gateway: Arc<Config>,
    limits: Limits,
    spool: SpoolConfig,
    script_name: Option<String>,
}

/// Per-connection state: one request, then the connection closes.
enum Session {
    /// Waiting for the netstring head.
    Head,
    /// The head is decoded; the body is arriving.
    Body(Box<Pending>),
    /// The response was written (or refused).
    Done,
}

/// A request whose head is decoded and whose body is arriving.
struct Pending {
    vars: HeadVars,
    spool: Spool,
    remaining: u64,
}

impl<A: App + 'static> Protocol for Scgi<A> {
    type Session = Session;

    fn session(&self, _peer: &Peer, _conn: &Conn) -> Session {
        // The allow-list is the engine's (`EngineConfig::allow`): a refused
        // peer never gets a session.
        Session::Head
    }

    fn on_input(&self, session: &mut Session, conn: &mut Conn) -> Next {
        loop {
            match session {
                Session::Done => return Next::Close,
                Session::Head => {
                    if conn.input().is_empty() {
                        return if conn.is_eof() {
                            Next::Close
                        } else {
                            Next::Idle
                        };
                    }
                    let (vars, content_length, used) =
                        match proto::decode_request(conn.input(), &self.limits) {
                            Ok(Some((request, used))) => {
                                let content_length = request.content_length();
                                let set = path_vars(&request, self.script_name.as_deref());
                                let vars = HeadVars::new(
                                    conn.input().get(..used).unwrap_or_default(),
                                    request,
                                    set,
                                );
                                (vars, content_length, used)
                            }
                            Ok(None) if conn.is_eof() => {
                                return refuse(session, conn, 400, "request head cut short");
                            }
                            Ok(None) => return Next::Continue,
                            Err(e) => {
                                return refuse(session, conn, head_error_status(e), e);
                            }
                        };
                    conn.consume(used);
                    let spool = match Spool::new(Some(content_length), &self.spool) {
                        Ok(spool) => spool,
                        Err(e) => return refuse(session, conn, e.status(), e),
                    };
                    *session = Session::Body(Box::new(Pending {
                        vars,
                        spool,
                        remaining: content_length,
                    }));
                }
                Session::Body(pending) => {
                    let available = conn.input().len();
                    let take =
                        usize::try_from(pending.remaining).map_or(available, |r| r.min(available));
                    let data = conn.input().get(..take).unwrap_or_default();
                    if let Err(e) = pending.spool.write(data) {
                        return refuse(session, conn, e.status(), e);
                    }
                    conn.consume(take);
                    pending.remaining -= take as u64;
                    if pending.remaining > 0 {
                        if conn.is_eof() {
                            return refuse(session, conn, 400, "request body cut short");
                        }
                        return Next::Continue;
                    }
                    let Session::Body(pending) = std::mem::replace(session, Session::Done) else {
                        return Next::Close;
                    };
                    let Pending { vars, spool, .. } = *pending;
                    match spool.finish() {
                        Ok(body) => self.run(conn, vars, body),
                        Err(e) => return refuse(session, conn, e.status(), e),
                    }
                    // SCGI §2: one request, then the server closes; when
                    // nothing followed the body, at once.
                    return if conn.input().is_empty() {
                        Next::Done
                    } else {
                        Next::Close
                    };
                }
            }
        }
    }

    fn on_timeout(&self, session: &mut Session, conn: &mut Conn, in_request: bool) {
        if in_request && matches!(session, Session::Head | Session::Body(_)) {
            write_error(conn, 408);
        }
        *session = Session::Done;
    }
}

impl<A: App + 'static> Scgi<A> {
    /// Runs the app for a complete request.
    fn run(&self, conn: &mut Conn, vars: HeadVars, body: SpooledBody) {
        let transport = ScgiTransport {
            conn,
            vars,
            input: Some(body),
        };
        let mut gateway = Gateway::new(transport, Arc::clone(&self.gateway));
        // Whatever happened, the connection closes next: that ends a
        // complete response and shows an aborted one as cut short.
        let _ = gateway.run(&*self.app);
    }
}

/// Logs why a request is refused, answers it with `status`, and closes.
fn refuse(
    session: &mut Session,
    conn: &mut Conn,
    status: u16,
    why: impl std::fmt::Display,
) -> Next {
    eprintln!(
        "gatekit-scgi: request from {} refused ({status}): {why}",
        conn.peer()
    );
    write_error(conn, status);
    *session = Session::Done;
    Next::Close
}

/// The answer to a head the codec refused.
fn head_error_status(e: proto::Error) -> u16 {
    match e {
        proto::Error::HeadTooLarge | proto::Error::TooManyHeaders => 431,
        proto::Error::ContentLengthTooLarge => 413,
        _ => 400,
    }
}

/// A short plain-text CGI-style error response; the connection closes next.
fn write_error(conn: &mut Conn, status: u16) {
    let response = gatekit_core::util::cgi_error_response(status);
    // The connection closes next either way; a failed write changes nothing.
    let _ = conn.write(&response).and_then(|()| conn.flush());
}

/// A request's CGI variables, kept as the head arrived: one copy of the
/// netstring and where each pair lies in it (in the allocation the decoded
/// request's pair list had), put straight into the environ, then the
/// `SCRIPT_NAME` and `PATH_INFO` the server sets over them.
struct HeadVars {
    /// The whole netstring: `LEN:` then `name NUL value NUL` pairs, then `,`.
    head: Vec<u8>,
    /// Each header's name and value as `(start, end)` offsets in `head`.
    pairs: Vec<[(usize, usize); 2]>,
    /// Set after the headers, in this order (see [`path_vars`]).
    set: PathVars,
}

/// Spare bytes in a request's copy of its head, for the variables set after
/// the headers without growing it.
const SET_ROOM: usize = 256;

/// The variables [`path_vars`] sets over the headers, in order: at most
/// two, kept inline.
type PathVars = [Option<(&'static [u8], Vec<u8>)>; 2];

impl HeadVars {
    /// `head` is the netstring `request` was decoded from, so its names and
    /// values lie inside it.
    fn new(head: &[u8], request: Request<'_>, set: PathVars) -> HeadVars {
        let base = head.as_ptr() as usize;
        let span = |field: &[u8]| {
            let start = (field.as_ptr() as usize).wrapping_sub(base);
            (start, start.wrapping_add(field.len()))
        };
        // Room for the variables set after the headers (`PATH_INFO`, the
        // app's own): the head becomes the environ's storage.
        let mut copy = Vec::with_capacity(head.len() + SET_ROOM);
        copy.extend_from_slice(head);
        HeadVars {
            head: copy,
            // The same size and alignment as the request's pairs: collected
            // in place, without a new allocation.
            pairs: request
                .into_iter()
                .map(|(name, value)| [span(name), span(value)])
                .collect(),
            set,
        }
    }

    /// The header pairs, in wire order (a span outside the head, which the
    /// codec cannot produce, is left out rather than trusted).
    #[cfg(test)]
    fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .filter_map(|[(a, b), (c, d)]| Some((self.head.get(*a..*b)?, self.head.get(*c..*d)?)))
    }

    /// Puts every variable into `environ`: the head becomes the storage of
    /// the header variables (no copy of each), then the server's own are set.
    fn apply(&mut self, environ: &mut Environ) {
        let head = std::mem::take(&mut self.head);
        let mut pairs = self.pairs.iter();
        let mut at = 0;
        // The pairs in wire order, each as ranges of what is left of the
        // head; a pair before the last one's end (which the codec cannot
        // produce) ends the list.
        let _spare = environ.set_all_from(head, |_rest: &[u8]| {
            let &[(a, b), (c, d)] = pairs.next()?;
            if a < at || b < a || c < b || d < c {
                return None;
            }
            let pair = (a - at..b - at, c - at..d - at, d - at);
            at = d;
            Some(pair)
        });
        for (name, value) in self.set.iter().flatten() {
            environ.set_bytes(name, value);
        }
    }
}

/// The `SCRIPT_NAME` and `PATH_INFO` values the server sets over the SCGI
/// headers, as [`ServerConfig`] describes; empty when the headers stand.
fn path_vars(request: &Request<'_>, mount: Option<&str>) -> PathVars {
    let script = request.get(b"SCRIPT_NAME");
    let path_info = request.get(b"PATH_INFO");
    if let Some(mount) = mount {
        let mount = mount.trim_end_matches('/').as_bytes();
        let full = match (script, path_info) {
            (None, None) => request_path(request),
            (script, path_info) => {
                [script.unwrap_or_default(), path_info.unwrap_or_default()].concat()
            }
        };
        if let Some(rest) = strip_segment_prefix(&full, mount) {
            return [
                Some((&b"SCRIPT_NAME"[..], mount.to_vec())),
                Some((&b"PATH_INFO"[..], rest.to_vec())),
            ];
        }
    }
    let path_info = path_info.is_none().then(|| {
        let path = request_path(request);
        let derived = match script {
            None => path,
            // The web server named a script: PATH_INFO is what follows it.
            Some(script) => strip_segment_prefix(&path, script)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
        };
        (&b"PATH_INFO"[..], derived)
    });
    let script = script.is_none().then(|| (&b"SCRIPT_NAME"[..], Vec::new()));
    [path_info, script]
}

/// What follows `prefix` in `path`, if `path` is `prefix` or continues
/// it with a `/` (so `/app` is under `/app` and `/app/x`, not `/apple`).
fn strip_segment_prefix<'p>(path: &'p [u8], prefix: &[u8]) -> Option<&'p [u8]> {
    path.strip_prefix(prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

/// The request path as bytes: `DOCUMENT_URI` (already decoded by nginx), or
/// `REQUEST_URI` without its query, percent-decoded; empty if neither.
fn request_path(request: &Request<'_>) -> Vec<u8> {
    if let Some(uri) = request.get(b"DOCUMENT_URI") {
        return uri.to_vec();
    }
    let Some(uri) = request.get(b"REQUEST_URI") else {
        return Vec::new();
    };
    let path = uri.split(|&b| b == b'?').next().unwrap_or_default();
    percent_decode(strip_scheme_and_authority(path))
}

/// `http://host/p` (an absolute-form request target) to `/p`; other
/// paths unchanged.
fn strip_scheme_and_authority(path: &[u8]) -> &[u8] {
    let is_absolute = [&b"http://"[..], b"https://"].iter().any(|scheme| {
        path.get(..scheme.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
    });
    if !is_absolute {
        return path;
    }
    let after_scheme = path
        .windows(3)
        .position(|w| w == b"://")
        .map_or(path, |i| path.get(i + 3..).unwrap_or_default());
    match after_scheme.iter().position(|&b| b == b'/') {
        Some(i) => after_scheme.get(i..).unwrap_or_default(),
        None => b"/",
    }
}

/// The gateway's view of one SCGI connection.
struct ScgiTransport<'c> {
    conn: &'c mut Conn,
    vars: HeadVars,
    input: Option<SpooledBody>,
}

impl Transport for ScgiTransport<'_> {
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
        self.vars.apply(environ);
    }

    fn flush_before_sendfile(&mut self) -> io::Result<()> {
        // `Conn::sendfile` sends the head first, in the same TCP_CORK as a
        // big file, so both leave in full-sized segments.
        Ok(())
    }

    fn sendfile(&mut self, file: &File, offset: u64, count: u64) -> io::Result<u64> {
        self.conn.sendfile(file, offset, count)
    }

    // `abort` keeps the default: the connection always closes after the
    // response, and a response cut short is one that ends before its
    // Content-Length, which the web server reports.
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn vars_of(headers: &[(&[u8], &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        mounted(headers, None)
    }

    fn mounted(headers: &[(&[u8], &[u8])], mount: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all: Vec<(&[u8], &[u8])> = vec![(b"CONTENT_LENGTH", b"0"), (b"SCGI", b"1")];
        all.extend_from_slice(headers);
        let mut wire = Vec::new();
        proto::encode_request(&all, &mut wire).unwrap();
        let (request, used) = proto::decode_request(&wire, &Limits::default())
            .unwrap()
            .unwrap();
        let set = path_vars(&request, mount);
        let head = HeadVars::new(&wire[..used], request, set);
        // The variables as the environ gets them: the headers, each later
        // setting replacing an earlier one in place.
        let mut vars: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let settings = head
            .headers()
            .chain(head.set.iter().flatten().map(|(n, v)| (*n, v.as_slice())));
        for (name, value) in settings {
            match vars.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => *v = value.to_vec(),
                None => vars.push((name.to_vec(), value.to_vec())),
            }
        }
        // What the environ gets from the head handed over whole is the same,
        // whether it starts empty (the head becomes its storage) or not.
        for preset in [false, true] {
            let mut head = HeadVars::new(
                &wire[..used],
                decoded(&wire),
                path_vars(&decoded(&wire), mount),
            );
            let mut environ = Environ::new();
            if preset {
                environ.set_bytes("ZZ_PRESET", "1");
            }
            head.apply(&mut environ);
            environ.remove("ZZ_PRESET");
            let mut want = vars.clone();
            want.sort();
            let got: Vec<(Vec<u8>, Vec<u8>)> = environ
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect();
            assert_eq!(got, want, "preset {preset}");
        }
        vars
    }

    fn decoded(wire: &[u8]) -> Request<'_> {
        proto::decode_request(wire, &Limits::default())
            .unwrap()
            .unwrap()
            .0
    }

    fn get<'v>(vars: &'v [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'v [u8]> {
        vars.iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn headers_pass_through_in_order() {
        let vars = vars_of(&[
            (b"REQUEST_METHOD", b"GET"),
            (b"SCRIPT_NAME", b"/app"),
            (b"PATH_INFO", b"/x\xff"),
            (b"HTTP_X_\xfe", b"\x80"),
        ]);
        let names: Vec<&[u8]> = vars.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(
            names,
            [
                &b"CONTENT_LENGTH"[..],
                b"SCGI",
                b"REQUEST_METHOD",
                b"SCRIPT_NAME",
                b"PATH_INFO",
                b"HTTP_X_\xfe"
            ]
        );
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/x\xff"[..]));
    }

    #[test]
    fn nginx_stock_params_get_path_info_from_document_uri() {
        let vars = vars_of(&[
            (b"REQUEST_URI", b"/a%20b/c?q=%41"),
            (b"DOCUMENT_URI", b"/a b/c"),
        ]);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b""[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/a b/c"[..]));
    }

    #[test]
    fn request_uri_is_decoded_without_its_query() {
        let vars = vars_of(&[(b"REQUEST_URI", b"/p%61th/%ff%FF%2x%?q=%41")]);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b""[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/path/\xff\xff%2x%"[..]));
        let vars = vars_of(&[(b"REQUEST_URI", b"http://example.com/x%2Fy?z")]);
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/x/y"[..]));
        let vars = vars_of(&[(b"REQUEST_URI", b"HTTPS://example.com")]);
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/"[..]));
        let vars = vars_of(&[]);
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b""[..]));
    }

    #[test]
    fn script_name_sent_alone_is_removed_from_the_path() {
        let vars = vars_of(&[(b"SCRIPT_NAME", b"/app"), (b"REQUEST_URI", b"/app/x/y?q")]);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b"/app"[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/x/y"[..]));
        // Apache without proxy-scgi-pathinfo: the whole path is the script.
        let vars = vars_of(&[(b"SCRIPT_NAME", b"/app/x"), (b"REQUEST_URI", b"/app/x")]);
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b""[..]));
        // Not on a segment boundary: no PATH_INFO invented.
        let vars = vars_of(&[(b"SCRIPT_NAME", b"/ap"), (b"REQUEST_URI", b"/app")]);
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b""[..]));
    }

    #[test]
    fn path_info_sent_alone_gets_an_empty_script_name() {
        let vars = vars_of(&[(b"PATH_INFO", b"/x"), (b"REQUEST_URI", b"/other")]);
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b""[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/x"[..]));
        assert_eq!(vars.iter().filter(|(n, _)| n == b"PATH_INFO").count(), 1);
    }

    #[test]
    fn script_name_setting_splits_the_path() {
        // Apache mod_proxy_scgi: the whole decoded path as SCRIPT_NAME.
        let apache: &[(&[u8], &[u8])] = &[
            (b"SCRIPT_NAME", b"/app/x y"),
            (b"REQUEST_URI", b"/app/x%20y?q"),
        ];
        let vars = mounted(apache, Some(""));
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b""[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/app/x y"[..]));
        for mount in ["/app", "/app/"] {
            let vars = mounted(apache, Some(mount));
            assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b"/app"[..]), "{mount}");
            assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/x y"[..]), "{mount}");
            assert_eq!(vars.iter().filter(|(n, _)| n == b"SCRIPT_NAME").count(), 1);
        }
        // lighttpd without fix-root-scriptname: SCRIPT_NAME + PATH_INFO.
        let lighttpd: &[(&[u8], &[u8])] = &[(b"SCRIPT_NAME", b"/app"), (b"PATH_INFO", b"/x")];
        let vars = mounted(lighttpd, Some(""));
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b""[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b"/app/x"[..]));
        // nginx stock params: DOCUMENT_URI.
        let vars = mounted(&[(b"DOCUMENT_URI", b"/app")], Some("/app"));
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b"/app"[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b""[..]));
        // A path outside the mount keeps what the web server sent.
        let vars = mounted(&[(b"SCRIPT_NAME", b"/apple")], Some("/app"));
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(&b"/apple"[..]));
        assert_eq!(get(&vars, "PATH_INFO"), Some(&b""[..]));
    }

    #[test]
    fn codec_errors_map_to_statuses() {
        assert_eq!(head_error_status(proto::Error::HeadTooLarge), 431);
        assert_eq!(head_error_status(proto::Error::TooManyHeaders), 431);
        assert_eq!(head_error_status(proto::Error::ContentLengthTooLarge), 413);
        assert_eq!(head_error_status(proto::Error::MissingScgi), 400);
        assert_eq!(head_error_status(proto::Error::LeadingZero), 400);
    }
}
