//! What the FastCGI tests share: the test app, an in-process server, and a
//! raw FastCGI client.

#![allow(dead_code)] // each test binary uses part of this

pub mod web;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gatekit_core::{Body, BoxError, Environ, FileWrapper, StartResponse};
use gatekit_fastcgi::proto::{
    self, BeginRequest, EndRequest, RecordType, Role, decode_record, encode_pair,
};
use gatekit_fastcgi::server::{FilterData, Server, ServerConfig};
use gatekit_server::engine::Shutdown;
use gatekit_server::listen::Addr;

/// What the test app shares with the test.
#[derive(Default)]
pub struct Shared {
    /// The file `/file` sends.
    pub file: std::sync::Mutex<Option<PathBuf>>,
    /// Set when `/wait-cancel` saw its request cancelled.
    pub saw_cancel: AtomicBool,
}

/// The path part of REQUEST_URI (or PATH_INFO, or DOCUMENT_URI).
fn route(env: &Environ) -> Vec<u8> {
    let uri = env
        .get_bytes("REQUEST_URI")
        .or_else(|| env.get_bytes("DOCUMENT_URI"))
        .or_else(|| env.get_bytes("PATH_INFO"))
        .unwrap_or_default();
    let end = uri.iter().position(|&b| b == b'?').unwrap_or(uri.len());
    uri[..end].to_vec()
}

fn text(
    sr: &mut StartResponse<'_>,
    status: &str,
    body: impl Into<Vec<u8>>,
) -> Result<Body, BoxError> {
    sr.start(status, [("Content-Type", "text/plain")])?;
    Ok(Body::from(body.into()))
}

/// The app every FastCGI test talks to.
pub fn test_app(
    shared: Arc<Shared>,
) -> impl Fn(&mut Environ, &mut StartResponse<'_>) -> Result<Body, BoxError> + Send + Sync + 'static
{
    move |env: &mut Environ, sr: &mut StartResponse<'_>| {
        let path = if env.get_bytes("FCGI_ROLE") == Some(b"AUTHORIZER") {
            b"/auth".to_vec()
        } else {
            route(env)
        };
        match path.as_slice() {
            b"/hello" | b"/" => text(sr, "200 OK", "Hello, world!\n"),
            b"/echo" => {
                let mut body = Vec::new();
                env.input.read_to_end(&mut body)?;
                sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
                Ok(Body::from(body))
            }
            b"/env" => {
                let mut out = Vec::new();
                for (k, v) in env.iter() {
                    out.extend_from_slice(k);
                    out.push(b'=');
                    out.extend_from_slice(v);
                    out.push(b'\n');
                }
                text(sr, "200 OK", out)
            }
            b"/stderr" => {
                env.errors
                    .write_all(b"gatekit-stderr-marker from the app\n")?;
                text(sr, "200 OK", "logged\n")
            }
            b"/panic" => panic!("the test app panics on purpose"),
            b"/file" => {
                let path = shared.file.lock().unwrap().clone().ok_or("no file set")?;
                let file = std::fs::File::open(path)?;
                sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
                Ok(Body::File(FileWrapper::from_file(file)))
            }
            b"/stream" => {
                sr.start("200 OK", [("Content-Type", "text/plain")])?;
                Ok(Body::chunks((0..100).map(|i| format!("line {i}\n"))))
            }
            b"/wait-cancel" => {
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline {
                    if env.is_cancelled() {
                        shared.saw_cancel.store(true, Ordering::SeqCst);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                text(sr, "200 OK", "done\n")
            }
            b"/filter" => {
                let mut stdin = Vec::new();
                env.input.read_to_end(&mut stdin)?;
                let mut data = Vec::new();
                if let Some(d) = env.extension::<FilterData>().and_then(FilterData::take) {
                    let mut d = d;
                    d.read_to_end(&mut data)?;
                }
                let mut out = b"stdin=".to_vec();
                out.extend_from_slice(&stdin);
                out.extend_from_slice(b";data=");
                out.extend_from_slice(&data);
                text(sr, "200 OK", out)
            }
            b"/auth" => {
                if env.get_bytes("HTTP_AUTHORIZATION") == Some(b"Bearer good") {
                    sr.start(
                        "200 OK",
                        [
                            ("Variable-AUTH_USER", "alice"),
                            ("Variable-REMOTE_USER", "alice"),
                        ],
                    )?;
                    Ok(Body::empty())
                } else {
                    text(sr, "403 Forbidden", "denied\n")
                }
            }
            b"/protected" => {
                let user = env
                    .get_bytes("REMOTE_USER")
                    .or_else(|| env.get_bytes("AUTH_USER"))
                    .unwrap_or(b"-")
                    .to_vec();
                text(sr, "200 OK", [b"user=".as_slice(), &user, b"\n"].concat())
            }
            _ => text(sr, "404 Not Found", "no such test route\n"),
        }
    }
}

/// A FastCGI server running in this process on a thread.
pub struct Running {
    pub addr: Addr,
    pub shared: Arc<Shared>,
    shutdown: Shutdown,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The TCP port (for a TCP listener).
    pub fn port(&self) -> u16 {
        match &self.addr {
            Addr::Ip(a) => a.port(),
            other => panic!("not TCP: {other}"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the test app on `addr` (`127.0.0.1:0`, `unix:PATH`).
pub fn start(addr: &str, config: ServerConfig) -> Running {
    let shared = Arc::new(Shared::default());
    let server = Server::bind(addr, test_app(Arc::clone(&shared)), config).unwrap();
    let addr = server.local_addrs().remove(0);
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve_forever().unwrap());
    Running {
        addr,
        shared,
        shutdown,
        thread: Some(thread),
    }
}

/// A configuration for tests: short timeouts, few workers.
pub fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.engine.workers = 4;
    config.engine.shutdown_grace = Duration::from_secs(5);
    config
}

/// Encodes a whole request: BEGIN_REQUEST, PARAMS, STDIN (as one stream each).
pub fn request(
    id: u16,
    role: Role,
    keep_conn: bool,
    params: &[(&[u8], &[u8])],
    stdin: &[u8],
) -> Vec<u8> {
    let mut wire = Vec::new();
    proto::encode_begin_request(
        id,
        BeginRequest {
            role,
            flags: if keep_conn { proto::KEEP_CONN } else { 0 },
        },
        &mut wire,
    );
    let mut pairs = Vec::new();
    for (n, v) in params {
        encode_pair(n, v, &mut pairs).unwrap();
    }
    proto::encode_stream_data(RecordType::Params, id, &pairs, &mut wire);
    proto::encode_stream_end(RecordType::Params, id, &mut wire);
    proto::encode_stream_data(RecordType::Stdin, id, stdin, &mut wire);
    proto::encode_stream_end(RecordType::Stdin, id, &mut wire);
    wire
}

/// A GET of `uri` as nginx would send it (the usual CGI variables).
pub fn get(id: u16, keep_conn: bool, uri: &str) -> Vec<u8> {
    let params = cgi_params("GET", uri, None);
    let refs: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    request(id, Role::Responder, keep_conn, &refs, b"")
}

/// The CGI variables of a request.
pub fn cgi_params(
    method: &str,
    uri: &str,
    content_length: Option<usize>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut p: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"GATEWAY_INTERFACE".to_vec(), b"CGI/1.1".to_vec()),
        (b"REQUEST_METHOD".to_vec(), method.as_bytes().to_vec()),
        (b"REQUEST_URI".to_vec(), uri.as_bytes().to_vec()),
        (b"SCRIPT_NAME".to_vec(), Vec::new()),
        (
            b"PATH_INFO".to_vec(),
            uri.split('?').next().unwrap().as_bytes().to_vec(),
        ),
        (
            b"QUERY_STRING".to_vec(),
            uri.split_once('?').map_or("", |x| x.1).as_bytes().to_vec(),
        ),
        (b"SERVER_NAME".to_vec(), b"localhost".to_vec()),
        (b"SERVER_PORT".to_vec(), b"80".to_vec()),
        (b"SERVER_PROTOCOL".to_vec(), b"HTTP/1.1".to_vec()),
        (b"REMOTE_ADDR".to_vec(), b"127.0.0.1".to_vec()),
    ];
    if let Some(n) = content_length {
        p.push((b"CONTENT_LENGTH".to_vec(), n.to_string().into_bytes()));
    }
    p
}

/// What came back for one request.
#[derive(Debug, Default)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The END_REQUEST, if one came.
    pub end: Option<EndRequest>,
    /// Records in arrival order (type, id, content length).
    pub records: Vec<(RecordType, u16, usize)>,
    /// Every byte received, for golden comparisons.
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A connected raw FastCGI client.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads records until END_REQUEST for `id` (or EOF).
    pub fn reply(&mut self, id: u16) -> Reply {
        let mut reply = Reply::default();
        loop {
            while let Some((record, used)) = decode_record(&self.buf).unwrap() {
                reply.raw.extend_from_slice(&self.buf[..used]);
                reply
                    .records
                    .push((record.record_type, record.request_id, record.content.len()));
                let done = match record.record_type {
                    RecordType::Stdout if record.request_id == id => {
                        reply.stdout.extend_from_slice(record.content);
                        false
                    }
                    RecordType::Stderr if record.request_id == id => {
                        reply.stderr.extend_from_slice(record.content);
                        false
                    }
                    RecordType::EndRequest if record.request_id == id => {
                        reply.end = Some(EndRequest::decode(record.content).unwrap());
                        true
                    }
                    _ => false,
                };
                self.buf.drain(..used);
                if done {
                    return reply;
                }
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return reply,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads one record of any type (management answers).
    pub fn record(&mut self) -> Option<(RecordType, u16, Vec<u8>)> {
        loop {
            if let Some((record, used)) = decode_record(&self.buf).unwrap() {
                let out = (
                    record.record_type,
                    record.request_id,
                    record.content.to_vec(),
                );
                self.buf.drain(..used);
                return Some(out);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True if the server closed the connection (EOF within 5 s).
    pub fn closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One GET on a new connection; the body, checked to have ended cleanly.
pub fn hello_works(port: u16) {
    let mut c = Client::connect(port);
    c.send(&get(1, false, "/hello"));
    let r = c.reply(1);
    assert_eq!(r.end, Some(EndRequest::complete(0)), "{r:?}");
    assert!(r.text().ends_with("Hello, world!\n"), "{}", r.text());
}
