//! The test app and an in-process server on a thread, stopped on drop.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use gatekit_core::{Body, BoxError, Environ, FileWrapper, StartResponse, demo_app, echo_app};
use gatekit_scgi::{Server, ServerConfig};
use gatekit_server::engine::Shutdown;
use gatekit_server::listen::Addr;

/// The app every test serves, routed on `PATH_INFO`:
///
/// - `/hello`: `Hello\n` as text/plain (a fixed, golden response);
/// - `/env...`: wsgiref's `demo_app` (the environ, byte-exact);
/// - `/echo`: the request body back;
/// - `/sha256`: `LEN SHA256` of the request body;
/// - `/file`: the file named by `QUERY_STRING` through a `FileWrapper`;
/// - `/stream`: three blocks of unknown total length;
/// - `/panic`: panics.
pub fn app(env: &mut Environ, sr: &mut StartResponse<'_>) -> Result<Body, BoxError> {
    let path = env.get_bytes("PATH_INFO").unwrap_or_default().to_vec();
    match path.as_slice() {
        b"/hello" => {
            sr.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(Body::from("Hello\n"))
        }
        p if p.starts_with(b"/env") => demo_app(env, sr),
        b"/echo" => echo_app(env, sr),
        b"/sha256" => {
            let mut body = Vec::new();
            env.input.read_to_end(&mut body)?;
            let text = format!("{} {}\n", body.len(), gatekit_testkit::sha256(&body));
            sr.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(Body::from(text))
        }
        b"/file" => {
            let name = env.get("QUERY_STRING").unwrap_or_default().to_owned();
            let file = std::fs::File::open(name)?;
            sr.start("200 OK", [("Content-Type", "application/octet-stream")])?;
            Ok(Body::File(FileWrapper::from_file(file)))
        }
        b"/stream" => {
            sr.start("200 OK", [("Content-Type", "text/plain")])?;
            Ok(Body::chunks(["one\n", "two\n", "three\n"]))
        }
        b"/panic" => panic!("the test app panics on purpose"),
        _ => {
            let text = format!(
                "no such test path: SCRIPT_NAME={:?} PATH_INFO={:?}\n",
                env.get_lossy("SCRIPT_NAME"),
                env.get_lossy("PATH_INFO")
            );
            sr.start("404 Not Found", [("Content-Type", "text/plain")])?;
            Ok(Body::from(text))
        }
    }
}

/// A server running on a thread; triggers its shutdown and joins it on drop.
pub struct Running {
    pub addr: Addr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// The TCP address (panics for a Unix socket).
    pub fn tcp(&self) -> SocketAddr {
        match &self.addr {
            Addr::Ip(sa) => *sa,
            other => panic!("not a TCP address: {other}"),
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

/// A test configuration: few workers, a short drain.
pub fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.engine.workers = 8;
    config.engine.shutdown_grace = Duration::from_secs(5);
    config
}

/// Starts the test app on `addr` (`127.0.0.1:0`, `unix:PATH`).
pub fn start(addr: &str, config: ServerConfig) -> Running {
    let server = Server::bind(addr, app, config).unwrap();
    let addr = server.local_addrs().pop().unwrap();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve_forever().unwrap());
    Running {
        addr,
        shutdown,
        thread: Some(thread),
    }
}

/// An SCGI head for `headers` (CONTENT_LENGTH and SCGI first, as given).
pub fn head(headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut wire = Vec::new();
    gatekit_scgi::proto::encode_request(headers, &mut wire).unwrap();
    wire
}

/// A well-formed request for `path` with `body`, as nginx would send it.
pub fn request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let len = body.len().to_string();
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let mut wire = head(&[
        (b"CONTENT_LENGTH", len.as_bytes()),
        (b"SCGI", b"1"),
        (b"REQUEST_METHOD", method.as_bytes()),
        (b"REQUEST_URI", path.as_bytes()),
        (b"QUERY_STRING", query.as_bytes()),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"SERVER_NAME", b"localhost"),
        (b"SERVER_PORT", b"80"),
    ]);
    wire.extend_from_slice(body);
    wire
}

/// Sends `request` and reads until the server closes (10 s at most). A
/// reset, or a write the server refused because it already closed, counts
/// as the end.
pub fn exchange(addr: &Addr, request: &[u8]) -> Vec<u8> {
    match addr {
        Addr::Ip(sa) => {
            let mut c = std::net::TcpStream::connect(sa).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            talk(&mut c, request)
        }
        Addr::Unix(path) => {
            let mut c = std::os::unix::net::UnixStream::connect(path).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            talk(&mut c, request)
        }
        other => panic!("cannot connect to {other}"),
    }
}

fn talk<S: Read + Write>(c: &mut S, request: &[u8]) -> Vec<u8> {
    let _ = c.write_all(request);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read failed after {} bytes: {e}", out.len()),
        }
    }
}

/// The golden response of `/hello` (no `Status:` for 200 OK: the server's
/// default `omit_status_200`).
pub const HELLO: &[u8] = b"Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nHello\n";

/// Asserts the server at `addr` still answers `/hello` exactly.
#[track_caller]
pub fn assert_serves(addr: &Addr) {
    let out = exchange(addr, &request("GET", "/hello", b""));
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(HELLO)
    );
}

/// A file of `mb` MiB of the test pattern in `dir`.
pub fn big_file(dir: &std::path::Path, mb: usize) -> PathBuf {
    let path = dir.join(format!("big-{mb}.bin"));
    let block = gatekit_testkit::pattern(1024 * 1024);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..mb {
        // A different first byte per MiB, so a misplaced block shows.
        f.write_all(&[i as u8]).unwrap();
        f.write_all(&block[1..]).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    path
}
